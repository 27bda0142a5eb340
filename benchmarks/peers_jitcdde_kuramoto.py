"""jitcdde peer for the delay-coupled Kuramoto benchmark (bench_kuramoto.py).

    theta_i' = omega_i + (K / d_i) * sum_j A_ij sin(theta_j(t - tau_ij) - theta_i(t))

Written the way the jitcdde docs suggest for large networks:

* ``f_sym`` is a generator function and ``n``, ``delays`` and ``max_delay`` are
  given up front, so jitcdde never has to walk the 2e5-term expression to find
  them;
* ``automatic_anchor_helpers=True``: the history anchors of each distinct
  delay are looked up once per derivative evaluation (a helper), not once per
  delayed term;
* ``compile_C(simplify=False, do_cse=False, chunk_size=..., omp=False)``:
  no symbolic simplification of 1e4 entries, code split into chunks so gcc
  handles it function by function, no OpenMP (every tool runs on one core);
* the compiler flags are jitcdde's defaults (-O3 -ffast-math -march=native).

The graph, frequencies, coupling and delays are numbers baked into the C code
(no control parameters), so every distinct problem is a separate compile.  The
compiled module can be cached on disk keyed by a hash of the problem; the time
the compile took is stored beside it so a cached run can still report it.

The edge term is the plain sin(theta_j(t - tau) - theta_i): one Hermite
interpolation and one sine per edge (2e5 of each per evaluation at N = 1e4).
That is how a jitcdde user would write the model.  (delyap instead reads the
history once per node and delay class and expands the sine; a jitcdde user
could imitate that with ~3 * N * n_delays helpers, which we do not do: it
would cut the history reads to N * n_delays but not change the scaling below.)

Why jitcdde is slow at this size (jitcdde 1.8.3, gcc 12): its C template
passes the history anchor -- a struct holding the time, the 2N state and
derivative values and two pointers -- BY VALUE to get_past_value(), once per
delayed term, and get_past_value copies the next anchor by value again.  gcc
does not inline it (objdump of the module: one memcpy and one call of
get_past_value per edge; -fno-semantic-interposition or -finline-limit do not
change that), so every delayed term copies ~32N bytes: one evaluation costs
O(edges x N).  Measured per step: 1.8 ms (N = 200), 50 ms (1e3), 0.46 s
(3e3), 6-7 s (1e4) -- about 3N ns per delayed term.

Compile time is dominated by gcc (-O3 on ~2e5 expressions at N = 1e4: ~6 min
CPU per delay setting).  chunk_size matters: with N = 200, one function per
chunk of 5 right-hand sides compiles in 5 s, a single function (chunk_size >=
number of lines) in 26 s.

The past is given exactly: the rotating past theta_i(t) = theta_i0 + omega_i t
is linear, so two Hermite anchors at t = -max_delay and t = 0 (value and slope
omega_i) reproduce it.  The derivative jumps at t = 0 and the jump propagates
along the delays; ``step_on_discontinuities`` places steps on t = tau_k.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import quiet_stderr


@dataclass
class CompiledKuramoto:
    dde: object  # jitcdde bound to the compiled module
    compile_seconds: float  # symbolic setup + C generation + gcc, wall (as measured when built)
    load_seconds: float  # time of this call (== compile_seconds unless loaded from cache)
    from_cache: bool
    n: int
    n_edges: int
    delays: np.ndarray  # distinct delays
    breakdown: dict  # 'codegen' / 'gcc' wall and '*_cpu' CPU seconds, 'load_average'

    @property
    def compile_cpu(self):
        """CPU seconds of C generation + gcc, or None (module cached by an older version)."""
        b = self.breakdown
        if "gcc_cpu" in b and "codegen_cpu" in b:
            return b["gcc_cpu"] + b["codegen_cpu"]
        return None


def _problem_key(prob, chunk_size, compile_args) -> str:
    import jitcdde
    import symengine

    h = hashlib.sha1()
    for arr in (prob.A.indptr, prob.A.indices, prob.A.data, prob.omega, prob.tau_edge):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(repr((float(prob.K), chunk_size, compile_args, jitcdde.__version__,
                   symengine.__version__, sys.version)).encode())
    return h.hexdigest()[:12]


def _f_sym(prob):
    """Generator function of the N right-hand sides (symengine expressions)."""
    import symengine
    from jitcdde import t, y

    A = prob.A
    indptr, indices, data = A.indptr, A.indices, A.data
    tau_edge = prob.tau_edge
    inv_deg = prob.inv_deg
    # One symbolic delay object per distinct delay, so equal delays print identically
    # (and the anchor helper substitution finds them all).
    delay_expr = {float(d): t - symengine.RealDouble(float(d)) for d in np.unique(tau_edge)}

    def f():
        for i in range(prob.n):
            lo, hi = indptr[i], indptr[i + 1]
            yi = y(i)
            terms = [float(data[e])
                     * symengine.sin(y(int(indices[e]), delay_expr[float(tau_edge[e])]) - yi)
                     for e in range(lo, hi)]
            coupling = symengine.Add(*terms) if terms else 0
            yield float(prob.omega[i]) + float(prob.K * inv_deg[i]) * coupling

    return f


def build(prob, cache_dir=None, chunk_size: int = 5, compile_args=None,
          verbose: bool = False) -> CompiledKuramoto:
    """Compile (or load from ``cache_dir``) the jitcdde model of ``prob``.

    ``prob`` is a bench_kuramoto.Problem (A CSR with sorted indices, omega, K,
    per-edge tau in CSR order, inv_deg).
    """
    from jitcdde import jitcdde

    delays = np.unique(prob.tau_edge)
    max_delay = float(delays.max())
    t0 = time.perf_counter()
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        modulename = f"kuramoto_jitcdde_{_problem_key(prob, chunk_size, compile_args)}"
        so_path = (next(iter(cache_dir.glob(modulename + ".*so")), None) if cache_dir.is_dir()
                   else None)
        meta_path = cache_dir / (modulename + ".json")
        if so_path is not None and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            dde = jitcdde(n=prob.n, delays=list(delays), max_delay=max_delay,
                          module_location=str(so_path), verbose=False)
            load = time.perf_counter() - t0
            return CompiledKuramoto(dde, meta["compile_seconds"], load, True, prob.n, prob.A.nnz,
                                    delays, meta.get("breakdown", {}))

    dde = jitcdde(_f_sym(prob), n=prob.n, delays=list(delays), max_delay=max_delay,
                  automatic_anchor_helpers=True, verbose=verbose)
    breakdown = {}
    with quiet_stderr():
        # compile_C = C generation (symengine printing) followed by gcc; the two are
        # timed apart by intercepting its last call, _compile_and_load.  CPU seconds
        # are kept too (gcc's from the children's rusage): on a shared box they
        # hardly depend on the load, the wall times do.
        tg, cg = time.perf_counter(), time.process_time()
        _generate(dde, chunk_size, modulename if cache_dir is not None else None, compile_args)
        breakdown["codegen"] = time.perf_counter() - tg
        breakdown["codegen_cpu"] = time.process_time() - cg
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        tc = time.perf_counter()
        _gcc(dde)
        breakdown["gcc"] = time.perf_counter() - tc
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        breakdown["gcc_cpu"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    compile_seconds = time.perf_counter() - t0
    breakdown["load_average"] = os.getloadavg()[0]  # this box is shared: say how busy it was
    if cache_dir is not None:
        # Same as save_compiled() without its second compilation: the module was
        # built under the cache name, so the file only has to be copied.
        import shutil

        from jitcxde_common.modules import get_module_path

        cache_dir.mkdir(parents=True, exist_ok=True)
        src = Path(get_module_path(dde._modulename, dde._tmpfile()))
        shutil.copyfile(src, cache_dir / src.name)
        meta_path.write_text(json.dumps(
            {"compile_seconds": compile_seconds, "breakdown": breakdown, "n": prob.n,
             "n_edges": int(prob.A.nnz), "chunk_size": chunk_size,
             "compile_args": compile_args}))
    return CompiledKuramoto(dde, compile_seconds, compile_seconds, False, prob.n, prob.A.nnz,
                            delays, breakdown)


def _generate(dde, chunk_size, modulename, compile_args=None):
    """compile_C up to (not including) the compiler run; _gcc() does the rest."""
    calls = []
    orig = dde._compile_and_load
    dde._compile_and_load = lambda *a, **k: calls.append((a, k))
    try:
        dde.compile_C(simplify=False, do_cse=False, chunk_size=chunk_size, omp=False,
                      modulename=modulename, extra_compile_args=compile_args)
    finally:
        dde._compile_and_load = orig
    dde._pending_compile = calls[0]


def _gcc(dde):
    args, kwargs = dde._pending_compile
    del dde._pending_compile
    dde._compile_and_load(*args, **kwargs)


def order_parameter(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, psi) of r e^{i psi} = mean_j e^{i theta_j}; theta has shape (..., N)."""
    z = np.exp(1j * theta).mean(axis=-1)
    return np.abs(z), np.angle(z)


def start_trajectory(model: CompiledKuramoto, prob, rtol: float, atol: float) -> float:
    """Rotating past, tolerances, then steps on the propagated t = 0 kink.

    Returns the time reached (the largest delay).
    """
    dde = model.dde
    tmin = -float(model.delays.max())
    dde.purge_past()
    # theta_i(t) = theta_i0 + omega_i t is linear: two Hermite anchors are exact.
    dde.add_past_point(tmin, prob.theta0 + tmin * prob.omega, prob.omega)
    dde.add_past_point(0.0, prob.theta0, prob.omega)
    dde.set_integration_parameters(rtol=rtol, atol=atol)
    dde.step_on_discontinuities()
    return dde.t


class _CountingIntegrator:
    """Forwards to jitcdde's C integrator and counts get_next_step calls (step
    attempts, including the extra ones when a step is longer than a delay)."""

    def __init__(self, inner):
        self._inner = inner
        self.steps = 0

    def get_next_step(self, *args):
        self.steps += 1
        return self._inner.get_next_step(*args)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _count_steps(dde):
    """Make dde wrap every new C integrator in a _CountingIntegrator; returns a
    function giving the number of step attempts so far."""
    seen = []
    orig = type(dde)._initiate

    def initiate():
        orig(dde)
        if not isinstance(dde.DDE, _CountingIntegrator):
            dde.DDE = _CountingIntegrator(dde.DDE)
            seen.append(dde.DDE)

    dde._initiate = initiate
    return lambda: sum(c.steps for c in seen)


def integrate(model: CompiledKuramoto, prob, t_eval, rtol: float, atol: float):
    """r(t_eval) for the rotating past; t_eval must lie after the largest delay.

    Returns (r, seconds, step attempts).  Everything is timed (the start-up steps
    included); jitcdde returns the N phases at each output time and r is
    computed from them in numpy (negligible).  Counting the steps costs a Python
    call per step (~0.1 us against >= 1 ms per step here).
    """
    t_eval = np.asarray(t_eval, dtype=float)
    r = np.empty(len(t_eval))
    dde = model.dde
    steps = _count_steps(dde)
    try:
        t0 = time.perf_counter()
        t_start = start_trajectory(model, prob, rtol, atol)
        if t_eval[0] < t_start:
            # Reading earlier times back would need get_state(), which trims the
            # anchors to the last max_delay and then extrapolates (r(0) came out wrong).
            raise ValueError(f"t_eval must start at or after t={t_start:g}")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The target time is smaller")
            for i, t in enumerate(t_eval):
                r[i] = order_parameter(dde.integrate(t))[0]
        sec = time.perf_counter() - t0
    finally:
        del dde._initiate  # back to the class's method
    return r, sec, steps()


def seconds_per_step(model: CompiledKuramoto, prob, n_steps: int = 5, dt: float = 0.01) -> float:
    """Cost of one integrator step (get_next_step + accept + forget) at this size.

    Fixed steps via integrate_blindly so the count is known; used to time
    sizes where a run to t = 100 is out of reach.  Best of the steps' mean is
    not needed: the cost per step is flat (it is the C right-hand side).
    """
    dde = model.dde
    tmin = -float(model.delays.max())
    dde.purge_past()
    dde.add_past_point(tmin, prob.theta0 + tmin * prob.omega, prob.omega)
    dde.add_past_point(0.0, prob.theta0, prob.omega)
    dde.set_integration_parameters(rtol=1e-6, atol=1e-9)
    dde.integrate_blindly(dt, dt)  # first step: initialisation, not timed
    t0 = time.perf_counter()
    dde.integrate_blindly(dt * (n_steps + 1), dt)
    return (time.perf_counter() - t0) / n_steps


def load_cached(prob, cache_dir, chunk_size: int = 5, compile_args=None):
    """The cached module for ``prob`` if there is one (no compiling), else None."""
    if cache_dir is None:
        return None
    modulename = f"kuramoto_jitcdde_{_problem_key(prob, chunk_size, compile_args)}"
    d = Path(cache_dir)
    if not (d.is_dir() and (d / (modulename + ".json")).is_file()
            and next(iter(d.glob(modulename + ".*so")), None)):
        return None
    return build(prob, cache_dir=cache_dir, chunk_size=chunk_size, compile_args=compile_args)
