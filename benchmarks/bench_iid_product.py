"""delyap.iid_product against a numpy reference (matmul + np.linalg.qr), one thread each.

Both run the same product: the same matrices in the same order and the same start vectors
(numpy replays the matrix choices of delyap's counter-based stream), the same number of
steps and exponents, a QR every step. Reports seconds per step and the ratio numpy / delyap
(> 1: delyap faster), and checks the exponents agree (to rounding: same product sequence).

Run against the installed package, or a build given by PYTHONPATH:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benchmarks/bench_iid_product.py
(those two variables, when set, can pin OpenBLAS to a slower kernel). Needs threadpoolctl, which
also limits scipy's OpenBLAS (delyap's large-d kernels call it) to one thread. The `kernels`
column says which kernels delyap ran for the product and the QR (portable loops, Eigen, scipy).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from _common import add_json_option, write_json

import delyap as dl
from delyap import _core

try:  # the kernels' test-only entry points
    from delyap import _testing as _kernels
except ImportError:  # a delyap from before delyap._testing (A/B runs against older builds)
    _kernels = _core

# (d, k, steps): full spectra and k = 10, sized so the whole run takes well under 3 minutes.
CASES = [(50, 50, 10000), (50, 10, 20000), (200, 200, 600), (200, 10, 6000), (500, 500, 60),
         (500, 10, 1000), (1500, 1500, 8), (1500, 10, 80)]


def numpy_product(mats, choice, q0):
    """Exponents of the product by plain numpy: Q ← A Q, QR, accumulate log|R_jj|."""
    q = q0
    logs = np.zeros(q0.shape[1])
    for c in choice:
        q, r = np.linalg.qr(mats[c] @ q)
        logs += np.log(np.abs(np.diag(r)))
    return logs / len(choice)


def start_directions(seed, d, k):
    """delyap's start vectors (stream 0): its Philox normals, orthonormalised."""
    def uniform(x):
        return ((x & (2**53 - 1)) + 0.5) * 2.0**-53
    z = np.empty(d * k + 1)
    for c in range((d * k + 1) // 2):
        v = [int(w) for w in _kernels.philox4x32(seed, 0, 2**62 + c)]
        u0, u1 = uniform((v[0] << 21) ^ v[1]), uniform((v[2] << 21) ^ v[3])
        rho = np.sqrt(-2.0 * np.log(u0))
        z[2 * c], z[2 * c + 1] = rho * np.cos(2 * np.pi * u1), rho * np.sin(2 * np.pi * u1)
    return np.linalg.qr(z[:d * k].reshape(k, d).T)[0]


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs (default 2)")
    ap.add_argument("--quick", action="store_true", help="a tenth of the steps (smoke test)")
    add_json_option(ap)
    args = ap.parse_args()
    # Imported here so that --help works without the bench extra (benchmarks/check_results.py).
    from threadpoolctl import threadpool_info, threadpool_limits

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    print("numpy BLAS:", ", ".join(f"{i['internal_api']} {i.get('version')} "
                                   f"kernel={i.get('architecture')}" for i in blas))
    isa = _core.blocked_linalg_isa() if hasattr(_core, "blocked_linalg_isa") else "n/a"
    print(f"delyap {dl.__version__} from {dl.__file__}; blocked kernels: {isa}")
    print(f"{'d':>5} {'k':>5} {'steps':>6} {'delyap s/step':>14} {'numpy s/step':>13} "
          f"{'numpy/delyap':>12} {'max |Δλ|':>10}  kernels")
    seed, ok, rows = 1, True, []
    for d, k, steps in CASES:
        steps = max(2, steps // 10) if args.quick else steps
        mats = np.random.default_rng(d + k).standard_normal((2, d, d)) / np.sqrt(d)
        u = _kernels.philox_uniforms(seed, 0, steps)[0::2]
        choice = np.minimum(np.searchsorted([0.5, 1.0], u, side="right"), 1)
        q0 = start_directions(seed, d, k)
        with threadpool_limits(1):
            t_np, lam_np = best_of(lambda: numpy_product(mats, choice, q0), args.repeats)
            t_dl, res = best_of(lambda: dl.iid_product(mats, steps=steps, n_exponents=k, seed=seed,
                                                       transient=0, threads=1), args.repeats)
        err = float(np.max(np.abs(res.exponents - lam_np)))
        ok = ok and err < 1e-8
        kernels = ("/".join(_kernels.dense_backend(d, k)) if hasattr(_kernels, "dense_backend")
                   else "?")
        print(f"{d:5d} {k:5d} {steps:6d} {t_dl / steps:14.3e} {t_np / steps:13.3e} "
              f"{t_np / t_dl:12.2f} {err:10.1e}  {kernels}")
        rows.append({"d": d, "k": k, "steps": steps, "delyap_s_per_step": t_dl / steps,
                     "numpy_s_per_step": t_np / steps, "numpy_over_delyap": t_np / t_dl,
                     "max_abs_dlambda": err, "kernels": kernels})
    print("exponents agree (same product, to rounding)" if ok else "EXPONENTS DISAGREE")
    write_json(args.json, args, {"blocked_kernels": isa, "rows": rows, "exponents_agree": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
