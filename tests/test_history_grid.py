"""history_grid must cover the window the solver reads (issue 12): a short grid is a named
ValueError up front, not "delay_out_of_range at t = 0" after the solve starts."""
import numpy as np
import pytest

import delyap as dl
from delyap.history import check_history_grid


def exact_linear_decay(t):
    """x' = −x(t − 1) with x = 1 on [−1, 0]: x = 1 − t on [0, 1]."""
    return 1.0 - t


LIN = dict(A=[[0.0]], B=[[[-1.0]]], tau=[1.0])


def test_short_grid_names_both_ranges():
    system = dl.rhs.linear(**LIN)
    grid = np.linspace(-0.5, 0.0, 11)
    with pytest.raises(ValueError, match=r"history_grid: too short.*\[-1, 0\].*\[-0\.5, 0\]"):
        dl.solve_dde(system, lambda t: np.ones_like(t), (0, 1), history_grid=grid)


def test_short_grid_for_a_batch_uses_the_largest_delay():
    system = dl.rhs.mackey_glass(tau=[1.0, 3.0])
    with pytest.raises(ValueError, match=r"\[-3, 0\].*\[-2, 0\]"):
        dl.solve_dde(system, lambda t: 0.5 + 0 * t, (0, 1), history_grid=np.linspace(-2, 0, 5))


@pytest.mark.parametrize("grid", [np.linspace(-1, 0, 11), np.linspace(-4, 0, 41),
                                  # built as t0 − τ·(…): rounding may leave it a hair short
                                  0.3 - 0.7 * np.r_[np.geomspace(1, 1e-3, 30), 0.0]])
def test_covering_grid_is_accepted_and_exact(grid):
    t0 = float(grid[-1])
    tau = 1.0 if t0 == 0 else 0.7
    system = dl.rhs.linear(A=[[0.0]], B=[[[-1.0]]], tau=[tau])
    sol = dl.solve_dde(system, lambda t: np.ones_like(t), (t0, t0 + tau), history_grid=grid,
                       t_eval=[t0 + tau], rtol=1e-10, atol=1e-12)
    assert sol.y[0, 0] == pytest.approx(1 - tau, abs=1e-9)  # x = 1 − (t − t0) on the first window


def test_check_does_not_modify_the_callers_grid():
    grid = 0.3 - 0.7 * np.r_[np.geomspace(1, 1e-3, 30), 0.0]
    copy = grid.copy()
    out = check_history_grid(grid, 0.3, 0.7)
    assert out[0] <= 0.3 - 0.7 and np.array_equal(grid, copy)


def test_dependent_lags_may_use_a_shorter_grid():
    """With a delay function max_delay is only a bound: a vanishing delay (DDETST B1 style)
    reads near t0 only, so a grid shorter than the declared window is right."""
    sys_ = dl.rhs.python(lambda t, x, xd: 1 - xd[:, 0], 1, lambda t, x: [t - np.exp(1 - 1 / t)],
                         max_delay=7.6)
    sol = dl.solve_dde(sys_, np.log, (0.1, 1.0), t_eval=[1.0], rtol=1e-9, atol=1e-11,
                       history_grid=np.geomspace(1e-4, 0.1, 2000))
    assert sol.y[0, 0] == pytest.approx(0.0, abs=1e-6)  # u = log t


@pytest.mark.parametrize("grid, message", [([0.0], "at least two"), ([-1.0, -0.5], "ending at t0"),
                                           ([-1.0, -0.2, -0.5, 0.0], "increasing")])
def test_malformed_grid(grid, message):
    system = dl.rhs.linear(**LIN)
    with pytest.raises(ValueError, match=f"history_grid:.*{message}"):
        dl.solve_dde(system, lambda t: np.ones_like(t), (0, 1), history_grid=grid)
