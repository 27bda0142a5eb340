// The method-of-steps driver for one trajectory: step-size control, landing on propagated
// discontinuities, history eviction, dense output through a sink. Host and device alike; the
// caller provides the history storage (Buffer::view(), Buffer::ensure(n)) and the scratch.
#pragma once

#include <type_traits>
#include <utility>

#include "delyap/common/status.hpp"
#include "delyap/dde/controller.hpp"
#include "delyap/dde/stepper.hpp"

namespace delyap {

struct IntegrationProblem {
  double t0;
  double t_final;
  const double* y0;              // state at t0 (may differ from the history's value there)
  const double* disc = nullptr;  // sorted discontinuity points in (t0, t_final] to land on
  Index n_disc = 0;
  // Dependent delays: known discontinuities of the solution (t0, history jumps, then the points
  // found where t − τ(t, x) crosses one of them), with their smoothing level. Caller storage.
  double* known = nullptr;
  int* known_level = nullptr;
  Index n_known = 0;
  Index known_capacity = 0;
  int max_level = 0;
};

// The resumable method-of-steps driver for one trajectory. `start` sets up at t0; `advance`
// steps to a stop time (landing on it exactly) and may be called again to go on, so a caller
// can act between stops (e.g. re-orthonormalise tangent vectors) without losing the step size
// or the FSAL derivative. The history must already hold the initial function on [t0 − τmax, t0].
template <class System, class Buffer, class Exec = SerialExec>
struct Integrator {
  const System& sys;
  const Tableau& tab;
  const SolverOptions& opt;
  Buffer& buffer;
  StepWorkspace& ws;
  IntegrationProblem& p;
  SolveStats& stats;
  double* x;  // current state (caller scratch of size dim)
  double* f;  // f(t, x)
  using View = std::remove_reference_t<decltype(std::declval<Buffer&>().view())>;
  DdeStepper<System, View, Exec> stepper;
  PIController controller;
  double t = 0.0;
  double h = 0.0;
  double max_delay = 0.0;
  Index next_disc = 0;
  double land_at = HUGE_VAL;  // a crossing found for dependent delays: the next step ends here
  int pending_level = 0;      // its smoothing level
  bool dependent = false;

  DELYAP_HD Integrator(const System& s, const Tableau& tb, const SolverOptions& o, Buffer& b,
                       StepWorkspace& w, IntegrationProblem& prob, SolveStats& st,
                       double* x_, double* f_, Exec exec = Exec{})
      : sys(s), tab(tb), opt(o), buffer(b), ws(w), p(prob), stats(st), x(x_), f(f_),
        stepper(s, tb, o, b.view(), w, st, exec), controller(tb.error_order) {
    max_delay = window_of(s);
    dependent = dependent_delays(s);
  }

  // Dependent delays: the earliest time in (t, t + hh) where some α_k(s) = s − τ_k(s, x(s))
  // crosses a known discontinuity, refined by the Illinois method on the step's own dense
  // output (ws.coef must hold the step's coefficients). Returns HUGE_VAL when none; *level gets
  // the new discontinuity's level.
  DELYAP_HD double find_crossing(double hh, int* level) {
    const int dim = sys.dim(), nd = sys.n_delays();
    double* xs = stepper.ws.xs;
    double* tau = stepper.ws.taus;
    double best = HUGE_VAL;
    auto alpha = [&](double s, int k, bool* ok) {
      eval_step_polynomial(x, stepper.ws.coef, buffer.view().n_coef, dim, hh, (s - t) / hh, xs);
      *ok = delays_at(sys, s, xs, tau);
      return s - tau[k];
    };
    for (int k = 0; k < nd; ++k) {
      bool ok0, ok1;
      const double a0 = alpha(t, k, &ok0), a1 = alpha(t + hh, k, &ok1);
      if (!ok0 || !ok1) continue;
      const double tol = 1e-12 * (1.0 + std::fabs(t) + hh);
      // A step that starts on (a root-finding tolerance from) a crossing must not find the same
      // crossing again a hair later: that would spawn slivers and near-duplicate points.
      const double near = 1e-10 * (1.0 + std::fabs(t));
      for (Index j = 0; j < p.n_known; ++j) {
        const double d = p.known[j];
        const double g0 = a0 - d, g1 = a1 - d;
        if (std::fabs(g0) <= near) continue;  // on it already
        if (std::fabs(g1) <= near) {  // the step ends on the crossing (e.g. a step grid that
          if (t + hh < best) {        // meets it exactly): a discontinuity to land on as well
            best = t + hh;
            *level = p.known_level[j] + 1;
          }
          continue;
        }
        if (!(g0 * g1 < 0)) continue;  // no crossing
        double lo = t, hi = t + hh, glo = g0, ghi = g1;
        int side = 0;
        for (int it = 0; it < 60 && hi - lo > tol; ++it) {  // Illinois (modified regula falsi)
          const double m = (lo * ghi - hi * glo) / (ghi - glo);
          bool ok;
          const double gm = alpha(m, k, &ok) - d;
          if (!ok) break;
          if ((gm < 0) == (glo < 0)) {
            lo = m; glo = gm;
            if (side == -1) ghi *= 0.5;
            side = -1;
          } else {
            hi = m; ghi = gm;
            if (side == 1) glo *= 0.5;
            side = 1;
          }
        }
        const double root = 0.5 * (lo + hi);
        if (root < best) {
          best = root;
          *level = p.known_level[j] + 1;
        }
      }
    }
    return best;
  }

  DELYAP_HD void remember(double point, int level) {
    if (level > p.max_level || p.n_known >= p.known_capacity) return;
    const double near = 1e-9 * (1.0 + std::fabs(point));
    for (Index j = 0; j < p.n_known; ++j)
      if (std::fabs(p.known[j] - point) <= near) return;  // already known
    p.known[p.n_known] = point;
    p.known_level[p.n_known] = level;
    ++p.n_known;
  }

  // The smallest step that still moves t in floating point (with room for the rounding of
  // stops computed by repeated addition): 16 ulps of t.
  DELYAP_HD static double resolution_at(double time) {
    return 16.0 * 2.220446049250313e-16 * std::fmax(std::fabs(time), 1.0);
  }

  template <class Sink>
  DELYAP_HD Status start(Sink& sink) {
    View& hist = buffer.view();
    t = p.t0;
    stats.t_final = t;
    stepper.copy(x, p.y0);
    Status st = stepper.eval_rhs(t, x, f);
    if (st != Status::Success) return st;
    // f(t0) not finite (e.g. a power of a negative history value): nothing can follow.
    if (stepper.exec.sum(sys.dim(), CountNonFinite{f}) > 0.0) return Status::NonFinite;
    if (!buffer.ensure(hist.size + 1)) return Status::HistoryFull;
    hist.push_anchor(t, x, f);  // second anchor at t0: the solution side of a possible jump
    sink.start(t, x);
    // A span within the rounding of t would count as reached at once and leave every later
    // output unwritten: it is a failure of its own, not a success.
    if (p.t_final - p.t0 <= resolution_at(std::fmax(std::fabs(p.t0), std::fabs(p.t_final))))
      return Status::TimeResolution;
    if (!tab.adaptive()) {
      h = opt.dt;
    } else if (opt.dt > 0.0) {
      // The user's first step of an adaptive method, kept above what t resolves as the
      // automatic one is (dt = 1e-15 failed at t0 as step_underflow, or time_resolution).
      h = std::fmax(opt.dt, 64.0 * resolution_at(t));
    } else {
      // Hairer's estimate can fall below what t can resolve (a tiny state with a large
      // derivative: 0.01·|x0|/|f0| ≈ 1e-19); start a few rejections above that floor instead.
      h = std::fmax(stepper.initial_step(t, p.t_final, x, f, &st), 64.0 * resolution_at(t));
    }
    if (opt.min_step > 0.0) h = std::fmax(h, opt.min_step);  // e.g. f(t0) = 0 proposes 1e-6
    return st;
  }

  // Steps until t_stop (≤ p.t_final), landing on it exactly.
  template <class Sink, class Cancel>
  DELYAP_HD Status advance(double t_stop, Sink& sink, const Cancel& cancelled) {
    View& hist = buffer.view();
    // A step ending this close to the stop is stretched onto it (no sliver step after it):
    // relative to the span, not to |t|, which may be huge next to it.
    const double stop_slack = std::fmax(1e-13 * (p.t_final - p.t0), resolution_at(t_stop));
    for (;;) {
      // Points closer than a few ulps count as reached: stops computed by repeated addition
      // may fall a rounding error short of a discontinuity or of t_stop.
      const double resolution = resolution_at(t);
      const double min_step = std::fmax(opt.min_step, resolution);
      if (t >= t_stop - resolution) break;
      if (cancelled()) return Status::Cancelled;  // one relaxed atomic load: cheap per step
      if (stats.accepted + stats.rejected >= opt.max_steps) return Status::MaxSteps;
      hist.evict_before(t - max_delay);
      if (!buffer.ensure(hist.size + 2)) return Status::HistoryFull;

      double h_try = h;
      if (opt.max_step > 0.0) h_try = std::fmin(h_try, opt.max_step);
      double t_next = t + h_try;
      bool clipped = false;
      bool on_discontinuity = false;  // the step ends on a (tracked or found) discontinuity
      while (next_disc < p.n_disc && p.disc[next_disc] <= t + min_step) ++next_disc;
      // Land exactly on the next discontinuity; also absorb it when the step would end just
      // short of it (a sliver step afterwards would only waste work).
      if (next_disc < p.n_disc && t_next >= p.disc[next_disc] - 1e-6 * h_try) {
        t_next = p.disc[next_disc];
        clipped = on_discontinuity = true;
      }
      if (land_at < HUGE_VAL && t_next >= land_at - 1e-6 * h_try && land_at > t + min_step) {
        t_next = land_at;
        clipped = on_discontinuity = true;
      }
      if (t_next >= t_stop - stop_slack) {
        clipped = clipped || t_next > t_stop;
        t_next = t_stop;
      }
      const double hh = t_next - t;
      // A step cut short to land on a stop or a discontinuity may be shorter than the user's
      // min_step (a floor on what the controller asks for, not on the span that is left).
      if (!(hh >= (clipped ? resolution : min_step))) return too_small(h_try);  // NaN-safe

      double err = 0.0;
      bool converged = true;
      Status st = stepper.attempt(t, hh, x, f, &err, &converged);
      if ((st == Status::DelayOutOfRange || st == Status::NonFinite) && tab.adaptive()) {
        // A stage of a long step may reach lags the solution itself never takes, or overflow:
        // shrink the step; if that cannot help, the lag really leaves the window (or the
        // solution really blows up).
        ++stats.rejected;
        h = 0.5 * hh;
        if (!(h >= min_step)) return st;
        continue;
      }
      if (st != Status::Success) return st;

      if (tab.adaptive() && (err > 1.0 || !converged)) {
        ++stats.rejected;
        const double fac = converged ? controller.reject(err, opt) : 0.5;
        h = hh * fac;
        if (!(h >= min_step)) return is_finite(err) ? too_small(h) : Status::NonFinite;
        continue;
      }
      if (!is_finite(err)) return Status::NonFinite;

      if constexpr (detail::has_delays<System>::value) {  // only these can be dependent
        if (dependent && p.known && opt.track_discontinuities) {
          // A lag crossing a known discontinuity inside the step: redo the step to end there.
          stepper.build_coefficients(hh, x, f);
          int level = 0;
          const double cross = find_crossing(hh, &level);
          if (cross < HUGE_VAL) {
            const double sliver = std::fmax(4 * min_step, 1e-12 * (1.0 + std::fabs(t)));
            if (cross - t > sliver && t_next - cross > sliver) {
              land_at = cross;
              pending_level = level;
              h = cross - t;
              continue;  // not counted as a rejection: the error test passed
            }
            if (t_next - cross <= sliver) {  // at the end of this step: it lands there
              remember(t_next, level);
              if (land_at == t_next) land_at = HUGE_VAL;
              on_discontinuity = true;
            }
          }
          if (t_next == land_at) {
            remember(land_at, pending_level);
            land_at = HUGE_VAL;
            on_discontinuity = true;
          }
        }
      }

      if (tab.adaptive()) {
        const double fac = controller.accept(err, opt);
        h = hh * fac;
        if (clipped) h = std::fmax(h, h_try);
      } else {
        h = opt.dt;
      }
      if (stepper.read_ahead) ++stats.overlap_steps;
      stepper.build_coefficients(hh, x, f);
      hist.push_interval(ws.coef, t_next, ws.x1, ws.f1);
      sink.step(hist, t, t_next);
      t = t_next;
      stepper.copy(x, ws.x1);
      stepper.copy(f, ws.f1);
      ++stats.accepted;
      stats.t_final = t;
      if (on_discontinuity && t < p.t_final) {
        // Landed on a discontinuity: f closed the step with left-hand limits of the lagged
        // values (its last stage, FSAL), but the next step starts from the right-hand ones,
        // which differ where a lag meets a jump. One extra evaluation per point.
        st = stepper.eval_rhs(t, x, f);
        if (st != Status::Success) return st;
      }
    }
    return Status::Success;
  }

  // A step the problem wants (`wanted`) is below the floor. When it is below what t resolves
  // but would move t on the same span shifted to start at 0, the precision of t is what fails
  // (time_resolution: shift t0 toward 0); otherwise the step itself has underflowed (e.g.
  // approaching a blow-up, or below the user's min_step).
  DELYAP_HD Status too_small(double wanted) const {
    return wanted < resolution_at(t) && wanted >= resolution_at(p.t_final - p.t0)
               ? Status::TimeResolution
               : Status::StepUnderflow;
  }
};

// Integrates one trajectory from p.t0 to p.t_final. `x`, `f` are caller scratch of size dim.
template <class System, class Buffer, class Sink, class Cancel>
DELYAP_HD Status integrate(const System& sys, const Tableau& tab, const SolverOptions& opt,
                           Buffer& buffer, StepWorkspace& ws, IntegrationProblem& p,
                           double* x, double* f, Sink& sink, SolveStats& stats,
                           const Cancel& cancelled) {
  Integrator<System, Buffer> run(sys, tab, opt, buffer, ws, p, stats, x, f);
  const Status st = run.start(sink);
  if (st != Status::Success) return st;
  return run.advance(p.t_final, sink, cancelled);
}

}  // namespace delyap
