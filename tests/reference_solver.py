"""An independent reference: the method of steps with scipy's DOP853 at tight tolerances.

Each interval of length min(τ) is an ODE because every delayed argument falls into already
solved pieces (or the initial history); the pieces' dense outputs are kept and looked up.
"""
from __future__ import annotations

import bisect

import numpy as np
from scipy.integrate import solve_ivp


def method_of_steps(f, history, taus, t_end, y0=None, t0=0.0, rtol=1e-13, atol=1e-14):
    """Returns a callable x(t) on [t0 − max τ, t_end].

    f(t, x, xd) with xd of shape (n_delays, dim); history(t) returns shape (dim,).
    """
    taus = np.atleast_1d(np.asarray(taus, dtype=float))
    x0 = np.atleast_1d(np.asarray(history(t0) if y0 is None else y0, dtype=float))
    starts, pieces = [], []

    def x_at(s):
        if s <= t0:
            return np.atleast_1d(history(s))
        i = bisect.bisect_right(starts, s) - 1
        return pieces[i](s)

    step = taus.min()
    t = t0
    while t < t_end - 1e-14:
        t1 = min(t + step, t_end)
        def rhs(s, x):
            return f(s, x, np.array([x_at(s - tau) for tau in taus]))

        sol = solve_ivp(rhs, (t, t1), x0, method="DOP853", rtol=rtol, atol=atol, dense_output=True)
        assert sol.success, sol.message
        starts.append(t)
        pieces.append(sol.sol)
        x0 = sol.y[:, -1]
        t = t1
    return lambda s: x_at(s)
