"""Statistical honesty (issue 12): default transients from the product's time scale, a
ConvergenceWarning when an estimate has not settled, throw= on failed products, and the batch
law of Chemnitz & Engel (uniform B-subsets, so B = N is gradient descent)."""
import contextlib
import math
import warnings

import numpy as np
import pytest

import delyap as dl
from delyap import sgd
from delyap.lyapunov import ALIGN_FACTOR, iid_product, lyapunov_spectrum

Z = 4.0


def small_gram():
    """N = 4 samples, D = 10 parameters: κ/N ≈ (0.365, 0.140, 0.092, 0.026)."""
    J = np.random.default_rng(0).standard_normal((4, 10)) / np.sqrt(10)
    return J @ J.T


@contextlib.contextmanager
def no_convergence_warning():
    """A block in which a ConvergenceWarning fails the test (other warnings pass)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", dl.ConvergenceWarning)
        yield


# ----------------------------------------------------------------------------- SGD, small η
def test_issue_case_small_lr_is_no_longer_biased_silently():
    """η = 1e-3, B = 1, 10⁴ steps: the GD time scale 1/|μ| ≈ 3.9·10⁴ steps is longer than the
    run. From random directions (transient=0) the estimate is ≈ 2.5 μ (150 % off, 5 s.e. on
    the batch-means error); it must warn. The default transient cuts the bias to a few % and
    still warns (the window is shorter than the time scale)."""
    K = small_gram()
    eta = 1e-3
    mu = float(sgd.gd_exponent(sgd.gram_spectrum(K), eta))
    assert mu == pytest.approx(-2.587e-5, rel=1e-3)
    with pytest.warns(dl.ConvergenceWarning, match="not settled"):
        cold = sgd.gram_lyapunov(K, eta, 1, steps=10_000, transient=0, seed=1)
    assert abs(cold.top - mu) > 4 * cold.stderr[0]  # the bias the error bar does not show
    assert cold.info["settled"] is False
    with pytest.warns(dl.ConvergenceWarning, match="time scale"):
        res = sgd.gram_lyapunov(K, eta, 1, steps=10_000, seed=1)
    assert res.info["transient"] == 10_000  # capped at the averaging window
    assert res.info["time_scale"] == pytest.approx(1 / abs(mu))
    assert abs(res.top - mu) < 0.05 * abs(mu)


def test_small_lr_long_enough_run_is_settled_and_matches_gd():
    """Enough steps: the automatic transient is 5/|μ|, nothing warns, and the estimate agrees
    with the GD limit within its standard error (SGD's correction is O(η²) ≪ the error)."""
    K = small_gram()
    eta = 1e-3
    mu = float(sgd.gd_exponent(sgd.gram_spectrum(K), eta))
    with no_convergence_warning():
        res = sgd.gram_lyapunov(K, eta, 1, steps=200_000, seed=1)
    assert res.info["transient"] == math.ceil(ALIGN_FACTOR / abs(mu))
    assert res.info["settled"] is True
    assert abs(res.top - mu) < Z * res.stderr[0]


def test_settle_check_fires_on_a_drifting_run_and_not_on_a_settled_one():
    """The half-split test alone (the time scale is short here): scalar products of case 8
    converge at once; a product whose directions start far from aligned does not."""
    h = np.array([1.0, 3.0])
    with no_convergence_warning():
        ok = iid_product((1 - 0.9 * h).reshape(2, 1, 1), steps=50_000, seed=7)
    assert ok.info["settled"] and np.all(np.abs(ok.info["settle_z"]) < 3)
    # ±B, B = Q diag(1, 0.999, 0.998) Qᵀ: the mean matrix is 0, so it gives no time scale and
    # only the half-split test can see that the directions align over ~10³ steps.
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    B = Q @ np.diag([1.0, 0.999, 0.998]) @ Q.T
    mats = np.stack([B, -B])
    with pytest.warns(dl.ConvergenceWarning, match="disagree"):
        bad = iid_product(mats, steps=2000, transient=0, n_exponents=1, seed=1)
    assert not bad.info["settled"] and bad.info["time_scale"] == 0.0
    # Long enough: the automatic transient (10 % of the window) aligns them; λ1 = log 1 = 0.
    with no_convergence_warning():
        good = iid_product(mats, steps=60_000, n_exponents=1, seed=1)
    assert good.info["transient"] == 6000 and good.info["settled"]
    assert abs(good.exponents[0]) < Z * good.stderr[0] + 1e-12


def test_stability_map_reports_its_transient_and_flags_cells():
    K = small_gram()
    lrs = np.array([1e-3, 1.0])
    with pytest.warns(dl.ConvergenceWarning, match="1 of 2 runs"):
        m = sgd.stability_map(K, lr=lrs, batch_size=[2], steps=5000, mean_square=False,
                              progress=False)
    assert m.info["transient"] == 5000  # the slow η = 1e-3 cell caps it
    assert m.info["settle_z"].shape == (1, 2, 1) and m.success


# ----------------------------------------------------------------------------- B = N is GD
def test_default_batch_law_makes_full_batch_exactly_gd():
    """Uniform B-subsets (Chemnitz & Engel): B = N draws every sample once, the product is
    deterministic, and its exponents are log|1 − η κ_j / N| to rounding."""
    K = small_gram()
    spec = sgd.gram_spectrum(K)
    for eta in (0.5, 3.0, 7.0):
        res = sgd.gram_lyapunov(K, eta, 4, steps=4000, n_exponents=4, renorm_interval=1)
        assert res.sampling == "without"
        exact = np.sort(np.log(np.abs(1 - eta * spec.eigenvalues / 4)))[::-1]
        np.testing.assert_allclose(res.exponents, exact, rtol=1e-9, atol=1e-12)
        assert res.top == pytest.approx(res.gd_exponent, rel=1e-9)
        assert np.all(res.stderr < 1e-9)
    # Drawing with replacement, B = N is not GD: the noise moves λ1 by many errors.
    iid = sgd.gram_lyapunov(K, 5.0, 4, steps=20_000, sampling="iid", seed=2)
    assert abs(iid.top - iid.gd_exponent) > 10 * iid.stderr[0]


def test_default_mean_square_matches_gd_at_full_batch_on_a_warm_started_map():
    """B = N: E[A⊗A] = A⊗A, so ½ log ρ is GD's exponent. The map warm-starts its power
    iterations along η; a warm start that is an exact non-dominant eigenvector used to stall."""
    rng = np.random.default_rng(9)
    J = rng.standard_normal((16, 40)) / np.sqrt(40)
    lrs = np.geomspace(0.1, 20, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        m = sgd.stability_map(J @ J.T, lr=lrs, batch_size=[16], steps=500, progress=False)
    # Large η, where the warm start from the previous η is an exact eigenvector of the wrong
    # sign (the old iteration returned −0.34 at η = 20, where GD and mean square are +0.68).
    np.testing.assert_allclose(m.mean_square[0, -3:], m.gd_exponent[-3:], rtol=1e-5)
    assert np.all(np.sign(m.mean_square[0]) == np.sign(m.gd_exponent))


# ----------------------------------------------------------------------------- throw=
@pytest.mark.parametrize("sampler", [False, True])
def test_iid_product_overflow_follows_throw(sampler):
    mats = np.array([[[1e200]], [[1e250]]])
    matrices = (lambda rng: mats[rng.integers(2)]) if sampler else mats
    kw = dict(steps=100, renorm_interval=5, transient=0)
    with pytest.raises(dl.IntegrationError, match="non_finite") as err:
        iid_product(matrices, **kw)
    assert err.value.solution.status != 0 and list(err.value.failed) == [0]
    res = iid_product(matrices, throw=False, **kw)
    assert not res.success and dl.STATUS_NAMES[int(res.status)] == "non_finite"


def test_gram_lyapunov_and_map_overflow_follow_throw():
    K = small_gram()
    with pytest.raises(dl.IntegrationError, match="gram_lyapunov"):
        sgd.gram_lyapunov(K, [0.5, 1e80], [1, 1], steps=100, transient=0)
    res = sgd.gram_lyapunov(K, [0.5, 1e80], [1, 1], steps=100, transient=0, throw=False)
    assert list(np.asarray(res.status) != 0) == [False, True] and not res.success
    with pytest.raises(dl.IntegrationError, match="stability_map"):
        sgd.stability_map(K, lr=[0.5, 1e80], batch_size=[1], steps=100, transient=0,
                          mean_square=False, progress=False)


# ----------------------------------------------------------------------------- DDE spectra
def test_dde_default_transient_and_settle_warning():
    lin = dl.rhs.linear([[0.0]], [[-1.0]], 1.0)  # λ1 = −0.318…, τmax = 1
    with no_convergence_warning():
        res = lyapunov_spectrum(lin, 1.0, 2, 300.0, rtol=1e-8, atol=1e-10)
    assert res.info["t_transient"] == pytest.approx(30.0)  # 10 % of t_total > 5 τmax
    assert abs(res.exponents[0] + 0.3181315052) < Z * res.stderr[0] + 2e-3
    # No transient and a record shorter than the delay window: the random initial functions
    # have not been forgotten.
    with pytest.warns(dl.ConvergenceWarning, match="delay window"):
        short = lyapunov_spectrum(lin, 1.0, 2, 0.8, t_transient=0.0)
    assert short.info["settled"] is False
