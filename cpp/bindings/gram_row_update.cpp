// Runtime ISA dispatch for the SGD Gram kernel. A wheel has to run on any x86-64, but the
// kernel is bound by vector width: on AVX2/FMA hosts (x86-64-v3) the same source runs about 2×
// faster than the baseline SSE2 build. GCC/Clang `target_clones` emit both and choose through
// an ifunc resolver when the library loads; `flatten` inlines the portable kernel into each
// clone so that all of it is compiled for that clone's ISA. This file is compiled with
// -ffp-contract=fast (CMakeLists.txt) so the v3 clone fuses multiply-adds.
#include "gram_row_update.hpp"

#include "delyap/lyap/gram_rows.hpp"

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && __has_attribute(flatten)
#define DELYAP_ISA_CLONES 1
#endif
#endif

namespace delyap::bindings {

#ifdef DELYAP_ISA_CLONES
__attribute__((target_clones("arch=x86-64-v3", "default"), flatten))
#endif
void subtract_batch_rows_host(double* q, Index n, int k, const double* K, const uint32_t* rows,
                              const double* g, Index m) {
  subtract_batch_rows(q, n, k, K, rows, g, m);
}

const char* gram_kernel_isa() {
#ifdef DELYAP_ISA_CLONES
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "x86-64-v3";
#endif
  return "portable";
}

}  // namespace delyap::bindings
