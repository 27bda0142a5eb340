"""A coupling sweep on one sampled graph: 64 values of K on N = 10⁴ oscillators, to t = 200.

Kuramoto θ_i' = ω_i + (K/d_i) Σ_j A_ij sin(θ_j − θ_i), no delay, the graph sampled from the
graphon W ≡ 20/N (``delyap.networks.sample_graph``, ≈ 20 in-edges per node, seed 0), ω the
Gaussian quantiles (σ = 1: K_c ≈ 1.6), K = 0 … 4, DP5 rtol 1e-6, output r(t) only
(``output="order_parameter"``) at 201 times. The batch shares the graph and runs one trajectory
per core; the single-network path runs one K with its right-hand side split over the cores.
Reported: wall time, r(t = 200) against K, and the cost per oscillator-step (process CPU
seconds of all threads / (N × steps), which a busy shared machine does not inflate as it does
the wall time) of both paths. With a GPU (``delyap.has_cuda()``) the sweep runs on
``device="cuda"`` too.

Usage (after ``pip install .[bench]``):
    python benchmarks/bench_network_sweep.py            # N = 10⁴, 64 couplings, t = 200
    python benchmarks/bench_network_sweep.py --quick    # N = 2000, 16 couplings, t = 50
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import add_json_option, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 2000, 16 couplings, t = 50")
    ap.add_argument("--threads", type=int, default=None, help="worker threads (default: all)")
    add_json_option(ap)
    args = ap.parse_args()

    import delyap as dl
    from delyap.networks import frequencies, sample_graph

    n, m, t_end = (2000, 16, 50.0) if args.quick else (10_000, 64, 200.0)
    cores = args.threads or os.cpu_count() or 1
    A, _ = sample_graph(20.0 / n, n, seed=0)
    omega = frequencies(n, "gaussian", width=1.0)
    Ks = np.linspace(0.0, 4.0, m)
    theta0 = np.random.default_rng(0).uniform(0, 2 * np.pi, n)
    t_eval = np.linspace(0.0, t_end, 201)
    kw = dict(rtol=1e-6, atol=1e-9, output="order_parameter", threads=args.threads)

    def run(system, **extra):
        t0, c0 = time.perf_counter(), time.process_time()
        sol = dl.solve_dde(system, theta0, (0.0, t_end), t_eval, **kw, **extra)
        return sol, time.perf_counter() - t0, time.process_time() - c0

    sweep, wall, cpu = run(dl.rhs.kuramoto(omega, A, Ks, tau=0.0))
    steps = np.asarray(sweep.stats["accepted"]) + np.asarray(sweep.stats["rejected"])
    per_step = cpu / (n * steps.sum())
    r_end = np.asarray(sweep.y)[:, -1, 0]
    single, wall1, cpu1 = run(dl.rhs.kuramoto(omega, A, float(Ks[m // 2]), tau=0.0))
    steps1 = int(single.stats["accepted"]) + int(single.stats["rejected"])
    per_step1 = cpu1 / (n * steps1)
    print(f"N = {n}, edges = {A.nnz}, {m} couplings, t = {t_end:g}, {cores} cores")
    print(f"sweep: {wall:.1f} s wall, {cpu:.1f} s CPU, {int(steps.sum())} steps in all, "
          f"{per_step * 1e9:.1f} ns CPU per oscillator-step")
    print(f"single network (K = {Ks[m // 2]:.2f}, rhs split over the cores): {wall1:.2f} s wall, "
          f"{cpu1:.2f} s CPU, {steps1} steps, {per_step1 * 1e9:.1f} ns CPU per oscillator-step")
    print("r(t_end) against K: " + ", ".join(f"{K:.2f}: {r:.3f}" for K, r in
                                               zip(Ks[::max(1, m // 8)], r_end[::max(1, m // 8)])))
    result = {"n": n, "edges": int(A.nnz), "couplings": Ks, "t_end": t_end, "cores": cores,
              "sweep_wall_s": wall, "sweep_cpu_s": cpu, "sweep_steps": steps,
              "ns_per_oscillator_step": per_step * 1e9,
              "single_wall_s": wall1, "single_cpu_s": cpu1, "single_steps": steps1,
              "single_ns_per_oscillator_step": per_step1 * 1e9, "r_end": r_end,
              "load_average": list(os.getloadavg())}
    if dl.has_cuda():
        gpu, wall_g, _ = run(dl.rhs.kuramoto(omega, A, Ks, tau=0.0), device="cuda")
        err = float(np.max(np.abs(np.asarray(gpu.y)[:, -1, 0] - r_end)))
        print(f"GPU sweep: {wall_g:.1f} s wall, max |Δr(t_end)| vs CPU {err:.2e}")
        result.update(gpu_wall_s=wall_g, gpu_max_dr=err)
    write_json(args.json, args, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
