"""Known answers: REFERENCES.md cases 1, 2, 3 and 4, and scipy method-of-steps references."""
import numpy as np
import pytest
from reference_solver import method_of_steps
from scipy.special import lambertw

import delyap as dl

# Case 1: x' = −x(t − 1), x = 1 for t ≤ 0; polynomial pieces known exactly.
CASE1 = {1: 0.0, 2: -1 / 2, 3: -1 / 6, 4: 5 / 24, 5: 19 / 120, 6: -41 / 720}


@pytest.mark.parametrize("method", ["DP5", "BS3"])
def test_case1_exact_values(method):
    lin = dl.rhs.linear([[0.0]], [[-1.0]], 1.0)
    t = np.array(sorted(CASE1))
    sol = dl.solve_dde(lin, 1.0, (0, 6), t_eval=t, method=method, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(sol.y[:, 0], [CASE1[k] for k in t], rtol=0, atol=1e-8)
    assert sol.status == 0 and sol.success


def test_case1_same_through_python_rhs():
    py = dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], 1, 1.0)
    sol = dl.solve_dde(py, 1.0, (0, 6), t_eval=[1, 2, 3, 4, 5, 6], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(sol.y[:, 0], list(CASE1.values()), atol=1e-8)


def _prony_rate(t, x):
    """Dominant root λ (complex allowed) of a sampled linear-recurrence signal."""
    # x_{k+2} = p x_{k+1} + q x_k for a (possibly complex-pair) single mode.
    A = np.column_stack([x[1:-1], x[:-2]])
    p, q = np.linalg.lstsq(A, x[2:], rcond=None)[0]
    z = np.roots([1.0, -p, -q])
    dt = t[1] - t[0]
    lam = np.log(z.astype(complex)) / dt
    return lam[np.argmax(lam.real)]


@pytest.mark.parametrize("a, expected", [
    (1.0, 0.5671432904),
    (-1.0, -0.3181315052 + 1.3372357014j),
    (-0.5, -0.7940236323 + 0.7701117505j),
])
def test_lambert_w_growth_rates(a, expected):
    """x' = a x(t − 1): solutions grow like exp(λt), λ = W₀(a)."""
    assert abs(lambertw(a, 0) - expected) < 1e-9  # the test's own premise
    lin = dl.rhs.linear([[0.0]], [[a]], 1.0)
    t = np.linspace(8, 22, 281)
    sol = dl.solve_dde(lin, 1.0, (0, 22), t_eval=t, rtol=1e-11, atol=1e-14)
    x = sol.y[:, 0]
    if a > 0:
        rate = np.polyfit(t, np.log(x), 1)[0]
        assert rate == pytest.approx(expected, abs=1e-6)
    else:
        lam = _prony_rate(t, x)
        assert lam.real == pytest.approx(expected.real, abs=1e-6)
        assert abs(lam.imag) == pytest.approx(expected.imag, abs=1e-6)


@pytest.mark.parametrize("method", ["DP5", "BS3"])
def test_mackey_glass_tight_reference(method):
    """Case 4: cross-checked values to about 1e-9."""
    mg = dl.rhs.mackey_glass(beta=0.2, gamma=0.1, n=10, tau=17.0)
    tol = 1e-10 if method == "DP5" else 1e-9
    sol = dl.solve_dde(mg, 0.5, (0, 100), t_eval=[10, 50, 100], method=method, rtol=tol, atol=tol)
    np.testing.assert_allclose(sol.y[:, 0], [0.815443576, 0.644119710, 1.050020507], atol=2e-8)


def test_mackey_glass_default_tolerance_is_close_to_reference():
    mg = dl.rhs.mackey_glass()
    sol = dl.solve_dde(mg, 0.5, (0, 100), t_eval=[10, 50, 100])
    np.testing.assert_allclose(sol.y[:, 0], [0.815443576, 0.644119710, 1.050020507], atol=1e-4)


def test_two_delays_with_jump_at_t0():
    """Case 3: u' = −u(t − 1/3) − u(t − 1/5), history 0, u(0) = 1, against scipy."""
    taus = [1 / 3, 1 / 5]
    ref = method_of_steps(lambda t, x, xd: -xd[0] - xd[1], lambda t: np.zeros(1), taus, 1.0,
                          y0=[1.0])
    lin = dl.rhs.linear([[0.0]], [[[-1.0]], [[-1.0]]], taus)
    t = np.linspace(0, 1, 11)
    sol = dl.solve_dde(lin, 0.0, (0, 1), t_eval=t, y0=1.0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.y[1:, 0], [ref(s)[0] for s in t[1:]], atol=1e-9)
    # The solution side of the jump: u(0) = 1, and u stays 1 on [0, 1/5] (history is 0).
    assert sol.y[0, 0] == 1.0
    assert sol.y[1, 0] == pytest.approx(1.0, abs=1e-12)


def test_callable_history_against_scipy():
    """A non-constant history h(t) = cos(t) sampled on a grid, 2-D linear system."""
    A = np.array([[-0.4, 0.3], [-0.2, -0.1]])
    B = np.array([[-0.5, 0.1], [0.2, -0.8]])
    def hist(t):
        return np.stack([np.cos(t), np.sin(2 * t)], axis=-1)

    ref = method_of_steps(lambda t, x, xd: A @ x + B @ xd[0], lambda s: hist(np.array(s)),
                          [1.3], 6.0)
    lin = dl.rhs.linear(A, B, 1.3)
    t = np.linspace(0, 6, 25)
    sol = dl.solve_dde(lin, hist, (0, 6), t_eval=t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.y, np.array([ref(s) for s in t]), atol=1e-8)


def test_steps_longer_than_the_delay():
    """A tiny delay on a slow solution: steps exceed τ and are iterated, accuracy holds."""
    tau = 0.01
    lin = dl.rhs.linear([[-0.2]], [[-0.3]], tau)
    ref = method_of_steps(lambda t, x, xd: -0.2 * x - 0.3 * xd[0], lambda t: np.ones(1), [tau], 5.0)
    sol = dl.solve_dde(lin, 1.0, (0, 5), t_eval=[1, 2, 5], rtol=1e-8, atol=1e-10)
    assert sol.stats["overlap_steps"] > 0.5 * sol.stats["accepted"]
    np.testing.assert_allclose(sol.y[:, 0], [ref(s)[0] for s in (1, 2, 5)], atol=1e-7)
