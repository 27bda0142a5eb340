"""Jumps at t0 and inside the history, on piecewise-polynomial exact solutions.

x'(t) = −x(t − 1) with a piecewise-constant history and y0 ≠ x(0⁻) has an exact solution that is
a polynomial on each half-unit interval, of degree growing by one per delay. A Runge–Kutta method
of (quadrature) order q integrates a piece exactly while the right-hand side on it is a
polynomial of degree < q in t and the history pieces it reads are represented exactly, so every
method must reproduce those pieces to rounding. A stage that reads a jump from the wrong side
(the one-sided limit the step does not integrate over) is off by O(h) at once.
"""
import numpy as np
import pytest
from numpy.polynomial import Polynomial as P

import delyap as dl

PIECE = 0.5  # the history jumps at −0.5 and at 0 (y0); breakpoints are multiples of 0.5


def exact_pieces(before, inside, y0, n_pieces):
    """Pieces p_k on [k/2, (k+1)/2], k = −2 … n_pieces − 1, of x' = −x(t − 1) with history
    `before` on [−1, −0.5), `inside` on [−0.5, 0), x(0) = y0: exact polynomial arithmetic."""
    pieces = {-2: P([before]), -1: P([inside])}
    start = float(y0)
    for k in range(n_pieces):
        lagged = pieces[k - 2](P([-1.0, 1.0]))  # p_{k−2}(s − 1)
        antiderivative = lagged.integ()
        a = k * PIECE
        pieces[k] = start - (antiderivative - antiderivative(a))
        start = pieces[k](a + PIECE)
    return pieces


def rhs_degree(pieces, k):
    """Degree in t of the right-hand side on piece k (0 for a constant, −1 for zero)."""
    p = pieces[k - 2].trim(tol=0)
    return -1 if np.all(p.coef == 0) else p.degree()


# Degree of right-hand side a method integrates exactly (quadrature order − 1) while reading its
# own history interpolant exactly: Euler constants, BS3 (cubic Hermite) quadratics, RK4 (cubic
# Hermite) cubics, DP5 (4th-degree continuous extension) quartics.
EXACT_DEGREE = {"Euler": 0, "BS3": 2, "RK4": 3, "DP5": 4}

CASES = {  # (history before −0.5, history on [−0.5, 0), y0): a jump at t0, and one inside too
    "jump_at_t0": (0.0, 0.0, 1.0),
    "jumps_at_t0_and_inside": (0.0, 1.0, 2.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["Euler", "RK4", "BS3", "DP5"])
def test_every_method_is_exact_on_piecewise_polynomials(method, case):
    before, inside, y0 = CASES[case]
    pieces = exact_pieces(before, inside, y0, 14)
    # The horizon: the end of the last piece (from 0 on) whose right-hand side the method
    # integrates exactly; every piece before it must be exact too.
    n_exact = 0
    while n_exact < 14 and rhs_degree(pieces, n_exact) <= EXACT_DEGREE[method]:
        n_exact += 1
    assert n_exact >= 2, "the case must reach past the first propagated jump"
    horizon = n_exact * PIECE
    t = np.arange(1, 2 * n_exact + 1) * (PIECE / 2)  # piece ends and midpoints
    at_ends = np.isclose(t / PIECE, np.round(t / PIECE))
    want = np.array([pieces[int(np.ceil(s / PIECE)) - 1](s) for s in t])

    lin = dl.rhs.linear([[0.0]], [[[-1.0]]], [1.0])
    history = lambda s: np.where(s < -0.5, before, inside)  # noqa: E731
    kw = {"dt": 0.1} if method in ("Euler", "RK4") else {}
    sol = dl.solve_dde(lin, history, (0, horizon), t_eval=t, y0=y0, method=method,
                       history_jumps=[-0.5], **kw)
    # At step ends every method is exact; in between, the dense output is exact only where the
    # solution's piece has at most its degree (cubic Hermite; DP5's extension: quartic).
    dense_degree = 4 if method == "DP5" else 3
    piece_degree = np.array([pieces[int(np.ceil(s / PIECE)) - 1].degree() for s in t])
    check = at_ends | ((piece_degree <= dense_degree) & (method in ("BS3", "DP5")))
    np.testing.assert_allclose(sol.y[check, 0], want[check], rtol=0, atol=1e-13 * max(1, horizon))
    assert sol.success


@pytest.mark.parametrize("method", ["RK4", "DP5"])
def test_issue_example_jump_at_t0(method):
    """x' = −x(t − 1), history 0, x(0) = 1: x = 1 on [0, 1] and 2 − t on [1, 2]."""
    lin = dl.rhs.linear(A=[[0.0]], B=[[[-1.0]]], tau=[1.0])
    kw = {"dt": 0.1} if method == "RK4" else {}
    sol = dl.solve_dde(lin, 0.0, (0, 2), y0=1.0, method=method, t_eval=[0.5, 1.0, 1.5, 2.0], **kw)
    np.testing.assert_allclose(sol.y[:, 0], [1.0, 1.0, 0.5, 0.0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", ["BS3", "DP5"])
def test_two_delays_stay_exact_before_the_first_lag_reaches_t0(method):
    """The README's example: u' = −u(t − 1/3) − u(t − 1/5), history 0, u(0) = 1: u = 1 on
    [0, 1/5] exactly, then u = 1 − (t − 1/5) up to 1/3."""
    lin = dl.rhs.linear(A=[[0.0]], B=[[[-1.0]], [[-1.0]]], tau=[1 / 3, 1 / 5])
    t = np.array([0.1, 0.2, 0.25, 0.3])
    sol = dl.solve_dde(lin, 0.0, (0, 1 / 3), y0=1.0, t_eval=t, method=method)
    np.testing.assert_allclose(sol.y[:, 0], [1.0, 1.0, 0.95, 0.9], rtol=0, atol=1e-14)


def test_neutral_reads_take_the_derivative_from_the_integrated_side():
    """Neutral x'(t) = x'(t − 1) with a history whose slope jumps from 1 to 2 at −0.5: x' = 1
    on (0, 0.5) and 2 on (0.5, 1). The last stage of the step ending at 0.5 reads x'(−0.5) and
    must take the left slope (1), the first stage of the next step the right one (2). The
    tolerance covers the history's finite-difference slopes (about 1e-11)."""
    sys_ = dl.rhs.python(lambda t, x, xd, xdd: xdd[:, 0], 1, 1.0, neutral=True)
    history = lambda s: np.where(s < -0.5, s, 2 * s + 0.5)  # noqa: E731
    sol = dl.solve_dde(sys_, history, (0, 1), t_eval=[0.25, 0.5, 0.75, 1.0], y0=0.5,
                       history_jumps=[-0.5], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.y[:, 0], [0.75, 1.0, 1.5, 2.0], rtol=0, atol=1e-10)


def test_jumps_are_read_from_the_right_side_whatever_the_rounding():
    """fl(fl(t0 + τ) − τ) is an ulp off t0 for about a quarter of decimal (t0, τ) pairs: the read
    at the jump must still take the side its step integrates over (before: 48 of 200 pairs
    wrong, by up to 0.03 with RK4). x' = −x(t − τ), history 0, x(t0) = 1: x = 1 on [t0, t0 + τ],
    then 1 − (t − t0 − τ)."""
    rng = np.random.default_rng(12)
    lin_cache = {}
    for t0, tau in zip(np.round(rng.uniform(-5, 5, 60), 1), np.round(rng.uniform(0.1, 2, 60), 1)):
        lin = lin_cache.setdefault(tau, dl.rhs.linear(A=[[0.0]], B=[[[-1.0]]], tau=[tau]))
        t = [t0 + tau, t0 + 1.5 * tau, t0 + 2 * tau]
        want = [1.0, 1 - 0.5 * tau, 1 - tau]
        for method, kw in (("RK4", {"dt": tau / 10}), ("DP5", {})):
            sol = dl.solve_dde(lin, 0.0, (t0, t0 + 2 * tau), y0=1.0, method=method, t_eval=t, **kw)
            np.testing.assert_allclose(sol.y[:, 0], want, rtol=0, atol=1e-12,
                                       err_msg=f"{method}, t0 = {t0}, tau = {tau}")


@pytest.mark.parametrize("method", ["RK4", "DP5", "BS3"])
def test_a_history_jump_at_a_decimal_time(method):
    """History 0 before −0.3 and 1 on [−0.3, 0), x(0) = 1, τ = 1: x(1) = 1 − 0.3 exactly."""
    lin = dl.rhs.linear(A=[[0.0]], B=[[[-1.0]]], tau=[1.0])
    history = lambda s: np.where(s < -0.3, 0.0, 1.0)  # noqa: E731
    kw = {"dt": 0.1} if method == "RK4" else {}
    sol = dl.solve_dde(lin, history, (0, 1), y0=1.0, history_jumps=[-0.3], method=method,
                       t_eval=[0.7, 1.0], **kw)
    np.testing.assert_allclose(sol.y[:, 0], [1.0, 0.7], rtol=0, atol=1e-13)


@pytest.mark.parametrize("method,dt", [("RK4", 0.125), ("RK4", 0.1), ("DP5", None), ("BS3", None)])
def test_state_dependent_lags_restart_after_a_crossing(method, dt):
    """τ(t, x) = 1 declared as a lag function: its crossing of the jump at t0 is found on the
    fly (even when a step grid meets it exactly) and the next step starts from the right-hand
    limits, as with the constant delay: x = 1, then 2 − t."""
    py = dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], 1, tau=lambda t, x: [1.0], max_delay=1.5)
    kw = {"dt": dt} if dt else {}
    sol = dl.solve_dde(py, 0.0, (0, 2), y0=1.0, method=method, t_eval=[1, 1.5, 2], **kw)
    np.testing.assert_allclose(sol.y[:, 0], [1.0, 0.5, 0.0], rtol=0, atol=1e-13)
