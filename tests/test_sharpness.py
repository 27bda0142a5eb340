"""Hessian eigenvalues / trace / density of torch models, and the sharpness monitor (edge of
stability). Exact references: linear regression (H = XᵀX/N), dense torch.func.hessian of tiny
models, a closed-form saddle, and the Gram path at an interpolating point."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import IntegrationError, sgd  # noqa: E402
from delyap.sgd.hessian_path import _flat_loss_functions, per_sample_loss  # noqa: E402


def _regression(seed=0, N=40, d=6):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, d, generator=g, dtype=torch.float64)
    Y = torch.randn(N, 1, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    return model, X, Y


def _mlp(seed=0, N=20, d_in=3, width=8, c=2):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.Tanh(),
                              torch.nn.Linear(width, c)).double()
    X = torch.randn(N, d_in, dtype=torch.float64)
    Y = torch.randn(N, c, dtype=torch.float64)
    return net, X, Y


def _dense_hessian(model, X, Y, loss="mse"):
    theta, _, full = _flat_loss_functions(model, X, Y, per_sample_loss(loss))
    return torch.func.hessian(full)(theta).numpy()


def test_linear_regression_exact_both_conventions():
    model, X, Y = _regression()
    N = X.shape[0]
    H = (X.T @ X).numpy() / N           # ℓ = ½(f − y)²
    w, V = np.linalg.eigh(H)
    r = sgd.hessian_eigenvalues(model, X, Y, k=2, which="both")
    assert r.success
    np.testing.assert_allclose(r.values, [w[-1], w[-2], w[1], w[0]], rtol=1e-10)
    # Eigenvectors (up to sign) and honest residuals.
    for val, vec in zip(r.values, r.vectors):
        assert np.linalg.norm(H @ vec - val * vec) < 1e-10
    assert abs(abs(r.vectors[0] @ V[:, -1]) - 1) < 1e-10
    # torch's MSELoss is mean (f − y)²: twice the Hessian.
    r2 = sgd.hessian_eigenvalues(model, X, Y, k=1, loss=torch.nn.MSELoss())
    np.testing.assert_allclose(r2.values, [2 * w[-1]], rtol=1e-10)


def test_mlp_against_dense_hessian():
    net, X, Y = _mlp()
    H = _dense_hessian(net, X, Y)
    w = np.linalg.eigvalsh(H)
    r = sgd.hessian_eigenvalues(net, X, Y, k=3, which="both", tol=1e-10)
    np.testing.assert_allclose(r.values[:3], w[::-1][:3], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(r.values[3:], w[:3][::-1], rtol=1e-8, atol=1e-10)
    assert w[0] < 0  # not a minimum: the smallest are genuinely negative
    true_res = [np.linalg.norm(H @ v - lam * v) for lam, v in zip(r.values, r.vectors)]
    np.testing.assert_allclose(r.residuals, true_res, atol=1e-9 * abs(w).max())
    # cross-entropy (class targets) as well
    Yc = torch.arange(X.shape[0]) % 2
    Hc = _dense_hessian(net, X, Yc, "cross_entropy")
    rc = sgd.hessian_eigenvalues(net, X, Yc, k=2, loss="cross_entropy")
    np.testing.assert_allclose(rc.values, np.linalg.eigvalsh(Hc)[::-1][:2], rtol=1e-8)


def test_saddle_negative_eigenvalue():
    # f(x) = w2 w1 x at w = 0 with x = y = 1: L = ½(w1 w2 − 1)², H = [[0, −1], [−1, 0]].
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False),
                              torch.nn.Linear(1, 1, bias=False)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    X = torch.ones(1, 1, dtype=torch.float64)
    r = sgd.hessian_eigenvalues(net, X, X.clone(), k=1, which="smallest")
    np.testing.assert_allclose(r.values, [-1.0], atol=1e-12)
    np.testing.assert_allclose(np.abs(r.vectors[0]), [2**-0.5, 2**-0.5], atol=1e-10)
    assert np.sign(r.vectors[0, 0]) == np.sign(r.vectors[0, 1])
    top = sgd.hessian_eigenvalues(net, X, X.clone(), k=1)   # largest *algebraic*
    np.testing.assert_allclose(top.values, [1.0], atol=1e-12)


def test_gram_cross_check_at_interpolation():
    net, X, Y = _mlp(seed=3, N=10, c=1, width=16)
    rep = sgd.train_to_interpolation(net, X, Y, tol=1e-20)
    assert rep["loss"] < 1e-18
    K, c = sgd.gram_matrix(net, X)
    kappa = np.linalg.eigvalsh(K)[::-1] / X.shape[0]     # λ(H) = λ(K)/N for ℓ = ½‖f − y‖²
    r = sgd.hessian_eigenvalues(net, X, Y, k=3)
    np.testing.assert_allclose(r.values, kappa[:3], rtol=1e-7)


def test_float32_model_is_not_modified_and_uses_float64():
    net, X, Y = _mlp(seed=1)
    net32 = torch.nn.Sequential(*[m for m in _mlp(seed=1)[0]]).float()
    r64 = sgd.hessian_eigenvalues(net, X, Y, k=1)
    r32 = sgd.hessian_eigenvalues(net32, X.float(), Y.float(), k=1)
    assert next(net32.parameters()).dtype == torch.float32
    # Same values up to the float32 rounding of the weights themselves.
    np.testing.assert_allclose(r32.values, r64.values, rtol=1e-5)


def test_warm_start_uses_fewer_hvps_and_not_converged_status():
    net, X, Y = _mlp(seed=2)
    cold = sgd.hessian_eigenvalues(net, X, Y, k=1, tol=1e-10)
    warm = sgd.hessian_eigenvalues(net, X, Y, k=1, tol=1e-10, v0=cold.vectors)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.values, cold.values, rtol=1e-9)
    short = sgd.hessian_eigenvalues(net, X, Y, k=1, tol=1e-14, max_iter=3, throw=False)
    assert short.status == 1 and not short.success
    with pytest.raises(IntegrationError):
        sgd.hessian_eigenvalues(net, X, Y, k=1, tol=1e-14, max_iter=3)


def test_chunked_hvp_matches():
    net, X, Y = _mlp(seed=4)
    a = sgd.hessian_eigenvalues(net, X, Y, k=2)
    b = sgd.hessian_eigenvalues(net, X, Y, k=2, chunk_size=7)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-10)


def test_trace_hutchinson_and_slq():
    net, X, Y = _mlp(seed=5)
    H = _dense_hessian(net, X, Y)
    tr = sgd.hessian_trace(net, X, Y, n_probes=400, seed=1)
    assert abs(tr.trace - np.trace(H)) < 4 * tr.stderr
    # The standard error matches the Rademacher variance 2 Σ_{i≠j} H_ij² / n.
    off = H - np.diag(np.diag(H))
    se_theory = math.sqrt(2 * np.sum(off**2) / 400)
    assert 0.8 < tr.stderr / se_theory < 1.25
    # SLQ: each probe's quadrature is exact for zᵀHz, so with the same seed (same probes) the
    # SLQ trace equals Hutchinson's to rounding.
    tr5 = sgd.hessian_trace(net, X, Y, n_probes=5, seed=7)
    dens = sgd.hessian_density(net, X, Y, n_probes=5, n_steps=30, seed=7)
    assert dens.trace == pytest.approx(tr5.trace, rel=1e-9)
    np.testing.assert_allclose(dens.weights.sum(axis=1), 1.0, atol=1e-12)
    # Quadrature nodes lie in the spectrum and the extreme nodes converge to the extremes.
    w = np.linalg.eigvalsh(H)
    assert dens.nodes.max() == pytest.approx(w[-1], rel=1e-8)
    assert dens.nodes.min() >= w[0] - 1e-8
    grid = np.linspace(w[0] - 1, w[-1] + 1, 4001)
    rho = dens.density(grid, width=0.05)
    assert np.sum(rho) * (grid[1] - grid[0]) == pytest.approx(1.0, abs=1e-3)


def test_bad_inputs():
    net, X, Y = _mlp()
    with pytest.raises(ValueError, match="which"):
        sgd.hessian_eigenvalues(net, X, Y, which="top")
    with pytest.raises(ValueError, match="v0"):
        sgd.hessian_eigenvalues(net, X, Y, v0=np.ones(3))
    with pytest.raises(TypeError, match="model"):
        sgd.hessian_eigenvalues("net", X, Y)
    with pytest.raises(ValueError, match="k"):
        sgd.hessian_eigenvalues(net, X, Y, k=0)
    with pytest.raises(ValueError, match="precision"):
        sgd.hessian_eigenvalues(net, X, Y, precision="half")
    with pytest.raises(ValueError, match="X, Y"):
        sgd.hessian_eigenvalues(net, X, Y[:3])


# ----------------------------------------------------------------------------- monitor
def test_momentum_thresholds():
    from delyap.sgd.monitor import momentum_exponent, stability_threshold

    eta, b = 0.1, 0.9
    for nesterov in (False, True):
        edge = stability_threshold(eta, b, nesterov)
        assert momentum_exponent([edge * (1 - 1e-6)], eta, b, nesterov) < 0
        assert momentum_exponent([edge * (1 + 1e-6)], eta, b, nesterov) > 0
    assert stability_threshold(eta) == pytest.approx(20.0)
    assert stability_threshold(eta, b) == pytest.approx(38.0)
    assert momentum_exponent([5.0, -1.0], 0.1) == pytest.approx(math.log(1.1))


def _eos_run(seed=1, lr=0.15, steps=1000, every=20):
    torch.manual_seed(seed)
    X = torch.randn(64, 2, dtype=torch.float64)
    Y = torch.sin(2 * X[:, :1]) * torch.cos(1.5 * X[:, 1:])
    net = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, 1)).double()
    crit = torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    mon = sgd.SharpnessMonitor(net, X, Y, every=every, loss=crit, smallest=False)
    mon.record(opt, step=0)
    losses = []
    with mon.attach(opt):
        for _ in range(steps):
            opt.zero_grad()
            loss = crit(net(X), Y)
            losses.append(float(loss.detach()))
            loss.backward()
            opt.step()
    return mon, np.array(losses)


def test_edge_of_stability(tmp_path):
    lr = 0.15
    mon, losses = _eos_run(lr=lr)
    r = mon.records
    assert r["step"][0] == 0 and r["step"][-1] == 1000 and len(r["step"]) == 51
    np.testing.assert_allclose(r["two_over_lr"], 2 / lr)
    assert r["sharpness"][0] < 0.6 * 2 / lr                 # starts well below 2/η
    final = r["sharpness"][len(r["sharpness"]) * 2 // 3:]
    assert abs(final.mean() / (2 / lr) - 1) < 0.10          # hovers at the edge
    assert np.all(np.abs(final / (2 / lr) - 1) < 0.2)
    assert losses[-1] < 0.2 * losses[0]                     # the loss keeps falling …
    assert np.sum(np.diff(losses[len(losses) // 2:]) > 0) > 20   # … non-monotonically
    assert np.all(r["converged"])
    # The recorded loss is the monitor's own evaluation at the recorded step.
    assert r["loss"][-1] < r["loss"][0]
    mon.to_csv(tmp_path / "eos.csv")
    data = np.genfromtxt(tmp_path / "eos.csv", delimiter=",", names=True)
    np.testing.assert_allclose(data["sharpness"], r["sharpness"])
    pytest.importorskip("matplotlib")
    mon.plot(str(tmp_path / "eos.png"))
    assert (tmp_path / "eos.png").stat().st_size > 0


def test_monitor_momentum_and_exponent():
    net, X, Y = _mlp(seed=6, c=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    mon = sgd.SharpnessMonitor(net, X, Y, every=1, k=2, tol=1e-4)
    res = mon.record(opt)
    H = _dense_hessian(net, X, Y)
    w = np.linalg.eigvalsh(H)
    r = mon.records
    np.testing.assert_allclose(r["top"][0], w[::-1][:2], rtol=1e-6)
    assert r["min_eigenvalue"][0] == pytest.approx(w[0], rel=1e-5, abs=1e-8)
    assert r["threshold"][0] == pytest.approx(1.9 * 2 / 0.05)
    from delyap.sgd.monitor import momentum_exponent
    assert r["gd_exponent"][0] == pytest.approx(momentum_exponent(w, 0.05, 0.9), rel=1e-6)
    assert res.success
    with pytest.raises(TypeError, match="optimizer"):
        with mon.attach(object()):
            pass


# ----------------------------------------------------------------------------- gradient flow
def test_gradient_flow_against_closed_form_quadratic():
    from scipy.linalg import expm

    model, X, Y = _regression(seed=3, N=30, d=4)
    N = X.shape[0]
    H = (X.T @ X).numpy() / N
    theta_star = np.linalg.solve(H, (X.T @ Y).numpy().ravel() / N)
    theta0 = model.weight.detach().numpy().ravel().copy()
    lam = np.linalg.eigvalsh(H)
    for factor, thr in ((0.3, 1e-3), (1.9, 0.05)):
        eta = factor / lam[-1]
        res = sgd.gradient_flow(model, X, Y, eta, 40, threshold=thr)
        flow = np.array([theta_star + expm(-t * H) @ (theta0 - theta_star) for t in res.times])
        gd = np.array([theta_star + np.linalg.matrix_power(np.eye(4) - eta * H, n)
                       @ (theta0 - theta_star) for n in res.steps])
        np.testing.assert_allclose(res.flow_final, flow[-1], atol=1e-7)
        np.testing.assert_allclose(res.gd_final, gd[-1], atol=1e-12)
        dist = np.linalg.norm(gd - flow, axis=1)
        np.testing.assert_allclose(res.distance, dist, atol=1e-7)
        over = np.flatnonzero(dist > thr)
        assert res.departure_step == (int(over[0]) if over.size else None)
        assert res.departure_step is not None and res.departure_step > 0
        # The flow's loss decreases monotonically (it is a gradient flow).
        assert np.all(np.diff(res.flow_loss) <= 1e-14)
    assert np.array_equal(model.weight.detach().numpy().ravel(), theta0)  # not modified


def _monitored_gd(mon, net, X, Y, lr, steps):
    crit = torch.nn.MSELoss()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    with mon.attach(opt):
        for _ in range(steps):
            opt.zero_grad()
            crit(net(X), Y).backward()
            opt.step()
    return opt


def test_monitor_warm_path_matches_full_lanczos():
    # The cheap path (a few Lanczos steps from the extrapolated previous vector, accepted on
    # its a-posteriori residual) must give the sharpness of a cold, tight Lanczos at the same
    # point within the recorded residual, and that residual must be the true ‖Hv − λv‖.
    net, X, Y = _mlp(seed=7, N=30, width=16, c=1)
    crit = torch.nn.MSELoss()
    lam0 = sgd.hessian_eigenvalues(net, X, Y, loss=crit).sharpness
    tol = 1e-6
    mon = sgd.SharpnessMonitor(net, X, Y, every=5, loss=crit, smallest=False, tol=tol,
                               warm_steps=6)
    _monitored_gd(mon, net, X, Y, 1.0 / lam0, 60)
    r = mon.records
    assert len(r["step"]) == 12 and np.all(r["converged"])
    # After the first (cold) records the warm path carries them: no fallback, few HVPs.
    assert not np.any(r["fallback"][3:])
    assert np.all(r["hvps"][3:] <= 6) and r["hvps"][3:].mean() < r["hvps"][0]
    ref = sgd.hessian_eigenvalues(net, X, Y, loss=crit, tol=1e-12)
    lam = r["sharpness"][-1]
    assert r["residual"][-1] <= tol * lam
    assert abs(lam - ref.sharpness) <= r["residual"][-1]
    H = _dense_hessian(net, X, Y) * 2          # nn.MSELoss() = 2 × delyap's ½‖f − y‖²
    # The vector kept for the next start is the accepted Ritz vector after a free power step
    # (Hy/‖Hy‖): its residual can only be smaller than the recorded one.
    v = mon._last[0]
    rho = float(v @ H @ v)
    assert np.linalg.norm(H @ v - rho * v) <= r["residual"][-1] * (1 + 1e-6)
    assert lam == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=tol)


def test_monitor_falls_back_on_a_bad_warm_start():
    net, X, Y = _mlp(seed=8, N=30, width=16, c=1)
    ref = sgd.hessian_eigenvalues(net, X, Y, k=1, tol=1e-12)
    mon = sgd.SharpnessMonitor(net, X, Y, every=1, smallest=False, tol=1e-8, warm_steps=2)
    good = mon.record()
    assert not mon.records["fallback"][0]          # cold start: the full run, no warm path
    assert good.values[0] == pytest.approx(ref.sharpness, rel=1e-8)
    # A random "previous eigenvector": two Lanczos steps cannot reach 1e-8, the residual check
    # sees it and the record falls back to the full run, which still gets the right value.
    mon._last = np.random.default_rng(0).standard_normal((1, ref.vectors.shape[1]))
    mon._history = []
    res = mon.record()
    r = mon.records
    assert r["fallback"][1] and r["converged"][1] and r["hvps"][1] > 2
    assert res.values[0] == pytest.approx(ref.sharpness, rel=1e-8)
    assert r["residual"][1] <= 1e-8 * r["sharpness"][1]
    # A good warm start (the converged vector at the same point) passes the check in 1–2 HVPs.
    mon.record()
    assert not mon.records["fallback"][2] and mon.records["hvps"][2] <= 2
    with pytest.raises(ValueError, match="extrapolate"):
        sgd.SharpnessMonitor(net, X, Y, extrapolate=9)
    with pytest.raises(ValueError, match="warm_steps"):
        sgd.SharpnessMonitor(net, X, Y, warm_steps=-1)
