"""Review checks of delyap.nn's time input, stacked hidden layers and pooled pass storage, in the
corners the feature tests leave out: every activation with depth (softplus keeps no
activations, ReLU and the sigmoid take σ' from stored values) on adaptive passes whose
activations are kept, against torch's autograd through odeint_dde on the same steps; row
blocks that really run on several threads (the feature tests' batch of 13 gives one chunk:
at least 8 rows per thread); the adaptive pass's activation room sized with the layers;
float32 modules; argument names in errors; depth-1 modules' state_dict unchanged."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_reference import torch_field  # noqa: E402

from delyap import _core  # noqa: E402
from delyap.nn import NeuralDDE, NeuralODE, neural_solve, odeint_dde  # noqa: E402

# softplus exactly, log(1 + e^z): torch's F.softplus returns z above z = 20 (off by e^-20).
ACTS = {"tanh": torch.tanh, "relu": torch.relu,
        "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)), "sigmoid": torch.sigmoid}
GRAD_NAMES = ("h0", "W", "W_delay", "b", "W_out", "tau", "W_hidden", "b_hidden", "w_time")


def _weights(dim, hidden, n_delays, n_stack, seed):
    g = torch.Generator().manual_seed(seed)

    def r(*s, sc=1.0):
        return (sc * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_(True)

    return (r(hidden, dim), r(n_delays, hidden, dim), r(hidden), r(dim, hidden),
            r(n_stack, hidden, hidden, sc=hidden ** -0.5), r(n_stack, hidden), r(hidden))


@pytest.mark.parametrize("act", sorted(ACTS))
@pytest.mark.parametrize("n_delays,dim,method", [(0, 2, "DP5"), (2, 9, "DP5"), (2, 3, "BS3")])
def test_adaptive_stacked_pass_with_time_input_matches_torch_autograd(act, n_delays, dim,
                                                                      method):
    # The adaptive forward keeps every layer's activations (room sized with the layers) except
    # for softplus; its adjoint must give torch's gradients through the same steps.
    W, Wd, b, Wout, Vh, ch, wt = _weights(dim, 6, n_delays, 2, seed=3)
    h0 = torch.randn(7, dim, generator=torch.Generator().manual_seed(4),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.3, 0.47][:n_delays], dtype=torch.float64,
                       requires_grad=n_delays > 0)
    params = [p for p in (h0, W, Wd, b, Wout, tau, Vh, ch, wt) if p.requires_grad and p.numel()]
    info: dict = {}
    y1 = neural_solve(h0, W, Wd, b, Wout, tau, t_final=1.3, method=method, rtol=1e-5,
                      atol=1e-7, info=info, activation=act, w_time=wt, W_hidden=Vh, b_hidden=ch)
    assert len(info["t"]) > 5
    g1 = torch.autograd.grad(y1.pow(2).sum(), params)
    y2 = odeint_dde(torch_field(W, Wd, b, Wout, Vh, ch, ACTS[act], wt), h0, tau, 1.3, method=method,
                    grid=info["t"])
    g2 = torch.autograd.grad(y2.pow(2).sum(), params)
    torch.testing.assert_close(y1, y2, atol=1e-12, rtol=0)
    for a, c in zip(g1, g2):
        torch.testing.assert_close(a, c, atol=1e-10 * (1 + float(c.abs().max())), rtol=0)


def _pass(args, act, method, dt, grid, threads, budget, small, blas=True):
    h0, W, Wd, b, Wo, tau, Vh, ch, wt, lam = args
    out = _core.neural_forward(h0, W, Wd, b, Wo, tau, act, method, 1.0, 1e-6, 1e-8, dt, grid,
                               10**6, threads, blas, activation_bytes=budget,
                               small_kernels=small, w_time=wt, W_hidden=Vh, b_hidden=ch)
    g = _core.neural_backward(W, Wd, b, Wo, tau, act, method, out["t"], out["X"], out["K"], lam,
                              threads, blas, A=out["A"], small_kernels=small, w_time=wt,
                              W_hidden=Vh, b_hidden=ch)
    return out, g


def _args(D, H, nd, B, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, D)), rng.standard_normal((H, D)),
            rng.standard_normal((nd, H, D)), rng.standard_normal(H),
            rng.standard_normal((D, H)) / H ** 0.5, np.array([0.3, 0.45][:nd]),
            rng.standard_normal((2, H, H)) / H ** 0.5, rng.standard_normal((2, H)),
            rng.standard_normal(H), rng.standard_normal((B, D)))


def _assert_same(res):
    (out0, g0), rest = res[0], res[1:]
    for out, g in rest:
        np.testing.assert_array_equal(out["t"], out0["t"])
        np.testing.assert_allclose(out["y"], out0["y"], rtol=0,
                                   atol=1e-13 * np.abs(out0["y"]).max())
        for name in GRAD_NAMES:
            if g0[name].size:
                np.testing.assert_allclose(g[name], g0[name], rtol=0,
                                           atol=1e-12 * np.abs(g0[name]).max())


@pytest.mark.parametrize("D,H,nd", [(2, 32, 1), (3, 7, 2), (8, 13, 1), (9, 12, 0)])
def test_fixed_step_stacked_time_input_passes_on_several_threads(D, H, nd):
    # 41 rows: 3–5 threads get ≥ 8 rows each, so the row chunks (r0 > 0 into the kept
    # activations (steps, stages, layers, batch, hidden), per-chunk gradients summed) run.
    args = _args(D, H, nd, 41, seed=50 + D)
    grid = np.linspace(0.0, 1.0, 11)
    for act in range(4):
        for method, dt, g in ((_core.Method.RK4, 0.1, None), (_core.Method.Euler, 0.05, None),
                              (_core.Method.DP5, 0.1, grid)):
            res = [_pass(args, act, method, dt, g, threads, budget, small)
                   for small, budget, threads in ((False, 0.0, 1), (True, 1e9, 3),
                                                  (True, 0.0, 4), (False, 1e9, 5))]
            assert res[1][0]["A"] is None or res[1][0]["A"].shape[2:] == (3, 41, H)
            _assert_same(res)


def test_adaptive_stacked_pass_on_several_row_blocks():
    # batch × hidden ≥ 2 · 16384: the adaptive forward's stages run on row blocks in parallel;
    # the step sequence, values and gradients are those of one block. Eigen's GEMMs: scipy's
    # OpenBLAS splits 1024 × 32 × 32 products over its own threads, 30× slower on a loaded box.
    args = _args(3, 32, 1, 1024, seed=7)
    for act in (0, 3):
        res = [_pass(args, act, _core.Method.DP5, 0.0, None, threads, budget, True, False)
               for threads, budget in ((1, 0.0), (4, 1e9), (4, 0.0))]
        assert res[1][0]["A"] is not None and res[1][0]["A"].shape[1:] == (7, 3, 1024, 32)
        _assert_same(res)


def test_adaptive_activation_room_counts_the_layers():
    # Room for N − 1 steps of (stages × layers × batch × hidden) activations: dropped, the
    # backward recomputes; room for N: kept, shape (N, 7, layers, B, H); same gradients.
    args = _args(2, 5, 1, 4, seed=9)
    ref = _pass(args, 0, _core.Method.DP5, 0.0, None, 1, 0.0, True)
    n = len(ref[0]["t"]) - 1
    assert n > 5
    per_step = 8 * 7 * 3 * 4 * 5
    res = [ref]
    for steps in (n - 1, n):
        res.append(_pass(args, 0, _core.Method.DP5, 0.0, None, 1, steps * per_step + 8.0, True))
    assert res[1][0]["A"] is None
    assert res[2][0]["A"].shape == (n, 7, 3, 4, 5)
    _assert_same(res)


def test_float32_module_with_depth_time_input_and_learned_tau():
    torch.manual_seed(0)
    m32 = NeuralDDE(2, 1, dim=3, hidden=8, depth=3, time_input=True, tau=0.3, learn_tau=True,
                    max_delay=1.0, activation="sigmoid")
    m64 = copy.deepcopy(m32).double()
    x = torch.randn(10, 2)
    y32, y64 = m32(x), m64(x.double())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, atol=1e-6, rtol=0)
    y32.pow(2).sum().backward()
    y64.pow(2).sum().backward()
    for (name, p), (_, q) in zip(m32.named_parameters(), m64.named_parameters()):
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        torch.testing.assert_close(p.grad.double(), q.grad, rtol=0,
                                   atol=1e-6 * float(q.grad.abs().max()))


def test_depth_one_modules_keep_their_state_dict_keys():
    base = {"W", "W_delay", "b", "W_out", "tau", "lift.weight", "lift.bias", "readout.weight",
            "readout.bias"}
    assert set(NeuralDDE(2, 1, dim=3, hidden=4).state_dict()) == base
    assert set(NeuralODE(2, 1, dim=3, hidden=4).state_dict()) == base
    full = NeuralDDE(2, 1, dim=3, hidden=4, depth=2, time_input=True)
    assert set(full.state_dict()) == base | {"W_hidden", "b_hidden", "w_time"}


def test_stacked_weights_of_the_wrong_rank_are_named():
    W, Wd, b, Wout, Vh, ch, wt = (p.detach() for p in _weights(2, 4, 1, 1, seed=0))
    h0 = torch.zeros(2, 2, dtype=torch.float64)
    tau = torch.tensor([0.5], dtype=torch.float64)
    scalar = torch.tensor(1.0, dtype=torch.float64)
    with pytest.raises(ValueError, match="W_hidden"):
        neural_solve(h0, W, Wd, b, Wout, tau, W_hidden=scalar, b_hidden=ch)
    with pytest.raises(ValueError, match="b_hidden"):
        neural_solve(h0, W, Wd, b, Wout, tau, W_hidden=Vh, b_hidden=scalar)
    with pytest.raises(ValueError, match="w_time"):
        neural_solve(h0, W, Wd, b, Wout, tau, w_time=scalar)


@pytest.mark.parametrize("act", ["sigmoid", "softplus"])
def test_gradcheck_of_smooth_activations_with_depth_and_time_input(act):
    # Finite differences (independent of the interpolant weights odeint_dde shares with the
    # core): σ' from stored sigmoid values, softplus recomputed with its logistic derivative.
    W, Wd, b, Wout, Vh, ch, wt = _weights(2, 3, 1, 2, seed=11)
    h0 = torch.randn(2, 2, generator=torch.Generator().manual_seed(12),
                     dtype=torch.float64).requires_grad_(True)
    tau = torch.tensor([0.27], dtype=torch.float64, requires_grad=True)

    def fn(h0, W, Wd, b, Wout, tau, Vh, ch, wt):
        return neural_solve(h0, W, Wd, b, Wout, tau, t_final=0.7, method="RK4", dt=0.1,
                            activation=act, w_time=wt, W_hidden=Vh, b_hidden=ch)

    assert torch.autograd.gradcheck(fn, (h0, W, Wd, b, Wout, tau, Vh, ch, wt), eps=1e-6,
                                    atol=1e-7, rtol=1e-5)


def test_activation_budget_is_checked():
    # The private core entry's byte budget for kept activations: NaN would keep every
    # activation, inf overflow the adaptive pass's step count.
    from delyap import _core

    rng = np.random.default_rng(0)
    W, Wd, b, Wout = (rng.standard_normal(s) for s in ((3, 2), (1, 3, 2), (3,), (2, 3)))
    h0, tau = rng.standard_normal((4, 2)), np.array([0.3])
    for method, dt in ((_core.Method.RK4, 0.1), (_core.Method.DP5, 0.0)):
        for bad in (float("nan"), float("inf"), -1.0):
            with pytest.raises(ValueError, match="activation_bytes"):
                _core.neural_forward(h0, W, Wd, b, Wout, tau, 0, method, 1.0, 1e-6, 1e-8, dt,
                                     None, 100, 1, activation_bytes=bad)


def test_fixed_delays_keep_the_values_asked_for_in_every_dtype():
    # A float32 buffer made τ = 0.7 into 0.69999998808 (so dt = 0.7 was refused as longer than
    # the delay) and, after .double(), τ = 0.05 into 0.0500000007.
    m = NeuralDDE(1, 1, 2, 8, tau=0.7, method="RK4", dt=0.7, t_final=1.4)
    assert m.tau.dtype == torch.float64 and m.tau.item() == 0.7
    y32 = m(torch.linspace(-1, 1, 5).reshape(5, 1))
    assert y32.dtype == torch.float32
    m64 = copy.deepcopy(m).double()
    assert m64.tau.item() == 0.7 and m64.W.dtype == torch.float64
    y64 = m64(torch.linspace(-1, 1, 5, dtype=torch.float64).reshape(5, 1))
    np.testing.assert_allclose(y32.detach().numpy(), y64.detach().numpy(), atol=1e-5)
    assert NeuralDDE(1, 1, 2, 8, tau=0.05, dt=0.01, method="RK4").double().tau.item() == 0.05
    back = copy.deepcopy(m64).float()          # a cast back keeps them too
    assert back.tau.dtype == torch.float64 and back.tau.item() == 0.7
    # A learnable τ is a parameter of the module's dtype (its gradient is the others').
    learn = NeuralDDE(1, 1, 2, 8, tau=0.05, dt=0.01, method="RK4", learn_tau=True,
                      max_delay=1.0)
    assert learn.tau.dtype == torch.float32
    learn(torch.zeros(3, 1)).sum().backward()
    assert learn.tau.grad is not None and learn.tau.grad.dtype == torch.float32
    # neural_solve reads fixed delays of either dtype; a learned one must match the others.
    Wm, Wd, b, Wout = (t.detach().float() for t in _weights(2, 8, 1, 0, 3)[:4])
    h0 = torch.randn(4, 2, generator=torch.Generator().manual_seed(5))
    tau64 = torch.tensor([0.5], dtype=torch.float64)
    y = neural_solve(h0, Wm, Wd, b, Wout, tau64, method="RK4", dt=0.1)
    assert y.dtype == torch.float32
    with pytest.raises(TypeError, match="mixed dtypes"):
        neural_solve(h0, Wm, Wd, b, Wout, tau64.clone().requires_grad_(True), method="RK4",
                     dt=0.1)
    with pytest.raises(ValueError, match="seed"):
        m64.memory_capacity(seed=-1)
