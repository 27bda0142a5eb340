"""client=: sweeps on a real Dask LocalCluster (two worker processes) are bit-identical to the
local run, survive a worker killed mid-sweep, and resume from a store."""
import os
import warnings

import numpy as np
import pytest

import delyap as dl

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        yield


def _same(a, b, keys):
    for k in keys:
        np.testing.assert_array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)),
                                      err_msg=k)


def test_solve_sweep_equals_local_run(client):
    mg = dl.rhs.mackey_glass(tau=np.linspace(5, 30, 41))
    te = np.linspace(0, 100, 11)
    # a callable history: sampled once on the client over the whole batch's window
    kw = dict(t_eval=te, threads=1)
    local = dl.solve_dde(mg, lambda t: 0.5 + 0.1 * np.cos(t), (0, 100), **kw)
    remote = dl.solve_dde(mg, lambda t: 0.5 + 0.1 * np.cos(t), (0, 100), client=client, **kw)
    _same(local, remote, ("t", "y", "status", "t_final", "y_final"))
    for k in local.stats:
        np.testing.assert_array_equal(local.stats[k], remote.stats[k])
    assert remote.info["distributed"]["chunks"] > 2
    np.testing.assert_array_equal(remote.to_xarray().tau.values, np.linspace(5, 30, 41))


def test_network_coupling_sweep_equals_local_run(client):
    """A Kuramoto sweep over the coupling with as many nodes as couplings: only coupling is
    per-trajectory (slicing omega too would build the wrong networks); progress counts the
    chunks' trajectories up to the total."""
    import scipy.sparse as sp

    n = 6
    rows = np.arange(n)
    A = sp.csr_matrix((np.ones(2 * n), (np.r_[rows, rows], np.r_[(rows + 1) % n, (rows + 2) % n])),
                      shape=(n, n))
    net = dl.rhs.kuramoto(np.linspace(-1, 1, n), A, coupling=np.linspace(0, 3, n), tau=0.4)
    theta0 = np.linspace(0, 2 * np.pi, n, endpoint=False)
    te = np.linspace(0, 30, 7)
    local = dl.solve_dde(net, theta0, (0, 30), t_eval=te, output="order_parameter", threads=1)
    calls = []
    remote = dl.solve_dde(net, theta0, (0, 30), t_eval=te, output="order_parameter",
                          client=client, progress=lambda d, t: calls.append((d, t)))
    _same(local, remote, ("y", "status", "y_final"))
    assert calls[-1] == (n, n) and all(b >= a for (a, _), (b, _) in zip(calls, calls[1:]))


def test_lyapunov_sweep_equals_local_run(client):
    # τmax sets the default transient: the chunks must use the whole batch's, not their own
    mg = dl.rhs.mackey_glass(tau=np.linspace(5, 20, 9))
    local = dl.lyapunov_spectrum(mg, 0.5, 2, 300.0, threads=1)
    remote = dl.lyapunov_spectrum(mg, 0.5, 2, 300.0, client=client)
    _same(local, remote, ("exponents", "stderr", "running", "running_t", "status", "vectors"))
    assert remote.info["t_transient"] == local.info["t_transient"]


def test_random_streams_follow_the_global_index(client):
    """Problem i keeps Philox stream i in whichever chunk it runs: a chunk restarting at
    stream 0 would give identical problems identical results."""
    mats = np.stack([np.stack([np.eye(3) * 0.9, np.diag([1.2, 0.4, 0.8])])] * 10)
    local = dl.iid_product(mats, steps=300, threads=1)
    remote = dl.iid_product(mats, steps=300, client=client)
    _same(local, remote, ("exponents", "stderr", "running", "status", "vectors"))
    assert len(np.unique(remote.exponents[:, 0])) == 10  # ten streams, ten estimates

    from delyap import sgd

    rng = np.random.default_rng(2)
    J = rng.standard_normal((12, 6))
    K = J @ J.T
    lrs = np.geomspace(0.01, 0.2, 7)
    g_local = sgd.gram_lyapunov(K, lrs, 3, steps=400, threads=1)
    g_remote = sgd.gram_lyapunov(K, lrs, 3, steps=400, client=client)
    _same(g_local, g_remote, ("exponents", "stderr", "status", "gd_exponent"))
    m_local = sgd.stability_map(K, lr=lrs, batch_size=[1, 3, 12], steps=300, threads=1,
                                mean_square=False)
    m_remote = sgd.stability_map(K, lr=lrs, batch_size=[1, 3, 12], steps=300,
                                 mean_square=False, client=client)
    _same(m_local, m_remote, ("exponents", "stderr", "status"))


def test_worker_killed_mid_sweep_still_completes_equal(client, tmp_path):
    marker = str(tmp_path / "killed")

    def install(path):
        import os as _os

        import delyap.distributed as dd

        def kill_once(index):
            if index == 1 and not _os.path.exists(path):
                open(path, "w").close()
                _os._exit(1)  # the worker process dies mid-task

        dd._chunk_hook = kill_once

    client.run(install, marker)
    try:
        mg = dl.rhs.mackey_glass(tau=np.linspace(5, 30, 24))
        local = dl.solve_dde(mg, 0.5, (0, 80), t_eval=[0, 40, 80], threads=1)
        remote = dl.solve_dde(mg, 0.5, (0, 80), t_eval=[0, 40, 80], client=client)
    finally:
        client.run(lambda: setattr(__import__("delyap.distributed").distributed,
                                   "_chunk_hook", None))
    assert os.path.exists(marker)  # a worker did die
    _same(local, remote, ("y", "status", "t_final"))
    client.wait_for_workers(2, timeout=60)


def test_resume_from_store(client, tmp_path):
    mg = dl.rhs.mackey_glass(tau=np.linspace(5, 30, 20))
    args = (mg, 0.5, 2, 200.0)
    first = dl.lyapunov_spectrum(*args, client=client, store=str(tmp_path))
    run = first.info["distributed"]
    assert run["computed"] == run["chunks"] and run["loaded"] == 0
    folder = tmp_path / run["key"]
    chunks = sorted(folder.glob("chunk_*.npz"))
    assert len(chunks) == run["chunks"]
    for path in chunks[1:3]:  # as if the first run had died before these finished
        path.unlink()
    again = dl.lyapunov_spectrum(*args, client=client, store=str(tmp_path))
    assert again.info["distributed"]["computed"] == 2
    assert again.info["distributed"]["loaded"] == run["chunks"] - 2
    _same(first, again, ("exponents", "stderr", "running", "status"))
    third = dl.lyapunov_spectrum(*args, client=client, store=str(tmp_path), threads=1)
    assert third.info["distributed"]["computed"] == 0  # threads do not change the results
    other = dl.lyapunov_spectrum(mg, 0.5, 2, 250.0, client=client, store=str(tmp_path))
    assert other.info["distributed"]["key"] != run["key"]
    assert other.info["distributed"]["loaded"] == 0


def test_bad_input_is_rejected_on_the_client(client):
    mg = dl.rhs.mackey_glass(tau=[5.0, 6.0])
    with pytest.raises(TypeError, match="client"):
        dl.solve_dde(mg, 0.5, (0, 10), client=object())
    with pytest.raises(ValueError, match="store"):
        dl.solve_dde(mg, 0.5, (0, 10), store="somewhere")
    with pytest.raises(ValueError, match="rtol"):
        dl.solve_dde(mg, 0.5, (0, 10), rtol=-1.0, client=client)
    with pytest.raises(ValueError, match="client"):
        dl.solve_dde(dl.rhs.mackey_glass(), 0.5, (0, 10), client=client)
    py = dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], dim=1, tau=1.0, batch_size=3)
    with pytest.raises(ValueError, match="system"):
        dl.solve_dde(py, 0.5, (0, 10), client=client)
