"""Depth-wise Lyapunov spectra of random tanh networks over a (σ_w, σ_b) grid: delyap's C++
sweep vs a numpy QR loop with one BLAS thread.

Workload (issue 14): width 512, depth 100, a 20 × 20 grid σ_w ∈ [0.5, 2.5] × σ_b ∈ [0, 0.5]
(``--quick``: 4 × 4), --k exponents (default 8) from --inputs inputs (default 4) per network.

  delyap  ``delyap.lyapunov.layer_spectrum_sweep``: layers drawn on the fly (Philox), one GEMM
          per layer for all inputs and frames, blocked QR, grid points in parallel (default
          threads, and threads=1).
  numpy   the same algorithm (x ← tanh(Wx + b), Q ← QR(diag(φ') W Q), per input), numpy's
          generator, one BLAS thread (threadpoolctl), one grid point after another. Its cost
          does not depend on (σ_w, σ_b), so it is timed on --numpy-points points and scaled to
          the grid.

Agreement: different random draws, so statistical: at the numpy points, |Δλ₁| within 4
combined standard errors (over inputs) plus the network-to-network spread, which the standard
error over inputs of one network does not cover; the table gives both.

Usage:
    python3 benchmarks/bench_layer_spectrum.py [--quick] [--json out.json]  (installed delyap)
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import add_json_option, single_blas_thread, write_json

from delyap.lyapunov import layer_spectrum_sweep


def numpy_point(width, depth, sw, sb, k, n_inputs, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_inputs, width))
    q0 = np.linalg.qr(rng.standard_normal((width, k)))[0]
    Q = np.broadcast_to(q0, (n_inputs, width, k)).copy()
    logs = np.zeros((n_inputs, k))
    for _ in range(depth):
        W = rng.standard_normal((width, width)) * (sw / np.sqrt(width))
        b = sb * rng.standard_normal(width)
        h = x @ W.T + b
        x = np.tanh(h)
        d = 1.0 - x * x
        WQ = np.einsum("ij,njk->nik", W, Q)
        Q, R = np.linalg.qr(d[:, :, None] * WQ)
        logs += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
    per = -np.sort(-logs / depth, axis=1)
    return per.mean(axis=0), per.std(axis=0, ddof=1) / np.sqrt(n_inputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 × 4 grid")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--numpy-points", type=int, default=4)
    add_json_option(ap)
    args = ap.parse_args()
    n = 4 if args.quick else 20
    sw = np.linspace(0.5, 2.5, n)
    sb = np.linspace(0.0, 0.5, n)
    N, L, k, m = args.width, args.depth, args.k, args.inputs
    print(f"width {N}, depth {L}, grid {n} × {n}, k = {k}, {m} inputs per network")
    t0 = time.perf_counter()
    res = layer_spectrum_sweep(N, L, sw, sb, n_exponents=k, n_inputs=m)
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    layer_spectrum_sweep(N, L, sw[:2], sb[:2], n_exponents=k, n_inputs=m, threads=1)
    t_one = (time.perf_counter() - t0) / 4 * n * n   # per point, scaled to the grid
    rng = np.random.default_rng(0)
    picks = [(int(rng.integers(n)), int(rng.integers(n))) for _ in range(args.numpy_points)]
    rows, t_np = [], 0.0
    # Network-to-network spread of λ₁ (per layer ½ log of a χ²_N/N-like factor: variance
    # ≈ 1/(2N)), which the stderr over inputs of one network does not contain.
    sd_net = 1 / np.sqrt(2 * N * L)
    with single_blas_thread():
        for i, j in picks:
            t0 = time.perf_counter()
            lam, se = numpy_point(N, L, sw[i], sb[j], k, m, seed=1000 + i * n + j)
            t_np += time.perf_counter() - t0
            d_lam, d_se = res.exponents[i, j], res.stderr[i, j]
            rows.append({"sigma_w": sw[i], "sigma_b": sb[j], "delyap": d_lam[0],
                         "delyap_se": d_se[0], "numpy": lam[0], "numpy_se": se[0],
                         "z": (d_lam[0] - lam[0]) / np.hypot(d_se[0], se[0]),
                         "z_net": (d_lam[0] - lam[0]) / np.sqrt(d_se[0] ** 2 + se[0] ** 2
                                                                + 2 * sd_net ** 2)})
    t_np_grid = t_np / len(picks) * n * n
    print("\n| σ_w | σ_b | λ₁ delyap | λ₁ numpy | Δ / stderr | Δ / (stderr + network spread) |"
          "\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['sigma_w']:.3f} | {r['sigma_b']:.3f} | {r['delyap']:+.4f} ± "
              f"{r['delyap_se']:.1g} | {r['numpy']:+.4f} ± {r['numpy_se']:.1g} | "
              f"{r['z']:+.1f} | {r['z_net']:+.1f} |")
    print(f"\n| | seconds for the {n} × {n} grid | vs numpy |\n|---|---|---|")
    print(f"| numpy QR loop, 1 BLAS thread (scaled from {len(picks)} points) | {t_np_grid:.1f} "
          f"| 1 |")
    print(f"| delyap, threads=1 (scaled from 4 points) | {t_one:.1f} | {t_np_grid / t_one:.1f}× |")
    print(f"| delyap, default threads | {t_all:.1f} | {t_np_grid / t_all:.1f}× |")
    edge = res.edge()
    print(f"\nedge σ_w(λ₁ = 0) per σ_b: {np.round(edge, 3).tolist()}")
    write_json(args.json, args, {"grid": [n, n], "seconds_delyap": t_all,
                                 "seconds_delyap_1thread": t_one, "seconds_numpy": t_np_grid,
                                 "rows": rows, "edge": edge})


if __name__ == "__main__":
    main()
