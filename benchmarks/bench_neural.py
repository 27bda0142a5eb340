"""Neural DDE / ODE training steps: delyap.nn (C++ forward + discrete adjoint) against torch.

One training step = forward pass + backward pass of loss = Σ h(T)² for a batch of 256 states,
on the vector field h' = W_out tanh(W h + W_1 h(t − τ) + b) (τ = 0.5, T = 1), over a grid of
state dim × hidden width. Peers:

* ``torch RK4``: a plain torch RK4 loop with autograd, written here, float64, on the same
  steps and with the same delayed reads as delyap (τ = m·dt: the reads at stage times t and
  t + dt are stored states, the one at t + dt/2 the cubic Hermite midpoint of a stored step,
  as delyap's RK4 history) — the two compute the same numbers (checked);
* ``torchdde`` (float32 only) RK4 on the same constant steps, discretise-then-optimise (its
  adjoint mode fails on this problem in 0.1.3: "Interpolation point is outside data range");
* for the neural ODE (no delay): ``torchdiffeq`` dopri5, direct backprop and adjoint, at the
  loosest tolerance whose error (vs a tight delyap reference) is ≤ delyap DP5's at rtol 1e-6.

Every tool runs on one thread (torch.set_num_threads(1); delyap threads=1, its layer GEMMs
on scipy's OpenBLAS pinned to one thread). GFlop/s counts the
vector field's GEMMs only, 2·B·hidden·dim·(2 + n_delays) per evaluation, times 3 for forward
plus backward (the usual convention), for every tool alike. Peak RSS: a 1000-step RK4 training
step in a fresh subprocess per tool.

Run:  python benchmarks/bench_neural.py [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import _common
import numpy as np
import torch

import delyap
from delyap.nn import neural_solve

BATCH, T_FINAL, TAU = 256, 1.0, 0.5


def params(dim: int, hidden: int, n_delays: int, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(hidden, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    Wd = torch.randn(n_delays, hidden, dim, generator=g, dtype=torch.float64) / dim ** 0.5
    b = 0.1 * torch.randn(hidden, generator=g, dtype=torch.float64)
    Wout = torch.randn(dim, hidden, generator=g, dtype=torch.float64) / hidden ** 0.5
    h0 = torch.randn(BATCH, dim, generator=g, dtype=torch.float64)
    return [t.to(dtype).requires_grad_(True) for t in (h0, W, Wd, b, Wout)]


def field_flops(dim: int, hidden: int, n_delays: int) -> float:
    return 2.0 * BATCH * hidden * dim * (2 + n_delays)


# --------------------------------------------------------------------------- the tools


def delyap_step(p, tau, **kw):
    h0, W, Wd, b, Wout = p
    for t in p:
        t.grad = None
    t0 = time.perf_counter()
    info: dict = {}
    y = neural_solve(h0, W, Wd, b, Wout, tau, threads=1, info=info, **kw)
    loss = y.pow(2).sum()
    loss.backward()
    return (y.detach(), [t.grad for t in p], info), time.perf_counter() - t0


def torch_rk4_step(p, dt: float, m: int):
    """Plain torch RK4 with autograd; delay τ = m·dt, reads as delyap's Hermite history."""
    h0, W, Wd, b, Wout = p
    for t in p:
        t.grad = None
    t0 = time.perf_counter()
    n_steps = round(T_FINAL / dt)
    nd = Wd.shape[0]

    def f(u, y):
        z = u @ W.T + b
        if nd:
            z = z + y @ Wd[0].T
        return torch.tanh(z) @ Wout.T

    X, F = [h0], []  # states and f at step starts (K[n][0])
    for n in range(n_steps):
        i = n - m  # the delayed step index for stage time t_n
        x = X[n]
        k1 = f(x, None if nd == 0 else (h0 if i < 0 else X[i]))
        F.append(k1)
        if nd == 0:
            ym = y1 = None
        elif i < 0:
            ym, y1 = h0, (h0 if i + 1 <= 0 else X[i + 1])
        else:
            y1 = X[i + 1]
            # Cubic Hermite midpoint of step i: (x_i + x_{i+1})/2 + dt (f_i − f_{i+1})/8.
            ym = 0.5 * (X[i] + y1) + dt * (F[i] - F[i + 1]) / 8.0
        k2 = f(x + 0.5 * dt * k1, ym)
        k3 = f(x + 0.5 * dt * k2, ym)
        k4 = f(x + dt * k3, y1)
        X.append(x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))
    y = X[-1]
    y.pow(2).sum().backward()
    return (y.detach(), [t.grad for t in p]), time.perf_counter() - t0


def torchdde_step(p32, dt: float, tau: float):
    import torchdde

    h0, W, Wd, b, Wout = p32

    class Field(torch.nn.Module):
        def forward(self, t, y, args, *, history):
            return torch.tanh(y @ W.T + history[0] @ Wd[0].T + b) @ Wout.T

    fn = Field()
    fn.delays = torch.tensor([tau], dtype=torch.float32)
    for t in p32:
        t.grad = None
    ts = torch.tensor([0.0, T_FINAL], dtype=torch.float32)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ys = torchdde.integrate(fn, torchdde.RK4(), ts[0], ts[-1], ts, lambda t: h0, None,
                                dt0=torch.tensor(dt, dtype=torch.float32),
                                delays=fn.delays, discretize_then_optimize=True,
                                max_steps=100_000)
    y = ys[:, -1]
    y.pow(2).sum().backward()
    return (y.detach(), [t.grad for t in p32]), time.perf_counter() - t0


def torchdiffeq_step(p, rtol: float, adjoint: bool):
    import torchdiffeq

    h0, W, _, b, Wout = p

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.W, self.b, self.Wout = torch.nn.Parameter(W.detach().clone()), \
                torch.nn.Parameter(b.detach().clone()), torch.nn.Parameter(Wout.detach().clone())
            self.nfe = 0

        def forward(self, t, y):
            self.nfe += 1
            return torch.tanh(y @ self.W.T + self.b) @ self.Wout.T

    fn = Field()
    x0 = h0.detach().clone().requires_grad_(True)
    ts = torch.tensor([0.0, T_FINAL], dtype=torch.float64)
    solve = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    t0 = time.perf_counter()
    y = solve(fn, x0, ts, rtol=rtol, atol=rtol * 1e-2, method="dopri5")[-1]
    y.pow(2).sum().backward()
    sec = time.perf_counter() - t0
    return (y.detach(), fn.nfe), sec


# --------------------------------------------------------------------------- peak RSS


def _rss_now_kib() -> float:
    with open("/proc/self/status") as f:
        return float(next(line.split()[1] for line in f if line.startswith("VmRSS:")))


def rss_child(tool: str, dim: int, hidden: int, steps: int) -> None:
    torch.set_num_threads(1)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    dt = T_FINAL / steps
    m = round(TAU / dt)
    base = _rss_now_kib()
    if tool == "torchdde":
        p = params(dim, hidden, 1, dtype=torch.float32)
        torchdde_step(p, dt, TAU)
    else:
        p = params(dim, hidden, 1)
        if tool == "delyap":
            delyap_step(p, torch.tensor([TAU], dtype=torch.float64), t_final=T_FINAL,
                        method="RK4", dt=dt)
        else:
            torch_rk4_step(p, dt, m)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Peak over the process's life, and above the resident size just before the step (the
    # imports' own peak can hide a small step's use: then the second number reads 0).
    print(json.dumps({"peak_mib": peak / 1024, "above_start_mib": max(0.0, peak - base) / 1024}))


def peak_rss(tool: str, dim: int, hidden: int, steps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--rss-child", tool, str(dim), str(hidden),
                          str(steps)], capture_output=True, text=True, env=os.environ)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--rss-child", nargs=4, metavar=("TOOL", "DIM", "HIDDEN", "STEPS"),
                    help=argparse.SUPPRESS)
    _common.add_json_option(ap)
    args = ap.parse_args()
    if args.rss_child:
        tool, dim, hidden, steps = args.rss_child
        rss_child(tool, int(dim), int(hidden), int(steps))
        return
    torch.set_num_threads(1)
    import scipy.linalg  # noqa: F401  (loaded now, so that the BLAS pin below sees its pool)

    with _common.single_blas_thread():
        run(args)


def run(args) -> None:
    reps = 2 if args.quick else 5
    dt = 0.02
    m = round(TAU / dt)
    n_steps = round(T_FINAL / dt)
    try:
        import torchdde  # noqa: F401
        have_dde = True
    except ImportError:
        have_dde = False
    try:
        import torchdiffeq  # noqa: F401
        have_diffeq = True
    except ImportError:
        have_diffeq = False
    print(f"delyap {delyap.__version__}, torch {torch.__version__}; batch {BATCH}, T = {T_FINAL},"
          f" tau = {TAU}, one thread each")
    rows = []
    print("\nNeural DDE, RK4 dt = 0.02 (50 steps), forward + backward, float64 unless noted")
    print(f"{'dim':>4} {'hid':>4} {'delyap ms':>10} {'GF/s':>6} {'torch ms':>9} {'GF/s':>6} "
          f"{'ratio':>6} {'torchdde32 ms':>14} {'ratio':>6} {'|Δy| torch':>10} {'|Δy| dde32':>10}")
    for dim in (2, 8, 32):
        for hidden in (32, 128):
            p = params(dim, hidden, 1)
            tau = torch.tensor([TAU], dtype=torch.float64)
            (y_d, g_d, _), t_d = _common.best_of(reps, lambda: delyap_step(
                p, tau, t_final=T_FINAL, method="RK4", dt=dt))
            (y_t, g_t), t_t = _common.best_of(reps, lambda: torch_rk4_step(p, dt, m))
            flops = 3 * n_steps * 4 * field_flops(dim, hidden, 1)
            row = {"dim": dim, "hidden": hidden, "delyap_s": t_d, "torch_rk4_s": t_t,
                   "ratio_torch": t_t / t_d, "gflops_delyap": flops / t_d / 1e9,
                   "gflops_torch": flops / t_t / 1e9,
                   "max_dy_torch": float((y_d - y_t).abs().max()),
                   "max_dgrad_torch": max(float((a - c).abs().max() / (c.abs().max() + 1e-300))
                                          for a, c in zip(g_d, g_t))}
            if have_dde:
                p32 = params(dim, hidden, 1, dtype=torch.float32)
                (y_3, _), t_3 = _common.best_of(max(1, reps // 2),
                                                lambda: torchdde_step(p32, dt, TAU))
                row.update(torchdde_s=t_3, ratio_torchdde=t_3 / t_d,
                           max_dy_torchdde=float((y_d - y_3.double()).abs().max()))
            rows.append(row)
            print(f"{dim:4d} {hidden:4d} {1e3 * t_d:10.2f} {row['gflops_delyap']:6.2f} "
                  f"{1e3 * t_t:9.2f} {row['gflops_torch']:6.2f} {row['ratio_torch']:6.1f} "
                  f"{1e3 * row.get('torchdde_s', np.nan):14.1f} "
                  f"{row.get('ratio_torchdde', np.nan):6.1f} {row['max_dy_torch']:10.1e} "
                  f"{row.get('max_dy_torchdde', np.nan):10.1e}")

    ode_rows = []
    if have_diffeq:
        print("\nNeural ODE, DP5 rtol 1e-6 (delyap) vs torchdiffeq dopri5 at matched error")
        print(f"{'dim':>4} {'hid':>4} {'delyap ms':>10} {'err':>8} {'tdq rtol':>9} "
              f"{'direct ms':>10} {'ratio':>6} {'adjoint ms':>11} {'ratio':>6}")
        for dim in (2, 8, 32):
            for hidden in (32, 128):
                p = params(dim, hidden, 0)
                none = torch.zeros(0, dtype=torch.float64)
                ref = neural_solve(*p, none, t_final=T_FINAL, method="DP5", rtol=1e-12,
                                   atol=1e-14).detach()
                (y_d, _, info), t_d = _common.best_of(reps, lambda: delyap_step(
                    p, none, t_final=T_FINAL, method="DP5", rtol=1e-6, atol=1e-8))
                err_d = float((y_d - ref).abs().max())
                errs = {}
                for rtol in _common.tolerance_ladder(1e-3, 1e-10):
                    (y_q, _), _ = torchdiffeq_step(p, rtol, adjoint=False)
                    errs[rtol] = float((y_q - ref).abs().max())
                try:
                    rtol_q = _common.pick_tolerance(errs, err_d)
                except RuntimeError:
                    rtol_q = min(errs)
                (_, nfe), t_q = _common.best_of(reps, lambda: torchdiffeq_step(p, rtol_q, False))
                (_, _), t_a = _common.best_of(max(1, reps // 2),
                                              lambda: torchdiffeq_step(p, rtol_q, True))
                row = {"dim": dim, "hidden": hidden, "delyap_s": t_d, "delyap_err": err_d,
                       "delyap_steps": len(info["t"]) - 1, "torchdiffeq_rtol": rtol_q,
                       "torchdiffeq_err": errs[rtol_q], "torchdiffeq_nfe": nfe,
                       "direct_s": t_q, "adjoint_s": t_a, "ratio_direct": t_q / t_d,
                       "ratio_adjoint": t_a / t_d}
                ode_rows.append(row)
                print(f"{dim:4d} {hidden:4d} {1e3 * t_d:10.2f} {err_d:8.1e} {rtol_q:9.1e} "
                      f"{1e3 * t_q:10.2f} {t_q / t_d:6.1f} {1e3 * t_a:11.2f} {t_a / t_d:6.1f}")

    print("\nPeak RSS, 1000-step RK4 training step, dim 8, hidden 32, batch 256 (fresh process)")
    rss = {}
    for tool in ("delyap", "torch") + (("torchdde",) if have_dde else ()):
        rss[tool] = peak_rss(tool, 8, 32, 1000)
        print(f"  {tool:9s} {rss[tool]}")
    _common.write_json(args.json, args, {"dde": rows, "ode": ode_rows, "rss": rss})


if __name__ == "__main__":
    main()
