"""delyap.nn: the C++ neural DDE / ODE pass and its discrete adjoint, against independent
references written here (an explicit ResNet / DenseResNet, delyap.solve_dde on a Python
right-hand side, torch autograd through the torch path, finite differences)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_reference import torch_field  # noqa: E402

import delyap  # noqa: E402
from delyap.nn import NeuralDDE, NeuralODE, neural_solve, odeint_dde  # noqa: E402


def _weights(dim, hidden, n_delays, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return (scale * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_(True)

    return (r(hidden, dim), r(n_delays, hidden, dim), r(hidden), r(dim, hidden))


@pytest.mark.parametrize("method,kw", [("RK4", {"dt": 0.1}), ("DP5", {})])
def test_gradcheck_all_parameter_groups_two_delays(method, kw):
    # Every input of the pass (h0, W, W_k, b, W_out, τ) against central differences of the
    # forward pass with its step sequence fixed: RK4 on n·dt; DP5 on the steps an adaptive pass
    # chose for other delays (so no read sits on a step boundary, where the pass is only
    # one-sidedly differentiable in τ).
    W, Wd, b, Wout = _weights(2, 3, 2, seed=1, scale=0.8)
    h0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(2),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.23, 0.37], dtype=torch.float64, requires_grad=True)
    grid = None
    if method == "DP5":
        info = {}
        neural_solve(h0, W, Wd, b, Wout, torch.tensor([0.21, 0.33], dtype=torch.float64),
                     t_final=0.8, method="DP5", rtol=1e-4, atol=1e-6, info=info)
        grid = info["t"]
        assert len(grid) > 4

    def fn(h0, W, Wd, b, Wout, tau):
        return neural_solve(h0, W, Wd, b, Wout, tau, t_final=0.8, method=method, grid=grid,
                            **kw)

    assert torch.autograd.gradcheck(fn, (h0, W, Wd, b, Wout, tau), eps=1e-6, atol=1e-7,
                                     rtol=1e-5)


@pytest.mark.parametrize("activation", ["sigmoid", "softplus"])
def test_gradcheck_other_activations(activation):
    W, Wd, b, Wout = _weights(2, 4, 1, seed=3)
    h0 = torch.randn(2, 2, generator=torch.Generator().manual_seed(4),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)

    def fn(*a):
        return neural_solve(*a, activation=activation, t_final=1.0, method="RK4", dt=0.125)

    assert torch.autograd.gradcheck(fn, (h0, W, Wd, b, Wout, tau), eps=1e-6, atol=1e-7)


def test_forward_matches_solve_dde():
    # The same vector field through delyap.solve_dde with a Python right-hand side.
    dim, hidden = 3, 5
    W, Wd, b, Wout = (p.detach() for p in _weights(dim, hidden, 2, seed=5))
    tau = [0.3, 0.55]
    h0 = torch.randn(4, dim, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    y = neural_solve(h0, W, Wd, b, Wout, torch.tensor(tau, dtype=torch.float64), t_final=2.0,
                     method="DP5", rtol=1e-11, atol=1e-13).numpy()
    Wn, Wdn, bn, Won = W.numpy(), Wd.numpy(), b.numpy(), Wout.numpy()

    def f(t, x, xd):
        z = x @ Wn.T + bn + xd[:, 0] @ Wdn[0].T + xd[:, 1] @ Wdn[1].T
        return np.tanh(z) @ Won.T

    sys = delyap.rhs.python(f, dim, tau, batch_size=4)
    sol = delyap.solve_dde(sys, h0.numpy(), (0.0, 2.0), rtol=1e-11, atol=1e-13)
    assert sol.t[-1] == 2.0
    ref = np.asarray(sol.y)[:, -1, :]  # (batch, time, dim)
    np.testing.assert_allclose(y, ref, atol=1e-8, rtol=0)
    assert np.abs(y - h0.numpy()).max() > 0.1  # a non-trivial flow


def test_euler_is_a_resnet_and_a_dense_resnet():
    # Euler with dt = T/L: the L-layer ResNet (no delays) and, with τ_k = m_k·dt, the
    # DenseResNet whose skip connections reach m_k layers back (h_l = h_0 for l < 0).
    L, T = 10, 1.0
    dt = T / L
    W, Wd, b, Wout = (p.detach() for p in _weights(2, 6, 2, seed=7))
    h0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    ode = neural_solve(h0, W, Wd[:0], b, Wout, torch.zeros(0, dtype=torch.float64),
                       t_final=T, method="Euler", dt=dt)
    h = h0
    for _ in range(L):
        h = h + dt * torch.tanh(h @ W.T + b) @ Wout.T
    torch.testing.assert_close(ode, h, atol=1e-13, rtol=0)

    m = (2, 3)
    dde = neural_solve(h0, W, Wd, b, Wout, torch.tensor([m[0] * dt, m[1] * dt],
                       dtype=torch.float64), t_final=T, method="Euler", dt=dt)
    hs = [h0]
    for layer in range(L):
        z = hs[layer] @ W.T + b
        for k in range(2):
            z = z + hs[max(layer - m[k], 0)] @ Wd[k].T
        hs.append(hs[layer] + dt * torch.tanh(z) @ Wout.T)
    torch.testing.assert_close(dde, hs[-1], atol=1e-12, rtol=0)


def test_small_tau_converges_to_the_ode_linearly():
    # As τ → 0, h(t − τ) → h(t): the DDE tends to the ODE with weight W + Σ_k W_k, at O(τ).
    W, Wd, b, Wout = (p.detach() for p in _weights(2, 4, 1, seed=9))
    h0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    kw = dict(t_final=1.0, method="DP5", rtol=1e-10, atol=1e-12)
    ref = neural_solve(h0, W + Wd[0], Wd[:0], b, Wout, torch.zeros(0, dtype=torch.float64), **kw)
    errs = [float((neural_solve(h0, W, Wd, b, Wout, torch.tensor([tau], dtype=torch.float64),
                                **kw) - ref).abs().max()) for tau in (1e-2, 1e-3)]
    assert errs[1] < errs[0] < 0.1
    assert 5 < errs[0] / errs[1] < 20  # first order in τ


def test_module_ode_equals_dde_with_zero_delay_weights():
    torch.manual_seed(11)
    ode = NeuralODE(3, 2, dim=4, hidden=8, rtol=1e-9, atol=1e-11).double()
    dde = NeuralDDE(3, 2, dim=4, hidden=8, tau=0.4, rtol=1e-9, atol=1e-11).double()
    dde.load_state_dict({**ode.state_dict(), "W_delay": torch.zeros(1, 8, 4),
                         "tau": torch.tensor([0.4])}, strict=True)
    x = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(dde(x), ode(x), atol=1e-7, rtol=0)


def test_torch_path_matches_builtin_values_and_gradients():
    # odeint_dde with the built-in field written in torch: the same pass, and torch's autograd
    # through its stages gives the C++ adjoint's gradients (τ included), for RK4 and a DP5
    # step sequence.
    W, Wd, b, Wout = _weights(2, 5, 2, seed=12)
    h0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(13),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.25, 0.4], dtype=torch.float64, requires_grad=True)
    params = (h0, W, Wd, b, Wout, tau)
    info = {}
    neural_solve(h0, W, Wd, b, Wout, torch.tensor([0.2, 0.35], dtype=torch.float64),
                 t_final=1.0, method="DP5", rtol=1e-5, atol=1e-7, info=info)
    for method, kw in (("RK4", dict(dt=0.1)), ("DP5", dict(grid=info["t"]))):
        y1 = neural_solve(h0, W, Wd, b, Wout, tau, t_final=1.0, method=method, **kw)
        g1 = torch.autograd.grad(y1.pow(2).sum(), params)
        y2 = odeint_dde(torch_field(W, Wd, b, Wout), h0, tau, 1.0, method=method, **kw)
        g2 = torch.autograd.grad(y2.pow(2).sum(), params)
        torch.testing.assert_close(y1, y2, atol=1e-12, rtol=0)
        for a, c in zip(g1, g2):
            torch.testing.assert_close(a, c, atol=1e-10, rtol=1e-10)


def test_float32_module_and_learnable_tau_trains():
    torch.manual_seed(14)
    model = NeuralDDE(1, 1, dim=2, hidden=16, tau=0.5, learn_tau=True, max_delay=2.0,
                      method="RK4", dt=0.125)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    y = x ** 2
    assert model(x).dtype == torch.float32
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    tau0 = float(model.tau.detach())
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        assert model.tau.grad is not None and model.tau.grad.dtype == torch.float32
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    assert float(model.tau.detach()) != tau0


def test_bad_inputs_raise_named_errors():
    model = NeuralDDE(3, 1, dim=2, hidden=4, tau=0.5, learn_tau=True, max_delay=1.0,
                      method="RK4", dt=0.1).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="in_features"):
        model(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="dtype"):
        model(x.float())
    with pytest.raises(ValueError, match="x: on meta, but the module's parameters are on cpu"):
        model(x.to("meta"))
    with torch.no_grad():
        model.tau.fill_(1.5)
    with pytest.raises(ValueError, match="max_delay"):
        model(x)
    with pytest.raises(ValueError, match="tau"):
        NeuralDDE(3, 1, dim=2, hidden=4, tau=-0.1)
    with pytest.raises(ValueError, match="max_delay"):
        NeuralDDE(3, 1, dim=2, hidden=4, tau=2.0, learn_tau=True, max_delay=1.0)
    with pytest.raises(ValueError, match="dt"):
        NeuralDDE(3, 1, dim=2, hidden=4, tau=0.05, method="RK4", dt=0.1).double()(x)
    with pytest.raises(ValueError, match="dt"):
        NeuralDDE(3, 1, dim=2, hidden=4, method="RK4")
    with pytest.raises(ValueError, match="activation"):
        NeuralDDE(3, 1, dim=2, hidden=4, activation="gelu")
    h0 = torch.zeros(2, 2, dtype=torch.float64)
    W, Wd, b, Wout = (p.detach() for p in _weights(2, 3, 1, seed=0))
    with pytest.raises(TypeError, match="mixed dtypes"):
        neural_solve(h0.float(), W, Wd, b, Wout, torch.tensor([0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="tau"):
        neural_solve(h0, W, Wd, b, Wout, torch.tensor([0.0], dtype=torch.float64))
    # Inputs are never modified.
    x_copy = x.clone()
    NeuralDDE(3, 1, dim=2, hidden=4, tau=0.5).double()(x)
    assert torch.equal(x, x_copy)


def test_blas_and_eigen_layer_products_agree():
    # The layer GEMMs run through scipy's BLAS when present, else Eigen: the same pass.
    from delyap import _core

    rng = np.random.default_rng(15)
    D, H = 3, 7
    W, Wd = rng.standard_normal((H, D)), rng.standard_normal((2, H, D))
    b, Wo = rng.standard_normal(H), rng.standard_normal((D, H))
    h0, tau = rng.standard_normal((9, D)), np.array([0.3, 0.45])
    res: list = []
    for blas in (False, True):
        # The second pass replays the first one's steps (an adaptive controller's choices
        # differ at rounding level between two products).
        grid = res[0][0] if res else None
        out = _core.neural_forward(h0, W, Wd, b, Wo, tau, 0, _core.Method.DP5, 1.0, 1e-6, 1e-8,
                                   0.0, grid, 10**6, 2, blas)
        g = _core.neural_backward(W, Wd, b, Wo, tau, 0, _core.Method.DP5, out["t"], out["X"],
                                  out["K"], np.ones((9, D)), 2, blas)
        res.append((out["t"], out["y"], g))
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=0, atol=1e-12)
    for name in ("h0", "W", "W_delay", "b", "W_out", "tau"):
        np.testing.assert_allclose(res[0][2][name], res[1][2][name], rtol=1e-11, atol=1e-12)


def test_thread_count_does_not_change_the_pass():
    # Rows are split over workers; each row's arithmetic is the same whatever the split.
    W, Wd, b, Wout = _weights(3, 8, 1, seed=16)
    h0 = torch.randn(40, 3, generator=torch.Generator().manual_seed(17),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    outs = []
    for threads in (1, 3):
        y = neural_solve(h0, W, Wd, b, Wout, tau, method="RK4", dt=0.05, threads=threads)
        outs.append((y, torch.autograd.grad(y.sum(), (h0, W, tau))))
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=1e-14, rtol=0)
    for a, c in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, c, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("dim", [3, 12])   # the small kernels and the BLAS/Eigen products
def test_threaded_adaptive_pass_takes_the_same_steps(dim):
    # The adaptive forward runs each step's stages on row blocks (uneven: 1301 rows over 1, 3
    # and 5 blocks; a block gets at least 16384 activations, 1301 × 64 allows 5) and decides
    # the step from the max over all blocks: the step sequence, the rejections, the outputs
    # and the gradients must not depend on the cut.
    W, Wd, b, Wout = _weights(dim, 64, 2, seed=18, scale=0.8)
    h0 = torch.randn(1301, dim, generator=torch.Generator().manual_seed(19),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.2, 0.45], dtype=torch.float64, requires_grad=True)
    runs = []
    for threads in (1, 3, 5):
        info: dict = {}
        y = neural_solve(h0, W, Wd, b, Wout, tau, method="DP5", rtol=1e-7, atol=1e-9,
                         threads=threads, info=info)
        runs.append((info, y, torch.autograd.grad(y.sum(), (h0, W, Wd, tau))))
    (i1, y1, g1) = runs[0]
    assert len(i1["t"]) > 5 and i1["rejected"] >= 0
    for info, y, g in runs[1:]:
        np.testing.assert_array_equal(info["t"], i1["t"])
        assert info["rejected"] == i1["rejected"]
        torch.testing.assert_close(y, y1, atol=1e-13, rtol=0)
        for a, c in zip(g, g1):
            torch.testing.assert_close(a, c, atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("act", [0, 1, 2, 3])
def test_stored_activations_give_the_recomputed_gradients(act):
    # A fixed-step forward may keep the activations for the backward (within a byte budget);
    # the backward then reads them (σ' from σ) instead of recomputing: the same gradients, to
    # rounding, for every activation (softplus keeps none: σ' from σ would cancel). A budget
    # too small keeps none either. Two delays and threads over rows exercise the indexing.
    from delyap import _core

    rng = np.random.default_rng(18)
    D, H, B = 3, 6, 11
    W, Wd = rng.standard_normal((H, D)), rng.standard_normal((2, H, D))
    b, Wo = rng.standard_normal(H), rng.standard_normal((D, H))
    h0, tau = rng.standard_normal((B, D)), np.array([0.3, 0.45])
    lam = rng.standard_normal((B, D))
    grads = []
    for budget in (0.0, 1e9):
        out = _core.neural_forward(h0, W, Wd, b, Wo, tau, act, _core.Method.RK4, 1.0, 1e-6,
                                   1e-8, 0.1, None, 10**6, 2, activation_bytes=budget)
        kept = out["A"] is not None
        assert kept == (budget > 0 and act != 2)
        if kept:
            assert out["A"].shape == (10, 4, 1, B, H)  # (steps, stages, layers, batch, H)
        grads.append(_core.neural_backward(W, Wd, b, Wo, tau, act, _core.Method.RK4, out["t"],
                                           out["X"], out["K"], lam, 2, A=out["A"]))
    assert _core.neural_forward(h0, W, Wd, b, Wo, tau, act, _core.Method.RK4, 1.0, 1e-6, 1e-8,
                                0.1, None, 10**6, 2, activation_bytes=8.0)["A"] is None
    for name in ("h0", "W", "W_delay", "b", "W_out", "tau"):
        np.testing.assert_allclose(grads[1][name], grads[0][name], rtol=1e-13, atol=1e-13)


def test_stored_activations_are_checked():
    from delyap import _core

    rng = np.random.default_rng(19)
    W, Wd, b, Wo = (rng.standard_normal(s) for s in ((4, 2), (1, 4, 2), (4,), (2, 4)))
    tau, h0 = np.array([0.5]), rng.standard_normal((5, 2))
    out = _core.neural_forward(h0, W, Wd, b, Wo, tau, 0, _core.Method.RK4, 1.0, 1e-6, 1e-8,
                               0.1, None, 10**6, 1, activation_bytes=1e9)
    args = (W, Wd, b, Wo, tau, 0, _core.Method.RK4, out["t"], out["X"], out["K"], h0, 1)
    with pytest.raises(ValueError, match="A"):
        _core.neural_backward(*args, A=out["A"][:, :, :, :4])
    with pytest.raises(ValueError, match="A"):
        _core.neural_backward(*args[:5], 2, *args[6:], A=out["A"])


@pytest.mark.parametrize("D,H,nd", [(1, 5, 1), (2, 32, 1), (3, 7, 2), (4, 41, 0), (5, 17, 1),
                                    (8, 70, 2), (9, 12, 1)])
def test_small_dim_kernels_match_the_gemm_path(D, H, nd):
    # At dim <= 8 the layer products run through delyap's own kernels (small_gemm.hpp), with a
    # fused tanh; small_kernels=False takes BLAS / Eigen GEMMs and the separate activation.
    # Forward values and every gradient agree to rounding, for every activation, stored and
    # recomputed activations, and the adaptive method (widths with and without a tail past a
    # multiple of the vector width; D = 9 exercises the fallback, where both are the GEMMs).
    from delyap import _core

    rng = np.random.default_rng(20 + D)
    B = 13
    W, Wd = rng.standard_normal((H, D)), rng.standard_normal((nd, H, D))
    b, Wo = rng.standard_normal(H), rng.standard_normal((D, H)) / H ** 0.5
    h0, tau = rng.standard_normal((B, D)), np.array([0.3, 0.45][:nd])
    lam = rng.standard_normal((B, D))
    cases = [(act, _core.Method.RK4, 0.1, 1e9) for act in (0, 1, 2, 3)]
    cases += [(0, _core.Method.RK4, 0.1, 0.0), (0, _core.Method.DP5, 0.0, 0.0)]
    for act, method, dt, budget in cases:
        res: list = []
        for small in (False, True):
            grid = res[0][0] if res else None  # replay the first pass's steps
            out = _core.neural_forward(h0, W, Wd, b, Wo, tau, act, method, 1.0, 1e-6, 1e-8, dt,
                                       grid, 10**6, 1, activation_bytes=budget,
                                       small_kernels=small)
            g = _core.neural_backward(W, Wd, b, Wo, tau, act, method, out["t"], out["X"],
                                      out["K"], lam, 1, A=out["A"], small_kernels=small)
            res.append((out["t"], out["y"], g))
        scale = np.abs(res[0][1]).max()
        np.testing.assert_allclose(res[1][1], res[0][1], rtol=0, atol=1e-13 * scale)
        for name in ("h0", "W", "W_delay", "b", "W_out", "tau"):
            ref = res[0][2][name]
            if ref.size:
                np.testing.assert_allclose(res[1][2][name], ref, rtol=0,
                                           atol=1e-13 * np.abs(ref).max())


@pytest.mark.parametrize("act", [0, 3])
def test_adaptive_pass_keeps_activations_within_its_budget(act):
    # An adaptive forward (steps unknown ahead) keeps the activations of as many steps as the
    # budget holds; a pass that takes more steps keeps none. Either way the backward gives the
    # gradients of the recomputing backward (same step sequence, same arithmetic).
    from delyap import _core

    rng = np.random.default_rng(21)
    D, H, B = 2, 16, 9
    W, Wd = rng.standard_normal((H, D)), rng.standard_normal((1, H, D))
    b, Wo = rng.standard_normal(H), rng.standard_normal((D, H))
    h0, tau, lam = rng.standard_normal((B, D)), np.array([0.4]), rng.standard_normal((B, D))
    per_step = 8.0 * 7 * B * H  # DP5: seven stages
    grads, kept = [], []
    for budget in (0.0, 1e9, 2.5 * per_step):
        out = _core.neural_forward(h0, W, Wd, b, Wo, tau, act, _core.Method.DP5, 1.0, 1e-7,
                                   1e-9, 0.0, None, 10**6, 1, activation_bytes=budget)
        n = len(out["t"]) - 1
        assert n > 2
        kept.append(out["A"] is not None)
        if kept[-1]:
            assert out["A"].shape == (n, 7, 1, B, H)
        grads.append(_core.neural_backward(W, Wd, b, Wo, tau, act, _core.Method.DP5, out["t"],
                                           out["X"], out["K"], lam, 1, A=out["A"]))
    assert kept == [False, True, False]
    for g in grads[1:]:
        for name in ("h0", "W", "W_delay", "b", "W_out", "tau"):
            np.testing.assert_allclose(g[name], grads[0][name], rtol=1e-13, atol=1e-13)
