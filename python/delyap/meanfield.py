"""Mean-field references for Kuramoto networks: the Ott–Antonsen reduction and critical couplings.

For N → ∞ oscillators with Lorentzian natural frequencies (centre ω0, half-width γ), all-to-all
coupling K (in-degree normalised), delay τ and Sakaguchi lag α,

    θ_i' = ω_i + (K/N) Σ_j sin(θ_j(t − τ) − θ_i − α),

the order parameter z = r e^{iψ} = ⟨e^{iθ}⟩ on the Ott–Antonsen manifold obeys (Ott & Antonsen,
Chaos 18, 037113 (2008); with delay Lee, Ott & Antonsen, Chaos 19, 043104 (2009))

    z' = (iω0 − γ) z + (K/2) (e^{−iα} z_τ − e^{iα} z̄_τ z²),   z_τ = z(t − τ).

Derivation in brief: the density f(θ, ω, t) = g(ω)/(2π) [1 + Σ_n (aⁿ e^{inθ} + c.c.)] solves the
continuity equation with velocity ω + (K/2i)(Z_τ e^{−iα} e^{−iθ} − c.c.) exactly when
a' = −iω a − (K/2)(e^{−iα} Z_τ a² − e^{iα} Z̄_τ); Z = ∫ g ā dω is the residue at the
Lorentzian's pole ω0 − iγ, Z = ā(ω0 − iγ), and conjugating gives the equation above. Without
delay and lag, r' = −γ r + (K/2) r (1 − r²): r∞ = √(1 − 2γ/K) above K_c = 2γ, 0 below.

:func:`ott_antonsen` integrates it with delyap's own solver (:func:`delyap.solve_dde` on a
:func:`delyap.rhs.python` system, the ODE path when τ = 0); :func:`critical_coupling` gives
Kuramoto's K_c = 2/(π g(0)) for symmetric unimodal g; :func:`convergence` compares finite-N
simulations on sampled graphs with r∞.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

from ._result import Result
from ._system import ArrayLike
from ._validate import as_count, as_float_array

__all__ = ["OttAntonsenResult", "ott_antonsen", "stationary_r", "critical_coupling",
           "order_parameter", "convergence"]


def _positive(value, name: str, allow_zero: bool = False) -> float:
    v = float(as_float_array(value, name, ndim=(0,)))
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: must be {'≥ 0' if allow_zero else 'positive'} and finite, "
                         f"got {v:g}")
    return v


def _couplings(coupling) -> np.ndarray:
    K = as_float_array(coupling, "coupling", ndim=(0, 1))
    if K.size == 0:
        raise ValueError("coupling: empty array")
    if not np.all(np.isfinite(K)) or np.any(K < 0):
        raise ValueError(f"coupling: must be finite and ≥ 0, got min {np.nanmin(K):g}")
    return K


@dataclass
class OttAntonsenResult(Result):
    """The Ott–Antonsen order parameter z(t) = r e^{iψ}.

    Attributes
    ----------
    t : ndarray (n_t,)
    z : ndarray of complex, (n_t,) or (batch, n_t) for an array of couplings
    r, psi : ndarray, like z
        Modulus and phase (unwrapped along t) of z.
    r_inf : float or ndarray
        The stationary r of the undelayed, unlagged equation, √(1 − 2γ/K) above K_c = 2γ,
        else 0 (NaN when τ ≠ 0 or α ≠ 0: then no closed form is given).
    status : int or ndarray of int
        The solver's status per coupling (0: success).
    """

    t: np.ndarray
    z: np.ndarray
    r: np.ndarray
    psi: np.ndarray
    r_inf: Union[float, np.ndarray]
    status: Union[int, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict, repr=False)


def stationary_r(gamma: float, coupling: ArrayLike) -> Union[float, np.ndarray]:
    """r∞ = √(1 − 2γ/K) for K > 2γ, else 0 (Lorentzian half-width γ, no delay, no lag)."""
    g = _positive(gamma, "gamma")
    K = _couplings(coupling)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(K > 2 * g, np.sqrt(np.clip(1 - 2 * g / np.where(K > 0, K, 1.0), 0, None)),
                     0.0)
    return float(r) if r.ndim == 0 else r


def ott_antonsen(omega0: float, gamma: float, coupling: ArrayLike, *, t_span: Sequence[float],
                 tau: float = 0.0, alpha: float = 0.0, r0: float = 0.1, psi0: float = 0.0,
                 t_eval: Optional[ArrayLike] = None, rtol: float = 1e-8, atol: float = 1e-10,
                 throw: bool = True) -> OttAntonsenResult:
    """Integrate the Ott–Antonsen equation of the Lorentzian Kuramoto model (module docs).

    Parameters
    ----------
    omega0 : float
        Centre of the Lorentzian frequency distribution.
    gamma : float
        Its half-width (> 0).
    coupling : float or array (batch,)
        K ≥ 0; an array integrates one equation per value (one batch).
    t_span : (t0, t1)
    tau : float
        Coupling delay (0: the ODE). The history on [t0 − τ, t0] is the constant z0.
    alpha : float
        Sakaguchi phase lag.
    r0, psi0 : float
        Initial z0 = r0 e^{iψ0} (0 < r0 ≤ 1; z = 0 is an equilibrium it would never leave).
    t_eval : array, optional
        Output times (default: 201 points over t_span).
    rtol, atol, throw
        As for :func:`delyap.solve_dde`.
    """
    from . import rhs
    from .solve import solve_dde

    w0 = float(as_float_array(omega0, "omega0", ndim=(0,)))
    if not np.isfinite(w0):
        raise ValueError("omega0: must be finite")
    g = _positive(gamma, "gamma")
    K = _couplings(coupling)
    d = _positive(tau, "tau", allow_zero=True)
    a = float(as_float_array(alpha, "alpha", ndim=(0,)))
    if not np.isfinite(a):
        raise ValueError("alpha: must be finite")
    rr = float(as_float_array(r0, "r0", ndim=(0,)))
    if not 0 < rr <= 1:
        raise ValueError(f"r0: must be in (0, 1], got {rr:g}")
    phase = float(as_float_array(psi0, "psi0", ndim=(0,)))
    if not np.isfinite(phase):
        raise ValueError("psi0: must be finite")
    span = as_float_array(t_span, "t_span", ndim=(1,))
    if span.shape != (2,) or not span[1] > span[0]:
        raise ValueError(f"t_span: expected (t0, t1) with t1 > t0, got {span.tolist()}")
    te = (np.linspace(span[0], span[1], 201) if t_eval is None
          else as_float_array(t_eval, "t_eval", ndim=(1,)))
    Kb = K.reshape(-1, 1)  # (batch, 1): the batch's couplings, broadcast over the state
    ea = complex(math.cos(a), -math.sin(a))  # e^{−iα}
    lin = complex(-g, w0)

    def deriv(z: np.ndarray, zd: np.ndarray) -> np.ndarray:
        return lin * z + 0.5 * Kb[:, 0] * (ea * zd - np.conj(ea) * np.conj(zd) * z * z)

    def pack(dz: np.ndarray) -> np.ndarray:
        return np.stack([dz.real, dz.imag], axis=-1)

    batch = None if K.ndim == 0 else K.shape[0]
    if d == 0.0:
        def f_ode(t, x):
            z = x[:, 0] + 1j * x[:, 1]
            return pack(deriv(z, z))
        system = rhs.python(f_ode, 2, (), batch)
    else:
        def f_dde(t, x, xd):
            z = x[:, 0] + 1j * x[:, 1]
            zd = xd[:, 0, 0] + 1j * xd[:, 0, 1]
            return pack(deriv(z, zd))
        system = rhs.python(f_dde, 2, d, batch)
    z0 = rr * np.array([math.cos(phase), math.sin(phase)])
    sol = solve_dde(system, z0, (float(span[0]), float(span[1])), t_eval=te, rtol=rtol,
                    atol=atol, throw=throw)
    y = np.asarray(sol.y)
    z = y[..., 0] + 1j * y[..., 1]
    r_inf: Union[float, np.ndarray] = (stationary_r(g, K) if d == 0.0 and a == 0.0
                                       else (math.nan if K.ndim == 0 else np.full(K.shape, np.nan)))
    res = OttAntonsenResult(t=np.asarray(sol.t), z=z, r=np.abs(z),
                            psi=np.unwrap(np.angle(z), axis=-1), r_inf=r_inf,
                            status=sol.status,
                            info={"omega0": w0, "gamma": g, "tau": d, "alpha": a})
    res._origin = "ott_antonsen"
    return res


def critical_coupling(distribution: str = "lorentzian", width: float = 1.0, *,
                      p: float = 1.0, g0: Optional[float] = None) -> float:
    """Kuramoto's critical coupling K_c = 2/(π g(0) p) (symmetric unimodal g, no delay).

    Parameters
    ----------
    distribution : "lorentzian", "gaussian", "uniform" or "custom"
        g: Lorentzian of half-width γ = ``width`` (K_c = 2γ), Gaussian of standard deviation
        σ = ``width`` (K_c = 2σ√(2π)/π ≈ 1.596σ), uniform on [−width, width] (g(0) = 1/(2·width):
        K_c = 4·width/π, where the transition is first order), or "custom" with ``g0`` = g(0).
    width : float
        The scale (> 0).
    p : float
        A constant graphon W ≡ p in (0, 1] with the coupling normalised by N (K/N Σ_j A_ij,
        ``normalization="n"``): the mean field sees K·p, so K_c is divided by p. (With in-degree
        normalisation the mean field is K itself: leave p = 1.)
    g0 : float, optional
        g(0) for "custom".
    """
    w = _positive(width, "width")
    pp = _positive(p, "p")
    if pp > 1:
        raise ValueError(f"p: an edge probability in (0, 1], got {pp:g}")
    if distribution == "lorentzian":
        density = 1.0 / (math.pi * w)
    elif distribution == "gaussian":
        density = 1.0 / (w * math.sqrt(2 * math.pi))
    elif distribution == "uniform":
        density = 1.0 / (2 * w)
    elif distribution == "custom":
        if g0 is None:
            raise ValueError("g0: 'custom' needs g(0)")
        density = _positive(g0, "g0")
    else:
        raise ValueError("distribution: expected 'lorentzian', 'gaussian', 'uniform' or "
                         f"'custom', got {distribution!r}")
    return 2.0 / (math.pi * density * pp)


def order_parameter(phases: np.ndarray) -> np.ndarray:
    """r = |mean_j e^{iθ_j}| over the last axis."""
    return np.abs(np.exp(1j * np.asarray(phases, dtype=float)).mean(axis=-1))


def convergence(n_values: Sequence[int], coupling: ArrayLike, *, gamma: float = 1.0,
                graph: Union[None, float, Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
                t_final: float = 200.0, t_average: float = 100.0, seed: int = 0,
                rtol: float = 1e-3, deterministic: bool = True,
                threads: Optional[int] = None) -> dict[str, np.ndarray]:
    """Finite-N Kuramoto against the Ott–Antonsen r∞ (Lorentzian, no delay): the harness.

    For each N: the frequencies are the Lorentzian's deterministic quantiles (no sampling
    noise, :func:`delyap.networks.frequencies`), or with ``deterministic=False`` i.i.d. draws
    (``seed``), whose sampling error ~N^(−1/2) then dominates; the graph is the complete one
    (``graph=None``) or one sampled from a graphon (a constant p or W(x, y),
    :func:`delyap.networks.sample_graph`), in-degree normalised; all couplings run as one
    batch. r is averaged over the last ``t_average`` time units of [0, t_final] (r∞ is the
    continuum limit of that time average), from the coherent start θ_j = 0. ``rtol`` is the
    solver's tolerance (r is a mean over N phases: the fastest oscillators of the Lorentzian
    tail set the step at tight tolerances while hardly moving r).

    Returns
    -------
    dict with ``n`` (len(n_values),), ``coupling`` (m,), ``r`` (len(n_values), m): the time
    averages, ``r_inf`` (m,) and ``error`` = |r − r∞|.
    """
    from . import networks
    from .solve import solve_dde

    K = np.atleast_1d(_couplings(coupling))
    g = _positive(gamma, "gamma")
    tf = _positive(t_final, "t_final")
    ta = _positive(t_average, "t_average")
    if ta > tf:
        raise ValueError("t_average: must not exceed t_final")
    if isinstance(n_values, (str, bytes)) or not isinstance(n_values, Sequence):
        n_values = list(np.atleast_1d(np.asarray(n_values)))
    ns = [as_count(n, "n_values", minimum=2) for n in n_values]
    if not ns:
        raise ValueError("n_values: expected node counts ≥ 2")
    r = np.empty((len(ns), K.size))
    for a, n in enumerate(ns):
        omega = networks.frequencies(n, "lorentzian", width=g, deterministic=deterministic,
                                     seed=seed)
        if graph is None:
            A = _complete(n)
        else:
            A, _ = networks.sample_graph(graph, n, seed=seed)
        sys = networks.kuramoto(omega, A, K, tau=0.0)
        # A coherent start (all phases 0, r = 1: the r0 → 1 end of the OA manifold): r relaxes
        # to r∞ at the rate K − 2γ; from incoherence it would first need ~log(N)/(K/2 − γ)
        # to leave r ≈ 1/N, longer for larger N, which would bias the comparison over N.
        theta0 = np.zeros(n)
        te = np.linspace(tf - ta, tf, 101)
        sol = solve_dde(sys, theta0, (0.0, tf), t_eval=te, output="order_parameter",
                        threads=threads, rtol=rtol, atol=1e-3 * rtol)
        r[a] = np.asarray(sol.y)[..., 0].reshape(K.size, -1).mean(axis=1)
    r_inf = np.atleast_1d(stationary_r(g, K))
    return {"n": np.array(ns), "coupling": K, "r": r, "r_inf": r_inf,
            "error": np.abs(r - r_inf)}


def _complete(n: int):
    """The complete digraph without self-loops, CSR (row i: every j ≠ i, sorted)."""
    import scipy.sparse as sp

    rows: np.ndarray = np.repeat(np.arange(n, dtype=np.int32), n - 1)
    j = np.tile(np.arange(n - 1, dtype=np.int32), n)
    indices = j + (j >= rows)
    indptr = np.arange(0, n * (n - 1) + 1, n - 1, dtype=np.int64)
    return sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(n, n))
