// Solver settings and per-trajectory statistics (plain data, host and device).
#pragma once

#include "delyap/common/config.hpp"
#include "delyap/dde/tableau.hpp"

namespace delyap {

struct SolverOptions {
  Method method = Method::DP5;
  double rtol = 1e-6;
  double atol = 1e-9;
  double dt = 0.0;        // fixed step (Euler/RK4) or first step (adaptive; 0: automatic)
  double max_step = 0.0;  // 0: unbounded (steps may exceed the delays)
  double min_step = 0.0;  // 0: 16 ulp of t
  Index max_steps = 10000000;
  bool track_discontinuities = true;
  int max_overlap_iterations = 12;  // fixed-point iterations for steps longer than a delay
  double overlap_tol = 1e-2;        // in units of the error tolerance (scaled norm)
  double safety = 0.9;
  double min_factor = 0.2;
  double max_factor = 10.0;
};

struct SolveStats {
  Index accepted = 0;
  Index rejected = 0;
  Index rhs_evals = 0;
  Index overlap_steps = 0;  // accepted steps longer than the smallest delay
  Index history_peak = 0;   // most anchors held at once (memory bound check)
  double t_final = 0.0;
};

}  // namespace delyap
