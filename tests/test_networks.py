"""Delay-coupled networks: synchronisation theory, incoherence, Python references, outputs."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import brentq

import delyap as dl


def complete_graph(n):
    return sp.csr_matrix(np.ones((n, n)) - np.eye(n))


def random_digraph(n, k, seed):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), k)
    cols = rng.integers(0, n, n * k)
    keep = rows != cols
    return sp.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))


@pytest.mark.parametrize("K, tau", [(0.5, 1.0), (1.0, 0.6), (0.4, 1.5)])
def test_synchronous_frequency_on_complete_graph(K, tau):
    """Identical oscillators: θ = Ωt with Ω = ω − K sin(Ωτ), stable when K cos(Ωτ) > 0."""
    omega, n = 1.0, 12
    Omega = brentq(lambda w: w - omega + K * np.sin(w * tau), omega - K - 1e-9, omega + K + 1e-9)
    assert K * np.cos(Omega * tau) > 0  # the branch is stable
    rng = np.random.default_rng(1)
    theta0 = 0.3 * rng.standard_normal(n)
    kur = dl.rhs.kuramoto(omega, complete_graph(n), coupling=K, tau=tau)
    t = np.array([150.0, 200.0])
    sol = dl.solve_dde(kur, lambda s: np.outer(s, np.full(n, omega)) + theta0, (0, 200), t_eval=t,
                       rtol=1e-9, atol=1e-9)
    freq = (sol.y[1] - sol.y[0]) / (t[1] - t[0])
    np.testing.assert_allclose(freq, Omega, atol=1e-6)
    order = dl.solve_dde(kur, lambda s: np.outer(s, np.full(n, omega)) + theta0, (0, 200),
                         t_eval=t, rtol=1e-9, atol=1e-9, output="order_parameter")
    assert order.y[-1, 0] == pytest.approx(1.0, abs=1e-6)


def test_incoherent_state_at_weak_coupling():
    n = 1500
    rng = np.random.default_rng(2)
    omega = rng.standard_cauchy(n) * 0.5   # Lorentzian, half-width 0.5: K_c = 1 without delay
    kur = dl.rhs.kuramoto(omega, random_digraph(n, 20, 3), coupling=0.3, tau=1.0)
    t = np.linspace(50, 150, 201)
    sol = dl.solve_dde(kur, rng.uniform(0, 2 * np.pi, n), (0, 150), t_eval=t,
                       output="order_parameter", rtol=1e-6, atol=1e-8)
    assert sol.y.shape == (201, 2)
    assert np.mean(sol.y[:, 0]) < 4 / np.sqrt(n)


def test_strong_coupling_synchronises_a_sparse_digraph():
    n = 400
    rng = np.random.default_rng(4)
    omega = 1.0 + 0.05 * rng.standard_normal(n)
    kur = dl.rhs.kuramoto(omega, random_digraph(n, 20, 5), coupling=3.0, tau=0.2)
    sol = dl.solve_dde(kur, rng.uniform(-0.5, 0.5, n), (0, 100), t_eval=[100.0],
                       output="order_parameter")
    assert sol.y[0, 0] > 0.99


def python_kuramoto(A, omega, K, taus_per_edge, classes):
    """Reference right-hand side with one delay per class, plain numpy."""
    A = A.tocsr()
    inv = 1.0 / np.maximum(np.diff(A.indptr), 1)
    rows = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))

    def f(t, x, xd):
        out = np.empty_like(x)
        for b in range(x.shape[0]):
            th, thd = x[b], xd[b]
            s = np.zeros_like(th)
            np.add.at(s, rows, A.data * np.sin(thd[classes, A.indices] - th[rows]))
            out[b] = omega + K * inv * s
        return out

    return f


def test_per_edge_delay_classes_match_python_reference():
    n = 8
    A = random_digraph(n, 3, 6)
    A.sort_indices()
    rng = np.random.default_rng(7)
    omega = rng.normal(1, 0.2, n)
    values = np.array([0.4, 1.0, 1.7])
    classes = rng.integers(0, 3, A.nnz)
    tau = values[classes]
    kur = dl.rhs.kuramoto(omega, A, coupling=1.5, tau=tau)
    assert kur.n_delays == 3
    theta0 = rng.uniform(0, 2 * np.pi, n)
    t = np.linspace(0, 20, 11)
    sol = dl.solve_dde(kur, theta0, (0, 20), t_eval=t, rtol=1e-10, atol=1e-10)
    py = dl.rhs.python(python_kuramoto(A, omega, 1.5, tau, classes), n, values)
    ref = dl.solve_dde(py, theta0, (0, 20), t_eval=t, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sol.y, ref.y, atol=1e-8)
    # The same delays as a sparse matrix with A's pattern.
    kur2 = dl.rhs.kuramoto(omega, A, coupling=1.5,
                           tau=sp.csr_matrix((tau, A.indices, A.indptr), shape=A.shape))
    np.testing.assert_array_equal(dl.solve_dde(kur2, theta0, (0, 20), t_eval=t, rtol=1e-10,
                                               atol=1e-10).y, sol.y)


def test_coupling_sweep_batch_equals_single_runs():
    n = 30
    A = random_digraph(n, 5, 8)
    rng = np.random.default_rng(9)
    omega, theta0 = rng.normal(1, 0.3, n), rng.uniform(0, 2 * np.pi, n)
    Ks = np.array([0.2, 1.0, 4.0])
    batch = dl.solve_dde(dl.rhs.kuramoto(omega, A, coupling=Ks, tau=0.5), theta0, (0, 30),
                         t_eval=[30.0], output="order_parameter")
    for i, K in enumerate(Ks):
        one = dl.solve_dde(dl.rhs.kuramoto(omega, A, coupling=K, tau=0.5), theta0, (0, 30),
                           t_eval=[30.0], output="order_parameter")
        np.testing.assert_array_equal(batch.y[i], one.y)
    assert batch.y[2, 0, 0] > batch.y[0, 0, 0]  # stronger coupling, more order


def test_reduced_outputs_equal_slices_of_the_full_state():
    n = 50
    A = random_digraph(n, 6, 10)
    rng = np.random.default_rng(11)
    kur = dl.rhs.kuramoto(rng.normal(1, 0.2, n), A, coupling=1.0, tau=0.7)
    theta0 = rng.uniform(0, 2 * np.pi, n)
    t = np.linspace(0, 10, 21)
    full = dl.solve_dde(kur, theta0, (0, 10), t_eval=t)
    some = dl.solve_dde(kur, theta0, (0, 10), t_eval=t, output=[3, 0, 49])
    np.testing.assert_array_equal(some.y, full.y[:, [3, 0, 49]])
    order = dl.solve_dde(kur, theta0, (0, 10), t_eval=t, output="order_parameter")
    z = np.exp(1j * full.y).mean(axis=1)
    np.testing.assert_allclose(order.y[:, 0], np.abs(z), atol=1e-13)
    np.testing.assert_allclose(np.exp(1j * order.y[:, 1]), z / np.abs(z), atol=1e-12)


def test_history_memory_is_a_window_of_anchors():
    n = 2000
    kur = dl.rhs.kuramoto(1.0, random_digraph(n, 10, 12), coupling=1.0, tau=1.0)
    sol = dl.solve_dde(kur, np.zeros(n), (0, 500), t_eval=[500.0], output="order_parameter",
                       max_step=0.1)
    assert sol.stats["accepted"] >= 5000
    assert sol.stats["history_peak"] <= 20  # τ / max_step = 10 anchors + a few, not N × steps


def test_stuart_landau_limit_cycle_and_python_reference():
    n = 6
    A = random_digraph(n, 2, 13)
    rng = np.random.default_rng(14)
    omega = rng.normal(1.0, 0.1, n)
    z0 = rng.normal(size=2 * n) * 0.5
    # Uncoupled: every oscillator relaxes to the circle |z| = √λ.
    free = dl.rhs.stuart_landau(omega, A, coupling=0.0, tau=1.0, lam=2.0)
    sol = dl.solve_dde(free, z0, (0, 40), t_eval=[40.0])
    r = np.hypot(sol.y[0, 0::2], sol.y[0, 1::2])
    np.testing.assert_allclose(r, np.sqrt(2.0), atol=1e-6)
    # Coupled, against plain numpy.
    K, lam, tau = 0.7, 1.0, 0.8
    inv = 1.0 / np.maximum(np.diff(A.indptr), 1)
    W = A.toarray()

    def f(t, x, xd):
        z = x[0, 0::2] + 1j * x[0, 1::2]
        zd = xd[0, 0, 0::2] + 1j * xd[0, 0, 1::2]
        dz = (lam + 1j * omega - np.abs(z) ** 2) * z + K * inv * (W @ zd - W.sum(1) * z)
        out = np.empty((1, 2 * n))
        out[0, 0::2], out[0, 1::2] = dz.real, dz.imag
        return out

    t = np.linspace(0, 15, 6)
    coupled = dl.solve_dde(dl.rhs.stuart_landau(omega, A, coupling=K, tau=tau, lam=lam), z0,
                           (0, 15), t_eval=t, rtol=1e-10, atol=1e-10)
    ref = dl.solve_dde(dl.rhs.python(f, 2 * n, tau), z0, (0, 15), t_eval=t, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(coupled.y, ref.y, atol=1e-8)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(tau=np.nan), ValueError, "tau"),  # tau=0 is an undelayed network
    (dict(tau=-1.0), ValueError, "tau"),
    (dict(tau=np.ones(3)), ValueError, "one value per edge"),
    (dict(tau="x"), TypeError, "tau"),
    (dict(adjacency=np.ones((3, 4))), ValueError, "square"),
    (dict(omega=np.ones(7)), ValueError, "omega"),
    (dict(coupling=np.array([])), ValueError, "coupling"),
    (dict(normalization="bogus"), ValueError, "normalization"),
    (dict(adjacency=np.full((5, 5), np.nan)), ValueError, "NaN"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(omega=np.ones(5), adjacency=complete_graph(5), coupling=1.0, tau=1.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        dl.rhs.kuramoto(**args)


def test_too_many_distinct_delays_is_a_clear_error():
    A = random_digraph(100, 5, 15)
    with pytest.raises(ValueError, match="distinct edge delays"):
        dl.rhs.kuramoto(1.0, A, tau=np.linspace(0.1, 2, A.nnz))


def test_reduced_output_needs_t_eval():
    kur = dl.rhs.kuramoto(1.0, complete_graph(4), tau=1.0)
    with pytest.raises(ValueError, match="t_eval"):
        dl.solve_dde(kur, 0.0, (0, 1), output="order_parameter")
    with pytest.raises(ValueError, match="component"):
        dl.solve_dde(kur, 0.0, (0, 1), t_eval=[1.0], output=[7])


@pytest.mark.parametrize("system", ["kuramoto", "stuart_landau"])
def test_one_large_network_splits_its_rhs_over_threads_bitwise(system):
    """≥ 2·10⁴ edges and one trajectory: the right-hand side runs on a worker pool (chunks of
    nodes); every node is computed by the same code, so the thread count cannot change a bit."""
    rng = np.random.default_rng(108)
    N = 1500
    A = sp.random(N, N, density=20 / N, format="csr", random_state=int(rng.integers(1 << 31)))
    A.data[:] = 1.0
    assert A.nnz >= 20_000
    tau = A.copy()
    tau.data = rng.choice([0.5, 1.0], size=tau.nnz)
    omega = rng.normal(1.0, 0.4, size=N)
    if system == "kuramoto":
        sys_ = dl.rhs.kuramoto(omega, A, coupling=1.2, tau=tau)
        h = rng.uniform(0, 2 * np.pi, size=N)
    else:
        sys_ = dl.rhs.stuart_landau(omega, A, coupling=0.5, tau=tau)
        h = rng.uniform(-1, 1, size=2 * N)
    te = np.linspace(0.0, 5.0, 6)
    one = dl.solve_dde(sys_, h, (0.0, 5.0), te, threads=1)
    three = dl.solve_dde(sys_, h, (0.0, 5.0), te, threads=3)
    np.testing.assert_array_equal(one.y, three.y)
