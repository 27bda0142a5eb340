"""One large Kuramoto network, right-hand side on 1 vs 2 threads (the worker pool).

Random digraph with ≈20 in-edges per node, per-edge delays from {0.5, 1, 1.5, 2}, K = 1.5,
t ≤ 20, rtol 1e-6; best of 2 runs. Checks that the thread count does not change a bit.

Usage (after ``pip install .[bench]``):
    python benchmarks/bench_network_threads.py             # N = 2000, 1e4, 5e4
    python benchmarks/bench_network_threads.py --quick     # N = 2000, t ≤ 2 (a few seconds)
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp
from _common import add_json_option, best_of, timed, write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 2000 only, t ≤ 2, one run each")
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="network sizes (default 2000 10000 50000)")
    ap.add_argument("--repeats", type=int, default=2, help="best-of-N (default 2)")
    add_json_option(ap)
    args = ap.parse_args()

    import delyap as dl

    sizes = args.sizes or ([2000] if args.quick else [2000, 10_000, 50_000])
    t_end = 2.0 if args.quick else 20.0
    repeats = 1 if args.quick else args.repeats
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'N':>7} {'edges':>9} {'1 thread':>10} {'2 threads':>10} {'speedup':>8} identical")
    for n in sizes:
        A = sp.random(n, n, density=20 / n, format="csr", random_state=1)
        A.data[:] = 1.0
        tau = A.copy()
        tau.data = rng.choice([0.5, 1.0, 1.5, 2.0], size=tau.nnz)
        system = dl.rhs.kuramoto(rng.normal(1.0, 0.6, n), A, 1.5, tau)
        theta0 = rng.uniform(0, 2 * np.pi, n)
        t_eval = np.linspace(0.0, t_end, 5)
        wall, y = {}, {}
        for threads in (1, 2):
            sol, wall[threads] = best_of(repeats, lambda: timed(
                dl.solve_dde, system, theta0, (0.0, t_end), t_eval, threads=threads))
            if not sol.success:
                raise RuntimeError(f"N={n}, threads={threads}: {sol.message}")
            y[threads] = sol.y
        identical = bool(np.array_equal(y[1], y[2]))
        rows.append({"n": n, "edges": A.nnz, "t_end": t_end, "seconds_1_thread": wall[1],
                     "seconds_2_threads": wall[2], "speedup": wall[1] / wall[2],
                     "identical": identical})
        print(f"{n:7d} {A.nnz:9d} {wall[1]:9.3f}s {wall[2]:9.3f}s {wall[1] / wall[2]:8.2f} "
              f"{identical}")
    write_json(args.json, args, {"rows": rows})
    return 0 if all(r["identical"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
