"""Architecture classes and critical points of delyap.nn neural ODEs (Kuehn & Kuntz 2024): the
class from the widths (n₀, dim, dim + augment), the torch replica of the C++ map, a constructed
augmented neural ODE with a known maximum and a bottleneck with a degenerate critical line, and
non-augmented 1-D neural ODEs (monotone maps: no critical points)."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import geometry  # noqa: E402
from delyap.nn import NeuralDDE, NeuralODE  # noqa: E402


def _bump_ode(in_features=1, lift=((1.0,),), method="RK4", t_final=1.0):
    """State (p, q), q the augmented dimension: p' = 0, q' = tanh(p + 1) − tanh(p − 1), so
    Φ(x) = q(T) = T·g(x₁) with g(p) = tanh(p + 1) − tanh(p − 1): one maximum at p = 0
    (every RK method integrates the constant q' exactly)."""
    m = NeuralODE(in_features, 1, 1, 2, augment=1, method=method, dt=0.25, t_final=t_final,
                  rtol=1e-10, atol=1e-12).double()
    with torch.no_grad():
        m.lift.weight.copy_(torch.tensor(lift, dtype=torch.float64))
        m.lift.bias.zero_()
        m.W.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
        m.b.copy_(torch.tensor([1.0, -1.0]))
        m.W_out.copy_(torch.tensor([[0.0, 0.0], [1.0, -1.0]]))
        m.readout.weight.copy_(torch.tensor([[0.0, 1.0]]))
        m.readout.bias.zero_()
    return m


def test_classes_follow_the_widths_of_lift_and_phase_space():
    torch.manual_seed(0)
    cases = {(1, 1, 0): "non-augmented", (3, 2, 0): "non-augmented", (1, 1, 1): "augmented",
             (2, 2, 3): "augmented", (1, 3, 0): "augmented", (3, 2, 1): "bottleneck"}
    for (n0, dim, aug), kind in cases.items():
        cls = geometry.architecture_class(NeuralODE(n0, 1, dim, 4, augment=aug).double())
        assert cls.kind == kind, (n0, dim, aug, cls)
        assert cls.smooth_monotone and cls.theory
    # A rank-deficient lift is a bottleneck in its normal form (rank 1 < n₀ = 2, then dim 2).
    m = NeuralODE(2, 1, 2, 4).double()
    with torch.no_grad():
        m.lift.weight.copy_(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    cls = geometry.architecture_class(m)
    assert cls.kind == "degenerate" and cls.effective_kind == "bottleneck"
    assert cls.effective_widths == (2, 1, 2, 1)
    relu = geometry.architecture_class(NeuralODE(1, 1, 1, 4, activation="relu"))
    assert not relu.smooth_monotone and "Lipschitz" in relu.reason
    with pytest.raises(ValueError, match="memory_capacity"):
        geometry.architecture_class(NeuralDDE(1, 1, 1, 4, tau=0.5))


@pytest.mark.parametrize("method", ["RK4", "DP5"])
@pytest.mark.parametrize("n_delays", [0, 2])
def test_torch_replica_is_the_modules_map(method, n_delays):
    # critical_points differentiates this replica twice; it must be the C++ pass's map
    # (delayed reads through the same interpolant included).
    torch.manual_seed(1)
    m = NeuralDDE(2, 1, 2, 6, augment=1, method=method, dt=0.1, tau=[0.3, 0.5][:n_delays],
                  n_delays=n_delays).double()
    x = torch.rand(16, 2, dtype=torch.float64) * 4 - 2
    replica = geometry._neural_map(m, x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(replica(x).numpy(), m(x).numpy(), rtol=1e-12, atol=1e-13)


def test_augmented_neural_ode_has_the_constructed_maximum():
    m = _bump_ode()
    cls = geometry.architecture_class(m)
    assert cls.kind == "augmented"
    cp = geometry.critical_points(m, (-4.0, 4.0), n_starts=16)
    assert len(cp) == 1
    np.testing.assert_allclose(cp.points[0], [0.0], atol=1e-9)
    assert cp.index[0] == 1 and not cp.degenerate[0]
    # g(0) = 2 tanh 1, g''(0) = −4 tanh(1) sech²(1); Φ = T·g with T = 1.
    t, s2 = math.tanh(1.0), 1 / math.cosh(1.0) ** 2
    np.testing.assert_allclose(cp.values[0], 2 * t, rtol=1e-12)
    np.testing.assert_allclose(cp.hessian_eigenvalues[0], [-4 * t * s2], rtol=1e-8)


def test_bottleneck_neural_ode_has_a_degenerate_critical_line():
    # Lift x ↦ x₁ (width 2 → 1), then one augmented dimension: Φ(x) = g(x₁), critical on the
    # whole line x₁ = 0, every point degenerate (∂²Φ/∂x₂² = 0).
    m = _bump_ode(in_features=2, lift=((1.0, 0.0),), method="DP5")
    assert geometry.architecture_class(m).kind == "bottleneck"
    cp = geometry.critical_points(m, [(-3.0, 3.0), (-3.0, 3.0)], n_starts=24)
    assert len(cp) >= 2
    np.testing.assert_allclose(cp.points[:, 0], 0.0, atol=1e-8)
    assert np.ptp(cp.points[:, 1]) > 0.5          # several points along the line
    assert cp.degenerate.all() and (cp.index == 1).all()


def test_non_augmented_one_dimensional_neural_odes_are_monotone():
    # Φ = λ2 ∘ φ_T ∘ λ1 on ℝ: a flow map of ℝ is strictly increasing, so Φ is strictly
    # monotone and has no critical points (checked on a fine grid and by the search). The
    # computed map keeps this while the steps are short against 1/K (RK4 at dt = 0.5 with
    # these weights folds the line: a solver artefact, not the flow's).
    g = torch.Generator().manual_seed(3)
    for _ in range(4):
        m = NeuralODE(1, 1, 1, 8, method="RK4", dt=0.1, t_final=1.0).double()
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(2.0 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        assert geometry.architecture_class(m).kind == "non-augmented"
        xs = torch.linspace(-3, 3, 601, dtype=torch.float64)[:, None]
        with torch.no_grad():
            d = np.diff(m(xs).numpy()[:, 0])
        assert (d > 0).all() or (d < 0).all()
        assert len(geometry.critical_points(m, (-3.0, 3.0), n_starts=4, max_iter=30)) == 0
