// The host's dense kernels for i.i.d. matrix products: the portable loops for small d, blocked
// BLAS-3 (Eigen GEMM and blocked Householder QR, lyap/blocked_linalg.hpp) for large d,
// compiled once per x86 ISA level and chosen at load time (as the Gram kernel is), or, for the
// largest d, scipy's BLAS/LAPACK when the bindings found it (scipy_blas.hpp).
#pragma once

#include <algorithm>

#include "delyap/common/work_poll.hpp"
#include "delyap/lyap/iid_product.hpp"

namespace delyap {
struct FortranLapack;  // lyap/blocked_linalg.hpp
}

namespace delyap::bindings {

// Same contracts as delyap::blocked_multiply / blocked_qr.
bool blocked_multiply_host(const double* A, Index d, const double* q, Index k, double* out,
                           const PollRef& poll);
bool blocked_qr_host(double* q, Index n, Index k, double* r, const PollRef& poll);

// Same contracts, on an external Fortran BLAS/LAPACK (lapack_multiply / lapack_qr). The QR's
// workspace is the calling thread's own.
bool lapack_multiply_host(const FortranLapack& f, const double* A, Index d, const double* q,
                          Index k, double* out, const PollRef& poll);
bool lapack_qr_host(const FortranLapack& f, double* q, Index n, Index k, double* r,
                    const PollRef& poll);

// Which build of the blocked kernels this process runs ("x86-64-v4", "x86-64-v3" or
// "portable"), for `delyap info` and the benchmark.
const char* blocked_linalg_isa();

// Below these dimensions the portable loops are as fast as the blocked kernels (baseline
// build, one thread: the GEMM wins from d ≈ 32 on, the blocked QR only from d ≈ 100, since
// below that its panels are as narrow as the matrix).
constexpr int kBlockedMultiplyMinDim = 32;
constexpr int kBlockedQrMinDim = 96;

// Where scipy's OpenBLAS (when found) beats the x86-64-v4 Eigen kernels, one thread each
// (benchmarks/RESULTS.md, issue 12): a few directions (measured at k = 10) wherever the blocked
// kernels run, 1.3–2× faster; many directions only from d ≈ 1000 on (≤ 500 Eigen is ~5 % faster,
// at 1000 they tie, at 1500 OpenBLAS is ~12 % faster; the wide QR stays on Eigen for Ctrl-C,
// see orthonormalize). The choice depends on d and k only, never on the thread count, so
// `threads=` does not change results.
constexpr int kLapackThinColumns = 12;
constexpr int kLapackWideMinDim = 1000;

// The `Dense` policy of run_iid_product on the host. `lapack`: scipy's BLAS/LAPACK, or null
// for the Eigen kernels at every d (make it with scipy_blas.hpp's host_dense).
struct HostDense {
  const FortranLapack* lapack = nullptr;

  bool on_lapack(int d, int k) const {  // the product
    return lapack && (k <= kLapackThinColumns || d >= kLapackWideMinDim);
  }
  // LAPACK's QR is two calls (dgeqrf, dorgqr) that cannot be polled inside: ~0.3 s each at
  // d = k = 1500 on an idle core, seconds when OpenBLAS's threads compete for busy cores, so
  // Ctrl-C would miss its 1 s. Only thin QRs (microseconds) go there; wide ones run the
  // blocked Householder QR, which polls between 48-column panels.
  bool qr_on_lapack(int k) const { return lapack && k <= kLapackThinColumns; }

  template <class Poll>
  bool multiply(const double* A, int d, double* q, int k, double* tmp, Poll& poll) const {
    if (d < kBlockedMultiplyMinDim) return PortableDense{}.multiply(A, d, q, k, tmp, poll);
    const bool done = on_lapack(d, k)
                          ? lapack_multiply_host(*lapack, A, d, q, k, tmp, PollRef::of(poll))
                          : blocked_multiply_host(A, d, q, k, tmp, PollRef::of(poll));
    if (!done) return false;
    std::copy(tmp, tmp + Index(d) * k, q);  // d·k copies next to 2·d²·k flops
    return true;
  }
  template <class Poll>
  bool orthonormalize(double* q, int d, int k, double* r, double* work, Poll& poll) const {
    if (d < kBlockedQrMinDim) return PortableDense{}.orthonormalize(q, d, k, r, work, poll);
    if (qr_on_lapack(k))
      return lapack_qr_host(*lapack, q, d, k, r, PollRef::of(poll));
    return blocked_qr_host(q, d, k, r, PollRef::of(poll));
  }
};

}  // namespace delyap::bindings
