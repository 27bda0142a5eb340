"""The C++ neural-DDE pass as a ``torch.autograd.Function`` (torch is imported lazily)."""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

import numpy as np

from .. import _core

if TYPE_CHECKING:
    import torch

ACTIVATIONS = {"tanh": 0, "relu": 1, "softplus": 2, "sigmoid": 3}
# sup |σ'|: the activation's Lipschitz constant.
ACTIVATION_LIPSCHITZ = {"tanh": 1.0, "relu": 1.0, "softplus": 1.0, "sigmoid": 0.25}
# The forward keeps the layer's activations for the backward (which then skips recomputing
# them: a fifth of its work) while they take at most this many bytes; longer passes recompute
# them and stay at O(steps·batch·dim) memory.
ACTIVATION_CACHE_BYTES = 64 * 2**20
# Where a pass runs: "core" (the C++ pass, CPU tensors), "torch" (the same scheme through torch
# operations on the tensors' device, autograd through the stages), "auto" (core on the CPU,
# torch elsewhere, e.g. on a GPU).
BACKENDS = ("auto", "core", "torch")
_METHODS = {"Euler": _core.Method.Euler, "RK4": _core.Method.RK4, "BS3": _core.Method.BS3,
            "DP5": _core.Method.DP5}


@dataclass(frozen=True)
class SolveConfig:
    """How one pass integrates (everything but the tensors)."""

    activation: str = "tanh"
    t_final: float = 1.0
    method: str = "DP5"
    rtol: float = 1e-6
    atol: float = 1e-8
    dt: Optional[float] = None
    max_steps: int = 1_000_000
    threads: int = 0

    def check(self) -> None:
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if not isinstance(self.method, str) or self.method not in _METHODS:
            raise ValueError(f"method: expected one of {sorted(_METHODS)}, got {self.method!r}")
        if not (np.isfinite(self.t_final) and self.t_final > 0):
            raise ValueError(f"t_final: must be positive and finite, got {self.t_final}")
        if self.method in ("Euler", "RK4") and self.dt is None:
            raise ValueError(f"dt: method {self.method!r} is fixed-step and needs dt")
        if self.dt is not None and not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt: must be positive, got {self.dt}")
        if not (np.isfinite(self.rtol) and self.rtol > 0):
            raise ValueError(f"rtol: must be positive and finite, got {self.rtol}")
        if not (np.isfinite(self.atol) and self.atol >= 0):
            raise ValueError(f"atol: must be non-negative and finite, got {self.atol}")
        for name, v, least in (("max_steps", self.max_steps, 1), ("threads", self.threads, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                raise ValueError(f"{name}: expected an integer ≥ {least}, got {v!r}")


class _Plan(NamedTuple):
    """A checked SolveConfig as the C++ pass takes it."""

    activation: int
    method: Any  # _core.Method
    t_final: float
    rtol: float
    atol: float
    dt: float
    max_steps: int
    threads: int


def plan_of(cfg: SolveConfig) -> _Plan:
    """``cfg`` checked (raises naming the argument) and converted, once per configuration: a
    module's configuration is fixed, so its training steps skip both."""
    try:
        hash(cfg)
    except TypeError:  # an unhashable field (a list for the method...): check() names it
        return _make_plan(cfg)
    return _cached_plan(cfg)


def _make_plan(cfg: SolveConfig) -> _Plan:
    cfg.check()
    # threads <= 0 stays 0: the core then uses as many threads as the pass's work pays for.
    return _Plan(ACTIVATIONS[cfg.activation], _METHODS[cfg.method], float(cfg.t_final),
                 float(cfg.rtol), float(cfg.atol), float(cfg.dt or 0.0), int(cfg.max_steps),
                 int(cfg.threads))


_cached_plan = functools.lru_cache(maxsize=256)(_make_plan)


def check_tensors(h0: torch.Tensor, W: torch.Tensor, W_delay: torch.Tensor, b: torch.Tensor,
                  W_out: torch.Tensor, tau: torch.Tensor,
                  w_time: Optional[torch.Tensor] = None, W_hidden: Optional[torch.Tensor] = None,
                  b_hidden: Optional[torch.Tensor] = None, backend: str = "auto") -> str:
    """Type, device, dtype and rank checks of a pass's tensors (shapes: the C++ pass); returns
    the backend the pass runs on ("core" or "torch")."""
    import torch

    tensors: tuple[tuple[str, Any], ...] = (("h0", h0), ("W", W), ("W_delay", W_delay),
                                            ("b", b), ("W_out", W_out), ("tau", tau))
    optional = (("w_time", w_time), ("W_hidden", W_hidden), ("b_hidden", b_hidden))
    tensors += tuple((name, v) for name, v in optional if v is not None)
    if (W_hidden is None) != (b_hidden is None):
        raise ValueError("W_hidden, b_hidden: give both (stacked hidden layers) or neither")
    for name, v in tensors:
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(v).__name__}")
        if v.device != h0.device:
            raise ValueError(f"{name}: on {v.device}, but h0 is on {h0.device} (mixed devices: "
                             "move the input or the module, e.g. model.to(x.device))")
        if v.dtype is not torch.float64 and v.dtype is not torch.float32:
            raise TypeError(f"{name}: expected float32 or float64, got {v.dtype}")
    dtype = h0.dtype
    # Delays that are not learned are read as float64 values (a module keeps them in float64
    # in any dtype): only a learned τ, whose gradient has the others' dtype, must match.
    typed = tuple((n, v) for n, v in tensors if n != "tau" or v.requires_grad)
    if any(v.dtype is not dtype for _, v in typed):
        dtypes = sorted({str(v.dtype) for _, v in typed})
        raise TypeError(f"{', '.join(n for n, _ in typed)}: mixed dtypes {dtypes}"
                        "; convert the input or the module (model.double())")
    if h0.ndim != 2:
        raise ValueError(f"h0: expected shape (batch, dim), got {tuple(h0.shape)}")
    if tau.ndim != 1:
        raise ValueError(f"tau: expected shape (n_delays,), got {tuple(tau.shape)}")
    # Every shape here, for both backends: torch's operations would broadcast a (1,) bias or
    # use only the first of two W_delay (the core checks again, in its own words).
    if W.ndim != 2:
        raise ValueError(f"W: expected shape (hidden, dim), got {tuple(W.shape)}")
    D, H, nd = h0.shape[1], W.shape[0], tau.shape[0]
    want = [("W", W, (H, D)), ("W_delay", W_delay, (nd, H, D)), ("b", b, (H,)),
            ("W_out", W_out, (D, H)), ("w_time", w_time, (H,))]
    if W_hidden is not None and b_hidden is not None:
        n = W_hidden.shape[0] if W_hidden.ndim == 3 else -1
        want += [("W_hidden", W_hidden, (n, H, H)), ("b_hidden", b_hidden, (n, H))]
    for name, v, shape in want:
        if v is not None and tuple(v.shape) != shape:
            expected = {"W": "(hidden, dim)", "W_delay": "(n_delays, hidden, dim)",
                        "b": "(hidden,)", "W_out": "(dim, hidden)", "w_time": "(hidden,)",
                        "W_hidden": "(n, hidden, hidden)", "b_hidden": "(n, hidden)"}[name]
            raise ValueError(f"{name}: expected shape {expected} = {shape} for h0 of shape "
                             f"{tuple(h0.shape)}, W of shape {tuple(W.shape)} and "
                             f"{nd} delays, got {tuple(v.shape)}")
    return resolve_backend(backend, h0.device)


def check_backend(backend: Any) -> str:
    """``backend`` if it is one of BACKENDS (else a ValueError naming it)."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


def resolve_backend(backend: str, device: torch.device) -> str:
    """"core" or "torch" for tensors on ``device`` (raises naming ``backend``)."""
    check_backend(backend)
    if backend == "auto":
        return "core" if device.type == "cpu" else "torch"
    if backend == "core" and device.type != "cpu":
        raise ValueError(f"backend: 'core' runs on the CPU, the tensors are on {device} "
                         "(backend='torch' or 'auto' runs the pass there)")
    return backend


def delay_values(tau: torch.Tensor, what: str = "positive and finite") -> list[float]:
    """The delays as floats, checked positive and finite (``what``: the message's wording)."""
    vals = tau.detach().tolist()
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"tau: delays must be {what}, got {vals}")
    return vals


def checked_grid(grid: Any, t_final: float) -> np.ndarray:
    """A step sequence to replay: increasing float64 times from 0 to ``t_final``."""
    g = np.ascontiguousarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size < 2 or g[0] != 0.0 or not np.all(np.diff(g) > 0):
        raise ValueError("grid: expected increasing times starting at 0")
    if abs(g[-1] - t_final) > 1e-12 * max(1.0, t_final):
        raise ValueError(f"grid: must end at t_final = {t_final}, ends at {g[-1]}")
    return g


def _named_failure(err: RuntimeError, **arrays: Optional[np.ndarray]) -> Exception:
    """The error of a failed adaptive pass, naming its first cause: a NaN or inf input makes
    every step's error estimate non-finite, so the controller shrinks the step until "step
    size underflow", which hid that the input, not the dynamics, was at fault. A pass whose
    inputs are finite keeps the core's error (the solution blew up or is too stiff)."""
    for name, a in arrays.items():
        if a is not None and not np.all(np.isfinite(a)):
            return ValueError(f"{name}: contains NaN or inf (the adaptive pass cannot "
                              f"control its error on it: {err})")
    return err


class _NeuralSolveFn:
    """Namespace for the lazily built autograd Functions (torch is optional for delyap)."""

    fn: Any = None       # forward(ctx, …): autograd's fast form, for plain calls
    func_fn: Any = None  # forward + setup_context + vmap: the form torch.func's transforms take


def _function(functorch: bool = False) -> Any:
    """The pass's autograd Function: the plain form, or (``functorch``, under torch.func's
    transforms) the form they take. The plain one is what training calls: torch binds the
    arguments of a setup_context form through inspect.signature at every call (≈ 120 µs, a
    fifth of a small training step)."""
    if _NeuralSolveFn.fn is not None:
        return _NeuralSolveFn.func_fn if functorch else _NeuralSolveFn.fn
    import torch

    f64 = torch.float64

    def as_f64(t: torch.Tensor) -> np.ndarray:
        # float64 contiguous CPU tensors are handed over as views (.numpy() shares memory; the
        # core only reads them); others are converted, once per pass.
        a = t.detach().numpy() if t.dtype is f64 else t.detach().to(f64).numpy()
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)

    def run_forward(h0: torch.Tensor, W: torch.Tensor, W_delay: torch.Tensor,
                    b: torch.Tensor, W_out: torch.Tensor, tau: torch.Tensor,
                    w_time: Optional[torch.Tensor], W_hidden: Optional[torch.Tensor],
                    b_hidden: Optional[torch.Tensor],
                    call: tuple[_Plan, Optional[np.ndarray], Optional[dict]]) -> tuple[Any, ...]:
        """y and the stored pass (t, X, K, A: views of the core's arrays, freed by autograd
        after the backward unless retain_graph, so the activations' buffer goes back to the
        core's pool for the next step while the caller still holds the loss)."""
        p, grid, info = call
        h0a, Wa, Wda, ba, Wouta, taua = (as_f64(t) for t in (h0, W, W_delay, b, W_out, tau))
        wta, Wha, bha = (None if t is None else as_f64(t) for t in (w_time, W_hidden, b_hidden))
        try:
            out = _core.neural_forward(
                h0a, Wa, Wda, ba, Wouta, taua, p.activation, p.method, p.t_final, p.rtol,
                p.atol, p.dt, grid, p.max_steps, p.threads, True,
                float(ACTIVATION_CACHE_BYTES), w_time=wta, W_hidden=Wha, b_hidden=bha)
        except RuntimeError as err:
            raise _named_failure(err, h0=h0a, W=Wa, W_delay=Wda, b=ba, W_out=Wouta,
                                 w_time=wta, W_hidden=Wha, b_hidden=bha) from None
        if info is not None:
            info["t"] = out["t"]
            info["rejected"] = int(out["rejected"])
        y = torch.from_numpy(out["y"])
        A = out["A"]
        return (y if h0.dtype is f64 else y.to(h0.dtype), torch.from_numpy(out["t"]),
                torch.from_numpy(out["X"]), torch.from_numpy(out["K"]),
                None if A is None else torch.from_numpy(A))

    def save(ctx: Any, inputs: tuple[Any, ...], stored: Sequence[Any]) -> None:
        h0, W, W_delay, b, W_out, tau, w_time, W_hidden, b_hidden, call = inputs
        ctx.plan = call[0]
        ctx.dtypes = tuple(None if v is None else v.dtype for v in
                           (h0, W, W_delay, b, W_out, tau, w_time, W_hidden, b_hidden))
        # The backward reads the weights from the saved tensors (autograd checks that none was
        # modified in place since; under torch.func the inputs are wrapped, with no data to
        # view before the backward).
        ctx.save_for_backward(W, W_delay, b, W_out, tau, w_time, W_hidden, b_hidden, *stored)

    def adjoint(ctx: Any, grad_y: torch.Tensor) -> tuple[Any, ...]:
        # The adjoint runs in the core on numpy arrays: its gradients are first order only.
        if grad_y.requires_grad:
            # A graph is being built through this backward: create_graph=True, or torch.func
            # differentiating a gradient (an exact Hessian product), where once_differentiable
            # does not reach and the core's gradients would silently count as constants (an
            # exact HVP gave λ_max 2.637 for 8.301). torch.func.grad records such a graph even
            # for a first derivative: refused too (plain autograd is first order).
            raise RuntimeError("neural_solve: the core's adjoint is first order; second "
                               "derivatives (create_graph=True, exact Hessian-vector "
                               "products) and torch.func's grad/vjp transforms, which "
                               "record a graph through it, need backend='torch' (or "
                               "hvp='difference' in delyap.sgd's Hessian tools)")
        # (saved_tensors also raises if a weight was modified in place since the forward)
        saved = ctx.saved_tensors
        t, X, K, A = saved[8:]
        p: _Plan = ctx.plan
        Wa, Wda, ba, Wouta, taua, wta, Wha, bha = (None if v is None else as_f64(v)
                                                  for v in saved[:8])
        g = _core.neural_backward(Wa, Wda, ba, Wouta, taua, p.activation, p.method, t.numpy(),
                                  X.numpy(), K.numpy(), as_f64(grad_y), p.threads, True,
                                  None if A is None else A.numpy(), w_time=wta,
                                  W_hidden=Wha, b_hidden=bha)
        grads: list[Any] = []
        names = ("h0", "W", "W_delay", "b", "W_out", "tau", "w_time", "W_hidden", "b_hidden")
        for name, need, dtype in zip(names, ctx.needs_input_grad, ctx.dtypes):
            v = torch.from_numpy(g[name]) if need else None
            grads.append(v if v is None or dtype is f64 else v.to(dtype))
        return (*grads, None)

    class NeuralSolve(torch.autograd.Function):
        """h(T) of h' = W_out σ(… σ(W h + Σ_k W_k h(t − τ_k) + b + w_time·t) …), h = h0 on
        [−τmax, 0], by the C++ core; backward is the discrete adjoint of the computed pass (step
        sequence fixed). w_time, W_hidden and b_hidden may be None (an autonomous field, one
        hidden layer)."""

        @staticmethod
        def forward(ctx: Any, *inputs: Any) -> torch.Tensor:
            y, *stored = run_forward(*inputs)
            save(ctx, inputs, stored)
            return y

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[Any, ...]:
            return adjoint(ctx, grad_y)

    class NeuralSolveFunc(torch.autograd.Function):
        """The same pass in the form torch.func's transforms take: forward and setup_context
        apart (the stored pass leaves forward as extra outputs, not differentiable) and a vmap
        rule that joins mapped samples to the batch."""

        @staticmethod
        def forward(*inputs: Any) -> tuple[Any, ...]:
            return run_forward(*inputs)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
            ctx.mark_non_differentiable(*(v for v in output[1:] if v is not None))
            save(ctx, inputs, output[1:])

        @staticmethod
        def vmap(info: Any, in_dims: tuple[Any, ...], h0: torch.Tensor, *rest: Any
                 ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
            # torch.func.vmap over samples (per-sample losses, as the Hessian tools take): the
            # mapped dimension of h0 joins the pass's batch. Mapped weights would be a pass per
            # weight set, which the core does not batch.
            if any(d is not None for d in in_dims[1:-1]):  # (the last: the call's settings)
                raise ValueError("backend: torch.func.vmap over the weights of a pass needs "
                                 "backend='torch' (the core batches samples, not weights)")
            h = h0.movedim(in_dims[0], 0)
            V, B = h.shape[0], h.shape[1]
            y, *stored = NeuralSolveFunc.apply(h.reshape(V * B, h.shape[2]), *rest)
            return (y.reshape(V, B, -1), *stored), (0, None, None, None, None)

        @staticmethod
        @torch.autograd.function.once_differentiable
        def backward(ctx: Any, grad_y: torch.Tensor, *_: Any) -> tuple[Any, ...]:
            return adjoint(ctx, grad_y)

    _NeuralSolveFn.fn, _NeuralSolveFn.func_fn = NeuralSolve, NeuralSolveFunc
    return NeuralSolveFunc if functorch else NeuralSolve


def _functorch_active() -> bool:
    """Whether a torch.func transform (grad, vjp, vmap, …) is running."""
    import torch

    return bool(torch._C._are_functorch_transforms_active())


def solve_checked(h0: torch.Tensor, W: torch.Tensor, W_delay: torch.Tensor, b: torch.Tensor,
                  W_out: torch.Tensor, tau: torch.Tensor, plan: _Plan,
                  grid: Optional[np.ndarray] = None, info: Optional[dict] = None,
                  w_time: Optional[torch.Tensor] = None, W_hidden: Optional[torch.Tensor] = None,
                  b_hidden: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The pass on arguments already checked (check_tensors, delay_values, plan_of,
    checked_grid)."""
    if _functorch_active():
        return _function(True).apply(h0, W, W_delay, b, W_out, tau, w_time, W_hidden, b_hidden,
                                     (plan, grid, info))[0]
    return _function().apply(h0, W, W_delay, b, W_out, tau, w_time, W_hidden, b_hidden,
                             (plan, grid, info))


def neural_solve(h0: torch.Tensor, W: torch.Tensor, W_delay: torch.Tensor,
                 b: torch.Tensor, W_out: torch.Tensor, tau: torch.Tensor, *,
                 activation: str = "tanh", t_final: float = 1.0, method: str = "DP5",
                 rtol: float = 1e-6, atol: float = 1e-8, dt: Optional[float] = None,
                 grid: Optional[np.ndarray] = None, max_steps: int = 1_000_000,
                 threads: int = 0, info: Optional[dict] = None,
                 w_time: Optional[torch.Tensor] = None, W_hidden: Optional[torch.Tensor] = None,
                 b_hidden: Optional[torch.Tensor] = None, backend: str = "auto") -> torch.Tensor:
    """h(T) of the built-in neural DDE vector field, differentiable in every argument:

        h'(t) = W_out a_{L−1},   a_0 = σ(W h(t) + Σ_k W_k h(t − τ_k) + b + w_time·t),
        a_l = σ(W_hidden[l−1] a_{l−1} + b_hidden[l−1])  (l = 1 … L−1),   h(s) = h0 on [−max τ, 0],

    with L − 1 = ``len(W_hidden)`` stacked layers (none by default: W_out σ(W h + … + b)).

    Parameters
    ----------
    h0 : Tensor (batch, dim)
        The constant history h(s) = h0 on [−max τ, 0].
    W : Tensor (hidden, dim)
    W_delay : Tensor (n_delays, hidden, dim)
    b : Tensor (hidden,)
    W_out : Tensor (dim, hidden)
    tau : Tensor (n_delays,)
        Positive delays (empty: a neural ODE).
    activation : {"tanh", "relu", "softplus", "sigmoid"}
    t_final, method, rtol, atol, dt
        As :class:`NeuralDDE`.
    grid : array, optional
        A step sequence 0 = t_0 < … < t_N = T to replay (e.g. ``info["t"]`` of an adaptive
        pass): the pass then takes exactly these steps with ``method``.
    info : dict, optional
        Receives ``t`` (the accepted step times) and ``rejected`` (count).
    w_time : Tensor (hidden,), optional
        The time input's weights (None: an autonomous field). t is each stage's time.
    W_hidden : Tensor (n, hidden, hidden), optional
    b_hidden : Tensor (n, hidden), optional
        n stacked hidden layers after the first (both or neither).
    backend : {"auto", "core", "torch"}
        Where the pass runs. "core": delyap's C++ pass on CPU tensors (float32 computed in
        float64), its backward the discrete adjoint, first-order only (a backward with
        ``create_graph=True``, e.g. a gradient penalty or a Hessian-vector product, raises:
        use "torch" there). "torch": the same steps and interpolant
        through torch operations on the tensors' device and dtype (cuBLAS products on a GPU),
        differentiated by torch's autograd through the stages (second derivatives too; in a
        learned τ exact to second order) (each step's layer activations
        kept while they fit the core's 64 MiB budget, else recomputed step by step in the
        backward); adaptive methods take their steps from one forward pass of the core on CPU
        float64 copies. "auto" (default): core for CPU tensors, torch for any other device.

    Returns
    -------
    Tensor (batch, dim), the dtype of ``h0`` (computed in float64 by the core, in the tensors'
    dtype by the torch backend).

    Notes
    -----
    Non-finite values: a fixed-step pass (or a replayed ``grid``) propagates NaN/inf as torch
    does, row by row (a NaN sample gives a NaN row, the others are unaffected; gradients
    through it are NaN). An adaptive pass (DP5, BS3) raises: ValueError naming the argument
    when an input is not finite, else the core's RuntimeError ("step size underflow",
    "max_steps reached") when the solution blows up or is too stiff.
    """
    backend = check_tensors(h0, W, W_delay, b, W_out, tau, w_time, W_hidden, b_hidden, backend)
    delay_values(tau)
    if grid is not None:
        grid = checked_grid(grid, float(t_final))
        dt = 1.0  # unused (the grid gives the steps); lets fixed-step methods pass the check
    cfg = SolveConfig(activation, float(t_final), method, float(rtol), float(atol),
                      None if dt is None else float(dt), max_steps, threads)
    plan = plan_of(cfg)
    if backend == "torch":
        from ._general import solve_builtin

        return solve_builtin(h0, W, W_delay, b, W_out, tau, cfg, grid, info, w_time, W_hidden,
                             b_hidden)
    return solve_checked(h0, W, W_delay, b, W_out, tau, plan, grid, info, w_time, W_hidden,
                         b_hidden)
