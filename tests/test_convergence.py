"""Observed orders of convergence, with and without discontinuity tracking.

Problem: x' = a x + b x(t − 1), history 1, so x' jumps at t = 0, x'' at t = 1, … The
reference is scipy's DOP853 by the method of steps. Adaptive pairs run at a fixed step here
(tolerances so loose that no step is rejected, max_step = dt) so the step size is controlled.
Step sizes do not divide the delay: without tracking, steps straddle the derivative jumps.
"""
import numpy as np
import pytest
from reference_solver import method_of_steps

import delyap as dl

A, B, T = -0.3, -1.6, 6.0


@pytest.fixture(scope="module")
def exact():
    ref = method_of_steps(lambda t, x, xd: A * x + B * xd[0], lambda t: np.ones(1), [1.0], T)
    return ref(T)[0]


def observed_order(method, ns, exact, track):
    lin = dl.rhs.linear([[A]], [[B]], 1.0)
    hs, errs = [], []
    for n in ns:
        h = 1.0 / (n + 0.37)
        kw = dict(dt=h, max_step=h)
        if method in ("DP5", "BS3"):
            kw.update(rtol=1e3, atol=1e3)
        sol = dl.solve_dde(lin, 1.0, (0, T), t_eval=[T], method=method,
                           track_discontinuities=track, **kw)
        if method in ("DP5", "BS3"):
            assert sol.stats["rejected"] == 0
        hs.append(h)
        errs.append(abs(sol.y[0, 0] - exact))
    return np.polyfit(np.log(hs), np.log(errs), 1)[0]


CASES = [("DP5", 5, [6, 12, 24]), ("BS3", 3, [12, 24, 48, 96]), ("RK4", 4, [8, 16, 32, 64]),
         ("Euler", 1, [50, 100, 200, 400])]


@pytest.mark.parametrize("method, order, ns", CASES)
def test_order_with_tracking(method, order, ns, exact):
    assert observed_order(method, ns, exact, True) == pytest.approx(order, abs=0.3)


@pytest.mark.parametrize("method, order, ns", CASES[:3])
def test_order_drops_without_tracking(method, order, ns, exact):
    assert observed_order(method, ns, exact, False) < order - 0.7


@pytest.mark.parametrize("method", ["DP5", "BS3"])
def test_adaptive_error_follows_tolerance(method, exact):
    """Tighter rtol gives a proportionally smaller error (tolerance proportionality)."""
    lin = dl.rhs.linear([[A]], [[B]], 1.0)
    errs = []
    for tol in (1e-5, 1e-7, 1e-9):
        sol = dl.solve_dde(lin, 1.0, (0, T), t_eval=[T], method=method, rtol=tol, atol=tol)
        errs.append(abs(sol.y[0, 0] - exact))
        assert errs[-1] < 50 * tol
    assert errs[2] < errs[0] / 100
