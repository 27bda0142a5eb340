// The set-up and tail every trajectory driver shares, whatever its storage (growing ring,
// fixed-capacity interleaved ring, executor-resident ring) and executor: the scratch layout,
// the initial function as Hermite intervals, the discontinuity points of constant delays, the
// run itself (start, advance to t_final) and the final peak and statistics row. The drivers
// (ensemble.hpp, fixed_ensemble.hpp, vector_solve.hpp, lyap/dde_spectrum.hpp) only choose the
// storage and where the points and scratch live.
#pragma once

#include "delyap/dde/discontinuities.hpp"
#include "delyap/dde/integrate.hpp"
#include "delyap/dde/output.hpp"
#include "delyap/dde/system_traits.hpp"

namespace delyap {

// The per-trajectory statistics row the Python layer reads (delyap.solution.STAT_FIELDS):
// accepted, rejected, rhs_evals, overlap_steps (steps that read inside themselves),
// history_peak.
constexpr int kStatFields = 5;
// The row's columns, in order (the bindings export them as _core.STAT_FIELDS).
constexpr const char* kStatFieldNames[kStatFields] = {"accepted", "rejected", "rhs_evals",
                                                      "overlap_steps", "history_peak"};
DELYAP_HD inline void write_stats(const SolveStats& s, Index* row) {
  row[0] = s.accepted;
  row[1] = s.rejected;
  row[2] = s.rhs_evals;
  row[3] = s.overlap_steps;
  row[4] = s.history_peak;
}

// Hermite coefficients per interval: the method's dense output degree, cubic for the rest.
DELYAP_HD inline int coefficients_for(const Tableau& tab) {
  return tab.n_dense > 0 ? tab.n_dense : 3;
}

// One trajectory's scratch (in the memory its executor computes in): the step workspace, then
// the current state x and its derivative f.
struct TrajectoryScratch {
  StepWorkspace ws;
  double* x;
  double* f;

  DELYAP_HD static constexpr Index doubles(int dim, int n_delays) {
    return StepWorkspace::doubles_needed(dim, n_delays) + 2 * Index(dim);
  }
  DELYAP_HD static TrajectoryScratch carve(double* p, int dim, int n_delays) {
    TrajectoryScratch s{StepWorkspace::carve(p, dim, n_delays), nullptr, nullptr};
    s.x = p + StepWorkspace::doubles_needed(dim, n_delays);
    s.f = s.x + dim;
    return s;
  }
};

// The initial function's anchors (t: n times on the host; x and f: n × dim in the memory the
// executor computes in) as Hermite intervals in the view; `coef` is scratch of n_coef · dim
// doubles in that memory. The caller has made room for n anchors. Every driver loads its
// history here: the growing and fixed-capacity rings with the serial executor, the
// executor-resident one (vector_solve.hpp) after uploading x and f.
template <class View, class Exec = SerialExec>
DELYAP_HD void push_initial_history(View& v, const double* t, Index n, const double* x,
                                    const double* f, int dim, double* coef, Exec exec = Exec{}) {
  v.push_anchor(t[0], x, f);
  for (Index i = 1; i < n; ++i) {
    const double* x1 = x + i * dim;
    exec.for_each(dim, HermiteCoefficients{x + (i - 1) * dim, f + (i - 1) * dim, x1, f + i * dim,
                                           t[i] - t[i - 1], dim, v.n_coef, coef});
    v.push_interval(coef, t[i], x1, f + i * dim);
  }
}

// Runs one prepared trajectory (history loaded, problem set) to p.t_final and closes it: the
// history's final peak into stats, x(t_final) to the host array x_final.
template <class System, class Buffer, class Sink, class Cancel, class Exec = SerialExec>
DELYAP_HD Status run_trajectory(const System& sys, const Tableau& tab, const SolverOptions& opt,
                                Buffer& buffer, TrajectoryScratch& s, IntegrationProblem& p,
                                Sink& sink, SolveStats& stats, double* x_final,
                                const Cancel& cancelled, Exec exec = Exec{}) {
  Integrator<System, Buffer, Exec> run(sys, tab, opt, buffer, s.ws, p, stats, s.x, s.f, exec);
  Status st = run.start(sink);
  if (st == Status::Success) st = run.advance(p.t_final, sink, cancelled);
  buffer.ensure(0);  // records the final peak
  stats.history_peak = buffer.peak_size();
  copy_to_host(exec, x_final, s.x, sys.dim());
  return st;
}

}  // namespace delyap
