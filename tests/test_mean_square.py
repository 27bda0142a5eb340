"""Mean-square exponent ½ log ρ(E[A ⊗ A]) of linearised SGD, A = I − (η/B) K P_ξ: a certified
bracket, checked against the closed form at B = N and an explicit N²×N² matrix at B < N."""
import itertools
import warnings

import numpy as np
import pytest

import delyap as dl
from delyap import sgd


def gram(n_rows, dim, seed):
    J = np.random.default_rng(seed).standard_normal((n_rows, dim)) / np.sqrt(dim)
    return J @ J.T


def dense_rho(K, eta, B, sampling, outputs=1):
    """ρ(E[A ⊗ A]) from the explicit (N·c)² × (N·c)² matrix, every batch equally likely:
    'without' = the C(N, B) subsets of B distinct samples, 'iid' = the N^B index tuples.
    K must be full rank (on null(K) the full-space map has eigenvalue 1)."""
    n = K.shape[0]
    N = n // outputs
    batches = (list(itertools.combinations(range(N), B)) if sampling == "without"
               else list(itertools.product(range(N), repeat=B)))
    E = np.zeros((n * n, n * n))
    for xi in batches:
        P = np.zeros((n, n))
        for i in xi:
            P[i * outputs:(i + 1) * outputs, i * outputs:(i + 1) * outputs] += np.eye(outputs)
        A = np.eye(n) - eta / B * K @ P
        E += np.kron(A, A)
    return np.max(np.abs(np.linalg.eigvals(E / len(batches))))


def assert_certified(res, exact, tol=1e-7):
    lo, hi = res.bracket
    assert res.certified and hi - lo <= tol
    slack = 1e-12 * max(1.0, abs(exact))  # rounding
    assert lo - slack <= exact <= hi + slack, (res, exact)
    assert res.value == pytest.approx(0.5 * (lo + hi), abs=1e-15)
    assert abs(res.value - exact) <= 0.5 * (hi - lo) + slack


@pytest.mark.parametrize("eta", [1e-3, 0.1, 1.0, 5.0, 15.0, 30.0])
def test_full_batch_matches_gd_closed_form(eta):
    """B = N (uniform B-subsets): A = I − (η/N) K is deterministic, so ρ = max_i (1 − η κ_i/N)²
    and the exponent is log max_i |1 − η κ_i / N|. η = 0.1 is the case where the old power
    iteration stopped early (−0.001471 against −0.001452: more stable than true)."""
    K = gram(16, 40, 9)
    spec = sgd.gram_spectrum(K)
    exact = float(np.log(np.max(np.abs(1 - eta * np.linalg.eigvalsh(K) / 16))))
    res = sgd.mean_square_exponent(spec, eta, 16)
    assert_certified(res, exact)
    value, matrix = res  # the (value, eigen-matrix) API still unpacks
    assert value == res.value and matrix.shape == (16, 16)
    if eta == 0.1:
        assert exact == pytest.approx(-0.001452, abs=5e-7)


@pytest.mark.parametrize("sampling", ["without", "iid"])
@pytest.mark.parametrize("eta, B", [(0.05, 2), (0.4, 1), (1.5, 3), (4.0, 5), (9.0, 4)])
def test_minibatch_matches_dense_kronecker_matrix(sampling, eta, B):
    K = gram(6, 10, 3)
    exact = 0.5 * np.log(dense_rho(K, eta, B, sampling))
    res = sgd.mean_square_exponent(sgd.gram_spectrum(K), eta, B, sampling=sampling)
    assert_certified(res, exact)


def test_several_outputs_per_sample_match_dense_matrix():
    """c = 2 outputs per sample: the batch selects 2 × 2 blocks."""
    K = gram(8, 14, 4)
    exact = 0.5 * np.log(dense_rho(K, 0.7, 2, "without", outputs=2))
    res = sgd.mean_square_exponent(sgd.gram_spectrum(K, outputs=2), 0.7, 2)
    assert_certified(res, exact)


def test_rank_deficient_K_uses_its_range():
    """A duplicated sample makes K singular; on range(K) the map is the one of the reduced
    problem. Reference: the dense matrix restricted to range(K) ⊗ range(K)."""
    J = np.random.default_rng(6).standard_normal((5, 8)) / np.sqrt(8)
    J = np.vstack([J, J[2]])  # N = 6, rank 5
    K = J @ J.T
    spec = sgd.gram_spectrum(K)
    assert spec.rank == 5
    eta, B, N = 1.2, 2, 6
    U = spec.basis
    E = np.zeros((25, 25))
    batches = list(itertools.combinations(range(N), B))
    for xi in batches:
        P = np.diag(np.isin(np.arange(N), xi).astype(float))
        A = U.T @ (np.eye(N) - eta / B * K @ P) @ U  # range(K) is invariant under A
        E += np.kron(A, A) / len(batches)
    exact = 0.5 * np.log(np.max(np.abs(np.linalg.eigvals(E))))
    assert_certified(sgd.mean_square_exponent(spec, eta, B), exact)


def test_warm_starts_along_lr_agree_with_cold_starts():
    K = gram(16, 40, 9)
    spec = sgd.gram_spectrum(K)
    warm = None
    for eta in np.geomspace(0.05, 20, 8):
        hot = sgd.mean_square_exponent(spec, eta, 4, start=warm)
        cold = sgd.mean_square_exponent(spec, eta, 4)
        warm = hot.matrix
        # Both certified, so their brackets overlap and the values agree within the tolerance.
        assert hot.certified and cold.certified
        assert hot.bracket[0] <= cold.bracket[1] + 1e-12
        assert cold.bracket[0] <= hot.bracket[1] + 1e-12
        assert hot.value == pytest.approx(cold.value, abs=1e-7)
    # The returned eigen-matrix is the PSD dominant eigen-matrix of M ↦ E[A M Aᵀ].
    assert np.linalg.eigvalsh(warm).min() > -1e-8


def test_max_iter_too_small_warns_with_the_bracket():
    K = gram(16, 40, 9)
    exact = float(np.log(np.max(np.abs(1 - 0.1 * np.linalg.eigvalsh(K) / 16))))
    with pytest.warns(dl.ConvergenceWarning, match="not certified"):
        res = sgd.mean_square_exponent(sgd.gram_spectrum(K), 0.1, 16, max_iter=5)
    lo, hi = res.bracket
    assert not res.certified and res.iterations <= 5
    assert lo - 1e-12 <= exact <= hi + 1e-12 and hi - lo > 1e-7
    assert res.value == pytest.approx(0.5 * (lo + hi))


def test_certified_runs_do_not_warn():
    K = gram(6, 10, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", dl.ConvergenceWarning)
        sgd.mean_square_exponent(sgd.gram_spectrum(K), 0.3, 2)


def test_gram_lyapunov_reports_the_bracket():
    K = gram(6, 10, 3)
    exact = 0.5 * np.log(dense_rho(K, 0.4, 2, "without"))
    res = sgd.gram_lyapunov(K, 0.4, 2, steps=2000, mean_square=True, seed=1)
    lo, hi = res.info["mean_square_bracket"]
    assert lo <= exact + 1e-12 and exact <= hi + 1e-12
    assert res.mean_square_exponent == pytest.approx(exact, abs=1e-7)
    many = sgd.gram_lyapunov(K, [0.4, 2.0], [2, 6], steps=2000, mean_square=True, seed=1)
    assert many.info["mean_square_bracket"].shape == (2, 2)


def test_epochs_is_nan_and_bad_input_is_named():
    spec = sgd.gram_spectrum(gram(6, 10, 3))
    assert np.isnan(sgd.mean_square_exponent(spec, 0.3, 2, sampling="epochs").value)
    for kwargs, match in [(dict(lr=0.0), "lr"), (dict(batch_size=7), "batch_size"),
                          (dict(tol=-1.0), "tol"), (dict(max_iter=0), "max_iter"),
                          (dict(start=np.eye(3)), "start")]:
        args = dict(lr=0.3, batch_size=2)
        args.update(kwargs)
        with pytest.raises(ValueError, match=match):
            sgd.mean_square_exponent(spec, args.pop("lr"), args.pop("batch_size"), **args)
    # The warm start is not modified.
    start = np.eye(6)
    sgd.mean_square_exponent(spec, 0.3, 2, start=start)
    np.testing.assert_array_equal(start, np.eye(6))
