"""Review checks of the C++ neural pass's shared delayed reads (tests/test_nn_shared_reads.py
covers RK4/DP5 on a uniform grid, both product paths, τ = dt, two delays and rejected adaptive
steps) in the corners it leaves out, against torch's autograd through ``odeint_dde``:
Euler and BS3; a delay longer than the pass (every read in the constant history, so the whole
pass is one group and its adjoint goes to h0 alone) beside one that is not; a tiny step after
steps equal to the delay (every stage of that step reads θ < 1e-9 of the previous step, snapped
to θ = 0: one group spanning a whole step); three delays with stacked layers, the time input
and every activation on several row chunks; Hairer's first step guess of an adaptive pass
(initial_derivative evaluates P = Σ_k h0 W_kᵀ before its stage); and non-finite inputs, which
must stay non-finite on both product paths."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_reference import torch_field  # noqa: E402

from delyap import _core  # noqa: E402
from delyap.nn import odeint_dde  # noqa: E402

METHODS = {"RK4": _core.Method.RK4, "DP5": _core.Method.DP5, "BS3": _core.Method.BS3,
           "Euler": _core.Method.Euler}
# softplus exactly, log(1 + e^z) (torch's F.softplus returns z above z = 20)
ACTS = (torch.tanh, torch.relu, lambda z: torch.logaddexp(z, torch.zeros_like(z)), torch.sigmoid)


def _weights(dim, hidden, n_delays, batch, seed, stack=0, time_input=False):
    rng = np.random.default_rng(seed)
    return {"h0": rng.standard_normal((batch, dim)), "W": rng.standard_normal((hidden, dim)),
            "Wd": rng.standard_normal((n_delays, hidden, dim)) / max(n_delays, 1) ** 0.5,
            "b": rng.standard_normal(hidden),
            "Wo": 1.5 * rng.standard_normal((dim, hidden)) / hidden ** 0.5,
            "Vh": rng.standard_normal((stack, hidden, hidden)) / hidden ** 0.5 if stack else None,
            "ch": rng.standard_normal((stack, hidden)) if stack else None,
            "wt": rng.standard_normal(hidden) if time_input else None,
            "lam": rng.standard_normal((batch, dim))}


def _core_pass(w, tau, method, grid, budget, small, act=0, threads=1):
    extra = {"w_time": w["wt"], "W_hidden": w["Vh"], "b_hidden": w["ch"],
             "small_kernels": small}
    out = _core.neural_forward(w["h0"], w["W"], w["Wd"], w["b"], w["Wo"], tau, act,
                               METHODS[method], grid[-1], 1e-6, 1e-8, 0.0, grid, 10**6, threads,
                               True, activation_bytes=budget, **extra)
    g = _core.neural_backward(w["W"], w["Wd"], w["b"], w["Wo"], tau, act, METHODS[method],
                              out["t"], out["X"], out["K"], w["lam"], threads, True, A=out["A"],
                              **extra)
    return out, g


def _torch_reference(w, tau, method, grid, act=0):
    names = {"h0": "h0", "W": "W", "Wd": "W_delay", "b": "b", "Wo": "W_out", "Vh": "W_hidden",
             "ch": "b_hidden", "wt": "w_time"}
    p = {k: torch.tensor(w[k], requires_grad=True) for k in names if w[k] is not None}
    tau_t = torch.tensor(list(tau), dtype=torch.float64, requires_grad=True)
    f = torch_field(p["W"], p["Wd"], p["b"], p["Wo"], p.get("Vh", ()), p.get("ch", ()),
                    ACTS[act], p.get("wt"))
    y = odeint_dde(f, p["h0"], tau_t, float(grid[-1]), method=method, grid=grid)
    grads = torch.autograd.grad((y * torch.tensor(w["lam"])).sum(), [*p.values(), tau_t],
                                allow_unused=True)
    ref = {names[k]: (np.zeros(v.shape) if gr is None else gr.numpy())
           for (k, v), gr in zip(p.items(), grads)}
    ref["tau"] = grads[-1].numpy()
    return y.detach().numpy(), ref


def _check_all_paths(w, tau, method, grid, act=0, threads=(1,)):
    ref_y, ref_g = _torch_reference(w, tau, method, grid, act)
    for small in (True, False):
        if small and w["h0"].shape[1] > 8:
            continue  # the small kernels take dim ≤ 8 only
        for budget in (1e9, 0.0):  # activations kept; recomputed in the backward
            for th in threads:
                out, g = _core_pass(w, np.asarray(tau, float), method, grid, budget, small, act,
                                    th)
                what = f"small={small} budget={budget} threads={th}"
                np.testing.assert_allclose(out["y"], ref_y, rtol=0,
                                           atol=1e-13 * (1 + np.abs(ref_y).max()), err_msg=what)
                for name, r in ref_g.items():
                    np.testing.assert_allclose(g[name], r, rtol=0,
                                               atol=1e-11 * (1 + np.abs(r).max()),
                                               err_msg=f"{name} {what}")


@pytest.mark.parametrize("method", ["Euler", "BS3", "RK4", "DP5"])
@pytest.mark.parametrize("dim", [3, 10])  # small kernels; BLAS (dim > 8)
def test_delays_past_the_pass_share_the_constant_history(method, dim):
    # τ = 2 > T: every read of that delay is h0, one group over the whole pass (its ∂L/∂y goes
    # to h0 once, no τ term); τ = 0.1 = dt beside it makes new groups at every stage.
    w = _weights(dim, 10, 2, 7, seed=21 + dim)
    _check_all_paths(w, [0.1, 2.0], method, np.linspace(0.0, 1.0, 11))
    _check_all_paths(_weights(dim, 10, 1, 7, seed=22), [2.0], method, np.linspace(0.0, 1.0, 11))


@pytest.mark.parametrize("method", ["Euler", "BS3", "RK4", "DP5"])
def test_a_tiny_step_after_steps_equal_to_the_delay_is_one_group(method):
    # Steps of 0.1 = τ, then a step of 1e-11: its stages read step n − 1 at θ = c_j·1e-10,
    # snapped to 0, so they share one read (only X[n−1] gets their adjoint); the next step's
    # first read (θ = 1e-10, not snapped) starts a new group. The second delay reads the
    # constant history throughout, so it never splits a group.
    grid = np.r_[np.linspace(0.0, 0.5, 6), 0.5 + 1e-11, 0.5 + 1e-11 + np.linspace(0.1, 0.4, 4)]
    for taus in ([0.1], [0.1, 2.0]):
        _check_all_paths(_weights(3, 10, len(taus), 7, seed=31), taus, method, grid)


@pytest.mark.parametrize("method", ["RK4", "DP5", "BS3"])
def test_three_delays_with_stacked_layers_and_time_input_on_row_chunks(method):
    # 41 rows on 3 threads: row chunks with r0 > 0, each Pass with its own groups; the time
    # input's gradient is taken per stage (ts · gb) while P is shared across the group.
    w = _weights(3, 8, 3, 41, seed=41, stack=2, time_input=True)
    for act in (0, 3):
        _check_all_paths(w, [0.1, 0.25, 0.3], method, np.linspace(0.0, 1.0, 11), act=act,
                         threads=(1, 3))


@pytest.mark.parametrize("n_delays,dim", [(1, 3), (2, 3), (2, 10)])
def test_first_step_guess_sees_the_delayed_product(n_delays, dim):
    # Hairer's guess 0.01·d0/d1 with f0 = f(h0, h0, …) (the history is h0): a guess that missed
    # P = Σ_k h0 W_kᵀ, or used a stale one, gives another first step. Mild weights and a loose
    # tolerance: the first step is accepted, and τ > T leaves it uncapped.
    w = _weights(dim, 12, n_delays, 5, seed=51)
    w["W"] *= 0.5
    h0, tau = w["h0"], np.array([5.0, 6.0][:n_delays])
    z = h0 @ w["W"].T + sum(h0 @ Wk.T for Wk in w["Wd"]) + w["b"]
    f0 = np.tanh(z) @ w["Wo"].T
    scale = 1e-5 + 1e-3 * np.abs(h0)
    d0 = np.sqrt(((h0 / scale) ** 2).mean(axis=1)).max()
    d1 = np.sqrt(((f0 / scale) ** 2).mean(axis=1)).max()
    for small in (True, False):
        if small and dim > 8:
            continue
        out = _core.neural_forward(h0, w["W"], w["Wd"], w["b"], w["Wo"], tau, 0,
                                   _core.Method.DP5, 1.0, 1e-3, 1e-5, 0.0, None, 10**6, 1, True,
                                   activation_bytes=0.0, small_kernels=small)
        assert out["rejected"] == 0
        np.testing.assert_allclose(out["t"][1], 0.01 * d0 / d1, rtol=1e-12, atol=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dim", [3, 10])
def test_non_finite_inputs_stay_non_finite_on_both_product_paths(bad, dim):
    # One entry of h0 NaN (or inf: inf − inf in z = u Wᵀ + P) makes that sample's z NaN, so
    # torch's output row is NaN; the core must not return finite numbers for it. FAILS on
    # the BLAS path (dim > 8 or small_kernels=False) with tanh: tanh_array clamps z to
    # [−20, 20] with std::max(−20, std::min(20, z)), which maps NaN to 20, so tanh(NaN) = 1.
    w = _weights(dim, 8, 2, 6, seed=61)
    w["h0"][2, 1] = bad
    grid = np.linspace(0.0, 1.0, 11)
    ref_y, _ = _torch_reference(w, [0.1, 0.25], "RK4", grid)
    assert not np.isfinite(ref_y[2]).any() and np.isfinite(np.delete(ref_y, 2, 0)).all()
    for small in (True, False):
        if small and dim > 8:
            continue
        out, _ = _core_pass(w, np.array([0.1, 0.25]), "RK4", grid, 0.0, small)
        np.testing.assert_array_equal(np.isfinite(out["y"]), np.isfinite(ref_y),
                                      err_msg=f"small={small}")
