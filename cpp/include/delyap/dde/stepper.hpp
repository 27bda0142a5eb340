// One explicit Runge–Kutta step of a DDE by the method of steps.
// Delayed values come from the history buffer. When the step is longer than the smallest delay,
// some stages read inside the step itself: the step is then iterated (first iterate reads a
// linear extrapolation, later ones the previous iterate's own interpolant, pushed provisionally
// into the history) until successive end states agree, as dde23 and DelayDiffEq.jl do.
#pragma once

#include "delyap/common/exec.hpp"
#include "delyap/common/status.hpp"
#include "delyap/dde/controller.hpp"
#include "delyap/dde/history.hpp"
#include "delyap/dde/step_kernels.hpp"
#include "delyap/dde/options.hpp"
#include "delyap/dde/system_traits.hpp"
#include "delyap/dde/tableau.hpp"

namespace delyap {

// Scratch memory for one trajectory, carved from one block by the caller.
struct StepWorkspace {
  double* k;       // kMaxStages × dim stage derivatives
  double* xs;      // stage state
  double* x1;      // proposed new state
  double* f1;      // f(t + h, x1)
  double* x_iter;  // previous iterate (steps longer than a delay)
  double* coef;    // kMaxDense × dim interval coefficients
  double* xd;      // n_delays × dim delayed states
  double* xd_dot;  // n_delays × dim delayed derivatives (neutral equations)
  double* taus;    // n_delays lags at the current evaluation

  DELYAP_HD static constexpr Index doubles_needed(int dim, int n_delays) {
    return (kMaxStages + 4 + kMaxDense) * Index(dim) + 2 * Index(n_delays) * dim + n_delays;
  }
  DELYAP_HD static StepWorkspace carve(double* p, int dim, int n_delays) {
    StepWorkspace w;
    w.k = p;
    p += kMaxStages * dim;
    w.xs = p; p += dim;
    w.x1 = p; p += dim;
    w.f1 = p; p += dim;
    w.x_iter = p; p += dim;
    w.coef = p; p += kMaxDense * dim;
    w.xd = p; p += Index(n_delays) * dim;
    w.xd_dot = p; p += Index(n_delays) * dim;
    w.taus = p;
    return w;
  }
};

template <class System, class View = HistoryView, class Exec = SerialExec>
struct DdeStepper {
  const System& sys;
  const Tableau& tab;
  const SolverOptions& opt;
  View& hist;
  StepWorkspace& ws;
  SolveStats& stats;
  Exec exec;  // runs the per-component loops (common/exec.hpp)
  int dim;
  int n_delays;
  double window;      // history window: largest (declared) delay
  double min_delay;   // smallest constant delay (the window for dependent delays)
  bool neutral;
  double t_base = HUGE_VAL;  // reads later than this are inside the step being taken
  bool read_ahead = false;   // some read of the current attempt fell inside the step
  // Read cursors: the history interval each delay read last (HistoryRing::find_interval's
  // hint), so a read usually costs a comparison or two instead of a binary search. Delays
  // beyond kCursors share one (still correct: a cursor is only where the search starts).
  static constexpr int kCursors = 4;
  Index cursor[kCursors] = {0, 0, 0, 0};

  DELYAP_HD DdeStepper(const System& s, const Tableau& tb, const SolverOptions& o, View& h,
                       StepWorkspace& w, SolveStats& st, Exec e = Exec{})
      : sys(s), tab(tb), opt(o), hist(h), ws(w), stats(st), exec(e), dim(s.dim()),
        n_delays(s.n_delays()), window(window_of(s)), neutral(is_neutral(s)) {
    min_delay = window;
    if (!dependent_delays(s))
      for (int k = 0; k < n_delays; ++k) min_delay = std::fmin(min_delay, sys.delay(k));
  }

  DELYAP_HD void copy(double* dst, const double* src) { exec.for_each(dim, CopyElements{dst, src}); }

  // out = f(t, x, x(t − τ_1), …) with delayed values (and derivatives, for neutral equations)
  // read from the history. A lag outside [0, window] is a DelayOutOfRange failure.
  // `left`: which one-sided limit a delayed read takes where the history jumps (history.hpp).
  // A stage after the start of a step reads the end of its lagged window, so the left-hand
  // limit; an evaluation at the start of a step (t0, or after landing on a discontinuity) the
  // right-hand one. Steps land on the points where a lag meets a jump, so no stage reads one
  // from inside.
  DELYAP_HD Status eval_rhs(double t, const double* x, double* out, bool left = false) {
    if (!delays_at(sys, t, x, ws.taus)) return Status::RhsError;
    // A vanishing lag evaluated at a stage state may come out slightly negative (the argument
    // then lies just ahead of t, inside the step, and reads the step's own interpolant, which
    // is fine): by the stage's error, −1.5e-3 in DDETST H2 (window π) at rtol 1e-9, −5e-3 with
    // Euler at dt = 0.01. A lag below −0.2 % of the window reads the future in earnest (1 %
    // let a lag of −0.9 with max_delay 100 run to "success"); one beyond it is out of range.
    const double slack = 1e-12 * (1.0 + window);
    const double ahead_slack = 2e-3 * window + slack;
    for (int k = 0; k < n_delays; ++k) {
      const double tau = ws.taus[k];
      // A lag computed from a NaN/inf state is a symptom: report the state, not the lag.
      if (!is_finite(tau)) return Status::NonFinite;
      if (!(tau >= -ahead_slack && tau <= window + slack)) return Status::DelayOutOfRange;
      // An undelayed coupling (e.g. a network with τ = 0) reads the stage state itself, not the
      // history (a neutral equation also needs x'(t − τ): it keeps the history read).
      if (tau == 0.0 && !neutral) {
        exec.for_each(dim, CopyElements{ws.xd + k * dim, x});
        continue;
      }
      const double s = t - tau;
      if (s > t_base) read_ahead = true;
      if (!hist.eval(s, ws.xd + k * dim, neutral ? ws.xd_dot + k * dim : nullptr, left,
                     &cursor[k < kCursors ? k : kCursors - 1]))
        return Status::DelayOutOfRange;
    }
    ++stats.rhs_evals;
    return call_rhs(sys, t, x, ws.xd, ws.xd_dot, out) ? Status::Success : Status::RhsError;
  }

  // Hairer's starting step (Solving ODEs I, II.4), kept below the smallest delay so that the
  // trial evaluation reads only the given history.
  DELYAP_HD double initial_step(double t0, double t_final, const double* x0, const double* f0,
                                Status* st) {
    const double rt = opt.rtol, at = opt.atol;
    const double d0 = std::sqrt(exec.sum(dim, ScaledSquare{x0, nullptr, x0, x0, rt, at}) / dim);
    const double d1 = std::sqrt(exec.sum(dim, ScaledSquare{f0, nullptr, x0, x0, rt, at}) / dim);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    const double span = t_final - t0;
    h0 = std::fmin(h0, span);
    if (min_delay > 0) h0 = std::fmin(h0, 0.5 * min_delay);
    exec.for_each(dim, LinearExtrapolation{x0, f0, h0, ws.xs});
    *st = eval_rhs(t0 + h0, ws.xs, ws.f1, /*left=*/true);
    if (*st != Status::Success) return h0;
    const double d2 =
        std::sqrt(exec.sum(dim, ScaledSquare{ws.f1, f0, x0, x0, rt, at}) / dim) / h0;
    const double dm = std::fmax(d1, d2);
    const double h1 = dm <= 1e-15 ? std::fmax(1e-6, h0 * 1e-3)
                                  : std::pow(0.01 / dm, 1.0 / (tab.order + 1));
    return std::fmin(std::fmin(100.0 * h0, h1), span);
  }

  // Interval coefficients of the step just computed (stages in ws.k, ends x/f and x1/f1).
  DELYAP_HD void build_coefficients(double h, const double* x, const double* f) {
    if (tab.n_dense == 0) {
      exec.for_each(dim, HermiteCoefficients{x, f, ws.x1, ws.f1, h, dim, hist.n_coef, ws.coef});
      return;
    }
    for (int m = 0; m < hist.n_coef; ++m) {
      WeightedSum row{ws.k, {}, m < tab.n_dense ? tab.stages : 0, dim, ws.coef + m * dim};
      for (int j = 0; j < kMaxStages; ++j) row.w[j] = tab.dense[j][m];
      exec.for_each(dim, row);
    }
  }

  // Computes ws.x1, ws.f1 for a step of size h from (t, x) with f = f(t, x).
  // *err_norm gets the scaled error (inf when the state went non-finite). Returns a failure
  // status only for errors that shrinking the step cannot fix; a step longer than a delay whose
  // iteration does not settle is reported through *converged = false.
  DELYAP_HD Status attempt(double t, double h, const double* x, const double* f, double* err_norm,
                           bool* converged) {
    // Iterate only when a stage actually read inside the step (a step longer than a delay, or
    // a vanishing / state-dependent delay): the first pass tells.
    t_base = hist.last_time();
    read_ahead = false;
    const int iterations = opt.max_overlap_iterations;
    bool provisional = false;
    *converged = true;
    Status st = Status::Success;
    for (int it = 0; it < iterations; ++it) {
      st = run_stages(t, h, x, f);
      if (st != Status::Success || !read_ahead) break;
      build_coefficients(h, x, f);
      if (provisional) hist.pop_back();
      hist.push_interval(ws.coef, t + h, ws.x1, ws.f1);
      provisional = true;
      if (it > 0) {
        const double change = rms_of_sum(
            exec.sum(dim, ScaledSquare{ws.x_iter, ws.x1, x, ws.x1, opt.rtol, opt.atol}), dim);
        if (change <= opt.overlap_tol) break;
        if (!is_finite(change)) break;
      }
      copy(ws.x_iter, ws.x1);
      if (it == iterations - 1) *converged = false;
    }
    if (provisional) hist.pop_back();
    t_base = HUGE_VAL;
    if (st != Status::Success) return st;
    if (tab.adaptive()) {
      ScaledStepError term{ws.k, {}, tab.stages, dim, h, x, ws.x1, opt.rtol, opt.atol};
      for (int j = 0; j < kMaxStages; ++j) term.e[j] = tab.e[j];
      *err_norm = rms_of_sum(exec.sum(dim, term), dim);
    } else {
      // Fixed step: only a non-finite state counts as failure.
      *err_norm = exec.sum(dim, CountNonFinite{ws.x1}) > 0.0 ? HUGE_VAL : 0.0;
    }
    return Status::Success;
  }

 private:
  DELYAP_HD Status run_stages(double t, double h, const double* x, const double* f) {
    copy(ws.k, f);
    for (int i = 1; i < tab.stages; ++i) {
      WeightedStep stage{x, ws.k, {}, i, dim, h, ws.xs};
      for (int j = 0; j < kMaxStages; ++j) stage.w[j] = tab.a[i][j];  // whole rows: a fixed
      // bound lets the device keep the copied weights in registers (unused ones are zero)
      exec.for_each(dim, stage);
      const Status st = eval_rhs(t + tab.c[i] * h, ws.xs, ws.k + i * dim, tab.c[i] > 0.0);
      if (st != Status::Success) return st;
    }
    WeightedStep next{x, ws.k, {}, tab.stages, dim, h, ws.x1};
    for (int j = 0; j < kMaxStages; ++j) next.w[j] = tab.b[j];
    exec.for_each(dim, next);
    if (tab.fsal) {
      copy(ws.f1, ws.k + (tab.stages - 1) * dim);
      return Status::Success;
    }
    // Not FSAL: f at the new point is still needed for the Hermite history (and is the next
    // step's first stage, so it is not wasted). It closes this step: left-hand limits.
    return eval_rhs(t + h, ws.x1, ws.f1, /*left=*/true);
  }
};

}  // namespace delyap
