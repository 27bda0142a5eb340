"""Delay-free systems (ODEs) on the DDE solvers: closed forms, orders, Lyapunov spectra."""
import numpy as np
import pytest
from scipy.linalg import expm

import delyap as dl

A = np.array([[-0.3, 1.0], [-1.0, -0.3]])  # a damped rotation: x(t) = e^{At} x0
X0 = np.array([1.0, 0.5])


@pytest.mark.parametrize("method", ["DP5", "BS3"])
def test_linear_ode_matches_the_matrix_exponential(method):
    t = np.linspace(0, 6, 13)  # dense output between steps as well
    sol = dl.solve_dde(dl.rhs.linear(A), X0, (0, 6), t_eval=t, method=method,
                       rtol=1e-11, atol=1e-13)
    want = np.array([expm(A * s) @ X0 for s in t])
    np.testing.assert_allclose(sol.y, want, rtol=0, atol=1e-8)
    assert sol.success and sol.stats["history_peak"] <= 3  # no delay: no window to keep


@pytest.mark.parametrize("method,order", [("Euler", 1), ("RK4", 4)])
def test_fixed_step_methods_keep_their_order_on_an_ode(method, order):
    errs = []
    for dt in (0.02, 0.01):
        sol = dl.solve_dde(dl.rhs.linear(A), X0, (0, 2), t_eval=[2.0], method=method, dt=dt)
        errs.append(np.abs(sol.y[-1] - expm(2 * A) @ X0).max())
    assert np.log2(errs[0] / errs[1]) == pytest.approx(order, abs=0.15)


def test_python_ode_takes_f_of_t_and_x():
    """x' = −x + sin t, x(0) = 1: x = 1.5 e^{−t} + (sin t − cos t)/2."""
    ode = dl.rhs.python(lambda t, x: -x + np.sin(t), 1, tau=())
    t = np.linspace(0, 3, 7)
    sol = dl.solve_dde(ode, 1.0, (0, 3), t_eval=t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.y[:, 0], 1.5 * np.exp(-t) + 0.5 * (np.sin(t) - np.cos(t)),
                               rtol=0, atol=1e-9)
    assert ode.n_delays == 0 and ode.max_delay == 0.0


def test_batches_of_odes():
    """A batch of matrices (one trajectory each) and a lockstep Python batch."""
    As = np.stack([A, 2 * A, -A.T])
    sol = dl.solve_dde(dl.rhs.linear(As), X0, (0, 1), t_eval=[1.0], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(sol.y[:, -1], [expm(a) @ X0 for a in As], rtol=0, atol=1e-9)
    rates = np.array([[0.5], [1.0], [2.0]])
    ode = dl.rhs.python(lambda t, x: -rates * x, 1, tau=(), batch_size=3)
    sol = dl.solve_dde(ode, 1.0, (0, 1), t_eval=[1.0], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(sol.y[:, -1, 0], np.exp(-rates[:, 0]), rtol=0, atol=1e-10)


def test_lyapunov_spectrum_of_a_linear_ode_is_the_real_parts_of_its_eigenvalues():
    """Upper-triangular A: the exponents are its diagonal, 0.5 and −1 (the tangent flow is
    e^{At}); tolerance: the batch-means error plus the integration tolerance's bias."""
    M = np.array([[0.5, 2.0], [0.0, -1.0]])
    for system in (dl.rhs.linear(M), dl.rhs.python(lambda t, x: x @ M.T, 2, tau=(),
                                                   jac=lambda t, x: M)):
        spec = dl.lyapunov_spectrum(system, [1.0, 1.0], 2, 100.0, rtol=1e-10, atol=1e-12)
        assert spec.success
        np.testing.assert_allclose(spec.exponents, [0.5, -1.0], rtol=0,
                                   atol=1e-6 + 5 * spec.stderr.max())


def test_lorenz_exponents_sum_to_the_divergence():
    """For an ODE the exponents sum to the time average of tr ∂f/∂x, here the constant
    −(σ + 1 + β) = −41/3; and the largest is the known 0.906 (within its error)."""
    def lorenz(t, x):
        X, Y, Z = x[:, 0], x[:, 1], x[:, 2]
        return np.stack([10 * (Y - X), X * (28 - Z) - Y, X * Y - 8 / 3 * Z], axis=1)

    def jac(t, x):
        X, Y, Z = x[0]
        return np.array([[-10.0, 10.0, 0.0], [28 - Z, -1.0, -X], [Y, X, -8 / 3]])

    system = dl.rhs.python(lorenz, 3, tau=(), jac=jac)
    spec = dl.lyapunov_spectrum(system, [1.0, 1.0, 20.0], 3, 100.0, t_transient=20.0,
                                rtol=1e-8, atol=1e-10)
    assert spec.exponents.sum() == pytest.approx(-41 / 3, abs=1e-4)
    assert abs(spec.exponents[0] - 0.9056) < 5 * spec.stderr[0] + 0.02
    assert abs(spec.exponents[1]) < 5 * spec.stderr[1] + 0.01


def test_delay_free_systems_say_what_is_wrong():
    with pytest.raises(ValueError, match="B, tau: give both"):
        dl.rhs.linear(A, B=np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="neutral"):
        dl.rhs.python(lambda t, x: x, 1, tau=(), neutral=True)
    with pytest.raises(ValueError, match="n_exponents: an ODE of dimension 2"):
        dl.lyapunov_spectrum(dl.rhs.linear(A), X0, 3, 10.0)


# --- zero delays: the term reads the current state -----------------------------------------

def test_a_zero_delay_is_the_current_state():
    """x' = A x + B x(t − 0) is the ODE x' = (A + B) x; with a second, positive delay the zero
    one still reads the stage state (no history read, no step iteration)."""
    B = np.array([[0.1, -0.4], [0.2, 0.0]])
    sol = dl.solve_dde(dl.rhs.linear(A, B, 0.0), X0, (0, 3), t_eval=[3.0], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(sol.y[-1], expm(3 * (A + B)) @ X0, rtol=0, atol=1e-9)
    assert sol.stats["overlap_steps"] == 0
    mixed = dl.rhs.linear(A, np.stack([B, -B]), [0.0, 0.7])
    ref = dl.rhs.python(lambda t, x, xd: x @ (A + B).T - xd[:, 0] @ B.T, 2, 0.7)
    a = dl.solve_dde(mixed, X0, (0, 3), t_eval=[1.0, 3.0], rtol=1e-10, atol=1e-12)
    b = dl.solve_dde(ref, X0, (0, 3), t_eval=[1.0, 3.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.y, b.y, rtol=0, atol=1e-9)


def _kuramoto_rhs(omega, W, K):
    def f(t, th):
        return omega + K / W.shape[0] * (W * np.sin(th[None, :] - th[:, None])).sum(axis=1)
    return f


def test_undelayed_kuramoto_matches_scipy():
    import scipy.sparse as sp
    from scipy.integrate import solve_ivp
    rng = np.random.default_rng(3)
    n = 12
    W = (rng.random((n, n)) < 0.4).astype(float)
    np.fill_diagonal(W, 0.0)
    omega, th0 = rng.normal(0, 0.5, n), rng.uniform(-np.pi, np.pi, n)
    kur = dl.rhs.kuramoto(omega, sp.csr_matrix(W), coupling=1.3, tau=0, normalization="none")
    sol = dl.solve_dde(kur, th0, (0, 10), t_eval=[2.0, 10.0], rtol=1e-10, atol=1e-12)
    ref = solve_ivp(_kuramoto_rhs(omega, W, 1.3 * n), (0, 10), th0, method="DOP853",
                    t_eval=[2.0, 10.0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sol.y, ref.y.T, rtol=0, atol=1e-8)
    assert kur.max_delay == 0.0 and sol.stats["overlap_steps"] == 0


def test_undelayed_network_on_the_emulated_gpu_is_the_cpu_result(monkeypatch):
    pytest.importorskip("delyap._cuda_emulated")
    import scipy.sparse as sp
    rng = np.random.default_rng(4)
    n = 8
    W = sp.random(n, n, density=0.5, random_state=5, format="csr")
    omega, th0 = rng.normal(0, 0.5, n), rng.uniform(-np.pi, np.pi, n)
    kur = dl.rhs.kuramoto(omega, W, coupling=0.8, tau=0)
    cpu = dl.solve_dde(kur, th0, (0, 5), t_eval=[5.0])
    monkeypatch.setenv("DELYAP_CUDA_EMULATION", "1")
    gpu = dl.solve_dde(kur, th0, (0, 5), t_eval=[5.0], device="cuda")
    np.testing.assert_allclose(gpu.y, cpu.y, rtol=0, atol=1e-12)


def test_lyapunov_spectrum_with_a_zero_delay_is_that_of_the_ode():
    M, B = np.array([[0.5, 2.0], [0.0, -1.0]]), np.array([[0.0, 0.0], [0.0, 0.3]])
    spec = dl.lyapunov_spectrum(dl.rhs.linear(M, B, 0.0), [1.0, 1.0], 2, 100.0,
                                rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(spec.exponents, [0.5, -0.7], rtol=0,
                               atol=1e-6 + 5 * spec.stderr.max())
