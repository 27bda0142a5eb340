"""Delay-coupled oscillator networks on sparse directed graphs (compiled).

Graphs are given as adjacency matrices A (scipy.sparse or dense), row i holding the in-edges
of node i: A[i, j] ≠ 0 means j drives i with weight A[i, j]. Edge delays are a scalar, or one
per edge taking a small number of distinct values (≤ 255 "delay classes"): the solver reads the
history once per class for all nodes, not once per edge.

Edge order ("CSR order", the order of per-edge delays): for a scipy CSR matrix, its stored
entries as given (``A.indices`` / ``A.data`` row by row, sorted or not); for anything else
(dense, COO, CSC, ...), row-major order (i, then j) of its entries. Duplicate stored entries of
one (i, j) are summed, as scipy does, and must then carry one delay (parallel edges with
distinct delays raise a ValueError). The caller's matrix is never modified: the system keeps
its own canonical copy (``system.adjacency``: sorted, duplicates summed, explicit zeros kept as
edges) with the delays permuted along.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import numpy as np

from . import _core
from ._system import ArrayLike, DDESystem, GraphLike, check_delays
from ._validate import as_float_array

__all__ = ["KuramotoDDE", "StuartLandauDDE", "kuramoto", "stuart_landau", "sample_graph",
           "frequencies"]

MAX_DELAY_CLASSES = 255


def _sparse():
    """scipy.sparse (a dependency of delyap; network systems are built on it)."""
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is in delyap's dependencies
        raise ImportError("network systems need scipy, a dependency of delyap: "
                          "pip install scipy") from None
    return sp


def _entries(matrix, name: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(N, rows, cols, values) of a square matrix's entries in edge order, as fresh arrays."""
    sp = _sparse()
    if sp.issparse(matrix):
        if matrix.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected real weights, got dtype {matrix.dtype}")
        if matrix.format != "csr":
            # tocsr() of the caller's own copy: scipy may sum or sort in place.
            matrix = matrix.copy().tocsr()
            matrix.sum_duplicates()
        shape = matrix.shape
        rows: np.ndarray = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(matrix.indptr))
        cols = np.array(matrix.indices, dtype=np.int64)
        values = as_float_array(matrix.data, name)
    else:
        dense = as_float_array(matrix, name, ndim=(2,))
        shape = dense.shape
        rows, cols = np.nonzero(dense)
        values = dense[rows, cols]
    if shape[0] != shape[1]:
        raise ValueError(f"{name}: must be square (N × N), got {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name}: empty graph")
    return shape[0], rows.astype(np.int64), cols.astype(np.int64), values


def _graph(adjacency, tau):
    """(canonical CSR copy of A, distinct delays, per-edge class or None).

    Per-edge delays follow the user's edge order (module docs) and are permuted with the
    entries into the canonical (sorted, duplicate-free) order the system keeps.
    """
    sp = _sparse()
    N, rows, cols, weights = _entries(adjacency, "adjacency")
    key = rows * N + cols  # (i, j) as one sort key
    if sp.issparse(tau):
        # A delay matrix with A's pattern: matched by position (i, j), so its order is free.
        # Duplicates are looked for before _entries sums them (two 0.5 became one delay 1.0).
        stored = tau.tocoo(copy=True)
        skey = stored.row.astype(np.int64) * stored.shape[1] + stored.col
        if np.unique(skey).size != skey.size:
            raise ValueError("tau: a sparse delay matrix must have one delay per entry (stored "
                             "duplicates of an (i, j) would be summed)")
        nt, trows, tcols, tvals = _entries(tau, "tau")
        tkey = trows * N + tcols
        if nt != N or np.unique(tkey).size != tkey.size:
            raise ValueError("tau: a sparse delay matrix must have the adjacency's shape and one "
                             "delay per entry (no duplicates)")
        order = np.argsort(tkey)
        pos = np.searchsorted(tkey[order], key).clip(0, max(tkey.size - 1, 0))
        if tkey.size == 0 or not np.array_equal(tkey[order][pos], key) or \
                np.setdiff1d(tkey, key).size:
            raise ValueError("tau: a sparse delay matrix must have the adjacency's sparsity "
                             "pattern")
        per_edge = tvals[order][pos]
    else:
        t = as_float_array(tau, "tau", ndim=(0, 1))
        if t.ndim == 0:  # one delay for every edge: one class
            check_delays(t.reshape(1))
            per_edge = np.full(rows.size, float(t))
        elif t.shape[0] != rows.size:
            raise ValueError(f"tau: per-edge delays need one value per edge (stored entry of "
                             f"the adjacency: {rows.size}), got {t.shape[0]}")
        else:
            per_edge = t
    # Canonical order: by (i, j), duplicates of one entry adjacent (a stable sort keeps the
    # caller's order among them); already canonical input (the common case) is not sorted.
    if np.any(key[1:] <= key[:-1]):
        order = np.argsort(key, kind="stable")
        key, rows, cols, weights, per_edge = (a[order]
                                              for a in (key, rows, cols, weights, per_edge))
    first = np.ones(rows.size, dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    if starts.size < rows.size:  # duplicates to merge
        lo, hi = np.minimum.reduceat(per_edge, starts), np.maximum.reduceat(per_edge, starts)
        bad = np.flatnonzero(lo != hi)
        if bad.size:
            s = starts[bad[0]]
            raise ValueError(f"tau: adjacency entry ({rows[s]}, {cols[s]}) is stored more than "
                             f"once with different delays ({lo[bad[0]]:g}, {hi[bad[0]]:g}); "
                             "duplicate entries are summed and must share one delay")
        weights = np.add.reduceat(weights, starts)
        rows, cols, per_edge = rows[starts], cols[starts], per_edge[starts]
    indptr = np.zeros(N + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=N), out=indptr[1:])
    A = sp.csr_matrix((weights, cols.astype(np.int32), indptr), shape=(N, N))
    if not sp.issparse(tau) and t.ndim == 0:
        return A, t.reshape(1), None
    values, klass = _delay_classes(per_edge)
    return A, values, klass


def _delay_classes(per_edge: np.ndarray):
    """(distinct delays, per-edge class index or None when there is one class)."""
    values, klass = np.unique(per_edge, return_inverse=True)
    check_delays(values)
    if values.shape[0] > MAX_DELAY_CLASSES:
        raise ValueError(f"tau: {values.shape[0]} distinct edge delays; at most "
                         f"{MAX_DELAY_CLASSES} are supported (round them to a grid of delay "
                         "classes)")
    if values.shape[0] == 1:
        return values, None
    return values, klass.astype(np.uint8)


def _normalisation(normalization, A) -> np.ndarray:
    N = A.shape[0]
    if isinstance(normalization, str):
        if normalization == "in_degree":
            deg = np.diff(A.indptr).astype(float)
        elif normalization == "weighted_in_degree":
            deg = np.asarray(np.abs(A).sum(axis=1)).ravel()
        elif normalization == "none":
            deg = np.ones(N)
        elif normalization == "n":
            deg = np.full(N, float(N))
        else:
            raise ValueError("normalization: expected 'in_degree', 'weighted_in_degree', 'n', "
                             f"'none' or an array, got {normalization!r}")
    else:
        deg = as_float_array(normalization, "normalization", ndim=(1,))
        if deg.shape != (N,):
            raise ValueError(f"normalization: expected shape ({N},), got {deg.shape}")
    with np.errstate(divide="ignore"):
        inv = np.where(deg != 0, 1.0 / np.where(deg != 0, deg, 1.0), 0.0)  # isolated: no coupling
    return np.ascontiguousarray(inv)


class _Network(DDESystem):
    def __init__(self, omega, adjacency, coupling, tau, normalization):
        A, self.tau_values, self.edge_class = _graph(adjacency, tau)
        N = A.shape[0]
        self.adjacency = A
        self.n_nodes = N
        om = as_float_array(omega, "omega", ndim=(0, 1))
        if om.ndim == 1 and om.shape[0] != N:
            raise ValueError(f"omega: expected {N} natural frequencies, got {om.shape[0]}")
        self.omega = np.ascontiguousarray(np.broadcast_to(om, (N,)))
        k = as_float_array(coupling, "coupling", ndim=(0, 1))
        if k.ndim == 1 and k.shape[0] == 0:
            raise ValueError("coupling: empty array (batch of size zero)")
        self.batch_size = None if k.ndim == 0 else k.shape[0]
        self.coupling = np.ascontiguousarray(k.reshape(-1))
        self.n_delays = self.tau_values.shape[0]
        self.inv_norm = _normalisation(normalization, A)
        self._args = _core.NetworkArgs(A.indptr.astype(np.int64), A.indices.astype(np.int32),
                                       np.ascontiguousarray(A.data), self.edge_class,
                                       np.ascontiguousarray(self.tau_values), self.omega,
                                       self.inv_norm, self.coupling)

    @property
    def delays(self) -> np.ndarray:
        return self.tau_values.reshape(1, -1)

    _lam: Optional[float] = None  # Stuart–Landau's λ; None for Kuramoto

    def _check_lyapunov(self) -> None:
        """Network spectra run on the sparse tangent products (no dense Jacobian): always
        supported, batches over the coupling included."""

    def _lyapunov_args(self, args: tuple) -> tuple:
        """An ODE's history is its initial state: keep two anchors of the window grid built
        for DDEs (N = 10⁴ with 20 tangent vectors would load 33 × 1.7 MB states into the
        solver's history, with their interpolation coefficients)."""
        if self.max_delay > 0.0:
            return args
        c = np.ascontiguousarray
        t, x, f = args[:3]
        return (c(t[-2:]), c(x[:, -2:]), c(f[:, -2:])) + tuple(args[3:])

    def _solve_cuda(self, backend, history, t0, t_final, t_eval, options, output_mode):
        """The GPU path (``solve_dde(..., device="cuda")``): state and history on the device."""
        from ._fixed import options_dict
        from .device import current_stream

        A, c = self.adjacency, np.ascontiguousarray
        return backend.solve_network(
            c(A.indptr, dtype=np.int64), c(A.indices, dtype=np.int32), c(A.data, dtype=float),
            self.edge_class, c(self.tau_values), self.omega, self.inv_norm, self.coupling,
            self._lam, c(history.t), c(history.x), c(history.f), c(history.y0),
            c(history.jumps, dtype=float), float(t0), float(t_final), t_eval,
            options_dict(options), output_mode[0], list(output_mode[1]), current_stream(),
            getattr(self, "alpha", 0.0))


class KuramotoDDE(_Network):
    """θ_i' = ω_i + (K/d_i) Σ_j A_ij sin(θ_j(t − τ_ij) − θ_i − α). Use :func:`kuramoto`."""

    order_parameter = "phases"  # the state is the phases θ_j

    def __init__(self, omega, adjacency, coupling, tau, normalization, alpha=0.0):
        super().__init__(omega, adjacency, coupling, tau, normalization)
        self.dim = self.n_nodes
        self.alpha = float(as_float_array(alpha, "alpha", ndim=(0,)))
        self._args.alpha = self.alpha

    def _solve(self, history, t0, t_final, t_eval, options, threads, output):
        return _core.solve_kuramoto(self._args, history.to_core(), t0, t_final, t_eval, options,
                                    threads, output)

    def _lyapunov(self, args: tuple) -> dict:
        return _core.lyapunov_kuramoto(self._args, *self._lyapunov_args(args))

    def __repr__(self) -> str:
        b = "single" if self.batch_size is None else f"batch={self.batch_size}"
        return (f"KuramotoDDE(N={self.n_nodes}, edges={self.adjacency.nnz}, "
                f"delays={self.tau_values.tolist()[:4]}{'…' if self.n_delays > 4 else ''}, {b})")


class StuartLandauDDE(_Network):
    """z_i' = (λ + iω_i − |z_i|²) z_i + (K/d_i) Σ_j A_ij (z_j(t − τ_ij) − z_i), state
    (Re z_i, Im z_i) interleaved (dim = 2N). Use :func:`stuart_landau`."""

    order_parameter = "phasors"  # the state is z_j: the phase of z_j is z_j/|z_j|

    def __init__(self, omega, adjacency, coupling, tau, normalization, lam):
        super().__init__(omega, adjacency, coupling, tau, normalization)
        self.lam = float(as_float_array(lam, "lam", ndim=(0,)))
        self._lam = self.lam
        self.dim = 2 * self.n_nodes

    def _solve(self, history, t0, t_final, t_eval, options, threads, output):
        return _core.solve_stuart_landau(self._args, self.lam, history.to_core(), t0, t_final,
                                         t_eval, options, threads, output)

    def _lyapunov(self, args: tuple) -> dict:
        return _core.lyapunov_stuart_landau(self._args, self.lam, *self._lyapunov_args(args))

    def __repr__(self) -> str:
        b = "single" if self.batch_size is None else f"batch={self.batch_size}"
        return f"StuartLandauDDE(N={self.n_nodes}, edges={self.adjacency.nnz}, λ={self.lam:g}, {b})"


def kuramoto(omega: ArrayLike, adjacency: GraphLike, coupling: ArrayLike = 1.0,
             tau: GraphLike = 1.0, *,
             normalization: Union[str, np.ndarray] = "in_degree",
             alpha: float = 0.0) -> KuramotoDDE:
    """Delay-coupled Kuramoto phase oscillators on a sparse directed graph (compiled).

    Parameters
    ----------
    omega : float or array (N,)
        Natural frequencies.
    adjacency : scipy.sparse matrix or array (N, N)
        Weighted adjacency, A[i, j] the weight of the edge j → i.
    coupling : float or array (batch,)
        Coupling strength K; an array sweeps K (one trajectory per value, shared graph).
    tau : float, array (n_edges,) in edge order, or a sparse matrix with A's pattern
        Edge delays (0 for an undelayed coupling, else ≥ 1e-12; ``tau=0`` is the ODE network);
        per-edge delays may take at most 255 distinct values. Edge
        order: a CSR matrix's stored entries as given (``A.data`` order, sorted or not), else
        row-major; duplicate entries are summed and must share a delay. ``adjacency`` and
        ``tau`` are copied, never modified.
    normalization : 'in_degree' (default), 'weighted_in_degree', 'n', 'none' or array (N,)
        d_i in K/d_i; nodes with d_i = 0 are uncoupled.
    alpha : float
        Sakaguchi phase lag α (radians) in sin(θ_j(t − τ_ij) − θ_i − α); 0 is plain Kuramoto.

    ``lyapunov_spectrum`` runs these networks (with or without delays, batches over the
    coupling) on sparse tangent products: k exponents cost about k + 1 right-hand sides per
    stage, never an N × N Jacobian.

    Use ``solve_dde(..., output="order_parameter")`` to keep only r(t), ψ(t) of
    r e^{iψ} = (1/N) Σ_j e^{iθ_j} instead of all N phases.
    """
    return KuramotoDDE(omega, adjacency, coupling, tau, normalization, alpha)


def stuart_landau(omega: ArrayLike, adjacency: GraphLike, coupling: ArrayLike = 1.0,
                  tau: GraphLike = 1.0, *,
                  lam: float = 1.0,
                  normalization: Union[str, np.ndarray] = "in_degree") -> StuartLandauDDE:
    """Delay-coupled Stuart–Landau (Hopf normal form) oscillators on a sparse digraph.

    State: (Re z_i, Im z_i) interleaved, dim = 2N; ``lam`` is the distance from the Hopf
    bifurcation (limit-cycle radius √λ when uncoupled). Other arguments as for :func:`kuramoto`.

    ``solve_dde(..., output="order_parameter")`` keeps the phasor coherence r(t), ψ(t) of
    r e^{iψ} = (1/N) Σ_j z_j/|z_j| (a node at z_j = 0 adds 0).
    """
    return StuartLandauDDE(omega, adjacency, coupling, tau, normalization, lam)


# ---- Graphs from graph limits and frequency helpers ----------------------------------------

# Candidate pairs drawn per chunk of the geometric-skip stream (bounds the sampler's memory).
_SAMPLE_CHUNK = 1 << 20


def _as_kernel(W, name: str = "W") -> tuple[Callable[[np.ndarray, np.ndarray], np.ndarray],
                                             Optional[float]]:
    """(vectorised kernel, its constant value or None)."""
    if callable(W):
        def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            v = np.asarray(W(x, y), dtype=float)
            return np.broadcast_to(v, np.broadcast(x, y).shape)
        return kernel, None
    p = as_float_array(W, name, ndim=(0,))
    value = float(p)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: a constant graphon is an edge probability in [0, 1], "
                         f"got {value:g}")
    return (lambda x, y: np.full(np.broadcast(x, y).shape, value)), value


def _check_probabilities(w: np.ndarray, name: str = "W") -> None:
    if w.size and not (np.all(np.isfinite(w)) and w.min() >= 0.0 and w.max() <= 1.0):
        bad = w[~(np.isfinite(w) & (w >= 0) & (w <= 1))][0]
        raise ValueError(f"{name}: W(x, y) must lie in [0, 1] (an edge probability), got {bad:g}")


# A graphon: a constant edge probability or a vectorised W(x, y).
GraphonLike = Union[float, Callable[[np.ndarray, np.ndarray], np.ndarray]]


def sample_graph(W: GraphonLike, n: int, *, directed: bool = True, seed: int = 0,
                 positions: str = "grid",
                 node_weights: Union[None, ArrayLike, Callable[[np.ndarray], np.ndarray]] = None,
                 w_max: Optional[float] = None) -> tuple[Any, np.ndarray]:
    """A random graph on n nodes from a graphon W(x, y), sparse, without dense n × n arrays.

    Node i has latent position x_i in [0, 1]; the edge j → i (row i, column j: j drives i, as in
    :func:`kuramoto`) is present with probability W(x_i, x_j), independently, no self-loops.
    Pairs are proposed by geometric skips at the rate w_max ≥ sup W and accepted with
    probability W / w_max, so the cost is O(n² · w_max + edges), memory O(edges): n = 10⁶ is
    feasible for sparse kernels (W ~ c/n).

    Parameters
    ----------
    W : float in [0, 1] or callable
        The graphon: a constant edge probability p, or a vectorised W(x, y) (numpy arrays in,
        an array of probabilities in [0, 1] out; values outside raise a ValueError).
    n : int
        Number of nodes.
    directed : bool
        True (default): every ordered pair is drawn independently (W need not be symmetric).
        False: each unordered pair {i, j} once with probability W(x_i, x_j) (i < j), both
        directions stored (W should be symmetric).
    seed : int
        Seed of the draws (the result depends on it and the arguments only).
    positions : "grid" or "random"
        x_i = (i + 0.5)/n (default, deterministic), or i.i.d. uniform draws, sorted.
    node_weights : array (n,) or callable of the positions, optional
        A digraph measure's node weights μ_j: the edge j → i carries weight μ_j (so
        Σ_j A_ij ≈ n ∫ W(x_i, y) μ(y) dy). Default: weight 1 on every edge.
    w_max : float, optional
        An upper bound of W (the proposal rate). Default: the constant itself, or for a callable
        1.25 × the maximum of W on a 256 × 256 grid of the positions (at most 1). A W value
        above the bound at a proposed pair raises a ValueError asking for a larger ``w_max``.

    Returns
    -------
    adjacency : scipy.sparse.csr_matrix (n, n)
        Sorted CSR, weights 1 (or the node weights).
    positions : ndarray (n,)
        The latent positions x_i.
    """
    sp = _sparse()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive number of nodes, got {n!r}")
    n = int(n)
    if positions not in ("grid", "random"):
        raise ValueError(f"positions: expected 'grid' or 'random', got {positions!r}")
    kernel, constant = _as_kernel(W)
    rng = np.random.default_rng(seed)
    if positions == "grid":
        x = (np.arange(n) + 0.5) / n
    else:
        x = np.sort(rng.random(n))
    if w_max is not None:
        bound = float(as_float_array(w_max, "w_max", ndim=(0,)))
        if not 0.0 < bound <= 1.0:
            raise ValueError(f"w_max: expected a bound in (0, 1], got {bound:g}")
    elif constant is not None:
        bound = constant
    else:
        g = x[np.linspace(0, n - 1, min(n, 256)).astype(np.int64)]
        grid = kernel(g[:, None], g[None, :])
        _check_probabilities(grid)
        bound = min(1.0, 1.25 * float(grid.max()))
        if bound == 0.0:
            # (no pair would ever be proposed: a band or spike narrower than the grid's spacing
            # came back as an empty graph)
            raise ValueError(f"w_max: W is zero at all {g.size}² points of the grid its bound "
                             "is estimated on; pass w_max, an upper bound of W")
    weights_of = None
    if node_weights is not None:
        mu = node_weights(x) if callable(node_weights) else node_weights
        mu_arr = as_float_array(mu, "node_weights", ndim=(1,))
        if mu_arr.shape != (n,):
            raise ValueError(f"node_weights: expected shape ({n},), got {mu_arr.shape}")
        weights_of = mu_arr
    rows_out, cols_out = [], []
    total = n * n  # ordered pairs, diagonal included (rejected below)
    if bound > 0.0:
        pos = -1  # flattened index i·n + j of the last proposal
        while True:
            # Gaps between proposals of a Bernoulli(bound) sequence are geometric.
            gaps = rng.geometric(bound, size=_SAMPLE_CHUNK) if bound < 1.0 else \
                np.ones(_SAMPLE_CHUNK, dtype=np.int64)
            cand = pos + np.cumsum(gaps)
            done = cand[-1] >= total
            cand = cand[cand < total]
            if cand.size:
                pos = int(cand[-1])
                ri, ci = np.divmod(cand, n)
                keep = (ri < ci) if not directed else (ri != ci)
                ri, ci = ri[keep], ci[keep]
                w = kernel(x[ri], x[ci])
                _check_probabilities(w)
                if w.size and w.max() > bound * (1 + 1e-12):
                    raise ValueError(f"W: W(x, y) = {w.max():g} exceeds the proposal bound "
                                     f"w_max = {bound:g}; pass w_max ≥ sup W")
                u = rng.random(w.size)
                acc = u * bound < w
                rows_out.append(ri[acc])
                cols_out.append(ci[acc])
            if done:
                break
    r: np.ndarray = np.concatenate(rows_out) if rows_out else np.zeros(0, dtype=np.int64)
    c: np.ndarray = np.concatenate(cols_out) if cols_out else np.zeros(0, dtype=np.int64)
    if not directed:
        r, c = np.concatenate([r, c]), np.concatenate([c, r])
        order = np.lexsort((c, r))
        r, c = r[order], c[order]
    data = weights_of[c] if weights_of is not None else np.ones(r.size)
    indptr: np.ndarray = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    index_type = np.int32 if n < 2**31 else np.int64
    A = sp.csr_matrix((data, c.astype(index_type), indptr), shape=(n, n))
    return A, x


def _quantiles(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def frequencies(n: int, distribution: str = "lorentzian", *, center: float = 0.0,
                width: float = 1.0, deterministic: bool = True, seed: int = 0) -> np.ndarray:
    """n natural frequencies from a Lorentzian, Gaussian or uniform distribution.

    Parameters
    ----------
    n : int
        Number of frequencies.
    distribution : "lorentzian", "gaussian" or "uniform"
        Lorentzian (Cauchy) with half-width ``width`` (the γ of the Ott–Antonsen reduction),
        Gaussian with standard deviation ``width``, or uniform on
        [center − width, center + width].
    center, width : float
        Location and scale (width > 0).
    deterministic : bool
        True (default): the quantiles at (i + 0.5)/n, in increasing order, so finite-N results
        converge to the continuum limit without sampling noise; False: i.i.d. draws.
    seed : int
        Seed of the draws (``deterministic=False``).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive count, got {n!r}")
    c = float(as_float_array(center, "center", ndim=(0,)))
    w = float(as_float_array(width, "width", ndim=(0,)))
    if not w > 0:
        raise ValueError(f"width: must be positive, got {w:g}")
    kinds = ("lorentzian", "gaussian", "uniform")
    if distribution not in kinds:
        raise ValueError(f"distribution: expected one of {kinds}, got {distribution!r}")
    if deterministic:
        u = _quantiles(int(n))
        if distribution == "lorentzian":
            z = np.tan(np.pi * (u - 0.5))
        elif distribution == "gaussian":
            from scipy.special import ndtri
            z = ndtri(u)
        else:
            z = 2.0 * u - 1.0
    else:
        rng = np.random.default_rng(seed)
        if distribution == "lorentzian":
            z = rng.standard_cauchy(int(n))
        elif distribution == "gaussian":
            z = rng.standard_normal(int(n))
        else:
            z = rng.uniform(-1.0, 1.0, int(n))
    return c + w * z
