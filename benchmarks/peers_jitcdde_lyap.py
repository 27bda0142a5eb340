"""jitcdde_lyap peer for the Lyapunov benchmark (Mackey–Glass, tau as control parameter).

    x'(t) = beta * x(t-tau) / (1 + x(t-tau)**n) - gamma * x(t),   x(t) = 0.5 for t <= 0

``jitcdde_lyap`` appends ``n_lyap`` tangent (separation) functions to the state,
integrates them with the trajectory under the same Bogacki–Shampine 3(2) step
control (the tangent components take part in the error estimate), and on every
``integrate(t)`` call Gram–Schmidt-orthonormalises them in the L2 product of
their Hermite interpolants on [t - max_delay, t].  ``integrate`` returns the
local exponents of that interval and the time actually integrated (it steps a
bit past the target); the exponent is the time-weighted average.

How it is driven here (choices that keep the comparison fair; see
benchmarks/jitcdde_notes.md for the plain-jitcdde background):

* Compiled ONCE with ``tau`` as a control parameter and reused for every tau.
  Compile time is reported apart.  The module can be cached on disk: a cached
  module is loaded by re-creating ``jitcdde_lyap`` from the (cheap) symbolic
  model with ``module_location``, so ``orthonormalise`` etc. stay available.
* ``dde.delays = [0, tau]`` is set before every trajectory.  That makes
  ``max_delay`` = tau, which is (i) the orthonormalisation window (with the
  compile-time bound MAX_TAU = 30 the window would be [t-30, t], the wrong
  phase space for tau < 30), (ii) the delay that ``step_on_discontinuities``
  propagates, and (iii) what ``set_integration_parameters`` uses to cap
  max_step for the Lyapunov dimensionality, so delays are set first.
* The initial past is NOT ``constant_past``: that puts only two anchors at
  t = -1 and 0 and fills the tangent functions with unseeded random_direction(1)
  = ±1 values, so with one state component four tangent functions are random
  sign patterns on one Hermite segment (possibly linearly dependent) and the
  run is not reproducible.  Instead: anchors on [-tau, 0] with x = 0.5, x' = 0
  and seeded Gaussian tangent values and slopes.
* Sampling: ``integrate`` every ``sample`` time units (10 by default, as the
  jitcdde docs do); the transient is integrated the same way (orthonormalising,
  otherwise the tangents over/underflow) and discarded.
* Standard errors by batch means computed like delyap's: the post-transient
  sample sequence is cut into ``n_blocks`` contiguous blocks (block b holds
  samples i with i*n_blocks//n == b), each block's time-weighted mean is one
  estimate, stderr = sd(ddof=1) / sqrt(n_blocks).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import peers_jitcdde as pj
from _common import jitcdde_cache_key, jitcdde_compile_once, single_blas_thread

BETA, GAMMA, EXPONENT, HISTORY, MAX_TAU = pj.BETA, pj.GAMMA, pj.EXPONENT, pj.HISTORY, pj.MAX_TAU


@dataclass
class CompiledMGLyap:
    dde: object  # jitcdde_lyap instance bound to the compiled module
    n_lyap: int
    compile_seconds: float  # symbolic setup + tangent derivation + C compilation (or module load)
    from_cache: bool


@dataclass
class JitLyapResult:
    exponents: np.ndarray  # (n_lyap,) time-weighted mean of the local exponents
    stderr: np.ndarray  # (n_lyap,) batch means
    seconds: float  # everything after compilation: reset, transient, averaging
    n_samples: int
    t_averaged: float  # sum of the integration times of the averaged samples


def build_mackey_glass_lyap(n_lyap: int = 4,
                            cache_dir: str | os.PathLike | None = None) -> CompiledMGLyap:
    """Compile (or load from ``cache_dir``) jitcdde_lyap for Mackey–Glass with symbolic tau."""
    from jitcdde import jitcdde_lyap

    f, tau = pj._mg_symbols()
    # delays/max_delay must be given: a symbolic delay cannot be bounded by jitcdde.  The 0
    # matters: jitcdde_lyap builds the tangent equations from this list as given (the setter
    # adds 0 only afterwards), so delays=[tau] silently drops the -gamma*delta(t) term.
    kwargs = dict(n_lyap=n_lyap, delays=[0, tau], max_delay=MAX_TAU, control_pars=[tau],
                  verbose=False)

    def make(module_location):
        if module_location is not None:
            return jitcdde_lyap(f, module_location=module_location, **kwargs)
        return jitcdde_lyap(f, **kwargs)

    modulename = f"mg_jitcdde_lyap{n_lyap}_{jitcdde_cache_key('lyap-d0', n_lyap, f, MAX_TAU)}"
    dde, seconds, from_cache = jitcdde_compile_once(make, cache_dir, modulename)
    return CompiledMGLyap(dde, n_lyap, seconds, from_cache)


def _start(model: CompiledMGLyap, tau: float, rtol: float, atol: float, seed: int,
           n_anchors: int = 17) -> None:
    """Fresh trajectory: x = 0.5 history, seeded random tangent functions, step across [0, tau]."""
    dde, k = model.dde, model.n_lyap
    rng = np.random.default_rng(seed)
    dde.purge_past()
    times = np.linspace(-float(tau), 0.0, n_anchors)
    states = np.concatenate([np.full((n_anchors, 1), HISTORY),
                             rng.standard_normal((n_anchors, k))], axis=1)
    diffs = np.concatenate([np.zeros((n_anchors, 1)), rng.standard_normal((n_anchors, k))], axis=1)
    dde.add_past_points(list(zip(times, states, diffs)))
    dde.set_parameters(float(tau))  # after the past: it builds the C integrator from it
    dde.delays = [0.0, float(tau)]  # max_delay := tau (window, discontinuities, max_step cap)
    # With n_lyap/n > 2 this caps max_step at max_delay/(ceil(n_lyap/n/2)-1) = tau here.
    dde.set_integration_parameters(rtol=rtol, atol=atol)
    dde.step_on_discontinuities()


def lyapunov(model: CompiledMGLyap, tau: float, t_total: float, t_transient: float, *,
             sample: float = 10.0, rtol: float = 1e-6, atol: float = 1e-9, n_blocks: int = 32,
             seed: int = 0) -> JitLyapResult:
    """Spectrum for one tau: transient to t = t_transient, then average over t_total."""
    dde = model.dde
    t0 = time.perf_counter()
    _start(model, tau, rtol, atol, seed)
    # Sampling grid anchored at 0 so both tools average over [t_transient, t_transient + t_total].
    targets = np.arange(sample, t_transient + t_total + 0.5 * sample, sample)
    targets = targets[targets > dde.t]
    n_trans = int(np.count_nonzero(targets <= t_transient + 1e-9))
    lyaps = np.empty((len(targets) - n_trans, model.n_lyap))
    weights = np.empty(len(targets) - n_trans)
    for tt in targets[:n_trans]:
        dde.integrate(tt)
    for i, tt in enumerate(targets[n_trans:]):
        _, lyaps[i], weights[i] = dde.integrate(tt)
    seconds = time.perf_counter() - t0
    ex = (lyaps * weights[:, None]).sum(0) / weights.sum()
    se = batch_means_stderr(lyaps, weights, n_blocks)
    return JitLyapResult(ex, se, seconds, len(weights), float(weights.sum()))


def batch_means_stderr(lyaps: np.ndarray, weights: np.ndarray, n_blocks: int) -> np.ndarray:
    """sd(block estimates, ddof=1)/sqrt(#blocks); blocks are contiguous, as in delyap."""
    n = len(weights)
    block = np.minimum(np.arange(n) * n_blocks // n, n_blocks - 1)
    num = np.zeros((n_blocks, lyaps.shape[1]))
    den = np.zeros(n_blocks)
    np.add.at(num, block, lyaps * weights[:, None])
    np.add.at(den, block, weights)
    est = num[den > 0] / den[den > 0, None]
    if est.shape[0] < 2:
        return np.full(lyaps.shape[1], np.nan)
    return est.std(axis=0, ddof=1) / np.sqrt(est.shape[0])


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="smoke test of the jitcdde_lyap peer")
    ap.add_argument("--tau", type=float, default=17.0)
    ap.add_argument("--t-total", type=float, default=1e4)
    ap.add_argument("--t-transient", type=float, default=1000.0)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    with single_blas_thread():
        m = build_mackey_glass_lyap(4, args.cache_dir)
        print(f"compile {m.compile_seconds:.2f} s (from cache: {m.from_cache})")
        r = lyapunov(m, args.tau, args.t_total, args.t_transient)
        print(f"{r.seconds:.3f} s, {r.n_samples} samples over {r.t_averaged:g}")
        print("  ".join(f"{e:+.5f}±{s:.5f}" for e, s in zip(r.exponents, r.stderr)))
