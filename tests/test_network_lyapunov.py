"""Lyapunov spectra of Kuramoto and Stuart–Landau networks (sparse tangent products).

Every case has an exact answer: at a synchronous state the linearisation has constant (or, for
Stuart–Landau, Floquet) coefficients whose exponents follow from the graph's spectrum (complete
graph, ring) or from the roots of the delayed characteristic equations (Lambert W).
"""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.special import lambertw

import delyap as dl
from delyap.lyapunov import lyapunov_spectrum

Z = 4.0


def complete(n):
    return sp.csr_matrix(np.ones((n, n)) - np.eye(n))


def ring(n, reach):
    """Undirected ring, each node linked to its `reach` neighbours on either side."""
    a = np.zeros((n, n))
    for s in range(1, reach + 1):
        for i in range(n):
            a[i, (i + s) % n] = a[i, (i - s) % n] = 1.0
    return sp.csr_matrix(a)


def within(res, expected, floor):
    err = np.abs(np.asarray(res.exponents) - expected)
    assert np.all(err <= Z * np.asarray(res.stderr) + floor), (res.exponents, expected, res.stderr)


def test_complete_graph_sync_ode_full_spectrum():
    """θ_i' = ω + K/(N−1) Σ_{j≠i} sin(θ_j − θ_i) at sync: δ' = −K/(N−1)(N·I − 11ᵀ)δ, so the
    exponents are 0 and −K·N/(N−1) (N − 1 times)."""
    n, K = 6, 1.3
    sys = dl.rhs.kuramoto(0.7, complete(n), K, tau=0.0)
    res = lyapunov_spectrum(sys, 0.3, n, 40.0, t_transient=10.0, rtol=1e-9, atol=1e-12)
    expected = np.array([0.0] + [-K * n / (n - 1)] * (n - 1))
    np.testing.assert_allclose(res.exponents, expected, atol=1e-6)
    # An ODE's full spectrum sums to the mean divergence, −K·N exactly here.
    assert abs(res.exponents.sum() + K * n) < 1e-5


def test_coupling_batch_and_phase_lag():
    """A K-batch gives one spectrum per K; the Sakaguchi lag α scales the transverse rate by
    cos α (δ' = −K cos α/(N−1)(N·I − 11ᵀ)δ at sync)."""
    n, Ks, alpha = 5, np.array([0.5, 1.0, 2.0]), 0.4
    sys = dl.rhs.kuramoto(1.0, complete(n), Ks, tau=0.0, alpha=alpha)
    res = lyapunov_spectrum(sys, 0.0, 3, 30.0, t_transient=10.0, rtol=1e-9, atol=1e-12)
    assert res.exponents.shape == (3, 3)
    expected = np.stack([[0.0, -K * np.cos(alpha) * n / (n - 1), -K * np.cos(alpha) * n / (n - 1)]
                         for K in Ks])
    np.testing.assert_allclose(res.exponents, expected, atol=1e-6)


# n = 9 runs the dense-graph GEMM path of the tangent products, n = 24 the sparse gather.
@pytest.mark.parametrize("n", [9, 24])
def test_ring_exponents_are_laplacian_eigenvalues(n):
    """Ring with ±1, ±2 neighbours (in-degree 4): at sync δ' = (K/4)(A − 4I)δ, eigenvalues of
    the circulant (K/4)(2cos(2πm/N) + 2cos(4πm/N) − 4)."""
    K = 2.0
    sys = dl.rhs.kuramoto(0.0, ring(n, 2), K, tau=0.0)
    # The spectral gap (0.17 at n = 24) sets how long the directions take to align.
    res = lyapunov_spectrum(sys, 1.0, n, 60.0, t_transient=150.0, rtol=1e-10, atol=1e-12)
    m = np.arange(n)
    expected = np.sort(K / 4 * (2 * np.cos(2 * np.pi * m / n) + 2 * np.cos(4 * np.pi * m / n) - 4)
                       )[::-1]
    np.testing.assert_allclose(res.exponents, expected, atol=1e-5)


def roots_real_parts(a, b, tau, branches=30):
    """Real parts of all roots λ = a + b e^{−λτ} from branches −B..B of Lambert W:
    λ = a + W_k(bτ e^{−aτ})/τ (each complex root's conjugate comes from the mirror branch)."""
    z = b * tau * np.exp(-a * tau)
    return [(a + lambertw(z, k) / tau).real for k in range(-branches, branches)]


@pytest.mark.parametrize("graph", ["complete", "ring"])
def test_delayed_sync_matches_characteristic_roots(graph):
    """In-degree normalised regular graph, delay τ: the in-phase state θ_i = Ωt has
    Ω = ω − K sin(Ωτ). With c = K cos(Ωτ) and μ an eigenvalue of A/d, the perturbation mode
    obeys λ = −c + c μ e^{−λτ}; the exponents are the real parts of all roots of all modes
    (complete graph: μ = 1 once and −1/(N−1) N − 1 times, the dense GEMM path; a ring of 12:
    μ = cos(2πm/N), the sparse path)."""
    K, omega, tau = 1.0, 1.0, 1.0
    if graph == "complete":
        n = 4
        A, mus = complete(n), [1.0] + [-1.0 / (n - 1)] * (n - 1)
    else:
        n = 12
        A, mus = ring(n, 1), np.cos(2 * np.pi * np.arange(n) / n)
    Om = brentq(lambda w: w - omega + K * np.sin(w * tau), 0.0, 2.0)
    c = K * np.cos(Om * tau)
    assert c > 0  # a stable in-phase state
    parts = [p for mu in mus for p in roots_real_parts(-c, c * mu, tau)]
    k = 6
    expected = np.sort(parts)[::-1][:k]
    sys = dl.rhs.kuramoto(omega, A, K, tau=tau)
    res = lyapunov_spectrum(sys, 0.2, k, 300.0, t_transient=200.0, rtol=1e-9, atol=1e-11)
    assert abs(expected[0]) < 1e-12  # the phase mode is neutral exactly
    within(res, expected, floor=3e-3)
    # The locked frequency itself, from a solve (a wrong delayed read moves it).
    sol = dl.solve_dde(sys, 0.2, (0, 200), t_eval=[150.0, 200.0], rtol=1e-10, atol=1e-12)
    assert abs((sol.y[1, 0] - sol.y[0, 0]) / 50.0 - Om) < 1e-7


def test_stuart_landau_uncoupled_and_complete_graph():
    """Uncoupled nodes on their limit cycles r = √λ: exponents 0 (phase) and −2λ (amplitude) per
    node. In-phase sync on a complete graph (identical ω): the uniform mode keeps (0, −2λ),
    each transverse mode shifts both by −K·N/(N−1)."""
    n, lam = 4, 0.8
    z0 = np.sqrt(lam) * np.exp(1j * np.linspace(0, 3, n))
    y0 = np.stack([z0.real, z0.imag], axis=1).ravel()
    free = dl.rhs.stuart_landau(np.linspace(1, 2, n), ring(n, 1), 0.0, tau=0.0, lam=lam)
    res = lyapunov_spectrum(free, y0, 2 * n, 30.0, t_transient=5.0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.exponents, [0.0] * n + [-2 * lam] * n, atol=1e-5)

    K = 0.5
    sync = dl.rhs.stuart_landau(1.5, complete(n), K, tau=0.0, lam=lam)
    y1 = np.tile([np.sqrt(lam), 0.0], n)
    res = lyapunov_spectrum(sync, y1, 2 * n, 40.0, t_transient=10.0, rtol=1e-10, atol=1e-12)
    c = K * n / (n - 1)
    expected = np.sort([0.0, -2 * lam] + [-c, -2 * lam - c] * (n - 1))[::-1]
    np.testing.assert_allclose(res.exponents, expected, atol=1e-5)


def test_stuart_landau_delayed_uncoupled_nodes():
    """With K = 0 the delayed coupling drops out of the tangent DDE: the delay-path spectrum
    (tangent functions on the window) still gives 0 and −2λ per node."""
    n, lam = 3, 1.0
    y0 = np.tile([np.sqrt(lam), 0.0], n)
    sys = dl.rhs.stuart_landau(np.array([1.0, 1.3, 0.7]), complete(n), 0.0, tau=0.5, lam=lam)
    res = lyapunov_spectrum(sys, y0, 2 * n, 60.0, t_transient=5.0, rtol=1e-9, atol=1e-11)
    within(res, np.array([0.0] * n + [-2 * lam] * n), floor=2e-3)


def test_large_sparse_network_runs_without_dense_jacobian():
    """N = 3000 with 10 in-edges: a dense Jacobian (72 MB per lag, per evaluation) would make
    this slow; the sparse path finishes quickly. Identical ω, common start: sync, so the top
    exponent is 0 and the next ones negative."""
    n, deg = 3000, 10
    rng = np.random.default_rng(1)
    cols = np.array([rng.choice(np.delete(np.arange(n), i), deg, replace=False)
                     for i in range(n)]).ravel()
    A = sp.csr_matrix((np.ones(n * deg), cols, np.arange(0, n * deg + 1, deg)), shape=(n, n))
    sys = dl.rhs.kuramoto(0.0, A, 1.0, tau=0.0)
    res = lyapunov_spectrum(sys, 0.5, 4, 10.0, t_transient=30.0)
    assert abs(res.exponents[0]) < 1e-6
    assert np.all(res.exponents[1:] < -0.1)


def test_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        dl.rhs.kuramoto(0.0, complete(3), 1.0, tau=0.0, alpha=np.nan)
    with pytest.raises(ValueError, match="n_exponents"):
        lyapunov_spectrum(dl.rhs.kuramoto(0.0, complete(3), 1.0, tau=0.0), 0.0, 4, 1.0)


def _two_oscillators(alpha):
    """θ1' = ω1 + K sin(θ2 − θ1 − α), θ2' = ω2 + K sin(θ1 − θ2 − α): locked with
    sin φ = (ω2 − ω1)/(2K cos α) (φ = θ2 − θ1) at Ω = (ω1 + ω2)/2 − K cos φ sin α."""
    w1, w2, K = 0.3, 0.8, 1.0
    phi = np.arcsin((w2 - w1) / (2 * K * np.cos(alpha)))
    Om = 0.5 * (w1 + w2) - K * np.cos(phi) * np.sin(alpha)
    A = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    return dl.rhs.kuramoto([w1, w2], A, K, tau=0.0, alpha=alpha), Om, phi


def test_phase_lag_locked_frequency_cpu():
    sys, Om, phi = _two_oscillators(0.6)
    sol = dl.solve_dde(sys, [0.0, 0.1], (0, 100), t_eval=[80.0, 100.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((sol.y[1] - sol.y[0]) / 20.0, [Om, Om], atol=1e-8)
    assert abs(sol.y[1, 1] - sol.y[1, 0] - phi) < 1e-7
    # α = 0 is the plain model.
    plain, Om0, _ = _two_oscillators(0.0)
    sol0 = dl.solve_dde(plain, [0.0, 0.1], (0, 100), t_eval=[80.0, 100.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((sol0.y[1] - sol0.y[0]) / 20.0, [Om0, Om0], atol=1e-8)


def test_phase_lag_on_the_device_path(monkeypatch):
    """The CUDA network solver (or its CPU emulation) takes α too: same locked state."""
    from cuda_backends import BACKENDS, environment

    if not BACKENDS:
        pytest.skip("needs the CUDA build or its CPU emulation")
    for name, value in environment(BACKENDS[-1]).items():
        monkeypatch.setenv(name, value)
    sys, Om, phi = _two_oscillators(0.6)
    kw = dict(t_eval=[80.0, 100.0], rtol=1e-10, atol=1e-12)
    gpu = dl.solve_dde(sys, [0.0, 0.1], (0, 100), device="cuda", **kw)
    cpu = dl.solve_dde(sys, [0.0, 0.1], (0, 100), **kw)
    np.testing.assert_allclose(gpu.y, cpu.y, atol=1e-7)
    np.testing.assert_allclose((gpu.y[1] - gpu.y[0]) / 20.0, [Om, Om], atol=1e-8)


def _random_weighted_graph(n, seed):
    """A random weighted digraph with per-edge delays from two classes {0.5, 1.0}."""
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=0.5, format="csr", random_state=seed)
    A.setdiag(0.0)
    A.eliminate_zeros()
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    tau = A.copy()
    tau.data = rng.choice([0.5, 1.0], size=A.nnz)
    classes = [sp.csr_matrix((A.data * (tau.data == t), A.indices, A.indptr), shape=(n, n))
               .toarray() for t in (0.5, 1.0)]
    return A, tau, np.array(classes), rng


# Only the agreement of the two paths matters here, not whether 20 time units settle.
@pytest.mark.filterwarnings("ignore::delyap.ConvergenceWarning")
def test_sparse_tangent_matches_a_dense_jacobian_kuramoto():
    """Away from any symmetric state, with weights, two delay classes and a phase lag: the
    spectrum on the sparse tangent products equals that of the same system written here in
    numpy with its dense Jacobians (delyap.rhs.python, the dense tangent path)."""
    n, K, alpha = 5, 1.2, 0.3  # (tolerance: see the Stuart–Landau twin below)
    A, tau, Am, rng = _random_weighted_graph(n, 4)
    omega = rng.normal(0.0, 0.5, n)
    inv_d = 1.0 / np.diff(A.indptr)

    def f(t, x, xd):
        d = xd[0][:, None, :] - x[0][None, :, None] - alpha  # (class, i, j)
        return (omega + K * inv_d * (Am * np.sin(d)).sum(axis=(0, 2)))[None]

    def jac(t, x, xd):
        d = xd[0][:, None, :] - x[0][None, :, None] - alpha
        jd = K * inv_d[None, :, None] * Am * np.cos(d)
        return -np.diag(jd.sum(axis=(0, 2))), jd

    dense = dl.rhs.python(f, n, [0.5, 1.0], jac=jac)
    sparse = dl.rhs.kuramoto(omega, A, K, tau=tau, alpha=alpha)
    hist = rng.uniform(0, 2 * np.pi, n)
    kw = dict(t_transient=5.0, rtol=1e-9, atol=1e-11, seed=3, n_blocks=4)
    a = lyapunov_spectrum(sparse, hist, 4, 20.0, **kw)
    b = lyapunov_spectrum(dense, hist, 4, 20.0, **kw)
    np.testing.assert_allclose(a.exponents, b.exponents, atol=1e-6)


# Only the agreement of the two paths matters here, not whether 20 time units settle.
@pytest.mark.filterwarnings("ignore::delyap.ConvergenceWarning")
def test_sparse_tangent_matches_a_dense_jacobian_stuart_landau():
    n, K, lam = 4, 0.7, 0.5
    A, tau, Am, rng = _random_weighted_graph(n, 6)
    omega = rng.normal(1.0, 0.3, n)
    inv_d = 1.0 / np.diff(A.indptr)
    wsum = Am.sum(axis=(0, 2))

    def f(t, x, xd):
        z = x[0, 0::2] + 1j * x[0, 1::2]
        zd = xd[0, :, 0::2] + 1j * xd[0, :, 1::2]  # (class, node)
        dz = (lam + 1j * omega - abs(z) ** 2) * z + K * inv_d * (
            np.einsum("mij,mj->i", Am, zd) - wsum * z)
        return np.stack([dz.real, dz.imag], axis=1).reshape(1, -1)

    def jac(t, x, xd):
        a, b = x[0, 0::2], x[0, 1::2]
        r2, kc = a * a + b * b, K * inv_d
        jx = np.zeros((2 * n, 2 * n))
        for i in range(n):
            jx[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [
                [lam - r2[i] - 2 * a[i] ** 2 - kc[i] * wsum[i], -2 * a[i] * b[i] - omega[i]],
                [-2 * a[i] * b[i] + omega[i], lam - r2[i] - 2 * b[i] ** 2 - kc[i] * wsum[i]]]
        jd = np.zeros((2, 2 * n, 2 * n))
        for c in range(2):
            jd[:, c::2, c::2] = kc[None, :, None] * Am
        return jx, jd

    dense = dl.rhs.python(f, 2 * n, [0.5, 1.0], jac=jac)
    sparse = dl.rhs.stuart_landau(omega, A, K, tau=tau, lam=lam)
    hist = rng.normal(0, 0.5, 2 * n)
    kw = dict(t_transient=5.0, rtol=1e-9, atol=1e-11, seed=3, n_blocks=4)
    a = lyapunov_spectrum(sparse, hist, 4, 20.0, **kw)
    b = lyapunov_spectrum(dense, hist, 4, 20.0, **kw)
    # The two tangent products round differently, so step control takes slightly different
    # step sequences (their trajectories agree to 1e-16 with K = 0 and the spectra to 1e-12):
    # a few 1e-6 of discretisation difference; a wrong Jacobian term is off by ≳ 1e-2.
    np.testing.assert_allclose(a.exponents, b.exponents, atol=2e-5)


@pytest.mark.parametrize("graph", ["complete", "ring"])
def test_many_directions_run_the_blocked_qr(graph):
    """k = 17 directions on N = 120 nodes re-orthonormalise with the blocked (BLAS-3) QR; the
    exponents stay exact: complete graph (GEMM tangent path) 0 and −K·N/(N−1); circulant ring
    with 5 neighbours a side (sparse path) (K/10) Σ_s 2cos(2πms/N) − K, the top 17 (down to a
    complex pair, 0.27 above the next value)."""
    n, K, k = 120, 2.0, 17
    if graph == "complete":
        A = complete(n)
        expected = np.array([0.0] + [-K * n / (n - 1)] * (k - 1))
        transient = 10.0
    else:
        A = ring(n, 5)
        m = np.arange(n)
        lam = K / 10 * sum(2 * np.cos(2 * np.pi * m * s / n) for s in range(1, 6)) - K
        expected = np.sort(lam)[::-1][:k]
        transient = 400.0  # the smallest gap, 0.03 (0 to the first pair), sets the alignment
    sys = dl.rhs.kuramoto(0.0, A, K, tau=0.0)
    res = lyapunov_spectrum(sys, 0.4, k, 20.0, t_transient=transient, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.exponents, expected, atol=1e-5)
