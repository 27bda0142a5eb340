"""The base class every system derives from, and the checks its constructors share.

A module of its own so that :mod:`delyap.rhs` (the built-in systems, which re-exports the
network systems) and :mod:`delyap.networks` both build on it without importing each other.
"""
from __future__ import annotations

import copy
import copyreg
import functools
import inspect
import itertools
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _core

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

    # ---- Pickling (Dask ships systems to its workers). A system holds compiled parameter
    # objects (_core) that do not pickle; it is rebuilt instead from the arguments its
    # constructor was called with, recorded by the outermost __init__ of every subclass. This
    # needs nothing from a subclass but a constructor that builds the system from its arguments
    # (a subclass whose __init__ calls super().__init__ records once, its own arguments).
    _init_args: tuple[tuple, dict]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_records_args", False):
            return

        @functools.wraps(init)
        def recording_init(self, *args: Any, **kw: Any) -> None:
            if "_init_args" not in self.__dict__:
                # Copies: a caller may change its arrays after building the system; what pickles
                # must be what the system was built from.
                self.__dict__["_init_args"] = (_copied(args), _copied(kw))
            init(self, *args, **kw)

        recording_init._records_args = True  # type: ignore[attr-defined]
        cls.__init__ = recording_init  # type: ignore[method-assign]

    @property
    def init_args(self) -> tuple[tuple, dict]:
        """The (positional, keyword) arguments this system's constructor was called with
        (copies): ``type(system)(*args, **kwargs)`` rebuilds it; pickling does just that."""
        if "_init_args" not in self.__dict__:
            raise TypeError(f"{type(self).__name__} was not built through its constructor, so "
                            "it cannot be rebuilt (pickled)")
        return self.__dict__["_init_args"]

    def __reduce__(self):
        args, kwargs = self.init_args
        return (_rebuild_system, (type(self), args, kwargs))

    def _named_init_args(self) -> dict[str, Any]:
        """The recorded constructor arguments by parameter name."""
        args, kwargs = self.init_args
        init = inspect.unwrap(type(self).__init__)
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        return {k: v for k, v in bound.arguments.items() if k != "self"}

    def _batch_arguments(self) -> dict[str, np.ndarray]:
        """The constructor arguments with one entry per trajectory (e.g. tau of a τ-sweep,
        coupling of a network sweep, A of shape (batch, d, d)); empty for a single trajectory.

        Read from the recorded arguments, not from a class's internals, so every system built
        by its constructor has them. Candidates are the numeric arrays whose leading axis has
        the batch length; since a per-node or per-delay array can have that length too, the
        largest set of candidates whose slices rebuild the first trajectory alone (checked by
        :func:`_same_rows`) is the answer, found once per system."""
        if self.batch_size is None or "_init_args" not in self.__dict__:
            return {}  # (a system made without its constructor: nothing recorded to slice)
        try:
            named = self._named_init_args()
        except TypeError:  # arguments that no longer bind to the signature: nothing to slice
            return {}
        candidates = {}
        for name, value in named.items():
            if callable(value) or isinstance(value, (str, bytes)) or value is None:
                continue
            try:
                arr = np.asarray(value)
            except Exception:  # e.g. a scipy.sparse matrix: not per trajectory
                continue
            if arr.dtype.kind in "biuf" and arr.ndim >= 1 and arr.shape[0] == self.batch_size:
                candidates[name] = arr
        names = self.__dict__.get("_batch_argument_names")
        if names is None:
            names = ()
            for r in range(len(candidates), 0, -1):
                for subset in itertools.combinations(candidates, r):
                    if self._rebuilt({n: candidates[n][:1] for n in subset}, 0, 1) is not None:
                        names = subset
                        break
                if names:
                    break
            self.__dict__["_batch_argument_names"] = names
        return {n: candidates[n] for n in names}

    def _rebuilt(self, replaced: dict[str, Any], start: int, stop: int) -> Optional[DDESystem]:
        """This system's constructor called with ``replaced`` arguments, if that builds
        trajectories [start, stop) of this batch (:func:`_same_rows`); else None."""
        named = self._named_init_args()
        init = inspect.unwrap(type(self).__init__)
        args: list = []
        kwargs: dict = {}
        for p in list(inspect.signature(init).parameters.values())[1:]:
            if p.name not in named:
                continue
            value = replaced.get(p.name, named[p.name])
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                args.append(value)
            elif p.kind == p.VAR_POSITIONAL:
                args.extend(value)
            elif p.kind == p.VAR_KEYWORD:
                kwargs.update(value)
            else:
                kwargs[p.name] = value
        try:
            sub = type(self)(*args, **kwargs)
            ok = sub.n_trajectories == stop - start and _same_rows(sub, self, start, stop)
        except (TypeError, ValueError, IndexError):
            return None
        return sub if ok else None

    def swept_parameters(self) -> dict[str, np.ndarray]:
        """The parameters swept over a batch, one value per trajectory: the constructor's 1-D
        array arguments that set the batch (``{"tau": ...}`` for
        ``mackey_glass(tau=np.linspace(5, 30, 100))``, ``{"coupling": ...}`` for a network
        sweep); empty for a single trajectory. Labelled results (``to_xarray()``) use them as
        coordinates."""
        return {k: v for k, v in self._batch_arguments().items() if v.ndim == 1}

    def _sub_batch(self, start: int, stop: int) -> DDESystem:
        """Trajectories [start, stop) of a batch as a system of their own (a chunk of a
        distributed run): the constructor rebuilt with every per-trajectory argument
        (:meth:`_batch_arguments`) sliced, checked against the full system, so a system whose
        batch cannot be cut this way raises instead of running the wrong trajectories."""
        if self.batch_size is None:
            raise ValueError("system: a single trajectory has no sub-batches")
        if start == 0 and stop == self.batch_size:
            return self
        per_trajectory = self._batch_arguments()
        sub = (self._rebuilt({k: v[start:stop] for k, v in per_trajectory.items()}, start, stop)
               if per_trajectory else None)
        if sub is None:
            raise ValueError(f"system: cannot split {type(self).__name__}'s batch by slicing its "
                             "constructor arguments (run it without a client)")
        return sub

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


def _copied(value: Any) -> Any:
    """A deep copy of constructor arguments; callables (a Python right-hand side) and anything
    that cannot be copied are kept as they are."""
    try:
        return copy.deepcopy(value)
    except Exception:  # e.g. a handle to a resource: record the object itself
        return value


def _same_rows(sub: DDESystem, full: DDESystem, start: int, stop: int) -> bool:
    """True when ``sub`` holds trajectories [start, stop) of ``full``: same delays, and the
    same f at a random point for its first and last trajectory (systems with ``rhs``)."""
    d_full, d_sub = full.delays, sub.delays
    rows = d_full[start:stop] if d_full.shape[0] == full.n_trajectories else d_full
    if d_sub.shape[0] == 1 and rows.shape[0] != 1:
        d_sub = np.broadcast_to(d_sub, rows.shape)
    if d_sub.shape != rows.shape or not np.array_equal(d_sub, rows):
        return False
    rhs_sub, rhs_full = getattr(sub, "rhs", None), getattr(full, "rhs", None)
    if rhs_sub is None or rhs_full is None:
        return True
    rng = np.random.default_rng(0)
    x = rng.standard_normal(full.dim)
    xd = rng.standard_normal((full.n_delays, full.dim))
    return all(np.array_equal(np.asarray(rhs_sub(0.3, x, xd, i)),
                              np.asarray(rhs_full(0.3, x, xd, start + i)))
               for i in {0, stop - start - 1})


def _rebuild_system(cls: type, args: tuple, kwargs: dict) -> DDESystem:
    return cls(*args, **kwargs)


# The solver options travel with a distributed run: pickle them field by field (the compiled
# class has no pickle support of its own).
_OPTION_FIELDS = ("method", "rtol", "atol", "dt", "max_step", "min_step", "max_steps",
                  "track_discontinuities", "max_overlap_iterations", "overlap_tol", "safety",
                  "min_factor", "max_factor")


def _rebuild_options(fields: dict) -> _core.SolverOptions:
    opt = _core.SolverOptions()
    for name, value in fields.items():
        setattr(opt, name, value)
    return opt


def _reduce_options(opt: _core.SolverOptions):
    return (_rebuild_options, ({name: getattr(opt, name) for name in _OPTION_FIELDS
                                if hasattr(opt, name)},))


copyreg.pickle(_core.SolverOptions, _reduce_options)


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
