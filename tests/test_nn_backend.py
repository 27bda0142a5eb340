"""backend="torch" (the pass through torch operations on the tensors' device, what a module on
a GPU runs) against backend="core" (the C++ pass and its discrete adjoint): the same steps and
interpolant, so the same values and gradients; routing by device and the errors around it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap.nn import (  # noqa: E402
    NeuralDDE,
    NeuralODE,
    _modules,  # noqa: E402
    neural_solve,
)

CONFIGS = {
    # RK4 on a fixed grid, two learnable delays, the time input and a stacked layer
    "rk4-two-delays-learned-tau-time-depth": dict(
        cls=NeuralDDE, kw=dict(tau=[0.3, 0.5], n_delays=2, method="RK4", dt=0.1,
                               learn_tau=True, max_delay=1.0, time_input=True, depth=2)),
    # DP5 adaptive: the torch backend replays the core's accepted steps
    "dp5-adaptive-softplus": dict(
        cls=NeuralDDE, kw=dict(tau=0.4, method="DP5", rtol=1e-5, atol=1e-7,
                               activation="softplus", learn_tau=True, max_delay=1.0)),
    "bs3-sigmoid-augmented": dict(
        cls=NeuralDDE, kw=dict(tau=0.35, method="BS3", rtol=1e-5, activation="sigmoid",
                               augment=1)),
    # a ResNet view: Euler on a neural ODE, ReLU
    "euler-ode-relu": dict(cls=NeuralODE, kw=dict(method="Euler", dt=0.05, activation="relu")),
    # three delays, dt no divisor of any: τ_1's reads leave the history at t = 0.037, τ_2's at
    # 0.6, τ_3's never (τ_3 > T); Euler with learned τ
    "euler-three-delays-some-in-history": dict(
        cls=NeuralDDE, kw=dict(tau=[0.05, 0.6, 1.7], n_delays=3, method="Euler", dt=0.037,
                               learn_tau=True, max_delay=3.0)),
    # a step equal to the smallest delay (the DenseResNet view, τ = dt, equal in float64:
    # "tau64" sets the delays after the cast): stage 0 reads t_n − τ, the end of the last
    # finished step up to rounding (t_3 − 0.1 > t_2 for dt = 0.1), where the running step's
    # f(t_n) has an O(θ²) weight
    "rk4-step-equals-delay": dict(
        cls=NeuralDDE, tau64=[0.1, 0.25], kw=dict(tau=[0.1, 0.25], n_delays=2, method="RK4",
                                                  dt=0.1, t_final=1.3, learn_tau=True,
                                                  max_delay=1.0)),
    "euler-step-equals-delay-batch-1": dict(
        cls=NeuralDDE, batch=1, tau64=[0.05], kw=dict(tau=0.05, method="Euler", dt=0.05,
                                                      learn_tau=True, max_delay=1.0)),
    # BS3 on a fixed grid, three layers, learned τ
    "bs3-fixed-step-depth-3": dict(
        cls=NeuralDDE, kw=dict(tau=[0.2, 0.45], n_delays=2, method="BS3", dt=0.07,
                               learn_tau=True, max_delay=1.0, depth=3)),
    # DP5 adaptive with the time input and augmented dimensions, one sample
    "dp5-time-input-augmented-batch-1": dict(
        cls=NeuralDDE, batch=1, kw=dict(tau=0.3, method="DP5", rtol=1e-7, time_input=True,
                                        augment=2, learn_tau=True, max_delay=2.0)),
}


def _pair(cls, kw, dtype=torch.float64, seed=0, tau64=None):
    torch.manual_seed(seed)
    core = cls(3, 2, dim=3, hidden=8, backend="core", **kw).to(dtype)
    if tau64 is not None:  # delays as float64 values (a module is created in float32)
        with torch.no_grad():
            core.tau.copy_(torch.tensor(tau64, dtype=torch.float64))
    other = cls(3, 2, dim=3, hidden=8, backend="torch", **kw).to(dtype)
    other.load_state_dict(core.state_dict())
    return core, other


def _loss_and_grads(model, x, y, grid=None):
    model.zero_grad()
    out = model(x, grid)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    # (an empty W_delay, a neural ODE's, gets no gradient from torch's autograd: compared empty)
    return out.detach(), {n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
                          for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_torch_backend_gives_the_cores_values_and_gradients(name):
    cls, kw = CONFIGS[name]["cls"], CONFIGS[name]["kw"]
    core, other = _pair(cls, kw, tau64=CONFIGS[name].get("tau64"))
    g = torch.Generator().manual_seed(1)
    batch = CONFIGS[name].get("batch", 17)
    x = torch.randn(batch, 3, generator=g, dtype=torch.float64)
    y = torch.randn(batch, 2, generator=g, dtype=torch.float64)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    out_c, grads_c = _loss_and_grads(core, x, y)
    out_t, grads_t = _loss_and_grads(other, x, y)
    # the same step sequence (the adaptive ones chosen by the core's controller)
    np.testing.assert_array_equal(other.last_info["t"], core.last_info["t"])
    assert other.last_info["rejected"] == core.last_info["rejected"]
    torch.testing.assert_close(out_t, out_c, rtol=0, atol=1e-12)
    assert grads_t.keys() == grads_c.keys()
    for n in (n for n in grads_c if grads_c[n].numel()):
        # autograd through the stages and the discrete adjoint differentiate the same pass
        scale = float(grads_c[n].abs().max()) + 1e-300
        err = float((grads_t[n] - grads_c[n]).abs().max())
        assert err <= 1e-10 * scale, (n, err, scale)
    if kw.get("learn_tau"):
        assert float(grads_c["tau"].abs().max()) > 0  # (the τ path is exercised)
    for k, v in other.state_dict().items():  # the pass reads its parameters only
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_torch_backend_in_float32_computes_in_float32():
    kw = CONFIGS["rk4-two-delays-learned-tau-time-depth"]["kw"]
    core, other = _pair(NeuralDDE, kw, dtype=torch.float32)
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(2))
    out_c = core(x)  # computed in float64 inside the core
    out_t = other(x)
    assert out_t.dtype == torch.float32 and out_c.dtype == torch.float32
    err = float((out_t - out_c).detach().abs().max())
    # float32 rounding through 10 RK4 steps: well above float64's 1e-15, below 1e-5
    assert 0 < err < 1e-5
    out_t.sum().backward()
    assert other.W.grad.dtype == torch.float32 and other.tau.grad.dtype == torch.float32


def test_neural_solve_backends_agree_on_a_replayed_grid():
    g = torch.Generator().manual_seed(3)
    D, H = 2, 5
    h0 = torch.randn(6, D, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(H, D, generator=g, dtype=torch.float64, requires_grad=True)
    Wd = torch.randn(1, H, D, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(H, generator=g, dtype=torch.float64, requires_grad=True)
    Wout = torch.randn(D, H, generator=g, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor([0.45], dtype=torch.float64, requires_grad=True)
    grid = np.array([0.0, 0.1, 0.25, 0.4, 0.6, 0.8, 1.0])
    outs = {}
    for backend in ("core", "torch"):
        info: dict = {}
        y = neural_solve(h0, W, Wd, b, Wout, tau, method="DP5", grid=grid, info=info,
                         backend=backend)
        grads = torch.autograd.grad(y.pow(3).sum(), (h0, W, Wd, b, Wout, tau))
        outs[backend] = (y.detach(), grads)
        np.testing.assert_array_equal(info["t"], grid)
    torch.testing.assert_close(outs["torch"][0], outs["core"][0], rtol=0, atol=1e-12)
    for gt, gc in zip(outs["torch"][1], outs["core"][1]):
        torch.testing.assert_close(gt, gc, rtol=1e-10, atol=1e-12)


def test_backend_is_checked_and_routed_by_device(monkeypatch):
    with pytest.raises(ValueError, match="backend"):
        NeuralODE(2, 1, dim=2, hidden=3, method="RK4", dt=0.1, backend="gpu")
    h0 = torch.zeros(2, 2, dtype=torch.float64)
    W = torch.zeros(3, 2, dtype=torch.float64)
    args = (W, torch.zeros(0, 3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
            torch.zeros(2, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.float64))
    with pytest.raises(ValueError, match="backend: expected one of"):
        neural_solve(h0, *args, method="RK4", dt=0.1, backend="cuda")
    meta = [a.to("meta") for a in args]
    with pytest.raises(ValueError, match="backend: 'core' runs on the CPU, the tensors are on "
                                         "meta"):
        neural_solve(h0.to("meta"), *meta, method="RK4", dt=0.1, backend="core")
    with pytest.raises(ValueError, match="W: on meta, but h0 is on cpu"):
        neural_solve(h0, W.to("meta"), *args[1:], method="RK4", dt=0.1)
    # "auto" sends a module on another device to the torch backend (a spy: meta tensors carry
    # no values to compute with)
    calls = []
    monkeypatch.setattr(_modules, "solve_builtin",
                        lambda h0, *a, **k: calls.append(h0.device) or h0)
    model = NeuralODE(2, 1, dim=2, hidden=3, method="RK4", dt=0.1).double().to("meta")
    model(torch.zeros(4, 2, dtype=torch.float64, device="meta"))
    assert calls == [torch.device("meta")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_module_on_the_gpu_gives_the_cpu_cores_values_and_gradients():
    kw = CONFIGS["rk4-two-delays-learned-tau-time-depth"]["kw"]
    cpu = NeuralDDE(3, 2, dim=3, hidden=8, **kw).double()
    gpu = NeuralDDE(3, 2, dim=3, hidden=8, **kw).double()
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    x = torch.randn(33, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y = torch.randn(33, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    out_c, grads_c = _loss_and_grads(cpu, x, y)
    out_g, grads_g = _loss_and_grads(gpu, x.cuda(), y.cuda())
    torch.testing.assert_close(out_g.cpu(), out_c, rtol=0, atol=1e-12)
    for n in grads_c:
        torch.testing.assert_close(grads_g[n].cpu(), grads_c[n], rtol=1e-10, atol=1e-13)
    mc = gpu.memory_capacity()  # computed on the CPU from the GPU module's weights
    assert mc.K_upper == pytest.approx(cpu.memory_capacity().K_upper, rel=1e-12)


def test_gpu_neural_benchmark_script_runs_and_agrees_on_the_cpu():
    """benchmarks/gpu/bench_neural_gpu.py waits for a GPU; --device cpu --smoke runs it here,
    with its checks of every tool against the core."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "bench_neural_gpu.py"
    run = subprocess.run([sys.executable, str(script), "--device", "cpu", "--smoke"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "delyap f64" in run.stdout and "MISMATCH" not in run.stdout


def test_delays_read_only_in_the_history_get_a_zero_gradient_not_none():
    """τ ≥ T: every read is in the constant history, h(T) does not depend on τ. The core's
    adjoint gives τ a zero gradient; the torch backend must too (a None grad is skipped by
    optimizers, momentum included, and makes torch.autograd.grad raise)."""
    kw = dict(tau=[1.5, 2.0], n_delays=2, method="RK4", dt=0.1, learn_tau=True, max_delay=3.0)
    core, other = _pair(NeuralDDE, kw)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    for model in (core, other):
        model.zero_grad()
        model(x).pow(2).sum().backward()
    assert other.tau.grad is not None
    torch.testing.assert_close(other.tau.grad, core.tau.grad, rtol=0, atol=0)
    assert float(core.tau.grad.abs().max()) == 0.0
    # odeint_dde: the same, and an infinite delay (never read) leaves the output finite
    from delyap.nn import odeint_dde

    h0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    tau = torch.tensor([1.2, float("inf")], dtype=torch.float64, requires_grad=True)
    y = odeint_dde(lambda t, h, yd: torch.tanh(h + yd.sum(1)), h0, tau, 1.0, dt=0.1)
    assert bool(torch.isfinite(y).all())
    (g,) = torch.autograd.grad(y.sum(), tau)
    torch.testing.assert_close(g, torch.zeros(2, dtype=torch.float64), rtol=0, atol=0)


def test_float32_learned_tau_on_adaptive_and_given_grids_takes_the_cores_steps():
    kw = dict(tau=[0.2, 0.45], n_delays=2, method="BS3", rtol=1e-5, learn_tau=True,
              max_delay=1.0, depth=2)
    core, other = _pair(NeuralDDE, kw, dtype=torch.float32)
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(8))
    y = torch.randn(9, 2, generator=torch.Generator().manual_seed(9))
    grid = np.array([0.0, 0.15, 0.3, 0.45, 0.6, 0.8, 1.0])
    for g in (None, grid):  # the core's adaptive steps, a given grid
        out_c, grads_c = _loss_and_grads(core, x, y, g)
        out_t, grads_t = _loss_and_grads(other, x, y, g)
        np.testing.assert_array_equal(other.last_info["t"], core.last_info["t"])
        # float32 arithmetic (torch) against float64 arithmetic rounded to float32 (core):
        # measured 1.2e-7 (values) and 4.6e-7 (gradients, relative to the largest)
        assert float((out_t - out_c).abs().max()) < 2e-6
        for n in (n for n in grads_c if grads_c[n].numel()):
            assert grads_t[n].dtype == torch.float32
            scale = float(grads_c[n].abs().max())
            assert float((grads_t[n] - grads_c[n]).abs().max()) <= 1e-5 * scale, n
        assert float(grads_c["tau"].abs().max()) > 0


def test_the_stage_loop_reads_no_tensor_values_and_mixes_in_no_host_tensors():
    """On a GPU, reading a tensor's value (float(), item(), tolist(), numpy) waits for the
    device queue, and a CPU tensor mixed in is a host-device copy. Meta tensors carry no values
    and mix with no CPU tensor, so the stage loop running forward and backward on them shows
    it does neither, for every method, with learned τ, the time input and a stacked layer."""
    from delyap.nn._general import builtin_field, fixed_grid, integrate

    g = torch.Generator().manual_seed(10)

    def meta(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to("meta").requires_grad_()

    D, H = 3, 5
    params = (meta(H, D), meta(2, H, D), meta(H), meta(D, H), meta(H), meta(1, H, H),
              meta(1, H))
    field = builtin_field("tanh", *params)
    for method in ("Euler", "RK4", "BS3", "DP5"):
        for taus in ([0.3, 0.5], [1.5, 2.0]):  # reads leaving the history, or not
            tau = torch.tensor(taus, dtype=torch.float64).to("meta").requires_grad_()
            h0 = meta(4, D)
            y = integrate(field, h0, tau, taus, fixed_grid(1.0, 0.1), method)
            grads = torch.autograd.grad(y.sum(), (h0, tau, *params))
            assert y.device.type == "meta" and all(v.device.type == "meta" for v in grads)


def test_a_module_pass_reads_the_delays_per_pass_not_per_step():
    """The host reads of a whole torch-backend training step (forward and backward) do not grow
    with the number of steps: the delays are read as floats before the stage loop."""
    from torch.overrides import TorchFunctionMode

    reads = {"item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy",
             "__array__", "cpu"}

    class CountReads(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in reads:
                self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    counts = []
    for dt in (0.1, 0.02):
        torch.manual_seed(0)
        model = NeuralDDE(2, 1, dim=2, hidden=4, tau=[0.3, 0.5], n_delays=2, method="RK4",
                          dt=dt, learn_tau=True, max_delay=1.0, time_input=True,
                          backend="torch").double()
        x = torch.randn(5, 2, dtype=torch.float64)
        with CountReads() as mode:
            model(x).sum().backward()
        counts.append(len(mode.names))
    assert counts[0] == counts[1] <= 2, counts  # (the module's τ check and the pass's)


def test_odeint_dde_checks_t_final_and_where_the_grid_ends():
    from delyap.nn import odeint_dde

    h0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    tau = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    kept = (h0.clone(), tau.detach().clone())

    def f(t, h, yd):
        return torch.tanh(h + yd.sum(1))

    with pytest.raises(ValueError, match="t_final: must be positive"):
        odeint_dde(f, h0, tau, 0.0, dt=0.1)
    # a grid ending before t_final used to integrate to its own end without a word
    with pytest.raises(ValueError, match="grid: must end at t_final = 1.0, ends at 0.9"):
        odeint_dde(f, h0, tau, 1.0, grid=np.array([0.0, 0.3, 0.6, 0.9]))
    with pytest.raises(ValueError, match="grid: expected increasing times"):
        odeint_dde(f, h0, tau, 1.0, grid=np.array([0.0]))
    y = odeint_dde(f, h0, tau, 1.0, grid=np.array([0.0, 0.3, 0.6, 0.9, 1.0]))
    with torch.no_grad():  # (no τ-derivative terms built: the same values)
        y0 = odeint_dde(f, h0, tau, 1.0, grid=np.array([0.0, 0.3, 0.6, 0.9, 1.0]))
    torch.testing.assert_close(y0, y.detach(), rtol=0, atol=0)
    torch.testing.assert_close(h0, kept[0], rtol=0, atol=0)  # inputs left as they were
    torch.testing.assert_close(tau.detach(), kept[1], rtol=0, atol=0)


def test_core_pass_with_step_equal_to_delay_does_not_read_unwritten_stages():
    # With dt = τ, stage 0 reads t_n − τ, a rounding error past t_{n−1}: the read is snapped
    # to t_{n−1} rather than touching the running step's K[n][0], not yet written. Before,
    # a NaN left in that (reused) memory by a failed pass made the next healthy pass NaN.
    g = torch.Generator().manual_seed(12)
    D, H = 2, 4
    args = [torch.randn(*s, generator=g, dtype=torch.float64)
            for s in ((3, D), (H, D), (1, H, D), (H,), (D, H))]
    tau = torch.tensor([0.1], dtype=torch.float64)
    good = neural_solve(*args, tau, method="RK4", dt=0.1, backend="core")
    bad = [args[0] * float("inf"), *args[1:]]
    assert bool(torch.isnan(neural_solve(*bad, tau, method="RK4", dt=0.1,
                                         backend="core")).any())
    again = neural_solve(*args, tau, method="RK4", dt=0.1, backend="core")
    torch.testing.assert_close(again, good, rtol=0, atol=0)


def _saved_elements(fn):
    """fn()'s value and the number of tensor elements autograd saves for its backward outside
    checkpointed regions (inside them checkpointing's own hooks take over)."""
    count = [0]

    def pack(t):
        count[0] += t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, count[0]


@pytest.mark.parametrize("method", ["RK4", "DP5"])
def test_recomputed_steps_give_the_same_pass_and_keep_only_states(method):
    from delyap.nn._general import builtin_field, fixed_grid, integrate

    g = torch.Generator().manual_seed(21)
    D, H, nd = 2, 64, 2
    W, b = torch.randn(H, D, generator=g, dtype=torch.float64), torch.randn(H, generator=g,
                                                                            dtype=torch.float64)
    Wd = torch.randn(nd, H, D, generator=g, dtype=torch.float64)
    Wout = torch.randn(D, H, generator=g, dtype=torch.float64) / H
    Vh = torch.randn(1, H, H, generator=g, dtype=torch.float64) / H ** 0.5
    ch = torch.randn(1, H, generator=g, dtype=torch.float64)
    weights = [W, Wd, b, Wout, Vh, ch]
    for w in weights:
        w.requires_grad_(True)
    h0 = torch.randn(16, D, generator=g, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor([0.3, 0.45], dtype=torch.float64, requires_grad=True)
    grid = fixed_grid(1.0, 0.1) if method == "RK4" else np.array([0, .1, .25, .4, .6, .8, 1.])
    field = builtin_field("tanh", W, Wd, b, Wout, None, Vh, ch)
    results = {}
    for recompute in (False, True):
        y, saved = _saved_elements(lambda r=recompute: integrate(field, h0, tau, [0.3, 0.45],
                                                                 grid, method, r))
        grads = torch.autograd.grad(y.pow(2).sum(), [h0, tau, *weights])
        results[recompute] = (y.detach(), grads, saved)
    (y0, g0, saved0), (y1, g1, saved1) = results[False], results[True]
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    for a, c in zip(g1, g0):
        torch.testing.assert_close(a, c, rtol=1e-13, atol=1e-15)
    # kept: every stage's layer activations (16 × 64 per layer) against none
    assert saved0 > 16 * H * 2 * len(grid)
    assert saved1 < saved0 / 20


def test_long_torch_backend_passes_recompute_and_match_the_core(monkeypatch):
    from delyap.nn import _general

    kw = CONFIGS["rk4-two-delays-learned-tau-time-depth"]["kw"]
    core, other = _pair(NeuralDDE, kw)
    x = torch.randn(11, 3, generator=torch.Generator().manual_seed(22), dtype=torch.float64)
    y = torch.randn(11, 2, generator=torch.Generator().manual_seed(23), dtype=torch.float64)
    out_c, grads_c = _loss_and_grads(core, x, y)
    kept = _saved_elements(lambda: other(x))[1]
    monkeypatch.setattr(_general, "ACTIVATION_CACHE_BYTES", 0)  # every pass is "long"
    (out_t, saved) = _saved_elements(lambda: other(x))
    assert saved < kept / 5
    out_t, grads_t = _loss_and_grads(other, x, y)
    torch.testing.assert_close(out_t, out_c, rtol=0, atol=1e-12)
    for n in grads_c:
        torch.testing.assert_close(grads_t[n], grads_c[n], rtol=1e-10, atol=1e-13)
