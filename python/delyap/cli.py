"""The ``delyap`` command line: ``delyap demo``, ``delyap solve``, ``delyap info``."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import numpy as np


def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, n_sweep=args.n_sweep, threads=args.threads, plots=not args.no_plots)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("\n(SGD stability demo skipped: it needs torch — pip install 'delyap[torch]')")
        return 0
    from .sgd.demo import run_sgd_map

    run_sgd_map(args.out, steps=args.sgd_steps, threads=args.threads, plots=not args.no_plots)
    return 0


def _cmd_sgd_map(args) -> int:
    from .sgd.demo import run_sgd_map

    run_sgd_map(args.out, n_lr=args.n_lr, batch_sizes=args.batch_sizes, steps=args.steps,
                threads=args.threads, plots=not args.no_plots, device=args.device)
    return 0


def _cmd_solve(args) -> int:
    from . import rhs, solve_dde

    system = rhs.mackey_glass(beta=args.beta, gamma=args.gamma, n=args.n, tau=args.tau)
    t_eval = np.arange(0.0, args.t_final + 1e-9, args.dt_out)
    sol = solve_dde(system, args.history, (0.0, args.t_final), t_eval=t_eval, method=args.method,
                    rtol=args.rtol, atol=args.atol)
    print(sol)
    if args.output:
        np.savez(args.output, **sol.to_dict())
        print(f"wrote {args.output}")
    if args.plot:
        from .plot import plot_solution

        plot_solution(sol, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _cmd_lyapunov(args) -> int:
    from . import rhs
    from .lyapunov import lyapunov_spectrum

    taus = np.linspace(args.tau, args.tau_max, args.n_tau) if args.tau_max else args.tau
    system = rhs.mackey_glass(beta=args.beta, gamma=args.gamma, n=args.n, tau=taus)
    res = lyapunov_spectrum(system, args.history, args.n_exponents, args.t_total,
                            t_transient=args.t_transient, rtol=args.rtol, atol=args.atol,
                            renorm_interval=args.renorm_interval, threads=args.threads)
    if res.batch_size is None:
        print(f"Mackey–Glass τ = {args.tau:g}: {args.n_exponents} Lyapunov exponents "
              f"(t_total = {args.t_total:g}, transient {args.t_transient:g})")
        for j, (e, s) in enumerate(zip(res.exponents, res.stderr)):
            print(f"  λ{j + 1:<2d} = {e:+.6f} ± {s:.6f}")
        print(f"  Kaplan–Yorke dimension: {res.kaplan_yorke_dimension():.3f}")
    else:
        print(f"{'tau':>8}  " + "  ".join(f"{'λ' + str(j + 1):>10}" for j in range(args.n_exponents)))
        for tau, ex in zip(taus, res.exponents):
            print(f"{tau:8.3f}  " + "  ".join(f"{e:+10.5f}" for e in ex))
    if args.plot:
        if res.batch_size is None:
            res.plot(args.plot)
        else:
            from .plot import figure_axes, finish_figure

            plt, fig, ax = figure_axes(None, (7, 4))
            for j in range(args.n_exponents):
                ax.errorbar(taus, res.exponents[:, j], yerr=2 * res.stderr[:, j], lw=1,
                            label=f"λ{j + 1}")
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xlabel("τ")
            ax.set_ylabel("Lyapunov exponent")
            ax.legend(fontsize=8)
            finish_figure(plt, fig, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _cmd_info(args) -> int:
    import delyap

    from delyap.device import emulated

    cuda = delyap.has_cuda()
    note = " (the CPU emulation: DELYAP_CUDA_EMULATION is set)" if cuda and emulated() else ""
    print(f"delyap {delyap.__version__}; CUDA available: {cuda}{note}")
    print("methods:", ", ".join(delyap.METHODS))
    from delyap import _core

    print("SGD Gram kernel build:", _core.gram_kernel_isa())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="delyap", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="Mackey–Glass and a 1000-trajectory τ-sweep, with PNGs")
    d.add_argument("--out", default="delyap-demo", help="folder for the PNGs (default: %(default)s)")
    d.add_argument("--n-sweep", type=int, default=1000, help="trajectories in the τ-sweep")
    d.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    d.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    d.add_argument("--sgd-steps", type=int, default=10_000, help="SGD steps per configuration")
    d.set_defaults(func=_cmd_demo)

    g = sub.add_parser("sgd-map", help="SGD stability map of a small MLP at an interpolating minimum")
    g.add_argument("--out", default="delyap-demo", help="folder for the PNG (default: %(default)s)")
    g.add_argument("--n-lr", type=int, default=24, help="learning rates on the grid")
    g.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    g.add_argument("--steps", type=int, default=10_000, help="SGD steps per configuration")
    g.add_argument("--threads", type=int, default=None)
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where the map runs (cuda: one GPU launch for the whole grid)")
    g.add_argument("--no-plots", action="store_true")
    g.set_defaults(func=_cmd_sgd_map)

    s = sub.add_parser("solve", help="solve Mackey–Glass with given parameters")
    for name, default in (("beta", 0.2), ("gamma", 0.1), ("n", 10.0), ("tau", 17.0),
                          ("history", 0.5), ("t-final", 1000.0), ("dt-out", 1.0),
                          ("rtol", 1e-6), ("atol", 1e-9)):
        s.add_argument(f"--{name}", type=float, default=default)
    s.add_argument("--method", default="DP5", choices=["DP5", "BS3"])
    s.add_argument("--output", help="save the solution to this .npz file")
    s.add_argument("--plot", help="save x(t) to this PNG")
    s.set_defaults(func=_cmd_solve)

    ly = sub.add_parser("lyapunov", help="Lyapunov spectrum of Mackey–Glass (or a τ-sweep)")
    for name, default in (("beta", 0.2), ("gamma", 0.1), ("n", 10.0), ("tau", 17.0),
                          ("history", 0.5), ("t-total", 1e5), ("t-transient", 4000.0),
                          ("rtol", 1e-6), ("atol", 1e-9)):
        ly.add_argument(f"--{name}", type=float, default=default)
    ly.add_argument("--tau-max", type=float, default=None,
                    help="sweep τ from --tau to this value (one spectrum per value)")
    ly.add_argument("--n-tau", type=int, default=50, help="number of τ values in a sweep")
    ly.add_argument("--n-exponents", "-k", type=int, default=4)
    ly.add_argument("--renorm-interval", type=float, default=None)
    ly.add_argument("--threads", type=int, default=None)
    ly.add_argument("--plot", help="save running estimates (or the sweep) to this PNG")
    ly.set_defaults(func=_cmd_lyapunov)

    i = sub.add_parser("info", help="version and build information")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from .device import CudaUnavailableError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, CudaUnavailableError) as exc:
        print(f"delyap: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
