"""Labelled results: .to_xarray() names the dimensions and carries the swept parameters as
coordinates; .to_netcdf() / .to_zarr() write it. Values are checked against the arrays."""
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import delyap as dl

xr = pytest.importorskip("xarray")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        yield


def test_tau_sweep_solution_is_labelled_by_tau():
    taus = np.linspace(5, 20, 6)
    te = np.linspace(0, 40, 9)
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=taus), 0.5, (0, 40), t_eval=te)
    ds = sol.to_xarray()
    assert ds.y.dims == ("trajectory", "time", "component")
    np.testing.assert_array_equal(ds.tau.values, taus)
    np.testing.assert_array_equal(ds.time.values, te)
    np.testing.assert_array_equal(ds.y.values, sol.y)
    np.testing.assert_array_equal(ds.status.values, sol.status)
    np.testing.assert_array_equal(ds.stats_accepted.values, sol.stats["accepted"])
    by_tau = ds.swap_dims(trajectory="tau")
    np.testing.assert_array_equal(by_tau.y.sel(tau=taus[3]).values, sol.y[3])
    # only the swept parameter labels the batch (beta, gamma, n are scalars)
    assert "beta" not in ds.coords


def test_single_trajectory_and_reduced_output():
    sol = dl.solve_dde(dl.rhs.mackey_glass(), 0.5, (0, 20), t_eval=[0, 10, 20])
    ds = sol.to_xarray()
    assert ds.y.dims == ("time", "component") and "trajectory" not in ds.dims
    np.testing.assert_array_equal(ds.y.values, sol.y)
    n = 5
    rows = np.arange(n)
    A = sp.csr_matrix((np.ones(n), (rows, (rows + 1) % n)), shape=(n, n))
    # N = 5 nodes and 5 couplings: omega has the batch length too, but only coupling sweeps
    net = dl.rhs.kuramoto(np.linspace(-1, 1, n), A, coupling=np.linspace(0, 2, n), tau=0.5)
    sol = dl.solve_dde(net, np.zeros(n), (0, 10), t_eval=[0, 5, 10], output="order_parameter")
    ds = sol.to_xarray()
    assert list(ds.component.values) == ["r", "psi"]
    np.testing.assert_array_equal(ds.coupling.values, np.linspace(0, 2, n))
    assert "omega" not in ds.coords
    np.testing.assert_array_equal(ds.y.sel(component="r").values, sol.y[..., 0])


def test_lyapunov_sweep_and_products():
    taus = np.array([6.0, 9.0, 12.0])
    res = dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=taus), 0.5, 2, 100.0)
    ds = res.to_xarray()
    assert ds.exponents.dims == ("parameter", "exponent")
    np.testing.assert_array_equal(ds.tau.values, taus)
    np.testing.assert_array_equal(ds.exponents.values, res.exponents)
    np.testing.assert_array_equal(ds.stderr.values, res.stderr)
    assert list(ds.exponent.values) == [1, 2]
    mats = np.stack([np.stack([np.eye(2) * s, np.diag([1.0, 0.5])]) for s in (0.5, 0.9, 1.2)])
    prod = dl.iid_product(mats, steps=100)
    dp = prod.to_xarray()
    assert dp.exponents.dims == ("problem", "exponent")
    np.testing.assert_array_equal(dp.exponents.values, prod.exponents)
    np.testing.assert_array_equal(dp.running.values, prod.running)


def test_sgd_results_are_labelled_by_lr_and_batch_size(tmp_path):
    from delyap import sgd

    rng = np.random.default_rng(3)
    J = rng.standard_normal((8, 5))
    K = J @ J.T
    grid = sgd.stability_map(K, lr=[0.02, 0.05, 0.1], batch_size=[1, 4], steps=200)
    ds = grid.to_xarray()
    assert ds.top.dims == ("batch_size", "lr")
    np.testing.assert_array_equal(ds.lr.values, grid.lr)
    np.testing.assert_array_equal(ds.batch_size.values, grid.batch_size)
    np.testing.assert_array_equal(ds.top.sel(batch_size=4, lr=0.05).values, grid.top[1, 1])
    np.testing.assert_array_equal(ds.mean_square.values, grid.mean_square)
    res = sgd.gram_lyapunov(K, [0.02, 0.05], [2, 4], steps=200)
    dg = res.to_xarray()
    assert dg.exponents.dims == ("config", "exponent")
    np.testing.assert_array_equal(dg.lr.values, [0.02, 0.05])
    np.testing.assert_array_equal(dg.batch_size.values, [2, 4])
    np.testing.assert_array_equal(dg.exponents.values, res.exponents)


def test_netcdf_and_zarr_round_trip(tmp_path):
    taus = np.linspace(5, 20, 4)
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=taus), 0.5, (0, 20), t_eval=[0, 10, 20])
    try:
        sol.to_netcdf(tmp_path / "sol.nc")
    except ValueError as exc:  # no netCDF backend (netCDF4, h5netcdf or scipy) installed
        pytest.skip(str(exc))
    with xr.open_dataset(tmp_path / "sol.nc") as back:
        np.testing.assert_array_equal(back.y.values, sol.y)
        np.testing.assert_array_equal(back.tau.values, taus)
    pytest.importorskip("zarr")
    with warnings.catch_warnings():  # zarr 3 on xarray's consolidated metadata: not ours
        warnings.simplefilter("ignore")
        sol.to_zarr(str(tmp_path / "sol.zarr"))
    back = xr.open_zarr(str(tmp_path / "sol.zarr"))
    np.testing.assert_array_equal(back.y.values, sol.y)
    np.testing.assert_array_equal(back.status.values, sol.status)


def test_missing_xarray_names_the_extra(monkeypatch):
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=[5.0, 6.0]), 0.5, (0, 10))
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match=r"delyap\[xarray\]"):
        sol.to_xarray()
