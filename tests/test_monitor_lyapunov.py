"""SharpnessMonitor(lyapunov=True): the finite-time Lyapunov exponent of the GD map along the
trajectory, against products of the exact step Jacobians I − η(H + wd·I) (closed form for
linear regression, dense torch.func Hessians at every step for an MLP)."""
import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import sgd  # noqa: E402
from delyap.sgd.hessian_path import _flat_loss_functions, per_sample_loss  # noqa: E402


def _u0(dim, seed=0):
    # the monitor's tangent start: seeded by seed + 7919, unit norm
    u = torch.randn(dim, generator=torch.Generator().manual_seed(seed + 7919),
                    dtype=torch.float64)
    return (u / torch.linalg.norm(u)).numpy()


def _run(net, X, Y, opt, steps, mon):
    crit = torch.nn.MSELoss()
    for _ in range(steps):
        opt.zero_grad()
        mon.backward(crit(net(X), Y), opt)
        opt.step()
        mon.step(opt)


def test_linear_regression_closed_form():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 4, generator=g, dtype=torch.float64)
    Y = torch.randn(30, 1, generator=g, dtype=torch.float64)
    net = torch.nn.Linear(4, 1, bias=False).double()
    H = 2 * (X.T @ X).numpy() / 30                       # nn.MSELoss()
    eta, wd, every = 1.7 / np.linalg.eigvalsh(H)[-1], 0.05, 4
    opt = torch.optim.SGD(net.parameters(), lr=eta, weight_decay=wd)
    mon = sgd.SharpnessMonitor(net, X, Y, every=every, loss=torch.nn.MSELoss(),
                               smallest=False, lyapunov=True)
    _run(net, X, Y, opt, 12, mon)
    M = np.eye(4) - eta * (H + wd * np.eye(4))
    u, logs = _u0(4), []
    for _ in range(12):
        u = M @ u
        logs.append(math.log(np.linalg.norm(u)))
        u /= np.linalg.norm(u)
    r = mon.records
    np.testing.assert_array_equal(r["step"], [0, 4, 8])
    assert math.isnan(r["lyapunov"][0])                  # no step before the first record
    np.testing.assert_allclose(r["lyapunov"][1:], [np.mean(logs[0:4]), np.mean(logs[4:8])],
                               rtol=1e-12)
    np.testing.assert_allclose(r["lyapunov_mean"][2], np.mean(logs[:8]), rtol=1e-12)
    # and over a long run it tends to log max|1 − η(h + wd)| (here the top direction)
    assert np.mean(logs) == pytest.approx(np.log(np.max(np.abs(np.linalg.eigvals(M)))),
                                          abs=0.1)


def test_mlp_against_dense_hessians_per_step():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(),
                              torch.nn.Linear(6, 1)).double()
    X = torch.randn(16, 2, dtype=torch.float64)
    Y = torch.sin(X[:, :1])
    ref_net = copy.deepcopy(net)
    eta, steps, every = 0.4, 10, 5
    opt = torch.optim.SGD(net.parameters(), lr=eta)
    mon = sgd.SharpnessMonitor(net, X, Y, every=every, loss=torch.nn.MSELoss(),
                               smallest=False, lyapunov=True, seed=3)
    _run(net, X, Y, opt, steps, mon)
    mon.record(opt)
    # independent: dense Hessian (2 × the ½-convention per-sample loss) at each GD iterate
    ropt = torch.optim.SGD(ref_net.parameters(), lr=eta)
    crit = torch.nn.MSELoss()
    theta, _, full = _flat_loss_functions(ref_net, X, Y, per_sample_loss("mse"))
    u, logs = _u0(theta.numel(), seed=3), []
    for _ in range(steps):
        theta, _, full = _flat_loss_functions(ref_net, X, Y, per_sample_loss("mse"))
        H = 2 * torch.func.hessian(full)(theta).numpy()
        u = u - eta * H @ u
        logs.append(math.log(np.linalg.norm(u)))
        u /= np.linalg.norm(u)
        ropt.zero_grad()
        crit(ref_net(X), Y).backward()
        ropt.step()
    r = mon.records
    np.testing.assert_allclose(r["lyapunov"][1:], [np.mean(logs[:5]), np.mean(logs[5:])],
                               rtol=1e-10)
    np.testing.assert_allclose(r["lyapunov_mean"][-1], np.mean(logs), rtol=1e-10)


def test_lyapunov_refuses_other_optimizers():
    torch.manual_seed(2)
    net = torch.nn.Linear(3, 1).double()
    X = torch.randn(8, 3, dtype=torch.float64)
    Y = torch.randn(8, 1, dtype=torch.float64)
    crit = torch.nn.MSELoss()
    mon = sgd.SharpnessMonitor(net, X, Y, loss=crit, smallest=False, lyapunov=True)
    with pytest.raises(ValueError, match="momentum"):
        mon.backward(crit(net(X), Y), torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9))
    with pytest.raises(TypeError, match="optimizer"):
        mon.backward(crit(net(X), Y), torch.optim.Adam(net.parameters()))
    with pytest.raises(TypeError, match="optimizer"):
        mon.backward(crit(net(X), Y))
    # without lyapunov the columns are NaN
    mon2 = sgd.SharpnessMonitor(net, X, Y, loss=crit, smallest=False)
    mon2.record()
    assert math.isnan(mon2.records["lyapunov"][0])
