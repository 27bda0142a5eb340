"""SGD stability from a Gram matrix (numpy in, C++ core underneath).

At an interpolating minimum θ* of L(θ) = (1/N) Σ ½‖f_i(θ) − y_i‖², the per-sample Hessians
are H_i = Σ_o g_io g_ioᵀ (g_io = ∇f_io), so SGD linearised at θ* is, in output coordinates
u = J δ (J the N·c × D Jacobian),
    u ← (I − (η/B) K P_ξ) u,    K = J Jᵀ,
whose Lyapunov spectrum is the normal-space spectrum of SGD (Chemnitz & Engel 2024):
λ₁ < 0 means SGD with (η, B) can converge to θ*, λ₁ > 0 that it cannot.

Batch law. Chemnitz & Engel draw each step's mini-batch ξ_n independently and uniformly among
the subsets of {1, …, N} of size B (no index twice within a batch, batches i.i.d. over steps),
so that B = N is gradient descent. That is ``sampling="without"``, the default here; 'iid'
(indices with replacement, where B = N still carries noise) and 'epochs' (reshuffled passes, as
a torch DataLoader with drop_last) are there for comparison.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .. import _core
from .._validate import as_count, as_float_array, as_positive
from ..device import cuda_backend, current_stream, device_info, resolve_device, to_host
from ..lyapunov import auto_transient, check_settled, mean_map_time_scale, raise_if_failed

__all__ = ["SGDLyapunovResult", "GramSpectrum", "gram_lyapunov", "gd_exponent",
           "mean_square_exponent", "gram_spectrum", "SAMPLING", "DEFAULT_SAMPLING"]

SAMPLING = {"iid": 0, "without": 1, "epochs": 2}
# The batch law of Chemnitz & Engel (2024): uniform B-subsets, i.i.d. over steps (module doc).
DEFAULT_SAMPLING = "without"
_SAMPLING_ALIASES = {"with_replacement": "iid", "without_replacement": "without",
                     "shuffle": "epochs", "epoch": "epochs"}


def _sampling_name(sampling: str) -> str:
    if not isinstance(sampling, str):
        raise TypeError(f"sampling: expected a string, got {type(sampling).__name__}")
    name = _SAMPLING_ALIASES.get(sampling, sampling)
    if name not in SAMPLING:
        raise ValueError(f"sampling: expected 'iid', 'without' or 'epochs', got {sampling!r}")
    return name


@dataclass(frozen=True)
class GramSpectrum:
    """Eigen-decomposition of K restricted to its range (the normal space in output coordinates)."""

    K: np.ndarray
    eigenvalues: np.ndarray  # the nonzero ones, decreasing
    basis: np.ndarray        # n_rows × rank, orthonormal
    outputs: int

    @property
    def rank(self) -> int:
        return int(self.eigenvalues.shape[0])

    @property
    def n_samples(self) -> int:
        return self.K.shape[0] // self.outputs

    @property
    def full_rank(self) -> bool:
        return self.rank == self.K.shape[0]


def gram_spectrum(K, outputs: int = 1, rank_tol: Optional[float] = None) -> GramSpectrum:
    """Validate K and split off its null space (rank-deficient K: duplicated samples, N·c > D…).

    rank_tol: eigenvalues below rank_tol·max(eigenvalue) count as zero (default n·1e-12).
    """
    K = as_float_array(K, "K", ndim=(2,))
    n = K.shape[0]
    if K.shape != (n, n) or n == 0:
        raise ValueError(f"K: expected a non-empty square matrix, got shape {K.shape}")
    outputs = as_count(outputs, "outputs")
    if n % outputs:
        raise ValueError(f"outputs: K has {n} rows, not a multiple of {outputs} outputs per sample")
    asym = np.max(np.abs(K - K.T))
    if asym > 1e-8 * max(1.0, np.max(np.abs(K))):
        raise ValueError(f"K: must be symmetric (max |K − Kᵀ| = {asym:.3g})")
    K = np.ascontiguousarray(0.5 * (K + K.T))
    w, V = np.linalg.eigh(K)
    if w[0] < -1e-8 * max(1.0, w[-1]):
        raise ValueError(f"K: must be positive semi-definite (smallest eigenvalue {w[0]:.3g})")
    tol = (n * 1e-12 if rank_tol is None else as_positive(rank_tol, "rank_tol")) * max(w[-1], 0.0)
    keep = w > tol
    if not np.any(keep):
        raise ValueError("K: is zero; the loss is flat at this point (no normal directions)")
    order = np.argsort(w[keep])[::-1]
    return GramSpectrum(K=K, eigenvalues=w[keep][order],
                        basis=np.ascontiguousarray(V[:, keep][:, order]), outputs=outputs)


def gd_exponent(spectrum: GramSpectrum, lr) -> np.ndarray:
    """Full-batch GD: μ = log max_i |1 − η κ_i / N| over the nonzero eigenvalues κ_i of K."""
    lr = np.asarray(lr, dtype=float)
    kappa = spectrum.eigenvalues / spectrum.n_samples
    return np.log(np.max(np.abs(1.0 - lr[..., None] * kappa), axis=-1))


def gd_time_scale(spectrum: GramSpectrum, lr, n_exponents: int = 1) -> np.ndarray:
    """Steps over which linearised SGD forgets its initial directions, per learning rate: the
    time scale of its mean map E[I − (η/B) K P_ξ] = I − (η/N) K, i.e. of GD
    (:func:`delyap.lyapunov.mean_map_time_scale` of the GD exponents)."""
    lr = np.atleast_1d(np.asarray(lr, dtype=float))
    with np.errstate(divide="ignore"):
        rates = np.log(np.abs(1.0 - lr[:, None] * spectrum.eigenvalues / spectrum.n_samples))
    return mean_map_time_scale(rates, n_exponents)


def _ms_operator(spec: GramSpectrum, lr: float, B: int, sampling: str):
    """S ↦ E[A_ξ S A_ξᵀ] on symmetric S supported on range(K), in the eigenbasis of K."""
    V, lam, c = spec.basis, spec.eigenvalues, spec.outputs
    N = spec.n_samples
    r = lam.shape[0]
    a1 = lr / N                        # E[(η/B) K P] = (η/N) K
    diag_coef = lr**2 / (B * N)       # i = j terms: K D_c(S) K
    if sampling == "iid":
        off_coef, off_minus_diag = lr**2 * (B - 1) / (B * N**2), False
    else:  # distinct indices within a batch
        off_coef = lr**2 * (B - 1) / (B * N * (N - 1)) if N > 1 else 0.0
        off_minus_diag = True
    Vb = V.reshape(N, c, r)
    lsum = lam[:, None] + lam[None, :]
    lprod = lam[:, None] * lam[None, :]

    def apply(S):
        VS = V @ S                                    # n × r
        # D_c(V S Vᵀ): the c × c diagonal blocks, then Vᵀ D V = Σ_i V_iᵀ D_i V_i.
        blocks = np.einsum("ior,ipr->iop", VS.reshape(N, c, r), Vb)
        VtDV = np.einsum("iop,ior,ips->rs", blocks, Vb, Vb, optimize=True) if c > 1 else \
            (Vb[:, 0, :] * blocks[:, 0, 0][:, None]).T @ Vb[:, 0, :]
        KDK = lprod * VtDV   # K D_c(S) K in the eigenbasis
        KSK = lprod * S
        out = S - a1 * lsum * S + diag_coef * KDK
        if off_coef:  # pairs of distinct batch slots
            out = out + off_coef * (KSK - KDK if off_minus_diag else KSK)
        return out

    return apply


def mean_square_exponent(spectrum: GramSpectrum, lr: float, batch_size: int, *,
                         sampling: str = DEFAULT_SAMPLING, tol: float = 1e-7, max_iter: int = 3000,
                         start: Optional[np.ndarray] = None) -> Tuple[float, np.ndarray]:
    """½ log ρ(E[A ⊗ A]) on symmetric matrices (Ma & Ying 2021), by power iteration.

    Works in the eigenbasis of K on range(K) (never forms N²×N² matrices): each iteration costs
    two rank × n products. Mean-square stability (value < 0) is stricter than almost-sure
    stability: λ₁ ≤ ½ log ρ. Returns (value, eigen-matrix) so sweeps can warm-start.
    Defined for i.i.d. batches ('iid', 'without'); NaN for reshuffled epochs.
    """
    sampling = _sampling_name(sampling)
    if sampling == "epochs":
        return float("nan"), None
    apply = _ms_operator(spectrum, float(lr), int(batch_size), sampling)
    # The map S ↦ E[A S Aᵀ] preserves the cone of PSD matrices, so its dominant eigenvector is
    # PSD and has a positive overlap with the identity (inside the cone). A warm start alone can
    # be an exact non-dominant eigenvector (B = N: the map is diagonal in K's eigenbasis) where
    # the iteration would stall; the identity added to it keeps the dominant one in play.
    S = np.eye(spectrum.rank) / np.sqrt(spectrum.rank)
    if start is not None:
        S = S + start / np.linalg.norm(start)
    S = S / np.linalg.norm(S)
    rho_prev = np.inf
    for _ in range(max_iter):
        T = apply(S)
        rho = float(np.sum(S * T))  # Rayleigh quotient (S normalised)
        nT = np.linalg.norm(T)
        if nT == 0:
            return float("-inf"), S
        S = T / nT
        if abs(rho - rho_prev) <= tol * abs(rho):
            break
        rho_prev = rho
    rho = max(abs(rho), np.finfo(float).tiny)
    return 0.5 * float(np.log(rho)), S


@dataclass
class SGDLyapunovResult:
    """Lyapunov exponents of SGD linearised at a minimum, for one or many (η, B).

    Attributes
    ----------
    exponents, stderr : ndarray (k,) for one configuration, (n_configs, k) for several
        Per-step exponents on the normal space, largest first, with batch-means errors.
    gd_exponent : float or ndarray
        μ = log max |1 − η κ_i / N|, the full-batch GD counterpart (stable iff μ < 0).
    mean_square_exponent : float or ndarray or None
        ½ log ρ(E[A ⊗ A]) when requested (stable in mean square iff < 0).
    normal_dim : int
        Dimension of the normal space = rank of K.
    """

    exponents: np.ndarray
    stderr: np.ndarray
    gd_exponent: Union[float, np.ndarray]
    mean_square_exponent: Optional[Union[float, np.ndarray]]
    normal_dim: int
    lr: Union[float, np.ndarray]
    batch_size: Union[int, np.ndarray]
    sampling: str
    steps: int
    running: Optional[np.ndarray] = None
    running_t: Optional[np.ndarray] = None
    status: Union[int, np.ndarray] = 0
    info: dict = field(default_factory=dict, repr=False)

    @property
    def top(self):
        """λ₁ (per configuration)."""
        return self.exponents[..., 0]

    @property
    def stable(self):
        """True where λ₁ < 0: SGD can converge to this minimum."""
        return self.top < 0

    @property
    def success(self) -> bool:
        """True when every configuration ran to the end (status 0)."""
        return bool(np.all(np.asarray(self.status) == 0))

    @property
    def confident(self):
        """True where |λ₁| exceeds 3 standard errors (the sign is resolved)."""
        return np.abs(self.top) > 3 * self.stderr[..., 0]

    def __repr__(self) -> str:
        if np.ndim(self.lr) == 0:
            verdict = "stable" if self.stable else "unstable"
            ms = ("" if self.mean_square_exponent is None
                  else f", mean-square {self.mean_square_exponent:+.4g}")
            return (f"SGDLyapunovResult(η={self.lr:g}, B={self.batch_size}, λ1={self.top:+.5g} ± "
                    f"{self.stderr[0]:.2g} ({verdict}), GD μ={self.gd_exponent:+.4g}{ms}, "
                    f"normal_dim={self.normal_dim})")
        return (f"SGDLyapunovResult({len(self.lr)} configurations, normal_dim={self.normal_dim}, "
                f"{int(np.sum(self.stable))} stable)")


def _run_core(spec: GramSpectrum, lr: np.ndarray, batch: np.ndarray, *, steps, n_exponents,
              sampling, transient, seed, renorm_interval, threads, n_blocks, n_running,
              device: str = "cpu", seeds=None, streams=None):
    """One call of the core over configurations (lr[i], batch[i]); configuration i draws from
    Philox stream (seed, i), or (seeds[i], streams[i]) when given (device="cuda" only)."""
    k = as_count(n_exponents, "n_exponents", maximum=spec.rank)
    # Rank-deficient K: the core works in the coordinates of the orthonormal basis of range(K).
    basis = None if spec.full_rank else spec.basis
    eigenvalues = None if spec.full_rank else np.ascontiguousarray(spec.eigenvalues)
    lr = np.ascontiguousarray(lr, dtype=float)
    batch = np.ascontiguousarray(batch, dtype=np.int32)
    common = (SAMPLING[sampling], k, as_count(steps, "steps"),
              as_count(transient, "transient", minimum=0),
              as_count(renorm_interval, "renorm_interval"))
    seed = as_count(seed, "seed", minimum=0, maximum=2**64 - 1)
    n_blocks = as_count(n_blocks, "n_blocks", minimum=2)
    n_running = as_count(n_running, "n_running")
    if device == "cuda":
        backend = cuda_backend()
        if seeds is None:
            seeds = np.full(lr.shape, seed, dtype=np.uint64)
            streams = np.arange(lr.size, dtype=np.uint64)
        return backend.gram_lyapunov(spec.K, basis, eigenvalues, spec.outputs, lr, batch, *common,
                                     np.ascontiguousarray(seeds, dtype=np.uint64),
                                     np.ascontiguousarray(streams, dtype=np.uint64),
                                     n_blocks, n_running, current_stream())
    return _core.gram_lyapunov(spec.K, basis, eigenvalues, spec.outputs, lr, batch, *common, seed,
                               n_blocks, n_running,
                               0 if threads is None else as_count(threads, "threads", maximum=4096))


def _resolve_transient(spec: GramSpectrum, lr, n_exponents: int, steps: int, transient):
    """(transient, time scales per learning rate): the user's transient, or the automatic one
    from the longest GD time scale (one transient serves all configurations of a call)."""
    steps = as_count(steps, "steps")
    k = as_count(n_exponents, "n_exponents", maximum=spec.rank)
    tau = gd_time_scale(spec, lr, k)
    if transient is None:
        return auto_transient(tau, steps), tau
    return as_count(transient, "transient", minimum=0), tau


def _check_configs(lr, batch_size, n_samples: int, sampling: str):
    lr = as_float_array(lr, "lr", ndim=(0, 1))
    if lr.size == 0:
        raise ValueError("lr: no learning rates given")
    if np.any(lr <= 0):
        raise ValueError(f"lr: learning rates must be positive, got min {lr.min():g}")
    b = np.asarray(batch_size)
    if b.dtype.kind not in "iu" and not (b.dtype.kind == "f" and np.all(b == np.round(b))):
        raise TypeError(f"batch_size: expected integers, got {batch_size!r}")
    b = b.astype(np.int64)
    if b.size == 0:
        raise ValueError("batch_size: no batch sizes given")
    if np.any(b < 1):
        raise ValueError(f"batch_size: must be at least 1, got {b.min()}")
    if np.any(b > n_samples):
        raise ValueError(f"batch_size: {b.max()} is larger than the data set (N = {n_samples})")
    return lr, b


def gram_lyapunov(K, lr: float, batch_size: int, *, steps: int, n_exponents: int = 1,
                  sampling: str = DEFAULT_SAMPLING, transient: Optional[int] = None,
                  seed: int = 0, outputs: int = 1, renorm_interval: int = 10,
                  mean_square: bool = False, rank_tol: Optional[float] = None,
                  threads: Optional[int] = None, n_blocks: int = 32, n_running: int = 200,
                  device: Optional[str] = None, throw: bool = True) -> SGDLyapunovResult:
    """Top Lyapunov exponents of SGD at an interpolating minimum, from its Gram matrix.

    Parameters
    ----------
    K : array (N·c, N·c)
        Gram matrix J Jᵀ of the per-sample output gradients (c outputs per sample, rows grouped
        by sample: rows i·c … i·c + c − 1 belong to sample i).
    lr, batch_size :
        Learning rate η and mini-batch size B (1 ≤ B ≤ N). Arrays of equal length run several
        configurations in parallel.
    steps : int
        SGD steps averaged over (after ``transient``).
    sampling : {'without', 'iid', 'epochs'}
        'without' (default, the law of Chemnitz & Engel 2024): each batch is B distinct samples
        drawn uniformly, independently of earlier batches, so B = N is exactly gradient
        descent. 'iid': B indices with replacement (B = N is not GD). 'epochs': reshuffled
        passes over the data (drop_last), as a torch DataLoader does.
    transient : int, optional
        Steps discarded before averaging. None (default): automatic, from the time scale
        τ = 1/|μ| of the product's mean map, which is GD (μ the GD exponent; for k exponents
        the smallest |μ_j| of the first k, for several learning rates the largest τ):
        5 τ, at least 10 % and at most 100 % of ``steps``. Small learning rates need long
        runs: at η κ/N ≪ 1 the directions align only after ~1/|μ| steps, and a run started
        from random directions is biased by many standard errors (the error bars do not show
        it). The value used is ``result.info["transient"]``, τ is ``info["time_scale"]``.
    renorm_interval : int
        QR every this many steps (default 10; use 1 if the exponents are very spread out).
    mean_square : bool
        Also compute the mean-square exponent ½ log ρ(E[A⊗A]) (costs O(rank²·n) per iteration).
    device : {"cpu", "cuda"}, optional
        ``"cuda"``: one GPU thread block per configuration, same random streams as the CPU (the
        results agree up to rounding). None: "cuda" when K is a GPU array, else "cpu".
    throw : bool
        True (default): a configuration whose product overflows (non-finite R) raises
        :class:`delyap.IntegrationError` carrying the result; False: see ``result.status``.

    A :class:`delyap.ConvergenceWarning` says when the estimate has not settled: the first and
    second half of the run disagree beyond their standard errors, or the transient or
    ``steps`` is shorter than τ (``info["settled"]`` records the verdict).
    """
    device = resolve_device(device, K)
    K = to_host(K)
    sampling = _sampling_name(sampling)
    spec = K if isinstance(K, GramSpectrum) else gram_spectrum(K, outputs, rank_tol)
    lr_a, b_a = _check_configs(lr, batch_size, spec.n_samples, sampling)
    scalar = lr_a.ndim == 0 and b_a.ndim == 0
    lr_v, b_v = np.broadcast_arrays(np.atleast_1d(lr_a), np.atleast_1d(b_a))
    transient, tau = _resolve_transient(spec, lr_v, n_exponents, steps, transient)
    raw = _run_core(spec, lr_v, b_v, steps=steps, n_exponents=n_exponents, sampling=sampling,
                    transient=transient, seed=seed, renorm_interval=renorm_interval,
                    threads=threads, n_blocks=n_blocks, n_running=n_running, device=device)
    mu = gd_exponent(spec, lr_v)
    ms = None
    if mean_square:
        ms = np.array([mean_square_exponent(spec, l, b, sampling=sampling)[0]
                       for l, b in zip(lr_v, b_v)])
    pick = (lambda a: a[0]) if scalar else (lambda a: a)
    res = SGDLyapunovResult(
        exponents=pick(raw["exponents"]), stderr=pick(raw["stderr"]),
        gd_exponent=float(mu[0]) if scalar else mu,
        mean_square_exponent=None if ms is None else (float(ms[0]) if scalar else ms),
        normal_dim=spec.rank, lr=float(lr_v[0]) if scalar else lr_v,
        batch_size=int(b_v[0]) if scalar else b_v, sampling=sampling, steps=int(steps),
        running=pick(raw["running"]), running_t=pick(raw["running_t"]),
        status=int(raw["status"][0]) if scalar else raw["status"],
        info={**device_info(device), "transient": transient})
    raise_if_failed("gram_lyapunov", res, throw)
    res.info.update(check_settled(raw, "gram_lyapunov", time_scale=tau, transient=transient,
                                  window=res.steps))
    if scalar:
        res.info["time_scale"] = float(tau[0])
    return res
