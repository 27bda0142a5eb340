// Thin Householder QR of a tall n × k column-major block, in place, host and device:
// on return the block holds the orthonormal factor Q (n × k) with R's diagonal made positive
// (column signs fixed), and r (k × k, column-major, upper) holds R. Written out rather than
// taken from a library so the CUDA kernels run exactly this code.
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"

namespace delyap {

// y ← (I − β v vᵀ) y on rows j…n−1, with v = (1, v[j+1:]) stored below the diagonal.
DELYAP_HD inline void apply_reflector(const double* v, double beta, Index j, Index n, double* y) {
  double s = y[j];
  for (Index i = j + 1; i < n; ++i) s += v[i] * y[i];
  s *= beta;
  y[j] -= s;
  for (Index i = j + 1; i < n; ++i) y[i] -= s * v[i];
}

// work: at least k doubles of scratch (the Householder scalars).
DELYAP_HD inline void householder_qr(double* a, Index lda, Index n, int k, double* r,
                                     double* work) {
  double* beta = work;  // k Householder scalars; vectors are kept below the diagonal
  for (int j = 0; j < k; ++j) {
    double* col = a + j * lda;
    double norm2 = 0.0;
    for (Index i = j; i < n; ++i) norm2 += col[i] * col[i];
    const double norm = std::sqrt(norm2);
    const double alpha = col[j] >= 0 ? -norm : norm;  // avoids cancellation
    if (norm == 0.0) {
      beta[j] = 0.0;
      continue;
    }
    const double v0 = col[j] - alpha;
    // v = (v0, col[j+1:]) scaled so v[0] = 1; H = I − β v vᵀ.
    for (Index i = j + 1; i < n; ++i) col[i] /= v0;
    beta[j] = -v0 / alpha;
    col[j] = alpha;
    for (int c = j + 1; c < k; ++c) apply_reflector(col, beta[j], j, n, a + c * lda);
  }
  for (int c = 0; c < k; ++c)
    for (int i = 0; i < k; ++i) r[c * k + i] = i <= c ? a[c * lda + i] : 0.0;
  // Form Q = H_0 … H_{k−1} [I_k; 0] column by column, backwards, reusing the vectors.
  for (int j = k - 1; j >= 0; --j) {
    double* col = a + j * lda;
    // Columns c > j already hold Q's partial columns; apply H_j to them and build column j.
    for (int c = j + 1; c < k; ++c) apply_reflector(col, beta[j], j, n, a + c * lda);
    // Column j: H_j e_j = e_j − β v (v_j = 1).
    const double b = beta[j];
    for (Index i = j + 1; i < n; ++i) col[i] = -b * col[i];
    col[j] = 1.0 - b;
    for (Index i = 0; i < j; ++i) col[i] = 0.0;
  }
  // Positive diagonal: flip Q's column and R's row together.
  for (int j = 0; j < k; ++j) {
    if (r[j * k + j] < 0) {
      for (int c = j; c < k; ++c) r[c * k + j] = -r[c * k + j];
      for (Index i = 0; i < n; ++i) a[j * lda + i] = -a[j * lda + i];
    }
  }
}

}  // namespace delyap
