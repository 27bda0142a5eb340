// Runtime ISA dispatch for the blocked dense kernels. A wheel has to run on any x86-64, but
// GEMM and blocked QR are bound by vector width: the same source compiled for x86-64-v3
// (AVX2/FMA) or x86-64-v4 (AVX-512) runs 2–4× faster than the baseline SSE2 build. Those builds
// are dense_blocked_isa.cpp compiled once per level (CMakeLists.txt); their entry points are
// weak references here, so a build without them links and runs the baseline kernels.
#include "dense_blocked.hpp"

#include <vector>

#include "delyap/lyap/blocked_linalg.hpp"

namespace delyap::bindings {

#if defined(__GNUC__) && defined(__x86_64__)
#define DELYAP_DENSE_DISPATCH 1
__attribute__((weak)) bool blocked_multiply_x86_64_v3(const double*, Index, const double*, Index,
                                                      double*, const PollRef&);
__attribute__((weak)) bool blocked_qr_x86_64_v3(double*, Index, Index, double*, const PollRef&);
__attribute__((weak)) bool blocked_multiply_x86_64_v4(const double*, Index, const double*, Index,
                                                      double*, const PollRef&);
__attribute__((weak)) bool blocked_qr_x86_64_v4(double*, Index, Index, double*, const PollRef&);
#endif

namespace {

struct DenseKernels {
  bool (*multiply)(const double*, Index, const double*, Index, double*, const PollRef&);
  bool (*qr)(double*, Index, Index, double*, const PollRef&);
  const char* isa;
};

DenseKernels choose() {
#ifdef DELYAP_DENSE_DISPATCH
  __builtin_cpu_init();
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  if (v4 && blocked_multiply_x86_64_v4 && blocked_qr_x86_64_v4)
    return {blocked_multiply_x86_64_v4, blocked_qr_x86_64_v4, "x86-64-v4"};
  if (v3 && blocked_multiply_x86_64_v3 && blocked_qr_x86_64_v3)
    return {blocked_multiply_x86_64_v3, blocked_qr_x86_64_v3, "x86-64-v3"};
#endif
  return {blocked_multiply, blocked_qr, "portable"};
}

const DenseKernels& kernels() {
  static const DenseKernels k = choose();
  return k;
}

}  // namespace

bool blocked_multiply_host(const double* A, Index d, const double* q, Index k, double* out,
                           const PollRef& poll) {
  return kernels().multiply(A, d, q, k, out, poll);
}

bool blocked_qr_host(double* q, Index n, Index k, double* r, const PollRef& poll) {
  return kernels().qr(q, n, k, r, poll);
}

const char* blocked_linalg_isa() { return kernels().isa; }

bool lapack_multiply_host(const FortranLapack& f, const double* A, Index d, const double* q,
                          Index k, double* out, const PollRef& poll) {
  return lapack_multiply(f, A, d, q, k, out, poll);
}

bool lapack_qr_host(const FortranLapack& f, double* q, Index n, Index k, double* r,
                    const PollRef& poll) {
  // Sized once per (n, k) and thread: a run keeps its shape, and each configuration of a
  // parallel run stays on one worker thread while it runs.
  thread_local std::vector<double> work;
  thread_local Index wn = -1, wk = -1;
  if (n != wn || k != wk) {
    work.resize(size_t(lapack_qr_work(f, n, k)));
    wn = n;
    wk = k;
  }
  return lapack_qr(f, q, n, k, r, work.data(), Index(work.size()), poll);
}

}  // namespace delyap::bindings
