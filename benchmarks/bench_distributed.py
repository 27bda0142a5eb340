"""The cost of running a sweep on a Dask cluster: a 200-τ Lyapunov sweep of Mackey–Glass
(3 exponents) on a local Dask cluster against the same call without it, and a check that the
two results are bit-identical.

The cluster here is a ``LocalCluster`` of worker processes on this machine, so the ratio
measures delyap's distributed overhead (task shipping, sub-batch rebuilding, result assembly)
rather than any speed-up: both runs use the same cores. Each worker runs its chunks with
``cores / workers`` C++ threads; the local run uses all cores. The cluster's start-up is timed
separately and not counted. The target (issue 16) is an overhead of at most 10 % for a job
of about a minute (the default); ``--quick`` runs a short sweep (overhead dominates there).

    python benchmarks/bench_distributed.py [--quick] [--workers 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from _common import add_json_option, write_json

import delyap as dl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short sweep (a few seconds)")
    ap.add_argument("--n-tau", type=int, default=200, help="delays in the sweep (default 200)")
    ap.add_argument("--t-total", type=float, default=None,
                    help="averaging time per τ (default 30000, --quick 300)")
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    add_json_option(ap)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    t_total = args.t_total or (300.0 if args.quick else 30000.0)
    n_tau = min(args.n_tau, 40) if args.quick else args.n_tau
    system = dl.rhs.mackey_glass(tau=np.linspace(5, 30, n_tau))
    kw = dict(t_transient=500.0)

    cores = os.cpu_count() or 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        t0 = time.perf_counter()
        local = dl.lyapunov_spectrum(system, 0.5, 3, t_total, progress=False, **kw)
        t_local = time.perf_counter() - t0

        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
        client.run(lambda: __import__("delyap"))  # workers import delyap before the timing
        t_start = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            remote = dl.lyapunov_spectrum(system, 0.5, 3, t_total, client=client,
                                          progress=False, **kw)
            t_remote = time.perf_counter() - t0
        finally:
            client.close()
            cluster.close()
    same = bool(np.array_equal(local.exponents, remote.exponents)
                and np.array_equal(local.stderr, remote.stderr))
    overhead = t_remote / t_local - 1.0
    chunks = remote.info["distributed"]["chunks"]
    print(f"Mackey–Glass Lyapunov sweep: {n_tau} τ in [5, 30], 3 exponents, t_total = "
          f"{t_total:g}, {cores} cores")
    print(f"{'local (threads = all cores)':<44} {t_local:9.2f} s")
    print(f"{f'LocalCluster, {args.workers} workers, {chunks} chunks':<44} {t_remote:9.2f} s"
          f"   overhead {100 * overhead:+.1f} %   (cluster start-up {t_start:.1f} s, not counted)")
    print(f"bit-identical results: {same}")
    write_json(args.json, args, {"n_tau": n_tau, "t_total": t_total, "cores": cores,
                                 "workers": args.workers, "chunks": chunks,
                                 "local_seconds": t_local, "cluster_seconds": t_remote,
                                 "cluster_startup_seconds": t_start, "overhead": overhead,
                                 "bit_identical": same})
    if not same:
        raise SystemExit("the distributed result differs from the local one")


if __name__ == "__main__":
    main()
