// The logs of a re-orthonormalisation's R_jj, and when a window of products has lost a
// direction to rounding.
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"
#include "delyap/common/status.hpp"

namespace delyap {

// Products are re-orthonormalised every few steps (renorm_interval). Within a window of more
// than one product, a direction of a non-normal product merges with the ones before it in
// rounding, or underflows: its column then keeps only rounding-size content orthogonal to the
// others, an R_jj of rounding size against the column's own size, and log R_jj is noise (or
// −∞) where the exact product is regular (a rotated diag(2, 0.5) gave −∞ over 30 steps). The
// kept part must be at least kWindowKept of the column (its log then keeps ≈ 4 digits per
// window). A window of one product is exempt: a zero R_jj there is a singular matrix's exact
// image, the exponent −∞. Normal products (GD's symmetric maps) keep their columns orthogonal
// and pass at any spread.
constexpr double kWindowKept = 1e-12;

// Before the QR: the largest |entry| of each of the k columns of q (column-major, n rows).
DELYAP_HD inline void column_scales(const double* q, Index n, int k, double* scale) {
  for (int j = 0; j < k; ++j) {
    double m = 0.0;
    for (Index i = 0; i < n; ++i) m = std::fmax(m, std::fabs(q[Index(j) * n + i]));
    scale[j] = m;
  }
}

// Whether R_jj keeps a direction whose column had largest |entry| `scale` before the QR.
DELYAP_HD inline bool direction_kept(double rjj, double scale) {
  return rjj > kWindowKept * scale;
}

// After the QR of a window of `products` products: logs[j] = log R_jj (R's diagonal is ≥ 0),
// written over the column scales logs held. NonFinite: an R_jj is not finite (the first
// cause, whatever else happened); LostDirection: (more than one product) a direction was lost
// within the window.
DELYAP_HD inline Status window_logs(const double* r, int k, Index products, double* logs) {
  Status st = Status::Success;
  for (int j = 0; j < k; ++j) {
    const double rjj = r[j * k + j];
    if (!is_finite(rjj))
      st = Status::NonFinite;
    else if (products > 1 && !direction_kept(rjj, logs[j]) && st == Status::Success)
      st = Status::LostDirection;
    logs[j] = std::log(rjj);
  }
  return st;
}

}  // namespace delyap
