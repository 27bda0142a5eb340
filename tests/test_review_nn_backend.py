"""Neural DDEs: problems a review of the torch backend found (each failed on the code before its
fix). Second derivatives through the core were silently wrong; the torch backend broadcast
mis-shaped arguments and carried a learned τ to first order only; softplus differed between the
backends above z = 20; autocast leaked into the pass; scalar arguments went unchecked."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap.nn import NeuralDDE, neural_solve, odeint_dde  # noqa: E402

F64 = torch.float64
GRID = np.linspace(0.0, 1.0, 11)


def _weights(seed=0, delays=1, B=3, D=2, H=4):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=F64)
    return r(B, D), r(H, D), r(delays, H, D), r(H), r(D, H)


def test_second_derivatives_through_the_core_raise_instead_of_dropping_terms():
    torch.manual_seed(0)
    core = NeuralDDE(2, 1, dim=2, hidden=5, tau=0.3, method="RK4", dt=0.1,
                     backend="core").double()
    x = torch.randn(4, 2, dtype=F64, requires_grad=True)
    with pytest.raises(RuntimeError, match="first order"):
        (gx,) = torch.autograd.grad(core(x).sum(), x, create_graph=True)
        (gx ** 2).sum().backward()
    # The torch backend differentiates twice: its gradient penalty against finite differences.
    ref = NeuralDDE(2, 1, dim=2, hidden=5, tau=0.3, method="RK4", dt=0.1,
                    backend="torch").double()
    ref.load_state_dict(core.state_dict())

    def penalty():
        (g,) = torch.autograd.grad(ref(x).sum(), x, create_graph=True)
        return (g ** 2).sum()
    penalty().backward()
    grad = ref.W.grad[0, 0].item()
    eps = 1e-6
    with torch.no_grad():
        ref.W[0, 0] += eps
    up = penalty().item()
    with torch.no_grad():
        ref.W[0, 0] -= 2 * eps
    down = penalty().item()
    assert grad == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("backend", ["core", "torch"])
@pytest.mark.parametrize("bad", ["b", "tau", "W_delay", "w_time", "b_hidden", "h0"])
def test_mis_shaped_arguments_raise_on_both_backends(backend, bad):
    h0, W, Wd, b, Wo = _weights(delays=2)
    tau = torch.tensor([0.3, 0.5], dtype=F64)
    extra = {}
    g = torch.Generator().manual_seed(5)
    if bad == "b":
        b = torch.randn(1, generator=g, dtype=F64)
    elif bad == "tau":
        tau = torch.tensor([0.3], dtype=F64)
    elif bad == "W_delay":
        Wd = Wd[:1]
    elif bad == "w_time":
        extra["w_time"] = torch.randn(1, generator=g, dtype=F64)
    elif bad == "b_hidden":
        extra.update(W_hidden=torch.randn(1, 4, 4, generator=g, dtype=F64),
                     b_hidden=torch.randn(1, 1, generator=g, dtype=F64))
    else:
        h0 = h0[:, :1]
    name = {"tau": "W_delay"}.get(bad, bad)   # W_delay must match the delays given
    with pytest.raises(ValueError, match=name if bad != "h0" else "W"):
        neural_solve(h0, W, Wd, b, Wo, tau, method="RK4", dt=0.1, backend=backend, **extra)


def _second_derivative_check(loss_of_tau, t0=0.437, eps=1e-5):
    tau = torch.tensor([t0], dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(loss_of_tau(tau), tau, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), tau)

    def first(t):
        tt = torch.tensor([t], dtype=F64, requires_grad=True)
        return torch.autograd.grad(loss_of_tau(tt), tt)[0].item()
    return h.item(), (first(t0 + eps) - first(t0 - eps)) / (2 * eps)


@pytest.mark.parametrize("method", ["RK4", "DP5", "BS3", "Euler"])
def test_second_derivative_in_a_learned_delay_on_the_torch_backend(method):
    """d²L/dτ² by autograd against a central difference of dL/dτ (was 0.667 against −4.245:
    the read carried τ to first order only)."""
    h0, W, Wd, b, Wo = _weights()
    auto, fd = _second_derivative_check(
        lambda tau: neural_solve(h0, W, Wd, b, Wo, tau, method=method, grid=GRID,
                                 backend="torch").pow(2).sum())
    assert auto == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_second_derivative_in_a_delay_through_odeint_dde():
    h0, W, Wd, _, _ = _weights()

    def loss(tau):
        return odeint_dde(lambda t, h, yd: torch.tanh(h @ W[:2].T + yd[:, 0] @ Wd[0, :2].T),
                          h0, tau, 1.0, method="RK4", dt=0.1).pow(2).sum()
    auto, fd = _second_derivative_check(loss)
    assert auto == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_softplus_agrees_between_backends_above_twenty():
    """Pre-activations above 20: F.softplus returns z there, the core log(1 + e^z)."""
    h0, W, Wd, b, Wo = _weights()
    b = b + 40.0
    tau = torch.tensor([0.3], dtype=F64)
    ys = [neural_solve(h0, W, Wd, b, Wo, tau, activation="softplus", method="RK4", dt=0.1,
                       backend=be) for be in ("core", "torch")]
    torch.testing.assert_close(ys[0], ys[1], rtol=1e-14, atol=1e-13)


def test_autocast_does_not_reach_the_pass():
    h0, W, Wd, b, Wo = _weights()
    tau = torch.tensor([0.3], dtype=F64)
    kw = dict(method="RK4", dt=0.1)
    plain = neural_solve(h0.float(), W.float(), Wd.float(), b.float(), Wo.float(), tau,
                         backend="torch", **kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = neural_solve(h0.float(), W.float(), Wd.float(), b.float(), Wo.float(), tau,
                            backend="torch", **kw)
        model = NeuralDDE(2, 1, dim=2, hidden=4, tau=0.3, **kw)
        y = model(torch.randn(5, 2))
    assert cast.dtype is torch.float32 and y.dtype is torch.float32
    torch.testing.assert_close(cast, plain, rtol=0, atol=0)


def test_scalar_arguments_are_checked():
    h0, W, Wd, b, Wo = _weights()
    tau = torch.tensor([0.3], dtype=F64)
    for name, value in (("max_steps", 0), ("max_steps", 2.7), ("rtol", float("inf")),
                        ("atol", float("inf")), ("threads", -3), ("threads", 2.5)):
        with pytest.raises(ValueError, match=name):
            neural_solve(h0, W, Wd, b, Wo, tau, method="DP5", **{name: value})
    with pytest.raises(ValueError, match="dt"):
        odeint_dde(lambda t, h, yd: -h, h0, [0.5], 1.0, dt=float("inf"))
    for tau0 in (np.float32(0.5), torch.tensor(0.5), np.array(0.5)):
        assert NeuralDDE(1, 1, dim=1, hidden=2, tau=tau0).tau.item() == pytest.approx(0.5)
    with pytest.raises(TypeError, match="tau"):
        NeuralDDE(1, 1, dim=1, hidden=2, tau=True)
    with pytest.raises(TypeError, match="learn_tau"):
        NeuralDDE(1, 1, dim=1, hidden=2, tau=0.5, learn_tau="no")
    with pytest.raises(ValueError, match="threads"):
        NeuralDDE(1, 1, dim=1, hidden=2, tau=0.5, threads=2.5)


@pytest.mark.parametrize("loss", ["mse", "module"])
def test_hessian_tools_on_a_core_model_take_difference_products(loss):
    """torch.func (the Hessian tools' per-sample losses and gradients) over the core's pass:
    it needs forward/setup_context apart and a vmap rule (it raised "must override the
    setup_context staticmethod"). Difference products then match the torch backend's exact
    ones; exact products through the core raise (torch.func does not honour
    once_differentiable: they gave λ_max 2.637 for 8.301)."""
    from delyap import sgd
    torch.manual_seed(0)
    core = NeuralDDE(2, 1, dim=2, hidden=4, tau=0.3, method="RK4", dt=0.1).double()
    ref = NeuralDDE(2, 1, dim=2, hidden=4, tau=0.3, method="RK4", dt=0.1,
                    backend="torch").double()
    ref.load_state_dict(core.state_dict())
    X, Y = torch.randn(16, 2, dtype=F64), torch.randn(16, 1, dtype=F64)
    crit = "mse" if loss == "mse" else torch.nn.MSELoss()
    exact = sgd.hessian_eigenvalues(ref, X, Y, tol=1e-8, loss=crit, hvp="exact")
    diff = sgd.hessian_eigenvalues(core, X, Y, tol=1e-5, loss=crit, hvp="difference")
    assert diff.values[0] == pytest.approx(exact.values[0], rel=1e-5)
    with pytest.raises(RuntimeError, match="first order"):
        sgd.hessian_eigenvalues(core, X, Y, tol=1e-8, loss=crit, hvp="exact")
    # torch.func.grad records a graph through the first-order adjoint: refused, by name.
    params = {k: v.detach() for k, v in core.named_parameters()}
    with pytest.raises(RuntimeError, match="first order"):
        torch.func.grad(lambda p: torch.func.functional_call(core, p, (X,)).sum())(params)
