// The host's dense kernels for i.i.d. matrix products: the portable loops for small d, blocked
// BLAS-3 (Eigen GEMM and blocked Householder QR, lyap/blocked_linalg.hpp) for large d,
// compiled once per x86 ISA level and chosen at load time (as the Gram kernel is).
#pragma once

#include <algorithm>

#include "delyap/common/work_poll.hpp"
#include "delyap/lyap/iid_product.hpp"

namespace delyap::bindings {

// Same contracts as delyap::blocked_multiply / blocked_qr.
bool blocked_multiply_host(const double* A, Index d, const double* q, Index k, double* out,
                           const PollRef& poll);
bool blocked_qr_host(double* q, Index n, Index k, double* r, const PollRef& poll);

// Which build of the blocked kernels this process runs ("x86-64-v4", "x86-64-v3" or
// "portable"), for `delyap info` and the benchmark.
const char* blocked_linalg_isa();

// Below these dimensions the portable loops are as fast as the blocked kernels (baseline
// build, one thread: the GEMM wins from d ≈ 32 on, the blocked QR only from d ≈ 100, since
// below that its panels are as narrow as the matrix).
constexpr int kBlockedMultiplyMinDim = 32;
constexpr int kBlockedQrMinDim = 96;

// The `Dense` policy of run_iid_product on the host.
struct HostDense {
  template <class Poll>
  bool multiply(const double* A, int d, double* q, int k, double* tmp, Poll& poll) const {
    if (d < kBlockedMultiplyMinDim) return PortableDense{}.multiply(A, d, q, k, tmp, poll);
    if (!blocked_multiply_host(A, d, q, k, tmp, PollRef::of(poll))) return false;
    std::copy(tmp, tmp + Index(d) * k, q);  // d·k copies next to 2·d²·k flops
    return true;
  }
  template <class Poll>
  bool orthonormalize(double* q, int d, int k, double* r, double* work, Poll& poll) const {
    if (d < kBlockedQrMinDim) return PortableDense{}.orthonormalize(q, d, k, r, work, poll);
    return blocked_qr_host(q, d, k, r, PollRef::of(poll));
  }
};

}  // namespace delyap::bindings
