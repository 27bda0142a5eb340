"""Memory bounded by the delay window; Jacobians of the built-in systems; solution helpers."""
import numpy as np
import pytest

import delyap as dl


def test_history_memory_bounded_by_window_not_time_span():
    mg = dl.rhs.mackey_glass()
    short = dl.solve_dde(mg, 0.5, (0, 1e3), t_eval=[1e3])
    long = dl.solve_dde(mg, 0.5, (0, 1e6), t_eval=[1e6])
    assert long.stats["accepted"] > 500 * short.stats["accepted"]
    # Anchors held at once: a window's worth of steps (τ = 17, steps ≈ 1–2), independent of T.
    assert long.stats["history_peak"] <= short.stats["history_peak"] + 8
    assert long.stats["history_peak"] < 100


def test_history_window_scales_with_delay():
    small = dl.solve_dde(dl.rhs.linear([[0.0]], [[-1.0]], 1.0), 1.0, (0, 100), dt=0.01,
                         method="RK4", t_eval=[100.0])
    large = dl.solve_dde(dl.rhs.linear([[0.0]], [[-0.1]], 10.0), 1.0, (0, 100), dt=0.01,
                         method="RK4", t_eval=[100.0])
    assert small.stats["history_peak"] == pytest.approx(100, abs=5)
    assert large.stats["history_peak"] == pytest.approx(1000, abs=5)


def finite_difference_jacobians(system, x, xd, eps=1e-6):
    d, nd = system.dim, system.n_delays
    jx = np.zeros((d, d))
    jd = np.zeros((nd, d, d))
    for j in range(d):
        e = np.zeros(d)
        e[j] = eps
        jx[:, j] = (system.rhs(0.0, x + e, xd) - system.rhs(0.0, x - e, xd)) / (2 * eps)
        for k in range(nd):
            E = np.zeros((nd, d))
            E[k, j] = eps
            jd[k, :, j] = (system.rhs(0.0, x, xd + E) - system.rhs(0.0, x, xd - E)) / (2 * eps)
    return jx, jd


@pytest.mark.parametrize("point", [0.3, 0.9, 1.0, 1.7])
def test_mackey_glass_jacobian_matches_finite_differences(point):
    mg = dl.rhs.mackey_glass(beta=0.2, gamma=0.1, n=10, tau=17)
    x, xd = np.array([0.7]), np.array([[point]])
    jx, jd = mg.jacobian(0.0, x, xd)
    fx, fd = finite_difference_jacobians(mg, x, xd)
    np.testing.assert_allclose(jx, fx, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(jd, fd, rtol=1e-6, atol=1e-9)
    # At the equilibrium x = 1 the delayed derivative is β(2 − n)/4 = −0.4.
    if point == 1.0:
        assert jd[0, 0, 0] == pytest.approx(0.2 * (2 - 10) / 4)


def test_linear_jacobian_and_rhs():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((2, 3, 3))
    lin = dl.rhs.linear(A, B, [0.5, 1.5])
    x, xd = rng.standard_normal(3), rng.standard_normal((2, 3))
    np.testing.assert_allclose(lin.rhs(0.0, x, xd), A @ x + B[0] @ xd[0] + B[1] @ xd[1])
    jx, jd = lin.jacobian(0.0, x, xd)
    np.testing.assert_array_equal(jx, A)
    np.testing.assert_array_equal(jd, B)


def test_solution_repr_and_export():
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=[10.0, 17.0]), 0.5, (0, 20), t_eval=[0, 10, 20])
    text = repr(sol)
    assert "2 trajectories" in text and "DP5" in text and "reached t_final" in text
    d = sol.to_dict()
    assert d["y"].shape == (2, 3, 1) and d["stats_accepted"].shape == (2,)
    assert sol.status_names == ["success", "success"]


def test_version():
    assert isinstance(dl.__version__, str) and dl.__version__.count(".") >= 1
