"""Review checks of the loss conventions around the Hessian tools: chunked operators with torch
loss modules that are sums or weighted means, targets that do not fit the model, the Hessian
path of SGD away from an interpolating point, and the escape hatch's vector-field shape."""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import sgd  # noqa: E402
from delyap.nn import odeint_dde  # noqa: E402


def _dense_top(model, X, Y, crit):
    params = [p for p in model.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    shapes = [p.shape for p in params]

    def loss(th):
        out, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(th[i:i + n].reshape(s))
            i += n
        pred = torch.func.functional_call(model, dict(zip(
            [n for n, _ in model.named_parameters()], out)), (X,))
        return crit(pred, Y)

    return float(torch.linalg.eigvalsh(torch.func.hessian(loss)(theta))[-1])


def test_chunks_of_a_summed_loss_add_up_and_weighted_means_are_refused():
    torch.manual_seed(0)
    X = torch.randn(6, 3, dtype=torch.float64)
    Y = torch.randn(6, 1, dtype=torch.float64)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1)).double()
    crit = torch.nn.MSELoss(reduction="sum")
    exact = _dense_top(model, X, Y, crit)
    for chunk in (None, 2, 4):     # chunk/N weights made these 1/3 and 1/2 of the sum's Hessian
        r = sgd.hessian_eigenvalues(model, X, Y, loss=crit, chunk_size=chunk, hvp="exact",
                                    tol=1e-10)
        assert r.values[0] == pytest.approx(exact, rel=1e-9), chunk
    Yc = torch.tensor([0, 0, 0, 1, 2, 2])
    clf = torch.nn.Linear(3, 3).double()
    weighted = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 5.0, 0.2],
                                                             dtype=torch.float64))
    r = sgd.hessian_eigenvalues(clf, X, Yc, loss=weighted, hvp="exact", tol=1e-10)
    assert r.values[0] == pytest.approx(_dense_top(clf, X, Yc, weighted), rel=1e-9)
    with pytest.raises(ValueError, match="chunk_size: a class-weighted mean"):
        sgd.hessian_eigenvalues(clf, X, Yc, loss=weighted, chunk_size=3)


def test_targets_that_do_not_fit_the_model_are_refused():
    torch.manual_seed(1)
    X = torch.randn(5, 3, dtype=torch.float64)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1)).double()
    with pytest.raises(ValueError, match="Y: a sample's target has 3 values, the model gives 1"):
        sgd.hessian_trace(model, X, torch.randn(5, 3, dtype=torch.float64), loss="mse")
    clf = torch.nn.Linear(3, 3).double()
    with pytest.raises(TypeError, match="Y: 'cross_entropy' takes class indices"):
        sgd.hessian_eigenvalues(clf, X, torch.tensor([0.0, 0.7, 1.0, 2.0, 1.0],
                                                     dtype=torch.float64), loss="cross_entropy")


def test_hessian_path_warns_where_the_point_does_not_interpolate():
    torch.manual_seed(0)
    X = torch.randn(5, 3, dtype=torch.float64)
    Y = torch.randn(5, 2, dtype=torch.float64)
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(),
                                torch.nn.Linear(6, 2)).double()
    sgd.train_to_interpolation(model, X, Y)
    with warnings.catch_warnings(record=True) as caught:   # at interpolation: no warning
        warnings.simplefilter("always")
        r = sgd.hessian_lyapunov(model, X, Y, lr=0.05, batch_size=1, loss="mse", steps=200)
    assert not [w for w in caught if "kept directions" in str(w.message)]
    assert r.info["cut_curvature"] < 1e-6
    with torch.no_grad():
        model[2].bias += 0.3                    # residual rms 0.3: H has rank 36 of D = 38
    with pytest.warns(UserWarning, match="curvature outside its 10 kept directions"):
        r = sgd.hessian_lyapunov(model, X, Y, lr=0.05, batch_size=1, loss="mse", steps=200)
    assert r.info["cut_curvature"] > 1e-2 and r.normal_dim == 10


def test_escape_hatch_checks_the_fields_shape_and_keeps_the_delays_given():
    h0 = torch.randn(3, 2)
    for bad in (lambda t, h, y: h[:, :1], lambda t, h, y: h[0], lambda t, h, y: h.sum()):
        with pytest.raises(ValueError, match=r"f: must return the state's shape \(3, 2\)"):
            odeint_dde(bad, h0, [0.5], 1.0, dt=0.25)
    # float32 states, τ = 0.7 and dt = 0.7: the delay is read as given (0.7, not the float32
    # 0.69999998808, which would make the step longer than the delay).
    out = odeint_dde(lambda t, h, y: -y[:, 0], h0, [0.7], 1.4, dt=0.7)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
