"""Mean-field references: the Ott–Antonsen equation, K_c, and a finite-N Kuramoto network
against r∞ = √(1 − 2γ/K)."""
import math

import numpy as np
import pytest
from scipy.optimize import fsolve

from delyap import meanfield


def test_stationary_r_and_below_threshold():
    gamma, K = 0.5, np.array([0.5, 2.0, 3.0, 5.0])
    res = meanfield.ott_antonsen(0.7, gamma, K, t_span=(0, 150))
    assert res.success and res.r.shape == (4, 201)
    r_inf = np.array([0.0, math.sqrt(0.5), math.sqrt(1 - 1 / 3), math.sqrt(0.8)])
    np.testing.assert_allclose(res.r_inf, r_inf, rtol=1e-15)
    np.testing.assert_allclose(res.r[1:, -1], r_inf[1:], atol=1e-6)
    assert res.r[0, -1] < 1e-6  # below K_c = 2γ the incoherent state attracts
    # Locked to the centre frequency ω0 (ψ' = ω0 on the stationary state).
    slope = (res.psi[2, -1] - res.psi[2, -51]) / (res.t[-1] - res.t[-51])
    assert abs(slope - 0.7) < 1e-6


def test_delayed_rotating_state():
    """With delay τ a rotating state z = r e^{iΩt} needs (from the OA equation)
    r² = 1 − 2γ/(K cos Ωτ) and Ω = ω0 − (K/2) sin(Ωτ)(1 + r²): an independent pair of
    equations solved here; the DDE run must land on it."""
    w0, gamma, K, tau = 1.0, 0.2, 2.0, 0.3

    def eqs(v):
        r2, om = v
        return [r2 - 1 + 2 * gamma / (K * math.cos(om * tau)),
                om - w0 + 0.5 * K * math.sin(om * tau) * (1 + r2)]

    r2, om = fsolve(eqs, [0.8, 0.5], xtol=1e-14)
    res = meanfield.ott_antonsen(w0, gamma, K, tau=tau, t_span=(0, 200), r0=0.5,
                                 t_eval=np.linspace(150, 200, 101))
    assert math.isnan(res.r_inf)
    np.testing.assert_allclose(res.r, math.sqrt(r2), atol=1e-6)
    slope = (res.psi[-1] - res.psi[0]) / 50.0
    assert abs(slope - om) < 1e-6


def test_phase_lag_stationary_state():
    """α ≠ 0, no delay: r² = 1 − 2γ/(K cos α), ψ' = ω0 − (K/2) sin α (1 + r²)."""
    w0, gamma, K, a = 0.0, 0.3, 2.0, 0.5
    res = meanfield.ott_antonsen(w0, gamma, K, alpha=a, t_span=(0, 150), r0=0.4)
    r2 = 1 - 2 * gamma / (K * math.cos(a))
    assert abs(res.r[-1] - math.sqrt(r2)) < 1e-6
    slope = (res.psi[-1] - res.psi[-51]) / (res.t[-1] - res.t[-51])
    assert abs(slope - (w0 - 0.5 * K * math.sin(a) * (1 + r2))) < 1e-6


def test_critical_coupling_formulas():
    assert meanfield.critical_coupling("lorentzian", 0.5) == pytest.approx(1.0, rel=1e-15)
    assert meanfield.critical_coupling("gaussian", 1.0) == pytest.approx(
        2 * math.sqrt(2 * math.pi) / math.pi, rel=1e-15)
    assert meanfield.critical_coupling("gaussian", 1.0) == pytest.approx(1.5958, abs=1e-4)
    assert meanfield.critical_coupling("uniform", 1.0) == pytest.approx(4 / math.pi)
    assert meanfield.critical_coupling("lorentzian", 0.5, p=0.25) == pytest.approx(4.0)
    assert meanfield.critical_coupling("custom", g0=0.5) == pytest.approx(4 / math.pi)


def test_bad_input():
    with pytest.raises(ValueError, match="gamma"):
        meanfield.ott_antonsen(0.0, 0.0, 1.0, t_span=(0, 1))
    with pytest.raises(ValueError, match="gamma"):
        meanfield.ott_antonsen(0.0, -1.0, 1.0, t_span=(0, 1))
    with pytest.raises(ValueError, match="coupling"):
        meanfield.ott_antonsen(0.0, 1.0, -1.0, t_span=(0, 1))
    with pytest.raises(ValueError, match="coupling"):
        meanfield.stationary_r(1.0, [1.0, -2.0])
    with pytest.raises(ValueError, match="tau"):
        meanfield.ott_antonsen(0.0, 1.0, 1.0, tau=-1.0, t_span=(0, 1))
    with pytest.raises(ValueError, match="r0"):
        meanfield.ott_antonsen(0.0, 1.0, 1.0, r0=0.0, t_span=(0, 1))
    with pytest.raises(ValueError, match="width"):
        meanfield.critical_coupling("gaussian", 0.0)
    with pytest.raises(ValueError, match="p"):
        meanfield.critical_coupling("lorentzian", 1.0, p=1.5)
    with pytest.raises(ValueError, match="distribution"):
        meanfield.critical_coupling("cauchy")


def test_finite_network_near_mean_field():
    """N = 2000 Kuramoto oscillators (deterministic Lorentzian quantiles, a dense random graph
    W ≡ 0.05 in-degree normalised): the time-averaged r lies within 3/√N of r∞."""
    n, gamma, K = 2000, 0.5, np.array([2.0, 4.0])
    out = meanfield.convergence([n], K, gamma=gamma, graph=0.05, t_final=20.0, t_average=10.0)
    assert np.all(out["error"] < 3 / math.sqrt(n)), out
