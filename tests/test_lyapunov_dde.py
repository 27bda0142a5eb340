"""DDE Lyapunov spectra: REFERENCES.md cases 6 and 7, linear DDEs, invariances."""
import numpy as np
import pytest
from scipy.special import lambertw

import delyap as dl
from delyap.lyapunov import lyapunov_spectrum

Z = 4.0


def characteristic_real_parts(a, b, tau, n):
    """Real parts, paired, of the roots of λ = a + b e^{−λτ}: (W_k(bτ e^{−aτ}) / τ + a)."""
    vals, branch = [], 0
    while len(vals) < n + 2:
        for k in {branch, -branch - 1} if branch else {0, -1}:
            lam = lambertw(b * tau * np.exp(-a * tau), k) / tau + a
            vals.append(lam.real)  # branches k and −k−1 give the conjugate pair
        branch += 1
    return np.sort(vals)[::-1][:n]


def within(res, expected, z=Z, floor=0.0):
    err = np.abs(res.exponents - expected)
    assert np.all(err <= z * res.stderr + floor), (res.exponents, expected, res.stderr)


def test_linear_scalar_dde_matches_characteristic_roots():
    lin = dl.rhs.linear([[0.0]], [[-1.0]], 1.0)
    res = lyapunov_spectrum(lin, 1.0, 4, 300.0, t_transient=10.0, rtol=1e-8, atol=1e-10)
    expected = characteristic_real_parts(0.0, -1.0, 1.0, 4)
    np.testing.assert_allclose(expected[:2], -0.3181315052, atol=1e-9)
    within(res, expected, floor=2e-3)


def test_mackey_glass_equilibrium_case6():
    """History 1 is the equilibrium; the spectrum is Re W_k(−0.4 τ e^{0.1τ})/τ − 0.1, paired."""
    tau = 17.0
    mg = dl.rhs.mackey_glass(beta=0.2, gamma=0.1, n=10, tau=tau)
    expected = characteristic_real_parts(-0.1, -0.4, tau, 6)
    np.testing.assert_allclose(expected, [0.04129, 0.04129, -0.01088, -0.01088, -0.04347, -0.04347],
                               atol=1e-5)
    res = lyapunov_spectrum(mg, 1.0, 6, 4000.0, rtol=1e-8, atol=1e-10)
    within(res, expected)
    # Each complex pair's sum is much better determined than its members.
    pair_sums = res.exponents.reshape(3, 2).sum(axis=1)
    np.testing.assert_allclose(pair_sums, 2 * expected[::2], atol=2e-3)


def test_mackey_glass_chaos_case7():
    mg = dl.rhs.mackey_glass(beta=0.2, gamma=0.1, n=10, tau=17.0)
    res = lyapunov_spectrum(mg, 0.5, 4, 40_000.0, t_transient=2000.0)
    lam, se = res.exponents, res.stderr
    assert abs(lam[0] - 0.0052) < Z * se[0] + 5e-4
    assert abs(lam[1]) < Z * se[1] + 2e-4  # the flow direction: exactly zero in the limit
    assert abs(lam[2] - (-0.039)) < Z * se[2] + 1e-3
    assert 2.0 < res.kaplan_yorke_dimension() < 2.25
    assert res.running.shape == (200, 4) and np.all(np.isfinite(res.running))


def test_two_dimensional_linear_system_sum_rule():
    """For x' = A x + B x(t−τ) with B = 0 the spectrum is the real parts of eig(A)."""
    A = np.array([[-0.2, 1.0], [-1.0, -0.2]])
    lin = dl.rhs.linear(A, np.zeros((2, 2)), 1.0)
    res = lyapunov_spectrum(lin, [1.0, 0.0], 2, 200.0, t_transient=5.0, rtol=1e-9, atol=1e-12)
    # A rotating pair: the members wander, their sum is the trace −0.4 (volume contraction).
    assert res.exponents.sum() == pytest.approx(-0.4, abs=2e-3)
    within(res, [-0.2, -0.2], floor=2e-3)


@pytest.mark.parametrize("kwargs", [dict(renorm_interval=2.0), dict(renorm_interval=0.1),
                                    dict(rtol=1e-8, atol=1e-11),
                                    dict(method="BS3", rtol=1e-7)])
def test_invariance_to_renormalisation_and_tolerance(kwargs):
    mg = dl.rhs.mackey_glass(tau=17.0)
    base = lyapunov_spectrum(mg, 0.5, 3, 20_000.0, t_transient=2000.0)
    other = lyapunov_spectrum(mg, 0.5, 3, 20_000.0, t_transient=2000.0, **kwargs)
    se = np.sqrt(base.stderr**2 + other.stderr**2)
    assert np.all(np.abs(base.exponents - other.exponents) < Z * se + 3e-4)


def test_tau_sweep_batch_matches_single_runs():
    taus = np.array([6.0, 12.0, 17.0])
    mg = dl.rhs.mackey_glass(tau=taus)
    batch = lyapunov_spectrum(mg, 0.5, 2, 3000.0, t_transient=500.0, threads=2)
    assert batch.exponents.shape == (3, 2)
    for i, tau in enumerate(taus):
        # A single run samples its random start functions on its own window, so the agreement
        # is statistical, not bitwise.
        one = lyapunov_spectrum(dl.rhs.mackey_glass(tau=tau), 0.5, 2, 3000.0, t_transient=500.0)
        se = np.sqrt(batch.stderr[i] ** 2 + one.stderr**2)
        assert np.all(np.abs(batch.exponents[i] - one.exponents) < Z * se + 1e-3)
    again = lyapunov_spectrum(mg, 0.5, 2, 3000.0, t_transient=500.0, threads=1)
    np.testing.assert_array_equal(again.exponents, batch.exponents)
    # τ = 6: a stable limit cycle, top exponent 0 (the flow direction), the next negative.
    assert abs(batch.exponents[0, 0]) < 3e-3 and batch.exponents[0, 1] < -0.01


def test_many_exponents():
    mg = dl.rhs.mackey_glass(tau=17.0)
    res = lyapunov_spectrum(mg, 0.5, 12, 3000.0, t_transient=1000.0)
    assert np.all(np.isfinite(res.exponents))
    assert np.all(np.diff(res.exponents) < 0.01)  # decreasing, up to estimation noise


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(n_exponents=0), ValueError, "n_exponents"),
    (dict(t_total=-1.0), ValueError, "t_total"),
    (dict(renorm_interval=0.0), ValueError, "renorm_interval"),
    (dict(method="RK4"), ValueError, "method"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(system=dl.rhs.mackey_glass(), history=0.5, n_exponents=2, t_total=100.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        lyapunov_spectrum(**args)


def test_python_system_without_jacobian_is_refused_with_a_reason():
    py = dl.rhs.python(lambda t, x, xd: -xd[:, 0], 1, 1.0)
    with pytest.raises(TypeError, match="jac"):
        lyapunov_spectrum(py, 1.0, 1, 10.0)


def test_python_system_with_user_jacobian_matches_compiled():
    """Mackey–Glass written in Python with its Jacobian: same spectrum as the compiled one.
    z¹⁰ is formed by squaring as the compiled system does (z**10 is pow, a few ulps apart, and
    3000 time units of chaos amplify that to ~4e-6 in the finite-time exponents)."""
    b, g, n = 0.2, 0.1, 10.0

    def p10(z):
        z2 = z * z
        z4 = z2 * z2
        return z2 * (z4 * z4)

    def f(t, x, xd):
        z = xd[:, 0]
        return b * z / (1 + p10(z)) - g * x

    def jac(t, x, xd):
        z = xd[0, 0, 0]
        return np.array([[-g]]), np.array([[[b * (1 + (1 - n) * p10(z)) / (1 + p10(z)) ** 2]]])

    py = dl.rhs.python(f, 1, 17.0, jac=jac)
    a = lyapunov_spectrum(py, 0.5, 2, 3000.0, t_transient=500.0)
    c = lyapunov_spectrum(dl.rhs.mackey_glass(tau=17.0), 0.5, 2, 3000.0, t_transient=500.0)
    np.testing.assert_allclose(a.exponents, c.exponents, atol=1e-6)
