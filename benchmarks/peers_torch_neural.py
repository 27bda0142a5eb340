"""The torch peers of the neural DDE benchmarks (bench_neural.py, gpu/bench_neural_gpu.py):
the benchmark's weights, a plain torch RK4 loop with autograd, and a torchdde training step.
Each step works on the device of the tensors it is given.

The field is h' = W_out tanh(W h + W_1 h(t − τ) + b) on [0, T_FINAL], constant history h0.
"""
from __future__ import annotations

import time
import warnings

import torch

BATCH, T_FINAL = 256, 1.0


def params(dim: int, hidden: int, n_delays: int, seed: int = 0, dtype=torch.float64,
           batch: int = BATCH):
    """(h0, W, W_delay, b, W_out) of the benchmark's field, seeded, requiring grad."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(hidden, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    Wd = torch.randn(n_delays, hidden, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    b = 0.1 * torch.randn(hidden, generator=g, dtype=torch.float64)
    Wout = torch.randn(dim, hidden, generator=g, dtype=torch.float64) / hidden ** 0.5
    h0 = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    return [t.to(dtype).requires_grad_(True) for t in (h0, W, Wd, b, Wout)]


def torch_rk4_step(p, dt: float, m: int, share_delayed: bool = False):
    """Plain torch RK4 with autograd; delay τ = m·dt, reads as delyap's Hermite history.

    ``share_delayed``: compute the delayed product y W_1ᵀ once per read point (the two midpoint
    stages read one point, a step's last stage and the next step's first another), as delyap's
    core does; a hand optimisation of the loop, off in the plain loop."""
    h0, W, Wd, b, Wout = p
    for t in p:
        t.grad = None
    t0 = time.perf_counter()
    n_steps = round(T_FINAL / dt)
    nd = Wd.shape[0]
    products: dict = {}  # read point -> y W_1ᵀ (share_delayed)

    def delayed(key, y):
        if not share_delayed:
            return y @ Wd[0].T
        if key not in products:
            products.clear()  # a point is read by consecutive stages only
            products[key] = y @ Wd[0].T
        return products[key]

    def f(u, key, y):
        z = u @ W.T + b
        if nd:
            z = z + delayed(key, y)
        return torch.tanh(z) @ Wout.T

    X, F = [h0], []  # states and f at step starts (K[n][0])
    for n in range(n_steps):
        i = n - m  # the delayed step index for stage time t_n
        x = X[n]
        k1 = f(x, ("x", max(i, 0)), None if nd == 0 else (h0 if i < 0 else X[i]))
        F.append(k1)
        if nd == 0:
            ym = y1 = None
        elif i < 0:
            ym, y1 = h0, (h0 if i + 1 <= 0 else X[i + 1])
        else:
            y1 = X[i + 1]
            # Cubic Hermite midpoint of step i: (x_i + x_{i+1})/2 + dt (f_i − f_{i+1})/8.
            ym = 0.5 * (X[i] + y1) + dt * (F[i] - F[i + 1]) / 8.0
        k2 = f(x + 0.5 * dt * k1, ("mid", i), ym)
        k3 = f(x + 0.5 * dt * k2, ("mid", i), ym)
        k4 = f(x + dt * k3, ("x", max(i + 1, 0)), y1)
        X.append(x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))
    y = X[-1]
    y.pow(2).sum().backward()
    return (y.detach(), [t.grad for t in p]), time.perf_counter() - t0


def torchdde_step(p32, dt: float, tau: float, solver: str = "RK4", rtol: float = 0.0):
    """One torchdde training step: RK4 (or another solver) on constant steps dt, or with
    rtol > 0 its adaptive step-size controller (atol = rtol / 100)."""
    import torchdde

    h0, W, Wd, b, Wout = p32

    class Field(torch.nn.Module):
        def forward(self, t, y, args, *, history):
            return torch.tanh(y @ W.T + history[0] @ Wd[0].T + b) @ Wout.T

    fn = Field()
    dev = h0.device  # (the GPU benchmark runs this on CUDA tensors)
    fn.delays = torch.tensor([tau], dtype=torch.float32, device=dev)
    for t in p32:
        t.grad = None
    ts = torch.tensor([0.0, T_FINAL], dtype=torch.float32, device=dev)
    kw: dict = {"dt0": torch.tensor(dt, dtype=torch.float32, device=dev)}
    if rtol > 0:
        kw = {"dt0": None, "stepsize_controller": torchdde.AdaptiveStepSizeController(
            atol=rtol * 1e-2, rtol=rtol)}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ys = torchdde.integrate(fn, getattr(torchdde, solver)(), ts[0], ts[-1], ts,
                                lambda t: h0, None, delays=fn.delays,
                                discretize_then_optimize=True, max_steps=100_000, **kw)
    y = ys[:, -1]
    y.pow(2).sum().backward()
    return (y.detach(), [t.grad for t in p32]), time.perf_counter() - t0
