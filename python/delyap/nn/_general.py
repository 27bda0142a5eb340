"""Any torch vector field f(t, h, h_delayed) on delyap's step sequence and interpolant, with
torch's autograd through the stages (the general, slower path beside the C++ one)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from .. import _core
from .._testing import tableau as _tableau
from ._capacity import _activation
from ._solve import (
    _METHODS,
    ACTIVATION_CACHE_BYTES,
    SolveConfig,
    checked_grid,
    delay_values,
    plan_of,
    solve_checked,
)

__all__ = ["odeint_dde"]


def odeint_dde(f: Callable[[float, torch.Tensor, torch.Tensor], torch.Tensor],
               h0: torch.Tensor, tau: Union[torch.Tensor, Sequence[float]], t_final: float, *,
               method: str = "RK4", dt: Optional[float] = None,
               grid: Optional[np.ndarray] = None) -> torch.Tensor:
    """h(T) of h'(t) = f(t, h(t), h_delayed(t)), h(s) = h0 on [−max τ, 0], through torch.

    ``f(t, h, h_delayed)`` gets h of shape (batch, dim) and the delayed states of shape
    (batch, n_delays, dim) and returns (batch, dim); it is called once per stage for the whole
    batch. The steps are the explicit RK method ``method`` on the fixed grid ``n·dt`` (dt ≤ min
    τ) or on ``grid`` (e.g. the ``info["t"]`` of an adaptive :func:`delyap.nn.neural_solve`
    pass), and delayed states are read by the interpolant the C++ core uses, so on the
    built-in vector field both paths compute the same pass. Gradients come from torch's
    autograd, including those w.r.t. ``tau`` when it requires grad (through the interpolant's
    first and second derivatives at the read time, the step sequence held fixed, as in the C++
    adjoint: gradients and Hessians in τ are exact for the computed pass, third derivatives in
    τ alone are not).

    Parameters
    ----------
    f : callable
        Any function or ``nn.Module`` of (t, h, h_delayed).
    h0 : Tensor (batch, dim)
    tau : Tensor or sequence (n_delays,)
        Positive delays.
    t_final : float
    method : {"Euler", "RK4", "BS3", "DP5"}
    dt : float, optional
        Step of the fixed grid (needed unless ``grid`` is given).
    grid : array, optional
        Step times 0 = t_0 < … < t_N = t_final (checked: a grid ending elsewhere raises).
    """
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {sorted(_METHODS)}, got {method!r}")
    if not isinstance(h0, torch.Tensor) or h0.ndim != 2:
        raise ValueError("h0: expected a (batch, dim) tensor")
    if not torch.is_floating_point(h0):
        # (τ is cast to h0's dtype: an integer h0 turned τ = 0.5 into 0, reported as "tau")
        raise TypeError(f"h0: expected a floating-point tensor, got {h0.dtype}")
    tau_t = torch.as_tensor(tau, dtype=h0.dtype, device=h0.device)
    # The delays as floats once per pass: read times are found on the host without a device
    # synchronisation per stage (on a GPU, each float() of a tensor waits for the queue). Taken
    # before the cast to h0's dtype: in float32, τ = 0.7 would read as 0.69999998808.
    given = tau.detach() if isinstance(tau, torch.Tensor) else torch.as_tensor(
        tau, dtype=torch.float64)
    tau_vals = [float(v) for v in given.tolist()] if tau_t.ndim == 1 else []
    if tau_t.ndim != 1 or not all(v > 0 for v in tau_vals):
        raise ValueError("tau: expected a 1-D sequence of positive delays")
    if not (np.isfinite(t_final) and t_final > 0):
        raise ValueError(f"t_final: must be positive and finite, got {t_final}")
    if grid is None:
        if dt is None or not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt: needed (positive and finite) when no grid is given, got {dt}")
        grid = fixed_grid(t_final, dt)
    # (a grid ending before or after t_final would integrate to another time unnoticed)
    grid = checked_grid(grid, float(t_final))
    no_delays = h0.new_zeros(h0.shape[0], 0, h0.shape[1])  # (once, not per stage)

    def stacked(t: float, u: torch.Tensor, ys: list[torch.Tensor]) -> torch.Tensor:
        out = f(t, u, torch.stack(ys, dim=1) if ys else no_delays)
        if not isinstance(out, torch.Tensor) or out.shape != u.shape:
            # (a (batch, 1) or (dim,) result would broadcast into the state unnoticed)
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"f: must return the state's shape {tuple(u.shape)}, got {got}")
        return out

    return integrate(stacked, h0, tau_t, tau_vals, grid, method)


def _combine(base: torch.Tensor, terms: Iterable[tuple[float, torch.Tensor]]) -> torch.Tensor:
    """base + Σ c·t over the nonzero c, one fused operation per term (torch.add's alpha): the
    stage loop is bound by per-operation cost at small widths (kernel launches on a GPU)."""
    out = base
    for coef, t in terms:
        if coef != 0.0:
            out = torch.add(out, t, alpha=coef)
    return out


def read_curvature_weights(tab: dict, theta: float) -> tuple[list[float], float]:
    """d²/dθ² of the read weights of :func:`delyap._core.neural_read_weights` (nn::read_weights:
    the method's continuous extension, or cubic Hermite on X[i], K[i][0], x(t_{i+1}) and F[i]):
    (weights on K[i][j], weight on F[i]). With them a read's second derivative in s is
    (1/h) Σ w''_j K[i][j]."""
    S, dense, b, fsal = tab["stages"], tab["dense"], tab["b"], tab["fsal"]
    if dense and dense[0]:
        # w_j(θ) = Σ_m dense[j][m] θ^(m+1)  →  w_j'' = Σ_m (m+1) m dense[j][m] θ^(m−1)
        return [sum((m + 1) * m * dm * theta ** (m - 1) for m, dm in enumerate(dj) if m >= 1)
                for dj in dense], 0.0
    h01, h10, h11 = 6.0 - 12.0 * theta, -4.0 + 6.0 * theta, 6.0 * theta - 2.0
    w2 = [h01 * bj for bj in b]
    w2[0] += h10
    if fsal:
        w2[S - 1] += h11
        return w2, 0.0
    return w2, h11


def integrate(field: Callable[[float, torch.Tensor, list[torch.Tensor]], torch.Tensor],
              h0: torch.Tensor, tau_t: torch.Tensor, tau_vals: list[float], grid: np.ndarray,
              method: str, recompute: bool = False) -> torch.Tensor:
    """The stage loop of :func:`odeint_dde` on checked arguments, ``field(t, h, [h(t − τ_k)])``
    taking the delayed states as a list (the built-in field multiplies each by its W_k without
    stacking them). ``recompute``: each step runs under ``torch.utils.checkpoint``, so that
    autograd keeps the states and stages only (O(steps·stages·batch·dim), as the core's pass)
    and recomputes a step's layer activations in the backward (one more forward pass of work);
    for a deterministic ``field`` only (no dropout: its random state is not replayed)."""
    tau_min = min(tau_vals, default=np.inf)
    if np.max(np.diff(grid)) > tau_min * (1 + 1e-12):
        raise ValueError(f"dt: steps must not exceed the smallest delay ({tau_min}); reads "
                         "would reach the running step")
    tab = _tableau(_METHODS[method])
    S, a, b, c, fsal = tab["stages"], tab["a"], tab["b"], tab["c"], tab["fsal"]
    X = [h0]
    K: list[list[torch.Tensor]] = []
    # (under torch.no_grad, e.g. inference, the reads skip the derivative x' they would carry)
    tau_grad = tau_t.requires_grad and torch.is_grad_enabled()
    tau_read = [False] * len(tau_vals)  # delays whose reads left the constant history

    def step(n: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The stages of step n and X[n+1], from X[0..n] and K[0..n−1] (read, not changed:
        with ``recompute`` the backward runs this again)."""
        t, h = float(grid[n]), float(grid[n + 1] - grid[n])
        ks: list[torch.Tensor] = []
        reads: dict[tuple[int, float], tuple[torch.Tensor, Optional[torch.Tensor],
                                             Optional[torch.Tensor]]] = {}

        def stages(i: int) -> list[torch.Tensor]:
            return ks if i == n else K[i]

        def interpolate(i: int, theta: float) -> tuple[torch.Tensor, Optional[torch.Tensor],
                                                        Optional[torch.Tensor]]:
            # x and (when τ is learned) x' and x'' at θ in step i; several stages of a step
            # read the same point (RK4's two midpoints), so each is computed once per step.
            key = (i, theta)
            if key in reads:
                return reads[key]
            hi = float(grid[i + 1] - grid[i])
            w, w_end, dw, dw_end = _core.neural_read_weights(_METHODS[method], theta)
            terms = [(hi * wj, K[i][j]) for j, wj in enumerate(w)]
            if w_end != 0.0:
                terms.append((hi * w_end, stages(i + 1)[0]))
            val = _combine(X[i], terms)
            der: Optional[torch.Tensor] = None
            curv: Optional[torch.Tensor] = None
            if tau_grad:
                der = _weighted(dw, dw_end, i)
                curv = curvature(i, theta)
            reads[key] = (val, der, curv)
            return val, der, curv

        def curvature(i: int, theta: float) -> Optional[torch.Tensor]:
            # x'' at θ in step i. At θ = 0 of the step just finished (stage 0 of a step equal to
            # the smallest delay) the Hermite weights need f(t_n), not yet computed: x'' is
            # taken from the left, θ = 1 of step i − 1 (the interpolant's x'' jumps at a step
            # boundary, so either side is a one-sided second derivative, as the first
            # derivative there is one-sided for methods with their own extension).
            w2, w2_end = read_curvature_weights(tab, theta)
            if w2_end != 0.0 and i + 1 == n and not ks:
                return curvature(i - 1, 1.0) if i >= 1 else None
            hi = float(grid[i + 1] - grid[i])
            return _weighted([v / hi for v in w2], w2_end / hi, i)

        def _weighted(weights: list[float], w_end: float, i: int) -> Optional[torch.Tensor]:
            terms = [(wj, K[i][j]) for j, wj in enumerate(weights) if wj != 0.0]
            if w_end != 0.0:
                terms.append((w_end, stages(i + 1)[0]))
            return _combine(terms[0][0] * terms[0][1], terms[1:]) if terms else None

        def read(s: float, k: int) -> torch.Tensor:
            if not s > 0.0 or n == 0:
                return h0
            i = int(np.searchsorted(grid[: n + 1], s, side="right")) - 1
            i = min(max(i, 0), n - 1)
            theta = min(1.0, max(0.0, (s - grid[i]) / (grid[i + 1] - grid[i])))
            if i + 1 == n and theta < 1e-9:
                # Stage 0 reading the previous step at θ of rounding size (a step equal to the
                # smallest delay, dt = τ): snapped to θ = 0, as the core's locate_read does, so
                # that f(t_n), not yet computed, is not touched.
                theta = 0.0
            val, der, curv = interpolate(i, theta)
            if der is None and curv is None:
                return val
            tau_read[k] = True
            # The read's dependence on τ through s = t − τ_k, to second order: x(s) moves by
            # −x'(s)·δ + ½x''(s)·δ², δ = τ_k − detach(τ_k), zero in value (in any dtype): the
            # terms add the first and second derivatives in τ (gradients, Hessians) and nothing
            # else. (Third derivatives in τ alone would need x''': not carried.)
            delta = tau_t[k] - tau_t[k].detach()
            out = val if der is None else val - delta * der
            return out if curv is None else out + (0.5 * delta * delta) * curv

        for j in range(S):
            if j == 0 and fsal and n > 0:
                ks.append(K[n - 1][S - 1])
                continue
            u = _combine(X[n], ((h * a[j][m], ks[m]) for m in range(j)))
            t_stage = t + c[j] * h
            ks.append(field(t_stage, u, [read(t_stage - tau_vals[k], k)
                                         for k in range(len(tau_vals))]))
        return ks, _combine(X[n], ((h * b[j], ks[j]) for j in range(S)))

    for n in range(len(grid) - 1):
        if recompute:
            ks, x_next = checkpoint(step, n, use_reentrant=False, preserve_rng_state=False)
        else:
            ks, x_next = step(n)
        K.append(ks)
        X.append(x_next)
    if tau_grad and not any(tau_read):
        # Every read stayed in the constant history (all τ_k ≥ T): h(T) does not depend on τ.
        # + 0·τ_k (the finite ones: 0·∞ is NaN) joins τ to the graph, so it gets a zero
        # gradient, as from the C++ adjoint, rather than none (optimizers skip a None grad,
        # torch.autograd.grad raises on it).
        zero = [0.0 * tau_t[k] for k, v in enumerate(tau_vals) if np.isfinite(v)]
        return _combine(X[-1], ((1.0, z) for z in zero))
    return X[-1]


def fixed_grid(t_final: float, dt: float) -> np.ndarray:
    """The times n·dt up to t_final, then t_final, as the core's fixed grid (nn::fixed_grid):
    a last step shorter than 1e-9·dt is a rounding remainder of T/dt, not a step."""
    inner = np.arange(1, int(np.floor(t_final / dt)) + 2) * float(dt)
    return np.concatenate(([0.0], inner[inner < t_final - 1e-9 * dt], [t_final]))


def builtin_field(activation: str, W: torch.Tensor, W_delay: torch.Tensor, b: torch.Tensor,
                  W_out: torch.Tensor, w_time: Optional[torch.Tensor] = None,
                  W_hidden: Optional[torch.Tensor] = None,
                  b_hidden: Optional[torch.Tensor] = None
                  ) -> Callable[[float, torch.Tensor, list[torch.Tensor]], torch.Tensor]:
    """The built-in vector field of :func:`delyap.nn.neural_solve` in torch operations, as a
    ``field(t, h, [h(t − τ_k)])`` for :func:`integrate` (twice differentiable, vmap-able):
    W_out a_{L−1}, a_0 = σ(W h + Σ_k W_k h_k + b + w_time·t), a_l = σ(W_hidden[l−1] a_{l−1} +
    b_hidden[l−1])."""
    sigma = _activation(activation)

    def field(t: float, h: torch.Tensor, h_delayed: list[torch.Tensor]) -> torch.Tensor:
        z = torch.addmm(b, h, W.T)
        for k, y in enumerate(h_delayed):
            z = torch.addmm(z, y, W_delay[k].T)
        if w_time is not None:
            z = torch.add(z, w_time, alpha=t)
        a = sigma(z)
        if W_hidden is not None and b_hidden is not None:
            for V, c in zip(W_hidden, b_hidden):
                a = sigma(torch.addmm(c, a, V.T))
        return a @ W_out.T

    return field


def without_autocast(device_type: str) -> Any:
    """A context that turns torch.autocast off on ``device_type`` (a no-op on devices without
    autocast, e.g. "meta")."""
    available = getattr(torch.amp, "is_autocast_available", lambda d: d in ("cpu", "cuda"))
    if available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _host(v: torch.Tensor) -> torch.Tensor:
    return v.detach().to("cpu", torch.float64)


def _host_or_none(v: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if v is None else _host(v)


def solve_builtin(h0: torch.Tensor, W: torch.Tensor, W_delay: torch.Tensor, b: torch.Tensor,
                  W_out: torch.Tensor, tau: torch.Tensor, cfg: SolveConfig,
                  grid: Optional[np.ndarray], info: Optional[dict],
                  w_time: Optional[torch.Tensor], W_hidden: Optional[torch.Tensor],
                  b_hidden: Optional[torch.Tensor],
                  tau_vals: Optional[list[float]] = None) -> torch.Tensor:
    """The pass of backend "torch": the built-in field through torch operations on the tensors'
    device and dtype (cuBLAS products on a GPU), differentiated by torch's autograd through the
    stages; on the steps and interpolant of the C++ pass, so both compute the same pass.

    Fixed-step configurations (``dt`` or ``grid``) run entirely on the device. An adaptive one
    takes its accepted steps from the C++ controller: one forward pass of the core on float64
    CPU copies chooses them, then the device integrates on that grid (the core's step
    sequence, as a replayed ``grid`` would be). As in the core, the layer activations are kept
    for the backward while they take at most ``ACTIVATION_CACHE_BYTES``; longer passes
    recompute them step by step (torch checkpointing) and keep O(steps·batch·dim).
    ``tau_vals``: the delays as floats when the caller has read them already (each read of a
    device tensor's values waits for the device)."""
    rejected = 0
    if grid is None and cfg.method in ("BS3", "DP5"):  # adaptive, as in the core
        cpu: dict = {}
        with torch.no_grad():
            solve_checked(_host(h0), _host(W), _host(W_delay), _host(b), _host(W_out),
                          _host(tau), plan_of(cfg), None, cpu, _host_or_none(w_time),
                          _host_or_none(W_hidden), _host_or_none(b_hidden))
        grid, rejected = np.asarray(cpu["t"], dtype=np.float64), int(cpu["rejected"])
    elif grid is None:
        assert cfg.dt is not None  # (SolveConfig.check: fixed-step methods have a dt)
        grid = fixed_grid(cfg.t_final, cfg.dt)
    field = builtin_field(cfg.activation, W, W_delay, b, W_out, w_time, W_hidden, b_hidden)
    layers = 1 if W_hidden is None else 1 + W_hidden.shape[0]
    # What autograd keeps per stage: each product's input (the state and the delayed states,
    # each layer's activations) and each activation's output, ≈ batch·(dim·(1 + n_delays) +
    # hidden·layers) values.
    B, D = h0.shape
    per_stage = B * (D * (1 + tau.numel()) + W.shape[0] * layers) * h0.element_size()
    stages = _tableau(_METHODS[cfg.method])["stages"]
    recompute = (torch.is_grad_enabled()
                 and (len(grid) - 1) * stages * per_stage > ACTIVATION_CACHE_BYTES)
    # (under torch.autocast the layer products would run in bfloat16/float16: the pass is
    # computed in the tensors' dtype, as documented and as the core does)
    with without_autocast(h0.device.type):
        out = integrate(field, h0, tau, delay_values(tau) if tau_vals is None else tau_vals,
                        grid, cfg.method, recompute)
    if info is not None:
        info["t"] = grid
        info["rejected"] = rejected
    return out
