"""The delayed logistic (Hutchinson) equation x' = r x (1 − x(t − τ)/K), the built-in system
that demonstrates the registry (one C++ header, one registration line, one Python class), and
the registry itself.

Known answers: the linearisation at x = K is y' = −r y(t − τ), whose characteristic roots are
λ = W_k(−rτ)/τ; the equilibrium loses stability at rτ = π/2 in a supercritical Hopf
bifurcation. With y = x/K − 1 and s = t/τ the equation is Wright's, y' = −α y(s − 1)(1 + y),
α = rτ, whose bifurcating cycle has the amplitude sqrt(40 ε / (3π − 2)) to leading order in
ε = α − π/2 (Hassard, Kazarinoff & Wan, Theory and Applications of Hopf Bifurcation, 1981)."""
import pickle

import numpy as np
import pytest
from cuda_backends import BACKENDS, SKIP_REASON, environment
from test_fixed_storage import fixed_solve
from test_lyapunov_dde import characteristic_real_parts, within

import delyap as dl
from delyap import _core, rhs
from delyap.lyapunov import lyapunov_spectrum


def test_rhs_is_the_hutchinson_equation_and_jacobian_its_derivative():
    rng = np.random.default_rng(13)
    r, K, tau = rng.uniform(0.5, 2.0, 5), rng.uniform(0.5, 3.0, 5), rng.uniform(0.5, 2.0, 5)
    sys = rhs.delayed_logistic(r=r, K=K, tau=tau)
    h = 1e-6
    for b in range(5):
        x, xd = rng.uniform(0.1, 3.0), rng.uniform(0.1, 3.0)
        f = sys.rhs(0.0, [x], [[xd]], index=b)
        np.testing.assert_allclose(f, [r[b] * x * (1 - xd / K[b])], rtol=1e-14)
        jx, jd = sys.jacobian(0.0, [x], [[xd]], index=b)
        assert jx.shape == (1, 1) and jd.shape == (1, 1, 1)
        fd_x = (sys.rhs(0.0, [x + h], [[xd]], index=b) - sys.rhs(0.0, [x - h], [[xd]], index=b))
        fd_d = (sys.rhs(0.0, [x], [[xd + h]], index=b) - sys.rhs(0.0, [x], [[xd - h]], index=b))
        np.testing.assert_allclose(jx[0, 0], fd_x[0] / (2 * h), rtol=1e-7)
        np.testing.assert_allclose(jd[0, 0, 0], fd_d[0] / (2 * h), rtol=1e-7)


def test_equilibrium_spectrum_is_the_characteristic_roots():
    """History K is the equilibrium (f = 0 exactly): the tangent dynamics is y' = −r y(t − τ),
    whose exponents are Re W_k(−rτ)/τ, the complex pairs twice."""
    r, K, tau = 1.2, 2.0, 1.0
    res = lyapunov_spectrum(rhs.delayed_logistic(r=r, K=K, tau=tau), K, 4, 300.0,
                            t_transient=10.0, rtol=1e-8, atol=1e-10)
    expected = characteristic_real_parts(0.0, -r, tau, 4)
    np.testing.assert_allclose(expected[:2], -0.19046298905767756, atol=1e-12)  # Re W_0(−1.2)
    within(res, expected, floor=2e-3)


def test_leading_exponent_changes_sign_at_the_hopf_point():
    """rτ = 1.5: the orbit settles on K and the leading pair is Re W_0(−1.5)/1.5 < 0; rτ = 1.7:
    a limit cycle, whose leading exponent (along the flow) is 0 within the errors."""
    r, K = 1.0, 2.0
    sys = rhs.delayed_logistic(r=r, K=K, tau=[1.5, 1.7])
    res = lyapunov_spectrum(sys, 1.3 * K, 2, 400.0, t_transient=200.0, rtol=1e-8, atol=1e-10)
    stable = characteristic_real_parts(0.0, -r, 1.5, 2)
    assert stable[0] < -0.02
    within_one = np.abs(res.exponents[0] - stable) <= 4 * res.stderr[0] + 1e-3
    assert np.all(within_one), (res.exponents[0], stable, res.stderr[0])
    assert res.exponents[0, 0] < -4 * res.stderr[0, 0]  # significantly negative
    assert abs(res.exponents[1, 0]) <= 4 * res.stderr[1, 0] + 1e-3
    # The equilibrium itself is unstable at rτ = 1.7 (Re W_0(−1.7)/1.7 ≈ +0.033): the cycle's
    # leading exponent is not the equilibrium's.
    assert characteristic_real_parts(0.0, -r, 1.7, 1)[0] > 0.03
    assert res.exponents[1, 1] < -4 * res.stderr[1, 1]


def test_tau_sweep_cycle_amplitude_grows_from_zero_at_the_hopf_point():
    """A batch τ-sweep across π/(2r): no cycle below, an amplitude rising monotonically above,
    and sqrt(40 ε/(3π − 2))·K just above (the supercritical branch)."""
    r, K = 1.0, 2.0
    tau = np.array([1.5, 1.58, 1.6, 1.62, 1.65, 1.7, 1.8, 1.9, 2.0])
    te = np.linspace(540.0, 600.0, 1201)  # the last 60 time units, after the approach
    sol = dl.solve_dde(rhs.delayed_logistic(r=r, K=K, tau=tau), 1.3 * K, (0.0, 600.0), te,
                       rtol=1e-9, atol=1e-11)
    assert np.all(sol.status == 0)
    y = sol.y[:, :, 0]
    amplitude = (y.max(axis=1) - y.min(axis=1)) / 2 / K
    assert amplitude[0] < 1e-4  # below the Hopf point: the equilibrium
    assert np.all(np.diff(amplitude) > 0.05)
    eps = r * tau[1:4] - np.pi / 2  # 0.009 ... 0.049
    np.testing.assert_allclose(amplitude[1:4], np.sqrt(40 * eps / (3 * np.pi - 2)), rtol=0.03)


def test_fixed_storage_mirror_is_bitwise_the_regular_solver():
    rng = np.random.default_rng(7)
    tau = rng.uniform(0.5, 3.0, size=24)
    r = rng.uniform(0.5, 1.5, size=24)
    sys = rhs.delayed_logistic(r=r, K=2.0, tau=tau)
    te = np.linspace(0.0, 100.0, 101)
    h0 = rng.uniform(0.5, 3.0, size=(24, 1))
    ref = dl.solve_dde(sys, h0, (0.0, 100.0), te)
    got = fixed_solve(sys, h0, (0.0, 100.0), te)
    assert np.all(got["status"] == 0)
    np.testing.assert_array_equal(got["y"], ref.y)
    np.testing.assert_array_equal(got["stats"][:, 0], ref.stats["accepted"])


@pytest.mark.parametrize("backend", BACKENDS or [pytest.param(None, marks=pytest.mark.skip(
    reason=SKIP_REASON))])
def test_device_solve_matches_the_cpu(backend, monkeypatch):
    for name, value in environment(backend).items():
        monkeypatch.setenv(name, value)
    rng = np.random.default_rng(11)
    n = 300  # not a multiple of the block size
    sys = rhs.delayed_logistic(r=rng.uniform(0.5, 1.5, n), K=rng.uniform(1.0, 3.0, n),
                               tau=rng.uniform(0.5, 2.5, n))
    h0 = rng.uniform(0.5, 3.0, size=(n, 1))
    te = np.linspace(0.0, 100.0, 51)
    cpu = dl.solve_dde(sys, h0, (0.0, 100.0), te, rtol=1e-8)
    gpu = dl.solve_dde(sys, h0, (0.0, 100.0), te, rtol=1e-8, device="cuda")
    assert gpu.info["device"] == "cuda"
    assert np.all(gpu.status == 0)
    if backend == "emulated":  # the same compiler and code: the same steps
        np.testing.assert_array_equal(gpu.y, cpu.y)
    else:  # fused multiply-adds flip a few step decisions (see test_cuda.py)
        np.testing.assert_allclose(gpu.y, cpu.y, atol=1e-5)


def test_parameters_broadcast_and_are_checked():
    sys = rhs.delayed_logistic(r=[1.0, 2.0, 3.0], K=2.0)
    assert sys.batch_size == 3 and sys.n_trajectories == 3
    np.testing.assert_array_equal(sys.K, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(sys.delays, [[1.0], [1.0], [1.0]])
    assert rhs.delayed_logistic().batch_size is None
    assert repr(sys) == "DelayedLogistic(batch=3, r in [1, 3], K=2, tau=1)"
    with pytest.raises(ValueError, match="^K:"):
        rhs.delayed_logistic(K=[1.0, 0.0])
    with pytest.raises(ValueError, match="^tau:"):
        rhs.delayed_logistic(tau=-1.0)
    with pytest.raises(ValueError, match="mismatched lengths"):
        rhs.delayed_logistic(r=[1.0, 2.0], tau=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="^r:"):
        rhs.delayed_logistic(r="fast")
    r = np.array([1.0, 2.0])
    rhs.delayed_logistic(r=r)
    np.testing.assert_array_equal(r, [1.0, 2.0])


def test_pickles_by_its_constructor_arguments():
    sys = rhs.delayed_logistic(r=1.0, K=2.0, tau=[1.0, 1.8])
    copy = pickle.loads(pickle.dumps(sys))
    assert repr(copy) == repr(sys)
    te = np.linspace(0.0, 20.0, 11)
    np.testing.assert_array_equal(dl.solve_dde(copy, 2.5, (0.0, 20.0), te).y,
                                  dl.solve_dde(sys, 2.5, (0.0, 20.0), te).y)


def _compiled_classes(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _compiled_classes(sub)


def test_registry_parameter_order_is_the_python_classes():
    """Each Python class passes its arrays in the order its C++ header declares."""
    classes = {c._core_name: c for c in _compiled_classes(rhs.CompiledSystem)
               if "_core_name" in vars(c)}
    assert set(classes) == set(_core.BUILTIN_PARAMETERS)
    for name, cls in classes.items():
        if issubclass(cls, rhs.ScalarParameterSystem):
            assert cls._parameters == _core.BUILTIN_PARAMETERS[name], name
        for entry in ("solve_{}", "lyapunov_{}", "{}_rhs", "{}_jacobian", "solve_fixed_{}"):
            assert callable(getattr(_core, entry.format(name))), (name, entry)
    linear = rhs.linear(np.eye(2), np.eye(2), 1.0)
    assert len(linear._parameter_arrays()) == len(_core.BUILTIN_PARAMETERS["linear"])


def test_private_api_rejects_mismatched_parameter_arrays():
    """The bindings check what the Python classes guarantee (count and batch lengths)."""
    one = np.ones(1)
    with pytest.raises(ValueError, match="expected 3 parameter arrays"):
        _core.delayed_logistic_rhs([one, one], 0, 0.0, one, one.reshape(1, 1))
    with pytest.raises(ValueError, match="^K: 2 values for a batch of 3"):
        _core.delayed_logistic_rhs([np.ones(3), np.ones(2), one], 0, 0.0, one,
                                   one.reshape(1, 1))
    with pytest.raises(IndexError, match="index"):
        _core.delayed_logistic_rhs([np.ones(3), one, one], 3, 0.0, one, one.reshape(1, 1))
