"""One large Kuramoto network, right-hand side on 1 vs 2 threads (the worker pool).

Random digraph with ≈20 in-edges per node, per-edge delays from {0.5, 1, 1.5, 2}, K = 1.5,
t ≤ 20, rtol 1e-6; best of 2 runs. Checks that the thread count does not change a bit.

Usage:
    PYTHONPATH=python python benchmarks/bench_network_threads.py
"""
import time

import numpy as np
import scipy.sparse as sp

import delyap as dl


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'N':>7} {'edges':>9} {'1 thread':>10} {'2 threads':>10} {'speedup':>8} identical")
    for n in (2000, 10_000, 50_000):
        A = sp.random(n, n, density=20 / n, format="csr", random_state=1)
        A.data[:] = 1.0
        tau = A.copy()
        tau.data = rng.choice([0.5, 1.0, 1.5, 2.0], size=tau.nnz)
        system = dl.rhs.kuramoto(rng.normal(1.0, 0.6, n), A, 1.5, tau)
        theta0 = rng.uniform(0, 2 * np.pi, n)
        t_eval = np.linspace(0.0, 20.0, 5)
        wall, y = {}, {}
        for threads in (1, 2):
            best = np.inf
            for _ in range(2):
                start = time.perf_counter()
                sol = dl.solve_dde(system, theta0, (0.0, 20.0), t_eval, threads=threads)
                best = min(best, time.perf_counter() - start)
            wall[threads], y[threads] = best, sol.y
        print(f"{n:7d} {A.nnz:9d} {wall[1]:9.3f}s {wall[2]:9.3f}s {wall[1] / wall[2]:8.2f} "
              f"{np.array_equal(y[1], y[2])}")


if __name__ == "__main__":
    main()
