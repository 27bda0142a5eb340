"""jitcdde peer for the Mackey–Glass benchmark.

    x'(t) = beta * x(t-tau) / (1 + x(t-tau)**n) - gamma * x(t),   x(t) = 0.5 for t <= 0

jitcdde translates the right-hand side to C and compiles it, but its step-size
loop (``integrate`` / ``try_single_step``) runs in Python and calls into the C
module once per stage group.  Its integrator is Bogacki–Shampine 3(2) with cubic
Hermite dense output.

Fairness choices (see benchmarks/jitcdde_notes.md for the measurements):

* The model is compiled ONCE with ``tau`` as a control parameter and reused for
  every delay value (single trajectory and sweep alike).  Compile time is
  reported separately and never counted as integration time.  The compiled
  module can optionally be cached on disk (``cache_dir``) so repeated benchmark
  runs skip the C compiler entirely.
* jitcdde's default compiler flags are kept (-O3 -ffast-math -march=native);
  passing ``extra_compile_args`` would *replace* them and slow it down.
* The initial derivative discontinuity is handled with
  ``step_on_discontinuities`` (the method the jitcdde docs recommend for
  constant delays).  It refuses delays that depend on control parameters, so
  before each trajectory we tell it the current numeric delay via
  ``dde.delays = [0, tau]``.  It integrates [0, tau] with steps that land
  exactly on t = tau; output times inside that window are read from the
  integrator's Hermite spline (``get_state``) because ``integrate`` cannot go
  backwards.
* Every trajectory starts from identical integrator settings
  (``set_integration_parameters`` is re-applied), otherwise the step size and
  step-increase credit leak from one trajectory into the next and results
  depend on sweep order.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from _common import (
    jitcdde_cache_key,
    jitcdde_compile_once,
    jitcdde_sample_started,
    single_blas_thread,
)

BETA, GAMMA, EXPONENT = 0.2, 0.1, 10
HISTORY = 0.5
# Upper bound on any tau we will set; jitcdde needs it up front because the
# delay is symbolic.  It only sizes how much past is retained.
MAX_TAU = 30.0

# Tight reference values for tau=17 (published; delyap recomputes them in-run).
REFERENCE_TAU17 = {10.0: 0.815443576, 50.0: 0.644119710, 100.0: 1.050020507}


@dataclass
class CompiledMG:
    dde: object  # jitcdde instance bound to the compiled module
    compile_seconds: float  # symbolic setup + C compilation (or module load)
    from_cache: bool


def _mg_symbols():
    import symengine
    from jitcdde import t, y

    tau = symengine.Symbol("tau")
    xd = y(0, t - tau)
    f = [BETA * xd / (1 + xd**EXPONENT) - GAMMA * y(0)]
    return f, tau


def build_mackey_glass(cache_dir: str | os.PathLike | None = None) -> CompiledMG:
    """Compile (or load from ``cache_dir``) the MG model with tau as a control parameter."""
    from jitcdde import jitcdde

    f, tau = _mg_symbols()

    def make(module_location):
        if module_location is not None:
            # A module-loaded jitcdde has no f_sym, so n, delays, max_delay and
            # control_pars must be restated exactly as at compile time.
            return jitcdde(n=1, delays=[tau], max_delay=MAX_TAU, control_pars=[tau],
                           module_location=module_location, verbose=False)
        # Passing delays explicitly matters: reading ``dde.delays`` lazily later
        # resets max_delay to None, which then cannot be recomputed for a symbolic tau.
        return jitcdde(f, delays=[tau], max_delay=MAX_TAU, control_pars=[tau], verbose=False)

    modulename = f"mg_jitcdde_{jitcdde_cache_key(f, MAX_TAU)}"
    return CompiledMG(*jitcdde_compile_once(make, cache_dir, modulename))


def _start_trajectory(dde, tau: float, rtol: float, atol: float) -> float:
    """Reset to the constant history, set tau, and step across [0, tau].

    Returns the time reached (== tau).
    """
    dde.purge_past()
    dde.constant_past([HISTORY], time=0.0)
    dde.set_parameters(float(tau))  # must follow constant_past: it builds the C integrator
    dde.set_integration_parameters(rtol=rtol, atol=atol)
    # Setting delays resets max_delay to max(delays) = tau, which is also the
    # tightest correct amount of past to keep.
    dde.delays = [0.0, float(tau)]
    dde.step_on_discontinuities()
    return dde.t


def _sample(dde, tau: float, t_eval: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """x(t_eval) for one tau; t_eval must be sorted and start at >= 0."""
    return jitcdde_sample_started(dde, _start_trajectory(dde, tau, rtol, atol), t_eval)


def integrate_single(model: CompiledMG, tau: float = 17.0, t_end: float = 1e4,
                     dt_out: float = 1.0, rtol: float = 1e-6, atol: float = 1e-9):
    """One trajectory with output every ``dt_out``.  Returns (times, values, seconds)."""
    times = np.arange(0.0, t_end + 0.5 * dt_out, dt_out)
    t0 = time.perf_counter()
    values = _sample(model.dde, tau, times, rtol, atol)
    return times, values, time.perf_counter() - t0


def integrate_sweep(model: CompiledMG, taus, t_eval, rtol: float = 1e-6, atol: float = 1e-9):
    """Sequential sweep over ``taus`` reusing the compiled module.

    Returns (values of shape (len(taus), len(t_eval)), seconds).
    """
    taus = np.asarray(taus, dtype=float)
    if taus.max() > MAX_TAU:
        raise ValueError(f"tau > MAX_TAU={MAX_TAU}; rebuild with a larger MAX_TAU")
    t_eval = np.asarray(t_eval, dtype=float)
    out = np.empty((len(taus), len(t_eval)))
    t0 = time.perf_counter()
    for k, tau in enumerate(taus):
        out[k] = _sample(model.dde, tau, t_eval, rtol, atol)
    return out, time.perf_counter() - t0


def accuracy_tau17(model: CompiledMG, rtol: float, atol: float) -> dict[float, float]:
    """Signed error x_jitcdde(t) - x_ref(t) at the reference times (tau=17)."""
    ts = np.array(sorted(REFERENCE_TAU17))
    xs = _sample(model.dde, 17.0, ts, rtol, atol)
    return {t: x - REFERENCE_TAU17[t] for t, x in zip(ts, xs)}


def _scan(tols, atol_ratio, sweep_n, sweep_t_end, repeats, cache_dir):
    """Accuracy/time table used for benchmarks/jitcdde_notes.md."""
    m = build_mackey_glass(cache_dir)
    print(f"# jitcdde compile: {m.compile_seconds:.2f} s (from cache: {m.from_cache})")
    taus = np.linspace(5.0, 30.0, sweep_n)
    dense = np.arange(0.0, sweep_t_end + 0.5, 1.0)
    sparse = np.array([100.0, sweep_t_end])
    print("| rtol | atol | err x(10) | err x(50) | err x(100) | (a) s | "
          "(b) s, out every 1.0 | (b) s, out at {100, T} |")
    print("|---|---|---|---|---|---|---|---|")
    for rtol in tols:
        atol = rtol * atol_ratio
        err = accuracy_tau17(m, rtol, atol)
        ta = min(integrate_single(m, rtol=rtol, atol=atol)[2] for _ in range(repeats))
        _, tb_dense = integrate_sweep(m, taus, dense, rtol, atol)
        _, tb_sparse = integrate_sweep(m, taus, sparse, rtol, atol)
        print(f"| {rtol:.0e} | {atol:.0e} | "
              + " | ".join(f"{err[t]:+.2e}" for t in (10.0, 50.0, 100.0))
              + f" | {ta:.3f} | {tb_dense:.2f} | {tb_sparse:.2f} |", flush=True)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scan", action="store_true", help="print the accuracy/time table")
    ap.add_argument("--tols", type=float, nargs="+",
                    default=[1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10])
    ap.add_argument("--atol-ratio", type=float, default=1.0, help="atol = rtol * ratio")
    ap.add_argument("--sweep-n", type=int, default=1000)
    ap.add_argument("--sweep-t-end", type=float, default=500.0)
    ap.add_argument("--repeats", type=int, default=5, help="best-of-N for the single trajectory")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()

    with single_blas_thread():
        if args.scan:
            _scan(args.tols, args.atol_ratio, args.sweep_n, args.sweep_t_end, args.repeats,
                  args.cache_dir)
        else:
            # Smoke test: compile, accuracy at one tolerance, short runs.
            m = build_mackey_glass(args.cache_dir)
            print(f"compile {m.compile_seconds:.2f} s (from cache: {m.from_cache})")
            print("errors at rtol=atol=1e-8:", accuracy_tau17(m, 1e-8, 1e-8))
            _, _, s = integrate_single(m, t_end=1000.0, rtol=1e-6, atol=1e-9)
            print(f"single to t=1000: {s:.3f} s")
            v, s = integrate_sweep(m, np.linspace(5, 30, 10), [100.0, 500.0])
            print(f"10-tau sweep to t=500: {s:.3f} s; x(100) = {np.round(v[:, 0], 5)}")
