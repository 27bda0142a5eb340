// One trajectory of an ensemble on preallocated storage, host and device alike: the history
// lives in a fixed-capacity ring (interleaved with the other trajectories' so that a warp's
// reads of one slot coalesce), the scratch is the caller's, and the discontinuity points are
// generated in place (trajectory.hpp: the set-up every driver shares). The CUDA ensemble kernel runs `solve_fixed` once per thread; the CPU
// tests run the very same function and compare it with the growing-buffer host driver.
#pragma once

#include <cmath>

#include "delyap/common/work_poll.hpp"
#include "delyap/dde/output.hpp"
#include "delyap/dde/trajectory.hpp"

namespace delyap {

// A history ring over caller memory that cannot grow: `ensure` fails (Status::HistoryFull)
// when a delay window needs more anchors than the capacity.
struct FixedHistoryBuffer {
  InterleavedHistoryView v;
  Index peak = 0;
  DELYAP_HD InterleavedHistoryView& view() { return v; }
  DELYAP_HD bool ensure(Index needed) {
    if (v.size > peak) peak = v.size;
    return needed <= v.cap;
  }
  DELYAP_HD Index peak_size() const { return peak; }
};

// The histories of n_traj trajectories, slot-major and trajectory-minor: element e of
// trajectory b's history is at p[e · n_traj + b] (t: e = slot; x, f: slot·dim + d;
// coef: (slot·n_coef + m)·dim + d).
struct InterleavedHistories {
  double* t;
  double* x;
  double* f;
  double* coef;
  Index n_traj;
  int dim, n_coef;
  Index cap;  // a power of two

  static Index doubles(Index n_traj, int dim, int n_coef, Index cap) {
    return n_traj * cap * (1 + 2 * Index(dim) + Index(n_coef) * dim);
  }
  static InterleavedHistories carve(double* p, Index n_traj, int dim, int n_coef, Index cap) {
    InterleavedHistories h{p, nullptr, nullptr, nullptr, n_traj, dim, n_coef, cap};
    h.x = h.t + n_traj * cap;
    h.f = h.x + n_traj * cap * dim;
    h.coef = h.f + n_traj * cap * dim;
    return h;
  }
  DELYAP_HD FixedHistoryBuffer buffer(Index b) const {
    FixedHistoryBuffer buf;
    buf.v.t = t + b;
    buf.v.x = x + b;
    buf.v.f = f + b;
    buf.v.coef = coef + b;
    buf.v.dim = dim;
    buf.v.n_coef = n_coef;
    buf.v.cap = cap;
    buf.v.stride_ = n_traj;
    return buf;
  }
};

// Per-trajectory inputs of a fixed-storage solve.
struct FixedTrajectory {
  double t0, t_final;
  const double* y0;         // dim
  const double* hist_t;     // n_hist times, the last one t0 (shared)
  const double* hist_x;     // n_hist × dim
  const double* hist_f;     // n_hist × dim
  Index n_hist;
  double* disc;             // caller storage for the discontinuity points
  Index disc_cap;
};

// Integrates one trajectory (constant delays) on fixed storage. `scratch` holds
// fixed_scratch_doubles(dim, n_delays) doubles. Writes x(t_final) to x_final.
DELYAP_HD constexpr Index fixed_scratch_doubles(int dim, int n_delays) {
  return TrajectoryScratch::doubles(dim, n_delays);
}

template <class System, class Sink, class Cancel>
DELYAP_HD Status solve_fixed(const System& sys, const SolverOptions& opt,
                             FixedHistoryBuffer& buffer, const FixedTrajectory& tr, Sink& sink,
                             SolveStats& stats, double* scratch, double* x_final,
                             const Cancel& cancelled) {
  const Tableau& tab = tableau_for(opt.method);
  const int dim = sys.dim(), nd = sys.n_delays();
  stats.t_final = tr.t0;
  if (dependent_delays(sys)) return Status::Unsupported;  // crossings need host storage
  if (!buffer.ensure(tr.n_hist + 2)) return Status::HistoryFull;
  TrajectoryScratch s = TrajectoryScratch::carve(scratch, dim, nd);
  // The initial function as Hermite intervals (ws.coef is free until the first step).
  push_initial_history(buffer.view(), tr.hist_t, tr.n_hist, tr.hist_x, tr.hist_f, dim,
                       s.ws.coef);
  Index n_disc = 0;
  if (opt.track_discontinuities) {
    double tau[16];
    if (nd > 16) return Status::Unsupported;
    for (int k = 0; k < nd; ++k) tau[k] = sys.delay(k);
    n_disc = discontinuity_points(&tr.t0, 1, tr.t0, tr.t_final, tau, nd, tab.order + 1, tr.disc,
                                  tr.disc_cap);
    if (n_disc < 0) return Status::Unsupported;
  }
  IntegrationProblem p{tr.t0, tr.t_final, tr.y0, tr.disc, n_disc};
  return run_trajectory(sys, tab, opt, buffer, s, p, sink, stats, x_final, cancelled);
}

// Everything an ensemble member needs, as flat arrays (device or host memory alike).
struct FixedEnsembleArgs {
  InterleavedHistories hist;
  const double* hist_t;  // n_hist shared times, the last one t0
  Index n_hist;
  const double* hist_x;  // (1 or batch) × n_hist × dim
  const double* hist_f;  // same
  Index hist_stride;     // 0 (shared) or n_hist·dim
  const double* y0;      // (1 or batch) × dim
  Index y0_stride;       // 0 or dim
  double t0, t_final;
  const double* t_eval;  // n_eval
  Index n_eval;
  double* y;             // batch × n_eval × dim (pre-filled with NaN)
  double* y_final;       // batch × dim
  int* status;           // batch
  Index* stats;          // batch × kStatFields (trajectory.hpp)
  double* t_end;         // batch
  SolverOptions opt;
  // Set to nonzero to stop every member (Ctrl-C); null: never. Read by work done
  // (common/work_poll.hpp), since on the GPU it lives in host-mapped memory and each read
  // crosses the bus.
  const volatile int* cancel = nullptr;
};

// Storage for the discontinuity points of n_delays constant delays: sums of up to 6 delays
// (DP5: order + 1), with the levels discontinuity_points builds them in.
DELYAP_HD constexpr Index discontinuity_capacity(int n_delays) {
  return discontinuity_storage(n_delays, 6);
}

// Ensemble member b: the body of the CUDA kernel's thread b and of the host mirror that tests
// it. `scratch` holds fixed_scratch_doubles(dim, n_delays) doubles; kMaxDelays bounds the
// system's delays (sizes the discontinuity list).
template <int kMaxDelays, class System>
DELYAP_HD void solve_fixed_member(const System& sys, const FixedEnsembleArgs& a, Index b,
                                  double* scratch) {
  const int dim = sys.dim();
  FixedHistoryBuffer buffer = a.hist.buffer(b);
  constexpr Index kDiscCap = discontinuity_capacity(kMaxDelays);
  double disc[kDiscCap];
  FixedTrajectory tr{a.t0, a.t_final, a.y0 + b * a.y0_stride, a.hist_t,
                     a.hist_x + b * a.hist_stride, a.hist_f + b * a.hist_stride, a.n_hist,
                     disc, kDiscCap};
  EvalSink sink{a.t_eval, a.n_eval, a.y + b * a.n_eval * dim, dim};
  SolveStats stats;
  // Ctrl-C by work done (common/work_poll.hpp): each step is charged its stages' right-hand
  // sides and delayed reads, so the host-mapped flag is read every few hundred steps.
  const volatile int* flag = a.cancel;
  auto read_flag = [flag]() { return flag && *flag != 0; };
  WorkPoll<decltype(read_flag)> poll(read_flag);
  const double step_flops =
      double(tableau_for(a.opt.method).stages) * 32.0 * dim * (sys.n_delays() + 1);
  auto cancelled = [&poll, step_flops]() { return poll.charge(step_flops); };
  const Status st =
      solve_fixed(sys, a.opt, buffer, tr, sink, stats, scratch, a.y_final + b * dim, cancelled);
  a.status[b] = int(st);
  write_stats(stats, a.stats + b * kStatFields);
  a.t_end[b] = stats.t_final;
}

}  // namespace delyap
