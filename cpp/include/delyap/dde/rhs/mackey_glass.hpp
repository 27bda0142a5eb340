// Mackey–Glass: x' = β x_τ / (1 + x_τ^n) − γ x,  x_τ = x(t − τ), with an optional
// state-dependent lag τ(x) = τ0 + c·x(t) (c = tau_state; the window is the declared max_delay).
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"

namespace delyap {

struct MackeyGlass {
  double beta, gamma, n, tau;
  double tau_state = 0.0;  // c in τ(x) = τ0 + c·x
  double window = 0.0;     // declared max_delay when tau_state ≠ 0

  DELYAP_HD int dim() const { return 1; }
  DELYAP_HD int n_delays() const { return 1; }
  DELYAP_HD double delay(int) const { return tau; }
  DELYAP_HD bool dependent_delays() const { return tau_state != 0.0; }
  DELYAP_HD double max_delay() const { return window > 0 ? window : tau; }
  DELYAP_HD bool delays(double, const double* x, double* out) const {
    out[0] = tau + tau_state * x[0];
    return true;
  }

  DELYAP_HD bool rhs(double, const double* x, const double* xd, double* out) const {
    const double xt = xd[0];
    out[0] = beta * xt / (1.0 + std::pow(xt, n)) - gamma * x[0];
    return true;
  }

  // jx = ∂f/∂x (dim × dim), jd = ∂f/∂x(t − τ_k) (n_delays × dim × dim), row-major.
  DELYAP_HD void jacobian(double, const double*, const double* xd, double* jx, double* jd) const {
    const double xt = xd[0];
    const double p = std::pow(xt, n);
    const double q = 1.0 + p;
    jx[0] = -gamma;
    jd[0] = beta * (1.0 + (1.0 - n) * p) / (q * q);
  }
};

}  // namespace delyap
