"""Random matrix products: REFERENCES.md cases 8–12 within a few standard errors."""
import numpy as np
import pytest
from scipy.special import digamma

import delyap as dl
from delyap import _testing
from delyap.lyapunov import iid_product, kaplan_yorke_dimension

Z = 4.0  # tolerance in standard errors


def within(result, expected, z=Z):
    err = np.abs(np.asarray(result.exponents) - expected)
    assert np.all(err <= z * np.asarray(result.stderr)), (result.exponents, expected, result.stderr)


def test_householder_qr_matches_numpy():
    a = np.random.default_rng(0).standard_normal((9, 4))
    q, r = _testing.householder_qr(a)
    np.testing.assert_allclose(q @ r, a, atol=1e-13)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-13)
    assert np.all(np.diag(r) > 0) and np.allclose(np.tril(r, -1), 0)
    qn, rn = np.linalg.qr(a)
    np.testing.assert_allclose(np.abs(np.diag(r)), np.abs(np.diag(rn)), rtol=1e-12)


@pytest.mark.parametrize("eta, lam", [(0.9, -0.8860), (1.1, -0.7348), (1.5, 0.2798)])
def test_scalar_products_case8(eta, lam):
    h = np.array([1.0, 3.0])
    assert np.mean(np.log(np.abs(1 - eta * h))) == pytest.approx(lam, abs=1e-4)
    res = iid_product((1 - eta * h).reshape(2, 1, 1), steps=100_000, seed=7)
    within(res, np.mean(np.log(np.abs(1 - eta * h))))
    assert res.stderr[0] < 0.01


def test_diagonal_products_case9():
    rng = np.random.default_rng(2)
    diag = rng.uniform(-2, 2, size=(3, 4))  # three matrices, d = 4
    probs = np.array([0.2, 0.3, 0.5])
    mats = np.stack([np.diag(d) for d in diag])
    expected = np.sort(probs @ np.log(np.abs(diag)))[::-1]
    res = iid_product(mats, probs, steps=50_000, seed=3)
    within(res, expected)


def test_deterministic_product_case10_exact():
    """One matrix (B = N): exponents are log|eigenvalues|; QR reproduces them to rounding."""
    rng = np.random.default_rng(4)
    K = rng.standard_normal((5, 5))
    K = K @ K.T
    eta, N = 0.3, 5
    A = np.eye(5) - eta / N * K
    expected = np.sort(np.log(np.abs(np.linalg.eigvalsh(A))))[::-1]
    res = iid_product(A[None], steps=4000, seed=0, transient=400)
    np.testing.assert_allclose(res.exponents, expected, atol=2e-3)
    # The block estimates agree (deterministic product): stderr tiny.
    assert np.all(res.stderr < 1e-3)


def test_ginibre_case11_sampled_on_the_fly():
    d = 2
    expected = [0.5 * (np.log(2) + digamma((d - i + 1) / 2)) for i in (1, 2)]
    np.testing.assert_allclose(expected, [0.0580, -0.6352], atol=1e-4)
    res = iid_product(lambda rng: rng.standard_normal((d, d)), steps=6000, seed=11)
    within(res, expected)


def test_sum_rule_case12():
    """Σ λ_i = E log|det A_ξ| for the full spectrum."""
    rng = np.random.default_rng(5)
    mats = rng.standard_normal((4, 3, 3))
    res = iid_product(mats, steps=50_000, seed=1)
    expected_sum = np.mean(np.log(np.abs(np.linalg.det(mats))))
    se = np.sqrt(np.sum(res.stderr**2))
    assert abs(res.exponents.sum() - expected_sum) < 1e-9 + Z * se
    # The sum of log|R_jj| is exactly the sum of log|det| of the drawn matrices, so the
    # agreement is much tighter than the individual errors suggest.
    assert abs(res.exponents.sum() - expected_sum) < 0.02


def test_batch_matches_individual_runs_and_is_thread_independent():
    rng = np.random.default_rng(6)
    mats = rng.standard_normal((5, 3, 2, 2))
    batch = iid_product(mats, steps=5000, seed=9, threads=1)
    batch2 = iid_product(mats, steps=5000, seed=9, threads=2)
    np.testing.assert_array_equal(batch.exponents, batch2.exponents)
    assert batch.exponents.shape == (5, 2) and batch.batch_size == 5
    # Problem i uses stream i: different problems see different sequences.
    assert len(np.unique(batch.exponents[:, 0])) == 5


def test_running_estimate_converges_to_final_value():
    res = iid_product(np.array([[[0.5]], [[2.0]]]), steps=20_000, seed=1, n_running=50)
    assert res.running.shape == (50, 1)
    assert res.running[-1, 0] == pytest.approx(res.exponents[0], abs=1e-12)
    assert res.running_t[-1] == 20_000


def test_renorm_interval_does_not_change_the_answer():
    mats = np.random.default_rng(8).standard_normal((3, 3, 3)) * 0.7
    a = iid_product(mats, steps=30_000, seed=2, renorm_interval=1)
    b = iid_product(mats, steps=30_000, seed=2, renorm_interval=4)
    np.testing.assert_allclose(a.exponents, b.exponents, atol=1e-9)  # same draws, exact algebra


def test_kaplan_yorke_dimension():
    assert kaplan_yorke_dimension([0.5, 0.0, -1.0]) == pytest.approx(2.5)
    assert kaplan_yorke_dimension([-0.1, -0.2]) == 0.0
    with pytest.warns(dl.ConvergenceWarning):
        assert np.isnan(kaplan_yorke_dimension([0.3, 0.1]))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(matrices=np.ones((2, 2, 3)), steps=10), ValueError, "square"),
    (dict(matrices=np.ones((2, 2, 2)), probabilities=[0.5, 0.6], steps=10), ValueError, "sum to 1"),
    (dict(matrices=np.ones((2, 2, 2)), probabilities=[1.5, -0.5], steps=10), ValueError,
     "non-negative"),
    (dict(matrices=np.ones((2, 2, 2)), steps=0), ValueError, "steps"),
    (dict(matrices=np.ones((2, 2, 2)), steps=10, n_exponents=3), ValueError, "n_exponents"),
    (dict(matrices=np.full((2, 2, 2), np.nan), steps=10), ValueError, "NaN"),
    (dict(matrices="abc", steps=10), TypeError, "matrices"),
])
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        iid_product(**kwargs)


# ---- Large d: the blocked (BLAS-3) kernels ---------------------------------------------------
# The host runs blocked GEMM and blocked Householder QR from d ≈ 100 on (dense_blocked.hpp):
# these sizes take that path (and cross its 48-column panels unevenly).

@pytest.mark.parametrize("scipy", [False, True], ids=["eigen", "scipy"])
@pytest.mark.parametrize("n, k", [(130, 61), (200, 200), (97, 1), (150, 100)])
def test_blocked_qr_matches_numpy(n, k, scipy):
    a = np.random.default_rng(n + k).standard_normal((n, k))
    a_in = a.copy()
    q, r = _testing.blocked_qr(a, scipy=scipy)
    np.testing.assert_array_equal(a, a_in)
    np.testing.assert_allclose(q @ r, a, atol=1e-12)
    np.testing.assert_allclose(q.T @ q, np.eye(k), atol=1e-13)
    assert np.all(np.diag(r) > 0) and np.all(np.tril(r, -1) == 0)
    qn, rn = np.linalg.qr(a)
    np.testing.assert_allclose(np.diag(r), np.abs(np.diag(rn)), rtol=1e-10)


def _start_directions(seed, stream, d, k):
    """The engine's start vectors, drawn here from its Philox stream (rng.hpp): entry i of the
    column-major d × k block is Box–Muller normal (i mod 2) of counter 2^62 + i // 2."""
    def uniform(x):
        return ((x & (2**53 - 1)) + 0.5) * 2.0**-53
    z = np.empty(d * k + 1)
    for c in range((d * k + 1) // 2):
        v = [int(w) for w in _testing.philox4x32(seed, stream, 2**62 + c)]
        u0, u1 = uniform((v[0] << 21) ^ v[1]), uniform((v[2] << 21) ^ v[3])
        rho = np.sqrt(-2.0 * np.log(u0))
        z[2 * c], z[2 * c + 1] = rho * np.cos(2 * np.pi * u1), rho * np.sin(2 * np.pi * u1)
    return z[:d * k].reshape(k, d).T


def test_scipy_lapack_backend_is_used():
    """scipy is a dependency, so its BLAS/LAPACK must be found: the tests below then cover both
    the Eigen and the scipy kernels, not the Eigen ones twice."""
    assert _testing.dense_backend(20, 10) == ("portable", "portable")
    assert _testing.dense_backend(120, 10) == ("scipy", "scipy")
    assert _testing.dense_backend(120, 120) == ("eigen", "eigen")
    # Wide QRs stay on the blocked kernel, which polls for Ctrl-C between panels.
    assert _testing.dense_backend(1000, 1000) == ("scipy", "eigen")


@pytest.mark.parametrize("d, k, m", [(120, 120, 1), (120, 10, 1), (110, 110, 3), (1000, 14, 2),
                                     (1000, 12, 1)])
def test_large_d_matches_numpy_qr_accumulation(d, k, m):
    """Independent reference: the same draws (matrix choices and start vectors, from the
    engine's counter-based stream) multiplied and re-orthonormalised by numpy. Same product
    sequence, so the exponents agree to rounding, not only within standard errors."""
    rng = np.random.default_rng(d + k)
    mats = rng.standard_normal((3, d, d)) / np.sqrt(d)
    probs = np.array([0.5, 0.3, 0.2])
    steps, transient, seed = 24, 16, 5
    res = iid_product(mats, probs, steps=steps, n_exponents=k, seed=seed, transient=transient,
                      renorm_interval=m)
    u = _testing.philox_uniforms(seed, 0, transient + steps)[0::2]  # step n: uniform 2n
    choice = np.minimum(np.searchsorted(np.cumsum(probs), u, side="right"), 2)
    q, _ = np.linalg.qr(_start_directions(seed, 0, d, k))
    logs, since = np.zeros(k), 0
    for n in range(transient + steps):
        q = mats[choice[n]] @ q
        since += 1
        if since == m or n + 1 in (transient, transient + steps):  # the engine's QR schedule
            q, r = np.linalg.qr(q)
            if n + 1 > transient:
                logs += np.log(np.abs(np.diag(r)))
            since = 0
    np.testing.assert_allclose(res.exponents, logs / steps, rtol=1e-9, atol=1e-11)
    # The directions too (up to the sign convention of numpy's QR).
    np.testing.assert_allclose(np.abs(res.vectors), np.abs(q), atol=1e-9)


def test_singular_products_give_minus_infinity_for_the_annihilated_direction():
    # A_j = diag(a_j, 0): the second direction is mapped to 0 at the first step, so its exponent
    # is exactly −∞ (a value, not a failure: status 0); the first is E log a = ½ log 2.
    A = np.array([[[1.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]])
    r = iid_product(A, steps=20_000, seed=0)
    assert r.success and r.exponents[1] == -np.inf
    assert abs(r.exponents[0] - 0.5 * np.log(2.0)) < 4 * r.stderr[0]
