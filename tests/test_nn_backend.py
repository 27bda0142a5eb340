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
}


def _pair(cls, kw, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    core = cls(3, 2, dim=3, hidden=8, backend="core", **kw).to(dtype)
    other = cls(3, 2, dim=3, hidden=8, backend="torch", **kw).to(dtype)
    other.load_state_dict(core.state_dict())
    return core, other


def _loss_and_grads(model, x, y):
    model.zero_grad()
    out = model(x)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    # (an empty W_delay, a neural ODE's, gets no gradient from torch's autograd: compared empty)
    return out.detach(), {n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
                          for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_torch_backend_gives_the_cores_values_and_gradients(name):
    cls, kw = CONFIGS[name]["cls"], CONFIGS[name]["kw"]
    core, other = _pair(cls, kw)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(17, 3, generator=g, dtype=torch.float64)
    y = torch.randn(17, 2, generator=g, dtype=torch.float64)
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
