"""delyap.nn's stacked hidden layers (depth > 1: h' = W_out a_{L−1}, a_0 = σ(W h + Σ_k W_k
h(t − τ_k) + b), a_l = σ(W_hidden[l−1] a_{l−1} + b_hidden[l−1])): the C++ pass and its adjoint
against independent references written here (finite differences, torch autograd through
odeint_dde, delyap.solve_dde on a Python right-hand side, an explicit ResNet of MLP blocks),
against its own other code paths, and an identity it must satisfy (ReLU layers with identity
weights change nothing)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_reference import torch_field  # noqa: E402

import delyap  # noqa: E402
from delyap import _core  # noqa: E402
from delyap.nn import NeuralDDE, NeuralODE, neural_solve, odeint_dde  # noqa: E402


def _weights(dim, hidden, n_delays, n_stack, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)

    def r(*s, sc=scale):
        return (sc * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_(True)

    return (r(hidden, dim), r(n_delays, hidden, dim), r(hidden), r(dim, hidden),
            r(n_stack, hidden, hidden, sc=scale / hidden ** 0.5), r(n_stack, hidden))


@pytest.mark.parametrize("method", ["RK4", "DP5"])
def test_gradcheck_every_parameter_group_of_a_stacked_field(method):
    W, Wd, b, Wout, Vh, ch = _weights(2, 3, 2, 2, seed=1, scale=0.8)
    wt = (0.5 * torch.randn(3, generator=torch.Generator().manual_seed(3),
                            dtype=torch.float64)).requires_grad_(True)
    h0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(2),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.23, 0.37], dtype=torch.float64, requires_grad=True)
    kw: dict = {"dt": 0.1}
    if method == "DP5":  # steps of another τ: no read of the checked pass on a step boundary
        info: dict = {}
        neural_solve(h0, W, Wd, b, Wout, torch.tensor([0.21, 0.33], dtype=torch.float64),
                     t_final=0.8, method="DP5", rtol=1e-4, atol=1e-6, info=info, w_time=wt,
                     W_hidden=Vh, b_hidden=ch)
        kw = {"grid": info["t"]}
        assert len(kw["grid"]) > 4

    def fn(h0, W, Wd, b, Wout, tau, wt, Vh, ch):
        return neural_solve(h0, W, Wd, b, Wout, tau, t_final=0.8, method=method, w_time=wt,
                            W_hidden=Vh, b_hidden=ch, **kw)

    assert torch.autograd.gradcheck(fn, (h0, W, Wd, b, Wout, tau, wt, Vh, ch), eps=1e-6,
                                    atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("dim", [2, 9])  # the small kernels' and the GEMMs' first layer
def test_torch_path_gives_the_stacked_adjoints_gradients(dim):
    W, Wd, b, Wout, Vh, ch = _weights(dim, 6, 1, 2, seed=12)
    h0 = torch.randn(5, dim, generator=torch.Generator().manual_seed(13),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    params = (h0, W, Wd, b, Wout, tau, Vh, ch)
    info: dict = {}
    neural_solve(h0, W, Wd, b, Wout, torch.tensor([0.27], dtype=torch.float64), t_final=1.0,
                 method="DP5", rtol=1e-5, atol=1e-7, info=info, W_hidden=Vh, b_hidden=ch)
    for method, kw in (("RK4", dict(dt=0.1)), ("DP5", dict(grid=info["t"]))):
        y1 = neural_solve(h0, W, Wd, b, Wout, tau, t_final=1.0, method=method, W_hidden=Vh,
                          b_hidden=ch, **kw)
        g1 = torch.autograd.grad(y1.pow(2).sum(), params)
        y2 = odeint_dde(torch_field(W, Wd, b, Wout, Vh, ch), h0, tau, 1.0, method=method, **kw)
        g2 = torch.autograd.grad(y2.pow(2).sum(), params)
        torch.testing.assert_close(y1, y2, atol=1e-12, rtol=0)
        for a, c in zip(g1, g2):
            torch.testing.assert_close(a, c, atol=1e-10, rtol=1e-10)


def test_stacked_forward_matches_solve_dde():
    dim, hidden = 3, 5
    W, Wd, b, Wout, Vh, ch = (p.detach() for p in _weights(dim, hidden, 2, 2, seed=5))
    tau = [0.3, 0.55]
    h0 = torch.randn(4, dim, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y = neural_solve(h0, W, Wd, b, Wout, torch.tensor(tau, dtype=torch.float64), t_final=2.0,
                     method="DP5", rtol=1e-11, atol=1e-13, W_hidden=Vh, b_hidden=ch).numpy()
    Wn, Wdn, bn, Won = W.numpy(), Wd.numpy(), b.numpy(), Wout.numpy()

    def f(t, x, xd):
        a = np.tanh(x @ Wn.T + bn + xd[:, 0] @ Wdn[0].T + xd[:, 1] @ Wdn[1].T)
        for V, c in zip(Vh.numpy(), ch.numpy()):
            a = np.tanh(a @ V.T + c)
        return a @ Won.T

    sol = delyap.solve_dde(delyap.rhs.python(f, dim, tau, batch_size=4), h0.numpy(), (0.0, 2.0),
                           rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(y, np.asarray(sol.y)[:, -1, :], atol=1e-8, rtol=0)
    assert np.abs(y - h0.numpy()).max() > 0.1


def test_euler_with_depth_is_a_resnet_of_mlp_blocks():
    L, T = 8, 1.0
    dt = T / L
    W, Wd, b, Wout, Vh, ch = (p.detach() for p in _weights(2, 6, 0, 2, seed=7))
    h0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    y = neural_solve(h0, W, Wd, b, Wout, torch.zeros(0, dtype=torch.float64), t_final=T,
                     method="Euler", dt=dt, W_hidden=Vh, b_hidden=ch)
    h = h0
    for _ in range(L):
        a = torch.tanh(h @ W.T + b)
        for V, c in zip(Vh, ch):
            a = torch.tanh(a @ V.T + c)
        h = h + dt * a @ Wout.T
    torch.testing.assert_close(y, h, atol=1e-13, rtol=0)


@pytest.mark.parametrize("D,H,nd", [(2, 32, 1), (3, 7, 2), (9, 12, 1)])
def test_stacked_layers_on_every_code_path(D, H, nd):
    # Small kernels / GEMMs for the first layer and the output, stored (layers × batch × H per
    # stage) and recomputed activations, one and three threads, every activation: the same
    # values and gradients.
    rng = np.random.default_rng(40 + D)
    B, n_stack = 41, 2  # 41 rows: three threads get three row chunks (≥ 8 rows each)
    W, Wd = rng.standard_normal((H, D)), rng.standard_normal((nd, H, D))
    b, Wo = rng.standard_normal(H), rng.standard_normal((D, H)) / H ** 0.5
    Vh = rng.standard_normal((n_stack, H, H)) / H ** 0.5
    ch = rng.standard_normal((n_stack, H))
    h0, tau = rng.standard_normal((B, D)), np.array([0.3, 0.45][:nd])
    lam = rng.standard_normal((B, D))
    names = ("h0", "W", "W_delay", "b", "W_out", "tau", "W_hidden", "b_hidden")
    for act in (0, 1, 2, 3):
        res = []
        for small, budget, threads in ((False, 0.0, 1), (True, 1e9, 1), (True, 0.0, 3)):
            out = _core.neural_forward(h0, W, Wd, b, Wo, tau, act, _core.Method.RK4, 1.0, 1e-6,
                                       1e-8, 0.1, None, 10**6, threads, activation_bytes=budget,
                                       small_kernels=small, W_hidden=Vh, b_hidden=ch)
            if budget > 0 and act != 2:
                assert out["A"].shape == (10, 4, 3, B, H)
            g = _core.neural_backward(W, Wd, b, Wo, tau, act, _core.Method.RK4, out["t"],
                                      out["X"], out["K"], lam, threads, A=out["A"],
                                      small_kernels=small, W_hidden=Vh, b_hidden=ch)
            res.append((out["y"], g))
        for y, g in res[1:]:
            np.testing.assert_allclose(y, res[0][0], rtol=0, atol=1e-13 * np.abs(y).max())
            for name in names:
                ref = res[0][1][name]
                if ref.size:
                    np.testing.assert_allclose(g[name], ref, rtol=0,
                                               atol=1e-12 * np.abs(ref).max())


def test_relu_layers_with_identity_weights_change_nothing():
    # relu(I·relu(z) + 0) = relu(z): a depth-3 ReLU module whose stacked layers are identities
    # computes the depth-1 module's outputs and gradients.
    torch.manual_seed(5)
    kw = dict(tau=0.4, activation="relu", method="RK4", dt=0.1)
    one = NeuralDDE(2, 1, dim=3, hidden=8, **kw).double()
    three = NeuralDDE(2, 1, dim=3, hidden=8, depth=3, **kw).double()
    assert one.W_hidden is None and one.b_hidden is None
    assert "depth=3" in repr(three)
    three.load_state_dict({**one.state_dict(),
                           "W_hidden": torch.eye(8, dtype=torch.float64).repeat(2, 1, 1),
                           "b_hidden": torch.zeros(2, 8, dtype=torch.float64)})
    x = torch.randn(16, 2, dtype=torch.float64)
    y1, y3 = one(x), three(x)
    torch.testing.assert_close(y3, y1, atol=1e-14, rtol=0)
    g1 = torch.autograd.grad(y1.pow(2).sum(), [one.W, one.b, one.W_out])
    g3 = torch.autograd.grad(y3.pow(2).sum(), [three.W, three.b, three.W_out])
    for a, c in zip(g1, g3):
        torch.testing.assert_close(a, c, atol=1e-13, rtol=0)


def test_stacked_module_trains_and_reaches_the_other_tools():
    from delyap.geometry import _neural_map

    torch.manual_seed(6)
    model = NeuralODE(1, 1, dim=2, hidden=12, depth=2, method="RK4", dt=0.1).double()
    x = torch.linspace(-1, 1, 32, dtype=torch.float64).unsqueeze(1)
    y = torch.sin(3 * x)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        assert float(model.W_hidden.grad.abs().max()) > 0
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    torch.testing.assert_close(_neural_map(model, x.numpy())(x), model(x), atol=1e-12, rtol=0)
    # memory_capacity: the bound multiplies in L_σ ‖W_hidden[l]‖₂; the sampled Jacobians
    # (through the stacked layers) stay below it.
    norm = torch.linalg.matrix_norm
    with torch.no_grad():
        expect = float(norm(model.W_out, 2) * norm(model.W, 2) * norm(model.W_hidden[0], 2))
    cap = model.memory_capacity()
    assert cap.K_upper == pytest.approx(expect, rel=1e-12)
    assert 0 < cap.K_empirical <= cap.K_upper


def test_stacked_layers_are_checked():
    W, Wd, b, Wout, Vh, ch = (p.detach() for p in _weights(2, 4, 1, 1, seed=0))
    h0 = torch.zeros(2, 2, dtype=torch.float64)
    tau = torch.tensor([0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="W_hidden, b_hidden"):
        neural_solve(h0, W, Wd, b, Wout, tau, W_hidden=Vh)
    with pytest.raises(ValueError, match="W_hidden"):
        neural_solve(h0, W, Wd, b, Wout, tau, W_hidden=Vh[:, :3], b_hidden=ch)
    with pytest.raises(ValueError, match="b_hidden"):
        neural_solve(h0, W, Wd, b, Wout, tau, W_hidden=Vh, b_hidden=ch[:, :3])
    with pytest.raises(TypeError, match="W_hidden"):
        neural_solve(h0, W, Wd, b, Wout, tau, W_hidden=Vh.float(), b_hidden=ch)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="depth"):
            NeuralDDE(1, 1, dim=2, hidden=4, depth=bad)
    copies = (Vh.clone(), ch.clone())
    neural_solve(h0, W, Wd, b, Wout, tau, W_hidden=Vh, b_hidden=ch)
    assert torch.equal(Vh, copies[0]) and torch.equal(ch, copies[1])
