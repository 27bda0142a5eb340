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

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from .. import _core
from .._progress import Progress, ProgressLike, check_progress
from .._result import Result, raise_if_failed
from .._system import ArrayLike
from .._validate import as_count, as_float_array, as_positive, as_threads, check_distributed
from ..device import cuda_backend, current_stream, device_info, resolve_device, to_host
from ..errors import ConvergenceWarning
from ..lyapunov import MAX_BLOCKS, auto_transient, check_settled, mean_map_time_scale

__all__ = ["SGDLyapunovResult", "GramSpectrum", "gram_lyapunov", "gd_exponent",
           "mean_square_exponent", "MeanSquareExponent", "gram_spectrum", "SAMPLING",
           "DEFAULT_SAMPLING"]

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


def gram_spectrum(K: ArrayLike, outputs: int = 1, rank_tol: Optional[float] = None) -> GramSpectrum:
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
    asym = float(np.max(np.abs(K - K.T)))
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


def gd_exponent(spectrum: GramSpectrum, lr: ArrayLike) -> np.ndarray:
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
    """The second-moment map T(M) = E[A_ξ M A_ξᵀ] (A_ξ = I − (η/B) K P_ξ) in symmetric form.

    A_ξ is self-adjoint in the K⁻¹ inner product on range(K), so Ã_ξ = K^{-1/2} A_ξ K^{1/2}
    = I − (η/B) K^{1/2} P_ξ K^{1/2} is symmetric and T̃(S) = E[Ã S Ã] = K^{-1/2} T(K^{1/2} S K^{1/2})
    K^{-1/2} is self-adjoint for the Frobenius product, with the spectrum of T. It still maps the
    PSD cone into itself. Returned as S ↦ T̃(S) on symmetric S in the eigenbasis of K (rank × rank;
    never an N²×N² matrix), with the weights Λ^{1/2} ⊗ Λ^{1/2} that map T̃'s eigen-matrices to T's.
    """
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
    sprod = np.sqrt(lprod)             # Λ^{1/2} S Λ^{1/2} = sprod * S in the eigenbasis

    def apply(S):
        VS = V @ (sprod * S)                          # n × r
        # D_c(V X Vᵀ): the c × c diagonal blocks, then Vᵀ D V = Σ_i V_iᵀ D_i V_i.
        blocks = np.einsum("ior,ipr->iop", VS.reshape(N, c, r), Vb)
        VtDV = np.einsum("iop,ior,ips->rs", blocks, Vb, Vb, optimize=True) if c > 1 else \
            (Vb[:, 0, :] * blocks[:, 0, 0][:, None]).T @ Vb[:, 0, :]
        KDK = sprod * VtDV   # Λ^{-1/2} (K D_c(K^{1/2} S K^{1/2}) K) Λ^{-1/2} in the eigenbasis
        KSK = lprod * S
        out = S - a1 * lsum * S + diag_coef * KDK
        if off_coef:  # pairs of distinct batch slots
            out = out + off_coef * (KSK - KDK if off_minus_diag else KSK)
        return 0.5 * (out + out.T)  # symmetric up to the rounding of the einsums

    return apply, sprod


def _lanczos_top(apply, x0: np.ndarray, m: int):
    """m steps of Lanczos with full reorthogonalisation on the self-adjoint map ``apply`` from
    x0: (largest Ritz value, its unit Ritz vector, applications used). Lanczos rather than the
    power iteration: at small η every eigenvalue of T̃ is 1 − O(η), so the power iteration
    contracts by λ₂/λ₁ = 1 − O(η) per step (it stopped early, biased towards stability), while
    Krylov spaces are shift-invariant and Lanczos sees the gap relative to the spread, O(1).
    The Lanczos of :mod:`delyap.sgd.sharpness` (numpy path): exactly m steps (no convergence
    test), stopping early only on an invariant subspace, whose Ritz pairs are exact."""
    from .sharpness import lanczos

    shape = x0.shape
    values, vecs, _, k, _, _ = lanczos(lambda q: apply(q.reshape(shape)).ravel(), x0.ravel(),
                                       1, tol=0.0, max_iter=m, check_every=m, restart=False)
    return float(values[0]), vecs[0].reshape(shape), k


# Shifts ε (relative to ‖S‖) of the Collatz–Wielandt test matrices S + εI. Not below 1e-8:
# the ratios divide by S + εI, which amplifies the rounding of T̃(S) by ~1/ε.
_CW_SHIFTS = np.geomspace(1e-8, 1.0, 9)


def _cw_bracket(S: np.ndarray, TS: np.ndarray, TI: np.ndarray) -> tuple[float, float]:
    """Certified bounds lower ≤ ρ(T̃) ≤ upper from a symmetric S, T̃(S) and T̃(I).

    T̃ is linear, self-adjoint and maps the PSD cone into itself, so ρ(T̃) is its largest
    eigenvalue (Krein–Rutman) and:
    * the Rayleigh quotient ⟨S, T̃S⟩ / ⟨S, S⟩ ≤ ρ for any S;
    * for M ≻ 0 with c_lo M ⪯ T̃(M) ⪯ c_hi M (c_lo, c_hi the extreme eigenvalues of
      M^{-1/2} T̃(M) M^{-1/2}), positivity gives T̃ⁿ(M) ⪯ c_hiⁿ M, hence ρ ≤ c_hi (every PSD X
      is ⪯ (‖X‖/λ_min(M)) M), and T̃ⁿ(M) ⪰ c_loⁿ M, hence ρ ≥ c_lo (Collatz–Wielandt).
    M runs over S + εI (ε ≥ −λ_min(S) plus a grid, so M ≻ 0), whose T̃(M) = T̃(S) + εT̃(I) costs
    no further application. The Rayleigh quotient is the sharp lower bound where the dominant
    eigen-matrix is singular (B = N: it is rank one, and every M ≻ 0 has c_lo ≤ the smallest
    eigenvalue of T̃). Bounds hold up to rounding (relative ~1e-8 at worst, from _CW_SHIFTS).
    """
    if np.trace(S) < 0:  # the dominant eigen-matrix is PSD: pick the sign closer to the cone
        S, TS = -S, -TS
    nS = float(np.sum(S * S))
    lower = max(float(np.sum(S * TS) / nS), 0.0) if nS > 0 else 0.0
    s, Qm = np.linalg.eigh(S)
    scale = max(abs(s[0]), abs(s[-1]))
    if scale == 0:
        s, scale = np.zeros_like(s), 1.0
    A, Bm = Qm.T @ TS @ Qm, Qm.T @ TI @ Qm
    upper = np.inf
    for g in _CW_SHIFTS:
        eps = max(0.0, -s[0]) + scale * g
        d = 1.0 / np.sqrt(s + eps)
        ev = np.linalg.eigvalsh(d[:, None] * (A + eps * Bm) * d[None, :])
        upper, lower = min(upper, float(ev[-1])), max(lower, float(ev[0]))
    return lower, max(upper, lower)  # max: rounding only, ρ itself lies in between


class MeanSquareExponent(tuple):
    """``(value, matrix)``, as ``value, matrix = mean_square_exponent(...)`` unpacks, plus the
    certified bracket of the value.

    Attributes
    ----------
    value : float
        ½ log ρ(E[A ⊗ A]): the midpoint of ``bracket``.
    matrix : ndarray (rank, rank) or None
        The dominant eigen-matrix of M ↦ E[A M Aᵀ] in the eigenbasis of K (the shape of the
        stationary second moment), unit Frobenius norm; pass it as ``start`` to warm-start.
    bracket : (float, float)
        Certified lower and upper bounds of the exponent (½ log of Collatz–Wielandt and Rayleigh
        bounds on ρ; exact up to rounding).
    certified : bool
        True when the bracket is narrower than ``tol``.
    iterations : int
        Applications of the map used.
    """

    bracket: tuple[float, float]
    certified: bool
    iterations: int

    def __new__(cls, value, matrix, bracket, certified, iterations):
        self = super().__new__(cls, (value, matrix))
        self.bracket = (float(bracket[0]), float(bracket[1]))
        self.certified = bool(certified)
        self.iterations = int(iterations)
        return self

    def __getnewargs__(self):  # pickling: __new__ takes every field, not just the tuple's two
        return (self[0], self[1], self.bracket, self.certified, self.iterations)

    @property
    def value(self) -> float:
        return self[0]

    @property
    def matrix(self) -> Optional[np.ndarray]:
        return self[1]

    def __repr__(self) -> str:
        return (f"MeanSquareExponent({self.value:+.10g}, bracket=[{self.bracket[0]:+.10g}, "
                f"{self.bracket[1]:+.10g}], certified={self.certified})")


def _half_log(x: float) -> float:
    return 0.5 * float(np.log(x)) if x > 0 else float("-inf")


def mean_square_exponent(spectrum: GramSpectrum, lr: float, batch_size: int, *,
                         sampling: str = DEFAULT_SAMPLING, tol: float = 1e-7, max_iter: int = 3000,
                         start: Optional[np.ndarray] = None) -> MeanSquareExponent:
    """½ log ρ(E[A ⊗ A]) on symmetric matrices (Ma & Ying 2021), with a certified bracket.

    Works in the eigenbasis of K on range(K) (never forms N²×N² matrices): each application of
    the map costs two rank × n products. Mean-square stability (value < 0) is stricter than
    almost-sure stability: λ₁ ≤ ½ log ρ.

    Restarted Lanczos on the symmetrised map (see ``_ms_operator``) finds the dominant
    eigen-matrix; after each restart, Collatz–Wielandt and Rayleigh bounds (valid because the
    map preserves the PSD cone) bracket ρ. It stops when the bracket of the exponent is
    narrower than ``tol`` (absolute). ``max_iter`` caps the applications of the map; reaching it
    first warns with :class:`delyap.ConvergenceWarning` and returns the bracket's midpoint.

    Returns a :class:`MeanSquareExponent`: unpacks as ``(value, matrix)`` (matrix to pass as
    ``start`` when sweeping η), with ``.bracket``, ``.certified`` and ``.iterations``.
    Defined for i.i.d. batches ('iid', 'without'); NaN for reshuffled epochs.
    """
    spec = spectrum if isinstance(spectrum, GramSpectrum) else gram_spectrum(spectrum)
    sampling = _sampling_name(sampling)
    lr = as_positive(lr, "lr")
    B = as_count(batch_size, "batch_size", maximum=spec.n_samples)
    tol = as_positive(tol, "tol")
    max_iter = as_count(max_iter, "max_iter")
    if sampling == "epochs":
        return MeanSquareExponent(float("nan"), None, (np.nan, np.nan), False, 0)
    r = spec.rank
    if start is not None:
        start = as_float_array(start, "start", ndim=(2,))
        if start.shape != (r, r):
            raise ValueError(f"start: expected a {r} × {r} matrix (rank of K), got {start.shape}")
    apply, sprod = _ms_operator(spec, lr, B, sampling)
    # Start from the identity (inside the PSD cone, so it overlaps the dominant eigen-matrix)
    # plus the warm start, mapped to the symmetrised coordinates. A warm start alone can be an
    # exact non-dominant eigen-matrix (B = N: the map is diagonal in K's eigenbasis), whose
    # Krylov space would miss the dominant one.
    x = np.eye(r) / np.sqrt(r)
    if start is not None and np.all(np.isfinite(start)) and np.any(start):
        warm = 0.5 * (start + start.T) / sprod
        x = x + warm / np.linalg.norm(warm)
    TI = apply(np.eye(r))
    used, dim = 1, r * (r + 1) // 2
    lower = upper = 0.0
    S = x
    while True:
        m = min(40, dim, max_iter - used - 1)  # one application left for the certificate
        if m < 1:
            break
        _, S, k = _lanczos_top(apply, x, m)
        TS = apply(S)
        used += k + 1
        lower, upper = _cw_bracket(S, TS, TI)
        if upper <= 0 or _half_log(upper) - _half_log(lower) <= tol:
            break
        x = S  # restart from the Ritz matrix
    lo, hi = _half_log(lower), _half_log(upper)
    certified = hi == float("-inf") or hi - lo <= tol
    if not certified:
        warnings.warn(f"mean_square_exponent (η = {lr:g}, B = {B}): not certified after "
                      f"{used} applications of the map (max_iter = {max_iter}); the exponent "
                      f"lies in [{lo:.10g}, {hi:.10g}], returning the midpoint",
                      ConvergenceWarning, stacklevel=2)
    value = 0.5 * (lo + hi) if np.isfinite(lo) else hi
    M = sprod * (S if np.trace(S) >= 0 else -S)  # T's eigen-matrix = K^{1/2} S K^{1/2}
    nM = np.linalg.norm(M)
    return MeanSquareExponent(float(value), M / nM if nM > 0 else M, (lo, hi), certified, used)


@dataclass
class SGDLyapunovResult(Result):
    """Lyapunov exponents of SGD linearised at a minimum, for one or many (η, B).

    Attributes
    ----------
    exponents, stderr : ndarray (k,) for one configuration, (n_configs, k) for several
        Per-step exponents on the normal space, largest first, with batch-means errors.
    gd_exponent : float or ndarray
        μ = log max |1 − η κ_i / N|, the full-batch GD counterpart (stable iff μ < 0).
    mean_square_exponent : float or ndarray or None
        ½ log ρ(E[A ⊗ A]) when requested (stable in mean square iff < 0); its certified
        bracket is ``info["mean_square_bracket"]``.
    normal_dim : int
        Dimension of the normal space = rank of K.
    status : int or ndarray of int
        0 where a configuration ran to the end (see :data:`delyap.STATUS_NAMES`).
    info : dict
        The transient used, the time scale, the device and the settle check.

    ``success``, ``message``, ``raise_for_status()`` and ``to_dict()`` as every delyap result.
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
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def top(self):
        """λ₁ (per configuration)."""
        return self.exponents[..., 0]

    @property
    def stable(self):
        """True where λ₁ < 0: SGD can converge to this minimum."""
        return self.top < 0

    @property
    def confident(self):
        """True where |λ₁| exceeds 3 standard errors (the sign is resolved)."""
        return np.abs(self.top) > 3 * self.stderr[..., 0]

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset``: ``exponents``, ``stderr`` with dims (config, exponent) and
        ``lr``, ``batch_size`` as coordinates along ``config`` ((exponent,) for one
        configuration), with ``gd_exponent``, ``mean_square_exponent`` and ``status`` per
        configuration. Needs ``delyap[xarray]``."""
        from .._result import dataset_attrs, import_xarray

        xr = import_xarray()
        lead = () if np.ndim(self.lr) == 0 else ("config",)
        data = {"exponents": (lead + ("exponent",), self.exponents),
                "stderr": (lead + ("exponent",), self.stderr),
                "gd_exponent": (lead, np.asarray(self.gd_exponent)),
                "status": (lead, np.asarray(self.status))}
        if self.mean_square_exponent is not None:
            data["mean_square_exponent"] = (lead, np.asarray(self.mean_square_exponent))
        coords: dict = {"exponent": np.arange(1, self.exponents.shape[-1] + 1),
                        "lr": (lead, np.asarray(self.lr)),
                        "batch_size": (lead, np.asarray(self.batch_size))}
        if lead:
            coords["config"] = np.arange(np.size(self.lr))
        return xr.Dataset(data, coords=coords,
                          attrs=dataset_attrs(self.info, sampling=self.sampling, steps=self.steps,
                                              normal_dim=self.normal_dim))

    def __repr__(self) -> str:
        if np.ndim(self.lr) == 0:
            verdict = "stable" if self.stable else "unstable"
            ms = ("" if self.mean_square_exponent is None
                  else f", mean-square {self.mean_square_exponent:+.4g}")
            return (f"SGDLyapunovResult(η={self.lr:g}, B={self.batch_size}, λ1={self.top:+.5g} ± "
                    f"{self.stderr[0]:.2g} ({verdict}), GD μ={self.gd_exponent:+.4g}{ms}, "
                    f"normal_dim={self.normal_dim})")
        return (f"SGDLyapunovResult({np.size(self.lr)} configurations, "
                f"normal_dim={self.normal_dim}, "
                f"{int(np.sum(self.stable))} stable)")


def _run_core(spec: GramSpectrum, lr: np.ndarray, batch: np.ndarray, *, steps, n_exponents,
              sampling, transient, seed, renorm_interval, threads, n_blocks, n_running,
              device: str = "cpu", seeds=None, streams=None, stream_offset: int = 0):
    """One call of the core over configurations (lr[i], batch[i]); configuration i draws from
    Philox stream (seed, stream_offset + i), or (seeds[i], streams[i]) when given
    (device="cuda" only). ``stream_offset``: the position of this call's first configuration
    in a larger set (a chunk of a distributed run keeps the whole run's streams)."""
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
    n_blocks = as_count(n_blocks, "n_blocks", minimum=2, maximum=MAX_BLOCKS)
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
                               n_blocks, n_running, as_threads(threads),
                               stream_offset=int(stream_offset))


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


def gram_lyapunov(K: Union[ArrayLike, GramSpectrum], lr: ArrayLike, batch_size: ArrayLike, *,
                  steps: int, n_exponents: int = 1,
                  sampling: str = DEFAULT_SAMPLING, transient: Optional[int] = None,
                  seed: int = 0, outputs: int = 1, renorm_interval: int = 10,
                  mean_square: bool = False, rank_tol: Optional[float] = None,
                  threads: Optional[int] = None, n_blocks: int = 32, n_running: int = 200,
                  device: Optional[str] = None, throw: bool = True,
                  progress: ProgressLike = None, client: Any = None,
                  store: Optional[str] = None) -> SGDLyapunovResult:
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
    progress : None, bool or callable
        A progress bar over the configurations (see :func:`delyap.solve_dde`).
    client, store :
        Run the configurations on a Dask cluster in chunks, bit-identical to the local run
        (configuration i keeps stream i), saving finished chunks in the folder ``store`` to
        resume from (see :func:`delyap.solve_dde`; the mean-square exponents stay local).

    A :class:`delyap.ConvergenceWarning` says when the estimate has not settled: the first and
    second half of the run disagree beyond their standard errors, or the transient or
    ``steps`` is shorter than τ (``info["settled"]`` records the verdict).
    """
    device = resolve_device(device, K)
    as_threads(threads)  # checked before any work (used by the CPU path)
    progress = check_progress(progress)
    check_distributed(client, store, device)
    K = to_host(K)
    sampling = _sampling_name(sampling)
    spec = K if isinstance(K, GramSpectrum) else gram_spectrum(K, outputs, rank_tol)
    lr_a, b_a = _check_configs(lr, batch_size, spec.n_samples, sampling)
    scalar = lr_a.ndim == 0 and b_a.ndim == 0
    lr_v, b_v = np.broadcast_arrays(np.atleast_1d(lr_a), np.atleast_1d(b_a))
    transient, tau = _resolve_transient(spec, lr_v, n_exponents, steps, transient)
    run: dict[str, Any] = dict(steps=steps, n_exponents=n_exponents, sampling=sampling,
                               transient=transient, seed=seed, renorm_interval=renorm_interval,
                               threads=threads, n_blocks=n_blocks, n_running=n_running)
    if client is not None:
        from ..distributed import gram_chunks

        raw = gram_chunks(client, spec, lr_v, b_v, run, store=store, progress=progress)
    else:
        with Progress(progress, lr_v.size, "gram_lyapunov", "config") as bar, \
                bar.stage(lr_v.size):
            raw = _run_core(spec, lr_v, b_v, device=device, **run)
    mu = gd_exponent(spec, lr_v)
    ms = None
    if mean_square:
        ms_runs = [mean_square_exponent(spec, eta, b, sampling=sampling)
                   for eta, b in zip(lr_v, b_v)]
        ms = np.array([run.value for run in ms_runs])
        ms_bracket = np.array([run.bracket for run in ms_runs])
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
    if mean_square:  # certified bounds of the mean-square exponent, (lower, upper)
        res.info["mean_square_bracket"] = tuple(ms_bracket[0]) if scalar else ms_bracket
    if client is not None:
        res.info["distributed"] = raw["distributed"]
    res._origin = "gram_lyapunov"
    raise_if_failed(res, throw)
    res.info.update(check_settled(raw, "gram_lyapunov", time_scale=tau, transient=transient,
                                  window=res.steps))
    if scalar:
        res.info["time_scale"] = float(tau[0])
    return res
