"""The graph-reuse Hessian-vector products (double backward through one gradient graph), the
training-step monitor API (SharpnessMonitor.backward) and the Jᵀ1 start.
References: dense torch.func.hessian of small models, fresh tight Lanczos runs, and training
runs without the monitor (bit for bit)."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import sgd  # noqa: E402
from delyap.sgd.hessian_path import _flat_loss_functions, per_sample_loss  # noqa: E402
from delyap.sgd.sharpness import GraphHVP, hvp_operator, lanczos  # noqa: E402


def _mlp(seed=0, N=24, d_in=3, width=10, c=1):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.Tanh(),
                              torch.nn.Linear(width, width), torch.nn.Tanh(),
                              torch.nn.Linear(width, c)).double()
    X = torch.randn(N, d_in, dtype=torch.float64)
    Y = torch.sin(X[:, :c]) + 0.1 * torch.randn(N, c, dtype=torch.float64)
    return net, X, Y


def _dense(net, X, Y, loss="mse"):
    theta, _, full = _flat_loss_functions(net, X, Y, per_sample_loss(loss))
    return torch.func.hessian(full)(theta)


def test_graph_hvp_equals_dense_hessian_and_torch_func():
    net, X, Y = _mlp()
    H = _dense(net, X, Y) * 2                      # nn.MSELoss() = 2 × ½‖f − y‖² per sample
    crit = torch.nn.MSELoss()
    g = torch.Generator().manual_seed(0)
    V = torch.randn(5, H.shape[0], generator=g, dtype=torch.float64)
    # the operator (flat parameters, one graph) and a graph on the module's own parameters,
    # as the monitor builds from a training step
    op = hvp_operator(net, X, Y, crit)
    params = list(net.parameters())
    loss = crit(net(X), Y)
    gop = GraphHVP(params, list(torch.autograd.grad(loss, params, create_graph=True)),
                   float(loss.detach()))
    # torch.func's vjp of the gradient (the previous implementation), independent of both
    theta = op.theta
    grad = torch.func.grad(lambda th: op._loss_of(th, X, Y))
    for v in V:
        ref = H @ v
        hv_func = torch.func.vjp(grad, theta)[1](v)[0]
        for hv in (op(v), gop(v), hv_func):
            assert float(torch.linalg.norm(hv - ref)) <= 1e-12 * float(torch.linalg.norm(ref))
    assert op.calls == 5 and gop.calls == 5
    assert gop.loss() == pytest.approx(float(crit(net(X), Y).detach()), rel=1e-15)
    gop.release()
    with pytest.raises(RuntimeError, match="released"):
        gop(V[0])


def test_graph_hvp_with_a_parameter_entering_linearly():
    # Linear regression plus a term linear in a parameter s (L = mse + s): ∂L/∂s = 1 has no
    # graph, so its row and column of H are zero; the rest is 2 XaᵀXa/N.
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1).double()
            self.s = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, x):
            return self.lin(x)

    m = M()
    X = torch.randn(8, 2, dtype=torch.float64)
    Y = torch.randn(8, 1, dtype=torch.float64)
    params = list(m.parameters())
    loss = ((m(X) - Y) ** 2).mean() + m.s
    gop = GraphHVP(params, list(torch.autograd.grad(loss, params, create_graph=True)), 0.0)
    H = torch.zeros(4, 4, dtype=torch.float64)
    Xa = torch.cat([X, torch.ones(8, 1, dtype=torch.float64)], 1)
    assert params[0] is m.s                      # a module's own parameters come first
    H[1:, 1:] = 2 * Xa.T @ Xa / 8
    for i in range(4):
        e = torch.zeros(4, dtype=torch.float64)
        e[i] = 1
        torch.testing.assert_close(gop(e), H[:, i], rtol=1e-13, atol=1e-13)


def test_lanczos_numpy_and_torch_paths_agree():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 30))
    A = A + A.T
    v0 = rng.standard_normal(30)
    a = lanczos(lambda q: A @ q, v0, 2, tol=1e-12, max_iter=30)
    At = torch.as_tensor(A)
    b = lanczos(lambda q: At @ q, torch.as_tensor(v0), 2, tol=1e-12, max_iter=30)
    np.testing.assert_allclose(a[0], np.linalg.eigvalsh(A)[::-1][:2], rtol=1e-10)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
    assert a[3] == b[3]
    np.testing.assert_allclose(np.abs(a[1]), np.abs(b[1].numpy()), atol=1e-9)


def test_output_gradient_start():
    net, X, Y = _mlp(seed=2)
    op = hvp_operator(net, X, Y)
    J = torch.func.jacrev(lambda th: _call(net, th, X).reshape(-1))(op.theta)
    torch.testing.assert_close(op.output_gradient(), J.sum(0), rtol=1e-12, atol=1e-14)
    # several outputs: no such start
    net2, X2, Y2 = _mlp(seed=2, c=2)
    assert hvp_operator(net2, X2, Y2).output_gradient() is None
    ref = np.linalg.eigvalsh(_dense(net, X, Y).numpy())[-1]
    a = sgd.hessian_eigenvalues(net, X, Y, tol=1e-10)
    b = sgd.hessian_eigenvalues(net, X, Y, tol=1e-10, start="random")
    assert a.values[0] == pytest.approx(ref, rel=1e-9)
    assert b.values[0] == pytest.approx(ref, rel=1e-9)
    with pytest.raises(ValueError, match="start"):
        sgd.hessian_eigenvalues(net, X, Y, start="ones")


def _call(net, theta, X):
    from delyap.sgd.hessian_path import flat_model
    return flat_model(net)[1](theta, X)


def _train(net, X, Y, lr, steps, mon=None):
    crit = torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.5)
    grads = []
    for _ in range(steps):
        opt.zero_grad()
        loss = crit(net(X), Y)
        if mon is None:
            loss.backward()
        else:
            mon.backward(loss, opt)
        grads.append([p.grad.clone() for p in net.parameters()])
        opt.step()
        if mon is not None:
            mon.step(opt)
    return grads


@pytest.mark.parametrize("extrapolate", [3, 5])
def test_monitor_backward_is_bit_identical_and_matches_fresh_lanczos(extrapolate):
    net0, X, Y = _mlp(seed=3, N=40, width=16)
    crit = torch.nn.MSELoss()
    lam0 = sgd.hessian_eigenvalues(net0, X, Y, loss=crit).sharpness
    lr, steps, every, tol = 1.5 / lam0, 60, 5, 1e-5
    plain = copy.deepcopy(net0)
    g_plain = _train(plain, X, Y, lr, steps)
    # The reference: the monitor's record points, by a fresh tight Lanczos at the parameters
    # each record is taken at (those before the step, after `step` steps).
    ref, net = [], copy.deepcopy(net0)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.5)
    for n in range(steps):
        if n % every == 0:
            ref.append(sgd.hessian_eigenvalues(net, X, Y, loss=crit, tol=1e-12).sharpness)
        opt.zero_grad()
        crit(net(X), Y).backward()
        opt.step()
    mon_net = copy.deepcopy(net0)
    mon = sgd.SharpnessMonitor(mon_net, X, Y, every=every, loss=crit, smallest=False, tol=tol,
                               extrapolate=extrapolate)
    g_mon = _train(mon_net, X, Y, lr, steps, mon)
    # training untouched, bit for bit: every step's gradients and the final parameters
    for a, b in zip(g_plain, g_mon):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(torch.equal(x, y) for x, y in zip(plain.parameters(), mon_net.parameters()))
    r = mon.records
    np.testing.assert_array_equal(r["step"], np.arange(0, steps, every))
    assert np.all(r["converged"])
    lam = r["sharpness"]
    err = np.abs(lam - np.array(ref))
    # within the recorded residual (Weyl), which is within tol
    assert np.all(err <= r["residual"] * (1 + 1e-6) + 1e-12)
    assert np.all(r["residual"] <= tol * lam)
    np.testing.assert_allclose(r["threshold"], 3.0 / lr)            # (2 + 2β)/η, β = 0.5
    # the loss recorded is the training loss at the record's point
    assert r["loss"][0] == pytest.approx(float(crit(net0(X), Y).detach()), rel=1e-14)
    assert not np.any(r["fallback"]) and r["hvps"][-3:].max() < r["hvps"][0]   # warm path


def test_monitor_backward_rejects_wrong_losses():
    net, X, Y = _mlp(seed=5)
    crit = torch.nn.MSELoss()
    mon = sgd.SharpnessMonitor(net, X, Y, every=1, loss=crit, smallest=False)
    with pytest.raises(ValueError, match="full-batch"):
        mon.backward(crit(net(X[:10]), Y[:10]))            # a mini-batch
    mon2 = sgd.SharpnessMonitor(net, X, Y, every=1, smallest=False)     # loss 'mse' = ½ MSE
    with pytest.raises(ValueError, match="full-batch"):
        mon2.backward(crit(net(X), Y))
    with pytest.raises(TypeError, match="loss"):
        mon.backward(1.0)
    with pytest.raises(TypeError, match="loss"):
        mon.backward(crit(net(X), Y).detach())
