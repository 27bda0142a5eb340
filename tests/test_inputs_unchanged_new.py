"""The entry points added with the networks, sharpness, layer-spectrum and neural work leave
every array they are given bit for bit unchanged (the rule of tests/test_inputs_unchanged.py)."""
import numpy as np
import pytest
import scipy.sparse as sp

import delyap as dl
from delyap import networks


def _frozen(*arrays):
    return [a.copy() for a in arrays]


def _same(before, after):
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_network_spectrum_graph_sampling_and_logistic_keep_inputs():
    rng = np.random.default_rng(5)
    omega = rng.uniform(-1, 1, 12)
    A = sp.random(12, 12, density=0.4, format="csr", random_state=5)
    theta0 = rng.uniform(0, 6, 12)
    data, indices, indptr = A.data, A.indices, A.indptr
    before = _frozen(omega, theta0, data, indices, indptr)
    dl.lyapunov_spectrum(dl.rhs.kuramoto(omega, A, [0.5, 1.5], tau=0.3, alpha=0.1), theta0, 3,
                         20.0)
    _same(before, [omega, theta0, data, indices, indptr])

    weights = rng.uniform(0.5, 1.5, 200)
    before = _frozen(weights)
    networks.sample_graph(0.1, 200, node_weights=weights, seed=1)
    _same(before, [weights])

    r, tau, h0 = np.array([1.0, 1.2]), np.array([1.0, 1.5]), np.array([[0.5], [0.7]])
    before = _frozen(r, tau, h0)
    dl.solve_dde(dl.rhs.delayed_logistic(r=r, K=1.0, tau=tau), h0, (0, 20))
    _same(before, [r, tau, h0])


def test_torch_entry_points_keep_inputs_and_parameters():
    torch = pytest.importorskip("torch")
    from delyap import nn, sgd

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(),
                              torch.nn.Linear(6, 1)).double()
    X = torch.randn(16, 2, dtype=torch.float64)
    Y = torch.randn(16, 1, dtype=torch.float64)
    params = [p.detach().clone() for p in mlp.parameters()]
    Xc, Yc = X.clone(), Y.clone()
    sgd.hessian_eigenvalues(mlp, X, Y, k=2, which="both")
    sgd.hessian_trace(mlp, X, Y, n_probes=4)
    dl.lyapunov.layer_spectrum(mlp[:2], X, 2)
    assert torch.equal(X, Xc) and torch.equal(Y, Yc)
    assert all(torch.equal(a, b.detach()) for a, b in zip(params, mlp.parameters()))

    model = nn.NeuralDDE(2, 1, dim=3, hidden=5, tau=0.4).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    xc = x.clone()
    model(x).sum().backward()
    assert torch.equal(x, xc)
