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

// Sorted points in (t0, t_final] reachable as t0 + (sum of 1..max_level delays).
inline std::vector<double> discontinuity_points(double t0, double t_final, const double* tau,
                                                int n_delays, int max_level) {
  std::vector<double> all, level{t0}, next;
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
    all.insert(all.end(), next.begin(), next.end());
    level.swap(next);
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end(),
                        [tol](double a, double b) { return std::fabs(a - b) <= tol; }),
            all.end());
  return all;
}

}  // namespace delyap
