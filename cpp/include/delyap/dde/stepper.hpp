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

  static Index doubles_needed(int dim, int n_delays) {
    return (kMaxStages + 5 + kMaxDense) * Index(dim) + Index(n_delays) * dim;
  }
  DELYAP_HD static StepWorkspace carve(double* p, int dim) {
    StepWorkspace w;
    w.k = p;
    p += kMaxStages * dim;
    w.xs = p; p += dim;
    w.x1 = p; p += dim;
    w.f1 = p; p += dim;
    w.err = p; p += dim;
    w.x_iter = p; p += dim;
    w.coef = p; p += kMaxDense * dim;
    w.xd = p;
    return w;
  }
};

template <class System>
struct DdeStepper {
  const System& sys;
  const Tableau& tab;
  const SolverOptions& opt;
  HistoryView& hist;
  StepWorkspace& ws;
  SolveStats& stats;
  int dim;
  int n_delays;
  double min_delay;

  DELYAP_HD DdeStepper(const System& s, const Tableau& tb, const SolverOptions& o, HistoryView& h,
                       StepWorkspace& w, SolveStats& st)
      : sys(s), tab(tb), opt(o), hist(h), ws(w), stats(st), dim(s.dim()), n_delays(s.n_delays()) {
    min_delay = HUGE_VAL;
    for (int k = 0; k < n_delays; ++k) min_delay = std::fmin(min_delay, sys.delay(k));
  }

  // out = f(t, x, x(t − τ_1), …) with delayed values read from the history.
  DELYAP_HD Status eval_rhs(double t, const double* x, double* out) {
    for (int k = 0; k < n_delays; ++k)
      if (!hist.eval(t - sys.delay(k), ws.xd + k * dim)) return Status::DelayOutOfRange;
    ++stats.rhs_evals;
    return sys.rhs(t, x, ws.xd, out) ? Status::Success : Status::RhsError;
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
    const bool overlap = h > min_delay;
    const int iterations = overlap ? opt.max_overlap_iterations : 1;
    bool provisional = false;
    *converged = true;
    Status st = Status::Success;
    for (int it = 0; it < iterations; ++it) {
      st = run_stages(t, h, x, f);
      if (st != Status::Success || !overlap) break;
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
