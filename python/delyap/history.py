"""Initial histories: how the values of x(t) for t ≤ t0 reach the solver.

A history may be

* a number: the same constant for every component and trajectory;
* an array of shape (dim,): a constant per component;
* an array of shape (batch, dim) (or (batch,) when dim = 1): a constant per trajectory;
* a callable ``h(t)`` taking a 1-D array of times and returning shape (len(t),) when dim = 1,
  (len(t), dim), or (batch, len(t), dim). It is called once up front on a uniform grid of
  ``history_points`` times over [t0 − τmax, t0], and at t ± δ, t ± 2δ (δ = 1e-6·max(1, τmax))
  for the derivatives; the solver then reads the cubic Hermite interpolant of those samples.
  A history with jumps lists them in ``jumps`` (times in (t0 − τmax, t0)): the grid then holds
  both one-sided limits there (h just left of the jump, and h at it) with one-sided
  derivatives, and the discontinuity tracker propagates the jumps like t0. ``grid`` replaces
  the uniform grid by the caller's sample times (increasing, ending at t0), e.g. a geometric
  grid where the history varies fast; reads before its first time are out of range.

The state at t0 defaults to the history's value there; pass ``y0`` to start from another
value (a jump at t0, as in many textbook problems).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import _core
from ._system import ArrayLike, HistoryLike
from ._validate import as_float_array
from .rhs import DDESystem

__all__ = ["build_history", "check_history_grid", "HistoryData"]


@dataclass(frozen=True)
class HistoryData:
    """Hermite anchors of the initial function: times (n,), values and derivatives
    (1 or batch, n, dim), and the state y0 at t0 (1 or batch, dim)."""

    t: np.ndarray
    x: np.ndarray
    f: np.ndarray
    y0: np.ndarray
    jumps: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_core(self, batch: Optional[int] = None) -> _core.HistoryArgs:
        """The solver's argument; ``batch`` broadcasts shared rows to every trajectory."""
        x, f, y0 = self.x, self.f, self.y0
        if batch is not None:
            x = np.broadcast_to(x, (batch,) + x.shape[1:])
            f = np.broadcast_to(f, (batch,) + f.shape[1:])
            y0 = np.broadcast_to(y0, (batch,) + y0.shape[1:])
        c = np.ascontiguousarray
        return _core.HistoryArgs(c(self.t), c(x), c(f), c(y0), c(self.jumps, dtype=np.float64))


def _per_trajectory(arr: np.ndarray, dim: int, batch: int, name: str) -> np.ndarray:
    """Constant values as an array of shape (1 or batch, dim)."""
    if arr.ndim == 0:
        return np.full((1, dim), float(arr))
    if arr.ndim == 1:
        if arr.shape[0] == dim:
            return arr.reshape(1, dim)
        if dim == 1 and arr.shape[0] == batch:
            return arr.reshape(batch, 1)
        raise ValueError(f"{name}: a 1-D value must have length dim = {dim}"
                         + (f" or batch = {batch}" if dim == 1 else "") + f", got {arr.shape[0]}")
    if arr.ndim == 2 and arr.shape == (batch, dim):
        return arr
    raise ValueError(f"{name}: expected a scalar, shape ({dim},) or ({batch}, {dim}), "
                     f"got {arr.shape}")


def _sample_callable(h, times: np.ndarray, dim: int, batch: int) -> np.ndarray:
    try:
        out = h(times.copy())
    except Exception as exc:
        if hasattr(exc, "add_note"):  # Python ≥ 3.11: keep the user's exception as it is
            exc.add_note("(raised by the history callable given to delyap.solve_dde)")
        raise
    arr = as_float_array(out, "history(t)")
    n = times.shape[0]
    if arr.shape in ((n,), (n, 1)) and dim == 1:
        return arr.reshape(1, n, 1)
    if arr.shape == (n, dim):
        return arr.reshape(1, n, dim)
    if arr.shape == (batch, n, dim):
        return arr
    raise ValueError(f"history(t): for {n} times expected shape ({n}, {dim}) or "
                     f"({batch}, {n}, {dim}),"
                     f" got {arr.shape}")


def _lags_fixed(system: DDESystem) -> bool:
    """True when every lag is a constant delay, so the solver reads back to t0 − max_delay.
    With time- or state-dependent lags ``max_delay`` is only a declared bound."""
    return getattr(system, "tau_fn", None) is None and not getattr(system, "state_dependent", False)


def check_history_grid(grid: ArrayLike, t0: float, max_delay: float, *,
                       lags_fixed: bool = True) -> np.ndarray:
    """The ``history_grid`` as a float array (a copy), checked: increasing, ending at t0, and,
    for constant delays, starting at or before t0 − max_delay, the earliest time the first
    step reads. (With time- or state-dependent lags, ``max_delay`` is only a bound and a
    shorter grid can be right, e.g. for vanishing delays; reads before it stop the run.)"""
    grid = as_float_array(grid, "history_grid", ndim=(1,))
    if grid.size < 2 or np.any(np.diff(grid) <= 0) or grid[-1] != t0:
        raise ValueError(f"history_grid: needs at least two increasing times ending at t0 = {t0:g}")
    start = t0 - max_delay
    # A grid built as t0 − τ·(…) may miss t0 − τ by rounding: within that, it covers it.
    slack = 4 * np.finfo(float).eps * (abs(t0) + max_delay)
    if lags_fixed and grid[0] > start + slack:
        raise ValueError(f"history_grid: too short: the solver reads the history on "
                         f"[t0 − max_delay, t0] = [{start:g}, {t0:g}], the grid covers "
                         f"[{grid[0]:g}, {t0:g}]")
    if lags_fixed and grid[0] > start:
        grid[0] = start
    return grid


def build_history(history: HistoryLike, system: DDESystem, t0: float,
                  y0: Optional[ArrayLike] = None, *, history_points: int = 1001,
                  jumps: Optional[ArrayLike] = None,
                  grid: Optional[ArrayLike] = None) -> HistoryData:
    """Convert a user history (see module docs) into the solver's Hermite anchors."""
    dim, batch = system.dim, system.n_trajectories
    tau_max = system.max_delay
    start = t0 - tau_max
    # (a repeated jump is one jump: each would otherwise add its own one-sided samples)
    jump_times = np.zeros(0) if jumps is None else np.unique(as_float_array(jumps, "history_jumps",
                                                                           ndim=(0, 1)))
    # The left limit of a jump is sampled eps before it (below).
    eps = 1e-12 * max(1.0, abs(t0), tau_max)
    if jump_times.size and (jump_times.min() <= start + 2 * eps or jump_times.max() >= t0):
        raise ValueError(f"history_jumps: times must lie inside the history window "
                         f"({start:g}, {t0:g}) (more than rounding after its start); a jump at "
                         f"t0 is given by y0")
    if np.any(np.diff(jump_times) <= 4 * eps):
        raise ValueError("history_jumps: two jumps closer than rounding "
                         f"({4 * eps:.1e}); give them as one")
    if jump_times.size and not callable(history):
        raise ValueError("history_jumps: only a callable history can jump")
    if grid is not None:
        if not callable(history):
            raise ValueError("history_grid: only a callable history is sampled on a grid")
        grid = check_history_grid(grid, t0, tau_max, lags_fixed=_lags_fixed(system))
        start = float(grid[0])
    if callable(history) and tau_max == 0.0 and grid is None:
        # An ODE reads no history: the callable gives the initial value h(t0).
        values = _sample_callable(history, np.array([float(t0)]), dim, batch)[:, 0, :]
        times = np.array([start, t0])
        x = np.repeat(values[:, None, :], 2, axis=1)
        f = np.zeros_like(x)
        x_t0 = values
    elif callable(history):
        if grid is None:
            grid = np.linspace(start, t0, history_points)
            grid[-1] = t0
        delta = 1e-6 * max(1.0, tau_max)
        # Both one-sided limits at each jump, stored as a zero-length interval (t_j, t_j): the
        # left value is sampled a hair before t_j. A read at exactly t_j then takes the limit
        # from the side its step integrates over (the core's history reads are one-sided).
        left = jump_times - eps
        # Grid points within rounding of a jump go (the jump's own samples stand for them): one
        # an ulp below t_j would sit between t_j − eps and t_j, whose relabelling below then
        # made the anchors non-monotone (a wrong solution with success).
        near = (np.abs(grid[:, None] - jump_times[None, :]) <= 2 * eps).any(axis=1)
        times = np.sort(np.concatenate([grid[(grid > start) & ~near], [start], left,
                                        jump_times]))
        sample = lambda tt: _sample_callable(history, tt, dim, batch)  # noqa: E731
        x = sample(times)
        central = (sample(times + delta) - sample(times - delta)) / (2 * delta)
        f = central
        if jump_times.size:
            back = (3 * x - 4 * sample(times - delta) + sample(times - 2 * delta)) / (2 * delta)
            fwd = (-3 * x + 4 * sample(times + delta) - sample(times + 2 * delta)) / (2 * delta)
            for tj in jump_times:  # one-sided differences that do not reach across a jump
                near_left = (times > tj - 2 * delta - eps) & (times < tj)
                near_right = (times >= tj) & (times < tj + 2 * delta)
                f = np.where(near_left[None, :, None], back, f)
                f = np.where(near_right[None, :, None], fwd, f)
        if jump_times.size:
            times[np.searchsorted(times, left)] = jump_times  # t_j⁻ stored at t_j itself
        if f.shape[0] != x.shape[0]:
            x, f = np.broadcast_arrays(x, f)
        x_t0 = x[:, -1, :]
    else:
        if history is None:
            raise TypeError("history: required (a number, an array or a callable h(t))")
        values = _per_trajectory(as_float_array(history, "history"), dim, batch, "history")
        times = np.array([start, t0])
        x = np.repeat(values[:, None, :], 2, axis=1)
        f = np.zeros_like(x)
        x_t0 = values
    if y0 is None:
        y0_arr = x_t0
    else:
        y0_arr = _per_trajectory(as_float_array(y0, "y0"), dim, batch, "y0")
    return HistoryData(times, x, f, y0_arr, jump_times)
