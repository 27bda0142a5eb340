"""Review checks of random-matrix products, the SGD stability map and graph inputs: a window of
several products that loses a direction to rounding fails instead of reporting its noise or
−∞; grids must be axes; targets, check= and tol are validated; graphons whose bound estimate
sees only zeros and duplicated sparse delays are refused."""
import numpy as np
import pytest
import scipy.sparse as sp

import delyap
from delyap import networks


def _rotated():
    # A non-normal product: a rotated upper-triangular matrix, exponents log 2 and log 0.5.
    th = 0.7
    U = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return U @ np.array([[2.0, 0.3], [0.0, 0.5]]) @ U.T


def test_a_window_that_loses_a_direction_fails_instead_of_reporting_minus_infinity():
    A = _rotated()[None]
    exact = np.log([2.0, 0.5])
    for m in (1, 10):   # short windows: exact
        r = delyap.iid_product(A, steps=6000, renorm_interval=m, threads=1)
        np.testing.assert_allclose(r.exponents, exact, atol=2e-3)
    # 30 steps: the columns merge in rounding (gave [0.693, -inf] with success).
    r = delyap.iid_product(A, steps=6000, renorm_interval=30, threads=1, throw=False)
    assert not r.success and r.status_names == "lost_direction"
    with pytest.raises(delyap.IntegrationError):
        delyap.iid_product(A, steps=6000, renorm_interval=30, threads=1)
    # Underflow of the small direction within 110 steps (gave [0, -inf] with success).
    r = delyap.iid_product(np.diag([1.0, 1e-3])[None], steps=1000, renorm_interval=110,
                           threads=1, throw=False)
    assert r.status_names == "lost_direction"
    # One product per window: a singular matrix's −∞ stays the exact, successful answer.
    r = delyap.iid_product(np.diag([1.0, 0.0])[None], steps=100, threads=1)
    assert r.success and r.exponents[0] == 0.0 and r.exponents[1] == -np.inf
    # The sampler path follows the same rule.
    r = delyap.iid_product(lambda rng: _rotated(), steps=600, renorm_interval=30, throw=False)
    assert r.status_names == "lost_direction"
    r = delyap.iid_product(lambda rng: _rotated(), steps=3000, renorm_interval=10)
    np.testing.assert_allclose(r.exponents, exact, atol=5e-3)


def test_a_sampler_turning_complex_is_refused():
    draws = [0]

    def sampler(rng):
        draws[0] += 1
        return np.eye(2) if draws[0] == 1 else 2j * np.array([[0.0, 1.0], [1.0, 0.0]])

    with pytest.raises(TypeError, match="sampler\\(rng\\): returned a complex matrix at draw 2"):
        delyap.iid_product(sampler, steps=100)


def test_stability_map_grids_targets_and_checks():
    from delyap.sgd import model_lyapunov, stability_map

    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 10))
    K = X @ X.T
    with pytest.raises(ValueError, match="lr: expected an increasing 1-D grid"):
        stability_map(K, lr=[0.6, 0.1, 0.5, 0.3], batch_size=[6], steps=200, threads=1)
    with pytest.raises(ValueError, match="batch_size: expected an increasing 1-D grid"):
        stability_map(K, lr=[0.1, 0.3], batch_size=[4, 2], steps=200, threads=1)
    Xt = torch.tensor(X)
    model = torch.nn.Linear(10, 1, bias=False).double()
    Y = model(Xt).detach()
    with pytest.raises(ValueError, match="Y: 2 target values per sample, the model gives 1"):
        model_lyapunov(model, Xt, torch.cat([Y, Y], 1), 0.3, 2, steps=200, threads=1)
    with pytest.raises(ValueError, match="check: expected 'raise', 'warn' or 'ignore'"):
        stability_map(model, Xt, Y + 0.1, lr=[0.3], batch_size=[2], steps=200, threads=1,
                      check="rasie")
    with pytest.raises(ValueError, match="tol"):
        stability_map(model, Xt, Y, lr=[0.3], batch_size=[2], steps=200, threads=1, tol=-1.0)
    # largest_stable_lr reads the lr values, not the last stable index.
    m = stability_map(K, lr=[0.05, 0.1, 0.2], batch_size=[6], steps=2000, threads=1,
                      mean_square=False)
    stable = m.stable[0]
    assert m.largest_stable_lr()[0] == (max(np.array([0.05, 0.1, 0.2])[stable])
                                        if stable.any() else np.nan)


def test_graph_inputs_a_zero_bound_estimate_and_duplicated_delays():
    n = 3000

    def band(x, y):  # nonzero only within 10/n of the diagonal: zero on the 256-point grid
        # used to estimate its bound (its points are 11.7/n apart)
        d = np.abs(x - y)
        return ((d > 0) & (d <= 10.0 / n)).astype(float)

    with pytest.raises(ValueError, match="w_max: W is zero at all"):
        networks.sample_graph(band, n, seed=0, positions="grid")
    A, _ = networks.sample_graph(band, n, seed=0, positions="grid", w_max=1.0)
    assert A.nnz > 0
    # Two stored delays 0.5 for one (i, j) of a COO delay matrix were summed into 1.0.
    adj = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    tau = sp.coo_matrix((np.array([0.5, 0.5, 0.5]), (np.array([0, 0, 1]), np.array([1, 1, 0]))),
                        shape=(2, 2))
    with pytest.raises(ValueError, match="one delay per entry"):
        delyap.rhs.kuramoto(np.zeros(2), adj, coupling=1.0, tau=tau)
