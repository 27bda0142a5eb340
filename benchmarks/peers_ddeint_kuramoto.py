"""ddeint peer for the delay-coupled Kuramoto benchmark (small N only).

ddeint (0.3.0) is pure Python on top of scipy.integrate.ode (VODE).  Its
history is a ``scipy.interpolate.interp1d(kind="linear")`` of the solution at
the *output* times only, rebuilt with ``np.hstack`` after every output time.
Consequences (read from its source, measured by bench_kuramoto.py):

* the delayed values are linear interpolants between output times, so the
  accuracy is set by the output spacing dt (error ~ dt^2), not by a
  tolerance (it has none to set: VODE runs with its defaults);
* rebuilding the history is O(N x outputs) per output time, O(N x outputs^2)
  in all: with N = 1e4 and dt = 0.01 to t = 100 that is 1e4 outputs and ~4e12
  bytes copied, so N = 1e4 is out of reach; it is timed at small N instead.

The vector field is the same trig-free, per-delay-class sparse product as the
numpy peer.
"""

from __future__ import annotations

import time

import numpy as np


def solve(prob, t_end: float, dt: float):
    """r(t) on the grid 0, dt, ..., t_end.  Returns (t, r, seconds, rhs evaluations)."""
    from ddeint import ddeint

    delays = prob.delays
    B = prob.stacked_coupling()
    omega, theta0 = prob.omega, prob.theta0
    n_rhs = [0]

    def model(Y, t):
        n_rhs[0] += 1
        theta = Y(t)
        delayed = np.concatenate([Y(t - tau) for tau in delays])
        return omega + np.cos(theta) * (B @ np.sin(delayed)) - np.sin(theta) * (B @ np.cos(delayed))

    def past(t):
        return theta0 + t * omega

    tt = np.linspace(0.0, t_end, int(round(t_end / dt)) + 1)
    t0 = time.perf_counter()
    theta = ddeint(model, past, tt)
    sec = time.perf_counter() - t0
    r = np.abs(np.exp(1j * np.asarray(theta)).mean(axis=1))
    return tt, r, sec, n_rhs[0]
