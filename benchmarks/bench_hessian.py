"""Top Hessian eigenvalue of an MLP: delyap's Lanczos vs PyHessian's power iteration, and the
cost of a SharpnessMonitor call every 10 full-batch GD steps.

Workload (issue 14): an MLP 128 → 256 → 256 → 1 (tanh, float64, D = 99 073 parameters) at its
random initialisation, N = 2048 synthetic samples, loss ``nn.MSELoss()`` (the criterion both
tools are given, so both see the same Hessian).

  reference   ``sgd.hessian_eigenvalues`` with tol 1e-13 (residual ‖Hv − λv‖ ≤ 1e-13·λ, so λ is
              exact to ~1e-13 relative).
  delyap      ``sgd.hessian_eigenvalues`` at the loosest tol of a half-decade ladder whose value
              (and every tighter one's) is within --accuracy (1e-6 relative) of the reference;
              default start (Jᵀ1, the gradient of the summed output) and start='random'.
  PyHessian   ``pyhessian.hessian(model, criterion, data=(X, Y)).eigenvalues(maxIter, tol)``:
              power iteration with its own stopping rule (relative change between iterates),
              at the loosest tol of the same ladder reaching the same accuracy (its only
              settings besides maxIter; its start vector is random).

Both run one HVP per iteration on the whole batch (torch autograd, the same threads); the
table gives HVP counts, wall seconds (best of --repeats) and the ratio. The monitor overhead
is GD for --gd-steps steps with and without ``SharpnessMonitor(every=10, k=1)`` (--monitor-tol),
as a fraction of the plain training time: the monitor as it was first (a full warm-started
Lanczos per call), the operator-based monitor (own HVP operator per call, residual test), and
the training-graph monitor (``monitor.backward(loss, opt)`` in place of ``loss.backward()``,
HVPs through the step's own gradient graph), interleaved in the same run;
wall and CPU seconds and HVPs per call (on a shared machine compare HVPs and CPU).

Usage:
    pip install pyhessian
    python3 benchmarks/bench_hessian.py [--quick] [--json out.json]   (after pip install .[bench])
    ... --train-steps 300     # at the edge of stability instead of the initialisation
    ... --monitor-only --train-steps 300 --monitor-lr 1.9   # the monitor during EoS training
    ... --monitor-only --monitor-smallest   # monitors that also record λ_min (smallest=True)
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import add_json_option, best_of, pick_tolerance, tolerance_ladder, write_json

from delyap import sgd


def make_problem(n_in, width, n, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(n_in, width), torch.nn.Tanh(),
                              torch.nn.Linear(width, width), torch.nn.Tanh(),
                              torch.nn.Linear(width, 1)).double()
    X = torch.randn(n, n_in, dtype=torch.float64)
    Y = torch.sin(X[:, :1]) + 0.1 * torch.randn(n, 1, dtype=torch.float64)
    return net, X, Y


def run_delyap(net, X, Y, crit, tol, start="auto", hvp="auto"):
    t0, c0 = time.perf_counter(), time.process_time()
    r = sgd.hessian_eigenvalues(net, X, Y, k=1, loss=crit, tol=tol, max_iter=300, throw=False,
                                start=start, hvp=hvp)
    return (float(r.values[0]), r.iterations), time.perf_counter() - t0, time.process_time() - c0


def run_pyhessian(net, X, Y, crit, tol, max_iter):
    from pyhessian import hessian

    torch.manual_seed(1)  # PyHessian draws its start vector from torch's global generator
    t0, c0 = time.perf_counter(), time.process_time()
    h = hessian(net, crit, data=(X, Y), cuda=False)
    calls = {"n": 0}
    import sys

    ph = sys.modules["pyhessian.hessian"]  # the module (the package exports the class by name)
    orig = ph.hessian_vector_product

    def counted(*a, **k):
        calls["n"] += 1
        return orig(*a, **k)

    ph.hessian_vector_product = counted
    try:
        vals, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
    finally:
        ph.hessian_vector_product = orig
    return (float(vals[0]), calls["n"]), time.perf_counter() - t0, time.process_time() - c0


class _LegacyMonitor:
    """What SharpnessMonitor did before the warm path (for the before/after comparison in one
    run): per call, a full Lanczos at the same tol from the previous top vector plus a 1e-3
    random part, and a separate forward pass for the recorded loss."""

    def __init__(self, net, X, Y, crit, every, tol):
        self.net, self.X, self.Y, self.crit, self.every, self.tol = net, X, Y, crit, every, tol
        self.steps, self.last, self.hvps, self.values = 0, None, [], []

    def step(self, opt):
        self.steps += 1
        if self.steps % self.every:
            return
        r = sgd.hessian_eigenvalues(self.net, self.X, self.Y, k=1, loss=self.crit, tol=self.tol,
                                    max_iter=100, seed=len(self.hvps), v0=self.last, throw=False,
                                    start="random", hvp="exact")
        with torch.no_grad():
            float(self.crit(self.net(self.X), self.Y))
        self.last = r.vectors
        self.hvps.append(r.iterations)
        self.values.append(float(r.values[0]))


MONITORS = ("plain", "before", "after", "graph", "graph_exact")


def monitor_overhead(net0, X, Y, crit, lr, steps, every, repeats=1, tol=1e-3, smallest=False):
    """Wall and CPU seconds of --gd-steps GD steps: plain, with the legacy monitor, with the
    operator-based SharpnessMonitor and with the training-graph one (best of ``repeats``,
    interleaved so that load on a shared machine hits them alike). All train the same
    trajectory (the monitors do not touch training: tested bit for bit)."""
    import copy

    def train(kind):
        net = copy.deepcopy(net0)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        mon = (None if kind == "plain" else
               _LegacyMonitor(net, X, Y, crit, every, tol) if kind == "before" else
               sgd.SharpnessMonitor(net, X, Y, every=every, loss=crit, smallest=smallest, tol=tol,
                                    hvp="exact" if kind == "graph_exact" else "auto"))
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            opt.zero_grad()
            loss = crit(net(X), Y)
            if kind.startswith("graph"):
                mon.backward(loss, opt)
            else:
                loss.backward()
            opt.step()
            if mon is not None:
                mon.step(opt)
        return mon, time.perf_counter() - t0, time.process_time() - c0

    best: dict = {}
    for _ in range(max(1, repeats)):
        for kind in MONITORS:
            mon, wall, cpu = train(kind)
            w, c, _ = best.get(kind, (float("inf"), float("inf"), None))
            best[kind] = (min(w, wall), min(c, cpu), mon)
    return best


def unit_costs(net, X, Y, crit, n=15):
    """CPU seconds of one GD step, one HVP-operator build (its forward + backward with graph,
    which also yields the loss) and one HVP: the minimum over ``n`` interleaved repetitions,
    which load from other processes can only inflate. With them, the overhead of a call of h
    HVPs every 10 steps is (build + h·HVP)/(10·step), whatever the load during the runs."""
    import copy

    from delyap.sgd.sharpness import GraphHVP, hvp_operator

    net = copy.deepcopy(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    op = hvp_operator(net, X, Y, crit, hvp="exact")
    op_fd = hvp_operator(net, X, Y, crit, hvp="difference")
    v = torch.randn(op.dim, dtype=torch.float64)

    def gd_step():
        opt.zero_grad()
        crit(net(X), Y).backward()
        opt.step()

    def forward():
        with torch.no_grad():
            float(crit(net(X), Y))

    params = list(net.parameters())
    graph: dict = {}

    def gd_step_graph():  # the training step of monitor.backward on a recorded step
        opt.zero_grad()
        loss = crit(net(X), Y)
        graph["g"] = torch.autograd.grad(loss, params, create_graph=True)
        for p, g in zip(params, graph["g"]):
            p.grad = g.detach()
        opt.step()

    # The graph HVPs on a copy that no optimizer step touches (a step modifies the
    # parameters in place, which invalidates the graph: monitor.backward runs its HVPs first).
    net2 = copy.deepcopy(net)
    params2 = list(net2.parameters())
    gop = GraphHVP(params2, list(torch.autograd.grad(crit(net2(X), Y), params2,
                                                     create_graph=True)), 0.0)
    jobs = {"step": gd_step, "build": lambda: hvp_operator(net, X, Y, crit, hvp="exact"),
            "hvp": lambda: op(v), "forward": forward, "step_graph": gd_step_graph,
            "graph_hvp": lambda: gop(v),
            "build_fd": lambda: hvp_operator(net, X, Y, crit, hvp="difference"),
            "fd_hvp": lambda: op_fd(v)}
    best = {k: float("inf") for k in jobs}
    for _ in range(n):
        for k, f in jobs.items():
            c0 = time.process_time()
            f()
            best[k] = min(best[k], time.process_time() - c0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="width 128, N = 512")
    ap.add_argument("--accuracy", type=float, default=1e-6)
    ap.add_argument("--fallback-accuracy", type=float, default=1e-5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gd-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--monitor-only", action="store_true",
                    help="skip the PyHessian comparison: the monitor's overhead only")
    ap.add_argument("--monitor-tol", type=float, default=1e-3,
                    help="the monitor's tol (its default: 1e-3)")
    ap.add_argument("--monitor-smallest", action="store_true",
                    help="the SharpnessMonitors also record λ_min (smallest=True, the monitor's "
                         "default; without it they record λ_max alone)")
    ap.add_argument("--monitor-lr", type=float, default=1.0,
                    help="monitored GD runs at η = this/λ_max(initialisation): 1 is stable "
                         "(progressive sharpening), 1.9 with --train-steps 300 continues the "
                         "pre-training at the edge of stability (λ_max hovering at 2/η)")
    ap.add_argument("--train-steps", type=int, default=0,
                    help="first train this many full-batch GD steps at η = 1.9/λ_max(init), so "
                         "that the point sits at the edge of stability (a smaller spectral gap)")
    add_json_option(ap)
    args = ap.parse_args()
    n_in, width, n = (64, 128, 512) if args.quick else (128, 256, 2048)
    torch.set_num_threads(args.threads if args.threads > 0 else max(1, torch.get_num_threads()))
    net, X, Y = make_problem(n_in, width, n)
    crit = torch.nn.MSELoss()
    D = sum(p.numel() for p in net.parameters())
    lam0 = float("nan")
    if args.train_steps:
        (lam0, _), _, _ = run_delyap(net, X, Y, crit, 1e-6)
        opt = torch.optim.SGD(net.parameters(), lr=1.9 / lam0)
        for _ in range(args.train_steps):
            opt.zero_grad()
            crit(net(X), Y).backward()
            opt.step()
        print(f"trained {args.train_steps} GD steps at η = 1.9/{lam0:.4g}")
    print(f"MLP {n_in} → {width} → {width} → 1, D = {D}, N = {n}, torch threads "
          f"{torch.get_num_threads()}")
    (ref, ref_hvps), t_ref, _ = run_delyap(net, X, Y, crit, 1e-13, hvp="exact")
    print(f"reference λ_max = {ref:.15g} ({ref_hvps} HVPs, {t_ref:.2f} s)")

    rows: list = []
    if not args.monitor_only:
        # Half decades for both tools (each rung is a full run): the finer the ladder, the closer
        # each tool's chosen tol sits to what the accuracy needs.
        ladder = tolerance_ladder(1e-1, 1e-10)

        def delyap_rows(acc):
            # The defaults (Jᵀ1 start, hvp 'auto': forward differences at these tolerances), exact
            # products from the same start, and the random start with exact products.
            for start, hvp in (("auto", "auto"), ("auto", "exact"), ("random", "exact")):
                errs = {}
                for tol in ladder:
                    (val, hv), _, _ = run_delyap(net, X, Y, crit, tol, start, hvp)
                    errs[tol] = abs(val / ref - 1)
                tol_d = pick_tolerance(errs, acc)
                (val_d, hv_d), t_d, c_d = best_of(
                    args.repeats, lambda: run_delyap(net, X, Y, crit, tol_d, start, hvp))
                rows.append({"tool": f"delyap Lanczos, start {start}, hvp {hvp}", "tol": tol_d,
                             "hvps": hv_d,
                             "rel_error": errs[tol_d], "seconds": t_d, "cpu_s": c_d,
                             "accuracy": acc})

        delyap_rows(args.accuracy)
        try:
            import pyhessian  # noqa: F401
            have_ph = True
        except ImportError:
            have_ph = False
            print("pyhessian not installed: pip install pyhessian")
        if have_ph:
            errs_p = {}
            for tol in ladder:
                (val, hv), t, _ = run_pyhessian(net, X, Y, crit, tol, 5000)
                errs_p[tol] = abs(val / ref - 1)
                print(f"  PyHessian tol {tol:.0e}: λ = {val:.12g} rel. error {errs_p[tol]:.1e}, "
                      f"{hv} HVPs, {t:.2f} s")
                if errs_p[tol] <= args.accuracy and tol < 1e-7:
                    break
            # PyHessian normalises v by (‖v‖ + 1e-6), so its Rayleigh quotient carries a relative
            # bias of ~2e-6 at ‖Hv‖ ~ 1: when --accuracy is below that floor, both tools are
            # compared at --fallback-accuracy too (and the floor is reported).
            acc = args.accuracy
            if min(errs_p.values()) > acc:
                print(f"PyHessian's best relative error is {min(errs_p.values()):.1e} > {acc:g}; "
                      f"comparing at {args.fallback_accuracy:g}")
                acc = args.fallback_accuracy
                delyap_rows(acc)
            tol_p = pick_tolerance(errs_p, acc)
            (val_p, hv_p), t_p, c_p = best_of(args.repeats,
                                              lambda: run_pyhessian(net, X, Y, crit, tol_p, 5000))
            rows.append({"tool": "PyHessian power iteration", "tol": tol_p, "hvps": hv_p,
                         "rel_error": abs(val_p / ref - 1), "seconds": t_p, "cpu_s": c_p,
                         "accuracy": acc})
        print("\n| tool | target accuracy | tol | HVPs | rel. error vs reference | wall s | "
              "CPU s |\n|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['tool']} | {r['accuracy']:.0e} | {r['tol']:.0e} | {r['hvps']} | "
                  f"{r['rel_error']:.1e} | {r['seconds']:.3f} | {r['cpu_s']:.3f} |")
        p = rows[-1]
        if p["tool"].startswith("PyHessian"):
            for d in rows[:-1]:
                if d["accuracy"] == p["accuracy"]:
                    print(f"PyHessian / {d['tool']} at relative accuracy {p['accuracy']:g}: HVPs "
                          f"{p['hvps'] / d['hvps']:.1f}×, wall {p['seconds'] / d['seconds']:.1f}×, "
                          f"CPU {p['cpu_s'] / d['cpu_s']:.1f}×")

    lr = args.monitor_lr / (lam0 if args.train_steps else ref)
    best = monitor_overhead(net, X, Y, crit, lr, args.gd_steps, 10, args.repeats,
                            tol=args.monitor_tol, smallest=args.monitor_smallest)
    pw, pc, _ = best["plain"]
    old, mon, gmon = best["before"][2], best["after"][2], best["graph"][2]
    xmon = best["graph_exact"][2]
    rec, grec = mon.records, gmon.records
    # Same trajectory for all: values must agree within the tolerance. The op-based monitor
    # records after steps 10, 20, …; the graph one before steps 0, 10, …: compare the common.
    agree = max(abs(a / b - 1) for a, b in zip(rec["sharpness"], old.values))
    common = {int(s_): v for s_, v in zip(rec["step"], rec["sharpness"])}
    gagree = max((abs(v / common[int(s_)] - 1) for s_, v in zip(grec["step"], grec["sharpness"])
                  if int(s_) in common), default=float("nan"))
    u = unit_costs(net, X, Y, crit)
    hv = {"before": np.asarray(old.hvps, dtype=float), "after": rec["hvps"].astype(float),
          "graph": grec["hvps"].astype(float),
          "graph_exact": xmon.records["hvps"].astype(float)}
    mon_json: dict = {"plain_s": pw, "plain_cpu_s": pc, "unit_cpu_s": u}
    print(f"\nmonitor every 10 GD steps ({args.gd_steps} steps, η = {lr:.4g} = 2/{2 / lr:.4g}, "
          f"tol {args.monitor_tol:g}{', smallest=True' if args.monitor_smallest else ''}), "
          f"overhead over plain GD (plain: {pw:.2f} s wall, {pc:.2f} s CPU):\n"
          f"| monitor | HVPs per call | after 5 calls | wall s | wall overhead | CPU s | "
          f"CPU overhead | cost model, steady |\n|---|---|---|---|---|---|---|---|")
    names = {"before": "first (full warm-started Lanczos, exact HVPs)",
             "after": f"monitor.step: operator per call, hvp '{mon.hvp}'",
             "graph": f"monitor.backward: the step's gradient, hvp '{gmon.hvp}'",
             "graph_exact": "monitor.backward: the step's graph, hvp 'exact'"}
    unit = {"exact": u["hvp"], "difference": u["fd_hvp"]}
    for kind in ("before", "after", "graph", "graph_exact"):
        w, c, _ = best[kind]
        h, steady = float(hv[kind].mean()), float(hv[kind][min(5, len(hv[kind]) - 1):].mean())
        # per call: before = build + h HVPs + a forward for the loss; after = build (which
        # yields the loss, and with differences the gradient) + h HVPs; graph with
        # differences = h gradients (∇L(θ) is the step's own); graph_exact = the create_graph
        # step's extra + h graph HVPs.
        model = ((u["build"] + steady * u["hvp"] + u["forward"]) if kind == "before" else
                 (u["build_fd" if mon.hvp == "difference" else "build"]
                  + steady * unit[mon.hvp]) if kind == "after" else
                 (steady * unit[gmon.hvp] if gmon.hvp == "difference" else
                  u["step_graph"] - u["step"] + steady * u["graph_hvp"]) if kind == "graph" else
                 (u["step_graph"] - u["step"] + steady * u["graph_hvp"])) / (10 * u["step"])
        mon_json[kind] = {"monitored_s": w, "cpu_s": c, "overhead": w / pw - 1,
                          "cpu_overhead": c / pc - 1, "hvps_per_call": h, "steady_hvps": steady,
                          "model_overhead": model}
        print(f"| {names[kind]} | {h:.2f} | {steady:.2f} | {w:.2f} | {100 * (w / pw - 1):.0f} % "
              f"| {c:.2f} | {100 * (c / pc - 1):.0f} % | {100 * model:.0f} % |")
    mon_json["after"].update(fallbacks=int(rec["fallback"].sum()),
                             max_rel_residual=float(np.max(rec["residual"] / rec["sharpness"])),
                             max_rel_diff_to_before=agree)
    mon_json["graph"].update(fallbacks=int(grec["fallback"].sum()),
                             max_rel_residual=float(np.max(grec["residual"] / grec["sharpness"])),
                             max_rel_diff_to_after=gagree)
    # the figures of the target (≤ 20 %): the training-graph monitor's
    mon_json.update(monitored_s=best["graph"][0], overhead=best["graph"][1] / pc - 1,
                    hvps_per_call=float(hv["graph"].mean()))
    print(f"cost model: min CPU s over 15 interleaved runs: GD step {u['step']:.4f}, GD step "
          f"with create_graph {u['step_graph']:.4f}, operator build {u['build']:.4f}, HVP "
          f"{u['hvp']:.4f}, graph HVP {u['graph_hvp']:.4f}, forward {u['forward']:.4f}, "
          f"difference operator build {u['build_fd']:.4f}, difference HVP {u['fd_hvp']:.4f}")
    print(f"fallbacks: operator monitor {int(rec['fallback'].sum())}, graph monitor "
          f"{int(grec['fallback'].sum())} of {len(grec['hvps'])}; max residual/λ (graph) "
          f"{mon_json['graph']['max_rel_residual']:.1e}; max relative difference operator vs "
          f"first {agree:.1e}, graph vs operator {gagree:.1e}")
    write_json(args.json, args, {"D": D, "N": n, "reference": ref, "rows": rows,
                                 "monitor": mon_json})


if __name__ == "__main__":
    main()
