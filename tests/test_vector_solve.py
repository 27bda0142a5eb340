"""The driver for one large trajectory with its state on an executor (dde/vector_solve.hpp),
which the GPU runs with one thread per component. Its CPU twin (_testing.solve_network_vector,
the same code with the host executor) must reproduce the regular solver bit for bit: every
per-component loop, the history in executor memory, its growth, the overlap iteration of
steps longer than a delay, discontinuity landing and each output mode."""
import numpy as np
import pytest
import scipy.sparse as sp

import delyap as dl
from delyap import _core, _testing
from delyap.solve import METHODS, _output_spec


def network(rng, n=70, taus=(0.3, 1.1, 15.0), couplings=(1.5, 3.0), kind="kuramoto"):
    A = sp.random(n, n, density=0.15, random_state=int(rng.integers(1 << 31)), format="csr")
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    tau = A.copy()
    tau.data = rng.choice(taus, size=A.nnz)
    omega = rng.normal(1.0, 0.5, n)
    if kind == "stuart_landau":
        return dl.rhs.stuart_landau(omega, A, [0.2 * k for k in couplings], tau, lam=0.7)
    return dl.rhs.kuramoto(omega, A, list(couplings), tau)


def options(method):
    opt = _core.SolverOptions()
    opt.method = METHODS[method]
    if method == "RK4":
        opt.dt = 0.05
    return opt


def history(system, rng, y0=None, jumps=None):
    phase = rng.uniform(0, 2 * np.pi, system.dim)

    def h(t):
        t = np.atleast_1d(t)[:, None]
        if isinstance(system, dl.rhs.StuartLandauDDE):  # (Re z, Im z) near the limit cycle
            return np.cos(phase + t)
        return phase + 0.3 * t + 0.1 * np.sin(3 * t + phase)

    return dl.build_history(h, system, 0.0, y0, history_points=40, jumps=jumps)


def assert_same(regular, vector):
    assert set(regular) == set(vector)
    for key in regular:
        a, b = np.asarray(regular[key]), np.asarray(vector[key])
        assert a.shape == b.shape, key
        assert np.array_equal(a, b, equal_nan=True), f"{key}: max diff {np.nanmax(np.abs(a - b))}"


@pytest.mark.parametrize("method", ["DP5", "BS3", "RK4"])
@pytest.mark.parametrize("output", [None, [5, 0, 69, 5], "order_parameter"])
@pytest.mark.parametrize("kind", ["kuramoto", "stuart_landau"])
def test_vector_driver_is_the_regular_solver_bit_for_bit(method, output, kind):
    rng = np.random.default_rng(7)
    sys = network(rng, kind=kind)
    hist = history(sys, rng)
    te = np.sort(rng.uniform(0.0, 25.0, 37))
    spec = _output_spec(output, sys, te)
    opt = options(method)
    regular = sys._solve(hist, 0.0, 25.0, te, opt, 1, spec)
    vector = _testing.solve_network_vector(sys, hist, 0.0, 25.0, te, opt, spec)
    assert np.all(np.asarray(vector["status"]) == 0)
    assert_same(regular, vector)
    stats = np.asarray(vector["stats"])
    # The 15.0 delay keeps more anchors than the initial 64 slots: the history grew.
    assert stats[:, 4].max() > 64
    if method == "DP5" and kind == "kuramoto":  # steps longer than the 0.3 delay iterate
        assert stats[:, 3].max() > 0


def test_vector_driver_every_step_output_and_jumps():
    rng = np.random.default_rng(104)
    sys = network(rng, couplings=(2.0,))
    sys = dl.rhs.kuramoto(sys.omega, sys.adjacency, 2.0, 1.0)
    y0 = rng.uniform(0, 2 * np.pi, sys.dim)  # differs from the history at t0: a jump
    hist = history(sys, rng, y0=y0, jumps=[-0.45])
    opt = options("BS3")
    regular = sys._solve(hist, 0.0, 12.0, None, opt, 1, _output_spec(None, sys, None))
    vector = _testing.solve_network_vector(sys, hist, 0.0, 12.0, None, opt,
                                           _output_spec(None, sys, None))
    assert_same(regular, vector)
    t = np.asarray(vector["t"])
    # Steps land on the propagated discontinuities t0 + k, -0.45 + k.
    for point in (1.0, 2.0, 0.55, 1.55):
        assert np.min(np.abs(t - point)) < 1e-12


def test_vector_driver_reports_failure_per_trajectory():
    rng = np.random.default_rng(105)
    sys = network(rng, couplings=(1.0, 2.0))
    hist = history(sys, rng)
    opt = options("DP5")
    opt.max_steps = 5
    te = np.linspace(0, 10, 11)
    spec = _output_spec(None, sys, te)
    vector = _testing.solve_network_vector(sys, hist, 0.0, 10.0, te, opt, spec)
    regular = sys._solve(hist, 0.0, 10.0, te, opt, 1, spec)
    assert_same(regular, vector)
    status = np.asarray(vector["status"])
    assert [dl.STATUS_NAMES[s] for s in status] == ["max_steps"] * 2
    y = np.asarray(vector["y"])
    assert np.isnan(y[:, -1]).all() and np.isfinite(y[:, 0]).all()
