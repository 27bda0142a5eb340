"""solve_dde: the public entry point of the DDE integrators."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._fixed import check_supported, solve_fixed
from ._progress import Progress, ProgressLike, check_progress
from ._result import raise_if_failed
from ._system import ArrayLike, HistoryLike
from ._validate import as_count, as_float_array, as_positive, as_threads, check_distributed
from .device import cuda_backend, device_info, resolve_device, to_host
from .history import build_history
from .networks import _Network
from .rhs import DDESystem, PythonDDE
from .solution import DDESolution

__all__ = ["solve_dde", "METHODS"]

METHODS = {"DP5": _core.Method.DP5, "BS3": _core.Method.BS3, "RK4": _core.Method.RK4,
           "EULER": _core.Method.Euler}
_FIXED_STEP = {"RK4", "EULER"}


def _time_span(t_span) -> tuple[float, float]:
    span = as_float_array(t_span, "t_span", ndim=(1,))
    if span.shape != (2,):
        raise ValueError(f"t_span: expected (t0, t_final), got {span.shape[0]} values")
    t0, tf = float(span[0]), float(span[1])
    if not tf > t0:
        raise ValueError(f"t_span: t_final must be greater than t0, got ({t0}, {tf})")
    return t0, tf


def _times(t_eval, t0: float, tf: float) -> Optional[np.ndarray]:
    if t_eval is None:
        return None
    te = as_float_array(t_eval, "t_eval", ndim=(0, 1)).reshape(-1)
    if te.size == 0:
        raise ValueError("t_eval: empty; pass None for the solver's own steps")
    if np.any(np.diff(te) < 0):
        raise ValueError("t_eval: must be sorted in increasing order")
    slack = 1e-12 * (abs(t0) + abs(tf) + 1.0)
    if te[0] < t0 - slack or te[-1] > tf + slack:
        raise ValueError(f"t_eval: values must lie inside t_span [{t0}, {tf}], "
                         f"got [{te[0]}, {te[-1]}]")
    return np.ascontiguousarray(np.clip(te, t0, tf))


def solve_dde(system: DDESystem, history: HistoryLike, t_span: Sequence[float],
              t_eval: Optional[ArrayLike] = None, *,
              method: str = "DP5", rtol: float = 1e-6, atol: float = 1e-9,
              dt: Optional[float] = None, max_step: Optional[float] = None,
              min_step: Optional[float] = None, max_steps: int = 10_000_000,
              threads: Optional[int] = None, throw: bool = True, y0: Optional[ArrayLike] = None,
              track_discontinuities: bool = True, history_points: Optional[int] = None,
              history_jumps: Optional[ArrayLike] = None,
              history_grid: Optional[ArrayLike] = None,
              output: Union[None, str, Sequence[int]] = None, device: Optional[str] = None,
              history_capacity: Optional[int] = None, progress: ProgressLike = None,
              client: Any = None, store: Optional[str] = None) -> DDESolution:
    """Integrate a delay differential equation, or a batch of them, by the method of steps.

    Parameters
    ----------
    system : DDESystem
        From :mod:`delyap.rhs`: ``mackey_glass``, ``linear`` or ``python``. Array-valued
        parameters make a batch (one trajectory per element).
    history : number, array or callable
        x(t) for t ≤ t0: a constant, a constant per component (dim,), per trajectory
        (batch, dim), or a vectorised callable h(t) (see :mod:`delyap.history`).
    t_span : (t0, t_final)
    t_eval : array, optional
        Sorted output times inside ``t_span`` (dense output of the method). None: every
        accepted step for a single trajectory; the two ends of ``t_span`` for a batch.
    method : {"DP5", "BS3", "RK4", "Euler"}
        Dormand–Prince 5(4) with its 4th-order continuous extension (default), Bogacki–Shampine
        3(2) with cubic Hermite history, or the fixed-step RK4 / Euler (``dt`` required).
    rtol, atol : float
        Tolerances of the error norm (RMS of err / (atol + rtol·|x|)) of adaptive methods.
    dt : float, optional
        Fixed step of RK4/Euler; first step of adaptive methods (default: automatic).
    max_step, min_step : float, optional
        Step bounds. Steps may exceed the delays unless ``max_step`` says otherwise.
    max_steps : int
        Step budget per trajectory (accepted + rejected).
    threads : int, optional
        Worker threads for a batch of compiled systems (default: all cores). Results do not
        depend on it.
    throw : bool
        Raise :class:`delyap.IntegrationError` when a trajectory fails (default). With False,
        read ``solution.status`` instead.
    y0 : optional
        State at t0 when it differs from the history's value there (a jump at t0).
    track_discontinuities : bool
        Land steps on t0 + sums of delays, where the solution's derivatives jump (default).
    history_points : int, optional
        Grid size for sampling a callable history (default 1001, fewer for large states so
        that the grid holds at most about 10⁶ values).
    history_jumps : array, optional
        Times in (t0 − τmax, t0) where a callable history jumps; they are represented exactly
        and propagated by the discontinuity tracker like t0.
    history_grid : array, optional
        Sample times (increasing, ending at t0) for a callable history instead of the uniform
        grid, e.g. geometric where the history varies fast.
    output : None, array of int, or "order_parameter"
        What to keep at each output time: the full state (default), the listed components
        (``sol.y[..., j]`` is component ``output[j]``, indices in [0, dim)), or the order
        parameter of systems that declare one (``system.order_parameter``) as
        ``sol.y[..., 0] = r``, ``sol.y[..., 1] = ψ``: r e^{iψ} = (1/N) Σ e^{iθ_j} for Kuramoto
        phases, (1/N) Σ z_j/|z_j| for Stuart–Landau; other systems raise a ValueError.
        Reduced outputs keep memory at n_t × (outputs) for large networks; they need
        ``t_eval``.

    device : {"cpu", "cuda"}, optional
        Where to integrate. ``"cuda"`` runs one GPU thread per trajectory (built-in
        ``mackey_glass`` with constant delays and small ``linear`` systems; dense output at
        ``t_eval``), with the same per-trajectory code as the CPU. For ``kuramoto`` and
        ``stuart_landau`` networks it runs one trajectory at a time with its state, stages and
        history in GPU memory (one thread per oscillator and per edge row); the CPU's step
        control reads back one error norm per step. None: "cuda" when the history is a GPU
        array, else "cpu". Without a CUDA build or a GPU,
        :class:`delyap.device.CudaUnavailableError` says which is missing.
    history_capacity : int, optional
        ``device="cuda"`` only: history anchors stored per trajectory (rounded up to a power of
        two; default 128 or more). A trajectory that needs more stops with status
        ``history_full``; the others finish.
    progress : None, bool or callable
        A progress bar on stderr (tqdm) over the trajectories of a batch, or over the time
        span of a single trajectory (in thousandths): None (default) shows it when
        stderr is a terminal and the call runs longer than 2 s; True always; False never; a
        callable ``f(done, total)`` receives the counts instead (:mod:`delyap._progress`).
    client : dask.distributed.Client, optional
        Run a batch of a compiled system on a Dask cluster: the batch is cut into chunks (one
        per worker thread and a few more), each chunk runs this function's C++ solver on a
        worker, and the result is assembled in order; bit-identical to the local run
        (:mod:`delyap.distributed`; needs ``delyap[distributed]``).
    store : str, optional
        With ``client``: a folder where each finished chunk is saved as it completes; a rerun
        with the same arguments loads the chunks found there instead of recomputing them.

    Returns
    -------
    DDESolution
    """
    if not isinstance(system, DDESystem):
        raise TypeError(f"system: expected a system from delyap.rhs, got {type(system).__name__}")
    progress = check_progress(progress)
    check_distributed(client, store)
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValueError(f"method: expected one of DP5, BS3, RK4, Euler, got {method!r}")
    name = method.upper()
    t0, tf = _time_span(t_span)
    times = _times(t_eval, t0, tf)

    opt = _core.SolverOptions()
    opt.method = METHODS[name]
    opt.rtol = as_positive(rtol, "rtol")
    opt.atol = as_positive(atol, "atol", allow_zero=True)
    if name in _FIXED_STEP:
        if dt is None:
            raise ValueError(f"dt: the fixed-step method {method} needs a step size dt")
    if dt is not None:
        opt.dt = as_positive(dt, "dt")
    if max_step is not None:
        opt.max_step = as_positive(max_step, "max_step")
    if min_step is not None:
        opt.min_step = as_positive(min_step, "min_step", allow_zero=True)
    if min_step is not None and max_step is not None and opt.min_step > opt.max_step:
        raise ValueError(f"min_step: {min_step} is larger than max_step = {max_step}")
    opt.max_steps = as_count(max_steps, "max_steps")
    if not isinstance(track_discontinuities, (bool, np.bool_)):
        # (bool("False") is True)
        raise TypeError(f"track_discontinuities: expected True or False, got "
                        f"{track_discontinuities!r}")
    opt.track_discontinuities = bool(track_discontinuities)
    n_threads = as_threads(threads)
    if history_points is None:
        history_points = int(min(1001, max(33, 10**6 // max(1, system.dim
                                                            * system.n_trajectories))))
    where = resolve_device(device, history)
    history = to_host(history)
    hist = build_history(history, system, t0, y0,
                         history_points=as_count(history_points, "history_points", minimum=2),
                         jumps=history_jumps, grid=history_grid)

    check_distributed(client, store, where)
    if where == "cuda" and isinstance(system, _Network):
        # One large trajectory at a time, its state and history in device memory.
        if history_capacity is not None:
            raise ValueError("history_capacity: a network's GPU history grows as needed; the "
                             "option is for GPU ensembles (mackey_glass, linear)")
        mode = _output_mode(output, system, times)
        backend = cuda_backend()
        start = time.perf_counter()
        raw = system._solve_cuda(backend, hist, t0, tf, times, opt, mode)
    elif where == "cuda":
        check_supported(system, hist, output)
        backend = cuda_backend()
        start = time.perf_counter()
        raw = solve_fixed(system, hist, t0, tf, times if times is not None else np.array([t0, tf]),
                          opt, backend, history_capacity)
    else:
        if history_capacity is not None:
            raise ValueError("history_capacity: only used with device='cuda' (CPU histories grow)")
        mode = _output_mode(output, system, times)
        if client is not None:
            from .distributed import solve_chunks

            start = time.perf_counter()
            raw = solve_chunks(client, system, hist, t0, tf, times, opt, n_threads, mode,
                               store=store, progress=progress)
        else:
            start = time.perf_counter()
            n = system.n_trajectories
            # The core counts finished trajectories of a batch, and a single trajectory (a
            # Python batch is one lockstep state) in thousandths of its time span.
            if n == 1 or isinstance(system, PythonDDE):
                total, unit = _core.PROGRESS_SPAN_UNITS, "‰ of t"
            else:
                total, unit = n, "traj"
            with Progress(progress, total, "solve_dde", unit) as bar, bar.stage(total):
                raw = system._solve(hist, t0, tf, times, opt, n_threads,
                                    _core.OutputSpec(*mode))
    wall = time.perf_counter() - start
    method_name = "Euler" if name == "EULER" else name
    lockstep = isinstance(system, PythonDDE) and system.batch_size is not None
    sol = DDESolution._from_core(raw, method_name, None if lockstep else system.batch_size, wall)
    sol.info["output"] = "state" if output is None else output
    if client is not None:
        sol.info["distributed"] = raw["distributed"]
    if system.batch_size is not None:  # labels of the batch (to_xarray's coordinates)
        sol.info["parameters"] = system.swept_parameters()
    if where == "cuda":
        sol.info.update(device_info("cuda"))
    if lockstep and isinstance(system, PythonDDE):  # isinstance: for the type checker
        # A Python batch is one lockstep state: report one status for every trajectory.
        sol = _split_python_batch(sol, system)
    raise_if_failed(sol, throw)
    return sol


def _output_spec(output, system: DDESystem, times) -> _core.OutputSpec:
    return _core.OutputSpec(*_output_mode(output, system, times))


# The C++ Reduction (cpp/include/delyap/dde/output.hpp) for each declared order parameter.
_ORDER_PARAMETER_MODES = {"phases": 2, "phasors": 3}


def _output_mode(output, system: DDESystem, times) -> tuple[int, list]:
    """(mode, components): 0 full state, 1 the listed components, 2 or 3 the order parameter
    of phases or of phasors (``system.order_parameter``)."""
    if output is None:
        return 0, []
    if times is None:
        raise ValueError("output: a reduced output needs t_eval (the output times)")
    if isinstance(system, PythonDDE) and system.batch_size is not None:
        raise ValueError("output: reduced outputs are not available for batched Python systems")
    if isinstance(output, str):
        if output != "order_parameter":
            raise ValueError(f"output: expected None, component indices or 'order_parameter', "
                             f"got {output!r}")
        kind = system.order_parameter  # declared by the system (delyap._system.DDESystem)
        if kind not in _ORDER_PARAMETER_MODES:
            raise ValueError(f"output: {type(system).__name__} has no order parameter "
                             "('order_parameter' is for kuramoto (phases) and stuart_landau "
                             "(z/|z|) networks); pass component indices or None")
        return _ORDER_PARAMETER_MODES[kind], []
    idx = np.asarray(output)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise TypeError("output: component indices must be a non-empty 1-D integer array")
    if idx.min() < 0 or idx.max() >= system.dim:
        raise ValueError(f"output: component indices must lie in [0, {system.dim}), got "
                         f"{int(idx.min()) if idx.min() < 0 else int(idx.max())}")
    return 1, [int(i) for i in idx]


def _split_python_batch(sol: DDESolution, system: PythonDDE) -> DDESolution:
    b, d = system.n_trajectories, system.dim  # the batch size of a batched system
    y = sol.y  # (n_t, b·d) as the core saw it
    sol.y = np.ascontiguousarray(y.reshape(y.shape[0], b, d).transpose(1, 0, 2))
    sol.y_final = sol.y_final.reshape(b, d)
    sol.status = np.full(b, sol.status, dtype=np.int32)
    sol.t_final = np.full(b, sol.t_final)
    sol.stats = {k: np.full(b, v) for k, v in sol.stats.items()}
    sol.batch_size = b
    return sol
