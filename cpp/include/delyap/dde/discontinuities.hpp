// Discontinuity tracking for constant delays: a derivative jump at t0 reappears at
// t0 + Σ k_i τ_i, one order smoother per delay added, so only sums of at most
// (method order + 1) delays can still hurt the method's order. The step controller lands
// exactly on each of these points.
// One algorithm, on caller storage (DELYAP_HD: the device ensemble runs it per thread); the host
// wrapper below sizes the storage for it. Host and device therefore land on the same points,
// bit for bit.
#pragma once

#include <cmath>
#include <vector>

#include "delyap/common/config.hpp"

namespace delyap {

namespace detail {

// In-place ascending heap sort (no recursion, no allocation: runs on the device). Equal values
// are the same double, so the order among them does not matter to what follows.
DELYAP_HD inline void sort_points(double* a, Index n) {
  auto sift = [a](Index root, Index end) {
    for (;;) {
      Index child = 2 * root + 1;
      if (child >= end) return;
      if (child + 1 < end && a[child] < a[child + 1]) ++child;
      if (!(a[root] < a[child])) return;
      const double tmp = a[root];
      a[root] = a[child];
      a[child] = tmp;
      root = child;
    }
  };
  for (Index i = n / 2; i-- > 0;) sift(i, n);
  for (Index end = n - 1; end > 0; --end) {
    const double tmp = a[0];
    a[0] = a[end];
    a[end] = tmp;
    sift(0, end);
  }
}

// Drops points within tol of the last kept one (std::unique's rule); returns the new count.
DELYAP_HD inline Index unique_points(double* a, Index n, double tol) {
  if (n == 0) return 0;
  Index kept = 1;
  for (Index i = 1; i < n; ++i)
    if (!(std::fabs(a[kept - 1] - a[i]) <= tol)) a[kept++] = a[i];
  return kept;
}

}  // namespace detail

// Sorted points in (t0, t_final] reachable as b + (sum of 1..max_level delays) from the base
// points b (t0 and any jumps of the initial history), merged within 1e-12 relative, level by
// level. `store` holds `cap` doubles: the points come back at its front, the levels in progress
// use its back. Returns the count, or −1 when `cap` is too small.
DELYAP_HD inline Index discontinuity_points(const double* base, Index n_base, double t0,
                                            double t_final, const double* tau, int n_delays,
                                            int max_level, double* store, Index cap) {
  const double tol = 1e-12 * (1.0 + std::fabs(t0) + std::fabs(t_final));
  if (n_base > cap) return -1;
  Index n_all = 0;                  // the points found: store[0, n_all)
  Index n_level = n_base;           // the current level: store[cap − n_level, cap)
  for (Index i = 0; i < n_base; ++i) store[cap - n_base + i] = base[i];
  for (int l = 0; l < max_level && n_level > 0; ++l) {
    const double* level = store + cap - n_level;
    // The next level's candidates, below the current level.
    if (n_all + n_level + n_level * Index(n_delays) > cap) return -1;
    double* next = store + cap - n_level - n_level * Index(n_delays);
    Index n_next = 0;
    for (Index i = 0; i < n_level; ++i)
      for (int k = 0; k < n_delays; ++k) {
        const double q = level[i] + tau[k];
        if (q <= t_final + tol) next[n_next++] = q;
      }
    detail::sort_points(next, n_next);
    n_next = detail::unique_points(next, n_next, tol);
    // It becomes the current level, at the very back (moved upward: copy from the top).
    for (Index i = n_next; i-- > 0;) store[cap - n_next + i] = next[i];
    next = store + cap - n_next;
    n_level = n_next;
    if (n_all + 2 * n_next > cap) return -1;
    for (Index i = 0; i < n_next; ++i)
      if (next[i] > t0 + tol) store[n_all++] = next[i];
  }
  detail::sort_points(store, n_all);
  return detail::unique_points(store, n_all, tol);
}

// Storage discontinuity_points needs for the base {t0}, up to max_level delays of n_delays
// constant delays (the fixed-capacity ensemble sizes its per-thread array with it). Level j
// holds at most C(n + j − 1, j) distinct sums.
DELYAP_HD constexpr Index discontinuity_storage(int n_delays, int max_level) {
  Index need = 1, found = 0, level = 1;  // level 0: the base point
  for (int j = 1; j <= max_level; ++j) {
    const Index building = found + level + level * n_delays;
    if (building > need) need = building;
    level = level * (n_delays + j - 1) / j;  // C(n + j − 1, j)
    found += level;
    if (found + level > need) need = found + level;
  }
  return need;
}

// The host form: the same points as a vector, its storage grown until it suffices.
inline std::vector<double> discontinuity_points(const double* base, Index n_base, double t0,
                                                double t_final, const double* tau, int n_delays,
                                                int max_level) {
  std::vector<double> store(size_t(64 + 2 * n_base * (n_delays + 1)));
  for (;;) {
    const Index n = discontinuity_points(base, n_base, t0, t_final, tau, n_delays, max_level,
                                         store.data(), Index(store.size()));
    if (n >= 0) {
      store.resize(size_t(n));
      return store;
    }
    store.resize(2 * store.size());
  }
}

inline std::vector<double> discontinuity_points(double t0, double t_final, const double* tau,
                                                int n_delays, int max_level) {
  return discontinuity_points(&t0, 1, t0, t_final, tau, n_delays, max_level);
}

}  // namespace delyap
