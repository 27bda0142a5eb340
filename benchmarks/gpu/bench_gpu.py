"""GPU benchmark: builds nothing by itself (the CUDA module comes with `pip install .` when nvcc
is present), checks each kernel against the CPU path, then times it at several sizes.

Prints one table: kernel, size, wall time, throughput (trajectory-steps, configuration-steps or
right-hand-side evaluations per second) and the achieved bandwidth of the history/Gram traffic
against the device-to-device copy ceiling measured in the same run.

Targets (issue 6, H100): a 10^6-trajectory Mackey–Glass ensemble to t = 500 in < 1 s; a
1024-configuration stability map (N = 512, 10^4 steps, 4 exponents) in < 10 s.

Usage:
    python benchmarks/gpu/bench_gpu.py            # all sizes (a few minutes on an H100)
    python benchmarks/gpu/bench_gpu.py --quick    # small sizes only
    DELYAP_CUDA_EMULATION=1 python benchmarks/gpu/bench_gpu.py --smoke
        # tiny sizes on the CPU emulation of the CUDA module: checks that the script and the
        # kernels run and agree with the CPU (its timings say nothing about a GPU)

Exits with status 1 when a check disagrees with the CPU path.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

import delyap as dl
import delyap.sgd as sgd
from delyap.device import cuda_backend

# The shared helpers sit one folder up; loaded by path so that sys.path stays as Python set it
# (benchmarks/gpu first, then the installed packages).
_spec = importlib.util.spec_from_file_location("_common",
                                               Path(__file__).resolve().parents[1] / "_common.py")
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)

MISMATCHES: list[str] = []


def report(what: str, err: float, ok: bool, extra: str = "") -> None:
    print(f"  check {what} = {err:.2e} ({'ok' if ok else 'MISMATCH'}){extra}")
    if not ok:
        MISMATCHES.append(what)


def timed(fn, repeats=2):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def mackey_glass(n: int, t_final: float, check: bool):
    rng = np.random.default_rng(0)
    tau = rng.uniform(5.0, 25.0, size=n)
    sys_ = dl.rhs.mackey_glass(tau=tau)
    te = np.array([0.0, t_final])
    wall, gpu = timed(lambda: dl.solve_dde(sys_, 0.5, (0.0, t_final), te, device="cuda",
                                           throw=False))
    steps = int(np.sum(gpu.stats["accepted"]) + np.sum(gpu.stats["rejected"]))
    if check:  # a random subset against the CPU solver
        pick = rng.choice(n, size=min(n, 256), replace=False)
        cpu = dl.solve_dde(dl.rhs.mackey_glass(tau=tau[pick]), 0.5, (0.0, t_final), te)
        err = np.max(np.abs(cpu.y[:, -1] - gpu.y[pick, -1]))
        # Chaotic members amplify rounding differences; compare where both are periodic.
        ok = err < 1e-2 if t_final > 200 else err < 1e-5
        report(f"MG n={n}: max |x_gpu − x_cpu|(t={t_final:g}) over 256", err, ok)
    # History traffic per step (DP5: 7 stages read 1 anchor interval of 1 + 4 coefficients,
    # binary search ~log2(64) times, one push of t, x, f, 4 coefficients): ≈ 60 doubles.
    bytes_moved = steps * 60 * 8
    return wall, steps, bytes_moved, int(np.sum(gpu.status != 0))


def sgd_map(n_configs: int, steps: int, check: bool):
    rng = np.random.default_rng(1)
    N, D = 512, 4096
    J = rng.standard_normal((N, D)) / np.sqrt(D)
    K = J @ J.T
    spec = sgd.gram_spectrum(K)
    lrs = np.geomspace(0.05, 2.0, 32) * 2 * N / spec.eigenvalues[0]
    bs = np.unique(np.geomspace(1, 128, max(1, n_configs // 32)).astype(int))
    lr_v = np.tile(lrs, len(bs))[:n_configs]
    b_v = np.repeat(bs, len(lrs))[:n_configs]
    wall, res = timed(lambda: sgd.gram_lyapunov(spec, lr_v, b_v, steps=steps, n_exponents=4,
                                                device="cuda"), repeats=1)
    if check:
        sub = slice(0, min(16, n_configs))
        cpu = sgd.gram_lyapunov(spec, lr_v[sub], b_v[sub], steps=steps, n_exponents=4)
        err = np.max(np.abs(cpu.exponents - res.exponents[sub]))
        report("SGD map: max |λ_gpu − λ_cpu| over 16 configurations", err, err < 1e-6)
    cfg_steps = n_configs * steps
    bytes_moved = float(np.sum(b_v) * steps * N * 8)  # K rows streamed per step
    return wall, cfg_steps, bytes_moved, int(np.sum(res.status != 0))


def kuramoto(n: int, t_final: float, check: bool):
    """One large network with its state and history on the GPU (host step control)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(2)
    A = sp.random(n, n, density=20 / n, format="csr", random_state=3)
    A.data[:] = 1.0
    tau = A.copy()
    tau.data = rng.choice([0.5, 1.0, 1.5, 2.0], size=tau.nnz)
    sys_ = dl.rhs.kuramoto(rng.normal(1.0, 0.6, size=n), A, coupling=1.5, tau=tau)
    theta0 = rng.uniform(0, 2 * np.pi, size=n)
    te = np.linspace(0.0, t_final, 11)
    wall, gpu = timed(lambda: dl.solve_dde(sys_, theta0, (0.0, t_final), te, rtol=1e-6,
                                           output="order_parameter", device="cuda"), repeats=1)
    evals = int(np.sum(gpu.stats["rhs_evals"]))
    if check:
        t0 = time.perf_counter()
        cpu = dl.solve_dde(sys_, theta0, (0.0, t_final), te, rtol=1e-6, output="order_parameter")
        cpu_wall = time.perf_counter() - t0
        err = np.max(np.abs(cpu.y[..., 0] - gpu.y[..., 0]))
        report(f"Kuramoto N={n}: max |r_gpu − r_cpu|", err, err < 1e-5,
               f"; CPU {cpu_wall:.2f} s, GPU {wall:.2f} s")
    # Per evaluation, device memory only: the edges (index, weight, class: 13 B) and the
    # (sin, cos) reads of their sources (16 B), the 4 delayed reads (two anchors and 4
    # coefficients each, written once), their (sin, cos), the state and the rate.
    bytes_moved = evals * (A.nnz * 29 + 8 * n * (4 * (6 + 1 + 2) + 2))
    return wall, evals, bytes_moved, int(np.sum(gpu.status != 0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes only")
    size.add_argument("--smoke", action="store_true",
                      help="tiny sizes: a run-through (for the CPU emulation)")
    _common.add_json_option(ap)
    args = ap.parse_args()
    if not dl.has_cuda():
        print("no CUDA build or no GPU: nothing to measure (delyap.has_cuda() is False)")
        return 1
    cuda = cuda_backend()
    props = cuda.device_properties()
    ceiling = cuda.copy_bandwidth(1 << 24 if args.smoke else 1 << 30, 5)
    print(f"device: {props['name']}, {props['sm_count']} SMs, CUDA runtime "
          f"{cuda.runtime_version}; copy ceiling {ceiling / 1e9:.0f} GB/s (read + write)")
    if cuda.emulated:
        print("CPU emulation of the CUDA module (DELYAP_CUDA_EMULATION): the checks count, "
              "the timings do not")
    rows = []
    mg_sizes = ([2_000] if args.smoke else [10_000, 100_000] if args.quick
                else [10_000, 100_000, 1_000_000])
    for n in mg_sizes:
        wall, steps, moved, failed = mackey_glass(n, 500.0, check=(n == mg_sizes[0]))
        rows.append(("MG ensemble to t=500", f"{n:,} traj", wall, steps / wall, moved / wall,
                     failed))
    sgd_sizes = ([(16, 500)] if args.smoke else [(64, 2000)] if args.quick
                 else [(64, 10_000), (256, 10_000), (1024, 10_000)])
    for c, st in sgd_sizes:
        wall, cs, moved, failed = sgd_map(c, st, check=(c == sgd_sizes[0][0]))
        rows.append(("SGD map N=512 k=4", f"{c} cfg × {st}", wall, cs / wall, moved / wall,
                     failed))
    k_sizes = [2_000] if args.smoke else [10_000] if args.quick else [10_000, 100_000]
    for n in k_sizes:
        wall, evals, moved, failed = kuramoto(n, 20.0, check=True)
        rows.append(("Kuramoto (4 delays)", f"N={n:,}, t=20", wall, evals / wall,
                     moved / wall, failed))
    print(f"\n{'kernel':24} {'size':>20} {'wall s':>9} {'steps/s':>10} {'GB/s':>8} "
          f"{'% copy':>7} {'failed':>6}")
    for name, size, wall, rate, bw, failed in rows:
        print(f"{name:24} {size:>20} {wall:9.3f} {rate:10.3g} {bw / 1e9:8.1f} "
              f"{100 * bw / ceiling:6.1f}% {failed:6d}")
    mg_1e6 = [r for r in rows if r[1] == "1,000,000 traj"]
    sgd_1024 = [r for r in rows if r[1].startswith("1024 cfg")]
    if mg_1e6:
        print(f"target MG 1e6 to t=500 < 1 s: {mg_1e6[0][2]:.2f} s -> "
              f"{'yes' if mg_1e6[0][2] < 1 else 'no'}")
    if sgd_1024:
        print(f"target 1024-configuration map < 10 s: {sgd_1024[0][2]:.2f} s -> "
              f"{'yes' if sgd_1024[0][2] < 10 else 'no'}")
    _common.write_json(args.json, args, {
        "device": props.get("name"), "emulated": bool(cuda.emulated),
        "copy_ceiling_bytes_per_s": ceiling,
        "rows": [{"kernel": name, "size": size, "wall_s": wall, "rate_per_s": rate,
                  "bytes_per_s": bw, "fraction_of_copy": bw / ceiling, "failed": failed}
                 for name, size, wall, rate, bw, failed in rows],
        "mismatches": MISMATCHES})
    if MISMATCHES:
        print("MISMATCH against the CPU path: " + "; ".join(MISMATCHES))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
