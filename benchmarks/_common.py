"""Helpers shared by the benchmark scripts (no benchmark imports another benchmark).

The scripts run against the installed package (``pip install .[bench]``, then
``python benchmarks/x.py``); Python puts ``benchmarks/`` first on ``sys.path``, so
``import _common`` finds this file and ``import delyap`` finds the installed package, not the
source tree (which has no compiled ``_core``).

Contents: best-of timing, the matched-accuracy tolerance ladder, a one-BLAS-thread context,
jitcdde's compile-once-and-cache helper and its output sampling, and the ``--json`` record
(results plus package versions, machine and command) every script can write.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import shlex
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- timing


def best_of(n: int, fn):
    """Run fn n times; return (result of the fastest run, its seconds).

    fn returns (result, seconds) so each tool times only its own integration (set-up such as
    building a system or resetting a peer's integrator stays outside the timing). fn may return
    further times, (result, seconds, cpu_seconds, ...): then the least of each comes back too.
    """
    runs = [fn() for _ in range(max(1, n))]
    best = min(runs, key=lambda r: r[1])
    return (best[0], best[1], *(min(r[i] for r in runs) for i in range(2, len(best))))


def timed(fn, *a, **kw):
    """(fn(*a, **kw), wall seconds): for best_of when the whole call is the workload."""
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def timed_cpu(fn, *a, **kw):
    """(fn(*a, **kw), wall seconds, process CPU seconds of all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0, time.process_time() - c0


# --------------------------------------------------------------------------- matched accuracy


def tolerance_ladder(loosest: float, tightest: float) -> list[float]:
    """Half-decade rtol ladder from loose to tight (finer steps give a closer match)."""
    k0, k1 = round(-2 * np.log10(loosest)), round(-2 * np.log10(tightest))
    return [10.0 ** (-k / 2) for k in range(k0, k1 + 1)]


def pick_tolerance(errors: dict[float, float], accuracy: float) -> float:
    """Loosest rtol whose error, and that of every tighter rtol, is <= accuracy.

    Requiring the tighter ones too stops a lucky cancellation at one loose
    tolerance from being chosen.
    """
    tols = sorted(errors)  # tight -> loose
    chosen = None
    for rtol in tols:
        if abs(errors[rtol]) > accuracy:
            break
        chosen = rtol
    if chosen is None:
        raise RuntimeError(f"no tolerance reached accuracy {accuracy:g}: {errors}")
    return chosen


def stats_str(sol) -> str:
    """Step counts of a delyap solution, summed over an ensemble."""
    s = getattr(sol, "stats", None) or {}
    keys = ("accepted", "rejected", "rhs_evals")
    return ", ".join(f"{k}={int(np.sum(s[k]))}" for k in keys if k in s)


# --------------------------------------------------------------------------- threads


@contextlib.contextmanager
def single_blas_thread():
    """Pin BLAS pools (numpy's, scipy's) to one thread for the duration (fairness).

    Only BLAS: limiting OpenMP too would silently cap delyap's own ``threads=`` if it is
    built on OpenMP.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------- jitcdde


@contextlib.contextmanager
def quiet_stderr():
    """Swallow gcc's wall of '#pragma omp ignored' warnings at fd level.

    The compiler is a subprocess, so redirecting sys.stderr is not enough.
    The captured text is re-emitted if compilation raises.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def jitcdde_cache_key(*parts) -> str:
    """Hash of what determines a compiled jitcdde module: the given parts (model text,
    bounds) plus the jitcdde, symengine and Python versions (the generated C and the ABI)."""
    import jitcdde
    import symengine

    blob = "|".join([*map(str, parts), jitcdde.__version__, symengine.__version__, sys.version])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def jitcdde_compile_once(make, cache_dir, modulename: str):
    """Compile a jitcdde model once, or load it from ``cache_dir``.

    ``make(module_location)`` builds the jitcdde object: from the symbolic model when
    ``module_location`` is None, bound to the compiled module at that path otherwise.
    ``modulename`` must change whenever the generated C would (see jitcdde_cache_key); the
    cache is per machine (jitcdde compiles with -march=native), hence a git-ignored folder.
    Returns (dde, seconds of setup + compilation or load, from_cache).
    """
    t0 = time.perf_counter()
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        so_path = (next(iter(cache_dir.glob(modulename + ".*so")), None) if cache_dir.is_dir()
                   else None)
        if so_path is not None:
            return make(str(so_path)), time.perf_counter() - t0, True
    dde = make(None)
    with quiet_stderr():
        if cache_dir is None:
            dde.compile_C()
        else:
            # save_compiled() always (re)compiles, so calling compile_C() first would compile
            # twice; it also leaves the module loaded in `dde`.
            cache_dir.mkdir(parents=True, exist_ok=True)
            dde.save_compiled(str(cache_dir / modulename), overwrite=True)
    return dde, time.perf_counter() - t0, False


def jitcdde_sample_started(dde, t_start: float, t_eval: np.ndarray) -> np.ndarray:
    """First component of a jitcdde trajectory at t_eval, its integration set up to t_start.

    Output times before t_start (inside the initial discontinuity handling, which steps past
    them) are read from the integrator's Hermite spline; the others by integrate().
    """
    out = np.empty(len(t_eval))
    n_early = int(np.searchsorted(t_eval, t_start, side="left"))
    if n_early:
        # get_state() materialises the C anchors as a Python spline; only done
        # once per trajectory and only for the first tau time units.
        out[:n_early] = dde.get_state().get_state(t_eval[:n_early])[:, 0]
    with warnings.catch_warnings():
        # When one step spans several output times, integrate() warns that the
        # target lies behind the current time; it then interpolates inside the
        # last step, which is exactly the dense output we want.
        warnings.filterwarnings("ignore", message="The target time is smaller")
        for i in range(n_early, len(t_eval)):
            out[i] = dde.integrate(t_eval[i])[0]
    return out


# --------------------------------------------------------------------------- --json record

# Distributions whose versions a result depends on; those not installed are left out.
_PACKAGES = ("delyap", "numpy", "scipy", "threadpoolctl", "jitcdde", "symengine", "torch",
             "torchdde", "ddeint")


def add_json_option(ap) -> None:
    ap.add_argument("--json", metavar="PATH", default=None,
                    help="also write the results, package versions, machine and command to PATH")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if "delyap" in sys.modules:  # the one imported, which may be a staged build
        dl = sys.modules["delyap"]
        out["delyap"] = getattr(dl, "__version__", out.get("delyap", "?"))
        out["delyap_path"] = str(Path(dl.__file__).resolve().parent)
    return out


def machine() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or None
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())  # the box may be shared: how busy it was
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [f"{i['internal_api']} {i.get('version')} {i.get('architecture')}"
                        for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        pass
    return info


def _plain(x):
    """x as JSON-ready values: numpy scalars and arrays, tuples, sets and dicts with non-string
    keys become lists, numbers and string keys; anything else becomes its repr (a record of a
    long run is not worth losing over one odd field)."""
    if isinstance(x, dict):
        return {k if isinstance(k, str) else str(_plain(k)): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted(_plain(v) for v in x)
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, Path):
        return str(x)
    return repr(x)


def write_json(path, args, results) -> None:
    """Write ``results`` (numbers, ratios, tables as lists of dicts) with the context needed to
    reproduce them: command line, parsed options, package versions, machine and date.
    Does nothing when ``path`` is None (no --json given)."""
    if path is None:
        return
    record = {
        "script": Path(sys.argv[0]).as_posix(),
        "command": shlex.join(["python", *sys.argv]),
        "options": {k: v for k, v in vars(args).items() if k != "json"},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "machine": machine(),
        "results": results,
    }
    # NaN and infinities are written as NaN / Infinity (Python's json reads them back).
    Path(path).write_text(json.dumps(_plain(record), indent=1) + "\n")
    print(f"results written to {path}")
