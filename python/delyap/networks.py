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

from typing import Optional, Union

import numpy as np

from . import _core
from ._system import ArrayLike, DDESystem, GraphLike, check_delays
from ._validate import as_float_array

__all__ = ["KuramotoDDE", "StuartLandauDDE", "kuramoto", "stuart_landau"]

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
            options_dict(options), output_mode[0], list(output_mode[1]), current_stream())


class KuramotoDDE(_Network):
    """θ_i' = ω_i + (K/d_i) Σ_j A_ij sin(θ_j(t − τ_ij) − θ_i). Use :func:`kuramoto`."""

    order_parameter = "phases"  # the state is the phases θ_j

    def __init__(self, omega, adjacency, coupling, tau, normalization):
        super().__init__(omega, adjacency, coupling, tau, normalization)
        self.dim = self.n_nodes

    def _solve(self, history, t0, t_final, t_eval, options, threads, output):
        return _core.solve_kuramoto(self._args, history.to_core(), t0, t_final, t_eval, options,
                                    threads, output)

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

    def __repr__(self) -> str:
        b = "single" if self.batch_size is None else f"batch={self.batch_size}"
        return f"StuartLandauDDE(N={self.n_nodes}, edges={self.adjacency.nnz}, λ={self.lam:g}, {b})"


def kuramoto(omega: ArrayLike, adjacency: GraphLike, coupling: ArrayLike = 1.0,
             tau: GraphLike = 1.0, *,
             normalization: Union[str, np.ndarray] = "in_degree") -> KuramotoDDE:
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

    Use ``solve_dde(..., output="order_parameter")`` to keep only r(t), ψ(t) of
    r e^{iψ} = (1/N) Σ_j e^{iθ_j} instead of all N phases.
    """
    return KuramotoDDE(omega, adjacency, coupling, tau, normalization)


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
