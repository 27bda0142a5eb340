"""Right-hand sides for :func:`delyap.solve_dde`.

Built-in systems are compiled (C++, with analytic Jacobians) and accept array-valued
parameters: arrays broadcast against each other to a batch, one trajectory per element, each
with its own adaptive steps. ``python`` wraps any vectorised Python function.
"""
from __future__ import annotations

import math
from typing import Callable, ClassVar, Optional, Union

import numpy as np

from . import _core
from ._system import ArrayLike, DDESystem
from ._system import check_delays as _check_delays
from ._validate import as_count, as_float_array, as_index
from .networks import KuramotoDDE, StuartLandauDDE, kuramoto, stuart_landau

__all__ = ["DDESystem", "MackeyGlass", "DelayedLogistic", "LinearDDE", "PythonDDE",
           "KuramotoDDE", "StuartLandauDDE", "mackey_glass", "delayed_logistic", "linear",
           "python", "kuramoto", "stuart_landau"]


def _broadcast_batch(params: dict) -> tuple[dict, Optional[int]]:
    """Broadcast scalar-or-1-D parameters to a common batch length (None: all scalars)."""
    arrays = {k: as_float_array(v, k, ndim=(0, 1)) for k, v in params.items()}
    lengths = {k: a.shape[0] for k, a in arrays.items() if a.ndim == 1}
    if not lengths:
        return {k: a.reshape(1) for k, a in arrays.items()}, None
    sizes = set(lengths.values())
    if len(sizes) > 1:
        detail = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ValueError(f"parameter arrays have mismatched lengths ({detail})")
    batch = sizes.pop()
    if batch == 0:
        raise ValueError(f"{next(iter(lengths))}: empty parameter array (batch of size zero)")
    return {k: np.ascontiguousarray(np.broadcast_to(a, (batch,))) for k, a in arrays.items()}, batch


class CompiledSystem(DDESystem):
    """Base of the compiled built-in systems: each entry point is the C++ registry's function
    for ``_core_name`` (``_core.solve_<name>``, ``lyapunov_<name>``, ``<name>_rhs``,
    ``<name>_jacobian``, ``solve_fixed_<name>``), called with the system's parameter arrays in
    the order of ``_core.BUILTIN_PARAMETERS[_core_name]`` (its C++ declaration)."""

    _core_name: ClassVar[str]

    def _parameter_arrays(self) -> list[np.ndarray]:
        """The parameter arrays in the C++ declaration's order (contiguous float64)."""
        raise NotImplementedError

    def _core_function(self, backend, pattern: str) -> Callable:
        return getattr(backend, pattern.format(self._core_name))

    def rhs(self, t: float, x: ArrayLike, x_delayed: ArrayLike, index: int = 0) -> np.ndarray:
        """f(t, x, x_delayed) of trajectory ``index`` (x: (dim,), x_delayed: (n_delays, dim))."""
        return self._core_function(_core, "{}_rhs")(
            self._parameter_arrays(), as_index(index, self.n_trajectories), float(t),
            *self._point(x, x_delayed))

    def jacobian(self, t: float, x: ArrayLike, x_delayed: ArrayLike,
                 index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(∂f/∂x of shape (dim, dim), ∂f/∂x(t − τ_k) of shape (n_delays, dim, dim)) of
        trajectory ``index``."""
        return self._core_function(_core, "{}_jacobian")(
            self._parameter_arrays(), as_index(index, self.n_trajectories), float(t),
            *self._point(x, x_delayed))

    def _point(self, x: ArrayLike, xd: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        return (as_float_array(x, "x").reshape(self.dim),
                as_float_array(xd, "x_delayed").reshape(self.n_delays, self.dim))

    def _solve(self, history, t0, t_final, t_eval, options, threads, output):
        return self._core_function(_core, "solve_{}")(
            self._parameter_arrays(), history.to_core(), t0, t_final, t_eval, options, threads,
            output)

    def _check_device(self, hist, output) -> None:
        pass

    def _solve_fixed(self, backend, common: dict) -> dict:
        return self._core_function(backend, "solve_fixed_{}")(self._parameter_arrays(), **common)

    def _check_lyapunov(self) -> None:
        pass

    def _lyapunov(self, args: tuple) -> dict:
        return self._core_function(_core, "lyapunov_{}")(self._parameter_arrays(), *args)


class ScalarParameterSystem(CompiledSystem):
    """Base of the compiled built-ins with scalar parameters, each a number or a 1-D array
    (arrays broadcast to a batch, one trajectory per element).

    A subclass declares ``_core_name``, ``dim``, ``n_delays``, ``_parameters`` (the attribute
    names in the order of the C++ declaration), ``_delay_parameters`` (those that are constant
    delays) and calls :meth:`_set_parameters` from its constructor.
    """

    _parameters: ClassVar[tuple[str, ...]]
    _delay_parameters: ClassVar[tuple[str, ...]] = ("tau",)
    # Parameters shown by repr (default: all of _parameters).
    _shown: ClassVar[Optional[tuple[str, ...]]] = None

    def _set_parameters(self, **values: ArrayLike) -> None:
        """Validate and broadcast the constructor's parameters to the batch (as attributes)."""
        p, self.batch_size = _broadcast_batch(values)
        for name in self._delay_parameters:
            _check_delays(p[name], name)
        for name, value in p.items():
            setattr(self, name, value)

    def _parameter_arrays(self) -> list[np.ndarray]:
        arrays = self.__dict__.get("_arrays")
        if arrays is None:  # built once: the parameters do not change after construction
            arrays = [np.ascontiguousarray(getattr(self, n), dtype=np.float64).reshape(-1)
                      for n in self._parameters]
            self._arrays = arrays
        return arrays

    @property
    def delays(self) -> np.ndarray:
        return np.stack([getattr(self, n) for n in self._delay_parameters], axis=1)

    def __repr__(self) -> str:
        parts = ["single" if self.batch_size is None else f"batch={self.batch_size}"]
        for name in self._shown or self._parameters:
            a = np.asarray(getattr(self, name))
            lo, hi = float(a.min()), float(a.max())
            parts.append(f"{name}={lo:g}" if lo == hi else f"{name} in [{lo:g}, {hi:g}]")
        return f"{type(self).__name__}({', '.join(parts)})"


class MackeyGlass(ScalarParameterSystem):
    """Mackey–Glass: x' = β x(t−τ) / (1 + x(t−τ)ⁿ) − γ x. Use :func:`mackey_glass`."""

    _core_name = "mackey_glass"
    _parameters = ("beta", "gamma", "n", "tau", "tau_state", "window")
    _shown = ("beta", "gamma", "n", "tau", "tau_state")
    dim = 1
    n_delays = 1
    beta: np.ndarray
    gamma: np.ndarray
    n: np.ndarray
    tau: np.ndarray
    tau_state: np.ndarray
    window: float

    def __init__(self, beta: ArrayLike, gamma: ArrayLike, n: ArrayLike, tau: ArrayLike,
                 tau_state: ArrayLike = 0.0, max_delay: Optional[float] = None):
        self._set_parameters(beta=beta, gamma=gamma, n=n, tau=tau, tau_state=tau_state)
        self.state_dependent = bool(np.any(self.tau_state != 0))
        if self.state_dependent:
            if max_delay is None:
                raise ValueError("max_delay: required with a state-dependent lag (tau_state ≠ 0)")
            window = float(as_float_array(max_delay, "max_delay", ndim=(0,)))
            if window < self.tau.max():
                raise ValueError(f"max_delay: {window:g} is below tau = {self.tau.max():g}")
        else:
            window = 0.0
        self.window = window

    @property
    def max_delay(self) -> float:
        return self.window if self.state_dependent else float(self.tau.max())

    def _check_device(self, hist, output) -> None:
        if self.state_dependent:
            raise ValueError("device: state-dependent lags (tau_state) run on the CPU only")

    def _check_lyapunov(self) -> None:
        if self.state_dependent:
            raise ValueError("tau_state: Lyapunov spectra need constant delays")


def mackey_glass(beta: ArrayLike = 0.2, gamma: ArrayLike = 0.1, n: ArrayLike = 10.0,
                 tau: ArrayLike = 17.0, *, tau_state: ArrayLike = 0.0,
                 max_delay: Optional[float] = None) -> MackeyGlass:
    """The Mackey–Glass equation x' = β x(t−τ)/(1 + x(t−τ)ⁿ) − γ x (compiled).

    Any parameter may be a 1-D array; arrays broadcast to a batch, one trajectory each, e.g.
    ``mackey_glass(tau=np.linspace(5, 30, 1000))`` is a 1000-trajectory τ-sweep.
    ``tau_state = c`` makes the lag state-dependent, τ(x) = τ + c·x(t), with the declared bound
    ``max_delay`` (the history window); lag crossings of discontinuities are tracked.
    """
    return MackeyGlass(beta, gamma, n, tau, tau_state, max_delay)


class DelayedLogistic(ScalarParameterSystem):
    """The delayed logistic (Hutchinson) equation x' = r x (1 − x(t−τ)/K). Use
    :func:`delayed_logistic`."""

    _core_name = "delayed_logistic"
    _parameters = ("r", "K", "tau")
    dim = 1
    n_delays = 1
    r: np.ndarray
    K: np.ndarray
    tau: np.ndarray

    def __init__(self, r: ArrayLike = 1.0, K: ArrayLike = 1.0, tau: ArrayLike = 1.0):
        self._set_parameters(r=r, K=K, tau=tau)
        if np.any(self.K <= 0):
            raise ValueError(f"K: the carrying capacity must be positive, got {self.K.min():g}")


def delayed_logistic(r: ArrayLike = 1.0, K: ArrayLike = 1.0,
                     tau: ArrayLike = 1.0) -> DelayedLogistic:
    """The delayed logistic (Hutchinson) equation x' = r x (1 − x(t−τ)/K) (compiled).

    Growth at rate ``r`` limited by the population ``x`` one maturation time ``tau`` ago,
    relative to the carrying capacity ``K``. The equilibrium x = K is stable for r τ < π/2 and
    gives way to a stable limit cycle (a supercritical Hopf bifurcation) beyond. Any parameter
    may be a 1-D array; arrays broadcast to a batch, one trajectory each, e.g.
    ``delayed_logistic(r=1.0, tau=np.linspace(1, 2, 100))`` sweeps across the Hopf point.
    Runs on every solver, on ``device="cuda"`` and in :func:`delyap.lyapunov_spectrum`.
    """
    return DelayedLogistic(r, K, tau)


class LinearDDE(CompiledSystem):
    """x' = A x + Σ_k B_k x(t − τ_k). Use :func:`linear`."""

    _core_name = "linear"

    def __init__(self, A: ArrayLike, B: Optional[ArrayLike] = None,
                 tau: Optional[ArrayLike] = None):
        A = as_float_array(A, "A", ndim=(2, 3))
        d = A.shape[-1]
        if A.shape[-2] != d:
            raise ValueError(f"A: matrices must be square, got shape {A.shape}")
        if (B is None) != (tau is None):
            raise ValueError("B, tau: give both (a DDE) or neither (the ODE x' = A x)")
        if B is None:  # no delay: zero delay matrices, an empty delay list per trajectory
            B, tau = np.zeros((0, d, d)), np.zeros((1, 0))
        B = as_float_array(B, "B", ndim=(2, 3, 4))
        tau = as_float_array(tau, "tau", ndim=(0, 1, 2))
        if B.ndim == 2:
            B = B[None]
        if B.shape[-2:] != (d, d):
            raise ValueError(f"B: expected matrices of shape ({d}, {d}) to match A, got {B.shape}")
        nd = B.shape[-3]
        if tau.ndim == 0:
            tau = tau.reshape(1, 1)
        elif tau.ndim == 1:
            # One delay per matrix in B; with a single delay a longer vector is a τ-sweep.
            tau = tau.reshape(1, -1) if tau.shape[0] == nd else tau.reshape(-1, 1)
        if tau.shape[1] != nd:
            raise ValueError(f"tau: {tau.shape[1]} delays given for {nd} delay matrices in B")
        _check_delays(tau, allow_none=True)
        A3 = A if A.ndim == 3 else A[None]
        B4 = B if B.ndim == 4 else B[None]
        leading = {"A": A3.shape[0], "B": B4.shape[0], "tau": tau.shape[0]}
        sizes = {n for n in leading.values() if n != 1}
        if len(sizes) > 1:
            raise ValueError(f"parameter batch sizes do not match: {leading}")
        if 0 in leading.values():
            raise ValueError("parameters: empty batch (size zero)")
        batched = A.ndim == 3 or B.ndim == 4 or tau.shape[0] > 1
        self.batch_size = (sizes.pop() if sizes else 1) if batched else None
        self.A, self.B, self.tau = A3, B4, np.ascontiguousarray(tau)
        self.dim, self.n_delays = d, nd

    @property
    def delays(self) -> np.ndarray:
        return self.tau

    def _parameter_arrays(self) -> list[np.ndarray]:
        return [self.A, self.B, self.tau]

    def _check_device(self, hist, output) -> None:
        if self.dim > 8 or self.n_delays > 4:
            raise ValueError("device: the CUDA solver takes linear systems with dim <= 8 and "
                             f"n_delays <= 4, got dim {self.dim}, n_delays {self.n_delays}")

    def __repr__(self) -> str:
        b = "single" if self.batch_size is None else f"batch={self.batch_size}"
        return f"LinearDDE(dim={self.dim}, n_delays={self.n_delays}, {b})"


def linear(A: ArrayLike, B: Optional[ArrayLike] = None,
           tau: Optional[ArrayLike] = None) -> LinearDDE:
    """The linear system x' = A x + Σ_k B_k x(t − τ_k) (compiled).

    Shapes: ``A`` (d, d) or (batch, d, d); ``B`` (d, d) for one delay, (n_delays, d, d), or
    (batch, n_delays, d, d); ``tau`` a scalar, (n_delays,), or (batch, n_delays). With one
    delay, a 1-D ``tau`` longer than one is a τ-sweep (one trajectory per value). Without
    ``B`` and ``tau`` it is the ODE x' = A x on the same solvers (the history is then just the
    initial state).
    """
    return LinearDDE(A, B, tau)


class PythonDDE(DDESystem):
    """A DDE with a Python right-hand side. Use :func:`python`."""

    def __init__(self, f: Callable, dim: int, tau, batch_size: Optional[int] = None, *,
                 max_delay: Optional[float] = None, n_delays: Optional[int] = None,
                 neutral: bool = False, jac: Optional[Callable] = None):
        if not callable(f):
            raise TypeError(f"f: expected a callable, got {type(f).__name__}")
        if jac is not None and not callable(jac):
            raise TypeError(f"jac: expected a callable, got {type(jac).__name__}")
        self.f = f
        self.jac = jac
        self.dim = as_count(dim, "dim")
        self.batch_size = None if batch_size is None else as_count(batch_size, "batch_size")
        self.neutral = bool(neutral)
        if callable(tau):
            if max_delay is None:
                raise ValueError("max_delay: required with a delay function tau(t, x) (it sets "
                                 "the history window)")
            if self.batch_size is not None:
                raise ValueError("tau: delay functions are supported for single trajectories "
                                 "(batch_size=None)")
            self.tau_fn = tau
            self.declared_max_delay = float(as_float_array(max_delay, "max_delay", ndim=(0,)))
            if not (math.isfinite(self.declared_max_delay) and self.declared_max_delay > 0):
                raise ValueError(f"max_delay: must be positive and finite, got "
                                 f"{self.declared_max_delay:g}")
            self.n_delays = as_count(n_delays if n_delays is not None else 1, "n_delays")
            self.tau = np.full(self.n_delays, self.declared_max_delay)
        else:
            self.tau_fn = None
            t = as_float_array(tau, "tau", ndim=(0, 1)).reshape(-1)
            _check_delays(t, allow_none=True)
            if t.size == 0:
                # An ODE x' = f(t, x): the core's calling convention passes an empty delayed
                # state, which the user's two-argument f never sees.
                if neutral:
                    raise ValueError("neutral: an equation without delays cannot be neutral")
                user_f, user_jac, d = f, jac, self.dim
                self.f = lambda t_, x, x_delayed: user_f(t_, x)
                if user_jac is not None:  # jac(t, x) -> df_dx; no delayed blocks
                    self.jac = lambda t_, x, x_delayed: (user_jac(t_, x), np.zeros((0, d, d)))
            elif neutral and np.any(t == 0):
                raise ValueError("neutral: x'(t − τ) with τ = 0 is the unknown derivative itself; "
                                 "neutral delays must be positive")
            elif max_delay is not None:
                bound = float(as_float_array(max_delay, "max_delay", ndim=(0,)))
                if not (math.isfinite(bound) and bound > 0):
                    raise ValueError(f"max_delay: must be positive and finite, got {bound:g}")
                if bound < t.max():
                    raise ValueError(f"tau: delay {t.max():g} is larger than max_delay = "
                                     f"{bound:g}")
            self.tau = t
            self.n_delays = t.shape[0]
            self.declared_max_delay = float(t.max()) if t.size else 0.0

    @property
    def delays(self) -> np.ndarray:
        return self.tau.reshape(1, -1)

    @property
    def max_delay(self) -> float:
        return self.declared_max_delay

    def _solve(self, history, t0, t_final, t_eval, options, threads, output):
        return _core.solve_python(self.f, self.n_trajectories, self.dim, self.tau, self.tau_fn,
                                  self.declared_max_delay, self.neutral,
                                  history.to_core(self.n_trajectories), t0, t_final, t_eval,
                                  options, output)

    def _check_lyapunov(self) -> None:
        if self.jac is None:
            raise TypeError("system: a Python system needs its Jacobian for Lyapunov spectra: "
                            "pass jac=… to delyap.rhs.python")
        if self.batch_size is not None or self.tau_fn is not None or self.neutral:
            raise ValueError("system: Lyapunov spectra of Python systems need a single "
                             "trajectory with constant delays (retarded, not neutral)")

    def _lyapunov(self, args: tuple) -> dict:
        t, x, f, y0, _, t_transient, t_total, renorm, k, anchors, opt, n_blocks, n_running = \
            args[:13]
        return _core.lyapunov_python(self.f, self.jac, self.dim, self.tau, t, x, f, y0,
                                     t_transient, t_total, renorm, k, anchors, opt, n_blocks,
                                     n_running)

    def __repr__(self) -> str:
        b = "single" if self.batch_size is None else f"batch={self.batch_size}"
        lag = (f"tau=τ(t, x) ≤ {self.declared_max_delay:g}" if self.tau_fn is not None
               else f"tau={self.tau.tolist()}")
        kind = ", neutral" if self.neutral else ""
        return f"PythonDDE({getattr(self.f, '__name__', 'f')}, dim={self.dim}, {lag}{kind}, {b})"


def python(f: Callable, dim: int, tau: Union[ArrayLike, Callable[..., ArrayLike]],
           batch_size: Optional[int] = None, *,
           max_delay: Optional[float] = None, n_delays: Optional[int] = None,
           neutral: bool = False, jac: Optional[Callable] = None) -> PythonDDE:
    """A DDE x' = f(t, x, x_delayed) with a vectorised Python function.

    ``f(t, x, x_delayed)`` receives the time ``t`` (float), ``x`` of shape (batch, dim) and
    ``x_delayed`` of shape (batch, n_delays, dim) (batch = 1 for a single trajectory) and
    returns dx/dt of shape (batch, dim). The whole batch advances with one shared adaptive step
    (f is called once per stage for all trajectories), so a failure stops the whole batch.
    Exceptions raised by ``f`` propagate to the caller of :func:`delyap.solve_dde`.

    Without delays (``tau=()``) it is the ODE x' = f(t, x): ``f(t, x)`` takes two arguments,
    the history argument of :func:`delyap.solve_dde` is the initial state, and every solver,
    output and :func:`delyap.lyapunov_spectrum` (with ``jac(t, x) -> df_dx``) works as for a DDE.

    Delays: ``tau`` is a delay or a list of constant delays shared by the batch, or a function
    ``tau(t, x) -> (n_delays,)`` of the time and the state (x of shape (1, dim)) for time- and
    state-dependent delays, with the declared bound ``max_delay`` (the history window; a lag
    outside [0, max_delay] stops the run with status ``delay_out_of_range``) and ``n_delays``
    (default 1). Where a lag makes t − τ cross a discontinuity of the solution (t0, a history
    jump, or an earlier such point), the step lands on the crossing.

    Neutral equations (``neutral=True``): ``f(t, x, x_delayed, x_delayed_dot)`` also receives
    x'(t − τ_k), shape (batch, n_delays, dim), from the stored history.

    Lyapunov spectra (:func:`delyap.lyapunov_spectrum`) of a single-trajectory Python system
    with constant delays need ``jac(t, x, x_delayed) -> (df_dx, df_dx_delayed)`` of shapes
    (dim, dim) and (n_delays, dim, dim) (x: (1, dim), x_delayed: (1, n_delays, dim)).
    """
    return PythonDDE(f, dim, tau, batch_size, max_delay=max_delay, n_delays=n_delays,
                     neutral=neutral, jac=jac)

