"""Architecture classes and critical points of input–output maps (Kuehn & Kuntz 2024):
closed-form networks with known critical points, the no-critical-point theorem for
non-augmented networks, and a constructed bottleneck with a degenerate critical line."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import geometry  # noqa: E402


def _set(lin, W, b=None):
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(W, dtype=torch.float64))
        if lin.bias is not None:
            lin.bias.copy_(torch.as_tensor(b if b is not None else np.zeros(lin.out_features),
                                           dtype=torch.float64))
    return lin


def _bump():
    # Φ(x) = tanh(x) − tanh(x − 1): Φ' = sech²(x) − sech²(x − 1) vanishes only at x = 1/2,
    # a maximum.
    l1 = _set(torch.nn.Linear(1, 2).double(), [[1.0], [1.0]], [0.0, -1.0])
    l2 = _set(torch.nn.Linear(2, 1, bias=False).double(), [[1.0, -1.0]])
    return torch.nn.Sequential(l1, torch.nn.Tanh(), l2)


def test_one_maximum_of_the_bump():
    net = _bump()
    cls = geometry.architecture_class(net)
    assert cls.kind == "augmented" and cls.widths == (1, 2, 1)
    cp = geometry.critical_points(net, (-6.0, 6.0), n_starts=32)
    assert len(cp) == 1
    np.testing.assert_allclose(cp.points[0], [0.5], atol=1e-9)
    assert cp.index[0] == 1 and not cp.degenerate[0]
    t, s2 = math.tanh(0.5), 1 / math.cosh(0.5) ** 2
    # Φ'' = −2 tanh(x) sech²(x) + 2 tanh(x − 1) sech²(x − 1) = −4 tanh(½) sech²(½) at ½.
    np.testing.assert_allclose(cp.hessian_eigenvalues[0], [-4 * t * s2], rtol=1e-8)
    np.testing.assert_allclose(cp.values[0], 2 * t, rtol=1e-12)


def _random_mlp(widths, rng, act=torch.nn.Tanh):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers.append(_set(torch.nn.Linear(a, b).double(), rng.standard_normal((b, a)),
                           rng.standard_normal(b)))
        layers.append(act())
    return torch.nn.Sequential(*layers[:-1])


def test_non_augmented_random_networks_have_no_critical_points():
    rng = np.random.default_rng(0)
    nets = [_random_mlp((2, 2, 1), rng) for _ in range(1000)]
    classes = [geometry.architecture_class(n) for n in nets]
    # Random Gaussian weights are full rank with probability one: all non-augmented.
    assert all(c.kind == "non-augmented" for c in classes)
    # The theorem's mechanism, checked on every draw: ∇Φ(x) = W₁ᵀ D(x) w₂ with W₁ invertible
    # and D > 0 diagonal, so ‖∇Φ(x)‖ ≥ σ_min(W₁) min_i φ'(h_i) |w₂|; on random points it is
    # never below that positive bound.
    W1 = torch.stack([n[0].weight.detach() for n in nets])          # (1000, 2, 2)
    b1 = torch.stack([n[0].bias.detach() for n in nets])            # (1000, 2)
    w2 = torch.stack([n[2].weight.detach()[0] for n in nets])       # (1000, 2)
    # One autograd pass for every network at once: x is (net, point, 2).
    x = torch.as_tensor(rng.uniform(-3, 3, (64, 2))).expand(1000, 64, 2).clone()
    x.requires_grad_(True)
    h = torch.einsum("nij,npj->npi", W1, x) + b1[:, None, :]
    phi = torch.einsum("npi,ni->np", torch.tanh(h), w2)
    grads = torch.autograd.grad(phi.sum(), x)[0]
    D = 1 - torch.tanh(h.detach()) ** 2
    bound = (torch.linalg.svdvals(W1)[:, -1, None] * D.min(dim=2).values
             * w2.abs().min(dim=1).values[:, None])
    assert bool(torch.all(bound > 0))
    assert bool(torch.all(grads.norm(dim=2) >= bound * (1 - 1e-12)))
    # And the numerical search finds nothing on a subset.
    for net in nets[:6]:
        assert len(geometry.critical_points(net, [[-3, 3], [-3, 3]], n_starts=8,
                                            max_iter=60)) == 0


def test_bottleneck_has_a_degenerate_critical_line():
    # 2 → 1 → 2 → 1: s = tanh(x₁); Φ = tanh(s) − tanh(s − 1) is critical where s = ½, i.e. on
    # the line x₁ = artanh(½) for every x₂: degenerate (the Hessian vanishes along x₂).
    l1 = _set(torch.nn.Linear(2, 1).double(), [[1.0, 0.0]], [0.0])
    l2 = _set(torch.nn.Linear(1, 2).double(), [[1.0], [1.0]], [0.0, -1.0])
    l3 = _set(torch.nn.Linear(2, 1, bias=False).double(), [[1.0, -1.0]])
    net = torch.nn.Sequential(l1, torch.nn.Tanh(), l2, torch.nn.Tanh(), l3)
    cls = geometry.architecture_class(net)
    assert cls.kind == "bottleneck" and "narrower than the input" in cls.reason
    cp = geometry.critical_points(net, [[-2, 2], [-2, 2]], n_starts=16)
    assert len(cp) >= 2
    np.testing.assert_allclose(cp.points[:, 0], math.atanh(0.5), atol=1e-6)
    assert np.all(cp.degenerate)
    assert np.ptp(cp.points[:, 1]) > 0.5        # spread along the line, not one point


def test_rank_deficient_weights_are_degenerate_and_classified_by_their_normal_form():
    rng = np.random.default_rng(1)
    net = _random_mlp((2, 3, 1), rng)
    assert geometry.architecture_class(net).kind == "augmented"
    u = rng.standard_normal((3, 1))
    _set(net[0], u @ rng.standard_normal((1, 2)), net[0].bias.detach().numpy())  # rank 1
    cls = geometry.architecture_class(net)
    assert cls.kind == "degenerate" and cls.ranks[0] == 1
    assert cls.effective_widths == (2, 1, 3, 1) and cls.effective_kind == "bottleneck"
    # Non-augmented widths (2, 2, 1) with a rank-1 first layer act as (2, 1, 2, 1): a
    # bottleneck, where degenerate critical lines become possible.
    sq = _random_mlp((2, 2, 1), rng)
    _set(sq[0], np.outer([1.0, 2.0], [1.0, -1.0]), sq[0].bias.detach().numpy())
    assert geometry.architecture_class(sq).effective_kind == "bottleneck"


def test_widths_classes_and_bad_inputs():
    rng = np.random.default_rng(2)
    assert geometry.architecture_class(_random_mlp((4, 3, 3, 1), rng)).kind == "non-augmented"
    assert geometry.architecture_class(_random_mlp((2, 5, 3, 1), rng)).kind == "augmented"
    assert geometry.architecture_class(_random_mlp((3, 2, 4, 1), rng)).kind == "bottleneck"
    relu_net = _random_mlp((2, 4, 1), rng, torch.nn.ReLU)
    relu = geometry.architecture_class(relu_net)
    assert not relu.smooth_monotone and "assumes smooth" in relu.reason
    with pytest.warns(UserWarning, match="ReLU make Φ piecewise smooth"):
        cp = geometry.critical_points(relu_net, [[-1, 1], [-1, 1]], n_starts=4)
    assert cp.info["non_smooth"] == ["ReLU"]
    with pytest.raises(TypeError, match="model"):
        geometry.architecture_class(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="bounds"):
        geometry.critical_points(_bump(), [[1.0, -1.0]])
    with pytest.raises(ValueError, match="bounds"):
        geometry.critical_points(_bump(), [[0, 1], [0, 1]])
    with pytest.raises(TypeError, match="float64"):
        geometry.critical_points(_bump().float(), (0.0, 1.0))
    with pytest.raises(ValueError, match="model: critical points are searched on the CPU, "
                                         "the model is on meta"):
        geometry.critical_points(_bump().to("meta"), (0.0, 1.0))


def test_answers_do_not_depend_on_the_scale_of_phi_or_x():
    # The bump times s, and the bump with x stretched by c: still one maximum, non-degenerate
    # (the tests are relative to Φ's own gradient and curvature, not to 1).
    for s in (1e-7, 1.0, 1e5):
        net = _bump()
        with torch.no_grad():
            net[2].weight.mul_(s)
        cp = geometry.critical_points(net, (-3.0, 3.0), n_starts=32)
        assert len(cp) == 1 and cp.index[0] == 1 and not cp.degenerate[0], s
        np.testing.assert_allclose(cp.points[0], [0.5], atol=1e-8)
    c = 1e-4
    net = _bump()
    with torch.no_grad():
        net[0].weight.mul_(c)                      # Φ(x) = bump(c·x): the maximum at 0.5/c
    cp = geometry.critical_points(net, (-3.0 / c, 3.0 / c), n_starts=32)
    assert len(cp) == 1 and cp.index[0] == 1 and not cp.degenerate[0]
    np.testing.assert_allclose(cp.points[0], [0.5 / c], rtol=1e-8)


@pytest.mark.parametrize("a", [2.0, 3.0])
def test_a_degenerate_inflection_is_one_degenerate_point(a):
    # Φ(x) = tanh(x) − a·tanh(x/a): Φ' = sech²(x) − sech²(x/a) vanishes only at x = 0, where
    # Φ'' = 0 too (Φ' ≈ (1 − 1/a²)x²). The iteration converges only linearly there and stops
    # ~1e-5 away, where Φ'' is still ~1e-5: it must not come back as several non-degenerate
    # extrema.
    l1 = _set(torch.nn.Linear(1, 2).double(), [[1.0], [1.0 / a]], [0.0, 0.0])
    l2 = _set(torch.nn.Linear(2, 1, bias=False).double(), [[1.0, -a]])
    cp = geometry.critical_points(torch.nn.Sequential(l1, torch.nn.Tanh(), l2), (-2.0, 2.0),
                                  n_starts=64)
    assert len(cp) == 1 and cp.degenerate[0]
    assert abs(cp.points[0, 0]) < 1e-4


def test_tolerances_bounds_and_layer_chain_are_checked():
    for name in ("gtol", "dedup_tol", "degenerate_tol"):
        for bad in (float("nan"), -1.0, 0.0):
            with pytest.raises(ValueError, match=name):
                geometry.critical_points(_bump(), (-2.0, 2.0), **{name: bad})
    with pytest.raises(ValueError, match="bounds: the box's widths overflow"):
        geometry.critical_points(_bump(), (-1e308, 1e308))
    broken = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 1)).double()
    with pytest.raises(ValueError, match="Linear layer 2 takes 4 features"):
        geometry.architecture_class(broken)
