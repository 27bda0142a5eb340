"""Forward-difference Hessian-vector products (hvp='difference'): their accuracy against exact
products and a dense Hessian, the 'auto' rule (smooth float64 models at loose tolerances only),
and monitor records built on them (training unchanged, values within tolerance)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import sgd  # noqa: E402
from delyap.sgd.sharpness import choose_products, hvp_operator  # noqa: E402


def _problem(act=torch.nn.Tanh, seed=0, N=40, width=12):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, width), act(), torch.nn.Linear(width, width),
                              act(), torch.nn.Linear(width, 1)).double()
    X = torch.randn(N, 3, dtype=torch.float64)
    Y = torch.sin(X[:, :1]) + 0.1 * torch.randn(N, 1, dtype=torch.float64)
    return net, X, Y


def test_difference_products_match_exact_ones():
    net, X, Y = _problem()
    crit = torch.nn.MSELoss()
    exact = hvp_operator(net, X, Y, crit, hvp="exact")
    diff = hvp_operator(net, X, Y, crit, hvp="difference")
    assert diff.loss() == pytest.approx(exact.loss(), rel=1e-14)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        v = torch.randn(exact.dim, generator=gen, dtype=torch.float64) * 3.0
        he, hd = exact(v), diff(v)
        assert float(torch.linalg.norm(hd - he) / torch.linalg.norm(he)) < 1e-6
    # The products are linear in v up to that error (the step scales with 1/‖v‖).
    v = torch.randn(exact.dim, generator=gen, dtype=torch.float64)
    assert torch.allclose(diff(1e-3 * v) * 1e3, diff(v), rtol=0, atol=1e-6 * float(
        torch.linalg.norm(exact(v))))
    assert float(torch.linalg.norm(diff(torch.zeros(exact.dim, dtype=torch.float64)))) == 0.0


def test_difference_eigenvalues_agree_with_dense_hessian():
    net, X, Y = _problem(seed=2)
    crit = torch.nn.MSELoss()
    exact = hvp_operator(net, X, Y, crit, hvp="exact")
    H = torch.stack([exact(e) for e in torch.eye(exact.dim, dtype=torch.float64)]).numpy()
    ev = np.linalg.eigvalsh(0.5 * (H + H.T))
    r = sgd.hessian_eigenvalues(net, X, Y, k=2, loss=crit, which="both", tol=1e-5,
                                hvp="auto")
    assert r.info["hvp"] == "difference"
    scale = np.abs(ev).max()
    np.testing.assert_allclose(r.values[:2], ev[::-1][:2], rtol=0, atol=2e-5 * scale)
    np.testing.assert_allclose(r.values[2:], ev[:2][::-1], rtol=0, atol=2e-5 * scale)


def test_auto_takes_differences_only_where_they_are_safe():
    smooth, X, Y = _problem()
    relu, _, _ = _problem(act=torch.nn.ReLU)
    assert choose_products("auto", smooth, 1e-4, "float64") == "difference"
    assert choose_products("auto", smooth, 1e-8, "float64") == "exact"      # too tight
    assert choose_products("auto", relu, 1e-4, "float64") == "exact"        # kinks
    assert choose_products("auto", smooth.float(), 1e-4, "model") == "exact"  # float32
    assert choose_products("exact", smooth, 1e-4, "float64") == "exact"
    with pytest.raises(ValueError, match="hvp"):
        choose_products("fd", smooth, 1e-4, "float64")
    with pytest.raises(ValueError, match="hvp.*float64"):
        hvp_operator(smooth.float(), X.float(), Y.float(), "mse", precision="model",
                     hvp="difference")
    r = sgd.hessian_eigenvalues(relu, X, Y, tol=1e-4)
    assert r.info["hvp"] == "exact"


def test_monitor_records_on_differences_track_exact_sharpness():
    # Full-batch GD with monitor.backward: the records use forward differences around the
    # training step's own gradient; each must be within its tolerance of a fresh exact Lanczos
    # at the same parameters, and training must be bit-identical to plain GD.
    net, X, Y = _problem(seed=3)
    plain = [p.detach().clone() for p in net.parameters()]
    crit = torch.nn.MSELoss()
    lam0 = sgd.hessian_eigenvalues(net, X, Y, loss=crit).sharpness
    tol = 1e-4
    mon = sgd.SharpnessMonitor(net, X, Y, every=5, loss=crit, smallest=False, tol=tol)
    assert mon.hvp == "difference"
    opt = torch.optim.SGD(net.parameters(), lr=1.5 / lam0)
    checks = []
    for step in range(40):
        opt.zero_grad()
        loss = crit(net(X), Y)
        rec = mon.backward(loss, opt)
        if rec is not None and step in (0, 20, 35):
            ref = sgd.hessian_eigenvalues(net, X, Y, loss=crit, tol=1e-12, hvp="exact")
            checks.append((rec.values[0], ref.sharpness))
        opt.step()
        mon.step(opt)
    r = mon.records
    assert np.all(r["converged"]) and len(checks) == 3
    for got, ref in checks:
        assert abs(got - ref) <= 1.01 * tol * ref
    # The same run without the monitor.
    net2, _, _ = _problem(seed=3)
    for p, q in zip(net2.parameters(), plain):
        assert torch.equal(p.detach(), q)
    opt2 = torch.optim.SGD(net2.parameters(), lr=1.5 / lam0)
    for _ in range(40):
        opt2.zero_grad()
        crit(net2(X), Y).backward()
        opt2.step()
    for p, q in zip(net.parameters(), net2.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("hvp", ["exact", "difference"])
def test_non_finite_products_give_the_non_finite_status(hvp):
    # A NaN parameter makes every product NaN: the result says so (status 3, NaN values)
    # instead of a number, and throw=True raises IntegrationError naming the cause.
    import delyap

    net, X, Y = _problem(seed=4)
    with torch.no_grad():
        net[0].weight[0, 0] = float("nan")
    r = sgd.hessian_eigenvalues(net, X, Y, tol=1e-4, hvp=hvp, throw=False)
    assert r.status == 3 and r.status_names == "non_finite" and not r.success
    assert np.isnan(r.values).all() and "not finite" in r.info["error"]
    with pytest.raises(delyap.IntegrationError):
        sgd.hessian_eigenvalues(net, X, Y, tol=1e-4, hvp=hvp)


def test_monitor_keeps_recording_through_a_diverging_run():
    # A run whose parameters turn NaN (as a diverged one does) mid-way: the records from there
    # are NaN and not converged, the earlier ones finite, and the monitor neither raises nor
    # keeps NaN start vectors.
    net, X, Y = _problem(seed=5)
    crit = torch.nn.MSELoss()
    lam0 = sgd.hessian_eigenvalues(net, X, Y, loss=crit).sharpness
    mon = sgd.SharpnessMonitor(net, X, Y, every=2, loss=crit, smallest=False)
    opt = torch.optim.SGD(net.parameters(), lr=1.0 / lam0)
    for step in range(20):
        if step == 11:
            with torch.no_grad():
                net[2].weight[0, 0] = float("inf")
        opt.zero_grad()
        loss = crit(net(X), Y)
        mon.backward(loss, opt)
        opt.step()
        mon.step(opt)
    r = mon.records
    bad = ~np.isfinite(r["sharpness"])
    assert np.array_equal(bad, r["step"] > 11)
    assert r["converged"][~bad].all() and not r["converged"][bad].any()
    assert np.isfinite(mon._last).all()


def test_difference_gradient_is_the_loss_gradient_in_chunks_and_under_no_grad():
    # The products' gradients come from plain autograd on the flat parameters: they must equal
    # the model's own gradient, chunked or not, also when called inside torch.no_grad() (as
    # the gradient-flow reference does).
    net, X, Y = _problem(seed=4, N=37)
    crit = torch.nn.MSELoss()
    crit(net(X), Y).backward()
    ref = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    whole = hvp_operator(net, X, Y, crit, hvp="difference")
    chunked = hvp_operator(net, X, Y, crit, hvp="difference", chunk_size=10)
    with torch.no_grad():
        for op in (whole, chunked):
            torch.testing.assert_close(op.gradient(), ref, rtol=1e-12, atol=1e-15)
        assert chunked.loss() == pytest.approx(float(crit(net(X), Y)), rel=1e-13)
    v = torch.randn(whole.dim, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(chunked(v), whole(v), rtol=0,
                               atol=1e-6 * float(torch.linalg.norm(whole(v))))


def test_monitor_first_record_starts_like_hessian_eigenvalues():
    # Cold, the monitor's first record takes hessian_eigenvalues' Jᵀ1 start (with the same
    # seeded random part): the same products, the same value. A random start needs more.
    net, X, Y = _problem(seed=7, N=60, width=16)
    crit = torch.nn.MSELoss()
    tol = 1e-3
    ref = sgd.hessian_eigenvalues(net, X, Y, loss=crit, tol=tol)
    rnd = sgd.hessian_eigenvalues(net, X, Y, loss=crit, tol=tol, start="random")
    assert ref.info["hvp"] == "difference" and ref.iterations < rnd.iterations
    for backward in (False, True):
        mon = sgd.SharpnessMonitor(net, X, Y, loss=crit, smallest=False, tol=tol)
        if backward:
            mon.backward(crit(net(X), Y))
        else:
            mon.record()
        res = mon.records
        # + the two gradients of the monitor's check of its difference products (first record)
        assert int(res["hvps"][0]) == ref.iterations + 2
        assert res["sharpness"][0] == pytest.approx(ref.values[0], rel=1e-7)
    net.zero_grad()
