// Error norm and PI step-size controller (Hairer, Nørsett & Wanner II, IV.2; Gustafsson).
#pragma once

#include <cmath>

#include "delyap/common/config.hpp"
#include "delyap/dde/options.hpp"

namespace delyap {

// RMS of v_i / (atol + rtol · max(|a_i|, |b_i|)); +inf when anything is not finite.
DELYAP_HD inline double scaled_rms(const double* v, const double* a, const double* b, int dim,
                                   double rtol, double atol) {
  double sum = 0.0;
  for (int d = 0; d < dim; ++d) {
    const double sc = atol + rtol * std::fmax(std::fabs(a[d]), std::fabs(b[d]));
    const double r = v[d] / sc;
    sum += r * r;
  }
  const double n = std::sqrt(sum / dim);
  return is_finite(n) ? n : HUGE_VAL;
}

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
