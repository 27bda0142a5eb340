"""NeuralDDE / NeuralODE modules (torch needed; imported by delyap.nn on first use)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from ._capacity import MemoryCapacity, memory_capacity
from ._general import solve_builtin, without_autocast
from ._solve import (
    ACTIVATIONS,
    SolveConfig,
    check_backend,
    check_tensors,
    checked_grid,
    delay_values,
    plan_of,
    solve_checked,
)


def _delays(tau: Union[float, Sequence[float]], n_delays: int) -> list[float]:
    if isinstance(tau, (bool, np.bool_)) or (isinstance(tau, torch.Tensor) and
                                              tau.dtype is torch.bool):
        raise TypeError(f"tau: expected a delay or a sequence of delays, got {tau!r}")
    if isinstance(tau, torch.Tensor):
        tau = tau.detach().cpu().double().numpy()
    if np.ndim(tau) == 0:  # any number: int, float, numpy scalar, 0-d array or tensor
        try:
            tau = float(tau)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError(f"tau: expected a delay or a sequence of delays, got "
                            f"{type(tau).__name__}") from None
        # One number and several delays: spread them evenly up to it (τ_k = τ·k/n).
        return [float(tau) * (k + 1) / n_delays for k in range(n_delays)]
    try:
        vals = [float(v) for v in np.asarray(tau, dtype=float).reshape(-1)]
    except (TypeError, ValueError):
        raise TypeError(f"tau: expected a delay or a sequence of delays, got {tau!r}") from None
    if len(vals) != n_delays:
        raise ValueError(f"tau: expected {n_delays} delays (n_delays), got {len(vals)}")
    return vals


class NeuralDDE(nn.Module):
    r"""A neural delay differential equation x ↦ λ2(h(T)), with

        h'(t) = W_out σ(W h(t) + Σ_k W_k h(t − τ_k) + b [+ w_time·t]),
        h(s) = λ1(x) on [−max τ, 0],

    (with ``depth`` > 1, depth − 1 more hidden layers a ↦ σ(W_hidden[l] a + b_hidden[l]) before
    W_out),

    λ1 an affine lift (``in_features → dim``, followed by ``augment`` zero dimensions) and λ2
    an affine readout (``dim + augment → out_features``). Forward and backward run in delyap's
    C++ core: the backward pass is the exact discrete adjoint of the computed forward pass
    (the accepted step sequence held fixed), giving gradients for λ1, λ2, W, W_k, b, W_out,
    ``W_hidden`` and ``b_hidden`` with ``depth`` > 1, ``w_time`` with ``time_input=True`` and,
    with ``learn_tau=True``, τ.

    Finite-depth views: with ``method="Euler"`` and ``dt = T/L`` the forward pass is the
    L-layer network h_{l+1} = h_l + dt·W_out σ(W h_l + Σ_k W_k h_{l−m_k} + b) (h_{l} = h_0 for
    l < 0) when every τ_k = m_k·dt: a DenseResNet whose delayed skip connections reach m_k
    layers back; without delays (:class:`NeuralODE`) it is a ResNet.

    Parameters
    ----------
    in_features, out_features : int
    dim : int
        State dimension of the (non-augmented) DDE.
    hidden : int
        Width of the vector field's hidden layers.
    tau : float or sequence of float
        The delays (positive). A single number with ``n_delays > 1`` gives τ_k = τ·k/n_delays.
        Fixed delays are the buffer ``tau``, kept in float64 whatever the module's dtype (casts
        such as ``.double()`` or ``.float()`` move it only between devices), so the pass uses
        exactly the values given; a learnable τ is a parameter of the module's dtype.
    n_delays : int
        Number of delays (0: a neural ODE).
    activation : {"tanh", "relu", "softplus", "sigmoid"}
    t_final : float
        Integration time T.
    method : {"DP5", "BS3", "RK4", "Euler"}
        Adaptive (DP5, BS3: ``rtol``/``atol``, error norm the max over the batch) or fixed-step
        (RK4, Euler: ``dt`` required, dt ≤ min τ).
    rtol, atol : float
    dt : float, optional
        Fixed step, or the first step of an adaptive method.
    learn_tau : bool
        Make τ a trainable parameter (then ``max_delay`` bounds it). Its gradient is that of
        the computed pass with the step sequence held fixed: where a read time t − τ falls
        exactly on a step boundary (or on 0, the end of the constant history), h(T) has a kink
        in τ and the gradient is one of its one-sided derivatives (which one, rounding
        decides; the torch path and the C++ adjoint agree).
    max_delay : float, optional
        Upper bound of learnable delays (τ ≥ max_delay raises).
    augment : int
        Extra state dimensions, zero at t = 0 (augmented neural DDE).
    threads : int
        Worker threads over the batch (0: as many as the pass's work pays for, up to all
        cores: a small fixed-step pass runs on one). While a pass runs, scipy's OpenBLAS is
        held to one thread (its count is restored after): it would otherwise split each of
        the pass's small layer products over its own threads (2.3× slower at dim 32, hidden
        128 on two busy cores); BLAS calls from other threads of the process during the pass
        run single-threaded too.
    depth : int
        Hidden layers of the vector field (1: W_out σ(W h + … + b)); the depth − 1 more are
        hidden × hidden (``W_hidden``, ``b_hidden``; None at depth 1), initialised like
        ``nn.Linear``. Its products run through BLAS GEMMs (scipy's OpenBLAS), also at
        dim ≤ 8.
    time_input : bool
        A non-autonomous field: the hidden layer also takes the time, through a learnable
        weight vector ``w_time`` (hidden,) added as w_time·t to the pre-activations (as if t
        were one more input column of W; initialised like W). False: ``w_time`` is None.
    backend : {"auto", "core", "torch"}
        Where the pass runs (:func:`delyap.nn.neural_solve`): "auto" (default) runs delyap's
        C++ core for a module on the CPU and the torch backend on any other device, so
        ``model.to("cuda")`` trains on the GPU: the same steps and interpolant through torch
        operations (cuBLAS products), gradients by torch's autograd through the stages
        (layer activations kept within the core's 64 MiB budget, else recomputed step by step
        in the backward: O(steps·batch·dim) memory, as the core's pass); an adaptive method takes
        its steps from one CPU forward pass of the core per call. "core" or "torch" force
        one.

    Notes
    -----
    Steps never exceed the smallest delay, so a tiny τ means many steps. Float32 modules and
    inputs are computed in float64 inside the core and cast back.
    """

    def __init__(self, in_features: int, out_features: int, dim: int, hidden: int, *,
                 tau: Union[float, Sequence[float]] = 1.0, n_delays: int = 1,
                 activation: str = "tanh", t_final: float = 1.0, method: str = "DP5",
                 rtol: float = 1e-6, atol: float = 1e-8, dt: Optional[float] = None,
                 learn_tau: bool = False, max_delay: Optional[float] = None, augment: int = 0,
                 threads: int = 0, time_input: bool = False, depth: int = 1,
                 backend: str = "auto") -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features),
                        ("dim", dim), ("hidden", hidden)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if not isinstance(n_delays, (int, np.integer)) or n_delays < 0:
            raise ValueError(f"n_delays: expected a non-negative integer, got {n_delays!r}")
        if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth: expected a positive integer, got {depth!r}")
        if not isinstance(augment, (int, np.integer)) or augment < 0:
            raise ValueError(f"augment: expected a non-negative integer, got {augment!r}")
        if not isinstance(learn_tau, (bool, np.bool_)):
            raise TypeError(f"learn_tau: expected True or False, got {learn_tau!r}")
        self.config = SolveConfig(activation, float(t_final), method, float(rtol), float(atol),
                                  None if dt is None else float(dt), 1_000_000, threads)
        self.config.check()
        self.backend = check_backend(backend)
        taus = _delays(tau, n_delays) if n_delays > 0 else []
        if any(not (math.isfinite(v) and v > 0) for v in taus):
            raise ValueError(f"tau: delays must be positive and finite, got {taus}")
        if max_delay is not None:
            if not (max_delay > 0):
                raise ValueError(f"max_delay: must be positive, got {max_delay}")
            if any(v >= max_delay for v in taus):
                raise ValueError(f"tau: delays {taus} must be below max_delay = {max_delay}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dim, self.hidden, self.augment = int(dim), int(hidden), int(augment)
        self.n_delays, self.learn_tau, self.max_delay = int(n_delays), bool(learn_tau), max_delay
        self.activation = activation
        n = self.dim + self.augment
        self.lift = nn.Linear(self.in_features, self.dim)
        self.readout = nn.Linear(n, self.out_features)
        bound_in, bound_h = 1.0 / math.sqrt(n), 1.0 / math.sqrt(self.hidden)
        self.W = nn.Parameter(torch.empty(self.hidden, n).uniform_(-bound_in, bound_in))
        self.W_delay = nn.Parameter(
            torch.empty(self.n_delays, self.hidden, n).uniform_(-bound_in, bound_in))
        self.b = nn.Parameter(torch.empty(self.hidden).uniform_(-bound_in, bound_in))
        self.W_out = nn.Parameter(torch.empty(n, self.hidden).uniform_(-bound_h, bound_h))
        self.depth = int(depth)
        self.W_hidden: Optional[nn.Parameter] = None
        self.b_hidden: Optional[nn.Parameter] = None
        if self.depth > 1:
            self.W_hidden = nn.Parameter(torch.empty(self.depth - 1, self.hidden, self.hidden)
                                         .uniform_(-bound_h, bound_h))
            self.b_hidden = nn.Parameter(torch.empty(self.depth - 1, self.hidden)
                                         .uniform_(-bound_h, bound_h))
        self.time_input = bool(time_input)
        self.w_time: Optional[nn.Parameter] = (
            nn.Parameter(torch.empty(self.hidden).uniform_(-bound_in, bound_in))
            if self.time_input else None)
        if learn_tau:
            self.tau = nn.Parameter(torch.tensor(taus, dtype=torch.get_default_dtype()))
        else:
            # Fixed delays stay float64 in a module of any dtype (_apply): in float32, τ = 0.7
            # would be 0.69999998808 (then dt = 0.7 is longer than the delay) and after
            # .double() τ = 0.05 would be 0.0500000007. The pass reads them as float64 values.
            self.register_buffer("tau", torch.tensor(taus, dtype=torch.float64))
        self.last_info: dict = {}

    def _apply(self, fn, recurse=True):
        # .float(), .half(), .to(dtype) cast every floating buffer: the fixed delays keep their
        # float64 values (exactly those asked for) and follow the module's device only.
        tau = self._buffers.get("tau")
        out = super()._apply(fn, recurse)
        moved = self._buffers.get("tau")
        if tau is not None and moved is not None and moved.dtype != tau.dtype:
            self._buffers["tau"] = tau.to(moved.device)
        return out

    @property
    def state_dim(self) -> int:
        """Dimension of the integrated state (dim + augment)."""
        return self.dim + self.augment

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        """h0 = λ1(x), with the ``augment`` zero dimensions appended."""
        self._check_input(x)
        h0 = self.lift(x.reshape(-1, self.in_features))
        if self.augment:
            h0 = torch.cat([h0, h0.new_zeros(h0.shape[0], self.augment)], dim=1)
        return h0

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected (..., {self.in_features}) features (in_features), "
                             f"got shape {tuple(x.shape)}")
        if x.device != self.W.device:
            raise ValueError(f"x: on {x.device}, but the module's parameters are on "
                             f"{self.W.device} (move one of them: model.to(x.device))")
        if x.dtype != self.W.dtype:
            raise TypeError(f"x: dtype {x.dtype} does not match the module's {self.W.dtype} "
                            "(convert one of them, e.g. model.double())")

    def _check_tau(self) -> list[float]:
        """The delays as floats, checked (positive, below max_delay)."""
        if self.n_delays == 0:
            return []
        vals = delay_values(self.tau, "positive")
        if self.max_delay is not None and any(v >= self.max_delay for v in vals):
            raise ValueError(f"tau: learnable delays {vals} reached max_delay = "
                             f"{self.max_delay}")
        return vals

    def solve(self, h0: torch.Tensor, grid: Optional[np.ndarray] = None) -> torch.Tensor:
        """h(T) from the constant history h0 (batch, dim + augment)."""
        backend = check_tensors(h0, self.W, self.W_delay, self.b, self.W_out, self.tau,
                                self.w_time, self.W_hidden, self.b_hidden,
                                getattr(self, "backend", "auto"))  # (modules pickled before it)
        tau_vals = self._check_tau()
        c = self.config
        if grid is not None:
            grid = checked_grid(grid, c.t_final)
            if c.dt is None:  # unused (the grid gives the steps)
                c = dataclasses.replace(c, dt=1.0)
        info: dict = {}
        if backend == "torch":
            out = solve_builtin(h0, self.W, self.W_delay, self.b, self.W_out, self.tau, c, grid,
                                info, self.w_time, self.W_hidden, self.b_hidden, tau_vals)
            self.last_info = info
            return out
        # plan_of: checked once per configuration (cached), not per training step.
        out = solve_checked(h0, self.W, self.W_delay, self.b, self.W_out, self.tau, plan_of(c),
                            grid, info, self.w_time, self.W_hidden, self.b_hidden)
        self.last_info = info
        return out

    def forward(self, x: torch.Tensor, grid: Optional[np.ndarray] = None) -> torch.Tensor:
        """λ2(h(T)) for inputs x of shape (..., in_features) (batch-first).

        ``grid`` (optional): a step sequence to replay, e.g. ``model.last_info["t"]`` of an
        earlier pass; ``last_info`` receives this pass's step times and rejected-step count.
        """
        lead = x.shape[:-1] if isinstance(x, torch.Tensor) else ()
        device = x.device.type if isinstance(x, torch.Tensor) else "cpu"
        # Under torch.autocast the lift would hand the pass bfloat16/float16 states: the whole
        # model runs in its own dtype, as its docs say (the pass needs float32 or float64).
        with without_autocast(device):
            y = self.readout(self.solve(self.initial_state(x), grid))
        return y.reshape(*lead, self.out_features)

    def memory_capacity(self, n_samples: int = 256, seed: int = 0,
                        x: Optional[torch.Tensor] = None) -> MemoryCapacity:
        """The memory capacity Kτ (:func:`delyap.nn.memory_capacity`)."""
        return memory_capacity(self, n_samples=n_samples, seed=seed, x=x)

    def extra_repr(self) -> str:
        c = self.config
        return (f"in={self.in_features}, out={self.out_features}, dim={self.dim}, "
                f"hidden={self.hidden}, augment={self.augment}, n_delays={self.n_delays}, "
                f"activation={c.activation}, method={c.method}, T={c.t_final}"
                + (f", depth={self.depth}" if self.depth > 1 else "")
                + (", time_input=True" if self.time_input else "")
                + (f", backend={self.backend!r}"
                   if getattr(self, "backend", "auto") != "auto" else ""))


class NeuralODE(NeuralDDE):
    """A neural ODE x ↦ λ2(h(T)), h' = W_out σ(W h + b [+ w_time·t]), h(0) = λ1(x):
    :class:`NeuralDDE` without delays (same parameters otherwise; with Euler and dt = T/L, an
    L-layer ResNet, whose layers with ``time_input`` have biases b + w_time·l·dt)."""

    def __init__(self, in_features: int, out_features: int, dim: int, hidden: int, *,
                 activation: str = "tanh", t_final: float = 1.0, method: str = "DP5",
                 rtol: float = 1e-6, atol: float = 1e-8, dt: Optional[float] = None,
                 augment: int = 0, threads: int = 0, time_input: bool = False,
                 depth: int = 1, backend: str = "auto") -> None:
        super().__init__(in_features, out_features, dim, hidden, tau=1.0, n_delays=0,
                         activation=activation, t_final=t_final, method=method, rtol=rtol,
                         atol=atol, dt=dt, augment=augment, threads=threads,
                         time_input=time_input, depth=depth, backend=backend)


__all__ = ["NeuralDDE", "NeuralODE", "ACTIVATIONS"]
