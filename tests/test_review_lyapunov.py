"""Lyapunov spectra: problems a review found (each failed on the code before its fix).

Short runs reported a NaN standard error or skipped the settle check with settled=True; tangent
directions that collapsed (a vanishing delayed coupling) came back as finite noise with status
success; a sweep with a delay-free member and more exponents than its dimension failed as
non_finite; history_points and seed were not validated."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import delyap as dl
from delyap.lyapunov import _half_disagreement


def _quiet(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = fn()
    return r, [x for x in w if issubclass(x.category, dl.ConvergenceWarning)]


@pytest.mark.parametrize("case", ["ode", "dde", "products"])
def test_a_window_of_one_renormalisation_warns_and_is_not_settled(case):
    A = np.array([[0.5, 2.0], [0.0, -1.0]])
    run = {"ode": lambda: dl.lyapunov_spectrum(dl.rhs.linear(A), [1.0, 1.0], 2, 1.0),
           "dde": lambda: dl.lyapunov_spectrum(dl.rhs.linear([[0.0]], [[-1.0]], 1.0), 1.0, 2,
                                               10.0, renorm_interval=10.0),
           "products": lambda: dl.iid_product(np.array([[[0.9]], [[0.5]]]), steps=100,
                                              renorm_interval=100)}[case]
    r, w = _quiet(run)
    assert np.all(np.isnan(r.stderr))          # one sample: no error estimate …
    assert not r.info["settled"] and w          # … and said so (was settled=True, silent)
    assert "too few for a standard error" in str(w[0].message)
    if case == "ode":  # the value itself is still the exact one-interval estimate's
        assert r.exponents[0] > r.exponents[1]


def test_the_settle_check_sees_a_drift_with_fewer_renormalisations_than_blocks():
    """x' = (t/10)·x: the rate grows along the run. 31 renormalisations in 32 blocks left one
    empty, every half's spread NaN and the check silently skipped (settled=True)."""
    sysm = dl.rhs.python(lambda t, x: (t / 10.0) * x, 1, tau=(),
                         jac=lambda t, x: np.array([[t / 10.0]]))
    for nb in (32, 8):
        r, w = _quiet(lambda nb=nb: dl.lyapunov_spectrum(sysm, 1.0, 1, 31.0, t_transient=1.0,
                                                         n_blocks=nb))
        assert not r.info["settled"] and w and np.isfinite(r.info["settle_z"]).all()
        assert r.info["settle_z"][0] > 3


def test_half_disagreement_ignores_empty_blocks():
    """An independent check of the halves over filled blocks: the same blocks with empty ones
    interleaved give the same z."""
    rng = np.random.default_rng(0)
    s = rng.normal(1.0, 0.1, (1, 8, 2))
    t = np.ones((1, 8))
    z = _half_disagreement(s, t)
    s2, t2 = np.zeros((1, 16, 2)), np.zeros((1, 16))
    s2[:, ::2], t2[:, ::2] = s, t
    np.testing.assert_allclose(_half_disagreement(s2, t2), z, rtol=1e-12)
    assert np.isnan(_half_disagreement(s[:, :3], t[:, :3])).all()  # < 4 filled blocks


@pytest.mark.parametrize("kw", [{}, {"renorm_interval": 0.1}])
def test_collapsed_tangent_directions_are_lost_direction_not_noise(kw):
    """x' = −0.5x + 0·x(t − 1): after one delay every tangent function is a multiple of
    e^{−0.5 s}, so λ₂ = −∞. It came back as −26 or −37 (depending on renorm_interval) with
    success, and a = 0 failed as non_finite with nothing non-finite."""
    for a in (-0.5, 0.0):
        lin = dl.rhs.linear([[a]], [[0.0]], 1.0)
        r = dl.lyapunov_spectrum(lin, 1.0, 2, 50.0, t_transient=5.0, throw=False, **kw)
        assert r.status_names == "lost_direction" and not r.success
        with pytest.raises(dl.IntegrationError, match="lost_direction"):
            dl.lyapunov_spectrum(lin, 1.0, 2, 50.0, t_transient=5.0, **kw)
        # One exponent is fine: a, up to the window norm's start-up bias O(1/t_total).
        one = dl.lyapunov_spectrum(lin, 1.0, 1, 50.0, t_transient=5.0, **kw)
        assert one.exponents[0] == pytest.approx(a, abs=0.01)


def test_an_uncoupled_network_member_loses_its_extra_direction_alone():
    """Delayed Kuramoto, 3 nodes, 4 exponents: at K = 0 the 4th direction does not exist (λ₄ =
    −70 with success before); the coupled members still finish."""
    A = sp.csr_matrix(np.ones((3, 3)) - np.eye(3))
    net = dl.rhs.kuramoto([0.3, 0.5, 0.7], A, np.array([0.0, 0.5]), tau=1.0)
    r = dl.lyapunov_spectrum(net, [0.0, 1.0, 2.0], 4, 60.0, t_transient=10.0, throw=False)
    assert r.status_names == ["lost_direction", "success"]
    assert np.all(np.isfinite(r.exponents[1]))


def test_a_sweep_with_a_delay_free_member_and_too_many_exponents_is_refused():
    with pytest.raises(ValueError, match="n_exponents: member 0 .* no delay"):
        dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=np.array([0.0, 2.0, 17.0])), 0.5, 2, 200.0)
    # k ≤ dim: the delay-free member is an ODE like any other (its exponent: −γ·… < 0).
    r = dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=np.array([0.0, 2.0])), 0.5, 1, 200.0)
    assert r.success.all() if hasattr(r.success, "all") else r.success


def test_history_points_and_seed_are_checked():
    lin = dl.rhs.linear([[0.0]], [[-1.0]], 1.0)
    for hp in (0, 2, 10):   # 6 functions of a scalar DDE need 2·5 + 1 = 11 points
        with pytest.raises(ValueError, match="history_points"):
            dl.lyapunov_spectrum(lin, 1.0, 6, 20.0, history_points=hp)
    with pytest.raises(TypeError, match="history_points"):
        dl.lyapunov_spectrum(lin, 1.0, 6, 20.0, history_points=20.5)
    r = dl.lyapunov_spectrum(lin, 1.0, 6, 50.0, t_transient=10.0, history_points=11)
    assert r.success
    for seed, err in ((-1, ValueError), (1.5, TypeError), ("a", TypeError)):
        with pytest.raises(err, match="seed"):
            dl.lyapunov_spectrum(lin, 1.0, 1, 10.0, seed=seed)
    with pytest.raises(ValueError, match="n_blocks"):
        dl.lyapunov_spectrum(lin, 1.0, 1, 10.0, n_blocks=10**9)
    with pytest.raises(ValueError, match="n_blocks"):
        dl.iid_product(np.array([[[0.5]]]), steps=10, n_blocks=10**9)


def test_kaplan_yorke_of_a_failed_run_is_nan():
    assert np.isnan(dl.kaplan_yorke_dimension([0.1, np.nan, -1.0]))
    assert dl.kaplan_yorke_dimension([0.1, -0.05, -1.0]) == pytest.approx(2.05)
    with pytest.raises(ValueError, match="exponents"):
        dl.kaplan_yorke_dimension([])


def test_meanfield_arguments_are_named():
    from delyap import meanfield
    with pytest.raises(ValueError, match="psi0"):
        meanfield.ott_antonsen(0.0, 0.5, 2.0, t_span=(0, 10), psi0=np.nan)
    with pytest.raises(TypeError, match="psi0"):
        meanfield.ott_antonsen(0.0, 0.5, 2.0, t_span=(0, 10), psi0="a")
    for bad in ([20.7], ["30"]):
        with pytest.raises(TypeError, match="n_values"):
            meanfield.convergence(bad, 2.0, t_final=5.0, t_average=2.0)


def test_a_spread_beyond_what_the_window_resolves_is_lost_direction():
    """Two uncoupled delayed Stuart–Landau oscillators, exponents 0, 0, −2λ: at λ = 20, τ = 1
    the third came back as −28.04 (for −40) with success, the window function of that direction
    spanning e^40 in size. At λ = 5 the spread is 10 and the value right."""
    A = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    hist = [1.0, 0.0, 0.5, 0.5]
    ok = dl.lyapunov_spectrum(dl.rhs.stuart_landau([1.0, 1.2], A, 0.0, tau=1.0, lam=5.0), hist,
                              3, 50.0)
    assert ok.exponents[2] == pytest.approx(-10.0, rel=2e-3)
    bad = dl.lyapunov_spectrum(dl.rhs.stuart_landau([1.0, 1.2], A, 0.0, tau=1.0, lam=20.0),
                               hist, 3, 50.0, throw=False)
    assert bad.status_names == "lost_direction" and "spread" in bad.info["lost_direction"]
    with pytest.raises(dl.IntegrationError, match="spread"):
        dl.lyapunov_spectrum(dl.rhs.stuart_landau([1.0, 1.2], A, 0.0, tau=1.0, lam=20.0), hist,
                             3, 50.0)


def test_a_direction_decaying_below_atol_within_an_interval_is_lost_direction():
    """x' = diag(0, −30) x: over the default interval (1) the second tangent component decays
    by e^-30, far below atol, and its exponent saturated at −21.99 with success. A shorter
    interval resolves it."""
    ode = dl.rhs.linear(np.diag([0.0, -30.0]))
    r = dl.lyapunov_spectrum(ode, [1.0, 1.0], 2, 20.0, throw=False)
    assert r.status_names == "lost_direction" and "atol" in r.info["lost_direction"]
    good = dl.lyapunov_spectrum(ode, [1.0, 1.0], 2, 20.0, renorm_interval=0.2)
    np.testing.assert_allclose(good.exponents, [0.0, -30.0], atol=1e-3)


def test_a_sweep_whose_small_delays_leave_few_grid_points_still_starts():
    """Mackey–Glass τ ∈ {0.5, 30}, 4 exponents: the default history grid spans the largest
    window, so τ = 0.5 holds few of its points and its random start functions are rank
    deficient; the first re-orthonormalisation only sets up the frame (was lost_direction)."""
    sweep = dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=np.array([0.5, 30.0])), 0.5, 4, 300.0,
                                 throw=False)
    assert list(sweep.status_names) == ["success", "success"]
    solo = dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=0.5), 0.5, 4, 300.0)
    np.testing.assert_allclose(sweep.exponents[0], solo.exponents, rtol=0.05, atol=0.02)
