"""jitcdde peer for Mackey–Glass with a state-dependent lag.

    x'(t) = beta * x(t-tau(x)) / (1 + x(t-tau(x))**n) - gamma * x(t),
    tau(x) = TAU0 + c * x(t),        x(t) = 0.5 for t <= 0

The symbolic model is ``y(0, t - TAU0 - c*y(0))`` with ``c`` as a control
parameter, so one compiled module serves every c (single runs and sweeps).
Compile time is reported apart and never counted as integration time; the
module can be cached on disk like the constant-delay peer (peers_jitcdde.py).

Initial discontinuity.  ``step_on_discontinuities`` refuses delays that depend
on the state (it needs numeric delays to pre-compute where the kink at t=0
propagates to), so one of the alternatives the jitcdde docs name is used
(``mode``):

* ``"adjust_diff"`` (default): ``adjust_diff()`` replaces the history's last
  anchor slope (0) by f over [-1e-4, 0] (a dent of ~1e-7 in the history), then
  adaptive steps from t=0.  The docs call it "usually your best choice" when
  early times matter -- here the error at t=50 and t=100 is the accuracy
  criterion.  The adaptive controller finds the propagated kink (t ~ 18–21,
  where t - tau(x(t)) crosses 0) on its own; it converges cleanly: against
  delyap at rtol=atol=1e-11, jitcdde at rtol=atol=1e-12 is off by ~1e-11 (c=2)
  and ~1e-10 (c=5) at t=100.
* ``"blind"``: ``integrate_blindly(T_BLIND, step=h)`` (the docs' suggestion for
  state-dependent delays), then adaptive steps.  NOT usable at 1e-6 accuracy:
  jitcdde's Bogacki–Shampine is FSAL and takes k1 from the last anchor's slope,
  which for a constant history is 0 instead of f(0) ~ 0.05, so the first blind
  step makes an O(h * 0.05) error that no later tolerance removes: err x(50)
  = +1.3e-4 (h=0.01) and +1.3e-5 (h=1e-3) for c=2, independent of rtol.
  1e-6 would need h ~ 1e-5, i.e. ~3e6 Python-driven steps per trajectory.
* ``"adjust_diff+blind"``: both (fixes the first slope, then blind to T_BLIND).
  Works, but fixed steps bring their own error floor (h=0.1: err x(50) ~ 1e-6)
  and no gain in speed over plain ``adjust_diff``.

Everything else follows peers_jitcdde.py: each trajectory re-applies
``set_integration_parameters`` (step size and increase credit must not leak
from one trajectory to the next), output times inside the blind phase are read
from the Hermite spline (``get_state``), and the "target time is smaller"
warning on dense output is silenced.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from _common import jitcdde_cache_key, jitcdde_compile_once, single_blas_thread
from _common import jitcdde_sample_started as sample_started

BETA, GAMMA, EXPONENT = 0.2, 0.1, 10
TAU0 = 17.0
HISTORY = 0.5
MAX_DELAY = 30.0  # declared bound on tau(x); sizes the retained past
T_BLIND = 30.0  # blind phase length: >= largest lag (17 + 5*1.4 ~ 24), as the jitcdde docs advise
BLIND_STEP = 0.01  # default fixed step of the blind phase


@dataclass
class CompiledSD:
    dde: object
    compile_seconds: float
    from_cache: bool


def _symbols():
    import symengine
    from jitcdde import t, y

    c = symengine.Symbol("c")
    delay = TAU0 + c * y(0)
    xd = y(0, t - delay)
    f = [BETA * xd / (1 + xd**EXPONENT) - GAMMA * y(0)]
    return f, c, delay


def build(cache_dir: str | os.PathLike | None = None) -> CompiledSD:
    """Compile (or load from ``cache_dir``) the model with c as a control parameter."""
    from jitcdde import jitcdde

    f, c, delay = _symbols()
    # delays= must be given: reading dde.delays lazily would reset max_delay to
    # None, which cannot be recomputed for a state-dependent lag.
    kw = dict(delays=[delay], max_delay=MAX_DELAY, control_pars=[c], verbose=False)

    def make(module_location):
        if module_location is not None:
            return jitcdde(n=1, module_location=module_location, **kw)
        return jitcdde(f, **kw)

    modulename = f"mg_sd_jitcdde_{jitcdde_cache_key(f, MAX_DELAY)}"
    return CompiledSD(*jitcdde_compile_once(make, cache_dir, modulename))


def _start(dde, c: float, rtol: float, atol: float, mode: str, blind_step: float) -> float:
    """Reset to the constant history, set c, handle the t=0 kink. Returns the time reached."""
    dde.purge_past()
    dde.constant_past([HISTORY], time=0.0)
    dde.set_parameters(float(c))  # after constant_past: it builds the C integrator
    dde.set_integration_parameters(rtol=rtol, atol=atol)
    if mode == "adjust_diff":
        dde.adjust_diff()
    elif mode == "blind":
        dde.integrate_blindly(T_BLIND, step=blind_step)
    elif mode == "adjust_diff+blind":
        dde.adjust_diff()
        dde.integrate_blindly(T_BLIND, step=blind_step)
    else:
        raise ValueError(f"mode: {mode!r}")
    return dde.t


def sample(dde, c: float, t_eval, rtol: float, atol: float, mode: str = "adjust_diff",
           blind_step: float = BLIND_STEP) -> np.ndarray:
    """x(t_eval) for one c; t_eval sorted, >= 0."""
    t_eval = np.asarray(t_eval, dtype=float)
    return sample_started(dde, _start(dde, c, rtol, atol, mode, blind_step), t_eval)


def timed_sample(model: CompiledSD, c, t_eval, rtol, atol, mode="adjust_diff",
                 blind_step=BLIND_STEP):
    """Returns (x at t_eval, seconds)."""
    t0 = time.perf_counter()
    x = sample(model.dde, c, t_eval, rtol, atol, mode, blind_step)
    return x, time.perf_counter() - t0


def sweep(model: CompiledSD, cs, t_eval, rtol, atol, mode="adjust_diff", blind_step=BLIND_STEP):
    """Sequential sweep over cs with the one compiled module.

    Returns (values (len(cs), len(t_eval)), seconds).
    """
    cs = np.asarray(cs, dtype=float)
    out = np.empty((len(cs), len(np.atleast_1d(t_eval))))
    t0 = time.perf_counter()
    for k, c in enumerate(cs):
        out[k] = sample(model.dde, c, t_eval, rtol, atol, mode, blind_step)
    return out, time.perf_counter() - t0


if __name__ == "__main__":
    # Smoke test: compile, one trajectory per mode.
    with single_blas_thread():
        m = build(None)
        print(f"compile {m.compile_seconds:.2f} s")
        for mode in ("adjust_diff", "blind", "adjust_diff+blind"):
            x, s = timed_sample(m, 2.0, [50.0, 100.0], 1e-7, 1e-10, mode)
            print(f"{mode:18s} c=2 x(50)={x[0]:.9f} x(100)={x[1]:.9f}  {s:.3f} s")
