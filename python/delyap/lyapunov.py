"""Lyapunov spectra by QR (Benettin) accumulation.

* :func:`iid_product`: products of i.i.d. random matrices from a finite set (compiled, many
  problems in parallel) or from a Python sampler (slow path).
* :func:`lyapunov_spectrum`: the spectrum of a DDE from its tangent equations, integrated with
  the trajectory, the tangent functions re-orthonormalised over the history window.

Exponents come with standard errors from batch means: the post-transient record is cut into
``n_blocks`` contiguous blocks and ``stderr = sd(block estimates) / sqrt(n_blocks)``.

Batch means are only honest once the QR directions have aligned with the Lyapunov vectors and
when each block is long compared with the time over which they wander. Both are controlled
here in one place: the default transient (``transient=None``) comes from the time scale of
the product (:func:`auto_transient`), and every result is checked for settling
(:func:`check_settled`): a :class:`delyap.ConvergenceWarning` when the first and second half
of the blocks disagree beyond their combined standard errors, or when the transient or the
averaging window is shorter than the time scale. The chosen transient, the time scale and the
verdict are in ``result.info``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Callable, Optional, Union, overload

import numpy as np

from . import _core
from ._progress import Progress, ProgressLike, check_progress
from ._result import STATUS_CODE, Result, raise_if_failed
from ._system import ArrayLike, HistoryLike
from ._validate import as_count, as_float_array, as_positive, as_threads, check_distributed
from .errors import ConvergenceWarning
from .history import build_history
from .rhs import DDESystem
from .solve import METHODS

__all__ = ["LyapunovResult", "iid_product", "lyapunov_spectrum", "kaplan_yorke_dimension",
           "auto_transient", "mean_map_time_scale", "check_settled"]

# Transient = ALIGN_FACTOR time scales: a direction contracting twice as fast relative to the
# slowest one is then damped by e^-5 (< 1 %) before averaging starts.
ALIGN_FACTOR = 5.0
# … and never less than this fraction of the averaging window (the customary burn-in, which
# also covers products whose mean map says little about their alignment time).
MIN_TRANSIENT_FRACTION = 0.1
# Family-wise false-alarm probability of the settle check over all exponents and problems of
# one call (a Bonferroni bound), so a stability map of hundreds of cells does not cry wolf.
SETTLE_ALPHA = 0.01
# Batch-means blocks: at most this many (each holds k sums per problem; the error needs a few
# dozen, and more blocks than renormalisations leaves them empty).
MAX_BLOCKS = 100_000
# Fewer blocks with data than this and the settle check has no halves of two blocks each.
MIN_SETTLE_BLOCKS = 4


def mean_map_time_scale(rates: ArrayLike, n_exponents: int) -> np.ndarray:
    """Time scale (in steps) of a product whose mean one-step map E[A_ξ] has eigenvalue
    log-moduli ``rates`` (shape (r,) or (n_problems, r)); for linearised SGD these are the GD
    exponents log|1 − η κ_j / N|.

    A direction whose rate differs from the slowest one by δ·|μ| is forgotten after
    ~1/(δ|μ|) steps, so the first k exponents need τ = 1 / min_{j ≤ k} |μ_j|, one per problem
    (shape (n_problems,)). ``inf`` for a neutral direction (μ_j = 0), 0 for a nilpotent mean
    map (every μ_j = −∞).
    """
    rates = np.atleast_2d(np.asarray(rates, dtype=float))
    k = min(int(n_exponents), rates.shape[-1])
    slowest = -np.sort(-rates, axis=-1)[:, :k]   # the k largest rates of each problem
    with np.errstate(divide="ignore"):
        return 1.0 / np.min(np.abs(slowest), axis=-1)


@overload
def auto_transient(time_scale: Union[None, float, np.ndarray], window: int) -> int: ...
@overload
def auto_transient(time_scale: Union[None, float, np.ndarray], window: float) -> float: ...
def auto_transient(time_scale: Union[None, float, np.ndarray],
                   window: float) -> Union[int, float]:
    """The default transient: ALIGN_FACTOR time scales (the largest, when one per problem: one
    transient serves a batch), at least MIN_TRANSIENT_FRACTION of the averaging ``window``, at
    most the window itself (the default never more than doubles the work; where that cap
    bites, :func:`check_settled` warns). ``time_scale`` None (unknown): the fraction alone.
    An int for an int window (steps), else a float (time)."""
    floor = MIN_TRANSIENT_FRACTION * window
    want = floor if time_scale is None else max(ALIGN_FACTOR * float(np.max(time_scale)), floor)
    out = min(want, window)  # also catches an infinite time scale
    return min(math.ceil(out), int(window)) if isinstance(window, (int, np.integer)) else float(out)


def _half_disagreement(block_sum: np.ndarray, block_time: np.ndarray) -> np.ndarray:
    """|m₁ − m₂| / √(se₁² + se₂²) per problem and exponent, from the first and second half of
    the batch-means blocks that hold data (block_sum (P, n_blocks, k), block_time (P,
    n_blocks); a run with fewer renormalisations than blocks leaves some empty); 0 where the
    two halves agree to rounding (a deterministic product), NaN where undefined (fewer than
    MIN_SETTLE_BLOCKS blocks with data)."""
    used = block_time > 0
    count = used.sum(axis=1)                       # (P,)
    rank = np.cumsum(used, axis=1) - 1             # position among the used blocks
    first = used & (rank < (count // 2)[:, None])
    halves = []
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.where(used[:, :, None], block_sum / np.where(used, block_time, 1.0)[:, :, None],
                       0.0)
        for part in (first, used & ~first):
            n = part.sum(axis=1)[:, None]          # (P, 1)
            w = part[:, :, None]
            mean = (block_sum * w).sum(axis=1) / (block_time * part).sum(axis=1)[:, None]
            m_est = (est * w).sum(axis=1) / n
            se2 = (((est - m_est[:, None, :]) ** 2) * w).sum(axis=1) / (n - 1) / n
            halves.append((mean, se2))
        (m1, v1), (m2, v2) = halves
        diff = np.abs(m1 - m2)
        # Rounding floor: identical blocks of a deterministic product differ in the last bits.
        tiny = 1e-12 * (1.0 + np.abs(m1) + np.abs(m2))
        z = np.where(diff <= tiny, 0.0, diff / np.sqrt(v1 + v2))
    z[count < MIN_SETTLE_BLOCKS] = np.nan
    return z


def check_settled(raw: dict, what: str, *, time_scale: Union[None, float, np.ndarray] = None,
                  transient: Optional[float] = None, window: Optional[float] = None,
                  unit: str = "steps", scale_name: str = "1/|μ| of the mean map",
                  stacklevel: int = 3) -> dict:
    """Warn (:class:`delyap.ConvergenceWarning`) when a run's estimate has not settled.

    Two tests, whose outcome is returned for ``result.info``:

    * fewer than MIN_SETTLE_BLOCKS = 4 blocks hold data (a window of fewer
      re-orthonormalisations): no standard error worth the name, no halves to compare;
    * the first and second half of the batch-means blocks disagree by more than z standard
      errors of their difference, z the Bonferroni bound for a family-wise false-alarm rate of
      ``SETTLE_ALPHA`` over every exponent of every successful problem (at least 3);
    * the transient or the averaging window is shorter than the product's ``time_scale``
      (a scalar, or one per run):
      the directions have not aligned (bias), or blocks are shorter than the time over which
      the directions wander (the batch-means error underestimates the true one). An infinite
      time scale (a neutral direction of the mean map, e.g. stochastic or orthogonal matrices)
      says nothing about alignment and is not reported; the first test still applies.
    """
    ok = np.atleast_1d(np.asarray(raw["status"])) == 0
    block_time = np.asarray(raw["block_time"], dtype=float)
    z = _half_disagreement(np.asarray(raw["block_sum"], dtype=float), block_time)
    z[~ok] = np.nan
    n_tests = max(int(np.sum(np.isfinite(z))), 1)
    # At least 3: the block estimates' spread is itself estimated from a few blocks
    # (t-distributed with ~n_blocks − 2 degrees of freedom: heavier tails than the normal).
    z_crit = max(NormalDist().inv_cdf(1.0 - SETTLE_ALPHA / (2 * n_tests)), 3.0)
    drift = ok & np.any(z > z_crit, axis=-1)
    reasons = []
    # Blocks with data: one per renormalisation when there are fewer of those than blocks.
    filled = np.sum(block_time > 0, axis=1)
    few = ok & (filled < MIN_SETTLE_BLOCKS)
    if np.any(few):
        bad = np.flatnonzero(few)
        where = ("" if few.size == 1
                 else f" in {bad.size} of {few.size} runs (first: {bad[:5].tolist()})")
        reasons.append(f"the averaging window holds only {int(filled[few].min())} "
                       f"re-orthonormalisation(s){where}: too few for a standard error (NaN below "
                       f"2) and for the check that the estimate has settled (at least "
                       f"{MIN_SETTLE_BLOCKS}); lengthen the averaging window or shorten "
                       f"renorm_interval")
    if np.any(drift):
        bad = np.flatnonzero(drift)
        where = ("" if drift.size == 1
                 else f" in {bad.size} of {drift.size} runs (first: {bad[:5].tolist()})")
        reasons.append(f"the first and second half of the run disagree by more than "
                       f"{z_crit:.2g} standard errors{where}")
    if time_scale is not None:
        scale = np.broadcast_to(np.asarray(time_scale, dtype=float), ok.shape)
        shortest = min(np.inf if transient is None else transient,
                       np.inf if window is None else window)
        slow = ok & np.isfinite(scale) & (scale > shortest)
        if np.any(slow):
            bad = np.flatnonzero(slow)
            tau = float(np.max(scale[slow]))
            where = ("" if slow.size == 1
                     else f" in {bad.size} of {slow.size} runs (first: {bad[:5].tolist()})")
            parts = [f"the {name} ({value:.4g} {unit})" for name, value in
                     (("transient", transient), ("averaging window", window))
                     if value is not None and value < tau]
            reasons.append(f"{' and '.join(parts)} {'is' if len(parts) == 1 else 'are'} shorter "
                           f"than the time scale {scale_name} ({tau:.4g} {unit}){where}, so the "
                           f"directions may not have aligned and the batch-means error is too "
                           f"small; use at least {ALIGN_FACTOR * tau:.3g} {unit} of each")
    if reasons:
        warnings.warn(f"{what}: the estimate has not settled: " + "; ".join(reasons) +
                      " (the standard errors do not include this bias)",
                      ConvergenceWarning, stacklevel=stacklevel)
    return {"settled": not reasons, "settle_z": z if z.shape[0] > 1 else z[0],
            "settle_z_critical": z_crit, "time_scale": time_scale}


def kaplan_yorke_dimension(exponents: ArrayLike) -> float:
    """D_KY = j + (λ_1 + … + λ_j)/|λ_{j+1}|, j the largest index with a non-negative partial sum.

    Returns NaN (with a warning) when every partial sum is non-negative: more exponents needed;
    NaN for exponents that hold NaN (a failed run's).
    """
    lam = np.sort(np.asarray(exponents, dtype=float))[::-1]
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"exponents: expected a non-empty 1-D array, got shape {lam.shape}")
    if np.any(np.isnan(lam)):
        return float("nan")  # a failed run's exponents: no dimension
    sums = np.cumsum(lam)
    if lam[0] < 0:
        return 0.0
    j = int(np.max(np.flatnonzero(sums >= 0))) + 1
    if j >= lam.size:
        warnings.warn("kaplan_yorke_dimension: all partial sums are non-negative; compute more "
                      "exponents", ConvergenceWarning, stacklevel=2)
        return float("nan")
    return j + sums[j - 1] / abs(lam[j])


@dataclass
class LyapunovResult(Result):
    """Lyapunov exponents from QR accumulation.

    Attributes
    ----------
    exponents, stderr : ndarray, shape (k,) or (batch, k)
        Exponents in decreasing order (per unit time for DDEs, per step for products) and their
        batch-means standard errors.
    running : ndarray, shape (n_running, k) or (batch, n_running, k)
        The running estimate at ``running_t`` (elapsed time/steps after the transient), at
        geometrically spaced checkpoints (for convergence plots on a log axis).
    vectors : ndarray or None
        Products: the final orthonormal directions, shape (d, k) per problem (columns).
        DDEs: the value at the final time of each Lyapunov function, shape (k, dim).
    status : int or ndarray of int
        0 when the run completed (see :data:`delyap.STATUS_NAMES`).
    info : dict
        The transient used, the time scale and the settle check (``settled``, ``settle_z``).

    ``success``, ``message``, ``raise_for_status()`` and ``to_dict()`` as every delyap result.
    """

    exponents: np.ndarray
    stderr: np.ndarray
    running: np.ndarray
    running_t: np.ndarray
    vectors: Optional[np.ndarray]
    status: Union[int, np.ndarray]
    batch_size: Optional[int]
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def kaplan_yorke_dimension(self) -> Union[float, np.ndarray]:
        """Kaplan–Yorke (Lyapunov) dimension, per problem for a batch."""
        if self.batch_size is None:
            return kaplan_yorke_dimension(self.exponents)
        return np.array([kaplan_yorke_dimension(e) for e in self.exponents])

    def __repr__(self) -> str:
        if self.batch_size is None:
            pairs = ", ".join(f"{e:.5g} ± {s:.2g}" for e, s in zip(self.exponents, self.stderr))
            return f"LyapunovResult([{pairs}])"
        return (f"LyapunovResult(batch={self.batch_size}, k={self.exponents.shape[-1]}, "
                f"top exponent in [{np.nanmin(self.exponents[:, 0]):.4g}, "
                f"{np.nanmax(self.exponents[:, 0]):.4g}])")

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset``: ``exponents`` and ``stderr`` with dims (parameter, exponent)
        for a DDE sweep (the swept parameters, e.g. ``tau``, as coordinates along
        ``parameter``), (problem, exponent) for a batch of products, (exponent,) for one run;
        the running estimates along ``checkpoint``; ``status`` per run. Needs
        ``delyap[xarray]``."""
        from ._result import dataset_attrs, import_xarray

        xr = import_xarray()
        batch = self.info.get("batch_dim", "parameter")
        lead = () if self.batch_size is None else (batch,)
        k = self.exponents.shape[-1]
        data = {"exponents": (lead + ("exponent",), self.exponents),
                "stderr": (lead + ("exponent",), self.stderr),
                "running": (lead + ("checkpoint", "exponent"), self.running),
                "running_t": (lead + ("checkpoint",), self.running_t),
                "status": (lead, np.asarray(self.status))}
        coords: dict = {"exponent": np.arange(1, k + 1)}
        if self.batch_size is not None:
            coords[batch] = np.arange(self.batch_size)
            coords.update({name: (batch, np.asarray(v))
                           for name, v in self.info.get("parameters", {}).items()})
        return xr.Dataset(data, coords=coords, attrs=dataset_attrs(self.info))

    def plot(self, path: Optional[str] = None, *, ax=None, index: int = 0):
        """Running estimates against elapsed time, with the final ±2 stderr bands."""
        from .plot import figure_axes, finish_figure

        plt, fig, ax = figure_axes(ax, (7, 4))
        run = self.running if self.batch_size is None else self.running[index]
        t = self.running_t if self.batch_size is None else self.running_t[index]
        ex = self.exponents if self.batch_size is None else self.exponents[index]
        se = self.stderr if self.batch_size is None else self.stderr[index]
        for j in range(run.shape[-1]):
            line, = ax.plot(t, run[:, j], lw=1,
                            label=f"λ{j + 1} = {_estimate_text(float(ex[j]), float(se[j]))}")
            ax.axhspan(ex[j] - 2 * se[j], ex[j] + 2 * se[j], color=line.get_color(), alpha=0.15)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.set_xlabel(self.info.get("time_label", "elapsed time"))
        per_step = self.info.get("time_label") == "steps"
        ax.set_ylabel(f"running estimate of λ ({'per step' if per_step else 'per unit time'})")
        ax.set_title("Lyapunov exponents: running estimates, bands ±2 standard errors",
                     fontsize=10)
        ax.legend(fontsize=8, loc="best")
        finish_figure(plt, fig, path)
        return ax


def _estimate_text(value: float, stderr: float) -> str:
    """``value ± stderr`` with the value rounded to the error's first significant digit, so
    every legend entry reads alike (not 3.091e-05 beside 0.0412)."""
    if not (np.isfinite(value) and np.isfinite(stderr)) or stderr <= 0:
        return f"{value:+.4g}"
    decimals = max(0, 1 - int(math.floor(math.log10(stderr))))
    return f"{value:+.{decimals}f} ± {stderr:.{decimals}f}"


def _squeeze(raw: dict, batched: bool, keys=("exponents", "stderr", "running", "running_t",
                                              "vectors", "status")) -> dict:
    out = {k: raw[k] for k in keys}
    if not batched:
        out = {k: (v[0] if k != "status" else int(v[0])) for k, v in out.items()}
    return out


# ----------------------------------------------------------------------------- random products
def iid_product(matrices: Union[ArrayLike, Callable[[np.random.Generator], ArrayLike]],
                probabilities: Optional[ArrayLike] = None, *, steps: int,
                n_exponents: Optional[int] = None,
                transient: Optional[int] = None, seed: int = 0, renorm_interval: int = 1,
                threads: Optional[int] = None, n_blocks: int = 32,
                n_running: int = 200, throw: bool = True, progress: ProgressLike = None,
                client: Any = None, store: Optional[str] = None) -> LyapunovResult:
    """Lyapunov exponents of the product A_{ξ_n} ⋯ A_{ξ_1} with ξ i.i.d.

    Parameters
    ----------
    matrices : array (M, d, d), array (batch, M, d, d), or callable
        The finite set of matrices (a batch of independent problems runs in parallel), or a
        callable ``sampler(rng) -> (d, d) array`` drawing the next matrix from a
        ``numpy.random.Generator`` (a slow Python loop for users with their own samplers).
    probabilities : array (M,) or (batch, M), optional
        Probabilities of the matrices (default uniform).
    steps : int
        Product length after the transient.
    n_exponents : int, optional
        Number of exponents k (default: all d).
    transient : int, optional
        Steps discarded before accumulation. None (default): automatic, from the time scale
        τ = 1/min_{j≤k} |log|ρ_j|| of the mean matrix E[A] (eigenvalues ρ_j by decreasing
        modulus; for A = I − ηH products, 1/|GD exponent|): ALIGN_FACTOR = 5 τ, at least 10 %
        and at most 100 % of ``steps`` (:func:`auto_transient`). The mean matrix is used up to
        d = 256; beyond that, and for a sampler, only the 10 % rule applies. The value used is
        ``result.info["transient"]``.
    seed : int
        Seed of the counter-based generator: problem i of a batch uses stream i, so results do
        not depend on ``threads``.
    renorm_interval : int
        QR every this many steps (1 is safest; larger is faster when the spread is small). A
        window of several products that loses a direction to rounding (non-normal products
        merge their columns, or one underflows: the part of a column left after
        orthogonalisation below 1e-12 of its largest entry) fails with status lost_direction
        rather than report its noise or −∞: use a smaller interval.
    threads : int, optional
        Worker threads for the problems of a batch (default: all cores).
    throw : bool
        True (default): a product that overflows or underflows to a non-finite value raises
        :class:`delyap.IntegrationError` (``err.solution`` holds the result, ``err.failed`` the
        problems); False: the result comes back with ``status`` set (``success`` False).
    progress : None, bool or callable
        A progress bar over the problems (see :func:`delyap.solve_dde`).
    client, store :
        Run a batch of problems on a Dask cluster in chunks, bit-identical to the local run
        (problem i keeps stream i), saving finished chunks in the folder ``store`` to resume
        from (see :func:`delyap.solve_dde` and :mod:`delyap.distributed`).

    A run whose estimate has not settled (see :func:`check_settled`) warns with a
    :class:`delyap.ConvergenceWarning`; ``result.info["settled"]`` records the verdict.

    Singular matrices: a direction the product maps to zero has the exponent −∞, which is its
    exact value, so it comes back as ``-inf`` with status 0 (and a NaN standard error) with
    ``renorm_interval=1``; failures are overflow, a non-finite entry and (with a longer
    interval) a direction lost within a window.
    """
    steps = as_count(steps, "steps")
    n_threads = as_threads(threads)
    if transient is not None:
        transient = as_count(transient, "transient", minimum=0)
    renorm_interval = as_count(renorm_interval, "renorm_interval")
    n_blocks = as_count(n_blocks, "n_blocks", minimum=2, maximum=MAX_BLOCKS)
    n_running = as_count(n_running, "n_running")
    seed = as_count(seed, "seed", minimum=0, maximum=2**64 - 1)
    progress = check_progress(progress)
    check_distributed(client, store)
    if callable(matrices):
        if client is not None:
            raise ValueError("client: a Python sampler runs locally (give the matrices as an "
                             "array to run on a cluster)")
        if transient is None:
            transient = auto_transient(None, steps)
        raw = _iid_product_python(matrices, steps, n_exponents, transient, seed, renorm_interval,
                                  n_blocks, n_running)
        return _finish_product(raw, False, None, steps, transient, None, throw)
    mats = as_float_array(matrices, "matrices", ndim=(3, 4))
    batched = mats.ndim == 4
    if not batched:
        mats = mats[None]
    P, M, d, d2 = mats.shape
    if d != d2:
        raise ValueError(f"matrices: must be square, got shape {mats.shape[-2:]}")
    if P == 0 or M == 0 or d == 0:
        raise ValueError(f"matrices: empty set (shape {mats.shape})")
    if probabilities is None:
        probs = np.full((P, M), 1.0 / M)
    else:
        probs = as_float_array(probabilities, "probabilities", ndim=(1, 2))
        probs = np.broadcast_to(probs, (P, M)) if probs.shape in ((M,), (P, M)) else None
        if probs is None:
            raise ValueError(f"probabilities: expected shape ({M},) or ({P}, {M})")
        if np.any(probs < 0):
            raise ValueError("probabilities: must be non-negative")
        total = probs.sum(axis=1)
        if np.any(np.abs(total - 1) > 1e-9):
            raise ValueError(f"probabilities: must sum to 1, got "
                             f"{total.min():.6g}…{total.max():.6g}")
    cumulative = np.cumsum(probs, axis=1)
    cumulative[:, -1] = 1.0
    k = d if n_exponents is None else as_count(n_exponents, "n_exponents", maximum=d)
    time_scale: Union[None, float, np.ndarray] = None
    if d <= MEAN_MAP_MAX_DIM:
        mean_map = np.einsum("pm,pmij->pij", probs, mats)
        with np.errstate(divide="ignore"):
            scales = mean_map_time_scale(np.log(np.abs(np.linalg.eigvals(mean_map))), k)
        time_scale = scales if batched else float(scales[0])
    if transient is None:
        transient = auto_transient(time_scale, steps)
    core_args = (np.ascontiguousarray(mats), np.ascontiguousarray(cumulative), k, steps,
                 transient, renorm_interval, seed, n_blocks, n_running, n_threads)
    if client is not None:
        from .distributed import iid_product_chunks

        raw = iid_product_chunks(client, core_args, store=store, progress=progress)
    else:
        with Progress(progress, P, "iid_product", "problem") as bar, bar.stage(P):
            raw = _core.iid_product(*core_args)
    res = _finish_product(raw, batched, P, steps, transient, time_scale, throw)
    if client is not None:
        res.info["distributed"] = raw["distributed"]
    return res


# The mean matrix's eigenvalues cost O(d³) once, like one QR step; above this size a short run
# would spend most of its time on them, so the default transient falls back to the 10 % rule.
MEAN_MAP_MAX_DIM = 256


def _finish_product(raw, batched, P, steps, transient, time_scale, throw) -> LyapunovResult:
    """Result of iid_product (compiled or sampler): the settle check, then throw=."""
    res = LyapunovResult(**_squeeze(raw, batched), batch_size=P if batched else None,
                         info={"steps": steps, "transient": transient, "time_label": "steps",
                               "batch_dim": "problem"})
    res._origin = "iid_product"
    raise_if_failed(res, throw)
    res.info.update(check_settled(raw, "iid_product", time_scale=time_scale,
                                  transient=transient, window=steps, stacklevel=4))
    return res


# The fraction of a column that must survive a window's QR (qr_window.hpp's kWindowKept).
_WINDOW_KEPT = 1e-12


def _iid_product_python(sampler: Callable, steps, n_exponents, transient, seed, renorm_interval,
                        n_blocks, n_running) -> dict:
    rng = np.random.default_rng(seed)
    first = as_float_array(sampler(rng), "sampler(rng)", ndim=(2,))
    d = first.shape[0]
    if first.shape != (d, d):
        raise ValueError(f"sampler(rng): must return a square matrix, got {first.shape}")
    k = d if n_exponents is None else as_count(n_exponents, "n_exponents", maximum=d)
    q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    n_total = math.ceil(steps / renorm_interval)
    block_sum = np.zeros((n_blocks, k))
    block_time = np.zeros(n_blocks)
    # Geometric checkpoints, as in the compiled engine (statistics.hpp).
    checkpoints = [n_total if r + 1 >= n_running
                   else math.ceil(n_total ** ((r + 1) / n_running) - 1e-9)
                   for r in range(n_running)]
    running: list[np.ndarray] = []
    running_t: list[int] = []
    total, count, since, elapsed = np.zeros(k), 0, 0, 0
    status = 0
    A = first
    for n in range(transient + steps):
        if n > 0:
            A = np.asarray(sampler(rng))
            if np.iscomplexobj(A):  # (a float cast would drop the imaginary part, silently)
                raise TypeError(f"sampler(rng): returned a complex matrix at draw {n + 1}")
            A = A.astype(float, copy=False)
            if A.shape != (d, d):
                raise ValueError(f"sampler(rng): returned shape {A.shape}, expected {(d, d)}")
        q = A @ q
        since += 1
        done = n + 1
        if since == renorm_interval or done == transient or done == transient + steps:
            scale = np.max(np.abs(q), axis=0)
            q, r = np.linalg.qr(q)
            kept = np.abs(np.diag(r))
            # As the compiled engine (qr_window.hpp): stop, non_finite, on a non-finite R_jj or,
            # lost_direction, over more than one product, on a direction lost to rounding
            # within the window.
            if not np.all(np.isfinite(kept)):
                status = STATUS_CODE["non_finite"]
                break
            if since > 1 and not np.all(kept > _WINDOW_KEPT * scale):
                status = STATUS_CODE["lost_direction"]
                break
            signs = np.sign(np.diag(r))
            signs[signs == 0] = 1
            q *= signs
            logs = np.log(np.abs(np.diag(r)))
            if done > transient:
                b = min(count * n_blocks // n_total, n_blocks - 1)
                block_sum[b] += logs
                block_time[b] += since
                total += logs
                elapsed += since
                count += 1
                while len(running) < n_running and count >= checkpoints[len(running)]:
                    running.append(total / elapsed)
                    running_t.append(elapsed)
            since = 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ex = total / elapsed if status == 0 else np.full(k, np.nan)
    est = block_sum[block_time > 0] / block_time[block_time > 0, None]
    se = est.std(axis=0, ddof=1) / np.sqrt(est.shape[0]) if est.shape[0] > 1 else np.full(k, np.nan)
    # The compiled engine's raw layout (a batch of one), so both paths share _finish_product.
    return {"exponents": ex[None], "stderr": se[None], "running": np.array(running)[None],
            "running_t": np.array(running_t, dtype=float)[None], "vectors": q[None],
            "status": np.array([int(status)]), "block_sum": block_sum[None],
            "block_time": block_time[None]}


# ----------------------------------------------------------------------------- DDE spectra
def _augmented_history(history, system: DDESystem, k: int, n_grid: int, seed: int):
    """Trajectory history on an n_grid-point window grid plus random tangent functions."""
    base = build_history(history, system, 0.0, history_points=n_grid)
    D = system.dim
    if base.t.shape[0] != n_grid:  # a constant: repeat it on the grid
        t = np.linspace(base.t[0], base.t[-1], n_grid)
        x = np.repeat(base.x[:, :1, :], n_grid, axis=1)
        f = np.zeros_like(x)
    else:
        t, x, f = base.t, base.x, base.f
    rng = np.random.default_rng(seed)
    tx = rng.standard_normal((1, n_grid, k * D))
    tf = np.zeros_like(tx)
    ty = rng.standard_normal((1, k * D))
    B = max(x.shape[0], 1)
    xa = np.concatenate([x, np.broadcast_to(tx, (B, n_grid, k * D))], axis=2)
    fa = np.concatenate([f, np.broadcast_to(tf, (B, n_grid, k * D))], axis=2)
    By = base.y0.shape[0]
    ya = np.concatenate([base.y0, np.broadcast_to(ty, (By, k * D))], axis=1)
    c = np.ascontiguousarray
    return c(t), c(xa), c(fa), c(ya)


# Re-orthonormalisation interval of an ODE's tangent vectors when none is given.
ODE_RENORM_INTERVAL = 1.0
# Most points of the default history grid (a sweep over many decades of delay would need more
# to hold its random start functions in the smallest window: refused, naming history_points).
MAX_HISTORY_POINTS = 20_000
# The largest spread (λ₁ − λ_k)·τmax a DDE spectrum resolves: the k-th tangent function then
# spans e^spread in size over its window, and the QR carries its newest values (which drive
# its future) to absolute rounding of its oldest ones. At 25 they keep ~5 digits; Stuart–Landau
# oscillators with exponents 0 and −2λ, τ = 1: −27.78 for −28 (spread 28), −28.04 for −40.
MAX_WINDOW_SPREAD = 25.0
# A tangent direction must stay this far above atol over one re-orthonormalisation interval
# (λ_k·Δ ≥ log(ATOL_MARGIN·atol)): below it the step control, which sees its components
# against atol, no longer resolves it. diag(0, −30) gave −21.99 with Δ = 1 and atol 1e-9 (the
# value saturates near log(atol)/Δ).
ATOL_MARGIN = 1e3


def _resolution_check(raw: dict, system: DDESystem, renorm_interval: float,
                      atol: float) -> Optional[str]:
    """Marks lost_direction (in place in ``raw["status"]``) the successful members whose
    exponents a run cannot resolve: spread by more than MAX_WINDOW_SPREAD over their delay
    window, or (atol > 0) the last decaying below ATOL_MARGIN·atol within one interval;
    returns what it says or None."""
    status = np.asarray(raw["status"])
    ex = np.atleast_2d(np.asarray(raw["exponents"], dtype=float))
    P = ex.shape[0]
    delays = np.asarray(system.delays, dtype=float)
    window = (np.broadcast_to(delays.max(axis=1), (P,)) if delays.ndim == 2 and delays.shape[1]
              else np.zeros(P))
    # The interval each member ran with (DdeLyapunovProblem::renorm_for).
    step = (np.full(P, renorm_interval) if renorm_interval > 0 else
            np.where(window > 0, 0.5 * window, ODE_RENORM_INTERVAL))
    reasons = []
    with np.errstate(invalid="ignore"):
        spread = (ex[:, 0] - ex[:, -1]) * window
        decay = ex[:, -1] * step
    ok = status == 0
    wide = ok & (window > 0) & (spread > MAX_WINDOW_SPREAD)
    if np.any(wide):
        reasons.append(f"the exponents spread by {float(np.max(spread[wide])):.3g} over the delay "
                       f"window ((λ₁ − λ_k)·τmax > {MAX_WINDOW_SPREAD:g}): the last tangent "
                       f"functions span more than e^{MAX_WINDOW_SPREAD:g} in size over the window, "
                       f"beyond what double precision carries; ask for fewer exponents")
    floor = math.log(ATOL_MARGIN * atol) if atol > 0 else -np.inf
    fast = ok & ~wide & (decay < floor)
    if np.any(fast):
        reasons.append(f"the last tangent direction decays by e^{float(np.min(decay[fast])):.3g} "
                       f"over one re-orthonormalisation interval, below {ATOL_MARGIN:g}·atol "
                       f"where the step control no longer resolves it (its exponent saturates "
                       f"near log(atol)/interval); shorten renorm_interval or lower atol")
    if not reasons:
        return None
    status[wide | fast] = STATUS_CODE["lost_direction"]
    raw["status"] = status
    return "; ".join(reasons)


def lyapunov_spectrum(system: DDESystem, history: HistoryLike, n_exponents: int, t_total: float, *,
                      t_transient: Optional[float] = None, method: str = "DP5", rtol: float = 1e-6,
                      atol: float = 1e-9, renorm_interval: Optional[float] = None,
                      max_step: Optional[float] = None, seed: int = 0,
                      threads: Optional[int] = None, n_blocks: int = 32, n_running: int = 200,
                      history_points: Optional[int] = None, throw: bool = True,
                      progress: ProgressLike = None, client: Any = None,
                      store: Optional[str] = None) -> LyapunovResult:
    """Lyapunov spectrum of a DDE (compiled built-in systems; batches run in parallel).

    The tangent equations δ' = ∂f/∂x δ + Σ ∂f/∂x_τ δ(t − τ) use the system's analytic Jacobians
    and are integrated with the trajectory by the same method and step control. Every
    ``renorm_interval`` time units the k tangent functions are re-orthonormalised on the window
    [t − τmax, t] in the L2 inner product of their cubic Hermite interpolants (plus the current
    value), and log R_jj accumulated.

    Parameters
    ----------
    system : DDESystem
        A compiled built-in (MackeyGlass, DelayedLogistic, LinearDDE), a Kuramoto or
        Stuart–Landau network (delayed or not; the tangent vectors go through the sparse graph,
        a coupling array is a batch), or a Python system with ``jac``. Array parameters make a
        batch: one spectrum per trajectory (e.g. a τ-sweep).
    history : as for :func:`delyap.solve_dde`
    n_exponents : int
        Number of exponents k.
    t_total : float
        Averaging time after the transient.
    t_transient : float, optional
        Time integrated (trajectory and tangents) before averaging starts. None (default):
        automatic, ``result.info["t_transient"]``: ALIGN_FACTOR = 5 delay windows τmax (the
        state is a function on the window, so the random initial tangent functions are
        forgotten only after several windows), at least 10 % and at most 100 % of ``t_total``
        (:func:`auto_transient`; the largest τmax of a batch). A run whose estimate has not
        settled — the halves of the record disagree beyond their errors, or the transient or
        ``t_total`` is shorter than τmax — warns with a :class:`delyap.ConvergenceWarning`.
    renorm_interval : float, optional
        Time between re-orthonormalisations (default: half of each trajectory's largest delay;
        for a system without delays, an ODE, ``ODE_RENORM_INTERVAL`` = 1 time unit, and then
        k ≤ dim).
    max_step : float, optional
        Step bound. Each trajectory's step is also capped at τmax / (⌈k / 2·dim⌉ + 2) so that
        its window holds the anchors that k independent tangent functions need.
    seed : int
        Seed of the random initial tangent functions.
    threads : int, optional
        Worker threads for the trajectories of a batch (default: all cores).
    n_blocks, n_running : int
        Batch-means blocks of the standard error (2 to MAX_BLOCKS; a run with fewer
        re-orthonormalisations than blocks leaves some empty, and one with fewer than 4 filled
        warns that it has no error estimate worth the name) and checkpoints of the running
        estimate.
    history_points : int, optional
        Grid points of the initial history window carrying the random tangent functions
        (default max(2·anchors + 1, 33), anchors = ⌈k / 2·dim⌉ + 2; fewer than 2·anchors + 1
        are refused: they cannot hold k independent functions).
    throw : bool
        True (default): a trajectory that fails raises :class:`delyap.IntegrationError`
        carrying the result; False: see ``result.status``.
    progress : None, bool or callable
        A progress bar over the trajectories of a batch (see :func:`delyap.solve_dde`).
    client, store :
        Run a batch (a sweep) on a Dask cluster in chunks, bit-identical to the local run
        (the transient is fixed from the whole batch first), saving finished chunks in the
        folder ``store`` to resume from (see :func:`delyap.solve_dde`).
    """
    if not isinstance(system, DDESystem):
        raise TypeError(f"system: expected a system from delyap.rhs, got {type(system).__name__}")
    system._check_lyapunov()
    progress = check_progress(progress)
    check_distributed(client, store)
    k = as_count(n_exponents, "n_exponents", maximum=10_000)
    t_total = as_positive(t_total, "t_total")
    n_threads = as_threads(threads)
    # The delay window is the DDE's memory: the time scale of the default transient.
    window = system.max_delay
    ode = window == 0.0
    if ode and k > system.dim:
        raise ValueError(f"n_exponents: an ODE of dimension {system.dim} has {system.dim} "
                         f"exponents, asked for {k}")
    if not ode and k > system.dim:
        # A sweep whose members include one without delays (τ = 0): that member is an ODE.
        delays = np.asarray(system.delays, dtype=float)
        member_max = delays.max(axis=1) if delays.ndim == 2 and delays.shape[1] else None
        if member_max is not None and np.any(member_max == 0.0):
            first = int(np.flatnonzero(member_max == 0.0)[0])
            raise ValueError(f"n_exponents: member {first} of the batch has no delay (an ODE of "
                             f"dimension {system.dim}, with {system.dim} exponents), asked for "
                             f"{k}: sweep delays > 0 or ask for at most {system.dim}")
    seed = as_count(seed, "seed", minimum=0)
    t_transient = (auto_transient(window if not ode else None, t_total) if t_transient is None
                   else as_positive(t_transient, "t_transient", allow_zero=True))
    if not isinstance(method, str) or method.upper() not in ("DP5", "BS3"):
        raise ValueError(f"method: expected DP5 or BS3 for Lyapunov spectra, got {method!r}")
    # Default: half the delay window (DDEs), one time unit (ODEs: log R stays far from
    # overflow for exponents up to ~100).
    renorm = ((ODE_RENORM_INTERVAL if ode else 0.0) if renorm_interval is None
              else as_positive(renorm_interval, "renorm_interval"))
    # The window must hold enough anchors: each carries 2·dim values of every function. The
    # C++ side caps each trajectory's step at its own τmax / anchors_needed.
    anchors_needed = math.ceil(k / (2 * system.dim)) + 2
    opt = _core.SolverOptions()
    opt.method = METHODS[method.upper()]
    opt.rtol = as_positive(rtol, "rtol")
    opt.atol = as_positive(atol, "atol", allow_zero=True)
    opt.max_step = 0.0 if max_step is None else as_positive(max_step, "max_step")
    # The k random initial tangent functions live on the grid: it needs the anchors of k
    # independent functions (fewer points lose directions at the first re-orthonormalisation)
    # in every member's window, and the grid spans the batch's largest: a τ-sweep from 0.5 to
    # 30 needs 60 times the points.
    least = 2 * anchors_needed + 1
    delays = np.asarray(system.delays, dtype=float)
    member = delays.max(axis=1) if delays.ndim == 2 and delays.shape[1] else np.zeros(1)
    smallest = float(member[member > 0].min()) if np.any(member > 0) else window
    dense = least if window == 0.0 else math.ceil((least - 1) * window / smallest) + 1
    if history_points is None:
        n_grid = max(dense, 33)
        if n_grid > MAX_HISTORY_POINTS:
            raise ValueError(f"history_points: the batch's delay windows run from {smallest:g} "
                             f"to {window:g}, so {n_grid} grid points would be needed for "
                             f"{least} in the smallest window ({k} tangent functions); sweep "
                             f"fewer decades of delay per call, or pass history_points")
    else:
        n_grid = as_count(history_points, "history_points", minimum=least)
        if n_grid < dense:
            raise ValueError(f"history_points: {n_grid} points over the largest window "
                             f"({window:g}) leave fewer than {least} in the smallest "
                             f"({smallest:g}), too few for {k} independent tangent functions; "
                             f"at least {dense}")
    t, x, f, y0 = _augmented_history(history, system, k, n_grid, seed)
    args = (t, x, f, y0, 0.0, t_transient, t_total, renorm, k, anchors_needed, opt,
            as_count(n_blocks, "n_blocks", minimum=2, maximum=MAX_BLOCKS),
            as_count(n_running, "n_running"),
            n_threads)
    if client is not None:
        from .distributed import lyapunov_chunks

        raw = lyapunov_chunks(client, system, args, store=store, progress=progress)
    else:
        n = system.n_trajectories
        # A batch counts spectra; a single spectrum thousandths of its time span.
        total, unit = (_core.PROGRESS_SPAN_UNITS, "‰ of t") if n == 1 else (n, "traj")
        with Progress(progress, total, "lyapunov_spectrum", unit) as bar, bar.stage(total):
            raw = system._lyapunov(args)
    lost = _resolution_check(raw, system, renorm, opt.atol)
    # Time-average the raw log sums; sort is not needed: QR order is already decreasing
    # in the limit, but short runs may swap neighbours, so report as computed.
    batched = system.batch_size is not None
    out = _squeeze(raw, batched)
    res = LyapunovResult(**out, batch_size=system.batch_size,
                         info={"t_total": t_total, "t_transient": t_transient,
                               "renorm_interval": renorm_interval or (renorm if ode else "τmax/2"),
                               "stats": raw["stats"], "time_label": "time after transient",
                               "parameters": system.swept_parameters()})
    if client is not None:
        res.info["distributed"] = raw["distributed"]
    if lost is not None:
        res.info["lost_direction"] = lost
    res._origin = "lyapunov_spectrum"
    raise_if_failed(res, throw)
    res.info.update(check_settled(raw, "lyapunov_spectrum", time_scale=window if not ode else None,
                                  transient=t_transient, window=t_total, unit="time units",
                                  scale_name="τmax (the delay window)"))
    return res
from .layer_spectrum import LayerSpectrum, LayerSweep, layer_spectrum, layer_spectrum_sweep  # noqa: E402,F401,I001  (issue 14)
