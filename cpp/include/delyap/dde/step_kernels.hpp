// The per-component arithmetic of one Runge–Kutta step, as functors of the component index d
// that an executor (common/exec.hpp) runs: a plain loop for the CPU and the one-thread-per-
// trajectory GPU kernels, one GPU thread per component for a single large trajectory. They are
// the only place this arithmetic is written, so every path rounds the same way. Coefficients
// are held by value: a device executor copies the functor into kernel parameters, where a
// pointer into a host tableau would be unreadable.
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"
#include "delyap/dde/tableau.hpp"

namespace delyap {

// Σ_{j<n} w_j k[j·dim + d]. On the device the loop runs to the compile-time kMaxStages and
// unrolls, so the weights (held by value) stay in registers instead of local memory; the
// host keeps the plain loop. Both add the same terms in the same order.
DELYAP_HD inline double stage_sum(const double* w, int n, const double* k, Index dim, Index d) {
  double acc = 0.0;
#if defined(__CUDA_ARCH__)
#pragma unroll
  for (int j = 0; j < kMaxStages; ++j)
    if (j < n) acc += w[j] * k[j * dim + d];
#else
  for (int j = 0; j < n; ++j) acc += w[j] * k[j * dim + d];
#endif
  return acc;
}

struct CopyElements {
  double* dst;
  const double* src;
  DELYAP_HD void operator()(Index d) const { dst[d] = src[d]; }
};

// out[d] = x[d] + h Σ_{j<n} w_j k[j·dim + d]: a stage state (w = a row of the tableau) or the
// new state (w = b).
struct WeightedStep {
  const double* x;
  const double* k;
  double w[kMaxStages];
  int n;
  Index dim;
  double h;
  double* out;
  DELYAP_HD void operator()(Index d) const { out[d] = x[d] + h * stage_sum(w, n, k, dim, d); }
};

// out[d] = Σ_{j<n} w_j k[j·dim + d]: one row of a method's continuous extension.
struct WeightedSum {
  const double* k;
  double w[kMaxStages];
  int n;
  Index dim;
  double* out;
  DELYAP_HD void operator()(Index d) const { out[d] = stage_sum(w, n, k, dim, d); }
};

// Cubic Hermite coefficients (history.hpp's form) of component d; rows m ≥ 3 are zero.
struct HermiteCoefficients {
  const double *x0, *f0, *x1, *f1;
  double h;
  Index dim;
  int n_coef;
  double* c;
  DELYAP_HD void operator()(Index d) const {
    const double slope = (x1[d] - x0[d]) / h;
    c[d] = f0[d];
    c[dim + d] = 3.0 * slope - 2.0 * f0[d] - f1[d];
    c[2 * dim + d] = f0[d] + f1[d] - 2.0 * slope;
    for (int m = 3; m < n_coef; ++m) c[m * dim + d] = 0.0;
  }
};

// The error-norm scale of component d: atol + rtol · max(|a_d|, |b_d|).
DELYAP_HD inline double error_scale(double a, double b, double rtol, double atol) {
  return atol + rtol * std::fmax(std::fabs(a), std::fabs(b));
}

// err / scale, 0 for an exactly zero error: with atol = 0 a component that is exactly 0 has
// scale 0, and 0/0 (NaN) failed the run at t0 as non_finite.
DELYAP_HD inline double scaled_error(double err, double scale) {
  return err == 0.0 ? 0.0 : err / scale;
}

// ((v_d − w_d) / scale_d)², w optional: a summand of an RMS error norm.
struct ScaledSquare {
  const double* v;
  const double* w;  // nullptr: v alone
  const double *a, *b;
  double rtol, atol;
  DELYAP_HD double operator()(Index d) const {
    const double r = scaled_error(w ? v[d] - w[d] : v[d], error_scale(a[d], b[d], rtol, atol));
    return r * r;
  }
};

// (h Σ_j e_j k[j·dim + d] / scale_d)²: a summand of the embedded error estimate's norm.
struct ScaledStepError {
  const double* k;
  double e[kMaxStages];
  int n;
  Index dim;
  double h;
  const double *a, *b;
  double rtol, atol;
  DELYAP_HD double operator()(Index d) const {
    const double r =
        scaled_error(h * stage_sum(e, n, k, dim, d), error_scale(a[d], b[d], rtol, atol));
    return r * r;
  }
};

struct CountNonFinite {
  const double* v;
  DELYAP_HD double operator()(Index d) const { return is_finite(v[d]) ? 0.0 : 1.0; }
};

// sqrt(sum / dim), or +inf when anything was not finite.
DELYAP_HD inline double rms_of_sum(double sum, Index dim) {
  const double n = std::sqrt(sum / double(dim));
  return is_finite(n) ? n : HUGE_VAL;
}

// Component d of x(t_i + θh) = x_i + h Σ_m c_m θ^(m+1) (Horner), x and c read with `stride`.
DELYAP_HD inline double polynomial_component(const double* x, const double* c, int n_coef,
                                             Index dim, double h, double theta, Index d,
                                             Index stride) {
  double acc = c[((n_coef - 1) * dim + d) * stride];
  for (int m = n_coef - 2; m >= 0; --m) acc = c[(m * dim + d) * stride] + theta * acc;
  return x[d * stride] + h * theta * acc;
}

// out[d] = x[d] + s · f[d]: the linear extrapolation past the last anchor.
struct LinearExtrapolation {
  const double *x, *f;
  double s;
  double* out;
  DELYAP_HD void operator()(Index d) const { out[d] = x[d] + s * f[d]; }
};

// The history's reads and writes (history.hpp) for every executor and storage layout: `layout`
// gives the element stride of the history's storage (a compile-time 1 for contiguous storage,
// the number of trajectories for interleaved storage), the other side is contiguous.

// dst[i · stride] = src[i]: coefficients into a history slot.
template <class Layout>
struct StridedStore {
  double* dst;
  const double* src;
  Layout layout;
  DELYAP_HD void operator()(Index i) const { dst[i * layout.stride()] = src[i]; }
};

// dst[d] = src[d · stride]: a stored state read back.
template <class Layout>
struct StridedLoad {
  double* dst;
  const double* src;
  Layout layout;
  DELYAP_HD void operator()(Index d) const { dst[d] = src[d * layout.stride()]; }
};

// An anchor's state and derivative into a history slot (x, f: the slot's component 0).
template <class Layout>
struct StoreAnchor {
  double *x, *f;
  const double *xi, *fi;
  Layout layout;
  DELYAP_HD void operator()(Index d) const {
    x[d * layout.stride()] = xi[d];
    f[d * layout.stride()] = fi[d];
  }
};

// One interval's polynomial at θ (polynomial_component) from strided storage.
template <class Layout>
struct StridedPolynomialRead {
  const double* x;
  const double* c;
  int n_coef;
  Index dim;
  double h, theta;
  double* out;
  Layout layout;
  DELYAP_HD void operator()(Index d) const {
    out[d] = polynomial_component(x, c, n_coef, dim, h, theta, d, layout.stride());
  }
};

// Its derivative in time, Σ_m (m+1) c_m θ^m (Horner).
template <class Layout>
struct StridedPolynomialDerivative {
  const double* c;
  int n_coef;
  Index dim;
  double theta;
  double* out;
  Layout layout;
  DELYAP_HD void operator()(Index d) const {
    const Index st = layout.stride();
    double acc = n_coef * c[((n_coef - 1) * dim + d) * st];
    for (int m = n_coef - 2; m >= 0; --m) acc = (m + 1) * c[(m * dim + d) * st] + theta * acc;
    out[d] = acc;
  }
};

// out[d] = x[d · stride] + s · f[d · stride]: the linear extrapolation past the last anchor.
template <class Layout>
struct StridedExtrapolation {
  const double *x, *f;
  double s;
  double* out;
  Layout layout;
  DELYAP_HD void operator()(Index d) const {
    out[d] = x[d * layout.stride()] + s * f[d * layout.stride()];
  }
};

}  // namespace delyap
