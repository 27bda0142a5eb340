"""The ``delyap`` command line: ``delyap demo``, ``delyap solve``, ``delyap lyapunov``,
``delyap sgd-map``, ``delyap info``.

Every failure the user can cause (a bad option, a missing folder or extra, a failed
integration) is one line ``delyap: error: …`` on stderr and exit status 2. Options are checked,
and output paths and optional dependencies looked up, before any long computation starts.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from typing import Optional

import numpy as np

# Saved outputs hold t and x per point (16 bytes); 10⁷ points is 160 MB before copies.
MAX_OUTPUT_POINTS = 10**7


class UsageError(Exception):
    """A problem with the command line found before the work starts (reported, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are the CLI's single line instead of usage + message."""

    def error(self, message: str):  # type: ignore[override]
        _report(message)
        sys.exit(2)


def _report(message: str) -> None:
    # One line, whatever the exception text holds (some messages span lines).
    print("delyap: error: " + " ".join(str(message).split()), file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # A warning is about the user's run, not about a line of delyap's source.
    print("delyap: warning: " + " ".join(str(message).split()), file=sys.stderr)


# ---- option types: argparse reports their ArgumentTypeError as "argument --x: …" -------------

def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return v


def _positive(text: str) -> float:
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def _non_negative(text: str) -> float:
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {text}")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return v


# ---- checks before the work -----------------------------------------------------------------

def _need_matplotlib(option: str) -> None:
    from .plot import require_matplotlib

    try:
        require_matplotlib()
    except ImportError as exc:
        raise UsageError(f"{exc} (or leave out {option})") from None


def _need_torch(what: str) -> None:
    from .sgd.torch_model import _torch

    try:
        _torch()
    except ImportError as exc:
        raise UsageError(f"{what}: {exc}") from None


def _check_file(path: str, option: str) -> None:
    """A file can be written at ``path``: its folder exists and is writable."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{option}: {path} is a folder, expected a file name")
    if not os.path.isdir(folder):
        raise UsageError(f"{option}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option}: cannot write into folder {folder}")


def _make_folder(path: str, option: str) -> None:
    """Create the output folder ``path`` now, so a bad path fails before the work."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{option}: {path} exists and is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option}: cannot create folder {path} ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"{option}: cannot write into folder {path}")


def _check_cuda(device: str) -> None:
    if device == "cuda":  # fail before training when there is no GPU
        from .device import cuda_backend

        cuda_backend()


# ---- commands -------------------------------------------------------------------------------

def _cmd_demo(args) -> int:
    from .demo import run_demo

    plots = not args.no_plots
    if plots:
        _need_matplotlib("--no-plots")
        _make_folder(args.out, "--out")
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    run_demo(args.out, n_sweep=args.n_sweep, threads=args.threads, plots=plots)
    if not have_torch:
        print("\n(SGD stability demo skipped: it needs torch — pip install 'delyap[torch]')")
        return 0
    from .sgd.demo import run_sgd_map

    run_sgd_map(args.out, steps=args.sgd_steps, threads=args.threads, plots=plots,
                progress=_progress())
    return 0


def _cmd_sgd_map(args) -> int:
    _need_torch("sgd-map")
    from .sgd.demo import check_demo_options, run_sgd_map

    plots = not args.no_plots
    check_demo_options(batch_sizes=args.batch_sizes)
    _check_cuda(args.device)
    if plots:
        _need_matplotlib("--no-plots")
        _make_folder(args.out, "--out")
    run_sgd_map(args.out, n_lr=args.n_lr, batch_sizes=args.batch_sizes, steps=args.steps,
                threads=args.threads, plots=plots, device=args.device, progress=_progress())
    return 0


def _output_times(t_final: float, dt_out: float) -> np.ndarray:
    n = math.floor(t_final / dt_out) + 1
    if n > MAX_OUTPUT_POINTS:
        raise UsageError(f"--dt-out: {n:.3g} output points over [0, {t_final:g}] (at most "
                         f"{MAX_OUTPUT_POINTS:.0e}); use a larger --dt-out or a shorter --t-final")
    return np.arange(0.0, t_final + 1e-9 * dt_out, dt_out)


def _progress() -> bool:
    """The command line shows a progress bar from the start (no 2 s delay) on a terminal;
    into a pipe or a log it writes none (stderr then holds only errors, one line each)."""
    return sys.stderr.isatty()


def _cmd_solve(args) -> int:
    from . import rhs, solve_dde

    t_eval = _output_times(args.t_final, args.dt_out)
    if args.output:
        if not args.output.endswith(".npz"):  # what np.savez will write
            args.output += ".npz"
        _check_file(args.output, "--output")
    if args.plot:
        _check_file(args.plot, "--plot")
        _need_matplotlib("--plot")
    system = rhs.mackey_glass(beta=args.beta, gamma=args.gamma, n=args.n, tau=args.tau)
    sol = solve_dde(system, args.history, (0.0, args.t_final), t_eval=t_eval, method=args.method,
                    rtol=args.rtol, atol=args.atol, progress=_progress())
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

    if args.tau_max is not None:
        if not args.tau_max > args.tau:
            raise UsageError(f"--tau-max: the sweep runs from --tau = {args.tau:g} up to "
                             f"--tau-max, which must be larger, got {args.tau_max:g}")
        if args.n_tau < 2:
            raise UsageError(f"--n-tau: a sweep needs at least 2 values of τ, got {args.n_tau}")
    if args.plot:
        _check_file(args.plot, "--plot")
        _need_matplotlib("--plot")
    taus = np.linspace(args.tau, args.tau_max, args.n_tau) if args.tau_max is not None else args.tau
    system = rhs.mackey_glass(beta=args.beta, gamma=args.gamma, n=args.n, tau=taus)
    res = lyapunov_spectrum(system, args.history, args.n_exponents, args.t_total,
                            t_transient=args.t_transient, rtol=args.rtol, atol=args.atol,
                            renorm_interval=args.renorm_interval, threads=args.threads,
                            progress=_progress())
    if res.batch_size is None:
        print(f"Mackey–Glass τ = {args.tau:g}: {args.n_exponents} Lyapunov exponents "
              f"(t_total = {args.t_total:g}, transient {args.t_transient:g})")
        for j, (e, s) in enumerate(zip(res.exponents, res.stderr)):
            print(f"  λ{j + 1:<2d} = {e:+.6f} ± {s:.6f}")
        print(f"  Kaplan–Yorke dimension: {res.kaplan_yorke_dimension():.3f}")
    else:
        print(f"{'tau':>8}  "
              + "  ".join(f"{'λ' + str(j + 1):>10}" for j in range(args.n_exponents)))
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
            ax.set_ylabel("Lyapunov exponent (per unit time)")
            ax.set_title("Mackey–Glass: Lyapunov spectrum against τ (error bars ±2 s.e.)",
                         fontsize=10)
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
    print("blocked GEMM/QR build:", _core.blocked_linalg_isa())
    return 0


def _mackey_glass_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beta", type=_number, default=0.2,
                   help="β, production rate (default: %(default)s)")
    p.add_argument("--gamma", type=_number, default=0.1,
                   help="γ, decay rate (default: %(default)s)")
    p.add_argument("--n", type=_number, default=10.0, help="Hill exponent n (default: %(default)s)")
    p.add_argument("--tau", type=_positive, default=17.0, help="delay τ > 0 (default: %(default)s)")
    p.add_argument("--history", type=_number, default=0.5,
                   help="constant history x(t) for t ≤ 0 (default: %(default)s)")
    p.add_argument("--rtol", type=_positive, default=1e-6,
                   help="relative tolerance > 0 (default: %(default)s)")
    p.add_argument("--atol", type=_non_negative, default=1e-9,
                   help="absolute tolerance ≥ 0 (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="delyap", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="Mackey–Glass and a 1000-trajectory τ-sweep, with PNGs")
    d.add_argument("--out", default="delyap-demo",
                   help="folder for the PNGs (default: %(default)s)")
    d.add_argument("--n-sweep", type=_count, default=1000,
                   help="trajectories in the τ-sweep (default: %(default)s)")
    d.add_argument("--threads", type=_count, default=None,
                   help="worker threads (default: all cores)")
    d.add_argument("--no-plots", action="store_true", help="skip the PNGs (no matplotlib needed)")
    d.add_argument("--sgd-steps", type=_count, default=10_000,
                   help="SGD steps per configuration of the stability map (default: %(default)s)")
    d.set_defaults(func=_cmd_demo)

    g = sub.add_parser("sgd-map",
                       help="SGD stability map of a small MLP at an interpolating minimum")
    g.add_argument("--out", default="delyap-demo", help="folder for the PNG (default: %(default)s)")
    g.add_argument("--n-lr", type=_count, default=24,
                   help="learning rates on the grid (default: %(default)s)")
    g.add_argument("--batch-sizes", type=_count, nargs="+", default=[1, 2, 4, 8, 16, 32, 64],
                   metavar="B", help="batch sizes, each in [1, 64] (default: 1 2 4 … 64)")
    g.add_argument("--steps", type=_count, default=10_000,
                   help="SGD steps per configuration (default: %(default)s)")
    g.add_argument("--threads", type=_count, default=None,
                   help="worker threads (default: all cores)")
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where the map runs (cuda: one GPU launch for the whole grid)")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG (no matplotlib needed)")
    g.set_defaults(func=_cmd_sgd_map)

    s = sub.add_parser("solve", help="solve Mackey–Glass with given parameters")
    _mackey_glass_options(s)
    s.add_argument("--t-final", type=_positive, default=1000.0,
                   help="integrate over [0, t_final] (default: %(default)s)")
    s.add_argument("--dt-out", type=_positive, default=1.0,
                   help="spacing of the output times (default: %(default)s)")
    s.add_argument("--method", default="DP5", choices=["DP5", "BS3"],
                   help="adaptive Runge–Kutta pair (default: %(default)s)")
    s.add_argument("--output", help="save the solution to this .npz file (t, y, status, stats)")
    s.add_argument("--plot", help="save x(t) to this PNG")
    s.set_defaults(func=_cmd_solve)

    ly = sub.add_parser("lyapunov", help="Lyapunov spectrum of Mackey–Glass (or a τ-sweep)")
    _mackey_glass_options(ly)
    ly.add_argument("--t-total", type=_positive, default=1e5,
                    help="averaging time after the transient (default: %(default)s)")
    ly.add_argument("--t-transient", type=_non_negative, default=4000.0,
                    help="time integrated before averaging starts (default: %(default)s)")
    ly.add_argument("--tau-max", type=_positive, default=None,
                    help="sweep τ from --tau up to this value (one spectrum per value)")
    ly.add_argument("--n-tau", type=_count, default=50,
                    help="number of τ values in a sweep (default: %(default)s)")
    ly.add_argument("--n-exponents", "-k", type=_count, default=4,
                    help="number of exponents (default: %(default)s)")
    ly.add_argument("--renorm-interval", type=_positive, default=None,
                    help="time between re-orthonormalisations (default: τ/2)")
    ly.add_argument("--threads", type=_count, default=None,
                    help="worker threads (default: all cores)")
    ly.add_argument("--plot", help="save running estimates (or the sweep) to this PNG")
    ly.set_defaults(func=_cmd_lyapunov)

    i = sub.add_parser("info", help="version and build information")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    from .device import CudaUnavailableError
    from .errors import IntegrationError

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # restores the caller's showwarning afterwards
            warnings.showwarning = _show_warning
            return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    # The user's problems, not delyap's bugs (those keep their traceback).
    except (UsageError, ValueError, TypeError, CudaUnavailableError, IntegrationError,
            ImportError, OSError, MemoryError) as exc:
        _report(str(exc) or type(exc).__name__)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
