"""GPU against CPU on random inputs (fresh each run, never zeros; the launchers poison every
output before the kernel runs).

Each test runs on every backend this installation has: "gpu" (the CUDA build on a GPU) and
"emulated" (the same CUDA sources compiled for the CPU against cpp/cuda/emulation, built with
-Ccmake.define.DELYAP_CUDA_EMULATION=ON): the emulator runs the launchers, the kernels' indexing
and barriers and the device-buffer handling, with a guard page after every device allocation.
Skipped when there is neither."""
import numpy as np
import pytest
from cuda_backends import BACKENDS, SKIP_REASON, CupyLike, environment

import delyap as dl
import delyap.sgd as sgd
from delyap import _testing


@pytest.fixture(autouse=True, params=BACKENDS or [None])
def backend(request, monkeypatch):
    """device="cuda" goes to the real GPU or to the CPU emulation (DELYAP_CUDA_EMULATION)."""
    if request.param is None:
        pytest.skip(SKIP_REASON)
    for name, value in environment(request.param).items():
        monkeypatch.setenv(name, value)
    assert dl.has_cuda()
    return request.param


def test_backend_is_the_one_asked_for(backend):
    from delyap.device import cuda_backend

    assert cuda_backend().emulated == (backend == "emulated")
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=[5.0, 6.0]), 0.5, (0.0, 10.0), device="cuda")
    assert sol.info["device"] == "cuda"
    assert sol.info["emulated"] == (backend == "emulated")


def test_device_draws_the_cpu_philox_stream():
    from delyap.device import cuda_backend

    rng = np.random.default_rng(109)
    seed, stream = int(rng.integers(0, 2**63)), int(rng.integers(0, 2**32))
    np.testing.assert_array_equal(cuda_backend().philox_uniforms(seed, stream, 100_003),
                                  _testing.philox_uniforms(seed, stream, 100_003))


def test_mackey_glass_ensemble_gpu_matches_cpu():
    rng = np.random.default_rng(110)
    n = 4099  # not a multiple of the block size: the last block is partly idle
    tau = rng.uniform(2.0, 12.0, size=n)  # periodic regimes: rounding differences stay small
    beta = rng.uniform(0.18, 0.22, size=n)
    h0 = rng.uniform(0.3, 1.2, size=(n, 1))
    sys = dl.rhs.mackey_glass(beta=beta, tau=tau)
    te = np.linspace(0.0, 200.0, 101)
    cpu = dl.solve_dde(sys, h0, (0.0, 200.0), te, rtol=1e-8)
    gpu = dl.solve_dde(sys, h0, (0.0, 200.0), te, rtol=1e-8, device="cuda", history_capacity=512)
    assert np.all(gpu.status == 0)
    assert np.all(np.isfinite(gpu.y))
    # The GPU fuses multiply-adds and has its own pow: one-ulp differences flip a few accept /
    # reject decisions, which moves x by up to ~1e-6 at rtol 1e-8 (measured on the CPU by
    # perturbing β by one ulp); a wrong kernel is off by O(1).
    np.testing.assert_allclose(gpu.y, cpu.y, atol=1e-5)


@pytest.mark.parametrize("n_delays", [2, 4])
def test_linear_ensemble_gpu_matches_cpu(n_delays):
    rng = np.random.default_rng(111)
    b, d = 509, 4
    A = -np.eye(d) + 0.2 * rng.standard_normal((b, d, d))
    B = 0.3 / n_delays * rng.standard_normal((b, n_delays, d, d))
    tau = rng.uniform(0.3, 2.0, size=(b, n_delays))
    sys = dl.rhs.linear(A, B, tau)
    te = np.linspace(0.0, 10.0, 41)
    h = rng.uniform(0.5, 1.5, size=d)
    cpu = dl.solve_dde(sys, h, (0.0, 10.0), te, rtol=1e-9)
    gpu = dl.solve_dde(sys, h, (0.0, 10.0), te, rtol=1e-9, device="cuda", history_capacity=1024)
    assert np.all(gpu.status == 0)
    np.testing.assert_allclose(gpu.y, cpu.y, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("sampling", ["iid", "without", "epochs"])
def test_sgd_map_gpu_reproduces_the_cpu_streams(sampling):
    rng = np.random.default_rng(112)
    J = rng.standard_normal((64, 200)) / np.sqrt(200)
    K = J @ J.T
    lrs = rng.uniform(0.2, 3.0, size=12)
    bs = rng.integers(1, 33, size=12)
    cpu = sgd.gram_lyapunov(K, lrs, bs, steps=3000, n_exponents=3, sampling=sampling, seed=5)
    gpu = sgd.gram_lyapunov(K, lrs, bs, steps=3000, n_exponents=3, sampling=sampling, seed=5,
                            device="cuda")
    assert np.all(gpu.status == 0)
    # Same batches, same start: only rounding (FMA contraction, summation order) differs.
    np.testing.assert_allclose(gpu.exponents, cpu.exponents, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gpu.stderr, cpu.stderr, rtol=1e-4, atol=1e-9)


def test_sgd_rank_deficient_gpu_matches_cpu():
    rng = np.random.default_rng(113)
    J = rng.standard_normal((20, 12))  # N > D: rank 12
    K = J @ J.T
    cpu = sgd.gram_lyapunov(K, [0.01, 0.05], [1, 4], steps=4000, n_exponents=2, seed=1)
    gpu = sgd.gram_lyapunov(K, [0.01, 0.05], [1, 4], steps=4000, n_exponents=2, seed=1,
                            device="cuda")
    assert gpu.normal_dim == 12
    assert np.all(gpu.status == 0)
    np.testing.assert_allclose(gpu.exponents, cpu.exponents, rtol=1e-6, atol=1e-9)


def test_sgd_vector_outputs_rank_deficient_epochs_gpu_matches_cpu():
    rng = np.random.default_rng(114)
    J = rng.standard_normal((2 * 15, 18))  # 15 samples × 2 outputs, D = 18 < 30: rank 18
    K = J @ J.T
    kw = dict(steps=3000, n_exponents=3, seed=4, outputs=2, sampling="epochs")
    cpu = sgd.gram_lyapunov(K, [0.01, 0.03], [1, 5], **kw)
    gpu = sgd.gram_lyapunov(K, [0.01, 0.03], [1, 5], device="cuda", **kw)
    assert gpu.normal_dim == 18
    assert np.all(gpu.status == 0)
    np.testing.assert_allclose(gpu.exponents, cpu.exponents, rtol=1e-6, atol=1e-9)


def test_stability_map_in_one_launch_equals_the_cpu_map():
    rng = np.random.default_rng(115)
    J = rng.standard_normal((32, 100)) / 10
    K = J @ J.T
    kw = dict(lr=[0.5, 1.0, 2.0], batch_size=[1, 4, 16], steps=2000, seed=3, mean_square=False)
    cpu = sgd.stability_map(K, **kw)
    gpu = sgd.stability_map(K, device="cuda", **kw)
    assert np.all(np.isfinite(gpu.exponents))
    np.testing.assert_allclose(gpu.exponents, cpu.exponents, rtol=1e-6, atol=1e-9)


def _random_kuramoto(rng, N, per_edge_delays, coupling):
    import scipy.sparse as sp

    A = sp.random(N, N, density=20 / N, format="csr", random_state=int(rng.integers(1 << 31)))
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    omega = rng.normal(1.0, 0.5, size=N)
    tau = 1.0
    if per_edge_delays:
        tau = A.copy()
        tau.data = rng.choice([0.5, 1.0, 1.5], size=tau.nnz)
    return dl.rhs.kuramoto(omega, A, coupling=coupling, tau=tau)


# The GPU sums the error norms in another order than the CPU: step sizes differ by rounding,
# so the two solutions differ by about the tolerance; a wrong kernel is off by O(1) in the
# phases. BS3 runs at rtol 1e-7 (at 1e-8 it takes ~3000 steps, slow on the emulator).
@pytest.mark.parametrize("per_edge_delays", [False, True])
@pytest.mark.parametrize("method", ["DP5", "BS3"])
def test_kuramoto_on_the_gpu_matches_cpu(per_edge_delays, method):
    rng = np.random.default_rng(116)
    N = 3001  # not a multiple of the block sizes
    sys = _random_kuramoto(rng, N, per_edge_delays, coupling=[0.5, 1.5])
    theta0 = rng.uniform(0, 2 * np.pi, size=N)
    te = np.linspace(0.0, 20.0, 21)
    kw = dict(method=method, rtol=1e-8 if method == "DP5" else 1e-7, atol=1e-10)
    cpu = dl.solve_dde(sys, theta0, (0.0, 20.0), te, **kw)
    gpu = dl.solve_dde(sys, theta0, (0.0, 20.0), te, device="cuda", **kw)
    assert np.all(gpu.status == 0)
    assert gpu.info["device"] == "cuda"
    np.testing.assert_allclose(gpu.y, cpu.y, atol=1e-5)
    np.testing.assert_allclose(gpu.y_final, cpu.y_final, atol=1e-5)


@pytest.mark.parametrize("output", ["order_parameter", "components"])
def test_kuramoto_reduced_outputs_on_the_gpu_match_cpu(output):
    rng = np.random.default_rng(117)
    N = 3001
    sys = _random_kuramoto(rng, N, True, coupling=[0.5, 1.5])
    theta0 = rng.uniform(0, 2 * np.pi, size=N)
    te = np.linspace(0.0, 20.0, 21)
    if output == "components":
        output = [0, N - 1, 17, 17]
    kw = dict(rtol=1e-8, atol=1e-10, output=output)
    c = dl.solve_dde(sys, theta0, (0.0, 20.0), te, **kw)
    g = dl.solve_dde(sys, theta0, (0.0, 20.0), te, device="cuda", **kw)
    assert np.all(g.status == 0)
    assert g.y.shape == c.y.shape
    np.testing.assert_allclose(g.y, c.y, atol=1e-5)


def test_kuramoto_gpu_every_step_output():
    rng = np.random.default_rng(118)
    sys = _random_kuramoto(rng, 2003, True, coupling=1.0)
    theta0 = rng.uniform(0, 2 * np.pi, size=2003)
    cpu = dl.solve_dde(sys, theta0, (0.0, 5.0), rtol=1e-8, atol=1e-10)
    gpu = dl.solve_dde(sys, theta0, (0.0, 5.0), rtol=1e-8, atol=1e-10, device="cuda")
    assert gpu.t[-1] == 5.0 and np.all(np.isfinite(gpu.y))
    np.testing.assert_allclose(gpu.y[-1], cpu.y[-1], atol=1e-5)


def test_stuart_landau_on_the_gpu_matches_cpu():
    import scipy.sparse as sp

    rng = np.random.default_rng(119)
    N = 2501
    A = sp.random(N, N, density=10 / N, format="csr", random_state=int(rng.integers(1 << 31)))
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    tau = A.copy()
    tau.data = rng.choice([0.7, 1.9], size=tau.nnz)
    sys = dl.rhs.stuart_landau(rng.normal(1.0, 0.3, N), A, coupling=[0.2, 0.6], tau=tau, lam=0.5)
    z0 = rng.uniform(-1, 1, size=2 * N)
    te = np.linspace(0.0, 15.0, 16)
    kw = dict(rtol=1e-8, atol=1e-10)
    cpu = dl.solve_dde(sys, z0, (0.0, 15.0), te, **kw)
    gpu = dl.solve_dde(sys, z0, (0.0, 15.0), te, device="cuda", **kw)
    assert np.all(gpu.status == 0)
    np.testing.assert_allclose(gpu.y, cpu.y, atol=1e-5)


class _TorchLike:
    """A stand-in for a torch tensor on a CUDA device: .device.type and .detach().cpu()."""

    class _Device:
        type = "cuda"

    device = _Device()

    def __init__(self, a):
        self._a = np.asarray(a)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self._a


@pytest.mark.parametrize("wrap", [CupyLike, _TorchLike])
def test_inputs_on_a_cuda_device_select_the_gpu(wrap):
    rng = np.random.default_rng(120)
    h0 = rng.uniform(0.3, 1.2, size=(5, 1))
    sys = dl.rhs.mackey_glass(tau=rng.uniform(2.0, 12.0, size=5))
    gpu = dl.solve_dde(sys, wrap(h0), (0.0, 50.0), [0.0, 25.0, 50.0], rtol=1e-8)
    assert gpu.info.get("device") == "cuda"
    cpu = dl.solve_dde(sys, h0, (0.0, 50.0), [0.0, 25.0, 50.0], rtol=1e-8)
    np.testing.assert_allclose(gpu.y, cpu.y, atol=1e-6)

    J = rng.standard_normal((16, 40)) / 6
    K = J @ J.T
    kw = dict(steps=500, n_exponents=2, seed=2)
    on_gpu = sgd.gram_lyapunov(wrap(K), [0.5, 1.0], [1, 4], **kw)
    assert on_gpu.info["device"] == "cuda"
    np.testing.assert_allclose(on_gpu.exponents,
                               sgd.gram_lyapunov(K, [0.5, 1.0], [1, 4], **kw).exponents,
                               rtol=1e-6, atol=1e-9)
    grid = dict(lr=[0.5, 1.0], batch_size=[1, 4], steps=500, seed=2, mean_square=False)
    on_gpu = sgd.stability_map(wrap(K), **grid)
    assert on_gpu.info["device"] == "cuda"
    np.testing.assert_allclose(on_gpu.exponents, sgd.stability_map(K, **grid).exponents,
                               rtol=1e-6, atol=1e-9)
