"""Compute-bound DDE timings, and an A/B of two delyap builds on them.

    x'(t) = 0.2 x(t-tau) / (1 + x(t-tau)^10) - 0.1 x(t),   x(t) = 0.5 for t <= 0

Workloads (delyap DP5, rtol 1e-6, atol 1e-9: the matched-accuracy setting of
bench_mackey_glass.py; jitcdde needs rtol 1e-7 for the same error at t = 100):

  mg_sweep_sparse   1000 tau in [5, 30], t <= 500, output only at t = 100 and 500 (the
                    compute-bound headline), threads = 1 and threads = os.cpu_count();
  mg_sweep_dense    the same with output every 1.0, threads = 1;
  mg_single         tau = 17, t <= 1e4, output every 1.0;
  kuramoto_*        a delay-coupled Kuramoto network (Erdős–Rényi digraph, 20 in-edges per
                    node, seeded), one delay tau = 1 or per-edge delays from {0.5, 1, 1.5, 2},
                    order parameter on 21 times to t = 20, threads = 1.

Times are best-of-N wall seconds and, for one-thread workloads, process CPU seconds (the
fairer number on a shared, busy machine). With --a/--b each build runs in its own
interpreter (PYTHONPATH set to that folder), alternately, round by round, so both see the
same machine load; the table gives B/A and how far the sweep's x(100) moved (the chaotic
members amplify a rounding-level change up to the tolerance level).

Usage:
    python benchmarks/bench_mg_sweep_ab.py                      # the installed delyap
    python benchmarks/bench_mg_sweep_ab.py --jitcdde            # ... and jitcdde's sparse sweep
    python benchmarks/bench_mg_sweep_ab.py --a OLD_STAGE --b NEW_STAGE --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from _common import add_json_option, single_blas_thread, write_json

BETA, GAMMA, EXPONENT, HISTORY = 0.2, 0.1, 10.0, 0.5
RTOL, ATOL = 1e-6, 1e-9  # delyap's matched tolerance (bench_mackey_glass.py)
JIT_RTOL = 1e-7           # jitcdde's matched tolerance there
N_TAUS, T_SWEEP = 1000, 500.0
TAUS = np.linspace(5.0, 30.0, N_TAUS)
SPARSE = np.array([100.0, T_SWEEP])


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def kuramoto_problem(n: int, per_edge: bool, seed: int = 1):
    """Erdős–Rényi digraph, mean in-degree 20, omega ~ N(1, 0.6), theta0 ~ U[0, 2 pi)."""
    import scipy.sparse as sp

    rng = np.random.default_rng([seed, n])
    deg = rng.binomial(n - 1, 20 / (n - 1), size=n)
    rows = np.repeat(np.arange(n), deg)
    cols = rng.integers(0, n - 1, size=rows.size)
    cols += cols >= rows  # no self-loops
    A = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    A.data[:] = 1.0
    A.sort_indices()
    omega = rng.normal(1.0, 0.6, n)
    theta0 = rng.uniform(0.0, 2 * np.pi, n)
    tau = rng.choice(np.array([0.5, 1.0, 1.5, 2.0]), size=A.nnz) if per_edge else 1.0
    return A, omega, theta0, tau


def workloads(n_kuramoto: int):
    """name -> (threads label, run() -> (result array, wall s, cpu s))."""
    import delyap as dl

    mg = dl.rhs.mackey_glass(beta=BETA, gamma=GAMMA, n=EXPONENT, tau=TAUS)
    mg17 = dl.rhs.mackey_glass(beta=BETA, gamma=GAMMA, n=EXPONENT, tau=17.0)

    def sweep(t_eval, threads):
        i100 = int(np.searchsorted(t_eval, 100.0))

        def run():
            sol = dl.solve_dde(mg, HISTORY, (0.0, T_SWEEP), t_eval=t_eval, method="DP5",
                               rtol=RTOL, atol=ATOL, threads=threads)
            return np.asarray(sol.y)[:, i100, 0]  # x(100) of every tau
        return run

    def single():
        sol = dl.solve_dde(mg17, HISTORY, (0.0, 1e4), t_eval=np.arange(0.0, 1e4 + 0.5, 1.0),
                           method="DP5", rtol=RTOL, atol=ATOL, threads=1)
        return np.asarray(sol.y)[:101, 0]

    def kuramoto(per_edge):
        A, omega, theta0, tau = kuramoto_problem(n_kuramoto, per_edge)
        kur = dl.rhs.kuramoto(omega, A, coupling=1.5, tau=tau)

        def history(t):
            t = np.asarray(t, dtype=float)
            return theta0[None, :] + t[:, None] * omega[None, :]

        def run():
            sol = dl.solve_dde(kur, history, (0.0, 20.0), t_eval=np.linspace(0.0, 20.0, 21),
                               method="DP5", rtol=1e-6, atol=1e-9, threads=1,
                               output="order_parameter")
            return np.asarray(sol.y)[:, 0]
        return run

    return {
        "mg_sweep_sparse t=1": sweep(SPARSE, 1),
        "mg_sweep_sparse t=all": sweep(SPARSE, os.cpu_count()),
        "mg_sweep_dense t=1": sweep(np.arange(0.0, T_SWEEP + 0.5, 1.0), 1),
        "mg_single t=1": single,
        f"kuramoto N={n_kuramoto} one delay t=1": kuramoto(False),
        f"kuramoto N={n_kuramoto} per-edge t=1": kuramoto(True),
    }


def run_worker(repeats: int, n_kuramoto: int) -> dict:
    """Each workload best-of-`repeats` (after one warm-up): {name: [wall, cpu, result list]}."""
    out = {}
    with single_blas_thread():
        for name, fn in workloads(n_kuramoto).items():
            fn()  # warm-up: first-call costs (imports, page faults) are not the workload's
            runs = [_timed(fn) for _ in range(repeats)]
            out[name] = [min(r[1] for r in runs), min(r[2] for r in runs), runs[0][0].tolist()]
    return out


def jitcdde_sparse(repeats: int, cache_dir: str | None) -> dict:
    import peers_jitcdde as pj

    with single_blas_thread():
        model = pj.build_mackey_glass(cache_dir)
        runs = [_timed(lambda: pj.integrate_sweep(model, TAUS, SPARSE, JIT_RTOL,
                                                  JIT_RTOL * 1e-3)[0])
                for _ in range(repeats)]
    return {"compile_s": model.compile_seconds, "from_cache": model.from_cache,
            "wall": min(r[1] for r in runs), "cpu": min(r[2] for r in runs),
            "x100": runs[0][0][:, 0].tolist()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", metavar="DIR",
                    help="folder holding build A's delyap package (PYTHONPATH)")
    ap.add_argument("--b", metavar="DIR", help="folder holding build B's delyap package")
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds (each side once per round)")
    ap.add_argument("--repeats", type=int, default=3, help="best-of-N inside each run")
    ap.add_argument("--kuramoto-n", type=int, default=2000,
                    help="network size of the kuramoto rows")
    ap.add_argument("--jitcdde", action="store_true", help="also time jitcdde's sparse sweep")
    ap.add_argument("--cache-dir",
                    default=os.path.join(os.path.dirname(__file__), ".jitcdde_cache"),
                    help="where jitcdde's compiled module is cached ('' disables)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    add_json_option(ap)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(run_worker(args.repeats, args.kuramoto_n)))
        return

    sides = {"A": args.a, "B": args.b} if args.a and args.b else {"": None}
    best: dict[str, dict] = {s: {} for s in sides}
    for _ in range(args.rounds if args.a else 1):
        for side, path in sides.items():
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = os.path.abspath(path)
            cmd = [sys.executable, __file__, "--worker", "--repeats", str(args.repeats),
                   "--kuramoto-n", str(args.kuramoto_n)]
            res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                            text=True).stdout.splitlines()[-1])
            for name, (wall, cpu, vals) in res.items():
                old = best[side].get(name)
                best[side][name] = [min(wall, old[0]) if old else wall,
                                    min(cpu, old[1]) if old else cpu, vals]

    results = {"delyap": best}
    names = list(next(iter(best.values())))
    if len(sides) == 2:
        print(f"{'workload':<34} {'A wall s':>9} {'B wall s':>9} {'B/A':>6} "
              f"{'A cpu s':>8} {'B cpu s':>8} {'B/A':>6}  max |B - A| of results")
        for n in names:
            (wa, ca, ra), (wb, cb, rb) = best["A"][n], best["B"][n]
            d = np.abs(np.asarray(rb) - np.asarray(ra))
            print(f"{n:<34} {wa:>9.4f} {wb:>9.4f} {wb / wa:>6.2f} {ca:>8.4f} {cb:>8.4f} "
                  f"{cb / ca:>6.2f}  {d.max():.1e} (median {np.median(d):.1e})")
    else:
        print(f"{'workload':<34} {'wall s':>9} {'cpu s':>8}")
        for n in names:
            wall, cpu, _ = best[""][n]
            print(f"{n:<34} {wall:>9.4f} {cpu:>8.4f}")

    if args.jitcdde:
        jit = jitcdde_sparse(max(1, args.repeats - 1), args.cache_dir or None)
        results["jitcdde"] = jit
        print(f"\njitcdde {'module load' if jit['from_cache'] else 'compile'}: "
              f"{jit['compile_s']:.2f} s (not timed); sparse sweep rtol {JIT_RTOL:g}: "
              f"wall {jit['wall']:.3f} s, cpu {jit['cpu']:.3f} s")
        x_j = np.asarray(jit["x100"])
        for side in best:
            wall, cpu, x_d = best[side]["mg_sweep_sparse t=1"]
            wall_all = best[side]["mg_sweep_sparse t=all"][0]
            d = np.abs(np.asarray(x_d) - x_j)
            print(f"delyap{(' ' + side) if side else ''} / jitcdde, sparse sweep: threads=1 "
                  f"{wall / jit['wall']:.3f} (wall), {cpu / jit['cpu']:.3f} (cpu); threads=all "
                  f"{wall_all / jit['wall']:.3f} (wall); |x(100) delyap - jitcdde| median "
                  f"{np.median(d):.1e}, 90% {np.quantile(d, 0.9):.1e}")
    for side in best:  # the result vectors are for the comparisons above, not for the record
        for n in best[side]:
            best[side][n] = best[side][n][:2]
    if "jitcdde" in results:
        results["jitcdde"] = {k: v for k, v in results["jitcdde"].items() if k != "x100"}
    write_json(args.json, args, results)


if __name__ == "__main__":
    main()
