"""Neural DDE training steps on a GPU: delyap.nn's torch backend (what a module moved to CUDA
runs) against a plain torch RK4 loop and torchdde on the same device, checked against the
C++ core on the CPU.

One training step = forward + backward of h(T) for h' = W_out tanh(W h + W_1 h(t − τ) + b),
RK4 with dt = 0.02 (50 steps), τ = 0.5, T = 1, loss Σ h(T)²; the same weights for every tool.
Wall time per step with the device synchronised before and after (best of the repeats, the
tools interleaved). Needs no CUDA build of delyap (the torch backend runs on torch's CUDA
operations), only torch with a GPU; torchdde is timed when installed.

Usage:
    python benchmarks/gpu/bench_neural_gpu.py              # batch 256 and 4096, three widths
    python benchmarks/gpu/bench_neural_gpu.py --quick
    python benchmarks/gpu/bench_neural_gpu.py --device cpu --quick
        # the same script on the CPU (the torch backend against the core there)
    python benchmarks/gpu/bench_neural_gpu.py --device cpu --smoke   # a run-through

Exits with status 1 when a tool's h(T) disagrees with the core's (float64: 1e-10; torchdde,
float32: 1e-4) or delyap fails; a peer that fails on the device is named and left out.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

from delyap.nn import neural_solve


def _load(name: str):
    # The torch peers and _common sit one folder up; loaded by path so that sys.path stays as
    # Python set it (benchmarks/gpu first, then the installed packages).
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


peers = _load("peers_torch_neural")
_common = _load("_common")
DT, M = 0.02, 25  # τ = M·dt


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def delyap_step(p, tau, backend: str):
    h0, W, Wd, b, Wout = p
    for t in p:
        t.grad = None
    y = neural_solve(h0, W, Wd, b, Wout, tau, method="RK4", dt=DT, backend=backend)
    y.pow(2).sum().backward()
    return y.detach()


def timed(device, fn, repeats: int) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def on(device, p, dtype=torch.float64):
    return [t.detach().to(device, dtype).requires_grad_(True) for t in p]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="torch device of the timed tools")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="batch 256, two widths, 3 repeats")
    size.add_argument("--smoke", action="store_true",
                      help="batch 16, one small width, one repeat: a run-through")
    _common.add_json_option(ap)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible to torch: nothing to measure (try --device cpu)")
        return 1
    try:
        import torchdde  # noqa: F401
        have_dde = True
    except ImportError:
        have_dde = False
    torch.set_num_threads(1)
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    sizes = [(16, 2, 8)] if args.smoke else [(256, 2, 32), (256, 32, 128)] if args.quick else [
        (b, d, h) for b in (256, 4096) for d, h in ((2, 32), (8, 64), (32, 128))]
    repeats = 1 if args.smoke else 3 if args.quick else 10
    rows, bad, failed = [], [], []
    for batch, dim, hidden in sizes:
        p_cpu = peers.params(dim, hidden, 1, batch=batch)
        tau_cpu = torch.tensor([M * DT], dtype=torch.float64)
        # the reference: the C++ core on the CPU, float64
        ref = delyap_step(p_cpu, tau_cpu, "core")
        p64, p32 = on(device, p_cpu), on(device, p_cpu, torch.float32)
        tau64 = tau_cpu.to(device)
        tools = {
            "delyap f64": lambda: delyap_step(p64, tau64, "torch"),
            "delyap f32": lambda: delyap_step(p32, tau64.float(), "torch"),
            "torch RK4 f64": lambda: peers.torch_rk4_step(p64, DT, M)[0][0],
        }
        if have_dde:
            tools["torchdde f32"] = lambda: peers.torchdde_step(p32, DT, M * DT)[0][0]
        best = {k: float("inf") for k in tools}
        outs = {}
        for _ in range(repeats):  # interleaved: each tool sees the same device state
            for name, fn in list(tools.items()):
                try:
                    sec, outs[name] = timed(device, fn, 1)
                except Exception as err:  # a peer failing on this device: named, not fatal
                    print(f"  {name} at {batch}x{dim}x{hidden} failed: "
                          f"{type(err).__name__}: {err}")
                    failed.append(f"{name} at {batch}x{dim}x{hidden}")
                    del tools[name]
                    outs.pop(name, None)
                    continue
                best[name] = min(best[name], sec)
        if "delyap f64" not in outs:
            continue
        for name, y in outs.items():
            err = float((y.double().cpu() - ref).abs().max())
            tol = 1e-10 if "f64" in name else 1e-4
            if not err <= tol:
                bad.append(f"{name} at {batch}x{dim}x{hidden}: {err:.1e}")
            rows.append((batch, dim, hidden, name, best[name], err))
    print(f"\n{'batch':>6} {'dim':>4} {'hidden':>6} {'tool':>14} {'ms/step':>9} "
          f"{'vs delyap f64':>13} {'max |Δy| vs core':>17}")
    for batch, dim, hidden, name, sec, err in rows:
        base = next(r[4] for r in rows if r[:3] == (batch, dim, hidden) and r[3] == "delyap f64")
        print(f"{batch:6d} {dim:4d} {hidden:6d} {name:>14} {1e3 * sec:9.2f} "
              f"{sec / base:13.2f} {err:17.1e}")
    _common.write_json(args.json, args, {
        "device": str(device), "rows": [
            {"batch": b, "dim": d, "hidden": h, "tool": n, "seconds": s, "max_abs_dy": e}
            for b, d, h, n, s, e in rows], "mismatches": bad, "failed": failed})
    if any(f.startswith("delyap") for f in failed):
        print("delyap failed: " + "; ".join(failed))
        return 1
    if bad:
        print("MISMATCH against the core: " + "; ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
