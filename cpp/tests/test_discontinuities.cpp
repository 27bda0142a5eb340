// Discontinuity points (dde/discontinuities.hpp), the one generator host and device share:
// against an independent enumeration of every sum of up to L delays, with the storage bound the
// fixed-capacity ensemble sizes its per-thread array with (too little storage must say so, not
// drop points), and the statistics row layout (dde/trajectory.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "delyap/dde/trajectory.hpp"

using namespace delyap;

namespace {

// Every multiset of 1..L delays, by brute force over all ordered tuples: the sums as long
// doubles (exact enough to separate distinct sums), as a set.
void all_sums(const std::vector<double>& tau, int levels, long double acc, int depth,
              std::set<long double>& out) {
  if (depth > 0) out.insert(acc);
  if (depth == levels) return;
  for (double t : tau) all_sums(tau, levels, acc + t, depth + 1, out);
}

}  // namespace

TEST_CASE("discontinuity points are the sums of up to L delays, in the bounded storage") {
  // Incommensurable delays: every multiset gives its own sum, so the storage bound is reached.
  const std::vector<double> tau{1.0, std::sqrt(2.0), std::sqrt(3.0) + 0.1, M_PI / 2};
  const double t0 = 0.25, t_final = 1e3;  // far beyond every sum: nothing is cut off
  for (int nd = 1; nd <= 4; ++nd)
    for (int levels = 1; levels <= 6; ++levels) {
      std::vector<double> taus(tau.begin(), tau.begin() + nd);
      std::set<long double> want;
      all_sums(taus, levels, 0.0L, 0, want);
      const Index cap = discontinuity_storage(nd, levels);
      std::vector<double> store(static_cast<size_t>(cap), 0.0);
      const Index n = discontinuity_points(&t0, 1, t0, t_final, taus.data(), nd, levels,
                                           store.data(), cap);
      REQUIRE(n == Index(want.size()));
      auto it = want.begin();
      for (Index i = 0; i < n; ++i, ++it) {
        REQUIRE(std::fabs(store[size_t(i)] - double(t0 + *it)) <= 1e-12);
        if (i > 0) REQUIRE(store[size_t(i)] > store[size_t(i - 1)]);
      }
      const std::vector<double> points(store.begin(), store.begin() + n);
      // One double less cannot hold them all: the generator reports it.
      if (cap > 1)
        REQUIRE(discontinuity_points(&t0, 1, t0, t_final, taus.data(), nd, levels,
                                     store.data(), cap - 1) == -1);
      // The host form (storage grown as needed) gives the same points bit for bit.
      const std::vector<double> host =
          discontinuity_points(t0, t_final, taus.data(), nd, levels);
      REQUIRE(host == points);
    }
}

TEST_CASE("discontinuity points merge near-duplicates, stop at t_final and keep the jumps' own") {
  // τ = 1 and 2: 1 + 1 and 2 coincide; with a jump at t0 − 0.5 its sums fall between.
  const double tau[2] = {1.0, 2.0};
  const double base[2] = {0.0, -0.5};
  const std::vector<double> got = discontinuity_points(base, 2, 0.0, 3.0, tau, 2, 3);
  const std::vector<double> want{0.5, 1.0, 1.5, 2.0, 2.5, 3.0};
  REQUIRE(got == want);
}

TEST_CASE("the statistics row is accepted, rejected, rhs_evals, overlap_steps, history_peak") {
  SolveStats s;
  s.accepted = 11;
  s.rejected = 12;
  s.rhs_evals = 13;
  s.overlap_steps = 14;
  s.history_peak = 15;
  Index row[kStatFields];
  write_stats(s, row);
  for (int i = 0; i < kStatFields; ++i) REQUIRE(row[i] == 11 + i);
}
