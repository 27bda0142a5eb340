// Runtime ISA dispatch for the SGD Gram kernel. A wheel has to run on any x86-64, but the
// kernel is bound by vector width: on AVX2/FMA hosts (x86-64-v3) the same source, compiled
// for that level in gram_row_update_x86_64_v3.cpp, runs 2–3× faster than the baseline SSE2 build.
// The choice is made once, from the CPU's feature bits.
#include "gram_row_update.hpp"

#include "delyap/lyap/gram_rows.hpp"

namespace delyap::bindings {

#ifdef DELYAP_HAVE_X86_64_V3
void subtract_batch_rows_x86_64_v3(double* q, Index n, int k, const double* K,
                                   const uint32_t* rows, const double* g, Index m);
void gather_batch_rows_x86_64_v3(const double* U, const uint32_t* rows, Index m,
                                 const double* q, Index n, int k, double scale, double* out);

static bool cpu_has_x86_64_v3() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

void subtract_batch_rows_host(double* q, Index n, int k, const double* K, const uint32_t* rows,
                              const double* g, Index m) {
#ifdef DELYAP_HAVE_X86_64_V3
  static const bool v3 = cpu_has_x86_64_v3();
  if (v3) return subtract_batch_rows_x86_64_v3(q, n, k, K, rows, g, m);
#endif
  subtract_batch_rows(q, n, k, K, rows, g, m);
}

void gather_batch_rows_host(const double* U, const uint32_t* rows, Index m, const double* q,
                            Index n, int k, double scale, double* out) {
#ifdef DELYAP_HAVE_X86_64_V3
  static const bool v3 = cpu_has_x86_64_v3();
  if (v3) return gather_batch_rows_x86_64_v3(U, rows, m, q, n, k, scale, out);
#endif
  gather_batch_rows(U, rows, m, q, n, k, scale, out);
}

const char* gram_kernel_isa() {
#ifdef DELYAP_HAVE_X86_64_V3
  if (cpu_has_x86_64_v3()) return "x86-64-v3";
#endif
  return "portable";
}

}  // namespace delyap::bindings
