// Host driver: sets up each trajectory (history, discontinuities, scratch) and runs a batch of
// them on a thread pool. Trajectories are independent, so a failure is recorded in that
// trajectory's status and the others run on.
#pragma once

#include <atomic>
#include <vector>

#include "delyap/dde/history_buffer.hpp"
#include "delyap/dde/output.hpp"
#include "delyap/dde/trajectory.hpp"
#include "delyap/parallel/parallel_for.hpp"

namespace delyap {

// The initial function on [t0 − τmax, t0] as Hermite anchors on a shared time grid.
struct InitialHistory {
  const double* t;   // n increasing times, the last one t0
  Index n;
  const double* x;   // (batch or 1) × n × dim
  const double* f;   // same layout: derivatives of the initial function
  Index stride;      // 0 when shared by all trajectories, n·dim otherwise
};

struct Trajectory {
  const double* y0;  // dim
  double t0, t_final;
  const double* jumps = nullptr;  // times ≤ t0 where the initial history jumps
  Index n_jumps = 0;
};

// The initial function of trajectory b into a growing history.
inline void load_initial_history(HistoryBuffer& buf, const InitialHistory& h, Index b, int dim) {
  buf.ensure(h.n + 8);
  std::vector<double> coef(Index(buf.view().n_coef) * dim);
  push_initial_history(buf.view(), h.t, h.n, h.x + b * h.stride, h.f + b * h.stride, dim,
                       coef.data());
}

// Where the solution may be non-smooth to begin with: t0 and the history's jumps.
inline std::vector<double> discontinuity_sources(const Trajectory& tr) {
  std::vector<double> base{tr.t0};
  base.insert(base.end(), tr.jumps, tr.jumps + tr.n_jumps);
  return base;
}

// Those points propagated through constant delays, to be landed on (empty when tracking is
// off or the delays are state dependent: those are found on the fly).
template <class System>
std::vector<double> propagated_discontinuities(const System& sys, const SolverOptions& opt,
                                               const Tableau& tab, const Trajectory& tr) {
  if (!opt.track_discontinuities || dependent_delays(sys)) return {};
  const std::vector<double> base = discontinuity_sources(tr);
  std::vector<double> tau(size_t(sys.n_delays()));
  for (int k = 0; k < sys.n_delays(); ++k) tau[size_t(k)] = sys.delay(k);
  return discontinuity_points(base.data(), Index(base.size()), tr.t0, tr.t_final, tau.data(),
                              sys.n_delays(), tab.order + 1);
}

// One trajectory on the host with any sink. Returns its status; fills stats and x_final.
template <class System, class Sink>
Status solve_single(const System& sys, const SolverOptions& opt, const InitialHistory& hist,
                    Index b, const Trajectory& tr, Sink& sink, SolveStats& stats,
                    double* x_final, const std::atomic<bool>& cancel) {
  const Tableau& tab = tableau_for(opt.method);
  const int dim = sys.dim(), nd = sys.n_delays();
  HistoryBuffer buffer(dim, coefficients_for(tab));
  load_initial_history(buffer, hist, b, dim);

  std::vector<double> disc = propagated_discontinuities(sys, opt, tab, tr), known;
  std::vector<int> known_level;
  IntegrationProblem p{tr.t0, tr.t_final, tr.y0, disc.data(), Index(disc.size())};
  if (dependent_delays(sys)) {  // found on the fly where a lag crosses one of these
    known = discontinuity_sources(tr);
    p.n_known = Index(known.size());
    known.resize(4096);
    known_level.assign(4096, 0);
    p.known = known.data();
    p.known_level = known_level.data();
    p.known_capacity = Index(known.size());
    p.max_level = tab.order + 1;
  }
  std::vector<double> scratch(TrajectoryScratch::doubles(dim, nd));
  TrajectoryScratch s = TrajectoryScratch::carve(scratch.data(), dim, nd);
  auto is_cancelled = [&cancel]() { return cancel.load(std::memory_order_relaxed); };
  return run_trajectory(sys, tab, opt, buffer, s, p, sink, stats, x_final, is_cancelled);
}

struct EnsembleOutput {
  const double* t_eval;
  Index n_eval;
  double* y;        // batch × n_eval × width, pre-filled (NaN) by the caller
  double* y_final;  // batch × dim
  int* status;      // batch
  Index* stats;     // batch × 5: accepted, rejected, rhs_evals, overlap_steps, history_peak
  double* t_final;  // batch
  Reduction mode = Reduction::Full;
  const Index* components = nullptr;
  Index n_components = 0;
};

// make_system(b) returns trajectory b's system; y0 rows have stride y0_stride (0: shared).
template <class MakeSystem>
void solve_ensemble(Index batch, int dim, const MakeSystem& make_system, const SolverOptions& opt,
                    const InitialHistory& hist, const double* y0, Index y0_stride, double t0,
                    double t_final, EnsembleOutput& out, int threads,
                    std::atomic<bool>& cancel, const double* jumps = nullptr,
                    Index n_jumps = 0) {
  for (Index b = 0; b < batch; ++b) out.status[b] = int(Status::NotRun);
  // A single trajectory also reports how far in time it has come (parallel_for hides the
  // counter from the loop body, so it is taken here).
  std::atomic<Index>* const span_progress = batch == 1 ? progress_counter() : nullptr;
  parallel_for(batch, threads, cancel, [&](Index b) {
    const auto sys = make_system(b);
    std::vector<double> scratch(out.mode == Reduction::Full ? 0 : dim);
    const int width = reduced_width(out.mode, dim, out.n_components);
    EvalSink sink{out.t_eval,     out.n_eval,     out.y + b * out.n_eval * width,
                  dim,            out.mode,       out.components,
                  out.n_components, scratch.data()};
    SolveStats stats;
    Trajectory tr{y0 + b * y0_stride, t0, t_final, jumps, n_jumps};
    TimeProgress<EvalSink> watched{sink, t0, t_final, span_progress};
    const Status st =
        solve_single(sys, opt, hist, b, tr, watched, stats, out.y_final + b * dim, cancel);
    out.status[b] = int(st);
    write_stats(stats, out.stats + b * kStatFields);
    out.t_final[b] = stats.t_final;
  });
}

}  // namespace delyap
