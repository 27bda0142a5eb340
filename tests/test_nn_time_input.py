"""delyap.nn's optional time input (h' = W_out σ(W h + Σ_k W_k h(t − τ_k) + b + w_time·t)):
the C++ pass and its adjoint against independent references written here (finite
differences, delyap.solve_dde on a Python right-hand side, torch autograd through
odeint_dde, an explicit time-dependent ResNet) and against its own other code paths."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_reference import torch_field  # noqa: E402

import delyap  # noqa: E402
from delyap import _core  # noqa: E402
from delyap.nn import NeuralDDE, NeuralODE, neural_solve, odeint_dde  # noqa: E402


def _weights(dim, hidden, n_delays, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return (scale * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_(True)

    return r(hidden, dim), r(n_delays, hidden, dim), r(hidden), r(dim, hidden), r(hidden)


def _dp5_grid(h0, W, Wd, b, Wout, wt, tau, t_final):
    """The steps of an adaptive pass for other delays: no read of the checked pass sits on a
    step boundary (where it is only one-sidedly differentiable in τ)."""
    info: dict = {}
    neural_solve(h0, W, Wd, b, Wout, tau, t_final=t_final, method="DP5", rtol=1e-4,
                 atol=1e-6, info=info, w_time=wt)
    return info["t"]


@pytest.mark.parametrize("method", ["RK4", "DP5"])
def test_gradcheck_every_parameter_group_with_time_input(method):
    W, Wd, b, Wout, wt = _weights(2, 3, 2, seed=1, scale=0.8)
    with torch.no_grad():
        wt.mul_(2.0)  # a time input that moves the pre-activations by O(1) over [0, T]
    h0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(2),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.23, 0.37], dtype=torch.float64, requires_grad=True)
    kw: dict = {"dt": 0.1}
    if method == "DP5":
        kw = {"grid": _dp5_grid(h0, W, Wd, b, Wout, wt,
                                torch.tensor([0.21, 0.33], dtype=torch.float64), 0.8)}
        assert len(kw["grid"]) > 4

    def fn(h0, W, Wd, b, Wout, tau, wt):
        return neural_solve(h0, W, Wd, b, Wout, tau, t_final=0.8, method=method, w_time=wt,
                            **kw)

    assert torch.autograd.gradcheck(fn, (h0, W, Wd, b, Wout, tau, wt), eps=1e-6, atol=1e-7,
                                    rtol=1e-5)


def test_forward_with_time_input_matches_solve_dde():
    dim, hidden = 3, 5
    W, Wd, b, Wout, wt = (p.detach() for p in _weights(dim, hidden, 2, seed=5))
    tau = [0.3, 0.55]
    h0 = torch.randn(4, dim, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y = neural_solve(h0, W, Wd, b, Wout, torch.tensor(tau, dtype=torch.float64), t_final=2.0,
                     method="DP5", rtol=1e-11, atol=1e-13, w_time=wt).numpy()
    Wn, Wdn, bn, Won, wtn = W.numpy(), Wd.numpy(), b.numpy(), Wout.numpy(), wt.numpy()

    def f(t, x, xd):
        z = x @ Wn.T + bn + wtn * t + xd[:, 0] @ Wdn[0].T + xd[:, 1] @ Wdn[1].T
        return np.tanh(z) @ Won.T

    sol = delyap.solve_dde(delyap.rhs.python(f, dim, tau, batch_size=4), h0.numpy(), (0.0, 2.0),
                           rtol=1e-11, atol=1e-13)
    ref = np.asarray(sol.y)[:, -1, :]
    np.testing.assert_allclose(y, ref, atol=1e-8, rtol=0)
    # The time input matters: without it the flow ends elsewhere.
    y0 = neural_solve(h0, W, Wd, b, Wout, torch.tensor(tau, dtype=torch.float64), t_final=2.0,
                      method="DP5", rtol=1e-11, atol=1e-13).numpy()
    assert np.abs(y - y0).max() > 0.05


def test_torch_path_gives_the_adjoints_gradients_with_time_input():
    # torch's autograd through odeint_dde on the same field and steps: the C++ discrete
    # adjoint's gradients, w_time's included, for RK4 and a DP5 step sequence.
    W, Wd, b, Wout, wt = _weights(2, 5, 2, seed=12)
    h0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(13),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.25, 0.4], dtype=torch.float64, requires_grad=True)
    params = (h0, W, Wd, b, Wout, tau, wt)
    grid = _dp5_grid(h0, W, Wd, b, Wout, wt, torch.tensor([0.2, 0.35], dtype=torch.float64),
                     1.0)
    for method, kw in (("RK4", dict(dt=0.1)), ("DP5", dict(grid=grid))):
        y1 = neural_solve(h0, W, Wd, b, Wout, tau, t_final=1.0, method=method, w_time=wt, **kw)
        g1 = torch.autograd.grad(y1.pow(2).sum(), params)
        y2 = odeint_dde(torch_field(W, Wd, b, Wout, wt=wt), h0, tau, 1.0, method=method, **kw)
        g2 = torch.autograd.grad(y2.pow(2).sum(), params)
        torch.testing.assert_close(y1, y2, atol=1e-12, rtol=0)
        for a, c in zip(g1, g2):
            torch.testing.assert_close(a, c, atol=1e-10, rtol=1e-10)
        assert float(g1[-1].abs().max()) > 1e-3  # a gradient that a dropped term would zero


def test_euler_with_time_input_is_a_resnet_with_layer_dependent_biases():
    # Euler with dt = T/L: layer l of the ResNet has the bias b + w_time·l·dt.
    L, T = 10, 1.0
    dt = T / L
    W, Wd, b, Wout, wt = (p.detach() for p in _weights(2, 6, 0, seed=7))
    h0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    y = neural_solve(h0, W, Wd, b, Wout, torch.zeros(0, dtype=torch.float64), t_final=T,
                     method="Euler", dt=dt, w_time=wt)
    h = h0
    for layer in range(L):
        h = h + dt * torch.tanh(h @ W.T + b + wt * (layer * dt)) @ Wout.T
    torch.testing.assert_close(y, h, atol=1e-13, rtol=0)


@pytest.mark.parametrize("D,H,nd", [(2, 32, 1), (3, 7, 2), (9, 12, 1)])
def test_time_input_on_every_code_path(D, H, nd):
    # The small kernels (dim ≤ 8) and the BLAS/Eigen GEMMs, stored and recomputed
    # activations, one and three threads over the rows: the same values and gradients; and
    # the w_time gradient of the adjoint equals Σ over stages of t·(the stage's bias gradient)
    # as finite differences see it (checked through one direction: d/dε of the loss along
    # w_time's gradient).
    rng = np.random.default_rng(30 + D)
    B = 41  # three threads get three row chunks (≥ 8 rows each)
    W, Wd = rng.standard_normal((H, D)), rng.standard_normal((nd, H, D))
    b, Wo = rng.standard_normal(H), rng.standard_normal((D, H)) / H ** 0.5
    wt = rng.standard_normal(H)
    h0, tau = rng.standard_normal((B, D)), np.array([0.3, 0.45][:nd])
    lam = rng.standard_normal((B, D))
    res = []
    for small, budget, threads in ((False, 0.0, 1), (True, 1e9, 1), (True, 0.0, 3)):
        out = _core.neural_forward(h0, W, Wd, b, Wo, tau, 0, _core.Method.RK4, 1.0, 1e-6, 1e-8,
                                   0.1, None, 10**6, threads, activation_bytes=budget,
                                   small_kernels=small, w_time=wt)
        g = _core.neural_backward(W, Wd, b, Wo, tau, 0, _core.Method.RK4, out["t"], out["X"],
                                  out["K"], lam, threads, A=out["A"], small_kernels=small,
                                  w_time=wt)
        res.append((out["y"], g))
    for y, g in res[1:]:
        np.testing.assert_allclose(y, res[0][0], rtol=0, atol=1e-13 * np.abs(y).max())
        for name in ("h0", "W", "W_delay", "b", "W_out", "tau", "w_time"):
            ref = res[0][1][name]
            if ref.size:
                np.testing.assert_allclose(g[name], ref, rtol=0, atol=1e-12 * np.abs(ref).max())

    def loss(w):
        y = _core.neural_forward(h0, W, Wd, b, Wo, tau, 0, _core.Method.RK4, 1.0, 1e-6, 1e-8,
                                 0.1, None, 10**6, 1, w_time=w)["y"]
        return float(np.sum(lam * y))

    gw = res[0][1]["w_time"]
    d = gw / np.linalg.norm(gw)
    eps = 1e-5
    fd = (loss(wt + eps * d) - loss(wt - eps * d)) / (2 * eps)
    assert fd == pytest.approx(float(gw @ d), rel=1e-7)
    # Without a time input there is no w_time gradient.
    out = _core.neural_forward(h0, W, Wd, b, Wo, tau, 0, _core.Method.RK4, 1.0, 1e-6, 1e-8, 0.1,
                               None, 10**6, 1)
    assert _core.neural_backward(W, Wd, b, Wo, tau, 0, _core.Method.RK4, out["t"], out["X"],
                                 out["K"], lam, 1)["w_time"] is None


def test_module_with_time_input_trains_and_defaults_off():
    torch.manual_seed(3)
    plain = NeuralODE(1, 1, dim=2, hidden=16, method="RK4", dt=0.1)
    assert plain.w_time is None and "w_time" not in dict(plain.named_parameters())
    model = NeuralDDE(1, 1, dim=2, hidden=16, tau=0.3, method="RK4", dt=0.1,
                      time_input=True).double()
    assert model.w_time is not None and model.w_time.shape == (16,)
    assert "time_input=True" in repr(model)
    x = torch.linspace(-1, 1, 32, dtype=torch.float64).unsqueeze(1)
    y = torch.sin(3 * x)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        assert model.w_time.grad is not None and float(model.w_time.grad.abs().max()) > 0
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    # With w_time = 0 the module is the autonomous one with the same weights.
    auto = NeuralDDE(1, 1, dim=2, hidden=16, tau=0.3, method="RK4", dt=0.1).double()
    state = {k: v for k, v in model.state_dict().items() if k != "w_time"}
    auto.load_state_dict(state)
    with torch.no_grad():
        model.w_time.zero_()
    torch.testing.assert_close(model(x), auto(x), atol=0, rtol=0)


def test_time_input_is_checked_and_reaches_the_other_tools():
    from delyap.geometry import _neural_map

    W, Wd, b, Wout, wt = (p.detach() for p in _weights(2, 4, 1, seed=0))
    h0 = torch.zeros(2, 2, dtype=torch.float64)
    tau = torch.tensor([0.5], dtype=torch.float64)
    with pytest.raises(ValueError, match="w_time"):
        neural_solve(h0, W, Wd, b, Wout, tau, w_time=wt[:3])
    with pytest.raises(TypeError, match="w_time"):
        neural_solve(h0, W, Wd, b, Wout, tau, w_time=wt.float())
    wt_copy = wt.clone()
    neural_solve(h0, W, Wd, b, Wout, tau, w_time=wt)
    assert torch.equal(wt, wt_copy)
    # geometry's torch replica of a module (used for critical points) and memory_capacity
    # include the time input.
    torch.manual_seed(4)
    model = NeuralODE(1, 1, dim=2, hidden=8, method="RK4", dt=0.05, time_input=True).double()
    with torch.no_grad():
        model.w_time.mul_(3.0)
    x = torch.linspace(-1, 1, 7, dtype=torch.float64).unsqueeze(1)
    torch.testing.assert_close(_neural_map(model, x.numpy())(x), model(x), atol=1e-12, rtol=0)
    cap = model.memory_capacity()
    assert 0 < cap.K_empirical <= cap.K_upper
