// Thin Householder QR of a tall n × k column-major block, in place, host and device:
// on return the block holds the orthonormal factor Q (n × k) with R's diagonal made positive
// (column signs fixed), and r (k × k, column-major, upper) holds R. Written out rather than
// taken from a library so the CUDA kernels run exactly this code.
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"

namespace delyap {

// work: n + k doubles of scratch (Householder scalars and one vector).
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
    for (int c = j + 1; c < k; ++c) {
      double* y = a + c * lda;
      double s = y[j];
      for (Index i = j + 1; i < n; ++i) s += col[i] * y[i];
      s *= beta[j];
      y[j] -= s;
      for (Index i = j + 1; i < n; ++i) y[i] -= s * col[i];
    }
  }
  for (int c = 0; c < k; ++c)
    for (int i = 0; i < k; ++i) r[c * k + i] = i <= c ? a[c * lda + i] : 0.0;
  // Form Q = H_0 … H_{k−1} [I_k; 0] column by column, backwards, reusing the vectors.
  double* v = work + k;  // not needed beyond the vector kept in place
  (void)v;
  for (int j = k - 1; j >= 0; --j) {
    double* col = a + j * lda;
    // Columns c > j already hold Q's partial columns; apply H_j to them and build column j.
    for (int c = j + 1; c < k; ++c) {
      double* y = a + c * lda;
      double s = y[j];
      for (Index i = j + 1; i < n; ++i) s += col[i] * y[i];
      s *= beta[j];
      y[j] -= s;
      for (Index i = j + 1; i < n; ++i) y[i] -= s * col[i];
    }
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
