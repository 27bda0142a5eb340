"""delyap.nn.memory_capacity: the Lipschitz bound K, its empirical lower estimate and Kτ."""
import math

import pytest

torch = pytest.importorskip("torch")

from delyap.nn import NeuralDDE, NeuralODE  # noqa: E402


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_bound_dominates_sampled_jacobians(activation):
    torch.manual_seed(0)
    model = NeuralDDE(2, 1, dim=3, hidden=16, tau=[0.3, 0.7], n_delays=2,
                      activation=activation).double()
    mc = model.memory_capacity(n_samples=512, seed=1)
    assert 0 < mc.K_empirical <= mc.K_upper * (1 + 1e-12)
    # A sampled Jacobian is a lower bound, but not a loose one for a tanh layer near 0.
    if activation == "tanh":
        assert mc.K_empirical > 0.2 * mc.K_upper
    assert mc.tau == pytest.approx(0.7)
    assert mc.K_tau == pytest.approx(mc.K_upper * 0.7)
    assert mc.regime == ("ode-like" if mc.K_tau * math.e < 1 else "memory")


def test_bound_is_the_spectral_formula_and_scales_linearly():
    torch.manual_seed(2)
    model = NeuralDDE(1, 1, dim=2, hidden=8, tau=0.5).double()
    norm = torch.linalg.matrix_norm
    expect = float(norm(model.W_out.detach(), 2)) * (float(norm(model.W.detach(), 2))
                                                    + float(norm(model.W_delay[0].detach(), 2)))
    mc = model.memory_capacity()
    assert mc.K_upper == pytest.approx(expect, rel=1e-12)
    with torch.no_grad():
        model.W_out.mul_(3.0)
    mc3 = model.memory_capacity()
    assert mc3.K_upper == pytest.approx(3 * mc.K_upper, rel=1e-12)
    assert mc3.K_empirical == pytest.approx(3 * mc.K_empirical, rel=1e-12)
    # Regimes on either side of Kτ·e = 1.
    with torch.no_grad():
        model.tau.fill_(0.5 / (mc3.K_upper * math.e))
    assert model.memory_capacity().regime == "ode-like"
    with torch.no_grad():
        model.tau.fill_(2.0 / (mc3.K_upper * math.e))
    assert model.memory_capacity().regime == "memory"


def test_ode_has_no_memory():
    mc = NeuralODE(1, 1, dim=2, hidden=4).double().memory_capacity()
    assert mc.tau == 0 and mc.K_tau == 0 and mc.regime == "ode-like"
