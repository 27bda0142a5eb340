// Lyapunov spectrum of a DDE (host driver): the trajectory and k tangent functions are
// integrated together; at every renormalisation time the tangent functions are
// re-orthonormalised over the history window and log R_jj accumulated.
#pragma once

#include <atomic>
#include <vector>

#include "delyap/dde/ensemble.hpp"
#include "delyap/lyap/statistics.hpp"
#include "delyap/lyap/tangent.hpp"

namespace delyap {

struct DdeLyapunovProblem {
  double t0;
  double t_transient;
  double t_total;
  double renorm_interval;  // ≤ 0: half the largest delay (one time unit for an ODE)
  int k;
  int anchors_needed;      // the window must hold this many anchors: caps the step at τmax / it

  // Per trajectory, since a batch may sweep the delays.
  double renorm_for(double tau_max) const {
    if (renorm_interval > 0) return renorm_interval;
    return tau_max > 0 ? 0.5 * tau_max : 1.0;  // an ODE: one time unit (lyapunov.py's default)
  }
  Index renorm_count(double tau_max) const {
    const double r = renorm_for(tau_max);
    const Index n = Index(std::ceil(t_total / r - 1e-9));
    return n > 0 ? n : 1;
  }
};

struct NullSink {
  DELYAP_HD void start(double, const double*) {}
  template <class View>
  DELYAP_HD void step(const View&, double, double) {}
};

// vectors_out: k × D values of the final Lyapunov functions at the final time.
template <class System>
double max_delay_of(const System& sys) {
  double m = 0.0;
  for (int i = 0; i < sys.n_delays(); ++i) m = std::fmax(m, sys.delay(i));
  return m;
}

// qr: the re-orthonormalisation's QR (tangent.hpp's PortableTangentQr contract).
// span_progress (null: off): counts thousandths of the run's time span (TimeProgress), for
// the progress of a single long spectrum.
template <class System, class Qr = PortableTangentQr>
Status dde_lyapunov(const System& sys, const SolverOptions& user_opt, const InitialHistory& hist,
                    Index b, const double* y0, const DdeLyapunovProblem& lp,
                    LyapunovAccumulator& acc, double* vectors_out, SolveStats& stats,
                    const std::atomic<bool>& cancel, const Qr& qr = Qr{},
                    std::atomic<Index>* span_progress = nullptr) {
  const double tau_max = max_delay_of(sys);
  const double renorm = lp.renorm_for(tau_max);
  SolverOptions opt = user_opt;
  // The window must hold anchors_needed anchors; an ODE has no window (a cap of 0 would
  // silently drop the user's max_step).
  if (tau_max > 0) {
    const double cap = tau_max / lp.anchors_needed;
    opt.max_step = opt.max_step > 0 ? std::fmin(opt.max_step, cap) : cap;
  }
  const Tableau& tab = tableau_for(opt.method);
  const int D = sys.dim(), nd = sys.n_delays(), k = lp.k;
  std::vector<double> jac_scratch(TangentSystem<System>::scratch_doubles(sys));
  const TangentSystem<System> tsys{sys, k, jac_scratch.data()};
  const int Da = tsys.dim();

  // An ODE keeps a few anchors (no window), not the 64 a DDE starts with: each holds
  // (2 + coefficients)·D(1 + k) doubles, 12 MB for N = 10⁴ with 20 tangent vectors. The
  // buffer grows by doubling when a window needs more.
  HistoryBuffer buffer(Da, coefficients_for(tab), tau_max > 0 ? 64 : 8);
  load_initial_history(buffer, hist, b, Da);
  const double t_end = lp.t0 + lp.t_transient + lp.t_total;
  // From t0 only (the tangent history has no jumps), through the constant delays of the
  // tangent system (it declares no lag function, so the base system's delay(m) are used).
  const Trajectory whole{y0, lp.t0, t_end};
  std::vector<double> disc = propagated_discontinuities(tsys, opt, tab, whole);
  std::vector<double> scratch(TrajectoryScratch::doubles(Da, nd));
  TrajectoryScratch s = TrajectoryScratch::carve(scratch.data(), Da, nd);
  double* x = s.x;
  double* f = s.f;

  // Driven stop by stop (renormalising in between), not by run_trajectory.
  IntegrationProblem p{lp.t0, t_end, y0, disc.data(), Index(disc.size())};
  Integrator<TangentSystem<System>, HistoryBuffer> run(tsys, tab, opt, buffer, s.ws, p, stats, x,
                                                     f);
  NullSink quiet;
  TimeProgress<NullSink> sink{quiet, lp.t0, t_end, span_progress};
  auto is_cancelled = [&cancel]() { return cancel.load(std::memory_order_relaxed); };

  std::vector<double> w, r(Index(k) * k), tinv(Index(k) * k), tmp(k), logs(k), work;
  auto renormalize = [&](bool start) -> Status {
    HistoryView& h = buffer.view();
    const bool has_window = tau_max > 0;  // an ODE has none
    const Index rows = tangent_rows(h, D, has_window);
    // Fewer rows than functions: the window cannot hold k independent ones (lyapunov.py
    // refuses k > dim for a member without delays before the run).
    if (rows < k) return Status::LostDirection;
    if (Index(w.size()) < rows * k) w.resize(rows * k);
    if (Index(work.size()) < rows + k) work.resize(rows + k);
    const Status rs = reorthonormalize(h, D, k, w.data(), r.data(), work.data(), tinv.data(),
                                       tmp.data(), logs.data(), has_window, qr, start);
    if (rs != Status::Success) return rs;
    const double* last = h.state(h.size - 1);
    const double* flast = h.deriv(h.size - 1);
    for (int i = 0; i < Da; ++i) {  // the integrator's current state is the last anchor
      x[i] = last[i];
      f[i] = flast[i];
    }
    return Status::Success;
  };

  Status st = run.start(sink);
  if (st != Status::Success) return st;
  st = renormalize(true);
  if (st != Status::Success) return st;
  acc.reset();
  const double t_measure = lp.t0 + lp.t_transient;
  double t_prev = lp.t0;
  Index n_measured = 0;
  for (Index n = 1;; ++n) {
    // Stops on a grid from t0 through the transient, then from its end through t_total
    // (multiples of the interval, not running sums, so no rounding drift).
    double stop = t_prev < t_measure ? std::fmin(lp.t0 + n * renorm, t_measure)
                                     : t_measure + (++n_measured) * renorm;
    if (t_prev >= t_measure && stop > t_end - 1e-9 * renorm) stop = t_end;
    st = run.advance(stop, sink, is_cancelled);
    if (st != Status::Success) return st;
    st = renormalize(false);
    if (st != Status::Success) return st;
    if (t_prev >= t_measure) acc.add(logs.data(), stop - t_prev);
    t_prev = stop;
    if (stop >= t_end) break;
  }
  stats.history_peak = buffer.peak_size();
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < D; ++i) vectors_out[j * D + i] = x[D * (1 + j) + i];
  return Status::Success;
}

}  // namespace delyap
