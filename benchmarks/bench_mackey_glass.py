"""Mackey–Glass benchmark: delyap vs jitcdde at matched accuracy.

    x'(t) = 0.2 x(t-tau) / (1 + x(t-tau)^10) - 0.1 x(t),   x(t) = 0.5 for t <= 0

Two workloads:
  (a) one trajectory, tau = 17, t in [0, 1e4], output every 1.0;
  (b) a sweep of 1000 tau values evenly spaced in [5, 30], t in [0, 500].

Tolerances are not comparable across tools (jitcdde is a 3rd-order
Bogacki–Shampine scheme, delyap's DP5 is 5th order), so each tool gets the
loosest tolerance on a ladder whose error at t = 100 (tau = 17) meets the
requested accuracy; times are then compared at those tolerances.

Usage:
    python benchmarks/bench_mackey_glass.py            # full run
    python benchmarks/bench_mackey_glass.py --quick    # smaller sweep / horizon
    python benchmarks/bench_mackey_glass.py --jitcdde-only   # peer side only
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import peers_jitcdde as pj
from _common import (
    add_json_option,
    best_of,
    pick_tolerance,
    single_blas_thread,
    stats_str,
    tolerance_ladder,
    write_json,
)

TARGET_RATIO = {"a": 0.5, "b": 0.1}  # delyap time / jitcdde time must not exceed these
TAU_SINGLE = 17.0
T_CHECK = 100.0  # accuracy is judged here: late enough that error growth shows


# --------------------------------------------------------------------------- delyap side

class Delyap:
    def __init__(self, threads):
        import delyap as dl

        self.dl = dl
        self.threads = threads

    def _solve(self, tau, t_end, t_eval, rtol, atol, threads):
        mg = self.dl.rhs.mackey_glass(beta=pj.BETA, gamma=pj.GAMMA, n=pj.EXPONENT, tau=tau)
        t0 = time.perf_counter()
        sol = self.dl.solve_dde(mg, pj.HISTORY, (0.0, t_end), t_eval=t_eval, method="DP5",
                                rtol=rtol, atol=atol, threads=threads)
        sec = time.perf_counter() - t0
        if not np.all(np.asarray(sol.status) == 0):
            raise RuntimeError(f"delyap failed: status={sol.status}")
        return sol, sec

    def values_at(self, tau, t_eval, rtol, atol, threads=None):
        """Returns ((x at t_eval, sol), seconds); x drops the length-1 state axis."""
        t_eval = np.asarray(t_eval, dtype=float)
        sol, sec = self._solve(tau, t_eval[-1], t_eval, rtol, atol, threads)
        return (np.asarray(sol.y)[..., 0], sol), sec

    def single(self, t_eval, rtol, atol):
        return self.values_at(TAU_SINGLE, t_eval, rtol, atol, self.threads)

    def sweep(self, taus, t_eval, rtol, atol, threads):
        return self.values_at(np.asarray(taus), t_eval, rtol, atol, threads)


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="t_end 1e3 for (a), 100 taus for (b), one repeat")
    ap.add_argument("--accuracy", type=float, default=1e-6,
                    help="required |x(100) - x_ref(100)| at tau=17 (default 1e-6)")
    ap.add_argument("--atol-ratio", type=float, default=1e-3,
                    help="atol = rtol * ratio for both tools (|x| ~ 0.3..1.4, so rtol dominates)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="best-of-N for (a) and delyap (b); this 2-core box is noisy")
    ap.add_argument("--sweep-repeats", type=int, default=2, help="best-of-N for jitcdde (b)")
    ap.add_argument("--sweep-output", choices=("dense", "sparse"), default="dense",
                    help="dense: output every 1.0 as in (a); sparse: only t=100 and t=500")
    ap.add_argument("--threads", type=int, default=None,
                    help="delyap threads for (b) (default: delyap's choice); "
                         "(b) is also run with 1")
    ap.add_argument("--cache-dir",
                    default=os.path.join(os.path.dirname(__file__), ".jitcdde_cache"),
                    help="where the compiled jitcdde module is cached ('' disables)")
    ap.add_argument("--jitcdde-only", action="store_true",
                    help="skip delyap (use the published reference); for checking the peer side")
    add_json_option(ap)
    args = ap.parse_args()

    t_end_a = 1e3 if args.quick else 1e4
    n_taus = 100 if args.quick else 1000
    repeats = 1 if args.quick else args.repeats
    t_end_b = 500.0
    taus = np.linspace(5.0, 30.0, n_taus)
    t_eval_a = np.arange(0.0, t_end_a + 0.5, 1.0)
    t_eval_b = (np.arange(0.0, t_end_b + 0.5, 1.0) if args.sweep_output == "dense"
                else np.array([T_CHECK, t_end_b]))
    i100_b = int(np.searchsorted(t_eval_b, T_CHECK))
    t_check = np.array(sorted(pj.REFERENCE_TAU17))

    with single_blas_thread():
        # ---- setup: compile jitcdde once; its cost is reported, never timed as integration
        model = pj.build_mackey_glass(args.cache_dir or None)
        print(f"jitcdde {'module load' if model.from_cache else 'compile'}: "
              f"{model.compile_seconds:.2f} s (excluded from timings)")

        dl = None if args.jitcdde_only else Delyap(args.threads)

        # ---- reference: recomputed by delyap when available, else the published values
        if dl is not None:
            (ref_vals, _), _ = dl.values_at(TAU_SINGLE, t_check, 1e-11, 1e-11)
            ref = dict(zip(t_check, ref_vals))
            dev = max(abs(ref[t] - pj.REFERENCE_TAU17[t]) for t in t_check)
            print(f"reference (delyap rtol=atol=1e-11): x(100)={ref[T_CHECK]:.9f}, "
                  f"max deviation from published {dev:.1e}")
        else:
            ref = dict(pj.REFERENCE_TAU17)
            print(f"reference (published): x(100)={ref[T_CHECK]:.9f}")

        # ---- accuracy scan on a tolerance ladder, then pick matched tolerances
        def scan(values_fn, ladder):
            errs = {}
            for rtol in ladder:
                x = values_fn(rtol, rtol * args.atol_ratio)
                errs[rtol] = x[-1] - ref[T_CHECK]
            return errs

        jit_errs = scan(lambda r, a: pj._sample(model.dde, TAU_SINGLE, t_check, r, a),
                        tolerance_ladder(1e-3, 1e-10))
        tol_j = pick_tolerance(jit_errs, args.accuracy)
        print("jitcdde err x(100) by rtol: "
              + ", ".join(f"{r:.1e}:{e:+.1e}" for r, e in sorted(jit_errs.items(), reverse=True)))
        if dl is not None:
            dl_errs = scan(lambda r, a: dl.values_at(TAU_SINGLE, t_check, r, a)[0][0],
                           tolerance_ladder(1e-3, 1e-11))
            tol_d = pick_tolerance(dl_errs, args.accuracy)
            print("delyap  err x(100) by rtol: "
                  + ", ".join(f"{r:.1e}:{e:+.1e}"
                              for r, e in sorted(dl_errs.items(), reverse=True)))
        print(f"matched accuracy {args.accuracy:g}: jitcdde rtol={tol_j:.1e}"
              + (f", delyap rtol={tol_d:.1e}" if dl is not None else "")
              + f" (atol = rtol*{args.atol_ratio:g})")

        # ---- (a) single trajectory
        def jit_a():
            _, x, sec = pj.integrate_single(model, TAU_SINGLE, t_end_a, 1.0, tol_j,
                                            tol_j * args.atol_ratio)
            return x, sec

        xj_a, tj_a = best_of(repeats, jit_a)
        rows = []  # (label, t_delyap, t_jitcdde, target)
        if dl is not None:
            (xd_a, sol_a), td_a = best_of(
                repeats, lambda: dl.single(t_eval_a, tol_d, tol_d * args.atol_ratio))
            # Chaos separates the tools late in the run; compare only up to T_CHECK.
            early = t_eval_a <= T_CHECK
            print(f"(a) max |delyap - jitcdde| on t<={T_CHECK:g}: "
                  f"{np.max(np.abs(xd_a[early] - xj_a[early])):.1e}; delyap {stats_str(sol_a)}")
            rows.append((f"(a) single, t_end={t_end_a:g}", td_a, tj_a, TARGET_RATIO["a"]))
        else:
            rows.append((f"(a) single, t_end={t_end_a:g}", None, tj_a, TARGET_RATIO["a"]))

        # ---- (b) sweep
        def jit_b():
            return pj.integrate_sweep(model, taus, t_eval_b, tol_j, tol_j * args.atol_ratio)

        xj_b, tj_b = best_of(args.sweep_repeats if not args.quick else 1, jit_b)
        label_b = f"(b) sweep {n_taus} taus, t_end={t_end_b:g}"
        if dl is not None:
            thread_settings = [args.threads] + ([1] if args.threads != 1 else [])
            for th in thread_settings:
                (xd_b, sol_b), td_b = best_of(
                    repeats, lambda: dl.sweep(taus, t_eval_b, tol_d, tol_d * args.atol_ratio, th))
                rows.append((f"{label_b}, delyap threads={th}", td_b, tj_b, TARGET_RATIO["b"]))
            # x(100) per tau should agree to about the accuracy level; larger
            # taus are more chaotic, so look at the distribution, not just the max.
            d = np.abs(xd_b[:, i100_b] - xj_b[:, i100_b])
            ok = np.quantile(d, 0.9) <= 10 * args.accuracy
            print(f"(b) |delyap - jitcdde| at x(100) over taus: median {np.median(d):.1e}, "
                  f"90% {np.quantile(d, 0.9):.1e}, max {d.max():.1e} -> "
                  f"{'agree' if ok else 'DISAGREE'}; delyap {stats_str(sol_b)}")
        else:
            rows.append((label_b, None, tj_b, TARGET_RATIO["b"]))

    results = {
        "accuracy": args.accuracy, "atol_ratio": args.atol_ratio, "sweep_output": args.sweep_output,
        "jitcdde_compile_seconds": model.compile_seconds, "jitcdde_from_cache": model.from_cache,
        "jitcdde_rtol": tol_j, "jitcdde_error_by_rtol": {str(r): e for r, e in jit_errs.items()},
        "delyap_rtol": tol_d if dl is not None else None,
        "delyap_error_by_rtol": {str(r): e for r, e in dl_errs.items()} if dl is not None else None,
        "rows": [{"workload": label, "delyap_s": td, "jitcdde_s": tj,
                  "ratio": None if td is None else td / tj, "target": target}
                 for label, td, tj, target in rows],
    }

    # ---- table
    print()
    print(f"{'workload':<52} {'delyap s':>10} {'jitcdde s':>10} {'ratio':>8} {'target':>7}  ok")
    for label, td, tj, target in rows:
        if td is None:
            print(f"{label:<52} {'-':>10} {tj:>10.3f} {'-':>8} {target:>7.2f}  -")
        else:
            r = td / tj
            print(f"{label:<52} {td:>10.3f} {tj:>10.3f} {r:>8.3f} {target:>7.2f}  "
                  f"{'yes' if r <= target else 'NO'}")

    write_json(args.json, args, results)


if __name__ == "__main__":
    main()
