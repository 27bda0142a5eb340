"""The base class every system derives from, and the checks its constructors share.

A module of its own so that :mod:`delyap.rhs` (the built-in systems, which re-exports the
network systems) and :mod:`delyap.networks` both build on it without importing each other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # scipy.sparse only for the annotations (networks import it lazily)
    from scipy.sparse import sparray, spmatrix

# The types of the public signatures, in one place.
# A history: a constant, the states on a grid, a callable h(t), or a GPU array (delyap.history).
HistoryLike = Union[ArrayLike, Callable[..., Any]]
# An adjacency matrix or per-edge delays: dense, or scipy.sparse (matrix or array).
GraphLike = Union[ArrayLike, "spmatrix", "sparray"]

# The smallest delay a constructor accepts. Delays are in the units of t; a delay below this
# is x(t − τ) ≈ x(t) to every tolerance the solvers reach, while the discontinuity tracker
# would still have to land steps on t0 + kτ, which rounding cannot resolve (τ = 1e-20 stops
# with status step_underflow at t0 = 0). Rescale time for problems on such time scales.
MIN_DELAY = 1e-12

# What output="order_parameter" computes for each kind a system may declare.
ORDER_PARAMETERS = {
    "phases": "r e^{iψ} = (1/N) Σ_j e^{iθ_j} of the state read as phases θ_j",
    "phasors": "r e^{iψ} = (1/N) Σ_j z_j/|z_j| of the state read as interleaved (Re z_j, Im z_j) "
               "(a node at z_j = 0 has no phase and adds 0)",
}


class DDESystem:
    """Base class of the systems that :func:`delyap.solve_dde` integrates.

    Attributes
    ----------
    dim : int
        State dimension of one trajectory.
    n_delays : int
        Number of constant delays.
    batch_size : int or None
        Number of trajectories, or None for a single trajectory.
    order_parameter : str or None
        What ``solve_dde(..., output="order_parameter")`` computes from the state: "phases"
        (Kuramoto: r e^{iψ} = mean e^{iθ_j}), "phasors" (Stuart–Landau: r e^{iψ} =
        mean z_j/|z_j|), or None when the system has no order parameter (the call raises).
    """

    dim: int
    n_delays: int
    batch_size: Optional[int]
    order_parameter: Optional[str] = None

    @property
    def delays(self) -> np.ndarray:
        """Delays, shape (batch_size or 1, n_delays)."""
        raise NotImplementedError

    @property
    def max_delay(self) -> float:
        """The largest delay over the batch: the history window the solver keeps (0 for an
        ODE: only the state at t0 matters)."""
        delays = self.delays
        return float(np.max(delays)) if delays.size else 0.0

    @property
    def n_trajectories(self) -> int:
        return 1 if self.batch_size is None else self.batch_size

    def _solve(self, history, t0, t_final, t_eval, options, threads, output):  # pragma: no cover
        raise NotImplementedError

    # ---- How the other entry points run this system: each class declares its own support, so
    # the entry points never test for concrete classes. The defaults say "not supported".

    def _check_lyapunov(self) -> None:
        """Raise (naming ``system``) unless :func:`delyap.lyapunov_spectrum` can run this."""
        raise TypeError("system: Lyapunov spectra need a system with an analytic Jacobian "
                        "(a compiled built-in such as mackey_glass or linear, or python with "
                        f"jac=…), got {type(self).__name__}")

    def _lyapunov(self, args: tuple) -> dict:  # pragma: no cover (guarded by _check_lyapunov)
        """The raw Lyapunov run: ``args`` = (t, x, f, y0, t0, t_transient, t_total,
        renorm_interval, k, anchors_needed, options, n_blocks, n_running, threads)."""
        raise NotImplementedError

    def _check_device(self, hist, output) -> None:
        """Raise (naming the argument) unless the fixed-storage ensemble (``device="cuda"``)
        runs this system with this history and output."""
        raise ValueError(f"device: the CUDA ensemble solver runs the compiled built-in systems, "
                         f"not {type(self).__name__} (use device='cpu')")

    def _solve_fixed(self, backend, common: dict) -> dict:  # pragma: no cover (_check_device)
        """The fixed-storage ensemble on ``backend`` (``_core``: host mirror; ``_cuda``) with
        the shared keyword arguments ``common`` (history, times, options, capacity, ...)."""
        raise NotImplementedError


def check_delays(tau: np.ndarray, name: str = "tau", *, allow_none: bool = False) -> None:
    """Constant delays are 0 (no delay: the term reads the current state) or at least
    MIN_DELAY. ``allow_none``: systems that may have no delay at all (an ODE on the same
    solvers)."""
    if tau.size == 0:
        if allow_none:
            return
        raise ValueError(f"{name}: at least one delay is needed")
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError(f"{name}: delays must be finite and ≥ 0, got min {np.nanmin(tau):g}")
    if np.any((tau > 0) & (tau < MIN_DELAY)):
        raise ValueError(f"{name}: delay {tau[tau > 0].min():g} is below the smallest supported "
                         "delay "
                         f"{MIN_DELAY:g} (delays are in the units of t: rescale time, or drop "
                         "the delay, since x(t − τ) ≈ x(t) at this size)")
