// The SGD Gram kernels built for x86-64-v3 (AVX2 + FMA): CMakeLists.txt compiles this file
// alone with -march=x86-64-v3 and lets it reassociate sums (so the gather's dot products
// vectorise). Its code sits in its own inline namespace, so no function of it can be mistaken
// by the linker for the baseline build; gram_row_update.cpp calls it only on CPUs that have
// AVX2 and FMA.
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#define DELYAP_ISA_NAMESPACE isa_x86_64_v3
#include "delyap/lyap/gram_rows.hpp"

namespace delyap::bindings {

void subtract_batch_rows_x86_64_v3(double* q, Index n, int k, const double* K,
                                   const uint32_t* rows, const double* g, Index m) {
  isa_x86_64_v3::subtract_batch_rows(q, n, k, K, rows, g, m);
}

void gather_batch_rows_x86_64_v3(const double* U, const uint32_t* rows, Index m,
                                 const double* q, Index n, int k, double scale, double* out) {
  isa_x86_64_v3::gather_batch_rows(U, rows, m, q, n, k, scale, out);
}

}  // namespace delyap::bindings
#endif
