"""The fixed-storage ensemble solver: the per-trajectory code the CUDA kernel runs
(solve_fixed_member), executed on the CPU by its host mirror in _core and compared with the
regular growing-buffer solver. Inputs are random each run."""
import numpy as np
import pytest
from cuda_backends import CupyLike

import delyap as dl
import delyap.sgd
from delyap import _core, rhs
from delyap._fixed import solve_fixed
from delyap.history import build_history


def fixed_solve(system, history, t_span, t_eval, capacity=None, **options):
    opt = _core.SolverOptions()
    for key, value in options.items():
        setattr(opt, key, value)
    hist = build_history(history, system, t_span[0], None, history_points=33)
    return solve_fixed(system, hist, t_span[0], t_span[1], np.asarray(t_eval, float), opt, _core,
                       capacity)


def test_mackey_glass_sweep_is_bitwise_the_regular_solver():
    rng = np.random.default_rng(106)
    tau = rng.uniform(2.0, 30.0, size=40)
    beta = rng.uniform(0.18, 0.22, size=40)
    sys = rhs.mackey_glass(beta=beta, tau=tau)
    te = np.linspace(0.0, 200.0, 201)
    h0 = rng.uniform(0.3, 1.2, size=(40, 1))
    ref = dl.solve_dde(sys, h0, (0.0, 200.0), te)
    got = fixed_solve(sys, h0, (0.0, 200.0), te)
    assert np.all(got["status"] == 0)
    np.testing.assert_array_equal(got["y"], ref.y)
    np.testing.assert_array_equal(got["y_final"], ref.y_final)
    np.testing.assert_array_equal(got["stats"][:, 0], ref.stats["accepted"])


@pytest.mark.parametrize("method, n_delays", [("DP5", 2), ("BS3", 2), ("DP5", 4)])
def test_linear_multi_delay_batch_matches_the_regular_solver(method, n_delays):
    # 4 delays: up to C(10, 6) − 1 = 209 discontinuity points per trajectory (all kept).
    rng = np.random.default_rng(107)
    b, d = 6, 3
    A = -np.eye(d) + 0.2 * rng.standard_normal((b, d, d))
    B = 0.3 / n_delays * rng.standard_normal((b, n_delays, d, d))
    tau = rng.uniform(0.3, 2.0, size=(b, n_delays))
    sys = rhs.linear(A, B, tau)
    te = np.linspace(0.0, 15.0, 61)
    ref = dl.solve_dde(sys, np.ones(d), (0.0, 15.0), te, method=method, rtol=1e-8)
    # BS3 at rtol 1e-8 keeps ~500 anchors in a window: beyond the default 128.
    got = fixed_solve(sys, np.ones(d), (0.0, 15.0), te, capacity=1024, method=dl.METHODS[method],
                      rtol=1e-8)
    assert np.all(got["status"] == 0)
    # One discontinuity-point generator (dde/discontinuities.hpp) for both: the same steps.
    np.testing.assert_array_equal(got["y"], ref.y)


def test_history_full_stops_only_the_trajectories_that_overflow():
    sys = rhs.mackey_glass(tau=[1.0, 40.0, 2.0])
    te = np.linspace(0.0, 300.0, 31)
    got = fixed_solve(sys, 0.5, (0.0, 300.0), te, capacity=40, rtol=1e-9)
    names = [dl.STATUS_NAMES[int(s)] for s in got["status"]]
    assert names == ["success", "history_full", "success"]
    ref = dl.solve_dde(rhs.mackey_glass(tau=[1.0, 2.0]), 0.5, (0.0, 300.0), te, rtol=1e-9)
    np.testing.assert_array_equal(got["y"][[0, 2]], ref.y)
    assert np.isnan(got["y"][1, -1, 0])  # stopped: later outputs stay unwritten


def test_device_cuda_gives_clear_errors_without_a_gpu_or_for_unsupported_systems(monkeypatch):
    monkeypatch.delenv("DELYAP_CUDA_EMULATION", raising=False)  # about the real device
    sys = rhs.mackey_glass(tau=[17.0, 20.0])
    if not dl.has_cuda():
        with pytest.raises(dl.CudaUnavailableError, match="device='cuda'"):
            dl.solve_dde(sys, 0.5, (0.0, 10.0), device="cuda")
        with pytest.raises(dl.CudaUnavailableError):
            dl.sgd.gram_lyapunov(np.eye(3), 0.1, 1, steps=10, device="cuda")

        # Chosen because the input is on a GPU: the error says how to stay on the CPU.
        with pytest.raises(dl.CudaUnavailableError, match="pass device='cpu'"):
            dl.solve_dde(sys, CupyLike([0.5]), (0.0, 10.0))
        assert dl.solve_dde(sys, CupyLike([0.5]), (0.0, 10.0), device="cpu").success
    with pytest.raises(ValueError, match="device: expected"):
        dl.solve_dde(sys, 0.5, (0.0, 10.0), device="tpu")
    sd = rhs.mackey_glass(tau=2.0, tau_state=0.5, max_delay=5.0)
    with pytest.raises(ValueError, match="state-dependent"):
        dl.solve_dde(sd, 0.5, (0.0, 10.0), device="cuda")
    py = rhs.python(lambda t, x, xd: -xd[:, 0], 1, 1.0)
    with pytest.raises(ValueError, match="built-in"):
        dl.solve_dde(py, 0.5, (0.0, 10.0), device="cuda")
    import scipy.sparse as sparse

    sl = rhs.stuart_landau(np.ones(4), sparse.csr_matrix(np.ones((4, 4))), 1.0, 1.0)
    with pytest.raises(ValueError, match="history_capacity"):  # networks grow their history
        dl.solve_dde(sl, 0.5, (0.0, 1.0), device="cuda", history_capacity=64)
    with pytest.raises(ValueError, match="history_capacity"):
        dl.solve_dde(sys, 0.5, (0.0, 10.0), history_capacity=64)


def test_python_calls_match_the_cuda_module_signatures(monkeypatch):
    """Without a GPU the kernels cannot run, but the calls the Python layer makes must still
    bind to the CUDA module's functions (names, order, dtypes, optional arguments): they get
    as far as the module's own device check."""
    _cuda = pytest.importorskip("delyap._cuda")
    monkeypatch.delenv("DELYAP_CUDA_EMULATION", raising=False)  # about the real module
    if dl.has_cuda():
        pytest.skip("a GPU is present: tests/test_cuda.py runs these for real")
    import importlib

    import scipy.sparse as sparse

    # importlib, not `import delyap.device` here: that would make `delyap` a local name.
    for module in map(importlib.import_module,
                      ("delyap.device", "delyap.sgd.gram", "delyap.solve")):
        monkeypatch.setattr(module, "cuda_backend", lambda: _cuda)
    no_device = pytest.raises(RuntimeError, match="no CUDA device")
    with no_device:
        dl.solve_dde(rhs.mackey_glass(tau=[5.0, 7.0]), 0.5, (0.0, 10.0), device="cuda")
    with no_device:
        dl.solve_dde(rhs.linear(-np.eye(2), 0.1 * np.eye(2), [1.0, 2.0]), 1.0, (0.0, 5.0),
                     device="cuda")
    J = np.random.default_rng(0).standard_normal((6, 4))
    with no_device:  # rank deficient: basis and eigenvalues passed
        dl.sgd.gram_lyapunov(J @ J.T, [0.1, 0.2], [1, 2], steps=10, device="cuda")
    with no_device:  # full rank: None for both
        dl.sgd.gram_lyapunov(J.T @ J, 0.1, 1, steps=10, device="cuda")
    with no_device:
        dl.sgd.stability_map(J.T @ J, lr=[0.1], batch_size=[1, 2], steps=10, device="cuda",
                             mean_square=False)
    A = sparse.csr_matrix(np.ones((5, 5)) - np.eye(5))
    for tau in (1.0, A * 1.5):
        with no_device:
            dl.solve_dde(rhs.kuramoto(np.ones(5), A, 1.0, tau), 0.1, (0.0, 1.0), device="cuda")
        with no_device:
            dl.solve_dde(rhs.stuart_landau(np.ones(5), A, [0.5, 1.0], tau), 0.1, (0.0, 1.0),
                         np.linspace(0, 1, 3), device="cuda")
