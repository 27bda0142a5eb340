"""Depth-wise Lyapunov spectra of deep networks: closed forms (orthogonal and scaled orthogonal
linear networks, residual blocks, Gaussian products), the C++ sweep against the torch path on
the very same drawn weights, and the order-to-chaos edge of random tanh networks."""
import math

import numpy as np
import pytest
from scipy.special import digamma

from delyap.layer_spectrum import random_network_draws
from delyap.lyapunov import layer_spectrum, layer_spectrum_sweep

torch = pytest.importorskip("torch")


def _orthogonal(n, rng):
    return np.linalg.qr(rng.standard_normal((n, n)))[0]


def _linear_net(mats, bias=False):
    layers = []
    for A in mats:
        lin = torch.nn.Linear(A.shape[1], A.shape[0], bias=bias).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(A))
        layers.append(lin)
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("c", [1.0, 0.5, 3.0])
def test_scaled_orthogonal_linear_network(c):
    rng = np.random.default_rng(0)
    n, L = 6, 30
    net = _linear_net([c * _orthogonal(n, rng) for _ in range(L)])
    X = torch.as_tensor(rng.standard_normal((3, n)))
    r = layer_spectrum(net, X, n_exponents=n)
    assert r.depth == L
    np.testing.assert_allclose(r.exponents, math.log(c), atol=1e-12)
    np.testing.assert_allclose(r.stderr, 0.0, atol=1e-12)
    np.testing.assert_allclose(r.layer_rates, math.log(c), atol=1e-12)


class _Residual(torch.nn.Module):
    def __init__(self, n, a):
        super().__init__()
        self.lin = torch.nn.Linear(n, n, bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(a * torch.eye(n, dtype=torch.float64))

    def forward(self, x):
        return x + torch.tanh(self.lin(x))


def test_residual_blocks_and_grouping():
    # At x = 0 each block x + tanh(a x) has Jacobian (1 + a) I; with σ_b = 0 the input stays 0.
    n, L, a = 4, 12, 0.5
    net = torch.nn.Sequential(*[_Residual(n, a) for _ in range(L)])
    r = layer_spectrum(net, torch.zeros(2, n, dtype=torch.float64), n_exponents=n)
    np.testing.assert_allclose(r.exponents, math.log(1 + a), atol=1e-12)
    # Linear + Tanh pairs are one layer each (normalised by the number of Linear layers).
    rng = np.random.default_rng(1)
    seq = []
    for _ in range(5):
        seq += [_linear_net([2.0 * _orthogonal(n, rng)])[0], torch.nn.Tanh()]
    r2 = layer_spectrum(torch.nn.Sequential(*seq), torch.zeros(1, n, dtype=torch.float64), n)
    assert r2.depth == 5
    np.testing.assert_allclose(r2.exponents, math.log(2.0), atol=1e-12)


def _torch_network(draws, activation):
    layers = []
    for W, b in zip(draws["weights"], draws["biases"]):
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W))
            lin.bias.copy_(torch.as_tensor(b))
        layers += [lin, activation()]
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("activation,name", [(torch.nn.Tanh, "tanh"), (torch.nn.ReLU, "relu")])
def test_sweep_equals_torch_path_on_the_same_weights(activation, name):
    N, L, k, n = 40, 8, 5, 3
    sw, sb = [1.0, 1.5], [0.0, 0.3]
    sweep = layer_spectrum_sweep(N, L, sw, sb, activation=name, n_exponents=k, n_inputs=n,
                                 seed=7)
    # The thread count changes how grid points are split among workers, never the result.
    one = layer_spectrum_sweep(N, L, sw, sb, activation=name, n_exponents=k, n_inputs=n,
                               seed=7, threads=1)
    np.testing.assert_array_equal(one.per_input, sweep.per_input)
    for i, w in enumerate(sw):
        for j, b in enumerate(sb):
            d = random_network_draws(N, L, w, b, n_exponents=k, n_inputs=n, seed=7)
            # The drawn laws: weights N(0, σ_w²/N), biases N(0, σ_b²).
            assert d["weights"].std() == pytest.approx(w / math.sqrt(N), rel=0.05)
            if b > 0:
                assert d["biases"].std() == pytest.approx(b, rel=0.1)
            r = layer_spectrum(_torch_network(d, activation), torch.as_tensor(d["inputs"]), k,
                               q0=d["q0"])
            np.testing.assert_allclose(sweep.per_input[i, j], r.per_input, atol=1e-12)
            np.testing.assert_allclose(sweep.exponents[i, j], r.exponents, atol=1e-12)


def test_gaussian_product_closed_form():
    # Zero inputs and σ_b = 0: every pre-activation is 0, tanh'(0) = 1, so the layer Jacobians
    # are Ginibre matrices with variance σ²/N, whose exponents are
    # λ_i = log σ + ½ (ψ((N − i + 1)/2) − log(N/2)) (Newman 1986). Per layer, ½ log of a
    # χ²_N/N variable has variance ≈ 1/(2N), so the depth average has sd ≈ 1/√(2NL).
    N, L, k = 64, 1500, 3
    sw = np.array([0.8, 1.0, 1.25])
    s = layer_spectrum_sweep(N, L, sw, 0.0, n_exponents=k, n_inputs=2, input_scale=0.0)
    i = np.arange(1, k + 1)
    exact = np.log(sw)[:, None] + 0.5 * (digamma((N - i + 1) / 2) - math.log(N / 2))[None]
    sd = 1 / math.sqrt(2 * N * L)
    np.testing.assert_allclose(s.exponents[:, 0, :], exact, atol=4 * sd)


def test_order_to_chaos_edge_tanh():
    # σ_b = 0 (Poole et al. 2016): ordered below σ_w = 1 (q* = 0, χ₁ = σ_w²), chaotic above. The
    # finite-width Gaussian correction c_N = ½(ψ(N/2) − log(N/2)) ≈ −1/(2N) shifts every λ₁;
    # with it removed, λ̃₁ = λ₁ − c_N is log σ_w below the edge, ≈ 0 at σ_w = 1 (up to the depth
    # bias −(log L + γ)/(2L) of q_l ≈ 1/(2l) → 0), and positive above. Since χ₁ − 1 is only
    # O((σ_w − 1)²) above 1 (½ log χ₁ ≈ (2/3)(σ_w − 1)², expanding tanh), the raw λ₁ of a width-N
    # network crosses 0 near 1 + √(3/(4N)) rather than at 1.
    # One network shape serves the whole grid, so the noise is its network-to-network spread:
    # per layer ½ log of a χ²_N/N-like variable, variance ≈ 1/(2N), sd ≈ 1/√(2NL) over depth.
    N, L = 128, 600
    sw = np.array([0.8, 0.9, 1.0, 1.3])
    s = layer_spectrum_sweep(N, L, sw, [0.0], n_exponents=1, n_inputs=8, seed=3)
    lam = s.exponents[:, 0, 0]
    sd = 1 / math.sqrt(2 * N * L)
    corr = 0.5 * (digamma(N / 2) - math.log(N / 2))
    tilde = lam - corr
    np.testing.assert_allclose(tilde[:2], np.log(sw[:2]), atol=4 * sd)
    depth_bias = (math.log(L) + 0.58) / (2 * L)
    assert -depth_bias - 4 * sd <= tilde[2] <= 4 * sd
    assert tilde[3] > 4 * sd and lam[3] > 4 * sd
    assert 1.0 < s.edge()[0] < 1.3


def test_bad_inputs():
    with pytest.raises(ValueError, match="activation"):
        layer_spectrum_sweep(8, 2, 1.0, 0.0, activation="gelu")
    with pytest.raises(ValueError, match="n_exponents"):
        layer_spectrum_sweep(8, 2, 1.0, 0.0, n_exponents=9)
    with pytest.raises(ValueError, match="sigma_w"):
        layer_spectrum_sweep(8, 2, -1.0, 0.0)
    net = _linear_net([np.eye(3)])
    with pytest.raises(TypeError, match="X"):
        layer_spectrum(net, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="q0"):
        layer_spectrum(net, torch.zeros(2, 3, dtype=torch.float64), 2, q0=np.eye(3))
    with pytest.raises(TypeError, match="float64"):
        layer_spectrum(net.float(), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="model_or_layers"):
        layer_spectrum(42, torch.zeros(2, 3, dtype=torch.float64))
    # Callables show their dtype only in X; a frame without k independent columns is refused
    # (QR would have completed it with arbitrary directions).
    with pytest.raises(TypeError, match="X: exponents need float64"):
        layer_spectrum([torch.tanh], torch.zeros(2, 3), 2)
    for q0 in (np.zeros((3, 2)), np.ones((3, 2))):
        with pytest.raises(ValueError, match="q0: expected 2 finite, linearly independent"):
            layer_spectrum(_linear_net([np.eye(3)]), torch.zeros(2, 3, dtype=torch.float64), 2,
                           q0=q0)


def test_layer_rates_average_to_the_exponents():
    # diag(0.1, 3) from the frame e1, e2: the frame's first column has the smaller rate, so
    # the sorted exponents reverse it; the layer rates must follow the same order.
    layers = [_linear_net([np.diag([0.1, 3.0])])[0], _linear_net([np.diag([0.5, 2.0])])[0]]
    r = layer_spectrum(layers, torch.ones(1, 2, dtype=torch.float64), 2, q0=np.eye(2))
    np.testing.assert_allclose(r.exponents, [0.5 * np.log(6.0), 0.5 * np.log(0.05)],
                               rtol=1e-14)
    np.testing.assert_allclose(r.layer_rates.mean(axis=0), r.exponents, rtol=1e-14)
    np.testing.assert_allclose(r.layer_rates, np.log([[3.0, 0.1], [2.0, 0.5]]), rtol=1e-14)


def test_dead_relu_reports_lost_direction():
    # A ReLU layer with all-negative pre-activations annihilates every direction.
    net = torch.nn.Sequential(_linear_net([-np.eye(2)], bias=False)[0], torch.nn.ReLU())
    X = torch.ones(1, 2, dtype=torch.float64)
    r = layer_spectrum(net, X, 1, throw=False)
    assert r.status_names == "lost_direction" and not r.success
