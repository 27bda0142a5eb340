// Mackey–Glass: x' = β x_τ / (1 + x_τ^n) − γ x,  x_τ = x(t − τ), with an optional
// state-dependent lag τ(x) = τ0 + c·x(t) (c = tau_state; the window is the declared max_delay).
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"

namespace delyap {

// x^k for an integer k ≥ 0 by repeated squaring (⌊log2 k⌋ squarings and at most as many
// multiplications: 4 for k = 10, against a general pow several times dearer). The result is
// within a few ulps of std::pow(x, k); signs, zeros, infinities and NaN come out as pow's do.
DELYAP_HD inline double integer_power(double x, unsigned k) {
  double r = 1.0;
  for (double b = x;;) {
    if (k & 1u) r *= b;
    k >>= 1;
    if (!k) break;
    b *= b;
  }
  return r;
}

struct MackeyGlass {
  double beta, gamma, n, tau;
  double tau_state = 0.0;  // c in τ(x) = τ0 + c·x
  double window = 0.0;     // declared max_delay when tau_state ≠ 0
  // n as an integer when it is one (the classic n = 10): x^n then costs a few multiplications
  // instead of a pow per evaluation. Decided once here, not per call.
  unsigned n_int = 0;
  bool n_integral = false;

  // The registry's declaration (dde/rhs/batches.hpp): the parameters in constructor order and
  // the device limits. window is the declared max_delay of a state-dependent lag (0: none).
  static constexpr const char* kParameters[] = {"beta", "gamma", "n", "tau", "tau_state",
                                                "window"};
  static constexpr int kMaxDim = 1, kMaxDelays = 1;

  DELYAP_HD MackeyGlass(double beta_, double gamma_, double n_, double tau_,
                        double tau_state_ = 0.0, double window_ = 0.0)
      : beta(beta_), gamma(gamma_), n(n_), tau(tau_), tau_state(tau_state_), window(window_) {
    // 0 ≤ n ≤ 64: at most 6 squarings, so the product stays within a few ulps of pow (a
    // negative n would divide by a product that may underflow where pow's result does not).
    n_integral = n >= 0.0 && n <= 64.0 && n == std::floor(n);
    n_int = n_integral ? unsigned(n) : 0u;
  }

  DELYAP_HD double power(double x) const {
    return n_integral ? integer_power(x, n_int) : std::pow(x, n);
  }

  DELYAP_HD int dim() const { return 1; }
  DELYAP_HD int n_delays() const { return 1; }
  DELYAP_HD double delay(int) const { return tau; }
  DELYAP_HD bool dependent_delays() const { return tau_state != 0.0; }
  DELYAP_HD double max_delay() const { return window > 0 ? window : tau; }
  DELYAP_HD bool delays(double, const double* x, double* out) const {  // dependent only
    out[0] = tau + tau_state * x[0];
    return true;
  }

  DELYAP_HD bool rhs(double, const double* x, const double* xd, double* out) const {
    const double xt = xd[0];
    out[0] = beta * xt / (1.0 + power(xt)) - gamma * x[0];
    return true;
  }

  // jx = ∂f/∂x (dim × dim), jd = ∂f/∂x(t − τ_k) (n_delays × dim × dim), row-major.
  DELYAP_HD void jacobian(double, const double*, const double* xd, double* jx, double* jd) const {
    const double xt = xd[0];
    const double p = power(xt);
    const double q = 1.0 + p;
    jx[0] = -gamma;
    jd[0] = beta * (1.0 + (1.0 - n) * p) / (q * q);
  }
};

}  // namespace delyap
