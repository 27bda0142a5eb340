// PI step-size controller (Hairer, Nørsett & Wanner II, IV.2; Gustafsson). The error norm it
// reads is built from step_kernels.hpp's terms.
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"
#include "delyap/dde/options.hpp"

namespace delyap {

struct PIController {
  double alpha, beta;
  double err_prev = 1e-4;
  bool last_rejected = false;

  DELYAP_HD explicit PIController(int error_order) {
    const int k = error_order + 1;
    beta = 0.04;
    alpha = 1.0 / k - 0.75 * beta;
  }

  // Factor for the next step after an accepted one with scaled error err ≤ 1.
  DELYAP_HD double accept(double err, const SolverOptions& o) {
    double fac = o.max_factor;
    if (err > 0.0) fac = o.safety * std::pow(err, -alpha) * std::pow(err_prev, beta);
    fac = std::fmin(o.max_factor, std::fmax(o.min_factor, fac));
    if (last_rejected) fac = std::fmin(1.0, fac);
    err_prev = std::fmax(err, 1e-4);
    last_rejected = false;
    return fac;
  }

  // Factor after a rejected step (err > 1, possibly inf).
  DELYAP_HD double reject(double err, const SolverOptions& o) {
    last_rejected = true;
    if (!is_finite(err)) return o.min_factor;
    return std::fmax(o.min_factor, o.safety * std::pow(err, -alpha));
  }
};

}  // namespace delyap
