"""SGD stability of torch models: Gram from torch.func, brute-force Hessian reference, and
the behaviour of real SGD runs next to the predicted sign of λ₁."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import delyap as dl  # noqa: E402
from delyap import sgd  # noqa: E402

Z = 4.0


def make_problem(n=6, width=12, outputs=1, seed=0):
    torch.manual_seed(seed)
    X = torch.randn(n, 3, dtype=torch.float64)
    Y = torch.sin(X[:, :outputs] * 1.5) + 0.3 * X[:, 1:2]
    model = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(),
                                torch.nn.Linear(width, outputs)).double()
    if outputs == 1:
        Y = Y[:, 0]
    rep = sgd.train_to_interpolation(model, X, Y)
    assert rep["loss"] < 1e-16 and rep["residual_max"] < 1e-7
    return model, X, Y


@pytest.fixture(scope="module")
def trained():
    return make_problem()


def per_sample_hessians(model, X, Y):
    params = [p for p in model.parameters()]
    theta0 = torch.nn.utils.parameters_to_vector(params).detach().clone()

    def loss_i(theta, i):
        torch.nn.utils.vector_to_parameters(theta, params)
        out = torch.func.functional_call(model, dict(zip([n for n, _ in model.named_parameters()],
                                                         _split(theta, params))), (X[i:i + 1],))
        return 0.5 * ((out.reshape(-1) - Y[i:i + 1].reshape(-1)) ** 2).sum()

    H = [torch.autograd.functional.hessian(lambda th, i=i: loss_i(th, i), theta0).numpy()
         for i in range(X.shape[0])]
    torch.nn.utils.vector_to_parameters(theta0, params)
    return np.array(H)


def _split(theta, params):
    out, k = [], 0
    for p in params:
        out.append(theta[k:k + p.numel()].reshape(p.shape))
        k += p.numel()
    return out


def brute_force_exponents(H, eta, B, steps, k, seed):
    """Product of (I − η H_ξ) on the normal space (range of Σ H_i), numpy QR every step; ξ is B
    distinct samples drawn uniformly (delyap's default batch law)."""
    N, D, _ = H.shape
    w, V = np.linalg.eigh(H.sum(axis=0))
    basis = V[:, np.abs(w) > 1e-9 * np.abs(w).max()]  # range of H (indefinite off a minimum)
    Hn = np.einsum("dr,nde,es->nrs", basis, H, basis)  # restricted per-sample Hessians
    r = basis.shape[1]
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((r, k)))
    logs = np.zeros((steps, k))
    for s in range(steps):
        xi = rng.choice(N, size=B, replace=False)
        q = q - eta * (Hn[xi].mean(axis=0) @ q)
        q, rr = np.linalg.qr(q)
        logs[s] = np.log(np.abs(np.diag(rr)))
    blocks = logs.reshape(20, -1, k).mean(axis=1)
    return logs.mean(axis=0), blocks.std(axis=0, ddof=1) / np.sqrt(20), r


def test_gram_matches_explicit_per_sample_gradients(trained):
    model, X, Y = trained
    K, c = sgd.gram_matrix(model, X, chunk_size=4)
    grads = []
    for i in range(X.shape[0]):
        model.zero_grad()
        model(X[i:i + 1]).sum().backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy().copy())
    G = np.array(grads)
    assert c == 1
    np.testing.assert_allclose(K, G @ G.T, rtol=1e-10, atol=1e-12)
    # Block-by-block assembly (Jacobian too big for the budget) gives the same K.
    K2, _ = sgd.gram_matrix(model, X, chunk_size=4, memory_budget=1)
    np.testing.assert_allclose(K2, K, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("eta, B", [(0.3, 1), (1.5, 2)])
def test_lyapunov_matches_brute_force_hessian_product(trained, eta, B):
    model, X, Y = trained
    H = per_sample_hessians(model, X, Y)
    ref, ref_se, r = brute_force_exponents(H, eta, B, 20_000, 2, seed=1)
    res = sgd.model_lyapunov(model, X, Y, eta, B, steps=40_000, n_exponents=2, seed=3)
    assert res.normal_dim == r == X.shape[0]
    se = np.sqrt(res.stderr**2 + ref_se**2)
    assert np.all(np.abs(res.exponents - ref) < Z * se + 1e-3), (res.exponents, ref, se)


def test_vector_outputs():
    model, X, Y = make_problem(n=5, width=10, outputs=2, seed=1)
    K, c = sgd.gram_matrix(model, X)
    assert c == 2 and K.shape == (10, 10)
    H = per_sample_hessians(model, X, Y)
    ref, ref_se, r = brute_force_exponents(H, 0.4, 2, 20_000, 1, seed=2)
    res = sgd.model_lyapunov(model, X, Y, 0.4, 2, steps=40_000, seed=4)
    assert res.normal_dim == r == 10
    assert abs(res.top - ref[0]) < Z * np.hypot(res.stderr[0], ref_se[0]) + 1e-3


def test_model_with_buffers_batchnorm_eval():
    torch.manual_seed(2)
    X = torch.randn(6, 3, dtype=torch.float64)
    Y = X[:, 0] ** 2
    model = torch.nn.Sequential(torch.nn.Linear(3, 10), torch.nn.BatchNorm1d(10), torch.nn.Tanh(),
                                torch.nn.Linear(10, 1)).double()
    model(X)  # populate running statistics, then freeze them
    model.eval()
    sgd.train_to_interpolation(model, X, Y)
    res = sgd.model_lyapunov(model, X, Y, 0.1, 2, steps=2000)
    assert np.isfinite(res.top) and res.normal_dim == 6


def sgd_distance_after(model, X, Y, eta, B, steps, seed, eps=1e-4):
    """Run real SGD from θ* + ε·noise; return final / initial loss."""
    theta_star = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    g = torch.Generator().manual_seed(seed)
    theta = theta_star + eps * torch.randn(theta_star.shape, generator=g, dtype=theta_star.dtype)
    params = list(model.parameters())
    n = X.shape[0]

    def loss_at(idx):
        res = model(X[idx]).reshape(len(idx), -1) - Y[idx].reshape(len(idx), -1)
        return 0.5 * (res**2).sum() / len(idx)

    torch.nn.utils.vector_to_parameters(theta, params)
    with torch.no_grad():
        start = float(loss_at(torch.arange(n)))
    for _ in range(steps):
        idx = torch.randint(0, n, (B,), generator=g)
        loss = loss_at(idx)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, gr in zip(params, grads):
                p -= eta * gr
        with torch.no_grad():
            if not torch.isfinite(loss) or float(loss) > 1e3:
                break
    with torch.no_grad():
        end = float(loss_at(torch.arange(n)))
    torch.nn.utils.vector_to_parameters(theta_star, params)
    return end / start


def test_real_sgd_follows_the_sign_of_lambda():
    model, X, Y = make_problem(n=4, width=24, seed=5)
    K, _ = sgd.gram_matrix(model, X)
    spec = sgd.gram_spectrum(K)
    lr_stable = 0.5 * 4 / spec.eigenvalues[0]       # well inside the stable region
    lr_unstable = 3.5 * 4 / spec.eigenvalues[0]     # beyond GD's limit for every batch size
    stable = sgd.model_lyapunov(model, X, Y, lr_stable, 1, steps=20_000)
    unstable = sgd.model_lyapunov(model, X, Y, lr_unstable, 1, steps=20_000)
    assert stable.top < -3 * stable.stderr[0] and stable.top < -1e-3
    assert unstable.top > 3 * unstable.stderr[0] and unstable.top > 0.05
    n_steps = int(8 / abs(stable.top))  # e^{2λT} ≈ e^{-16} on the loss, expected
    ratios = [sgd_distance_after(model, X, Y, lr_stable, 1, n_steps, s) for s in range(6)]
    assert np.median(ratios) < 1e-4
    ratios = [sgd_distance_after(model, X, Y, lr_unstable, 1, 200, s) for s in range(6)]
    assert np.median(ratios) > 1e2


def test_bad_input(trained):
    model, X, Y = trained
    with pytest.raises(ValueError, match="lengths differ"):
        sgd.model_lyapunov(model, X, Y[:-1], 0.1, 2, steps=10)
    with pytest.raises(ValueError, match="larger than the data set"):
        sgd.model_lyapunov(model, X, Y, 0.1, 100, steps=10)
    with pytest.raises(ValueError, match="batch_size"):
        sgd.model_lyapunov(model, X, Y, 0.1, 0, steps=10)
    with pytest.raises(ValueError, match="lr"):
        sgd.model_lyapunov(model, X, Y, -0.1, 2, steps=10)
    with pytest.raises(TypeError, match="X"):
        sgd.model_lyapunov(model, X.numpy(), Y, 0.1, 2, steps=10)
    with pytest.raises(ValueError, match="loss"):
        sgd.model_lyapunov(model, X, Y, 0.1, 2, steps=10, loss="hinge")
    frozen = torch.nn.Linear(3, 1).double().requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters"):
        sgd.model_lyapunov(frozen, X, Y, 0.1, 2, steps=10)
    untrained = torch.nn.Linear(3, 1).double()
    with pytest.raises(ValueError, match="does not interpolate.*residual rms"):
        sgd.model_lyapunov(untrained, X, Y, 0.1, 2, steps=10)
    with pytest.warns(dl.ConvergenceWarning, match="does not interpolate"):
        sgd.model_lyapunov(untrained, X, Y, 0.1, 2, steps=10, check="warn")
    with pytest.raises(ValueError, match="NaN"):
        sgd.model_lyapunov(model, X * float("nan"), Y, 0.1, 2, steps=10)


def test_stability_map_of_a_model(trained, tmp_path):
    model, X, Y = trained
    m = sgd.stability_map(model, X, Y, lr=np.geomspace(0.05, 5, 6), batch_size=[1, 3, 6],
                          steps=2000, progress=False)
    assert m.top.shape == (3, 6) and m.normal_dim == 6
    assert "interpolation" in m.info
    m.plot(str(tmp_path / "m.png"))


def test_hessian_path_agrees_with_gram_path_for_squared_loss(trained):
    model, X, Y = trained
    for eta, B in [(0.3, 1), (1.5, 2)]:
        a = sgd.hessian_lyapunov(model, X, Y, eta, B, loss="mse", steps=20_000, n_exponents=2,
                                 seed=1)
        b = sgd.model_lyapunov(model, X, Y, eta, B, steps=20_000, n_exponents=2, seed=2)
        assert a.normal_dim == b.normal_dim
        se = np.sqrt(a.stderr**2 + b.stderr**2)
        assert np.all(np.abs(a.exponents - b.exponents) < Z * se + 1e-3)
        assert a.gd_exponent == pytest.approx(b.gd_exponent, abs=1e-6)


def test_hessian_path_cross_entropy_matches_dense_hessians():
    """A classifier near (not at) its minimum: compare with the product of explicit Hessians."""
    torch.manual_seed(3)
    X = torch.randn(6, 2, dtype=torch.float64)
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).long()
    clf = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(),
                              torch.nn.Linear(4, 2)).double()
    opt = torch.optim.SGD(clf.parameters(), lr=0.5)
    for _ in range(3000):  # near an interpolating solution: CE below 0.05, Hessians sizeable
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(clf(X), y)
        loss.backward()
        opt.step()
        if loss.item() < 0.05:
            break
    params = list(clf.parameters())
    names = [n for n, _ in clf.named_parameters()]
    theta0 = torch.nn.utils.parameters_to_vector(params).detach()

    def loss_i(theta, i):
        out = torch.func.functional_call(clf, dict(zip(names, _split(theta, params))),
                                         (X[i:i + 1],))
        return torch.nn.functional.cross_entropy(out, y[i:i + 1])

    H = np.array([torch.autograd.functional.hessian(lambda th, i=i: loss_i(th, i),
                                                    theta0).numpy()
                  for i in range(6)])
    eta = 20.0
    ref, ref_se, r = brute_force_exponents(H, eta, 1, 20_000, 1, seed=5)
    # Off an exact minimum the residual curvature adds directions beyond N·c: ask for r of them.
    res = sgd.hessian_lyapunov(clf, X, y, eta, 1, loss="cross_entropy", steps=40_000, seed=6,
                               normal_dim=r, rank_tol=1e-9)
    assert res.normal_dim == r
    assert abs(res.top - ref[0]) < Z * np.hypot(res.stderr[0], ref_se[0]) + 1e-3


def test_renamed_entry_points_keep_working():
    """sgd.lyapunov (read as the delyap.lyapunov module) is now model_lyapunov: the old name
    warns and gives the same result; gram_matrix returns a named (K, n_outputs) pair."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    model = model.double()
    X = torch.randn(5, 2, dtype=torch.float64)
    g = sgd.gram_matrix(model, X)
    assert isinstance(g, sgd.GramMatrix) and g.n_outputs == 2 and g.K.shape == (10, 10)
    K, c = g
    np.testing.assert_array_equal(K, g.K)
    with torch.no_grad():
        Y = model(X)  # an exact interpolating point by construction
    new = sgd.model_lyapunov(model, X, Y, 0.05, 2, steps=200, seed=3)
    with pytest.warns(DeprecationWarning, match="model_lyapunov"):
        old = sgd.lyapunov(model, X, Y, 0.05, 2, steps=200, seed=3)
    np.testing.assert_array_equal(old.exponents, new.exponents)
