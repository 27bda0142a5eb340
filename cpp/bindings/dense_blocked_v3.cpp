// The blocked dense kernels built for x86-64-v3. This file is meant to be compiled alone with
// -march=x86-64-v3 (CMakeLists.txt); without that flag it is empty and dense_blocked.cpp runs
// a lower level. Its code sits in its own inline namespace and namespace Eigen is renamed, so
// no function of it (Eigen's templates included) can be mistaken by the linker for the
// baseline build's; dense_blocked.cpp calls it only on CPUs that have the instructions.
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#define DELYAP_ISA_NAMESPACE isa_x86_64_v3
#define Eigen delyap_eigen_x86_64_v3
#include "delyap/lyap/blocked_linalg.hpp"

namespace delyap::bindings {

bool blocked_multiply_x86_64_v3(const double* A, Index d, const double* q, Index k, double* out,
                                const PollRef& poll) {
  return isa_x86_64_v3::blocked_multiply(A, d, q, k, out, poll);
}

bool blocked_qr_x86_64_v3(double* q, Index n, Index k, double* r, const PollRef& poll) {
  return isa_x86_64_v3::blocked_qr(q, n, k, r, poll);
}

}  // namespace delyap::bindings
#endif
