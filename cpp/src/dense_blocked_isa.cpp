// The blocked dense kernels built for one x86-64 microarchitecture level: CMakeLists.txt compiles
// this file once per level N (3: AVX2/FMA, 4: AVX-512) with -march=x86-64-vN and
// DELYAP_ISA_LEVEL=N; in the plain build it is empty and dense_blocked.cpp runs the portable
// kernels. Its code sits in its own inline namespace and namespace Eigen is renamed, so no
// function of it (Eigen's templates included) can be mistaken by the linker for the baseline
// build's; dense_blocked.cpp calls it only on CPUs that have the instructions.
#if defined(DELYAP_ISA_LEVEL) && defined(__x86_64__)
#define DELYAP_PASTE_(a, b) a##b
#define DELYAP_PASTE(a, b) DELYAP_PASTE_(a, b)
#define DELYAP_ISA_NAMESPACE DELYAP_PASTE(isa_x86_64_v, DELYAP_ISA_LEVEL)
#define Eigen DELYAP_PASTE(delyap_eigen_x86_64_v, DELYAP_ISA_LEVEL)
#include "delyap/lyap/blocked_linalg.hpp"

namespace delyap::bindings {

bool DELYAP_PASTE(blocked_multiply_x86_64_v, DELYAP_ISA_LEVEL)(const double* A, Index d,
                                                               const double* q, Index k,
                                                               double* out, const PollRef& poll) {
  return DELYAP_ISA_NAMESPACE::blocked_multiply(A, d, q, k, out, poll);
}

bool DELYAP_PASTE(blocked_qr_x86_64_v, DELYAP_ISA_LEVEL)(double* q, Index n, Index k, double* r,
                                                         const PollRef& poll) {
  return DELYAP_ISA_NAMESPACE::blocked_qr(q, n, k, r, poll);
}

}  // namespace delyap::bindings
#endif
