"""Lyapunov spectra of Kuramoto networks at scale, and against jitcode's jitcode_lyap.

Kuramoto θ_i' = ω_i + (K/d_i) Σ_j A_ij sin(θ_j − θ_i), K = 1.5, ω the Gaussian quantiles
(σ = 1, K_c ≈ 1.6: partially synchronised, chaotic), random digraphs from
``delyap.networks.sample_graph`` (W ≡ p, seed 1) or the complete graph, no delay, DP5 rtol 1e-6
atol 1e-9, renormalisation every time unit, transient 10 % of t.

Scale cases (each in a fresh process, so the peak RSS is its own):
  N = 500, 50 in-edges and complete, 50 exponents, t = 1000 (targets: < 1 min, < 1 GB);
  N = 10⁴, 20 in-edges, 20 exponents, t = 1000 (target: < 10 min).

Peer (``--peers``): jitcode_lyap (symbolic tangent equations compiled to C, scipy's dopri5 at the
same tolerances), N = 50, 100, 200, 20 in-edges, 10 exponents, t = 200: compile time apart,
integration time, and the exponents of both (compared within their batch-means errors).

Usage (after ``pip install .[bench]`` and ``pip install jitcode`` for the peers):
    python benchmarks/bench_network_lyapunov.py                 # the scale cases
    python benchmarks/bench_network_lyapunov.py --quick         # t = 100 (a ~minute)
    python benchmarks/bench_network_lyapunov.py --peers --no-scale --json out.json
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from _common import add_json_option, write_json

K = 1.5


def network(n: int, in_edges: int):
    import delyap as dl
    from delyap.networks import frequencies, sample_graph

    p = min(1.0, in_edges / (n - 1))
    A, _ = sample_graph(p, n, seed=1)
    omega = frequencies(n, "gaussian", width=1.0)
    return dl.rhs.kuramoto(omega, A, K, tau=0.0), A, omega


def run_case(n: int, in_edges: int, k: int, t: float) -> dict:
    """One delyap run in this process: wall and CPU time, peak RSS."""
    import delyap as dl

    system, A, _ = network(n, in_edges)
    theta0 = np.random.default_rng(0).uniform(0, 2 * np.pi, n)
    t0, c0 = time.perf_counter(), time.process_time()
    res = dl.lyapunov_spectrum(system, theta0, k, t, t_transient=0.1 * t, rtol=1e-6, atol=1e-9,
                               renorm_interval=1.0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # MiB
    stats = np.asarray(res.info["stats"]).reshape(-1)
    return {"n": n, "edges": int(A.nnz), "k": k, "t": t, "wall_s": wall, "cpu_s": cpu,
            "peak_rss_mib": rss, "steps": int(stats[0]), "rhs_evals": int(stats[2]),
            "exponents": res.exponents.tolist(), "stderr": res.stderr.tolist()}


def jitcode_case(n: int, in_edges: int, k: int, t: float) -> dict:
    """jitcode_lyap on the same network: compile (apart), then integrate with dopri5."""
    import symengine
    from jitcode import jitcode_lyap, y

    _, A, omega = network(n, in_edges)
    deg = np.diff(A.indptr)

    def f():
        for i in range(n):
            cols = A.indices[A.indptr[i]:A.indptr[i + 1]]
            yield omega[i] + K / max(deg[i], 1) * sum(symengine.sin(y(int(j)) - y(i))
                                                      for j in cols)

    t0 = time.perf_counter()
    ode = jitcode_lyap(f, n=n, n_lyap=k, simplify=False, verbose=False)
    ode.compile_C(verbose=False)
    ode.set_integrator("dopri5", rtol=1e-6, atol=1e-9)
    compile_s = time.perf_counter() - t0
    ode.set_initial_value(np.random.default_rng(0).uniform(0, 2 * np.pi, n), 0.0)
    t_tr = 0.1 * t
    lyaps = []
    t1 = time.perf_counter()
    for time_ in np.arange(1.0, t_tr + t + 0.5, 1.0):
        local = ode.integrate(time_)[1]
        if time_ > t_tr:
            lyaps.append(local)
    integrate_s = time.perf_counter() - t1
    L = np.array(lyaps)
    blocks = np.array_split(L, 32)
    means = np.array([b.mean(axis=0) for b in blocks])
    return {"n": n, "edges": int(A.nnz), "k": k, "t": t, "compile_s": compile_s,
            "integrate_s": integrate_s, "exponents": L.mean(axis=0).tolist(),
            "stderr": (means.std(axis=0, ddof=1) / np.sqrt(len(blocks))).tolist()}


def in_subprocess(kind: str, *args) -> dict:
    cmd = [sys.executable, __file__, "--case", kind, *map(str, args)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="t = 100 for the scale cases")
    ap.add_argument("--peers", action="store_true", help="also run jitcode_lyap (N = 50–200)")
    ap.add_argument("--no-scale", action="store_true", help="skip the scale cases")
    ap.add_argument("--peer-sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--case", nargs=5, default=None, help=argparse.SUPPRESS)  # internal
    add_json_option(ap)
    args = ap.parse_args()
    if args.case:
        kind, n, e, k, t = args.case
        fn = run_case if kind == "delyap" else jitcode_case
        print(json.dumps(fn(int(n), int(e), int(k), float(t))))
        return 0

    results: dict = {"scale": [], "peers": []}
    t = 100.0 if args.quick else 1000.0
    if not args.no_scale:
        print(f"{'N':>6} {'edges':>8} {'k':>4} {'t':>6} {'wall s':>8} {'CPU s':>8} "
              f"{'peak MiB':>9} {'steps':>6}  λ1, λ2")
        for n, e, k in [(500, 50, 50), (500, 499, 50), (10_000, 20, 20)]:
            r = in_subprocess("delyap", n, e, k, t)
            results["scale"].append(r)
            print(f"{n:6d} {r['edges']:8d} {k:4d} {t:6.0f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
                  f"{r['peak_rss_mib']:9.0f} {r['steps']:6d}  "
                  f"{r['exponents'][0]:.4f} ± {r['stderr'][0]:.4f}, "
                  f"{r['exponents'][1]:.4f} ± {r['stderr'][1]:.4f}")
    if args.peers:
        tp, kp = (50.0 if args.quick else 200.0), 10
        print(f"\npeers: k = {kp}, t = {tp:g}, 20 in-edges")
        print(f"{'N':>5} {'delyap s':>9} {'jitcode compile s':>18} {'jitcode integrate s':>20} "
              f"{'ratio':>6} {'max |Δλ|/err':>13}")
        for n in args.peer_sizes:
            d = in_subprocess("delyap", n, 20, kp, tp)
            j = in_subprocess("jitcode", n, 20, kp, tp)
            diff = np.abs(np.subtract(d["exponents"], j["exponents"]))
            z = float(np.max(diff / np.hypot(d["stderr"], j["stderr"])))
            row = {"n": n, "delyap": d, "jitcode": j, "ratio": d["wall_s"] / j["integrate_s"],
                   "max_z": z}
            results["peers"].append(row)
            print(f"{n:5d} {d['wall_s']:9.2f} {j['compile_s']:18.1f} {j['integrate_s']:20.2f} "
                  f"{row['ratio']:6.3f} {z:13.2f}")
    write_json(args.json, args, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
