"""The C++ neural pass shares a stage's delayed reads, and the delayed part of its first-layer
product P = Σ_k y_k W_kᵀ, with the neighbouring stage that reads the same points (RK4's two
midpoint stages, a step's last stage and the next step's first, DP5's two stages at t + h); its
backward sums those stages' gradients before the delayed part (W_k's gradients, the reads'
adjoints, τ's gradient) runs once. Checked against torch's autograd through ``odeint_dde``, which
evaluates every stage's delayed product on its own, in the corners of the sharing: both product
paths (the small kernels at dim ≤ 8, BLAS above), activations kept and recomputed, a delay equal
to the step (a step's last read and the next step's first then land on one time with different
weights, and are not shared), several delays, τ's gradient, and adaptive passes with rejected
steps (a retried step's first read equals the rejected attempt's)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_reference import torch_field  # noqa: E402

from delyap import _core  # noqa: E402
from delyap.nn import odeint_dde  # noqa: E402

METHODS = {"RK4": _core.Method.RK4, "DP5": _core.Method.DP5, "BS3": _core.Method.BS3,
           "Euler": _core.Method.Euler}


def _weights(dim, hidden, n_delays, batch, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, dim)), rng.standard_normal((hidden, dim)),
            rng.standard_normal((n_delays, hidden, dim)) / n_delays ** 0.5,
            rng.standard_normal(hidden), 1.5 * rng.standard_normal((dim, hidden)) / hidden ** 0.5,
            rng.standard_normal((batch, dim)))


def _core_pass(w, tau, method, t_final, dt, grid, budget, small, rtol=1e-6):
    h0, W, Wd, b, Wo, lam = w
    out = _core.neural_forward(h0, W, Wd, b, Wo, tau, 0, METHODS[method], t_final, rtol,
                               rtol * 1e-2, dt, grid, 10**6, 1, True, activation_bytes=budget,
                               small_kernels=small)
    g = _core.neural_backward(W, Wd, b, Wo, tau, 0, METHODS[method], out["t"], out["X"],
                              out["K"], lam, 1, True, A=out["A"], small_kernels=small)
    return out, g


def _torch_reference(w, tau, method, t_final, grid):
    h0, W, Wd, b, Wo, lam = (torch.tensor(a, requires_grad=True) for a in w)
    tau_t = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    y = odeint_dde(torch_field(W, Wd, b, Wo), h0, tau_t, t_final, method=method, grid=grid)
    grads = torch.autograd.grad((y * lam.detach()).sum(), [h0, W, Wd, b, Wo, tau_t])
    return y.detach().numpy(), dict(zip(("h0", "W", "W_delay", "b", "W_out", "tau"),
                                        (g.numpy() for g in grads)))


def _check(out, g, ref_y, ref_g):
    np.testing.assert_allclose(out["y"], ref_y, rtol=0, atol=1e-13 * (1 + np.abs(ref_y).max()))
    for name, r in ref_g.items():
        np.testing.assert_allclose(g[name], r, rtol=0, atol=1e-11 * (1 + np.abs(r).max()),
                                   err_msg=name)


@pytest.mark.parametrize("dim", [3, 8, 10])  # small kernels (dim 8: small_n8); BLAS (dim > 8)
@pytest.mark.parametrize("method", ["RK4", "DP5"])
@pytest.mark.parametrize("taus", [(0.3,), (0.1, 0.25), (0.1,)])  # dt = 0.1: τ = dt too
def test_shared_reads_give_torchs_values_and_gradients_on_fixed_steps(dim, method, taus):
    w = _weights(dim, 12, len(taus), 9, seed=dim + 7 * len(taus))
    tau = np.array(taus)
    ref = None
    for small in (True, False):
        if small and dim > 8:
            continue  # the small kernels take dim ≤ 8 only
        for budget in (1e9, 0.0):  # activations kept; recomputed in the backward
            out, g = _core_pass(w, tau, method, 1.0, 0.0, np.linspace(0.0, 1.0, 11), budget,
                                small)
            assert len(out["t"]) == 11
            if ref is None:
                ref = _torch_reference(w, taus, method, 1.0, out["t"])
            _check(out, g, *ref)


@pytest.mark.parametrize("method", ["DP5", "BS3"])
def test_shared_reads_on_adaptive_passes_with_rejected_steps(method):
    # A large first guess and stiff-ish weights make the controller reject steps; the retried
    # step's reads must be those of its own attempt.
    w = _weights(4, 16, 2, 11, seed=5)
    w = (w[0], 3.0 * w[1], w[2], w[3], 2.0 * w[4], w[5])
    tau = np.array([0.35, 0.6])
    for budget in (1e9, 0.0):
        out, g = _core_pass(w, tau, method, 1.7, 0.0, None, budget, True, rtol=1e-7)
        assert out["rejected"] > 0 and len(out["t"]) > 10
        _check(out, g, *_torch_reference(w, list(tau), method, 1.7, out["t"]))
