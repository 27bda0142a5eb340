"""Delay-coupled Kuramoto benchmark: delyap vs jitcdde (and numpy RK4, torchdde, ddeint).

    theta_i' = omega_i + (K / d_i) sum_j A_ij sin(theta_j(t - tau_ij) - theta_i(t))

Network: Erdős–Rényi digraph, N = 1e4 nodes, about 20 in-edges per node (2e5
edges), unit weights, d_i = in-degree; omega_i ~ N(1, 0.6), K = 1.5 (partial
synchrony: r ~ 0.6-0.8 with finite-size fluctuations, and sensitive
dependence, so errors grow ~1e3-fold between t = 10 and t = 100); rotating past
theta_i(t) = theta_i0 + omega_i t with theta_i0 ~ U[0, 2 pi) (seeded).  Two
delay settings: one delay tau = 1, and per-edge delays drawn from
{0.5, 1, 1.5, 2}.  Integrated to t = 100; what is compared is the order
parameter r(t) at t = 10, 50, 100 (delyap keeps r, psi on a grid of 101 times
with output="order_parameter"; the peers give the phases, reduced in numpy).

Matched accuracy: each tool gets the loosest tolerance on a ladder whose error
max_t |r(t) - r_ref(t)|, t in {10, 50, 100}, and that of every tighter
tolerance, is <= --accuracy (default 1e-4).  The reference is delyap at
rtol = 1e-10 (N = 1e4) or 1e-11 (small N); the numpy RK4 at h = 0.025 agrees
with it to ~1e-6 at t = 100, ~1e-9 at t = 50.

jitcdde (peers_jitcdde_kuramoto.py) cannot be run to t = 100 at N = 1e4 in a
benchmark: its generated C passes the history anchor, a struct of 2N + 1
doubles, BY VALUE to the interpolation routine for every delayed term, which
copies the next anchor by value again (~32N bytes per edge per evaluation;
objdump shows one memcpy and one non-inlined get_past_value call per edge),
so one right-hand side costs
O(edges x N): ~6 s per step at N = 1e4, i.e. 2 h or more to t = 100.  So:

* at --calib-n (200) jitcdde runs to t = 100 on the tolerance ladder; its
  matched tolerance and its time there (both tools really run) give a measured
  ratio, and its step attempts to t = 100 are counted (deterministic);
* its cost per step is measured at N = 1000 and 3000 (compiled in-run, cached)
  and at N = 1e4 when a compiled module is cached (--jitcdde-big compile makes
  one: ~6-7 min, mostly gcc, per delay setting), else extrapolated (power law);
* jitcdde's time at N = 1e4 = step attempts at N = 200 x cost per step at N = 1e4.
  That keeps the step count of N = 200, which favours jitcdde (delyap's BS3,
  the same 3(2) pair, needs ~1.5x more steps at N = 1e4 than at N = 200, and
  jitcdde itself 1.7x more at N = 1000 (per-edge, rtol 1e-5: 1941 vs 1146
  attempts); the BS3-scaled figure is printed too, and --count-n 1000 counts
  jitcdde's steps at N = 1000 instead, ~3 min more per delay setting).
* compile time (symengine -> C, then gcc) is reported apart, with the load
  average at the time, as it is never part of the integration timings.

Other peers, at N = 1e4 unless said: a vectorised numpy RK4 (fixed step, method
of steps with a ring buffer, delays multiples of h; peers_numpy_kuramoto.py),
torchdde (float32 only, see peers_torchdde_kuramoto.py), and ddeint at
N = 200 only (its history is rebuilt with np.hstack at every output time,
O(N x outputs^2); peers_ddeint_kuramoto.py).

Every tool runs on one core: delyap with threads=1 (a single trajectory has no
batch to spread), BLAS pinned to one thread, torch.set_num_threads(1), jitcdde
compiled without OpenMP.  This box is shared, so timings are best-of-N and
the load average is printed with each compile.

Usage:
    python benchmarks/bench_kuramoto.py            # full run (~7 min; +4 min the
                                                   # first time: jitcdde compiles)
    python benchmarks/bench_kuramoto.py --quick    # smoke test (~1 min)
    python benchmarks/bench_kuramoto.py --jitcdde-big compile   # + jitcdde at N=1e4
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from dataclasses import dataclass

import numpy as np
import peers_jitcdde_kuramoto as pkj
import peers_numpy_kuramoto as pnp
from _common import (
    add_json_option,
    best_of,
    pick_tolerance,
    single_blas_thread,
    tolerance_ladder,
    write_json,
)

TARGET_RATIO = 0.2  # delyap integration time / jitcdde integration time must not exceed this

K_COUPLING = 1.5
MEAN_IN_DEGREE = 20
OMEGA_MEAN, OMEGA_SD = 1.0, 0.6
TAU_SINGLE = 1.0
TAU_SET = (0.5, 1.0, 1.5, 2.0)
SEED = 1


@dataclass
class Problem:
    n: int
    A: object  # scipy CSR, sorted indices, unit weights; row i = in-edges of i
    omega: np.ndarray
    theta0: np.ndarray
    K: float
    tau_edge: np.ndarray  # one delay per edge, CSR order
    inv_deg: np.ndarray  # 1 / in-degree (0 for isolated nodes)
    label: str = ""

    @property
    def delays(self) -> np.ndarray:
        return np.unique(self.tau_edge)

    @property
    def tau_arg(self):
        """What delyap.rhs.kuramoto gets as tau: a scalar when all delays are equal."""
        d = self.delays
        return float(d[0]) if d.size == 1 else self.tau_edge

    def edge_classes(self):
        """Per edge (CSR order): target row, delay class, and weight K·A_ij/d_i."""
        rows = np.repeat(np.arange(self.n), np.diff(self.A.indptr))
        klass = np.searchsorted(self.delays, self.tau_edge)
        return rows, klass, self.A.data * (self.K * self.inv_deg)[rows]

    def stacked_coupling(self):
        """n × (classes·n) CSR: column k·n + j holds the weight of edge j → i of class k, so
        B @ f(θ(t − τ_k) stacked) is every delayed coupling sum at once."""
        import scipy.sparse as sp

        rows, klass, w = self.edge_classes()
        shape = (self.n, len(self.delays) * self.n)
        return sp.csr_matrix((w, (rows, klass * self.n + self.A.indices)), shape=shape)

    def history(self, t):
        """Rotating past theta_i(t) = theta_i0 + omega_i t, vectorised: (len(t), N)."""
        t = np.asarray(t, dtype=float)
        return self.theta0[None, :] + t[:, None] * self.omega[None, :]


def make_problem(n: int, delays: str = "per-edge", seed: int = SEED) -> Problem:
    """Erdős–Rényi digraph with mean in-degree 20, omega ~ N(1, 0.6), theta0 ~ U[0, 2pi).

    ``delays``: 'single' (tau = 1 on every edge) or 'per-edge' (uniform from TAU_SET).
    The graph, frequencies and phases depend only on (n, seed), not on ``delays``.
    """
    import scipy.sparse as sp

    rng = np.random.default_rng([seed, n])
    deg = rng.binomial(n - 1, MEAN_IN_DEGREE / (n - 1), size=n)
    rows = np.repeat(np.arange(n), deg)
    cols = rng.integers(0, n - 1, size=rows.size)
    cols += cols >= rows  # no self-loops
    A = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    A.data[:] = 1.0  # a repeated draw is one edge
    A.sort_indices()
    omega = rng.normal(OMEGA_MEAN, OMEGA_SD, n)
    theta0 = rng.uniform(0.0, 2 * np.pi, n)
    tau_choice = rng.choice(np.asarray(TAU_SET), size=A.nnz)
    if delays == "single":
        tau_edge = np.full(A.nnz, TAU_SINGLE)
    elif delays == "per-edge":
        tau_edge = tau_choice
    else:
        raise ValueError(delays)
    d = np.diff(A.indptr).astype(float)
    inv_deg = np.where(d > 0, 1.0 / np.maximum(d, 1.0), 0.0)
    return Problem(n, A, omega, theta0, K_COUPLING, tau_edge, inv_deg, delays)


# --------------------------------------------------------------------------- helpers

T_END = 100.0
T_CHECK = np.array([10.0, 50.0, 100.0])  # r(t) is compared here
T_EVAL = np.linspace(0.0, T_END, 101)  # delyap's output grid (order parameter only)
I_CHECK = np.searchsorted(T_EVAL, T_CHECK)
MODES = ("single", "per-edge")
MODE_LABEL = {"single": "one delay (tau=1)", "per-edge": "per-edge delays {0.5,1,1.5,2}"}


def err_str(err) -> str:
    return " ".join(f"{e:+.1e}" for e in err)


def max_err(err) -> float:
    return float(np.max(np.abs(err)))


def fmt_s(sec: float) -> str:
    if sec >= 3600:
        return f"{sec / 3600:.1f} h"
    if sec >= 120:
        return f"{sec / 60:.1f} min"
    return f"{sec:.2f} s"


def power_fit(xs, ys):
    """y = c x^p through the points (least squares in log-log); returns (c, p)."""
    p, logc = np.polyfit(np.log(xs), np.log(ys), 1)
    return float(np.exp(logc)), float(p)


# --------------------------------------------------------------------------- delyap side

class Delyap:
    def __init__(self):
        import delyap as dl

        self.dl = dl

    def at_check(self, prob, rtol, atol):
        """((r at T_CHECK, stats), seconds)."""
        (r, st), sec = self.solve(prob, rtol, atol)
        return (r[I_CHECK], st), sec

    def solve(self, prob, rtol, atol, method="DP5"):
        """Returns ((r on T_EVAL, stats), seconds)."""
        kur = self.dl.rhs.kuramoto(prob.omega, prob.A, coupling=prob.K, tau=prob.tau_arg)
        t0 = time.perf_counter()
        sol = self.dl.solve_dde(kur, prob.history, (0.0, T_END), t_eval=T_EVAL, method=method,
                                rtol=rtol, atol=atol, threads=1, output="order_parameter")
        sec = time.perf_counter() - t0
        return (np.asarray(sol.y)[:, 0], dict(sol.stats)), sec


def scan(run, ladder, accuracy, ref):
    """run(rtol) -> ((r at T_CHECK, ...), seconds) on a ladder; pick the loosest tolerance
    that (with all tighter ones) meets accuracy.

    Returns (chosen or None, {rtol: err array}, {rtol: seconds}).
    """
    errs, secs = {}, {}
    for rtol in ladder:
        res, sec = run(rtol)
        errs[rtol] = np.asarray(res[0]) - ref
        secs[rtol] = sec
    try:
        chosen = pick_tolerance({r: max_err(e) for r, e in errs.items()}, accuracy)
    except RuntimeError:
        chosen = None
    return chosen, errs, secs


def timed(repeats, fn, first_sec):
    """Best of ``repeats`` runs of fn (-> (result, seconds)), counting the ladder run
    already made as the first one."""
    if repeats <= 1:
        return first_sec
    return min(first_sec, best_of(repeats - 1, fn)[1])


def print_scan(name, errs, extra=None):
    for rtol in sorted(errs, reverse=True):
        tail = f"  {extra[rtol]}" if extra and rtol in extra else ""
        print(f"    {name:<8} rtol={rtol:.1e}: err r(10,50,100) = {err_str(errs[rtol])}{tail}")


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke test (about a minute): reference rtol 1e-8, short ladders, one "
                         "repeat, jitcdde per-step cost at N=500 only, no numpy/torchdde/ddeint")
    ap.add_argument("--n", type=int, default=10_000, help="network size (default 1e4)")
    ap.add_argument("--accuracy", type=float, default=1e-4,
                    help="required max |r - r_ref| over t = 10, 50, 100 (default 1e-4)")
    ap.add_argument("--atol-ratio", type=float, default=1e-3,
                    help="atol = rtol * ratio, every tool")
    ap.add_argument("--repeats", type=int, default=3, help="best-of-N for the delyap timings")
    ap.add_argument("--calib-n", type=int, default=200,
                    help="size at which jitcdde runs to t=100 (accuracy and step count)")
    ap.add_argument("--count-n", type=int, default=None,
                    help="also run jitcdde to t=100 at this size (matched rtol) to count its steps "
                         "there, and use that count for --n (1000: ~3 min per delay setting)")
    ap.add_argument("--jitcdde-sizes", type=int, nargs="*", default=None,
                    help="sizes at which jitcdde's compile and per-step cost are measured "
                         "(default 1000 3000; --quick: 500)")
    ap.add_argument("--jitcdde-big", choices=("auto", "compile", "skip"), default=None,
                    help="jitcdde at --n itself: 'auto' (default; --quick: 'skip') loads a cached "
                         "module if there is one and times steps with it, else extrapolates; "
                         "'compile' compiles it if needed (~8 min per delay mode, cached after)")
    ap.add_argument("--cache-dir",
                    default=os.path.join(os.path.dirname(__file__), "_cache", "jitcdde_kuramoto"),
                    help="compiled jitcdde modules (+ their compile times); '' disables")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=("numpy", "torchdde", "ddeint", "jitcdde"),
                    help="peers to leave out")
    add_json_option(ap)
    args = ap.parse_args()

    quick = args.quick
    if args.jitcdde_big is None:
        args.jitcdde_big = "skip" if quick else "auto"
    repeats = 1 if quick else args.repeats
    sizes = (args.jitcdde_sizes if args.jitcdde_sizes is not None
             else ([500] if quick else [1000, 3000]))
    skip = set(args.skip) | ({"numpy", "torchdde", "ddeint"} if quick else set())
    for peer, module in (("torchdde", "torchdde"), ("ddeint", "ddeint"), ("jitcdde", "jitcdde")):
        if peer not in skip and importlib.util.find_spec(module) is None:
            print(f"({peer} is not installed: skipped; pip install {module})")
            skip.add(peer)
    cache = args.cache_dir or None
    acc = args.accuracy
    ar = args.atol_ratio
    ref_rtol = 1e-8 if quick else 1e-10
    ladder_d = [1e-6, 1e-7] if quick else tolerance_ladder(1e-4, 1e-8)
    ladder_j = [1e-5] if quick else [1e-4, 1e-5, 1e-6, 1e-7]
    t_start = time.perf_counter()
    dl = Delyap()
    print(f"Kuramoto, N={args.n}, mean in-degree {MEAN_IN_DEGREE}, K={K_COUPLING}, "
          f"omega ~ N({OMEGA_MEAN}, {OMEGA_SD}), rotating past, t in [0, {T_END:g}]; "
          f"accuracy: max |r - r_ref| at t=10,50,100 <= {acc:g}; atol = rtol*{ar:g}")

    results = {"ref_rtol": ref_rtol}
    with single_blas_thread():
        if "jitcdde" not in skip:
            print(f"\n=== jitcdde compile and cost per step (per-edge delays) at N = {sizes}")
            results["sizes"] = jitcdde_sizes(args, sizes, cache)
        for mode in MODES:
            res = results[mode] = {}
            prob = make_problem(args.n, mode)
            print(f"\n=== {MODE_LABEL[mode]}: N={prob.n}, edges={prob.A.nnz}")

            # ---- reference and delyap's matched tolerance
            (r_ref, st_ref), s_ref = dl.solve(prob, ref_rtol, ref_rtol * ar)
            ref = r_ref[I_CHECK]
            res["ref"] = ref
            print(f"  reference delyap rtol={ref_rtol:g}: r(10,50,100) = "
                  + " ".join(f"{v:.6f}" for v in ref)
                  + f"  ({s_ref:.1f} s, {st_ref['accepted']} steps)")
            stats_d = {}

            def run_d(rtol):
                (r, st), sec = dl.at_check(prob, rtol, rtol * ar)
                stats_d[rtol] = st
                return (r, st), sec

            tol_d, errs_d, secs_d = scan(run_d, ladder_d, acc, ref)
            print_scan("delyap", errs_d, {r: f"({secs_d[r]:.2f} s)" for r in secs_d})
            if tol_d is None:
                raise SystemExit(f"delyap reached no accuracy {acc:g} on the ladder")
            t_d = timed(repeats, lambda: dl.solve(prob, tol_d, tol_d * ar), secs_d[tol_d])
            st_d = stats_d[tol_d]
            res["delyap"] = dict(rtol=tol_d, sec=t_d, err=errs_d[tol_d], stats=st_d)
            print(f"  delyap: rtol={tol_d:.1e}, {t_d:.3f} s (best of {repeats}), "
                  + ", ".join(f"{k}={st_d[k]}" for k in ("accepted", "rejected", "rhs_evals")))

            # ---- numpy RK4
            if "numpy" not in skip:
                hs = [0.1] if quick else [0.1, 0.05, 0.025]
                for h in hs:
                    r_n, t_n, nr = pnp.solve(prob, T_CHECK, h)
                    e = r_n - ref
                    print(f"    numpy RK4 h={h:g}: {t_n:.2f} s, {nr} RHS evals, err {err_str(e)}")
                    res["numpy"] = dict(h=h, sec=t_n, err=e, ok=max_err(e) <= acc)
                    if max_err(e) <= acc:
                        break

            # ---- torchdde
            if "torchdde" not in skip:
                import peers_torchdde_kuramoto as ptd

                for rtol in (1e-5, 1e-6, 1e-7):
                    r_t, t_t, st = ptd.solve(prob, np.concatenate([[0.0], T_CHECK]), rtol,
                                             rtol * ar)
                    e = r_t[1:] - ref
                    print(f"    torchdde float32 rtol={rtol:.0e}: {t_t:.2f} s, "
                          f"{st['rhs_evals']} RHS evals, err {err_str(e)}")
                    res["torchdde"] = dict(rtol=rtol, sec=t_t, err=e, ok=max_err(e) <= acc)
                    if max_err(e) <= acc:
                        break

            # ---- jitcdde: accuracy and step count at calib-n, where it can run to t = 100
            if "jitcdde" not in skip:
                res["jitcdde"] = run_jitcdde(mode, args, results["sizes"], cache, acc, ar,
                                             ladder_j, ladder_d, dl, repeats)

        # ---- ddeint: small N only
        if "ddeint" not in skip:
            results["ddeint"] = run_ddeint(args, dl, ar)

    report(results, args, acc)
    print(f"\n(total wall time {fmt_s(time.perf_counter() - t_start)})")
    results["total_seconds"] = time.perf_counter() - t_start
    write_json(args.json, args, results)


# --------------------------------------------------------------------------- jitcdde

def jitcdde_sizes(args, sizes, cache):
    """Compile time and cost per step of jitcdde at the given sizes (per-edge delays)."""
    rows = []
    for n in sizes:
        prob = make_problem(n, "per-edge")
        m = pkj.build(prob, cache_dir=cache)
        n_steps = max(2, int(round(2e5 / prob.A.nnz)))  # ~0.5 s at 1e3, ~2 s at 3e3
        sps = pkj.seconds_per_step(m, prob, n_steps=min(n_steps, 20))
        rows.append(dict(n=n, edges=prob.A.nnz, sps=sps, compile=m.compile_seconds,
                         compile_cpu=m.compile_cpu, breakdown=_breakdown(m), cached=m.from_cache))
        print(f"  jitcdde N={n}: {'cached module, compile was' if m.from_cache else 'compile'} "
              f"{m.compile_seconds:.1f} s {_breakdown(m)}; {sps * 1e3:.1f} ms per step "
              f"({sps / prob.A.nnz * 1e9:.0f} ns per delayed term)")
        del m
    return rows


def _breakdown(m) -> str:
    b = m.breakdown or {}
    parts = [f"{k} {b[k]:.1f} s" for k in ("codegen", "gcc") if k in b]
    if m.compile_cpu is not None:
        parts.append(f"CPU {m.compile_cpu:.1f} s")
    if "load_average" in b:
        parts.append(f"load avg {b['load_average']:.1f}")
    return f"({', '.join(parts)})" if parts else ""


def run_j_at(model, prob, rtol, ar):
    r, sec, steps = pkj.integrate(model, prob, T_CHECK, rtol, rtol * ar)
    model.last_steps = steps
    return (r,), sec


def run_jitcdde(mode, args, size_rows, cache, acc, ar, ladder_j, ladder_d, dl, repeats):
    """jitcdde for one delay mode: full runs at calib-n, cost at --n measured or extrapolated."""
    out = {}
    n_c = args.calib_n
    pc = make_problem(n_c, mode)
    print(f"  -- jitcdde: full runs to t={T_END:g} at N={n_c} (edges={pc.A.nnz})")
    (r_ref_c, _), _ = dl.solve(pc, 1e-11, 1e-11 * ar)
    ref_c = r_ref_c[I_CHECK]
    mc = pkj.build(pc, cache_dir=cache)
    print(f"    compile at N={n_c}: {mc.compile_seconds:.1f} s"
          f"{' (cached)' if mc.from_cache else ''}")
    steps_j = {}

    def run_j(rtol):
        r, sec, steps = pkj.integrate(mc, pc, T_CHECK, rtol, rtol * ar)
        steps_j[rtol] = steps
        return (r,), sec

    tol_j, errs_j, secs_j = scan(run_j, ladder_j, acc, ref_c)
    print_scan("jitcdde", errs_j,
               {r: f"({secs_j[r]:.2f} s, {steps_j[r]} step attempts)" for r in secs_j})
    tol_dc, errs_dc, secs_dc = scan(lambda r: dl.at_check(pc, r, r * ar), ladder_d, acc, ref_c)
    print_scan("delyap", errs_dc, {r: f"({secs_dc[r]:.3f} s)" for r in secs_dc})
    if tol_j is None:
        tol_j = min(errs_j)
        print(f"    jitcdde reached no accuracy {acc:g} at N={n_c}; "
              f"using its tightest rtol {tol_j:.0e}")
    if tol_dc is None:
        tol_dc = min(errs_dc)
    t_jc = timed(repeats, lambda: run_j(tol_j), secs_j[tol_j])
    t_dc = timed(repeats, lambda: dl.solve(pc, tol_dc, tol_dc * ar), secs_dc[tol_dc])
    sps_c = pkj.seconds_per_step(mc, pc, n_steps=50)
    # deterministic; time = steps x cost per step (+ small Python overhead)
    steps_eq = steps_j[tol_j]
    out["calib"] = dict(n=n_c, edges=pc.A.nnz, tol_j=tol_j, tol_d=tol_dc, t_j=t_jc, t_d=t_dc,
                        err_j=errs_j[tol_j], err_d=errs_dc[tol_dc], compile=mc.compile_seconds,
                        sps=sps_c, steps_eq=steps_eq)
    print(f"    matched at N={n_c}: jitcdde rtol={tol_j:.0e} {t_jc:.2f} s, "
          f"delyap rtol={tol_dc:.0e} {t_dc:.3f} s (ratio {t_dc / t_jc:.4f}); "
          f"jitcdde {steps_eq} step attempts to t={T_END:g}, "
          f"{sps_c * 1e3:.2f} ms per step (x steps = {steps_eq * sps_c:.2f} s)")
    mc = None  # free the compiled model (not `del`: run_j's closure still names it)

    p_count, n_count = pc, n_c
    if args.count_n:
        p_count = n_count = None
        pk2 = make_problem(args.count_n, mode)
        m2 = pkj.build(pk2, cache_dir=cache)
        (r2,), sec2 = run_j_at(m2, pk2, tol_j, ar)
        print(f"    jitcdde at N={args.count_n}, rtol={tol_j:.0e}: {sec2:.1f} s, "
              f"{m2.last_steps} step attempts "
              f"(x{m2.last_steps / steps_eq:.2f} the N={n_c} count); used for N={args.n}")
        out["calib"]["steps_count_n"] = (args.count_n, m2.last_steps)
        steps_eq = m2.last_steps
        p_count, n_count = pk2, args.count_n
        del m2

    # ---- step-count growth from there to N (delyap's BS3, the same 3(2) pair, at tol_j)
    pN = make_problem(args.n, mode)
    (_, sb_c), _ = dl.solve(p_count, tol_j, tol_j * ar, method="BS3")
    (_, sb_N), _ = dl.solve(pN, tol_j, tol_j * ar, method="BS3")
    growth = (sb_N["accepted"] + sb_N["rejected"]) / (sb_c["accepted"] + sb_c["rejected"])
    print(f"    step-count growth N={n_count} -> {args.n} (delyap BS3 at rtol={tol_j:.0e}): "
          f"{sb_c['accepted'] + sb_c['rejected']} -> "
          f"{sb_N['accepted'] + sb_N['rejected']} attempts, x{growth:.2f}")

    # ---- jitcdde at N: measured per-step cost when a module is at hand, else extrapolated
    pts = sorted({(n_c, sps_c)} | {(r["n"], r["sps"]) for r in size_rows})
    c_fit, p_fit = (power_fit([n for n, _ in pts], [s for _, s in pts]) if len(pts) >= 2
                    else (None, None))
    m_big = None
    if args.jitcdde_big != "skip":
        m_big = (pkj.load_cached(pN, cache) if args.jitcdde_big == "auto"
                 else pkj.build(pN, cache_dir=cache))
    if m_big is not None:
        sps_N = pkj.seconds_per_step(m_big, pN, n_steps=2)
        sps_src = "measured"
        out["compile_N"] = dict(n=args.n, edges=pN.A.nnz, compile=m_big.compile_seconds,
                                compile_cpu=m_big.compile_cpu, breakdown=_breakdown(m_big),
                                cached=m_big.from_cache, sps=sps_N)
        del m_big
    else:
        sps_N = c_fit * args.n ** p_fit
        sps_src = f"extrapolated (~N^{p_fit:.2f} from N={', '.join(str(n) for n, _ in pts)})"
        out["compile_N"] = None
    print(f"    jitcdde at N={args.n}: {sps_N:.2f} s per step, {sps_src}")
    est_lo = steps_eq * sps_N
    out["N"] = dict(sps=sps_N, sps_src=sps_src, est_lo=est_lo, est=est_lo * growth, growth=growth,
                    tol_j=tol_j)
    return out


def run_ddeint(args, dl, ar):
    import peers_ddeint_kuramoto as pdi

    n = args.calib_n
    prob = make_problem(n, "per-edge")
    (r_ref, _), _ = dl.solve(prob, 1e-11, 1e-11 * ar)
    ref = r_ref[I_CHECK]
    (r_d, _), t_d = best_of(3, lambda: dl.solve(prob, 1e-7, 1e-10))
    rows = []
    for dt in (0.1, 0.05):
        tt, r, sec, nr = pdi.solve(prob, T_END, dt)
        e = np.interp(T_CHECK, tt, r) - ref
        rows.append(dict(dt=dt, sec=sec, err=e, n_rhs=nr))
        print(f"  ddeint N={n} per-edge, output step {dt:g}: {sec:.2f} s, {nr} RHS evals, "
              f"err {err_str(e)}")
    return dict(n=n, rows=rows, delyap_sec=t_d, delyap_err=r_d[I_CHECK] - ref)


# --------------------------------------------------------------------------- report

def report(results, args, acc):
    N = args.n
    print("\n" + "=" * 100)
    print(f"Integration time to t={T_END:g}, "
          f"matched accuracy max|r - r_ref|(t=10,50,100) <= {acc:g}, one core each")
    print(f"{'workload':<53} {'delyap s':>9} {'jitcdde s':>11} {'ratio':>9} {'target':>7}  ok")
    for mode in MODES:
        res = results[mode]
        j = res.get("jitcdde")
        d = res["delyap"]
        if j is None:
            continue
        c = j["calib"]
        lab = MODE_LABEL[mode]
        r = c["t_d"] / c["t_j"]
        wl = f"{lab}, N={c['n']} (both run)"
        print(f"{wl:<53} {c['t_d']:>9.3f} {c['t_j']:>11.2f} {r:>9.4f} "
              f"{TARGET_RATIO:>7.2f}  {'yes' if r <= TARGET_RATIO else 'NO'}")
        jn = j["N"]
        r = d["sec"] / jn["est_lo"]
        wl = f"{lab}, N={N} (jitcdde est.)"
        print(f"{wl:<53} {d['sec']:>9.3f} {fmt_s(jn['est_lo']):>11} {r:>9.1e} "
              f"{TARGET_RATIO:>7.2f}  {'yes' if r <= TARGET_RATIO else 'NO'}")
    cn = [results[m]["jitcdde"]["calib"].get("steps_count_n") for m in MODES
          if results[m].get("jitcdde")]
    where = f"N={cn[0][0]}" if cn and cn[0] else "the calibration N"
    print(f"  jitcdde est. at N = (its step attempts to t=100 at {where}, counted) x "
          "(its cost per step\n"
          "  at N, measured or extrapolated); the step count is not scaled up to N "
          "(favours jitcdde:\n"
          "  its attempts grow with N); scaled by delyap-BS3's step growth it would be: "
          + ", ".join(f"{m}: {fmt_s(results[m]['jitcdde']['N']['est'])} "
                      f"(x{results[m]['jitcdde']['N']['growth']:.2f})"
                      for m in MODES if results[m].get("jitcdde")))

    print("\nAccuracy (signed error of r at t=10, 50, 100 against delyap "
          f"rtol={results['ref_rtol']:g} at N={N}; "
          "1e-11 at the calibration N)")
    for mode in MODES:
        res = results[mode]
        print(f"  {MODE_LABEL[mode]}: r_ref = " + ", ".join(f"{v:.6f}" for v in res["ref"]))
        d = res["delyap"]
        print(f"    delyap   N={N:<6} rtol={d['rtol']:.0e}            {err_str(d['err'])}")
        if "numpy" in res:
            x = res["numpy"]
            print(f"    numpy    N={N:<6} RK4 h={x['h']:<6g}          {err_str(x['err'])}"
                  f"   {x['sec']:.2f} s (delyap/numpy {d['sec'] / x['sec']:.2f})"
                  + ("" if x["ok"] else "  [accuracy not reached]"))
        if "torchdde" in res:
            x = res["torchdde"]
            print(f"    torchdde N={N:<6} rtol={x['rtol']:.0e} (f32)      {err_str(x['err'])}"
                  f"   {x['sec']:.2f} s (delyap/torchdde {d['sec'] / x['sec']:.2f})"
                  + ("" if x["ok"] else "  [accuracy not reached]"))
        j = res.get("jitcdde")
        if j:
            c = j["calib"]
            print(f"    jitcdde  N={c['n']:<6} rtol={c['tol_j']:.0e}            "
                  f"{err_str(c['err_j'])}")
            print(f"    delyap   N={c['n']:<6} rtol={c['tol_d']:.0e}            "
                  f"{err_str(c['err_d'])}")
    if "ddeint" in results:
        x = results["ddeint"]
        print(f"  ddeint (per-edge, N={x['n']}; delyap rtol=1e-7 there: {x['delyap_sec']:.3f} s, "
              f"err {err_str(x['delyap_err'])})")
        for row in x["rows"]:
            print(f"    output step {row['dt']:<5g} {row['sec']:.2f} s  err {err_str(row['err'])}")

    if any(results[m].get("jitcdde") for m in MODES):
        print("\njitcdde compile (symengine -> C -> gcc -O3, excluded from the timings above) "
              "and cost per step")
        print(f"  {'N':>6} {'edges':>7} {'delays':<9} {'wall s':>8} {'CPU s':>8} "
              f"{'ms/step':>9} {'ns/term':>8}  detail")
        rows = [dict(r, mode="per-edge") for r in results.get("sizes", [])]
        rows += [dict(results[m]["jitcdde"]["compile_N"], mode=m) for m in MODES
                 if results[m].get("jitcdde") and results[m]["jitcdde"].get("compile_N")]
        for r in rows:
            cpu = f"{r['compile_cpu']:8.1f}" if r["compile_cpu"] is not None else f"{'-':>8}"
            print(f"  {r['n']:>6} {r['edges']:>7} {r['mode']:<9} {r['compile']:8.1f} {cpu} "
                  f"{r['sps'] * 1e3:9.1f} {r['sps'] / r['edges'] * 1e9:8.0f}  {r['breakdown']}"
                  + (" [cached module: times as recorded when it was built]"
                     if r["cached"] else ""))
        small = [r for r in results.get("sizes", []) if r["n"] != N]
        if len(small) >= 2:
            use_cpu = all(r["compile_cpu"] is not None for r in small)
            key = "compile_cpu" if use_cpu else "compile"
            c, p = power_fit([r["n"] for r in small], [r[key] for r in small])
            print(f"  compile {'CPU' if use_cpu else 'wall'} time fit ~N^{p:.2f} over N="
                  + ", ".join(str(r["n"]) for r in small)
                  + f": N={N} -> {fmt_s(c * N ** p)} per delay setting")


if __name__ == "__main__":
    main()
