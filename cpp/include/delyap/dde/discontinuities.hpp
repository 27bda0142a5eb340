// Discontinuity tracking for constant delays: a derivative jump at t0 reappears at
// t0 + Σ k_i τ_i, one order smoother per delay added, so only sums of at most
// (method order + 1) delays can still hurt the method's order. The step controller lands
// exactly on each of these points.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "delyap/common/config.hpp"

namespace delyap {

// Sorted points in (t0, t_final] reachable as b + (sum of 1..max_level delays) from the base
// points b (t0 and any jumps of the initial history).
inline std::vector<double> discontinuity_points(const double* base, Index n_base, double t0,
                                                double t_final, const double* tau, int n_delays,
                                                int max_level) {
  std::vector<double> all, level(base, base + n_base), next;
  const double tol = 1e-12 * (1.0 + std::fabs(t0) + std::fabs(t_final));
  for (int l = 0; l < max_level && !level.empty(); ++l) {
    next.clear();
    for (double p : level)
      for (int k = 0; k < n_delays; ++k) {
        const double q = p + tau[k];
        if (q <= t_final + tol) next.push_back(q);
      }
    std::sort(next.begin(), next.end());
    next.erase(std::unique(next.begin(), next.end(),
                           [tol](double a, double b) { return std::fabs(a - b) <= tol; }),
               next.end());
    for (double q : next)
      if (q > t0 + tol) all.push_back(q);
    level.swap(next);
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end(),
                        [tol](double a, double b) { return std::fabs(a - b) <= tol; }),
            all.end());
  return all;
}

inline std::vector<double> discontinuity_points(double t0, double t_final, const double* tau,
                                                int n_delays, int max_level) {
  return discontinuity_points(&t0, 1, t0, t_final, tau, n_delays, max_level);
}

}  // namespace delyap
