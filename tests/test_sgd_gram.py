"""SGD Lyapunov exponents from a Gram matrix: REFERENCES.md cases 8–10, 12, 13; criteria."""
import numpy as np
import pytest

from delyap import sgd

Z = 4.0


def rank_one_K():
    """D = 1, N = 2: per-sample curvatures h = g² = (1, 3)."""
    g = np.array([1.0, np.sqrt(3.0)])
    return np.outer(g, g)


@pytest.mark.parametrize("eta, lam, mu, ms", [(0.9, -0.8860, -0.2231, 0.1858),
                                              (1.1, -0.7348, 0.1823, None),
                                              (1.5, 0.2798, 0.6931, None)])
def test_scalar_products_case8(eta, lam, mu, ms):
    h = np.array([1.0, 3.0])
    res = sgd.gram_lyapunov(rank_one_K(), eta, 1, steps=60_000, seed=3, mean_square=True,
                            renorm_interval=1)
    assert res.normal_dim == 1
    exact = np.mean(np.log(np.abs(1 - eta * h)))
    assert exact == pytest.approx(lam, abs=1e-4)
    assert abs(res.top - exact) < Z * res.stderr[0]
    assert res.gd_exponent == pytest.approx(mu, abs=1e-4)
    assert res.mean_square_exponent == pytest.approx(0.5 * np.log(np.mean((1 - eta * h) ** 2)),
                                                     rel=1e-6)
    if ms is not None:
        assert res.mean_square_exponent == pytest.approx(ms, abs=1e-4)
    # η = 0.9: almost-surely stable but mean-square unstable; η = 1.1: SGD stable, GD not.
    assert res.stable == (lam < 0)


def test_diagonal_gram_case9():
    """K diagonal: each step touches one coordinate; λ_j = (1/N) log|1 − η κ_j| (B = 1)."""
    kappa = np.array([0.5, 1.0, 2.5, 4.0])
    eta = 0.7
    res = sgd.gram_lyapunov(np.diag(kappa), eta, 1, steps=200_000, n_exponents=4, seed=5,
                            renorm_interval=1)
    expected = np.sort(np.log(np.abs(1 - eta * kappa)) / 4)[::-1]
    assert np.all(np.abs(res.exponents - expected) < Z * res.stderr + 1e-4)


def test_full_batch_is_gd_case10():
    rng = np.random.default_rng(0)
    J = rng.standard_normal((6, 9))
    K = J @ J.T
    eta = 0.8 * 2 * 6 / np.linalg.eigvalsh(K).max()
    res = sgd.gram_lyapunov(K, eta, 6, steps=3000, n_exponents=6, sampling="without",
                            transient=300)
    expected = np.sort(np.log(np.abs(1 - eta * np.linalg.eigvalsh(K) / 6)))[::-1]
    np.testing.assert_allclose(res.exponents, expected, atol=5e-3)
    assert res.top == pytest.approx(res.gd_exponent, abs=5e-3)


@pytest.mark.parametrize("sampling", ["without", "iid"])
def test_sum_rule_case12(sampling):
    rng = np.random.default_rng(1)
    J = rng.standard_normal((5, 12))
    K = J @ J.T
    eta, B = 0.15, 2
    res = sgd.gram_lyapunov(K, eta, B, steps=100_000, n_exponents=5, seed=2, sampling=sampling)
    # Monte-Carlo E log|det(I_B − (η/B) K_ξξ)| over the batch law: B distinct indices (a
    # uniform B-subset, the default) or i.i.d. indices (repeats allowed).
    if sampling == "iid":
        idx = rng.integers(0, 5, size=(200_000, B))
    else:
        idx = rng.permuted(np.tile(np.arange(5), (200_000, 1)), axis=1)[:, :B]
    sub = K[idx[:, :, None], idx[:, None, :]]
    logdet = np.log(np.abs(np.linalg.det(np.eye(B) - eta / B * sub)))
    se = np.sqrt(np.sum(res.stderr**2) + logdet.var() / logdet.size)
    assert abs(res.exponents.sum() - logdet.mean()) < Z * se


def dense_product_exponents(J, eta, B, steps, k, seed):
    """Independent reference: the D × D product (I − (η/B) J_ξᵀ J_ξ) with numpy QR, ξ a
    uniform B-subset of the samples (the default batch law)."""
    rng = np.random.default_rng(seed)
    N, D = J.shape
    q, _ = np.linalg.qr(rng.standard_normal((D, k)))
    logs = np.zeros((steps // 10, k))
    for s in range(steps):
        xi = rng.choice(N, size=B, replace=False)
        Jb = J[xi]
        q = q - (eta / B) * (Jb.T @ (Jb @ q))
        if (s + 1) % 10 == 0:
            q, r = np.linalg.qr(q)
            logs[s // 10] = np.log(np.abs(np.diag(r)))
    blocks = logs.reshape(20, -1, k).sum(axis=1) / (steps / 20)
    return logs.sum(axis=0) / steps, blocks.std(axis=0, ddof=1) / np.sqrt(20)


@pytest.mark.parametrize("eta", [1.2, 3.0])
def test_reduced_equals_dense_normal_space_case13(eta):
    rng = np.random.default_rng(3)
    N, D, B = 4, 9, 2
    J = rng.standard_normal((N, D)) / np.sqrt(D)
    dense, dense_se = dense_product_exponents(J, eta, B, 20_000, D, seed=4)
    res = sgd.gram_lyapunov(J @ J.T, eta, B, steps=20_000, n_exponents=N, seed=5)
    # D − N exponents vanish (tangent directions: 0 up to the O(1/T) start-up bias) …
    near_zero = np.argsort(np.abs(dense))[: D - N]
    assert np.all(np.abs(dense[near_zero]) < 1e-3)
    # … and the N normal ones equal the Gram product's.
    normal = np.setdiff1d(np.arange(D), near_zero)
    order = normal[np.argsort(dense[normal])[::-1]]
    se = np.sqrt(res.stderr**2 + dense_se[order] ** 2)
    assert np.all(np.abs(dense[order] - res.exponents) < Z * se + 1e-3)
    assert (res.top > 0) == (eta == 3.0)


def test_rank_deficient_K_works_on_its_range():
    """Duplicated samples: K has rank 3 of 5; the null space (exponent 0) must not leak in."""
    rng = np.random.default_rng(6)
    J = rng.standard_normal((3, 7))
    J = np.vstack([J, J[:2]])  # samples 3, 4 duplicate 0, 1
    K = J @ J.T
    eta = 0.05
    res = sgd.gram_lyapunov(K, eta, 1, steps=40_000, n_exponents=3, seed=1)
    assert res.normal_dim == 3
    assert np.all(res.exponents < 0)  # small η: all normal directions contract
    # The reference: the dense product in parameter space; 4 = 7 − 3 of its exponents vanish.
    dense, dense_se = dense_product_exponents(J, eta, 1, 40_000, 7, seed=2)
    normal = np.argsort(np.abs(dense))[4:]
    order = normal[np.argsort(dense[normal])[::-1]]
    se = np.sqrt(res.stderr**2 + dense_se[order] ** 2)
    assert np.all(np.abs(dense[order] - res.exponents) < Z * se + 1e-4)


@pytest.mark.parametrize("sampling", ["iid", "without", "epochs"])
def test_samplings_agree_on_a_deterministic_limit_and_are_thread_independent(sampling):
    rng = np.random.default_rng(7)
    J = rng.standard_normal((8, 20))
    K = J @ J.T
    lrs = np.array([0.05, 0.1, 0.2, 0.4])
    bs = np.array([1, 2, 4, 8])
    a = sgd.gram_lyapunov(K, lrs, bs, steps=4000, sampling=sampling, threads=1)
    b = sgd.gram_lyapunov(K, lrs, bs, steps=4000, sampling=sampling, threads=2)
    np.testing.assert_array_equal(a.exponents, b.exponents)
    # B = N: every sampling without replacement is full-batch GD.
    if sampling != "iid":
        assert a.exponents[3, 0] == pytest.approx(a.gd_exponent[3], abs=2e-3)


def test_mean_square_is_an_upper_bound_and_matches_brute_force():
    rng = np.random.default_rng(8)
    J = rng.standard_normal((4, 6))
    K = J @ J.T
    N = 4
    for sampling in ("iid", "without"):
        for eta, B in [(0.3, 1), (0.5, 2), (0.2, 3)]:
            val, _ = sgd.mean_square_exponent(sgd.gram_spectrum(K), eta, B, sampling=sampling)
            # Brute force: E[A ⊗ A] over every batch, on the full N² space.
            import itertools
            if sampling == "iid":
                batches = list(itertools.product(range(N), repeat=B))
            else:
                batches = list(itertools.permutations(range(N), B))
            M = np.zeros((N * N, N * N))
            for xi in batches:
                P = np.zeros((N, N))
                for i in xi:
                    P[i, i] += 1
                A = np.eye(N) - eta / B * K @ P
                M += np.kron(A, A) / len(batches)
            rho = np.max(np.abs(np.linalg.eigvals(M)))
            assert val == pytest.approx(0.5 * np.log(rho), abs=1e-6)
            lyap = sgd.gram_lyapunov(K, eta, B, steps=20_000, sampling=sampling)
            assert lyap.top <= val + Z * lyap.stderr[0]


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(lr=0.0), ValueError, "lr"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=9), ValueError, "larger than the data set"),
    (dict(batch_size=1.5), TypeError, "batch_size"),
    (dict(sampling="bogus"), ValueError, "sampling"),
    (dict(n_exponents=9), ValueError, "n_exponents"),
    (dict(steps=0), ValueError, "steps"),
    (dict(K=np.ones((3, 4))), ValueError, "square"),
    (dict(K=np.array([[1.0, 2.0], [0.0, 1.0]])), ValueError, "symmetric"),
    (dict(K=-np.eye(3)), ValueError, "semi-definite"),
    (dict(K=np.zeros((3, 3))), ValueError, "zero"),
    (dict(K=np.full((2, 2), np.nan)), ValueError, "NaN"),
])
def test_bad_input(kwargs, exc, match):
    rng = np.random.default_rng(0)
    J = rng.standard_normal((8, 10))
    args = dict(K=J @ J.T, lr=0.1, batch_size=2, steps=100)
    args.update(kwargs)
    K = args.pop("K")
    with pytest.raises(exc, match=match):
        sgd.gram_lyapunov(K, args.pop("lr"), args.pop("batch_size"), **args)


def test_stability_map_from_K_and_plot(tmp_path):
    rng = np.random.default_rng(9)
    J = rng.standard_normal((16, 40)) / np.sqrt(40)
    K = J @ J.T
    m = sgd.stability_map(K, lr=np.geomspace(0.1, 20, 10), batch_size=[1, 4, 16], steps=3000,
                          progress=False)
    assert m.top.shape == (3, 10) and m.mean_square.shape == (3, 10)
    # Full batch (B = N) without noise: the sign flips at GD's η = 2/λmax(H) (iid still has noise).
    assert m.gd_lr_limit == pytest.approx(2 / (np.linalg.eigvalsh(K).max() / 16))
    assert np.all(m.stable[:, 0]) and not np.any(m.stable[:, -1])
    # Mean-square stability implies almost-sure stability.
    assert np.all(m.top[m.mean_square < 0] < 3 * m.stderr[..., 0][m.mean_square < 0])
    rows = m.to_table()
    assert len(rows) == 30 and set(rows[0]) >= {"lr", "batch_size", "lambda1", "stable"}
    m.plot(str(tmp_path / "map.png"))
    assert (tmp_path / "map.png").stat().st_size > 10_000
    m.to_csv(str(tmp_path / "map.csv"))
    assert (tmp_path / "map.csv").read_text().count("\n") == 31


@pytest.mark.parametrize("portable, parts", [(False, 1), (True, 1), (True, 3), (True, 64)])
def test_gram_row_kernel_equals_numpy_for_every_block_shape(portable, parts):
    """The SGD step's inner kernel (register-blocked 4 rows × 4 columns, with remainders), in the
    ISA-dispatched host build and in the portable build the device runs -- also split into
    strided parts as a thread block splits it (64 parts > n: idle threads) -- against numpy."""
    from delyap import _testing

    rng = np.random.default_rng(101)
    n = 37
    K = rng.standard_normal((n, n))
    K = K + K.T
    for k in range(1, 10):
        for m in (1, 3, 4, 5, 8, 13):
            q = rng.standard_normal((k, n))
            rows = rng.integers(0, n, size=m).astype(np.uint32)  # repeats allowed, as in i.i.d.
            g = rng.standard_normal((m, k))
            got = _testing.gram_subtract_rows(q, K, rows, g, portable, parts)
            want = q - (K[rows].T @ g).T
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


@pytest.mark.parametrize("portable, parts", [(False, 1), (True, 1), (True, 5)])
def test_reduced_coordinate_gather_equals_numpy(portable, parts):
    """Rank-deficient K: G = scale · U[rows] Q, with every column-chunk remainder."""
    from delyap import _testing

    rng = np.random.default_rng(102)
    U = rng.standard_normal((40, 23))
    for k in range(1, 10):
        q = rng.standard_normal((k, 23))
        rows = rng.integers(0, 40, size=11).astype(np.uint32)
        got = _testing.gram_gather_rows(U, rows, q, 0.3, portable, parts)
        np.testing.assert_allclose(got, 0.3 * U[rows] @ q.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rank_deficient", [False, True])
@pytest.mark.parametrize("sampling", [0, 1, 2])
def test_block_cooperative_code_on_a_group_of_host_threads_is_exact(rank_deficient, sampling):
    """The GPU runs each configuration on a thread block (work split over threads, leader-only
    sampling and QR, barriers between phases). Here the same code runs on groups of real host
    threads with a barrier: any race or missing barrier would change the result, which must be
    bitwise that of a one-thread group, and agree with the default host kernel to rounding."""
    from delyap import _core

    rng = np.random.default_rng(103)
    J = rng.standard_normal((30, 20 if rank_deficient else 60)) / 5
    spec = sgd.gram_spectrum(J @ J.T)
    basis = None if spec.full_rank else spec.basis
    eig = None if spec.full_rank else np.ascontiguousarray(spec.eigenvalues)
    lr = rng.uniform(0.2, 2.0, size=3)
    bs = np.array([1, 4, 7], dtype=np.int32)

    def run(group_threads):
        return _core.gram_lyapunov(spec.K, basis, eig, 1, lr, bs, sampling, 3, 600, 10, 10, 7, 8,
                                   4, 1, group_threads)

    one, three, five, host = run(1), run(3), run(5), run(0)
    assert np.all(three["status"] == 0)
    np.testing.assert_array_equal(three["exponents"], one["exponents"])
    np.testing.assert_array_equal(five["exponents"], one["exponents"])
    np.testing.assert_array_equal(five["block_sum"], one["block_sum"])
    np.testing.assert_allclose(host["exponents"], one["exponents"], rtol=1e-9, atol=1e-12)
