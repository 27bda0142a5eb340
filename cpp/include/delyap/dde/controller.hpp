// PI step-size controller (Hairer, Nørsett & Wanner II, IV.2; Gustafsson). The error norm it
// reads is built from step_kernels.hpp's terms.
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"
#include "delyap/dde/options.hpp"

namespace delyap {

struct PIController {
  double alpha, beta;
  // β·log(err_prev), err_prev ≥ 1e-4: the previous step's share of the next factor, kept as a
  // logarithm so that accepting a step costs one log and one exp, not two pows (a few percent
  // of the run time with a cheap right-hand side).
  double log_floor;  // log(1e-4)
  double beta_log_err_prev;
  bool last_rejected = false;

  DELYAP_HD explicit PIController(int error_order) {
    const int k = error_order + 1;
    beta = 0.04;
    alpha = 1.0 / k - 0.75 * beta;
    log_floor = std::log(1e-4);
    beta_log_err_prev = beta * log_floor;
  }

  // Factor for the next step after an accepted one with scaled error err ≤ 1:
  // safety · err^(−α) · err_prev^β.
  DELYAP_HD double accept(double err, const SolverOptions& o) {
    double fac = o.max_factor;
    double log_err = log_floor;
    if (err > 0.0) {
      log_err = std::log(err);
      fac = o.safety * std::exp(beta_log_err_prev - alpha * log_err);
    }
    fac = std::fmin(o.max_factor, std::fmax(o.min_factor, fac));
    if (last_rejected) fac = std::fmin(1.0, fac);
    beta_log_err_prev = beta * std::fmax(log_err, log_floor);
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
