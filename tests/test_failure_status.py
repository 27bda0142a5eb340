"""Failures are named by their first cause, and no result says success over a wrong number."""
import numpy as np
import pytest

import delyap as dl
from delyap.solution import DDESolution

MG = dict(beta=0.2, gamma=0.1, n=10, tau=17.0)


@pytest.mark.parametrize("span", [(1e16, 1e16 + 4), (1e16, 1e16 + 1e3)])
def test_a_span_t_cannot_resolve_is_time_resolution(span):
    """At t = 1e16 one ulp is 2: the issue's call used to return NaN as success."""
    t_eval = np.linspace(*span, 3)
    sol = dl.solve_dde(dl.rhs.mackey_glass(**MG), 0.5, span, t_eval=t_eval, throw=False)
    assert sol.status_names == "time_resolution"
    assert not sol.success and "time_resolution" in sol.message
    assert sol.y[0, 0] == 0.5  # the initial state is known; what follows is not
    with pytest.raises(dl.IntegrationError, match="time_resolution"):
        dl.solve_dde(dl.rhs.mackey_glass(**MG), 0.5, span, t_eval=t_eval)


def test_a_fixed_step_below_the_precision_of_t_is_time_resolution():
    sol = dl.solve_dde(dl.rhs.mackey_glass(**MG), 0.5, (1e12, 1e12 + 10), method="RK4",
                       dt=1e-5, throw=False)
    assert sol.status_names == "time_resolution"


@pytest.mark.parametrize("t0", [1e6, 1e9])
def test_a_large_but_resolvable_t0_solves_like_the_shifted_problem(t0):
    """Mackey–Glass is autonomous: starting at t0 or at 0 is the same solution, up to the
    rounding of t (ulp(1e9) ≈ 1.2e-7) amplified by the dynamics."""
    shifted = dl.solve_dde(dl.rhs.mackey_glass(**MG), 0.5, (t0, t0 + 200), t_eval=[t0 + 200],
                           rtol=1e-8, atol=1e-10)
    plain = dl.solve_dde(dl.rhs.mackey_glass(**MG), 0.5, (0, 200), t_eval=[200],
                         rtol=1e-8, atol=1e-10)
    assert shifted.success
    np.testing.assert_allclose(shifted.y, plain.y, atol=1e-6 if t0 > 1e8 else 1e-8)


@pytest.mark.parametrize("method", ["DP5", "BS3", "RK4"])
def test_nan_from_the_right_hand_side_is_non_finite_not_a_lag_error(method):
    """x_τ^n with n = 0.5 and a negative history is NaN at t0: the first cause is the state,
    not the lag computed from it (the issue saw delay_out_of_range)."""
    kw = {"dt": 0.1} if method == "RK4" else {}
    sol = dl.solve_dde(dl.rhs.mackey_glass(n=0.5), -1.0, (0, 50), method=method, throw=False, **kw)
    assert sol.status_names == "non_finite"
    assert sol.t_final == 0.0


def test_nan_reached_later_is_non_finite():
    """x' = −1 + 0·√x(t − 1), history 1 + t, x(0) = 1: x = 1 − t, and the lagged value turns
    negative (√ is NaN) once t > 2. The failure is non_finite, reported at the last good step."""
    sys_ = dl.rhs.python(lambda t, x, xd: -1.0 + 0.0 * np.sqrt(xd[:, 0]), 1, 1.0)
    sol = dl.solve_dde(sys_, lambda t: 1.0 + t, (0, 5), throw=False)
    assert sol.status_names == "non_finite"
    assert 1.0 <= sol.t_final <= 2.0 + 1e-9  # x_τ < 0 from t = 2 (x(t) = 1 − t on [0, …])


def test_a_blow_up_is_a_step_underflow_at_the_singularity():
    """x' = x², x(0) = 1 blows up at t = 1: the steps shrink to nothing there."""
    sys_ = dl.rhs.python(lambda t, x, xd: x ** 2 + 0.0 * xd[:, 0], 1, 1.0)
    sol = dl.solve_dde(sys_, 1.0, (0, 2), throw=False)
    assert sol.status_names == "step_underflow"
    assert sol.t_final == pytest.approx(1.0, abs=1e-3)


def test_success_never_holds_a_non_finite_number():
    """The central invariant of results: a success whose numbers are not all finite becomes
    non_finite (per trajectory; the finite ones keep their success)."""
    raw = {"t": np.array([0.0, 1.0]),
           "y": np.array([[[1.0], [2.0]], [[1.0], [np.nan]], [[1.0], [np.inf]]]),
           "status": np.array([0, 0, 5], dtype=np.int32),
           "t_final": np.array([1.0, 1.0, 0.5]),
           "y_final": np.array([[2.0], [1.0], [1.0]]),
           "stats": np.zeros((3, 5), dtype=np.int64)}
    status_before = raw["status"].copy()
    sol = DDESolution._from_core(raw, "DP5", 3, 0.0)
    assert sol.status_names == ["success", "non_finite", "delay_out_of_range"]
    np.testing.assert_array_equal(raw["status"], status_before)  # the core's array untouched


def test_a_tiny_initial_state_with_a_large_slope_starts_fine():
    """Hairer's initial step 0.01·|x0|/|f0| is 2e-19 here, below what t = 0 resolves: the run
    must start above that floor instead of failing at t0 (found by the property tests)."""
    lin = dl.rhs.linear([[0.0]], [[[10.0]]], [1.0])
    sol = dl.solve_dde(lin, 1.0, (0, 1), y0=2e-14, t_eval=[0.5, 1.0])
    np.testing.assert_allclose(sol.y[:, 0], [5.0 + 2e-14, 10.0 + 2e-14], rtol=1e-12)
