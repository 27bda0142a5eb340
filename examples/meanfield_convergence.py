"""Finite-N Kuramoto networks against the Ott–Antonsen mean field (Lorentzian frequencies).

Left: the time-averaged order parameter r of N = 1000 oscillators on a random graph W ≡ 0.2
(in-degree normalised) against the Ott–Antonsen r∞ = √(1 − 2γ/K), with K_c = 2γ marked.
Right: |r − r∞| against N on the complete graph, for the Lorentzian's deterministic quantiles
(no sampling noise) and for i.i.d. draws (mean over seeds), with an N^(−1/2) guide.

    python examples/meanfield_convergence.py            # writes docs/meanfield_convergence.png
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from delyap import meanfield


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" /
                                         "meanfield_convergence.png"))
    ap.add_argument("--quick", action="store_true", help="smaller N (a few seconds)")
    args = ap.parse_args()
    gamma = 0.5
    Kc = meanfield.critical_coupling("lorentzian", gamma)
    t0 = time.perf_counter()

    # r against K on a sampled graph.
    Ks = np.linspace(0.25, 4.0, 16)
    n_curve = 300 if args.quick else 1000
    curve = meanfield.convergence([n_curve], Ks, gamma=gamma, graph=0.2, t_final=60.0,
                                  t_average=30.0)
    # The mean field itself, integrated (not only its closed form): its end state.
    oa = meanfield.ott_antonsen(0.0, gamma, Ks, t_span=(0, 200))
    print(f"r vs K (N = {n_curve}, W ≡ 0.2): max |r − r∞| = "
          f"{np.max(curve['error']):.4f} (above K_c: "
          f"{np.max(curve['error'][0][Ks > 1.5 * Kc]):.4f}); OA run vs closed form "
          f"{np.max(np.abs(oa.r[:, -1] - oa.r_inf)[Ks > 1.5 * Kc]):.1e} (K > 1.5 K_c)")

    # Error against N on the complete graph.
    ns = [100, 200, 400, 800] if args.quick else [100, 200, 400, 800, 1600]
    ns_rnd = ns[:4]  # the random tails (|ω| up to ~N) make large draws slow
    K_err = np.array([2.0, 3.0])
    det = meanfield.convergence(ns, K_err, gamma=gamma, t_final=40.0, t_average=20.0)
    seeds = range(3 if args.quick else 6)
    # Root mean square over seeds: the sampling error's size.
    rnd = np.sqrt(np.mean([meanfield.convergence(ns_rnd, K_err, gamma=gamma, t_final=40.0,
                                                 t_average=20.0, deterministic=False,
                                                 seed=s)["error"] ** 2 for s in seeds], axis=0))
    for name, nv, err in (("quantiles", ns, det["error"]), ("random draws (rms)", ns_rnd, rnd)):
        for j, K in enumerate(K_err):
            slope = np.polyfit(np.log(nv), np.log(err[:, j]), 1)[0]
            print(f"K = {K:g}, {name}: |r − r∞| = "
                  + ", ".join(f"{e:.4f}" for e in err[:, j]) + f"  (log-log slope {slope:.2f})")
    print(f"3/√N at N = {ns[-1]}: {3 / np.sqrt(ns[-1]):.4f}; "
          f"total {time.perf_counter() - t0:.0f} s")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    Kf = np.linspace(0.0, 4.0, 400)
    a.plot(Kf, meanfield.stationary_r(gamma, Kf), "k-", label="Ott–Antonsen r∞")
    a.plot(Ks, curve["r"][0], "o", label=f"N = {n_curve}, W ≡ 0.2")
    a.axvline(Kc, ls="--", c="gray", label=f"K_c = 2γ = {Kc:g}")
    a.set(xlabel="K", ylabel="r (time average)", title="Lorentzian γ = 0.5")
    a.legend()
    for j, K in enumerate(K_err):
        b.loglog(ns, det["error"][:, j], "o-", label=f"K = {K:g}, quantiles")
        b.loglog(ns_rnd, rnd[:, j], "s--", label=f"K = {K:g}, random draws (rms)")
    nn = np.array(ns, dtype=float)
    b.loglog(nn, 0.5 / np.sqrt(nn), "k:", label="N^(−1/2)")
    b.set(xlabel="N (complete graph)", ylabel="|r − r∞|", title="finite-N error")
    b.legend(fontsize=8)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
