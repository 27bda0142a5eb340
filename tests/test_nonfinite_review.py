"""Review of issues 14 and 17 for one class of bug: a wrong or non-finite answer reported as a
success (or a failure that hides its cause). Each test is one case found by probing with NaN,
inf and huge values; its docstring says what the code did before the fix.

Allowed and not tested here: a fixed-step neural pass propagates a NaN sample as a NaN row
(torch semantics, no success claim); layer_spectrum reports NaN/inf weights and saturated
layers with status 3."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import delyap as dl  # noqa: E402
import delyap.nn as dn  # noqa: E402
from delyap import geometry, sgd  # noqa: E402


def _mlp(widths, seed=0):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers[:-1]).double().eval()


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(12, 2, generator=g, dtype=torch.float64),
            torch.randn(12, 1, generator=g, dtype=torch.float64))


# ----------------------------------------------------------------------------- sgd
def test_hessian_trace_of_nan_parameters_is_not_a_success():
    """hessian_trace with a NaN weight returned trace = NaN, stderr = NaN with status 0
    (success True): Hutchinson's samples were averaged without a finiteness check."""
    net = _mlp([2, 6, 1])
    X, Y = _data()
    with torch.no_grad():
        net[0].weight[0, 0] = math.nan
    res = sgd.hessian_trace(net, X, Y, n_probes=4, throw=False)
    assert res.status == 3 and not res.success and "probe 1" in res.info["error"]
    assert math.isnan(res.trace)
    with pytest.raises(dl.IntegrationError, match="hessian_trace"):
        sgd.hessian_trace(net, X, Y, n_probes=4)
    # The finite case is unchanged: status 0 and the mean of the samples.
    ok = sgd.hessian_trace(_mlp([2, 6, 1]), X, Y, n_probes=4, throw=False)
    assert ok.status == 0 and ok.trace == pytest.approx(ok.info["samples"].mean(), rel=1e-15)


def test_hessian_density_of_nan_parameters_has_a_status():
    """hessian_density with a NaN weight raised the internal NonFiniteProductError where its
    siblings (hessian_eigenvalues) give status 3 / IntegrationError; its result type already
    had a status field, never set."""
    net = _mlp([2, 6, 1])
    X, Y = _data()
    with torch.no_grad():
        net[2].bias[0] = math.inf
    res = sgd.hessian_density(net, X, Y, n_probes=2, n_steps=5, throw=False)
    assert res.status == 3 and "probe 1" in res.info["error"]
    assert np.isnan(res.nodes).all() and math.isnan(res.trace)
    with pytest.raises(dl.IntegrationError, match="hessian_density"):
        sgd.hessian_density(net, X, Y, n_probes=2, n_steps=5)


def test_difference_products_with_a_large_parameter_are_not_a_silent_wrong_answer():
    """hvp='auto' at tol ≥ 1e-5 takes forward differences of the gradient with the step
    ε‖v‖ = √eps·max(1, ‖θ‖). One saturated weight of 1e8 (the loss does not depend on it)
    makes that step 1.5 in every direction, and Lanczos converges on the difference
    operator: λ_max 1.90 with status success, where the exact Hessian's is 1.617 (17 % off;
    at 1e10: 14.0, 9× off). In a diverging training run (lr too large, ‖θ‖ ~ 1e70) the
    SharpnessMonitor records sharpness ≈ 1e9 with converged=True where the exact value is
    11.7."""
    net = _mlp([2, 6, 1])
    X, Y = _data()
    with torch.no_grad():
        net[0].weight[0, 0] = 1e8
    exact = sgd.hessian_eigenvalues(net, X, Y, tol=1e-5, hvp="exact")
    auto = sgd.hessian_eigenvalues(net, X, Y, tol=1e-5, throw=False)
    assert exact.status == 0
    # Either a failure status, or the certified value (|λ − λ_true| ≤ residual ≤ tol·|λ|).
    assert auto.status != 0 or abs(auto.sharpness - exact.sharpness) <= 1e-4 * exact.sharpness
    # Fixed: the Lanczos basis shows the differences asymmetric (4.6e-1 against 1e-6), and the
    # run is redone on exact products, saying so.
    assert auto.status == 0 and auto.info["hvp"] == "exact" and "hvp_fallback" in auto.info
    # A healthy model keeps the cheap products (asymmetry ~1e-8, far below 0.1·tol).
    net2 = _mlp([2, 6, 1])
    fine = sgd.hessian_eigenvalues(net2, X, Y, tol=1e-5)
    assert fine.info["hvp"] == "difference" and fine.info["asymmetry"] < 1e-7


@pytest.mark.parametrize("mode", ["step", "backward"])
def test_monitor_switches_to_exact_products_where_differences_are_inexact(mode):
    """The SharpnessMonitor on the same large-weight model: its difference check (two
    gradients at the first record) finds the products inexact and records on exact ones,
    the values those of hessian_eigenvalues with exact products; a model with ordinary
    weights keeps the difference products."""
    X, Y = _data()
    for big, expect in ((1e8, "exact"), (None, "difference")):
        net = _mlp([2, 6, 1])
        if big is not None:
            with torch.no_grad():
                net[0].weight[0, 0] = big
        mon = sgd.SharpnessMonitor(net, X, Y, every=1, smallest=False, tol=1e-5)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)
        for _ in range(3):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(X), Y) * 0.5
            if mode == "backward":
                mon.backward(loss, opt)
                opt.step()
                mon.step(opt)
            else:
                loss.backward()
                opt.step()
                mon.step(opt)
        assert mon.hvp == expect
        rec = mon.records
        assert np.all(rec["converged"])
        ref = sgd.hessian_eigenvalues(net, X, Y, tol=1e-9, hvp="exact").sharpness
        if mode == "step":  # the last record is at the current parameters
            assert abs(rec["sharpness"][-1] - ref) <= 2e-5 * ref


def test_gradient_flow_of_nan_parameters_names_the_model():
    """gradient_flow with a NaN weight raised ValueError('history: contains NaN or inf'),
    naming an argument of the internal ODE call, not the user's model."""
    net = _mlp([2, 6, 1])
    X, Y = _data()
    with torch.no_grad():
        net[0].weight[1, 0] = math.nan
    with pytest.raises(ValueError, match="^model: parameter '0.weight' contains NaN or inf"):
        sgd.gradient_flow(net, X, Y, lr=0.1, steps=3)


# ----------------------------------------------------------------------------- geometry
def test_critical_points_of_nan_weights_raise():
    """critical_points with a NaN weight returned 0 points, status 0: every start's ∇Φ was NaN,
    NaN > gtol is False so each start stopped at once, NaN ≤ gtol is False so each was
    dropped: "no critical points" reported as a success."""
    net = _mlp([1, 2, 1])
    with torch.no_grad():
        net[0].weight[0, 0] = math.nan
    with pytest.raises(ValueError, match="^model: parameter '0.weight' contains NaN or inf"):
        geometry.critical_points(net, [-3, 3], n_starts=8)


class _Sqrt(torch.nn.Module):
    """Φ(x) = sqrt(x) + x: finite parameters, ∇Φ NaN for x < 0."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))

    def forward(self, x):
        return (torch.sqrt(x) + self.w * x).sum(dim=-1, keepdim=True)


def test_critical_points_with_a_non_finite_gradient_at_starts_has_a_status():
    """Starts where ∇Φ is NaN were dropped silently (the same NaN comparisons), so a box half
    outside Φ's domain came back as "0 critical points", status 0."""
    res = geometry.critical_points(_Sqrt(), [-1, 1], n_starts=16, throw=False)
    assert res.status == 3 and "not finite at" in res.info["error"]
    with pytest.raises(dl.IntegrationError, match="critical_points"):
        geometry.critical_points(_Sqrt(), [-1, 1], n_starts=16)
    # Inside the domain the answer is unchanged: no critical point (Φ' = 1/(2√x) + 1 > 0).
    ok = geometry.critical_points(_Sqrt(), [0.1, 1], n_starts=16)
    assert ok.status == 0 and len(ok) == 0


def test_architecture_class_of_non_finite_weights_raises():
    """architecture_class with an inf weight returned kind 'degenerate' (SVD of an inf matrix:
    rank 0) and with a NaN weight numpy's 'SVD did not converge': a class from no number."""
    for bad in (math.inf, math.nan):
        net = _mlp([2, 3, 1])
        with torch.no_grad():
            net[0].weight[0, 0] = bad
        with pytest.raises(ValueError, match="^model: parameter '0.weight' contains NaN or inf"):
            geometry.architecture_class(net)


def test_architecture_class_of_a_zero_width_layer_raises():
    """A hidden layer of width 0 makes Φ constant (every point critical, degenerate), yet
    architecture_class said 'non-augmented': "Φ has no critical points"."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 0), torch.nn.Tanh(),
                              torch.nn.Linear(0, 1)).double()
    with pytest.raises(ValueError, match="^model: layer widths"):
        geometry.architecture_class(net)


# ----------------------------------------------------------------------------- nn
def test_memory_capacity_of_a_nan_delay_raises():
    """A learnable τ that became NaN (e.g. after an optimizer step on a NaN gradient) gave
    MemoryCapacity(tau=nan, K_tau=nan, regime='memory'): NaN·e < 1 is False, so a regime was
    claimed from no number; τ = inf likewise."""
    for bad in (math.nan, math.inf):
        model = dn.NeuralDDE(2, 1, 3, 8, tau=0.5, learn_tau=True, max_delay=2.0).double()
        with torch.no_grad():
            model.tau.fill_(bad)
        with pytest.raises(ValueError, match="^tau: delays must be positive and finite"):
            model.memory_capacity()


def test_memory_capacity_of_nan_weights_names_the_parameter():
    """NaN (or inf) weights failed inside torch's SVD (torch.linalg.LinAlgError, a
    RuntimeError naming no argument)."""
    model = dn.NeuralDDE(2, 1, 3, 8, tau=0.5).double()
    with torch.no_grad():
        model.W_out[1, 2] = math.nan
    with pytest.raises(ValueError, match="^model: parameter 'W_out' contains NaN or inf"):
        model.memory_capacity()


@pytest.mark.parametrize("backend", ["core", "torch"])
@pytest.mark.parametrize("cls", ["NeuralDDE", "NeuralODE"])
def test_adaptive_pass_on_a_nan_input_names_it(backend, cls):
    """An adaptive pass (DP5) on an input with one NaN raised RuntimeError('neural DDE: step
    size underflow'): every step's error estimate is non-finite, so the controller shrank the
    step to nothing, and the message blamed the dynamics, not the input. (Fixed-step passes
    propagate the NaN row by row, as torch; unchanged.)"""
    kw = {"tau": 0.5} if cls == "NeuralDDE" else {}
    torch.manual_seed(0)
    model = getattr(dn, cls)(2, 1, 3, 8, backend=backend, **kw).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    x[1, 0] = math.nan
    with pytest.raises(ValueError, match="^h0: contains NaN or inf"):
        model(x)
    with torch.no_grad():
        model.b[0] = math.nan
    with pytest.raises(ValueError, match="^(h0|b): contains NaN or inf"):
        model(torch.randn(4, 2, dtype=torch.float64))


def test_architecture_class_of_a_zero_readout_is_not_no_critical_points():
    """A zero output layer (a zero-initialised readout) makes Φ constant: every point is a
    degenerate critical point (critical_points finds one at every start), yet
    architecture_class said 'non-augmented': "Φ has no critical points"; the last layer's
    rank was left out of the rank-deficiency check. Same for a NeuralODE's readout."""
    net = _mlp([2, 2, 1])
    with torch.no_grad():
        net[2].weight.zero_()
    cls = geometry.architecture_class(net)
    assert cls.kind == "degenerate" and cls.effective_kind == "constant"
    assert "no critical points" not in str(cls)
    found = geometry.critical_points(net, np.array([[-1.0, 1.0], [-1.0, 1.0]]), n_starts=4)
    assert len(found) == 4 and found.degenerate.all()
    ode = dn.NeuralODE(2, 1, 2, 4, method="RK4", dt=0.25).double()
    with torch.no_grad():
        ode.readout.weight.zero_()
    assert geometry.architecture_class(ode).effective_kind == "constant"


@pytest.mark.parametrize("nesterov", [False, True])
def test_monitor_of_a_diverging_momentum_run_records_instead_of_crashing(nesterov):
    """With torch SGD momentum, the first diverged record (NaN eigenvalues) raised numpy's
    LinAlgError('Array must not contain infs or NaNs') from momentum_exponent's eigvals,
    stopping the training loop, where the documented behaviour is a record kept with
    converged False (as without momentum)."""
    net = _mlp([2, 6, 1])
    X, Y = _data()
    monitor = sgd.SharpnessMonitor(net, X, Y, every=1, loss=torch.nn.MSELoss())
    opt = torch.optim.SGD(net.parameters(), lr=1e30, momentum=0.9, nesterov=nesterov)
    crit = torch.nn.MSELoss()
    for _ in range(8):
        opt.zero_grad()
        crit(net(X), Y).backward()
        opt.step()
        monitor.step(opt)
    rec = monitor.records
    assert len(rec["step"]) == 8
    bad = ~np.isfinite(rec["sharpness"])
    assert bad.any() and not rec["converged"][bad].any()
    assert np.isnan(rec["gd_exponent"][bad]).all()
    assert math.isnan(sgd.monitor.momentum_exponent([np.nan, 1.0], 0.1, 0.9))


def test_random_network_draws_of_a_nan_scale_raise():
    """random_network_draws(…, sigma_w=nan) returned NaN weights (and inf gave ±inf) without a
    word, where layer_spectrum_sweep, which runs the same draws, rejects the same scales."""
    from delyap.layer_spectrum import random_network_draws

    for kw in ({"sigma_w": math.nan, "sigma_b": 0.0}, {"sigma_w": 1.0, "sigma_b": math.inf}):
        name = next(k for k, v in kw.items() if not math.isfinite(v))
        with pytest.raises(ValueError, match=f"^{name}: must be finite"):
            random_network_draws(3, 2, **kw)
    with pytest.raises(ValueError, match="^input_scale: must be finite"):
        random_network_draws(3, 2, 1.0, 0.0, input_scale=math.nan)
    d = random_network_draws(3, 2, 1.0, 0.0)
    assert np.isfinite(d["weights"]).all()


def test_monitor_backward_at_a_nan_point_records_instead_of_blaming_the_loss():
    """monitor.backward(loss) whose first record falls on a diverged point (NaN loss) raised
    ValueError('loss: nan is not the monitored full-batch loss … (nan)'): NaN compared with
    NaN, and the message blamed the user's loss convention. The record is now kept with
    converged False and the convention is checked at the next finite record."""
    net = _mlp([2, 6, 1])
    X, Y = _data()
    crit = torch.nn.MSELoss()
    monitor = sgd.SharpnessMonitor(net, X, Y, every=1, loss=crit)
    with torch.no_grad():
        net[0].weight[0, 0] = math.nan
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    res = monitor.backward(crit(net(X), Y), opt)
    assert res.status == 3
    rec = monitor.records
    assert np.isnan(rec["sharpness"][0]) and not rec["converged"][0]
    # A wrong convention is still caught once the loss is finite.
    fresh = _mlp([2, 6, 1])
    mon2 = sgd.SharpnessMonitor(fresh, X, Y, every=1, loss=crit)
    with pytest.raises(ValueError, match="^loss: .* is not the monitored full-batch loss"):
        mon2.backward(2.0 * crit(fresh(X), Y), torch.optim.SGD(fresh.parameters(), lr=0.1))


def test_odeint_dde_of_an_integer_state_names_h0():
    """odeint_dde with an integer h0 raised 'tau: expected a 1-D sequence of positive
    delays': τ = 0.5 was cast to h0's integer dtype (0), and the error named τ."""
    with pytest.raises(TypeError, match="^h0: expected a floating-point tensor"):
        dn.odeint_dde(lambda t, h, hd: -h, torch.ones(3, 2, dtype=torch.int64), [0.5], 1.0,
                      dt=0.1)


def test_interpolation_check_does_not_pass_nan_residuals():
    """model_lyapunov / stability_map check that the model interpolates with
    `residual_rms > tol` (False for NaN), so a model with a NaN weight passed as an exact
    minimum and failed later on 'K: contains NaN or inf', naming an internal array;
    train_to_interpolation on it returned a report with loss NaN and no warning (the same
    comparison, `loss > tol`)."""
    net = _mlp([2, 8, 1])
    X = _data()[0][:4]
    with torch.no_grad():
        Y = net(X).detach().clone()
        net[0].weight[0, 0] = math.nan
    with pytest.raises(ValueError, match="^model: does not interpolate the data"):
        sgd.model_lyapunov(net, X, Y, 0.1, 2, steps=100)
    with pytest.warns(dl.ConvergenceWarning, match="loss nan above tol"):
        rep = sgd.train_to_interpolation(net, X, Y, max_iter=3)
    assert math.isnan(rep["loss"])
