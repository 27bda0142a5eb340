"""The C++ neural-DDE pass as a ``torch.autograd.Function`` (torch is imported lazily)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

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
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if self.method not in _METHODS:
            raise ValueError(f"method: expected one of {sorted(_METHODS)}, got {self.method!r}")
        if not (np.isfinite(self.t_final) and self.t_final > 0):
            raise ValueError(f"t_final: must be positive and finite, got {self.t_final}")
        if self.method in ("Euler", "RK4") and self.dt is None:
            raise ValueError(f"dt: method {self.method!r} is fixed-step and needs dt")
        if self.dt is not None and not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt: must be positive, got {self.dt}")
        if not (self.rtol > 0 and self.atol >= 0):
            raise ValueError("rtol, atol: need rtol > 0 and atol >= 0")


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to(dtype=_f64()).cpu().numpy())


def _f64() -> Any:
    import torch

    return torch.float64


def _threads(n: int) -> int:
    return n if n > 0 else (os.cpu_count() or 1)


class _NeuralSolveFn:
    """Namespace for the lazily built autograd Function (torch is optional for delyap)."""

    fn: Any = None


def _function() -> Any:
    if _NeuralSolveFn.fn is not None:
        return _NeuralSolveFn.fn
    import torch

    class NeuralSolve(torch.autograd.Function):
        """h(T) of h' = W_out σ(W h + Σ_k W_k h(t − τ_k) + b), h = h0 on [−τmax, 0], by the C++
        core; backward is the discrete adjoint of the computed pass (step sequence fixed)."""

        @staticmethod
        def forward(ctx: Any, h0: torch.Tensor, W: torch.Tensor, W_delay: torch.Tensor,
                    b: torch.Tensor, W_out: torch.Tensor, tau: torch.Tensor, cfg: SolveConfig,
                    grid: Optional[np.ndarray], info: Optional[dict]) -> torch.Tensor:
            # (ignore: the _core stub gains activation_bytes and A when it is regenerated)
            out = _core.neural_forward(
                _np(h0), _np(W), _np(W_delay), _np(b), _np(W_out), _np(tau),
                ACTIVATIONS[cfg.activation], _METHODS[cfg.method], float(cfg.t_final),
                float(cfg.rtol), float(cfg.atol), float(cfg.dt or 0.0), grid, int(cfg.max_steps),
                _threads(cfg.threads), activation_bytes=float(ACTIVATION_CACHE_BYTES))
            ctx.cfg = cfg
            ctx.trace = (out["t"], out["X"], out["K"], out["A"])
            ctx.save_for_backward(W, W_delay, b, W_out, tau)
            if info is not None:
                info["t"] = out["t"]
                info["rejected"] = int(out["rejected"])
            return torch.from_numpy(out["y"]).to(h0.dtype)

        @staticmethod
        def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[Any, ...]:
            W, W_delay, b, W_out, tau = ctx.saved_tensors
            cfg: SolveConfig = ctx.cfg
            t, X, K, A = ctx.trace
            g = _core.neural_backward(
                _np(W), _np(W_delay), _np(b), _np(W_out), _np(tau),
                ACTIVATIONS[cfg.activation], _METHODS[cfg.method], t, X, K, _np(grad_y),
                _threads(cfg.threads), A=A)

            def back(name: str, like: torch.Tensor) -> torch.Tensor:
                return torch.from_numpy(g[name]).to(like.dtype)

            return (back("h0", grad_y), back("W", W), back("W_delay", W_delay), back("b", b),
                    back("W_out", W_out), back("tau", tau), None, None, None)

    _NeuralSolveFn.fn = NeuralSolve
    return NeuralSolve


def neural_solve(h0: torch.Tensor, W: torch.Tensor, W_delay: torch.Tensor,
                 b: torch.Tensor, W_out: torch.Tensor, tau: torch.Tensor, *,
                 activation: str = "tanh", t_final: float = 1.0, method: str = "DP5",
                 rtol: float = 1e-6, atol: float = 1e-8, dt: Optional[float] = None,
                 grid: Optional[np.ndarray] = None, max_steps: int = 1_000_000,
                 threads: int = 0, info: Optional[dict] = None) -> torch.Tensor:
    """h(T) of the built-in neural DDE vector field, differentiable in every argument.

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

    Returns
    -------
    Tensor (batch, dim), the dtype of ``h0`` (computed in float64).
    """
    import torch

    tensors = {"h0": h0, "W": W, "W_delay": W_delay, "b": b, "W_out": W_out, "tau": tau}
    for name, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(v).__name__}")
        if v.device.type != "cpu":
            raise ValueError(f"{name}: delyap.nn runs on the CPU; got a tensor on {v.device}")
        if v.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name}: expected float32 or float64, got {v.dtype}")
    dtypes = {v.dtype for v in tensors.values()}
    if len(dtypes) > 1:
        raise TypeError(f"h0, W, W_delay, b, W_out, tau: mixed dtypes {sorted(map(str, dtypes))}"
                        "; convert the input or the module (model.double())")
    if h0.ndim != 2:
        raise ValueError(f"h0: expected shape (batch, dim), got {tuple(h0.shape)}")
    if tau.ndim != 1:
        raise ValueError(f"tau: expected shape (n_delays,), got {tuple(tau.shape)}")
    tau_np = tau.detach().cpu().numpy()
    if not np.all(np.isfinite(tau_np)) or np.any(tau_np <= 0):
        raise ValueError(f"tau: delays must be positive and finite, got {tau_np.tolist()}")
    cfg = SolveConfig(activation, float(t_final), method, float(rtol), float(atol),
                      None if dt is None else float(dt), int(max_steps), int(threads))
    if grid is not None:
        grid = np.ascontiguousarray(grid, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 2 or grid[0] != 0.0 or not np.all(np.diff(grid) > 0):
            raise ValueError("grid: expected increasing times starting at 0")
        if abs(grid[-1] - t_final) > 1e-12 * max(1.0, t_final):
            raise ValueError(f"grid: must end at t_final = {t_final}, ends at {grid[-1]}")
        cfg = SolveConfig(activation, float(t_final), method, float(rtol), float(atol), 1.0,
                          int(max_steps), int(threads))
    cfg.check()
    return _function().apply(h0, W, W_delay, b, W_out, tau, cfg, grid, info)
