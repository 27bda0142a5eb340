"""Batches: per-trajectory parameters, equality with single solves, thread independence."""
import numpy as np
import pytest

import delyap as dl


def test_mackey_glass_sweep_equals_loop_of_single_solves():
    taus = np.linspace(5, 30, 12)
    betas = np.linspace(0.18, 0.22, 12)
    t_eval = np.linspace(0, 200, 41)
    ens = dl.solve_dde(dl.rhs.mackey_glass(beta=betas, tau=taus), 0.5, (0, 200), t_eval=t_eval)
    assert ens.y.shape == (12, 41, 1) and ens.status.shape == (12,)
    for i, (beta, tau) in enumerate(zip(betas, taus)):
        one = dl.solve_dde(dl.rhs.mackey_glass(beta=beta, tau=tau), 0.5, (0, 200), t_eval=t_eval)
        np.testing.assert_array_equal(ens.y[i], one.y)  # same code path: bitwise identical
        assert ens.stats["accepted"][i] == one.stats["accepted"]


@pytest.mark.parametrize("method", ["DP5", "BS3"])
def test_results_do_not_depend_on_thread_count(method):
    mg = dl.rhs.mackey_glass(tau=np.linspace(5, 30, 64))
    t_eval = np.linspace(0, 300, 31)
    runs = [dl.solve_dde(mg, 0.5, (0, 300), t_eval=t_eval, method=method, threads=n)
            for n in (1, 2, 3, 7)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.y, runs[0].y)
        np.testing.assert_array_equal(r.stats["rhs_evals"], runs[0].stats["rhs_evals"])


def test_per_trajectory_history_and_y0():
    mg = dl.rhs.mackey_glass(tau=[10.0, 17.0, 25.0])
    hist = np.array([[0.3], [0.5], [0.9]])
    ens = dl.solve_dde(mg, hist, (0, 50), t_eval=[50.0])
    for i in range(3):
        one = dl.solve_dde(dl.rhs.mackey_glass(tau=mg.tau[i]), hist[i, 0], (0, 50), t_eval=[50.0])
        np.testing.assert_array_equal(ens.y[i], one.y)
    jump = dl.solve_dde(mg, 0.5, (0, 50), t_eval=[0.0, 50.0], y0=[[1.0], [1.1], [1.2]])
    np.testing.assert_array_equal(jump.y[:, 0, 0], [1.0, 1.1, 1.2])


def test_linear_batch_of_matrices_matches_eigen_growth():
    """Per-trajectory A and τ in one call; each member checked against its own single solve."""
    rng = np.random.default_rng(1)
    A = -np.eye(2)[None] + 0.3 * rng.standard_normal((5, 2, 2))
    B = 0.2 * rng.standard_normal((2, 2))
    taus = np.linspace(0.5, 2.0, 5)
    lin = dl.rhs.linear(A, B, taus)
    assert lin.batch_size == 5
    ens = dl.solve_dde(lin, [1.0, -1.0], (0, 10), t_eval=[10.0], rtol=1e-9, atol=1e-12)
    for i in range(5):
        one = dl.solve_dde(dl.rhs.linear(A[i], B, taus[i]), [1.0, -1.0], (0, 10), t_eval=[10.0],
                           rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(ens.y[i], one.y)


def test_python_batch_steps_in_lockstep_and_matches_compiled():
    taus = 17.0
    betas = np.array([0.18, 0.2, 0.22])

    def f(t, x, xd):
        xt = xd[:, 0, :]
        return betas[:, None] * xt / (1 + xt**10) - 0.1 * x

    py = dl.rhs.python(f, 1, taus, batch_size=3)
    sol = dl.solve_dde(py, 0.5, (0, 100), t_eval=[50.0, 100.0], rtol=1e-10, atol=1e-10)
    ref = dl.solve_dde(dl.rhs.mackey_glass(beta=betas, tau=taus), 0.5, (0, 100),
                       t_eval=[50.0, 100.0], rtol=1e-10, atol=1e-10)
    assert sol.y.shape == (3, 2, 1) and list(sol.status) == [0, 0, 0]
    np.testing.assert_allclose(sol.y, ref.y, atol=1e-7)


def test_batch_without_t_eval_returns_end_points():
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=[10.0, 20.0]), 0.5, (0, 30))
    np.testing.assert_array_equal(sol.t, [0.0, 30.0])
    np.testing.assert_array_equal(sol.y[:, -1, :], sol.y_final)


def test_single_without_t_eval_returns_every_step():
    sol = dl.solve_dde(dl.rhs.mackey_glass(), 0.5, (0, 100))
    assert len(sol.t) == sol.stats["accepted"] + 1
    assert np.all(np.diff(sol.t) > 0) and sol.t[-1] == 100.0
    # Steps land on the propagated discontinuities t = 17, 34, …
    for k in range(1, 6):
        assert np.min(np.abs(sol.t - 17.0 * k)) < 1e-12
