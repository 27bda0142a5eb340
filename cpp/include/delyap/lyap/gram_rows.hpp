// The inner kernels of the Gram-reduced SGD step: Q ← Q − Σ_a K[row_a, :]ᵀ ⊗ G[a, :] for the
// batch's rows of K. It streams B·c rows of K (N doubles each) per step and is the whole cost of
// the map at large batches, so it is blocked for registers: four rows of K at a time against up
// to four direction columns, each K value and each Q value loaded once per block. The loops
// are plain so the compiler vectorises them for whatever ISA it targets: the CPU bindings
// compile this header a second time with -march=x86-64-v3 inside another inline namespace
// (DELYAP_ISA_NAMESPACE, so the two builds never share a symbol) and pick one at run time;
// see cpp/src/gram_row_update.cpp.
#pragma once

#include <cstdint>

#include "delyap/common/config.hpp"

#ifndef DELYAP_ISA_NAMESPACE
#define DELYAP_ISA_NAMESPACE portable_isa
#endif

namespace delyap {
inline namespace DELYAP_ISA_NAMESPACE {

namespace gram_detail {

// Q[:, j0 : j0 + C] −= Σ_{a < R} K_row(a) ⊗ G[a, j0 : j0 + C]   (Q column-major, G row-major k)
// for the entries i = i0, i0 + di, … : a CUDA block splits them over its threads (kStrided);
// the host takes them all as one unit-stride loop it can vectorise.
template <int R, int C, bool kStrided>
DELYAP_HD inline void subtract_block(double* __restrict__ q, Index n, int k, const double* K,
                                     const uint32_t* rows, const double* g, int j0, Index i0,
                                     Index di) {
  double gg[R][C];
  const double* kr[R];
  for (int a = 0; a < R; ++a) {
    kr[a] = K + Index(rows[a]) * n;
    for (int j = 0; j < C; ++j) gg[a][j] = g[a * k + j0 + j];
  }
  // Host: start and stride are compile-time constants, so the loop vectorises cleanly.
  const Index start = kStrided ? i0 : 0, step = kStrided ? di : 1;
  for (Index i = start; i < n; i += step) {
    double ka[R];
    for (int a = 0; a < R; ++a) ka[a] = kr[a][i];
    for (int j = 0; j < C; ++j) {
      double s = 0.0;
      for (int a = 0; a < R; ++a) s += gg[a][j] * ka[a];
      q[Index(j0 + j) * n + i] -= s;
    }
  }
}

template <int R, bool kStrided>
DELYAP_HD inline void subtract_rows_all_columns(double* q, Index n, int k, const double* K,
                                                const uint32_t* rows, const double* g, Index i0,
                                                Index di) {
  int j = 0;
  for (; j + 4 <= k; j += 4) subtract_block<R, 4, kStrided>(q, n, k, K, rows, g, j, i0, di);
  switch (k - j) {
    case 3: subtract_block<R, 3, kStrided>(q, n, k, K, rows, g, j, i0, di); break;
    case 2: subtract_block<R, 2, kStrided>(q, n, k, K, rows, g, j, i0, di); break;
    case 1: subtract_block<R, 1, kStrided>(q, n, k, K, rows, g, j, i0, di); break;
    default: break;
  }
}

template <bool kStrided>
DELYAP_HD inline void subtract_all_rows(double* q, Index n, int k, const double* K,
                                        const uint32_t* rows, const double* g, Index m, Index i0,
                                        Index di) {
  Index r = 0;
  for (; r + 4 <= m; r += 4)
    subtract_rows_all_columns<4, kStrided>(q, n, k, K, rows + r, g + r * k, i0, di);
  for (; r < m; ++r)
    subtract_rows_all_columns<1, kStrided>(q, n, k, K, rows + r, g + r * k, i0, di);
}

}  // namespace gram_detail

// Q (n × k, column-major) −= Σ_{r < m} K[rows[r], :]ᵀ ⊗ G[r, :] with G row-major m × k, on
// the entries i = i0, i0 + di, … of every direction.
DELYAP_HD inline void subtract_batch_rows(double* q, Index n, int k, const double* K,
                                          const uint32_t* rows, const double* g, Index m,
                                          Index i0 = 0, Index di = 1) {
  if (di == 1)
    gram_detail::subtract_all_rows<false>(q, n, k, K, rows, g, m, i0, di);
  else
    gram_detail::subtract_all_rows<true>(q, n, k, K, rows, g, m, i0, di);
}

// Reduced coordinates' gather: out[r, j] = scale · U[rows[r], :] · Q[:, j] for the rows
// r = r0, r0 + dr, … (U row-major n_rows × n, Q column-major n × k). Four directions share each
// load of U's row; the sums run over i in order, so a build that may reassociate (the x86-64-v3
// one) vectorises them.
DELYAP_HD inline void gather_batch_rows(const double* U, const uint32_t* rows, Index m,
                                        const double* q, Index n, int k, double scale,
                                        double* out, Index r0 = 0, Index dr = 1) {
  for (Index r = r0; r < m; r += dr) {
    const double* ur = U + Index(rows[r]) * n;
    int j = 0;
    for (; j + 4 <= k; j += 4) {
      const double *q0 = q + Index(j) * n, *q1 = q0 + n, *q2 = q1 + n, *q3 = q2 + n;
      double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
      for (Index i = 0; i < n; ++i) {
        const double u = ur[i];
        a0 += u * q0[i];
        a1 += u * q1[i];
        a2 += u * q2[i];
        a3 += u * q3[i];
      }
      out[r * k + j] = scale * a0;
      out[r * k + j + 1] = scale * a1;
      out[r * k + j + 2] = scale * a2;
      out[r * k + j + 3] = scale * a3;
    }
    for (; j < k; ++j) {
      const double* qj = q + Index(j) * n;
      double acc = 0.0;
      for (Index i = 0; i < n; ++i) acc += ur[i] * qj[i];
      out[r * k + j] = scale * acc;
    }
  }
}

// The default row update: the portable kernel compiled for the target at hand (used on the
// device and by any host caller that does not bring an ISA-dispatched one).
struct PortableRowUpdate {
  DELYAP_HD void operator()(double* q, Index n, int k, const double* K, const uint32_t* rows,
                            const double* g, Index m, Index i0 = 0, Index di = 1) const {
    subtract_batch_rows(q, n, k, K, rows, g, m, i0, di);
  }
  DELYAP_HD void gather(const double* U, const uint32_t* rows, Index m, const double* q,
                        Index n, int k, double scale, double* out, Index r0 = 0,
                        Index dr = 1) const {
    gather_batch_rows(U, rows, m, q, n, k, scale, out, r0, dr);
  }
};

}  // namespace DELYAP_ISA_NAMESPACE
}  // namespace delyap
