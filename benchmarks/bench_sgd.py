"""SGD stability-map benchmark: delyap's Gram algorithm vs numpy and a dense D × D torch baseline.

Workload (the issue's): an MLP 8 → 96 → 96 → 1 (tanh, float64, D = 10 273 parameters) trained to
interpolate N = 512 synthetic regression samples (Levenberg–Marquardt,
``sgd.train_to_interpolation``; timed apart), then a stability map of 64 (η, B)
configurations -- 8 learning rates geometrically spaced around the GD limit 2/λ_max(H),
λ_max(H) = λ_max(K)/N, × batch sizes 1, 2, …, 128 (i.i.d. with replacement) -- with 10⁴ SGD
steps each and the top 4 Lyapunov exponents (QR every 10 steps).

  delyap  ``sgd.gram_lyapunov`` on K = J Jᵀ: all 64 configurations in one C++ call
          (default threads and threads=1); ``sgd.stability_map`` timed too.
  (a)     the same Gram algorithm in numpy (peers_sgd.numpy_gram_lyapunov), one BLAS thread,
          one configuration after another. Target: delyap >= 5x faster.
  (b)     the dense parameter-space product in torch (peers_sgd.DenseSGD): H_ξ = (1/B) J_ξᵀ J_ξ
          formed as a D × D matrix every step, one torch thread. O(D²·B) per step, so it is
          timed per batch size over a time budget and extrapolated to the whole map, and
          repeated for MLP widths giving D ≈ 500 … 10⁴ next to delyap (whose cost depends on
          N, B and k only once K is built; the Gram build, O(N·D) memory, is timed apart).

Timing: wall time (best of --repeats for delyap; for (a), whose cost does not depend on η,
the fastest of the 8 configurations at each B, times 8) plus process CPU time, which is what
the per-B and D-scaling tables use (single-core, less sensitive to other load on a shared
box). Everything runs with one BLAS thread (threadpoolctl), as in bench_mackey_glass; delyap's
own threads are not BLAS threads. The D-scaling runs delyap on a precomputed
``sgd.gram_spectrum`` so K's eigh (a fixed cost, timed apart) is not scaled with the steps.
Note that delyap's cost depends on rank K as well: below full rank (the width-18 model,
D = 523) it projects the directions on range(K) at every QR, O(rank·N·k) each.

Agreement: delyap vs (a) on every configuration and exponent within 4 combined standard errors
(+ a 1e-6 floor; different random streams, so statistical agreement). (b) vs delyap on one
configuration of a width-40 model (D = 2041, trained to interpolation, so dense steps are cheap
enough to run a few thousand), within 4 combined standard errors plus the finite-time
boundary term log(N·cond K)/steps; and (b) vs (a) on the same index stream with u₀ = J δ₀,
where only boundary terms can differ: |Δλ_j| <= (j − ½) log(cond K) / steps.

Usage:
    python benchmarks/bench_sgd.py            # full (~4-5 min on 2 cores)
    python benchmarks/bench_sgd.py --quick    # 2000 steps, fewer timings (<1 min)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import peers_sgd as ps
from _common import add_json_option, best_of, single_blas_thread, write_json
from _common import timed_cpu as timed

TARGET_RATIO = 5.0       # numpy (a) time / delyap time must be at least this
Z_MAX = 4.0              # |Δ| <= Z_MAX · combined stderr + floor
FLOOR = 1e-6
N_SAMPLES = 512
IN_DIM = 8
WIDTH = 96               # D = w² + 11 w + 1 = 10 273
K_EXP = 4
RENORM = 10
# The batch law and transient of the peers (with replacement, no transient), for delyap too.
SAME_WORK = dict(sampling="iid", transient=0)
BATCHES = 2 ** np.arange(8)              # 1 … 128
LR_FACTORS = np.geomspace(0.05, 2.0, 8)  # × the GD limit 2 / λ_max(H)
SCALING_WIDTHS = (18, 40, 66, 96)        # D = 523, 2041, 5083, 10273
CHECK_WIDTH = 40
CHECK_B = 8


def make_data(seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.randn((N_SAMPLES, IN_DIM), dtype=torch.float64, generator=g)
    w = torch.randn((IN_DIM, 1), dtype=torch.float64, generator=g) / np.sqrt(IN_DIM)
    Y = torch.sin(2.0 * X @ w) + 0.1 * torch.randn((N_SAMPLES, 1), dtype=torch.float64, generator=g)
    return X, Y


def make_mlp(width, seed=1):
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(IN_DIM, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                         nn.Linear(width, 1)).double()


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def jacobian(model, X):
    """N × D per-sample output gradients (torch.func), parameters in ``parameters()`` order."""
    import torch

    params = {n: p.detach() for n, p in model.named_parameters()}

    def f(p, x):
        return torch.func.functional_call(model, p, (x.unsqueeze(0),)).reshape(-1)

    jac = torch.func.vmap(torch.func.jacrev(f), in_dims=(None, 0))(params, X)
    return torch.cat([j.reshape(X.shape[0], -1) for j in jac.values()], dim=1)


def spectrum_info(K):
    ev = np.linalg.eigvalsh(K)
    kmax = ev[-1]
    kmin = max(ev[0], kmax * 1e-16)
    return kmax, kmax / kmin


def load_average() -> float:
    try:
        with open("/proc/loadavg") as fh:
            return float(fh.read().split()[0])
    except OSError:
        return float("nan")


def z_check(a, sa, b, sb, floor=FLOOR):
    d = np.abs(a - b)
    s = np.sqrt(sa ** 2 + sb ** 2)
    return d, d / np.where(s > 0, s, np.inf), d <= Z_MAX * s + floor


def fmt_s(x):
    if not np.isfinite(x):
        return "-"
    if x >= 3600:
        return f"{x / 3600:.1f} h"
    return f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def fit_cost(Bs_measured, t_measured, Bs):
    """Per-step seconds at each B in Bs: measured where available, else t = a + b·B fitted."""
    Bm = np.asarray(Bs_measured, float)
    tm = np.asarray(t_measured, float)
    A = np.stack([np.ones_like(Bm), Bm], axis=1)
    coef = np.linalg.lstsq(A, tm, rcond=None)[0]
    lookup = dict(zip(Bs_measured, t_measured))
    return np.array([lookup.get(int(b), coef[0] + coef[1] * b) for b in Bs])


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2000 steps, widths 40/96 for D-scaling, short dense runs, no repeats")
    ap.add_argument("--steps", type=int, default=None, help="SGD steps per configuration (10000)")
    ap.add_argument("--threads", type=int, default=None,
                    help="delyap threads (default: delyap's choice); threads=1 is also timed")
    ap.add_argument("--repeats", type=int, default=2, help="best-of-N for delyap")
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch threads for (b) (default 1)")
    ap.add_argument("--numpy-budget", type=float, default=180.0,
                    help="seconds (a) may take; beyond it a subset of lrs per B is run and scaled")
    ap.add_argument("--dense-budget", type=float, default=None,
                    help="seconds of dense stepping per (D, B) timing (default 1.5, quick 0.3)")
    ap.add_argument("--check-steps", type=int, default=None,
                    help="dense steps for the (b) agreement check (default 2000, quick 300)")
    ap.add_argument("--seed", type=int, default=0)
    add_json_option(ap)
    args = ap.parse_args()
    # As in bench_mackey_glass: the whole run with one BLAS thread (delyap's own threads are not
    # BLAS). This matters beyond fairness: numpy's 2-thread OpenBLAS eigh of a 512 × 512 K, which
    # sgd.gram_lyapunov runs on every call, takes ~4 s instead of ~0.1 s when the box is busy.
    with single_blas_thread():
        run(args)


def run(args):
    import torch

    from delyap import sgd

    steps = args.steps or (2000 if args.quick else 10_000)
    repeats = 1 if args.quick else args.repeats
    dense_budget = args.dense_budget or (0.3 if args.quick else 1.5)
    dense_min_steps = 2 if args.quick else 3
    check_steps = args.check_steps or (300 if args.quick else 2000)
    scale_steps = 500 if args.quick else 1000
    widths = (40, WIDTH) if args.quick else SCALING_WIDTHS
    n_cfg = len(BATCHES) * len(LR_FACTORS)
    wall0 = time.perf_counter()
    load0 = load_average()
    print(f"load average at start: {load0:.2f} (timings on a shared 2-core box are only as "
          f"quiet as the box)")

    # ---- model, data, interpolation
    X, Y = make_data(args.seed)
    model = make_mlp(WIDTH, seed=args.seed + 1)
    D = n_params(model)
    rep, t_train, _ = timed(sgd.train_to_interpolation, model, X, Y)
    print(f"model: MLP {IN_DIM}→{WIDTH}→{WIDTH}→1 tanh float64, D = {D}, N = {N_SAMPLES}; "
          f"train_to_interpolation {t_train:.2f} s, {rep['iterations']} LM iterations, "
          f"loss {rep['loss']:.1e}, residual rms {rep['residual_rms']:.1e} (not in any timing)")

    with ps.PeakMemory() as mem_gram:
        (K, c), t_gram, _ = best_of(repeats, lambda: timed(sgd.gram_matrix, model, X))
    J, t_jac, _ = timed(jacobian, model, X)
    K_own = (J @ J.T).numpy()
    kerr = np.max(np.abs(K_own - K)) / np.max(np.abs(K))
    kmax, cond = spectrum_info(K)
    lam_h = kmax / N_SAMPLES
    lr_gd = 2.0 / lam_h
    lrs = lr_gd * LR_FACTORS
    spec, t_spec, _ = timed(sgd.gram_spectrum, K)
    print(f"Gram K = J Jᵀ: sgd.gram_matrix {t_gram:.3f} s (peak +{mem_gram.mib:.0f} MiB), "
          f"sgd.gram_spectrum (eigh, rank {spec.rank}) {t_spec:.3f} s, "
          f"own torch.func Jacobian {t_jac:.3f} s, max rel |ΔK| {kerr:.1e}; "
          f"λ_max(H) = {lam_h:.4g}, GD limit 2/λ_max(H) = {lr_gd:.4g}, cond K = {cond:.2e}")
    print(f"map: lr = {', '.join(f'{f:.3g}' for f in LR_FACTORS)} × GD limit; "
          f"B = {', '.join(str(b) for b in BATCHES)}; {steps} steps, {K_EXP} exponents, "
          f"QR every {RENORM}")

    L, Bg = np.meshgrid(lrs, BATCHES)  # [B index, lr index], as stability_map
    lr_v, b_v = L.ravel(), Bg.ravel()

    # ---- delyap
    def dl_run(th, n_steps=steps, KK=K, lr_=lr_v, b_=b_v):
        # The peers draw batches with replacement and average from step 0: delyap does the
        # same work (its defaults are B distinct samples and an automatic transient).
        return timed(sgd.gram_lyapunov, KK, lr_, b_, steps=n_steps, n_exponents=K_EXP,
                     seed=args.seed, renorm_interval=RENORM, threads=th, **SAME_WORK)

    dl_run(args.threads, n_steps=100)  # first-call cost
    th_label = args.threads or f"default ({os.cpu_count()} cores)"
    with ps.PeakMemory() as mem_dl:
        res, t_dl, c_dl = best_of(repeats, lambda: dl_run(args.threads))
    rows = [(f"delyap gram_lyapunov, threads={th_label}", t_dl, c_dl)]
    t_dl1 = c_dl1 = None
    if args.threads != 1:
        _, t_dl1, c_dl1 = best_of(repeats, lambda: dl_run(1))
        rows.append(("delyap gram_lyapunov, threads=1", t_dl1, c_dl1))
    else:
        t_dl1, c_dl1 = t_dl, c_dl
    _, t_map, c_map = timed(sgd.stability_map, K, lr=lrs, batch_size=BATCHES, steps=steps,
                            n_exponents=K_EXP, mean_square=False, seed=args.seed,
                            threads=args.threads, progress=False, **SAME_WORK)
    rows.append(("delyap stability_map(mean_square=False), same threads", t_map, c_map))
    ex_d = res.exponents.reshape(len(BATCHES), len(lrs), K_EXP)
    se_d = res.stderr.reshape(ex_d.shape)
    print(f"delyap: {t_dl:.2f} s wall for {n_cfg} configurations (peak +{mem_dl.mib:.1f} MiB; "
          f"K is {K.nbytes / 2**20:.1f} MiB)")
    # per-B cost on one thread (CPU time: robust to other load on the box; K's eigh excluded)
    bd_steps = max(200, steps // 5)
    bd_repeats = 1 if args.quick else 2
    c_dl_b = []
    for b in BATCHES:
        _, _, cpu = best_of(bd_repeats, lambda: dl_run(1, n_steps=bd_steps, KK=spec, lr_=lrs,
                                                       b_=np.full(len(lrs), b)))
        c_dl_b.append(cpu / (len(lrs) * bd_steps))

    # ---- (a) numpy
    with single_blas_thread():
        pilot = []
        for b in BATCHES:
            *_, sec, _ = ps.numpy_gram_lyapunov(K, lrs[0], int(b), 200, K_EXP,
                                                np.random.default_rng(12345))
            pilot.append(sec / 200)
        est = float(np.sum(pilot)) * len(lrs) * steps
        n_lr_run = len(lrs) if est <= args.numpy_budget else \
            max(1, int(len(lrs) * args.numpy_budget / est))
        lr_sel = np.unique(np.round(np.linspace(0, len(lrs) - 1, n_lr_run)).astype(int))
        ex_n = np.full_like(ex_d, np.nan)
        se_n = np.full_like(ex_d, np.nan)
        t_np = np.full((len(BATCHES), len(lrs)), np.nan)
        c_np = np.full_like(t_np, np.nan)
        for i, b in enumerate(BATCHES):
            for j in lr_sel:
                rng = np.random.default_rng([args.seed, i, j])
                ex_n[i, j], se_n[i, j], t_np[i, j], c_np[i, j] = ps.numpy_gram_lyapunov(
                    K, lrs[j], int(b), steps, K_EXP, rng, renorm=RENORM)
    # The lr does not change the cost, so the configurations at one B are repeats of the same
    # work: best-of over them (as best-of for delyap), times the number of lrs.
    t_numpy = float(np.sum(np.nanmin(t_np, axis=1)) * len(lrs))
    c_np_b = np.nanmin(c_np, axis=1)
    c_numpy = float(np.sum(c_np_b) * len(lrs))
    ran = int(np.sum(np.isfinite(t_np)))
    note = "" if ran == n_cfg else f" (extrapolated: ran {ran}/{n_cfg} configurations)"
    print(f"(a) numpy: {t_numpy:.2f} s wall = {len(lrs)} × Σ_B (fastest configuration at that B)"
          f"{note}; the measured runs took {np.nansum(t_np):.2f} s")
    rows.append(("(a) numpy Gram algorithm, 1 BLAS thread" + (" (extrap.)" if note else ""),
                 t_numpy, c_numpy))

    # ---- delyap vs (a)
    d, z, ok = z_check(ex_d, se_d, ex_n, se_n)
    have = np.isfinite(ex_n[..., 0])
    ok_a = bool(np.all(ok[have]))
    print(f"agreement delyap vs (a) on {int(have.sum())} configurations "
          f"(|Δ| <= {Z_MAX:g}·σ_comb + {FLOOR:g}): "
          + ", ".join(f"λ{m + 1} {int(ok[..., m][have].sum())}/{int(have.sum())} "
                      f"(max z {np.nanmax(z[..., m][have]):.1f})" for m in range(K_EXP))
          + f" -> {'agree' if ok_a else 'DISAGREE'}")
    print("λ1 per step from delyap (* where it is > 2 combined stderr from numpy's); rows B, "
          "columns lr / GD limit:")
    print(f"{'B':>5} " + " ".join(f"{f:>11.3g}" for f in LR_FACTORS))
    for i, b in enumerate(BATCHES):
        cells = []
        for j in range(len(lrs)):
            cell = f"{ex_d[i, j, 0]:+.2e}" + ("*" if have[i, j] and z[i, j, 0] > 2 else "")
            cells.append(f"{cell:>11}")
        print(f"{b:>5} " + " ".join(cells))
    i, j, m = np.unravel_index(np.nanargmax(np.where(have[..., None], z, np.nan)), z.shape)
    print(f"  worst: B={BATCHES[i]}, lr={LR_FACTORS[j]:.3g}×, λ{m + 1}: delyap "
          f"{ex_d[i, j, m]:+.4e} ± {se_d[i, j, m]:.1e}, numpy {ex_n[i, j, m]:+.4e} ± "
          f"{se_n[i, j, m]:.1e}, z = {z[i, j, m]:.2f}")

    # ---- (b) dense: per-step cost by D (and memory), delyap at the same D (both 1 thread)
    print(f"(b) dense timing: {dense_budget:g} s (>= {dense_min_steps} steps) per (D, B), "
          f"torch threads={args.torch_threads}; delyap (threads=1) map over {scale_steps} steps, "
          f"scaled to {steps}")
    scaling = []
    for w in widths:
        if w == WIDTH:
            J_w, K_w, t_gram_w, mem_gram_w = J, K, t_gram, mem_gram.mib
        else:
            m_w = make_mlp(w, seed=args.seed + 1)   # untrained: the cost does not depend on it
            with ps.PeakMemory() as mg:
                (K_w, _), t_gram_w, _ = timed(sgd.gram_matrix, m_w, X)
            mem_gram_w = mg.mib
            J_w = jacobian(m_w, X)
        D_w = J_w.shape[1]
        spec_w = sgd.gram_spectrum(K_w)  # its eigh is a fixed cost: keep it out of the scaling
        with ps.PeakMemory() as md:
            _, _, c_dl_w = dl_run(1, n_steps=scale_steps, KK=spec_w)
        B_meas = list(BATCHES) if (w == WIDTH and not args.quick) else [1, 16, 128]
        with ps.torch_threads(args.torch_threads), ps.PeakMemory() as mdense:
            dense = ps.DenseSGD(J_w)
            per = [dense.seconds_per_step(int(b), K_EXP, time_budget=dense_budget,
                                          min_steps=dense_min_steps) for b in B_meas]
            del dense
        wall_all = fit_cost(B_meas, [p[0] for p in per], BATCHES)
        cpu_all = fit_cost(B_meas, [p[1] for p in per], BATCHES)
        scaling.append(dict(w=w, D=D_w, rank=spec_w.rank, t_gram=t_gram_w, mem_gram=mem_gram_w,
                            dl_map=c_dl_w * steps / scale_steps, mem_dl=md.mib,
                            measured=set(int(b) for b in B_meas), cpu_all=cpu_all,
                            mem_dense=mdense.mib,
                            dense_map=float(np.sum(cpu_all)) * len(lrs) * steps,
                            dense_map_wall=float(np.sum(wall_all)) * len(lrs) * steps,
                            fitted=len(B_meas) < len(BATCHES)))
        print(f"  D={D_w}: dense CPU s/step " + ", ".join(f"B={b}: {p[1]:.4f}"
                                                         for b, p in zip(B_meas, per)), flush=True)
    main_row = next(s for s in scaling if s["w"] == WIDTH)
    rows.append((f"(b) dense D×D torch, {args.torch_threads} thread (extrap.)",
                 main_row["dense_map_wall"], main_row["dense_map"]))
    t_dense = main_row["dense_map_wall"]

    # ---- (b) agreement on one configuration, width-40 model at an interpolating minimum
    mc = make_mlp(CHECK_WIDTH, seed=args.seed + 2)
    rep_c, t_train_c, _ = timed(sgd.train_to_interpolation, mc, X, Y)
    Jc = jacobian(mc, X)
    Kc = (Jc @ Jc.T).numpy()
    kmax_c, cond_c = spectrum_info(Kc)
    lr_c = 2.0 / (kmax_c / N_SAMPLES)  # its own GD limit
    res_c = sgd.gram_lyapunov(Kc, lr_c, CHECK_B, steps=steps, n_exponents=K_EXP, seed=args.seed,
                              renorm_interval=RENORM, **SAME_WORK)
    rng = np.random.default_rng([args.seed, 99])
    idx = rng.integers(0, N_SAMPLES, size=(check_steps, CHECK_B))
    with ps.torch_threads(args.torch_threads):
        dense = ps.DenseSGD(Jc)
        Q0 = dense.start(K_EXP, torch.Generator().manual_seed(args.seed))
        ex_b, se_b, t_b_run, *_ = dense.run(lr_c, CHECK_B, Q0.clone(), idx, renorm=RENORM)
        del dense
    u0 = (Jc @ Q0).numpy()
    with single_blas_thread():
        ex_s, *_ = ps.numpy_gram_lyapunov(Kc, lr_c, CHECK_B, check_steps, K_EXP, None,
                                          renorm=RENORM, u0=u0, idx=idx)
    bterm = np.log(N_SAMPLES * cond_c) / check_steps
    _, z_b, ok_b1 = z_check(res_c.exponents, res_c.stderr, ex_b, se_b, floor=bterm)
    bound_s = (np.arange(1, K_EXP + 1) - 0.5) * np.log(cond_c) / check_steps
    d_s = np.abs(ex_s - ex_b)
    ok_b2 = d_s <= bound_s
    ok_b = bool(np.all(ok_b1) and np.all(ok_b2))
    print(f"(b) check: MLP width {CHECK_WIDTH} (D={Jc.shape[1]}) trained in {t_train_c:.2f} s "
          f"(loss {rep_c['loss']:.1e}), cond K = {cond_c:.2e}; lr = its GD limit = {lr_c:.4g}, "
          f"B = {CHECK_B}; dense {check_steps} steps in {t_b_run:.1f} s, delyap {steps} steps")
    print(f"{'':4}{'delyap':>22} {'(b) dense':>22} {'z':>6} {'(a) same ξ':>12} {'|Δ| vs (b)':>11} "
          f"{'bound':>9}")
    for m in range(K_EXP):
        print(f"λ{m + 1:<3}{res_c.exponents[m]:>+11.5f} ± {res_c.stderr[m]:.5f} "
              f"{ex_b[m]:>+11.5f} ± {se_b[m]:.5f} {z_b[m]:>6.2f} {ex_s[m]:>+12.5f} "
              f"{d_s[m]:>11.2e} {bound_s[m]:>9.2e}")
    print(f"    delyap vs (b): |Δ| <= {Z_MAX:g}·σ_comb + log(N·cond K)/steps ({bterm:.1e}): "
          f"{'yes' if np.all(ok_b1) else 'NO'}; (a) on the same index stream and start vs (b): "
          f"within the boundary-term bound: {'yes' if np.all(ok_b2) else 'NO'} -> "
          f"{'agree' if ok_b else 'DISAGREE'}")

    # ---- tables
    print()
    print(f"per-B cost, CPU µs per configuration-step, 1 thread each: delyap (best of "
          f"{bd_repeats}, {bd_steps} steps), numpy (fastest lr in (a)), dense (b) at D={D} "
          f"(~ = fitted a + b·B)")
    print(f"{'B':>5} {'delyap':>9} {'numpy':>9} {'numpy/dl':>9} {'dense':>12} {'dense/dl':>10}")
    for i, b in enumerate(BATCHES):
        cd_, cn_, cb_ = c_dl_b[i] * 1e6, c_np_b[i] / steps * 1e6, main_row["cpu_all"][i] * 1e6
        fit = "" if int(b) in main_row["measured"] else "~"
        print(f"{b:>5} {cd_:>9.1f} {cn_:>9.1f} {cn_ / cd_:>9.2f} {fit + f'{cb_:.0f}':>12} "
              f"{cb_ / cd_:>10.0f}")
    print(f"  all B: delyap {np.sum(c_dl_b) * 1e6:.0f}, numpy {np.sum(c_np_b) / steps * 1e6:.0f} "
          f"-> numpy/delyap {np.sum(c_np_b) / steps / np.sum(c_dl_b):.2f} per core")

    print()
    print(f"D-scaling, N={N_SAMPLES}, {n_cfg} configs × {steps} steps, single-core CPU seconds "
          f"(delyap threads=1; dense extrapolated from its per-step cost"
          f"{', ~ = fitted a + b·B' if any(s['fitted'] for s in scaling) else ''}); "
          f"MiB = peak RSS growth")
    print(f"{'width':>5} {'D':>6} {'rank K':>6} {'Gram s':>7} {'Gram MiB':>9} {'delyap map':>11} "
          f"{'dl MiB':>7} {'dense s/step B=1':>17} {'B=128':>8} {'H=D²·8 MiB':>11} "
          f"{'dense MiB':>10} {'dense map':>10} {'dense/dl':>9}")
    for s in scaling:
        def fmt_t(b, s=s):
            return ("" if b in s["measured"] else "~") + \
                f"{s['cpu_all'][list(BATCHES).index(b)]:.4f}"
        print(f"{s['w']:>5} {s['D']:>6} {s['rank']:>6} {s['t_gram']:>7.3f} {s['mem_gram']:>9.0f} "
              f"{fmt_s(s['dl_map']):>11} {s['mem_dl']:>7.1f} {fmt_t(1):>17} {fmt_t(128):>8} "
              f"{s['D'] ** 2 * 8 / 2**20:>11.0f} {s['mem_dense']:>10.0f} "
              f"{fmt_s(s['dense_map']):>10} {s['dense_map'] / s['dl_map']:>9.0f}")

    print()
    print(f"stability map: {n_cfg} configurations × {steps} steps, {K_EXP} exponents, "
          f"N={N_SAMPLES}, "
          f"D={D} (Gram build {t_gram:.2f} s and training {t_train:.1f} s not included); "
          f"CPU = process CPU time, all threads")
    print(f"{'workload':<62} {'wall':>9} {'CPU':>9} {'(a)/this':>9} {'(b)/this':>9}")
    for label, t, cpu in rows:
        print(f"{label:<62} {fmt_s(t):>9} {fmt_s(cpu):>9} {t_numpy / t:>9.2f} {t_dense / t:>9.0f}")
    ratio = t_numpy / t_dl
    print(f"target (a) numpy / delyap >= {TARGET_RATIO:g} (wall, delyap threads={th_label}): "
          f"{ratio:.2f} -> {'yes' if ratio >= TARGET_RATIO else 'NO'}; "
          f"per core (CPU, delyap threads=1): {c_numpy / c_dl1:.2f}")
    dl_maps = [s["dl_map"] for s in scaling]
    print(f"D-scaling: dense map {fmt_s(scaling[0]['dense_map'])} -> "
          f"{fmt_s(scaling[-1]['dense_map'])} and H {scaling[0]['D'] ** 2 * 8 / 2**20:.0f} -> "
          f"{scaling[-1]['D'] ** 2 * 8 / 2**20:.0f} MiB for D {scaling[0]['D']} -> "
          f"{scaling[-1]['D']}; delyap map {fmt_s(min(dl_maps))} .. {fmt_s(max(dl_maps))} "
          f"(depends on rank K, not D)")
    if max(load0, load_average()) > 0.8:
        print(f"WARNING: the box was busy (load average {load0:.2f} at start, "
              f"{load_average():.2f} at end on {os.cpu_count()} cores): other processes share "
              f"the cores and caches, so times and ratios are noisy; rerun when idle")
    print(f"agreement: delyap vs (a) {'yes' if ok_a else 'NO'}, delyap/(a) vs (b) "
          f"{'yes' if ok_b else 'NO'}; wall time {time.perf_counter() - wall0:.0f} s, "
          f"load average {load0:.2f} at start, {load_average():.2f} at end")
    write_json(args.json, args, {
        "steps": steps, "configurations": n_cfg, "n_exponents": K_EXP, "D": D, "N": N_SAMPLES,
        "target": TARGET_RATIO, "numpy_over_delyap": ratio,
        "numpy_over_delyap_per_core": c_numpy / c_dl1,
        "rows": [{"workload": label, "wall_s": t, "cpu_s": cpu, "numpy_over_this": t_numpy / t,
                  "dense_over_this": t_dense / t} for label, t, cpu in rows],
        "per_batch_cpu_us": {"B": BATCHES, "delyap": np.asarray(c_dl_b) * 1e6,
                             "numpy": np.asarray(c_np_b) / steps * 1e6},
        "d_scaling": [{k: v for k, v in s.items() if k in ("w", "D", "rank", "t_gram", "dl_map",
                                                         "dense_map")} for s in scaling],
        "agree_numpy": ok_a, "agree_dense": ok_b,
        "load_average": [load0, load_average()]})


if __name__ == "__main__":
    main()
