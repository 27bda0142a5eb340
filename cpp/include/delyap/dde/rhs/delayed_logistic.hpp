// The delayed logistic (Hutchinson) equation x' = r x (1 − x(t − τ)/K): a single population
// whose growth is limited by its size one maturation time τ ago. Its equilibrium x = K loses
// stability at rτ = π/2 in a supercritical Hopf bifurcation (the linearisation y' = −r y(t − τ)
// has the characteristic roots λ = W_k(−rτ)/τ).
#pragma once

#include "delyap/common/config.hpp"

namespace delyap {

struct DelayedLogistic {
  double r, K, tau;

  // The registry's declaration (dde/rhs/batches.hpp): the parameters in constructor order, as
  // Python passes them, and the device limits (the fixed-storage scratch sizes).
  static constexpr const char* kParameters[] = {"r", "K", "tau"};
  static constexpr int kMaxDim = 1, kMaxDelays = 1;

  DELYAP_HD int dim() const { return 1; }
  DELYAP_HD int n_delays() const { return 1; }
  DELYAP_HD double delay(int) const { return tau; }

  DELYAP_HD bool rhs(double, const double* x, const double* xd, double* out) const {
    out[0] = r * x[0] * (1.0 - xd[0] / K);
    return true;
  }

  // jx = ∂f/∂x, jd = ∂f/∂x(t − τ) (1 × 1 each).
  DELYAP_HD void jacobian(double, const double* x, const double* xd, double* jx,
                          double* jd) const {
    jx[0] = r * (1.0 - xd[0] / K);
    jd[0] = -r * x[0] / K;
  }
};

}  // namespace delyap
