"""Every public type pickles (Dask ships systems, histories, options and results between
processes): systems are rebuilt from their recorded constructor arguments, and a rebuilt
system integrates to bit-identical results."""
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import delyap as dl
from delyap import _core
from delyap.history import build_history

cloudpickle = pytest.importorskip("cloudpickle")


def _ring(n=6):
    rows = np.arange(n)
    return sp.csr_matrix((np.ones(n), (rows, (rows + 1) % n)), shape=(n, n))


def _systems():
    return {
        "mackey_glass": dl.rhs.mackey_glass(tau=np.linspace(5, 20, 4)),
        "mackey_glass_state": dl.rhs.mackey_glass(tau=10.0, tau_state=0.5, max_delay=20.0),
        "linear": dl.rhs.linear(A=np.full((3, 2, 2), -1.0) + np.eye(2),
                                B=[[0.1, 0.0], [0.2, -0.5]], tau=[0.5, 1.0, 1.5]),
        "linear_ode": dl.rhs.linear(A=[[-1.0, 2.0], [0.0, -3.0]]),
        "kuramoto": dl.rhs.kuramoto(np.linspace(-1, 1, 6), _ring(), coupling=[0.5, 1.5],
                                    tau=0.7),
        "stuart_landau": dl.rhs.stuart_landau(np.linspace(-1, 1, 6), _ring(), coupling=1.0,
                                              tau=0.5, lam=0.8),
    }


def _history(system):
    return np.full(system.dim, 0.5)


@pytest.mark.parametrize("name", list(_systems()))
def test_system_round_trip_solves_bit_identically(name):
    system = _systems()[name]
    clone = pickle.loads(pickle.dumps(system))
    assert type(clone) is type(system) and clone is not system
    assert clone.batch_size == system.batch_size and clone.dim == system.dim
    np.testing.assert_array_equal(clone.delays, system.delays)
    kw = dict(t_eval=np.linspace(0, 20, 21))
    a = dl.solve_dde(system, _history(system), (0, 20), **kw)
    b = dl.solve_dde(clone, _history(clone), (0, 20), **kw)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.status, b.status)


def test_recorded_arguments_are_copies():
    """Changing the caller's array after construction changes neither the system nor what
    pickles (inputs are never modified, and never aliased into the pickle)."""
    tau = np.array([5.0, 10.0])
    mg = dl.rhs.mackey_glass(tau=tau)
    tau[:] = 99.0
    clone = pickle.loads(pickle.dumps(mg))
    np.testing.assert_array_equal(clone.delays.ravel(), [5.0, 10.0])


def test_python_system_with_lambda_needs_cloudpickle():
    py = dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], dim=1, tau=1.0)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(py)  # a lambda does not pickle by reference
    clone = cloudpickle.loads(cloudpickle.dumps(py))
    te = np.linspace(0, 5, 11)
    np.testing.assert_array_equal(dl.solve_dde(py, 1.0, (0, 5), t_eval=te).y,
                                  dl.solve_dde(clone, 1.0, (0, 5), t_eval=te).y)
    ode = dl.rhs.python(lambda t, x: -x, dim=1, tau=())  # the ODE wrapper is rebuilt too
    clone = cloudpickle.loads(cloudpickle.dumps(ode))
    np.testing.assert_array_equal(dl.solve_dde(ode, 1.0, (0, 1), t_eval=[1.0]).y,
                                  dl.solve_dde(clone, 1.0, (0, 1), t_eval=[1.0]).y)


def test_options_history_and_methods_round_trip():
    opt = _core.SolverOptions()
    opt.method, opt.rtol, opt.atol, opt.max_step, opt.max_steps = (_core.Method.BS3, 1e-8,
                                                                   1e-11, 0.25, 1234)
    clone = pickle.loads(pickle.dumps(opt))
    for name in ("method", "rtol", "atol", "max_step", "max_steps", "dt", "min_step",
                 "track_discontinuities"):
        assert getattr(clone, name) == getattr(opt, name), name
    mg = dl.rhs.mackey_glass(tau=[5.0, 7.0])
    hist = build_history(lambda t: 0.5 + 0.1 * np.sin(t), mg, 0.0, history_points=17)
    hc = pickle.loads(pickle.dumps(hist))
    for f in ("t", "x", "f", "y0", "jumps"):
        np.testing.assert_array_equal(getattr(hc, f), getattr(hist, f))


def _check_result(res):
    clone = pickle.loads(pickle.dumps(res))
    assert type(clone) is type(res)
    a, b = res.to_dict(), clone.to_dict()
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k])
    assert clone.message == res.message
    return clone


def test_results_round_trip():
    mg = dl.rhs.mackey_glass(tau=[10.0, 17.0])
    _check_result(dl.solve_dde(mg, 0.5, (0, 50), t_eval=[0, 25, 50]))
    single = _check_result(dl.solve_dde(dl.rhs.mackey_glass(), 0.5, (0, 20)))
    assert single.batch_size is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        spec = dl.lyapunov_spectrum(mg, 0.5, 2, 200.0)
        prod = dl.iid_product(np.stack([np.eye(2) * 0.5, np.array([[1.0, 1.0], [0.0, 1.0]])]),
                              steps=200)
    clone = _check_result(spec)
    np.testing.assert_array_equal(clone.info["stats"], spec.info["stats"])
    _check_result(prod)
    failed = dl.solve_dde(dl.rhs.mackey_glass(tau=[5.0, 7.0]), 0.5, (0, 50), max_steps=3,
                          throw=False)
    err = pickle.loads(pickle.dumps(dl.IntegrationError("x", solution=failed, failed=[0, 1])))
    assert err.solution.message == failed.message


def test_sgd_results_round_trip():
    from delyap import sgd

    rng = np.random.default_rng(1)
    J = rng.standard_normal((8, 5))
    K = J @ J.T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        res = sgd.gram_lyapunov(K, [0.05, 0.1], [2, 4], steps=300, mean_square=True)
        grid = sgd.stability_map(K, lr=[0.05, 0.1], batch_size=[2, 4], steps=300)
    _check_result(res)
    clone = _check_result(grid)
    np.testing.assert_array_equal(clone.top, grid.top)
    spec = sgd.gram_spectrum(K)
    sc = pickle.loads(pickle.dumps(spec))
    np.testing.assert_array_equal(sc.eigenvalues, spec.eigenvalues)
    ms = sgd.mean_square_exponent(spec, 0.1, 2)
    mc = pickle.loads(pickle.dumps(ms))
    assert mc.value == ms.value and mc.bracket == ms.bracket and mc.certified == ms.certified
