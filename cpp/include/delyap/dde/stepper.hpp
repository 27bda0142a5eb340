// One explicit Runge–Kutta step of a DDE by the method of steps.
// Delayed values come from the history buffer. When the step is longer than the smallest delay,
// some stages read inside the step itself: the step is then iterated (first iterate reads a
// linear extrapolation, later ones the previous iterate's own interpolant, pushed provisionally
// into the history) until successive end states agree, as dde23 and DelayDiffEq.jl do.
#pragma once

#include "delyap/common/status.hpp"
#include "delyap/dde/controller.hpp"
#include "delyap/dde/history.hpp"
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
  double* err;     // local error estimate
  double* x_iter;  // previous iterate (steps longer than a delay)
  double* coef;    // kMaxDense × dim interval coefficients
  double* xd;      // n_delays × dim delayed states
  double* xd_dot;  // n_delays × dim delayed derivatives (neutral equations)
  double* taus;    // n_delays lags at the current evaluation

  DELYAP_HD static constexpr Index doubles_needed(int dim, int n_delays) {
    return (kMaxStages + 5 + kMaxDense) * Index(dim) + 2 * Index(n_delays) * dim + n_delays;
  }
  DELYAP_HD static StepWorkspace carve(double* p, int dim, int n_delays) {
    StepWorkspace w;
    w.k = p;
    p += kMaxStages * dim;
    w.xs = p; p += dim;
    w.x1 = p; p += dim;
    w.f1 = p; p += dim;
    w.err = p; p += dim;
    w.x_iter = p; p += dim;
    w.coef = p; p += kMaxDense * dim;
    w.xd = p; p += Index(n_delays) * dim;
    w.xd_dot = p; p += Index(n_delays) * dim;
    w.taus = p;
    return w;
  }
};

template <class System, class View = HistoryView>
struct DdeStepper {
  const System& sys;
  const Tableau& tab;
  const SolverOptions& opt;
  View& hist;
  StepWorkspace& ws;
  SolveStats& stats;
  int dim;
  int n_delays;
  double window;      // history window: largest (declared) delay
  double min_delay;   // smallest constant delay (the window for dependent delays)
  bool neutral;
  double t_base = HUGE_VAL;  // reads later than this are inside the step being taken
  bool read_ahead = false;   // some read of the current attempt fell inside the step

  DELYAP_HD DdeStepper(const System& s, const Tableau& tb, const SolverOptions& o, View& h,
                       StepWorkspace& w, SolveStats& st)
      : sys(s), tab(tb), opt(o), hist(h), ws(w), stats(st), dim(s.dim()), n_delays(s.n_delays()),
        window(window_of(s)), neutral(is_neutral(s)) {
    min_delay = window;
    if (!dependent_delays(s))
      for (int k = 0; k < n_delays; ++k) min_delay = std::fmin(min_delay, sys.delay(k));
  }

  // out = f(t, x, x(t − τ_1), …) with delayed values (and derivatives, for neutral equations)
  // read from the history. A lag outside [0, window] is a DelayOutOfRange failure.
  DELYAP_HD Status eval_rhs(double t, const double* x, double* out) {
    if (!delays_at(sys, t, x, ws.taus)) return Status::RhsError;
    // A vanishing lag evaluated at a stage state may come out slightly negative (the argument
    // then lies just ahead of t, inside the step, and reads the step's own interpolant, which
    // is fine); a lag beyond the window, or far below zero, is out of range.
    const double slack = 1e-12 * (1.0 + window);
    const double ahead_slack = 1e-2 * window + slack;
    for (int k = 0; k < n_delays; ++k) {
      const double tau = ws.taus[k];
      if (!(tau >= -ahead_slack && tau <= window + slack)) return Status::DelayOutOfRange;
      const double s = t - tau;
      if (s > t_base) read_ahead = true;
      if (!hist.eval(s, ws.xd + k * dim, neutral ? ws.xd_dot + k * dim : nullptr))
        return Status::DelayOutOfRange;
    }
    ++stats.rhs_evals;
    return call_rhs(sys, t, x, ws.xd, ws.xd_dot, out) ? Status::Success : Status::RhsError;
  }

  // Interval coefficients of the step just computed (stages in ws.k, ends x/f and x1/f1).
  DELYAP_HD void build_coefficients(double h, const double* x, const double* f) {
    if (tab.n_dense == 0) {
      hermite_coefficients(x, f, ws.x1, ws.f1, h, dim, hist.n_coef, ws.coef);
      return;
    }
    for (int m = 0; m < hist.n_coef; ++m)
      for (int d = 0; d < dim; ++d) {
        double acc = 0.0;
        if (m < tab.n_dense)
          for (int j = 0; j < tab.stages; ++j) acc += tab.dense[j][m] * ws.k[j * dim + d];
        ws.coef[m * dim + d] = acc;
      }
  }

  // Computes ws.x1, ws.f1, ws.err for a step of size h from (t, x) with f = f(t, x).
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
        for (int d = 0; d < dim; ++d) ws.x_iter[d] -= ws.x1[d];
        const double change = scaled_rms(ws.x_iter, x, ws.x1, dim, opt.rtol, opt.atol);
        if (change <= opt.overlap_tol) break;
        if (!is_finite(change)) break;
      }
      for (int d = 0; d < dim; ++d) ws.x_iter[d] = ws.x1[d];
      if (it == iterations - 1) *converged = false;
    }
    if (provisional) hist.pop_back();
    t_base = HUGE_VAL;
    if (st != Status::Success) return st;
    if (tab.adaptive()) {
      for (int d = 0; d < dim; ++d) {
        double e = 0.0;
        for (int j = 0; j < tab.stages; ++j) e += tab.e[j] * ws.k[j * dim + d];
        ws.err[d] = h * e;
      }
      *err_norm = scaled_rms(ws.err, x, ws.x1, dim, opt.rtol, opt.atol);
    } else {
      *err_norm = 0.0;  // fixed step: only a non-finite state counts as failure
      for (int d = 0; d < dim; ++d)
        if (!is_finite(ws.x1[d])) *err_norm = HUGE_VAL;
    }
    return Status::Success;
  }

 private:
  DELYAP_HD Status run_stages(double t, double h, const double* x, const double* f) {
    for (int d = 0; d < dim; ++d) ws.k[d] = f[d];
    for (int i = 1; i < tab.stages; ++i) {
      for (int d = 0; d < dim; ++d) {
        double acc = 0.0;
        for (int j = 0; j < i; ++j) acc += tab.a[i][j] * ws.k[j * dim + d];
        ws.xs[d] = x[d] + h * acc;
      }
      const Status st = eval_rhs(t + tab.c[i] * h, ws.xs, ws.k + i * dim);
      if (st != Status::Success) return st;
    }
    for (int d = 0; d < dim; ++d) {
      double acc = 0.0;
      for (int j = 0; j < tab.stages; ++j) acc += tab.b[j] * ws.k[j * dim + d];
      ws.x1[d] = x[d] + h * acc;
    }
    if (tab.fsal) {
      const double* kl = ws.k + (tab.stages - 1) * dim;
      for (int d = 0; d < dim; ++d) ws.f1[d] = kl[d];
      return Status::Success;
    }
    // Not FSAL: f at the new point is still needed for the Hermite history (and is the next
    // step's first stage, so it is not wasted).
    return eval_rhs(t + h, ws.x1, ws.f1);
  }
};

}  // namespace delyap
