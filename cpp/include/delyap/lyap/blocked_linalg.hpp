// Host-only blocked (BLAS-3) kernels for large Lyapunov products, on Eigen: the product of a
// d × d matrix with the k directions as GEMM panels, and a blocked Householder QR (panels of
// kPanel reflectors applied to the trailing columns as one block reflector I − V T Vᵀ) that
// forms the thin Q in place, as LAPACK's geqrf + orgqr do. At d ≳ 50 these run several times
// faster than the portable column loops (householder.hpp), which stay in use on the device
// and for small d.
//
// Eigen's driver loops are re-written here (on its internal panel routines) only so that the
// cancel flag is charged after every panel: one QR at d = 1500 is ~10^10 flops.
//
// The same two operations can instead run on an external Fortran BLAS/LAPACK handed in as plain
// function pointers (FortranLapack; the bindings take scipy's, the OpenBLAS numpy users already
// run): dgemm in the same poll-sized panels, dgeqrf + dorgqr for the QR.
//
// Built once per ISA level (as gram_rows.hpp): a file compiled for x86-64-v3 / v4 defines
// DELYAP_ISA_NAMESPACE, and renames namespace Eigen before including this header, so that no
// symbol of it can be confused by the linker with the baseline build.
#pragma once

#include <Eigen/Core>
#include <Eigen/Householder>
#include <Eigen/QR>
#include <cmath>
#include <stdexcept>

#include "delyap/common/config.hpp"
#include "delyap/common/work_poll.hpp"

#ifndef DELYAP_ISA_NAMESPACE
#define DELYAP_ISA_NAMESPACE portable_isa
#endif

namespace delyap {

#ifndef DELYAP_FORTRAN_LAPACK_DEFINED
#define DELYAP_FORTRAN_LAPACK_DEFINED
// Entry points of an LP64 Fortran BLAS/LAPACK (every argument by pointer, column-major), with
// the exact prototypes scipy.linalg.cython_blas / cython_lapack export (non-const pointers).
struct FortranLapack {
  void (*dgemm)(char* transa, char* transb, int* m, int* n, int* k, double* alpha, double* a,
                int* lda, double* b, int* ldb, double* beta, double* c, int* ldc);
  void (*dgeqrf)(int* m, int* n, double* a, int* lda, double* tau, double* work, int* lwork,
                 int* info);
  void (*dorgqr)(int* m, int* n, int* k, double* a, int* lda, double* tau, double* work,
                 int* lwork, int* info);
};
#endif

inline namespace DELYAP_ISA_NAMESPACE {

namespace blocked_detail {
using ColMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr Index kPanel = 48;  // Eigen's own choice for HouseholderQR (32–96 run alike here)
constexpr Index kThinColumns = 12;
// Not std::min/max: an ISA build must not emit std:: template instances (weak symbols the
// linker could hand to the baseline build).
inline Index lo(Index a, Index b) { return a < b ? a : b; }
inline Index hi(Index a, Index b) { return a < b ? b : a; }
}  // namespace blocked_detail

// out ← A q: A is d × d row-major, q and out are d × k column-major (distinct). Charges `poll`
// per panel of columns; returns false (out partly written) when the run must stop.
inline bool blocked_multiply(const double* A, Index d, const double* q, Index k, double* out,
                             const PollRef& poll) {
  using namespace blocked_detail;
  Eigen::Map<const RowMat> a(A, d, d);
  Eigen::Map<const ColMat> x(q, d, k);
  Eigen::Map<ColMat> y(out, d, k);
  if (k <= kThinColumns) {
    // A few directions: row by row, each row of A read once and never packed (GEMM would
    // copy all of A for a product of ≤ kThinColumns columns: d = 1500, k = 10 runs 1.3–1.7×
    // faster this way).
    const Index rows = blocked_detail::hi(1, poll_chunk(2.0 * double(d) * double(k), kBlockedSpeedup));
    for (Index i0 = 0; i0 < d; i0 += rows) {
      const Index h = blocked_detail::lo(rows, d - i0);
      for (Index i = i0; i < i0 + h; ++i) y.row(i).noalias() = a.row(i) * x;
      if (poll(2.0 * double(h) * double(d) * double(k))) return false;
    }
    return true;
  }
  // Each panel re-packs A: panels no narrower than 16 columns, and as wide as the poll rule
  // lets blocked code go (d = 1500: ~120 columns).
  const Index width =
      blocked_detail::hi(16, poll_chunk(2.0 * double(d) * double(d), kBlockedSpeedup));
  for (Index c0 = 0; c0 < k; c0 += width) {
    const Index w = blocked_detail::lo(width, k - c0);
    y.middleCols(c0, w).noalias() = a * x.middleCols(c0, w);
    if (poll(2.0 * double(d) * double(d) * double(w))) return false;
  }
  return true;
}

// Thin QR of q (n × k column-major, k ≤ n) in place: q becomes Q (orthonormal columns), r
// (k × k column-major, upper) receives R, with diag(R) ≥ 0 (Q's column and R's row flipped
// together), the convention of householder_qr. Returns false when the run must stop (q is then
// unspecified).
inline bool blocked_qr(double* q, Index n, Index k, double* r, const PollRef& poll) {
  using namespace blocked_detail;
  namespace ei = Eigen::internal;
  Eigen::Map<ColMat> a(q, n, k);
  Eigen::VectorXd hc(k), temp(k);
  // Factor: panel by panel, the trailing columns updated with the panel's block reflector.
  for (Index k0 = 0; k0 < k; k0 += kPanel) {
    const Index bs = blocked_detail::lo(kPanel, k - k0), rows = n - k0, trailing = k - k0 - bs;
    auto panel = a.block(k0, k0, rows, bs);
    auto h = hc.segment(k0, bs);
    ei::householder_qr_inplace_unblocked(panel, h, temp.data());
    if (trailing) {
      auto rest = a.block(k0, k0 + bs, rows, trailing);
      ei::apply_block_householder_on_the_left(rest, panel, h, false);  // Hᵀ: H_k0 first
    }
    if (poll(2.0 * double(rows) * double(bs) * double(bs + 2 * trailing))) return false;
  }
  Eigen::Map<ColMat> rr(r, k, k);
  rr = a.topRows(k).triangularView<Eigen::Upper>();
  // Q = H_0 ⋯ H_{k−1} [I; 0], built backwards panel by panel: the columns right of a panel
  // already hold H_{k0+bs} ⋯ H_{k−1} [I; 0] (zero above row k0 + bs); the panel's own columns
  // start as identity columns, then the panel's block reflector is applied to all of them.
  ColMat v;
  for (Index k0 = ((k - 1) / kPanel) * kPanel; k0 >= 0; k0 -= kPanel) {
    const Index bs = blocked_detail::lo(kPanel, k - k0), rows = n - k0, cols = k - k0;
    v = a.block(k0, k0, rows, bs);  // the reflectors (unit lower part), before overwriting
    a.block(0, k0, n, bs).setZero();
    for (Index j = 0; j < bs; ++j) a(k0 + j, k0 + j) = 1.0;
    auto target = a.block(k0, k0, rows, cols);
    ei::apply_block_householder_on_the_left(target, v, hc.segment(k0, bs), true);  // H
    if (poll(4.0 * double(rows) * double(bs) * double(cols))) return false;
  }
  for (Index j = 0; j < k; ++j) {
    if (rr(j, j) < 0) {
      rr.row(j) = -rr.row(j);
      a.col(j) = -a.col(j);
    }
  }
  return true;
}

// blocked_multiply on `f`'s dgemm, in the same poll-sized pieces (rows of A for a few
// directions, where a call per column panel would re-pack all of A; column panels otherwise).
inline bool lapack_multiply(const FortranLapack& f, const double* A, Index d, const double* q,
                            Index k, double* out, const PollRef& poll) {
  using namespace blocked_detail;
  char t = 'T', nt = 'N';
  double one = 1.0, zero = 0.0;
  int di = int(d), ki = int(k);
  // A is row-major, so it is Aᵀ to column-major Fortran: out = (Aᵀ)ᵀ q.
  double* a = const_cast<double*>(A);  // dgemm reads A and q only
  double* x = const_cast<double*>(q);
  if (k <= kThinColumns) {
    const Index rows = hi(1, poll_chunk(2.0 * double(d) * double(k), kBlockedSpeedup));
    for (Index i0 = 0; i0 < d; i0 += rows) {
      int h = int(lo(rows, d - i0));
      f.dgemm(&t, &nt, &h, &ki, &di, &one, a + i0 * d, &di, x, &di, &zero, out + i0, &di);
      if (poll(2.0 * double(h) * double(d) * double(k))) return false;
    }
    return true;
  }
  const Index width = hi(16, poll_chunk(2.0 * double(d) * double(d), kBlockedSpeedup));
  for (Index c0 = 0; c0 < k; c0 += width) {
    int w = int(lo(width, k - c0));
    f.dgemm(&t, &nt, &di, &w, &di, &one, a, &di, x + c0 * d, &di, &zero, out + c0 * d, &di);
    if (poll(2.0 * double(d) * double(d) * double(w))) return false;
  }
  return true;
}

// Doubles of `work` lapack_qr needs for an n × k matrix: tau, then dgeqrf's and dorgqr's
// optimal workspace (asked from the library).
inline Index lapack_qr_work(const FortranLapack& f, Index n, Index k) {
  int m = int(n), c = int(k), lwork = -1, info = 0;
  double q1 = 0.0, q2 = 0.0, dummy = 0.0;
  f.dgeqrf(&m, &c, &dummy, &m, &dummy, &q1, &lwork, &info);
  f.dorgqr(&m, &c, &c, &dummy, &m, &dummy, &q2, &lwork, &info);
  using namespace blocked_detail;
  return k + hi(hi(Index(q1), Index(q2)), hi(1, k));
}

// blocked_qr on `f`'s dgeqrf + dorgqr (same contract: Q in place, R upper with diag(R) ≥ 0).
// Each is one call, so the flag is read after each: ≤ ~5 GFlop between reads at d = 1500,
// a fraction of a second. work: lapack_qr_work(f, n, k) doubles.
inline bool lapack_qr(const FortranLapack& f, double* q, Index n, Index k, double* r,
                      double* work, Index lwork, const PollRef& poll) {
  int m = int(n), c = int(k), lw = int(lwork - k), info = 0;
  double* tau = work;
  f.dgeqrf(&m, &c, q, &m, tau, work + k, &lw, &info);
  if (info != 0) throw std::logic_error("dgeqrf: invalid argument");
  const double nk2 = double(n) * double(k) * double(k), k3 = double(k) * double(k) * double(k);
  if (poll(2.0 * nk2 - 2.0 * k3 / 3.0)) return false;
  for (Index j = 0; j < k; ++j)
    for (Index i = 0; i < k; ++i) r[j * k + i] = i <= j ? q[j * n + i] : 0.0;
  f.dorgqr(&m, &c, &c, q, &m, tau, work + k, &lw, &info);
  if (info != 0) throw std::logic_error("dorgqr: invalid argument");
  if (poll(2.0 * nk2 - 2.0 * k3 / 3.0)) return false;
  for (Index j = 0; j < k; ++j) {
    if (r[j * k + j] < 0) {
      for (Index c2 = j; c2 < k; ++c2) r[c2 * k + j] = -r[c2 * k + j];
      for (Index i = 0; i < n; ++i) q[j * n + i] = -q[j * n + i];
    }
  }
  return true;
}

}  // namespace DELYAP_ISA_NAMESPACE
}  // namespace delyap
