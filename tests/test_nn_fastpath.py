"""delyap.nn's lean per-step path (views of float64 contiguous tensors handed to the core, the
configuration checked once per module, the stored pass freed by autograd after the backward,
one-thread passes run on the calling thread): every input kind it distinguishes gives the
values and gradients of an independent evaluation (torch's autograd through odeint_dde on
the same steps), inputs stay untouched, and autograd's own checks still apply."""
import os

import pytest

torch = pytest.importorskip("torch")

from nn_reference import torch_field  # noqa: E402

from delyap.nn import NeuralDDE, neural_solve, odeint_dde  # noqa: E402


def _inputs(dtype, layout, seed=0, n_delays=2):
    """(h0, W, W_delay, b, W_out, tau) in `dtype`: contiguous, or W and W_out transposed views,
    W_delay a strided slice and h0 an expanded-free column slice (non-contiguous)."""
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    H, D, B = 5, 3, 6
    W, Wd, b, Wout, h0 = r(H, D), r(2 * n_delays, H, D), r(H), r(D, H) / 2, r(B, D)
    if layout == "contiguous":
        Wd = Wd[:n_delays].clone()
    else:
        W, Wout = W.T.contiguous().T, Wout.T.contiguous().T  # same values, column-major
        Wd = Wd[::2]  # every other matrix: strided
        h0 = torch.cat([h0, r(B, 1)], dim=1)[:, :D]  # rows with a stride of D + 1
        assert not (W.is_contiguous() or Wout.is_contiguous() or Wd.is_contiguous()
                    or h0.is_contiguous())
    tau = torch.tensor([0.3, 0.45][:n_delays], dtype=torch.float64)
    return [t.to(dtype).requires_grad_(True) for t in (h0, W, Wd, b, Wout, tau)]


def _reference(args, method, **kw):
    """Value and gradients (loss Σ sin y) by torch's autograd through odeint_dde, float64."""
    a = [t.detach().double().requires_grad_(True) for t in args]
    y = odeint_dde(torch_field(*a[1:5]), a[0], a[5], 1.0, method=method, **kw)
    return y.detach(), torch.autograd.grad(y.sin().sum(), a)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_every_input_kind_matches_torch_autograd(dtype, layout):
    args = _inputs(dtype, layout)
    before = [t.detach().clone() for t in args]
    strides = [t.stride() for t in args]
    info: dict = {}
    y = neural_solve(*args, t_final=1.0, method="DP5", rtol=1e-5, atol=1e-7, info=info)
    grads = torch.autograd.grad(y.sin().sum(), args)
    # The same steps through torch (a wrong view, a missed transpose or a dropped stride would
    # integrate another field).
    y_ref, g_ref = _reference(args, "DP5", grid=info["t"])
    tol = dict(atol=1e-12, rtol=1e-10) if dtype == torch.float64 else dict(atol=2e-6, rtol=2e-6)
    assert y.dtype == dtype and y.shape == y_ref.shape
    torch.testing.assert_close(y.double(), y_ref, **tol)
    for g, gr, t in zip(grads, g_ref, args):
        assert g.dtype == dtype and g.shape == t.shape
        torch.testing.assert_close(g.double(), gr, **tol)
    # Inputs untouched: values, layout; and the outputs alias none of them.
    for t, t0, s in zip(args, before, strides):
        assert torch.equal(t.detach(), t0) and t.stride() == s and t.dtype == dtype
    with torch.no_grad():
        y.add_(1.0)
        for g in grads:
            g.add_(1.0)
    for t, t0 in zip(args, before):
        assert torch.equal(t.detach(), t0)


def test_module_learnable_delays_match_torch_autograd_over_steps():
    # The module's path (configuration checked once, tau checked per step): three training
    # steps of a float64 module with two learnable delays; at each, the parameters' gradients
    # equal torch's autograd through odeint_dde on the module's own tensors.
    torch.manual_seed(5)
    model = NeuralDDE(2, 1, dim=3, hidden=6, tau=[0.3, 0.5], n_delays=2, learn_tau=True,
                      max_delay=1.0, method="RK4", dt=0.125, augment=1).double()
    x = torch.randn(7, 2, dtype=torch.float64)
    x0 = x.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        loss = model(x).pow(2).sum()
        loss.backward()
        # Reference: the same module evaluated through torch (odeint_dde on the same grid).
        params = dict(model.named_parameters())
        h0 = model.initial_state(x)
        hT = odeint_dde(torch_field(model.W, model.W_delay, model.b, model.W_out), h0, model.tau,
                        1.0, method="RK4", dt=0.125)
        ref = torch.autograd.grad(model.readout(hT).pow(2).sum(), list(params.values()))
        torch.testing.assert_close(loss, model.readout(hT).pow(2).sum(), atol=1e-12, rtol=0)
        for (name, p), r in zip(params.items(), ref):
            torch.testing.assert_close(p.grad, r, atol=1e-10, rtol=1e-10, msg=name)
        opt.step()
    assert torch.equal(x, x0)


def test_autograd_checks_still_apply():
    args = _inputs(torch.float64, "contiguous")
    # A weight modified in place between forward and backward: autograd refuses (the backward
    # reads the forward's weights through views, which would silently see the new values).
    y = neural_solve(*args, method="RK4", dt=0.1)
    with torch.no_grad():
        args[1].mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    # retain_graph keeps the stored pass for a second backward (same gradients); without it
    # the pass is freed and a second backward is refused.
    args = _inputs(torch.float64, "contiguous", seed=1)
    y = neural_solve(*args, method="RK4", dt=0.1)
    g1 = torch.autograd.grad(y.sum(), args, retain_graph=True)
    g2 = torch.autograd.grad(y.sum(), args)
    for a, c in zip(g1, g2):
        assert torch.equal(a, c)
    with pytest.raises(RuntimeError, match="second time"):
        torch.autograd.grad(y.sum(), args)
    # Inputs that need no gradient get none.
    h0, W, Wd, b, Wout, tau = _inputs(torch.float64, "contiguous", seed=2)
    tau = tau.detach()
    y = neural_solve(h0, W, Wd, b, Wout, tau, method="RK4", dt=0.1)
    y.sum().backward()
    assert tau.grad is None and W.grad is not None


def test_module_checks_still_name_the_argument():
    model = NeuralDDE(2, 1, dim=2, hidden=4, tau=0.5, method="RK4", dt=0.1).double()
    h0 = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="mixed dtypes"):
        model.solve(h0.float())
    with pytest.raises(ValueError, match="h0"):
        model.solve(h0[0])
    with pytest.raises(TypeError, match="h0"):
        model.solve(h0.numpy())
    with torch.no_grad():
        model.tau.fill_(-0.5)  # a buffer changed after construction: checked per step
    with pytest.raises(ValueError, match="tau"):
        model.solve(h0)
    with torch.no_grad():
        model.tau.fill_(float("nan"))
    with pytest.raises(ValueError, match="tau"):
        model.solve(h0)
    with torch.no_grad():
        model.tau.fill_(0.5)
    with pytest.raises(ValueError, match="grid"):
        model.solve(h0, grid=[0.0, 0.5, 0.9])
    weights = [p.detach() for p in (model.W, model.W_delay, model.b, model.W_out, model.tau)]
    # The configuration check is cached per configuration: each bad one still raises, every
    # time, and an unhashable one is named rather than failing the cache lookup.
    for _ in range(2):
        with pytest.raises(ValueError, match="method"):
            neural_solve(h0, *weights, method="RK5", dt=0.1)
        with pytest.raises(ValueError, match="method"):
            neural_solve(h0, *weights, method=["RK4"], dt=0.1)
        with pytest.raises(ValueError, match="activation"):
            neural_solve(h0, *weights, activation=["tanh"], method="RK4", dt=0.1)
        with pytest.raises(ValueError, match="dt"):
            neural_solve(h0, *weights, method="RK4", dt=-0.1)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _train_step(model, x):
    model.zero_grad()
    model(x).pow(2).sum().backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux /proc needed")
def test_pooled_pass_memory_is_reused_and_never_leaks_stale_values():
    # The pass's large arrays (states, stages, activations, adjoints: ≈ 9 MB per step here)
    # come from a pool that keeps freed buffers for the next pass, uninitialised. Two models of
    # different sizes, fixed-step and adaptive, alternate: each one's gradients are
    # bit-identical every time (a stale value read from a reused buffer would change them),
    # and memory stays flat (a pool that leaked would grow by megabytes per step).
    torch.manual_seed(0)
    rk4 = NeuralDDE(3, 1, dim=8, hidden=32, tau=0.5, method="RK4", dt=0.02, threads=1).double()
    dp5 = NeuralDDE(3, 1, dim=5, hidden=24, tau=0.3, rtol=1e-7, threads=1).double()
    x = torch.randn(256, 3, dtype=torch.float64)
    first = [_train_step(m, x) for m in (rk4, dp5)]
    for _ in range(3):  # the pool's steady state
        for m in (rk4, dp5):
            _train_step(m, x)
    before = _rss_mib()
    for _ in range(15):
        for m, ref in zip((rk4, dp5), first):
            for g, r in zip(_train_step(m, x), ref):
                assert torch.equal(g, r)
    assert _rss_mib() - before < 8.0
