"""The DDE solver: problems a review found (each failed on the code before its fix).

Negative lags (reads of the future) ran to success; a history jump that a grid point missed by
an ulp, or a repeated jump, gave a wrong solution with success; atol=0 failed at t0 on a
component that is exactly 0; min_step refused the short last step onto t_final."""
import numpy as np
import pytest

import delyap as dl

LIN = dl.rhs.linear(A=[[0.0]], B=[[[-1.0]]], tau=[1.0])


@pytest.mark.parametrize("max_delay, lag", [(1.0, -0.009), (100.0, -0.9), (1e-3, -9e-4),
                                            (1e-4, -5e-4)])
def test_a_negative_lag_is_delay_out_of_range(max_delay, lag):
    sys_ = dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], 1, lambda t, x: [lag],
                         max_delay=max_delay)
    sol = dl.solve_dde(sys_, 1.0, (0, 5 * max_delay), throw=False)
    assert sol.status_names == "delay_out_of_range" and sol.t_final == 0.0


def test_a_compiled_state_dependent_lag_below_zero_is_delay_out_of_range():
    """Mackey–Glass with τ(x) = 0.1 − 0.2x and x ≈ 1–1.5: the lag stays in [−0.2, −0.1], a read
    of the future (was success with max_delay 20)."""
    mg = dl.rhs.mackey_glass(tau=0.1, tau_state=-0.2, max_delay=20.0)
    sol = dl.solve_dde(mg, 1.5, (0, 2), throw=False)
    assert sol.status_names == "delay_out_of_range"


@pytest.mark.parametrize("j", [-0.015, -0.001, -0.57, -0.3])
@pytest.mark.parametrize("method, kw", [("DP5", {}), ("RK4", {"dt": 0.01})])
def test_a_history_jump_next_to_a_grid_point_is_exact(j, method, kw):
    """x' = −x(t − 1), history 0 before j and 1 on [j, 0), y0 = 1: x(1) = 1 + j exactly (the
    solution is piecewise linear). A grid point an ulp below j made the anchors non-monotone
    (errors 7e-5 to 2e-3 with success)."""
    h = lambda s: np.where(s < j, 0.0, 1.0)  # noqa: E731
    sol = dl.solve_dde(LIN, h, (0, 1), y0=1.0, history_jumps=[j], t_eval=[1.0],
                       method=method, **kw)
    assert sol.success
    assert sol.y[0, 0] == pytest.approx(1.0 + j, abs=1e-12)
    hd = dl.build_history(h, LIN, 0.0, 1.0, jumps=[j])
    assert np.all(np.diff(hd.t) >= 0)


def test_a_repeated_history_jump_is_one_jump():
    h = lambda s: np.where(s < -0.3, 0.0, 1.0)  # noqa: E731
    once = dl.solve_dde(LIN, h, (0, 1), y0=1.0, history_jumps=[-0.3], t_eval=[0.7, 0.85, 1.0])
    twice = dl.solve_dde(LIN, h, (0, 1), y0=1.0, history_jumps=[-0.3, -0.3],
                         t_eval=[0.7, 0.85, 1.0])
    np.testing.assert_allclose(once.y[:, 0], [1.0, 0.85, 0.7], atol=1e-12)
    np.testing.assert_array_equal(twice.y, once.y)
    with pytest.raises(ValueError, match="history_jumps"):
        dl.solve_dde(LIN, h, (0, 1), history_jumps=[-0.3, -0.3 + 1e-14])
    with pytest.raises(ValueError, match="history_jumps"):   # within rounding of the start
        dl.solve_dde(LIN, h, (0, 1), history_jumps=[-1.0 + 1e-14])


def test_atol_zero_with_a_component_at_zero():
    """Pure relative error control: a component that stays exactly 0 has error scale 0, and 0/0
    failed the run at t0 as non_finite."""
    lin = dl.rhs.linear(A=[[-1.0, 0.0], [0.0, -3.0]])
    sol = dl.solve_dde(lin, [1.0, 0.0], (0, 5), atol=0.0, rtol=1e-8)
    assert sol.y_final[0] == pytest.approx(np.exp(-5.0), rel=1e-6) and sol.y_final[1] == 0.0
    mg = dl.solve_dde(dl.rhs.mackey_glass(), 0.0, (0, 5), atol=0.0)
    assert mg.success and mg.y_final[0] == 0.0


def test_min_step_allows_the_short_last_step():
    ode = dl.rhs.linear(A=[[-1.0]])
    sol = dl.solve_dde(ode, 1.0, (0, 1), min_step=0.25, rtol=1e-3)
    assert sol.t_final == 1.0 and sol.y_final[0] == pytest.approx(np.exp(-1.0), rel=1e-2)
    assert np.min(np.diff(sol.t)[:-1]) >= 0.25   # only the last one is shorter
    mg = dl.rhs.mackey_glass()
    for tf in (51.05, 50.5, 57.3):
        assert dl.solve_dde(mg, 0.5, (0, tf), min_step=0.1).success
    # The floor still holds where the controller would need smaller steps.
    stiff = dl.rhs.linear(A=[[-1000.0]])
    assert dl.solve_dde(stiff, 1.0, (0, 1), min_step=0.25, throw=False).status_names == \
        "step_underflow"


def test_python_system_and_solver_flags_are_checked():
    f = lambda t, x, xd: -xd[:, 0, :]  # noqa: E731
    for bad in ("5", np.nan, np.inf, -1.0):
        with pytest.raises((ValueError, TypeError), match="max_delay"):
            dl.rhs.python(f, 1, 1.0, max_delay=bad)
        with pytest.raises((ValueError, TypeError), match="max_delay"):
            dl.rhs.python(f, 1, lambda t, x: [1.0], max_delay=bad)
    with pytest.raises(TypeError, match="track_discontinuities"):
        dl.solve_dde(LIN, 1.0, (0, 1), track_discontinuities="False")


def test_an_ode_takes_a_callable_history_at_t0():
    """An ODE reads no history: a callable gives y(t0) (it raised "need at least two
    anchors")."""
    ode = dl.rhs.python(lambda t, x: -x, 1, tau=())
    sol = dl.solve_dde(ode, lambda t: 2.0 + t, (1.0, 2.0), rtol=1e-10, atol=1e-12)
    assert sol.y_final[0] == pytest.approx(3.0 * np.exp(-1.0), rel=1e-8)


@pytest.mark.parametrize("t0, dt", [(0.0, 1e-15), (1000.0, 1e-13)])
def test_a_first_step_below_what_t_resolves_is_raised_as_the_automatic_one_is(t0, dt):
    """An adaptive method's dt is its first step: 1e-15 failed at t0 (step_underflow, or
    time_resolution advising to shift t0)."""
    ode = dl.rhs.linear(A=[[-1.0]])
    sol = dl.solve_dde(ode, 1.0, (t0, t0 + 1.0), dt=dt, rtol=1e-8, atol=1e-10)
    assert sol.y_final[0] == pytest.approx(np.exp(-1.0), rel=1e-6)


def test_a_vanishing_lag_at_loose_settings_still_runs():
    """DDETST H2 (lag t(1 − x²) vanishes at π/2): stage lags come out slightly negative, inside
    the slack, with RK4 at dt = 0.1 and Euler at dt = 0.001. (Euler at dt = 0.01 computes lags
    below −0.2 % of the window there: delay_out_of_range, which it is.)"""
    from test_ddetst import h2_field

    sys_ = dl.rhs.python(h2_field, 1, lambda t, x: [t * (1 - x[0, 0] ** 2)], max_delay=np.pi,
                         neutral=True)
    t = np.array([1.0, 2.0, np.pi])
    for method, dt, err in (("RK4", 0.1, 1e-6), ("Euler", 0.001, 2e-3)):
        sol = dl.solve_dde(sys_, lambda s: s, (0, np.pi), t_eval=t, method=method, dt=dt)
        assert np.max(np.abs(sol.y[:, 0] - np.sin(t))) < err
