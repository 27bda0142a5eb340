"""Network inputs (issue 12): per-edge delays follow the caller's edge order, the caller's matrix
is never modified, each system declares its order parameter, and bad outputs / delays are
named errors."""
import os

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp

import delyap as dl

OMEGA = np.array([0.0, 1.0, -1.0])


def unsorted_example():
    """The issue's matrix: row 0 stores its in-edges as (0, 2), (0, 1), indices unsorted."""
    return sp.csr_matrix((np.ones(2), np.array([2, 1]), np.array([0, 2, 2, 2])), shape=(3, 3))


def theta0_reference(tau_from_2, tau_from_1, t_final=10.0):
    """θ0(t_final) by an ODE solve: with the free-rotation history θ_j(s) = ω_j s, nodes 1 and 2
    have no in-edges, so θ0' = sin(θ2(t − τ02) − θ0) + sin(θ1(t − τ01) − θ0) with known θ1, θ2."""
    f = lambda t, y: (np.sin(OMEGA[2] * (t - tau_from_2) - y)  # noqa: E731
                      + np.sin(OMEGA[1] * (t - tau_from_1) - y))
    return solve_ivp(f, (0, t_final), [0.0], method="DOP853", rtol=1e-12, atol=1e-12).y[0, -1]


def free_rotation(t):
    return np.outer(t, OMEGA)


def test_issue_example_unsorted_csr_delays_follow_the_callers_order():
    A = unsorted_example()
    before = (A.indptr.copy(), A.indices.copy(), A.data.copy())
    k = dl.rhs.kuramoto(OMEGA, A, tau=np.array([3.0, 0.5]), normalization="none")
    # The caller's matrix is untouched (it used to be sorted in place).
    for a, b in zip((A.indptr, A.indices, A.data), before):
        np.testing.assert_array_equal(a, b)
    assert not A.has_sorted_indices or np.array_equal(A.indices, [2, 1])
    sol = dl.solve_dde(k, free_rotation, (0, 10), t_eval=[10.0], rtol=1e-10, atol=1e-10)
    ref = theta0_reference(tau_from_2=3.0, tau_from_1=0.5)
    assert ref == pytest.approx(1.218145, abs=1e-6)  # the issue's value; the old code gave −1.218
    assert sol.y[0, 0] == pytest.approx(ref, abs=1e-7)
    # The same network from a sorted matrix, delays permuted with the entries: same trajectory.
    S = sp.csr_matrix((np.ones(2), np.array([1, 2]), np.array([0, 2, 2, 2])), shape=(3, 3))
    k2 = dl.rhs.kuramoto(OMEGA, S, tau=np.array([0.5, 3.0]), normalization="none")
    sol2 = dl.solve_dde(k2, free_rotation, (0, 10), t_eval=[10.0], rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(sol.y, sol2.y)


def shuffled_rows(A, rng):
    """A with each row's stored entries permuted (unsorted indices), and the permutation."""
    perm = np.concatenate([lo + rng.permutation(hi - lo)
                           for lo, hi in zip(A.indptr[:-1], A.indptr[1:])])
    return sp.csr_matrix((A.data[perm], A.indices[perm], A.indptr.copy()), shape=A.shape), perm


@pytest.mark.parametrize("kind", ["kuramoto", "stuart_landau"])
def test_shuffled_csr_equals_sorted_with_permuted_delays(kind):
    rng = np.random.default_rng(20)
    n = 30
    A = sp.random(n, n, density=0.2, format="csr", random_state=21)
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    tau = rng.choice([0.3, 0.8, 1.7], size=A.nnz)
    U, perm = shuffled_rows(A, rng)
    assert not np.array_equal(U.indices, A.indices)
    make = getattr(dl.rhs, kind)
    x0 = rng.uniform(-1, 1, n if kind == "kuramoto" else 2 * n)
    te = np.linspace(0, 8, 5)
    a = dl.solve_dde(make(np.ones(n), A, 1.2, tau), x0, (0, 8), te)
    u = dl.solve_dde(make(np.ones(n), U, 1.2, tau[perm]), x0, (0, 8), te)
    np.testing.assert_array_equal(a.y, u.y)
    # A sparse delay matrix is matched by position, whatever its storage order.
    T = sp.csr_matrix((tau, A.indices.copy(), A.indptr.copy()), shape=A.shape)
    TU, _ = shuffled_rows(T, np.random.default_rng(22))
    t = dl.solve_dde(make(np.ones(n), U, 1.2, TU), x0, (0, 8), te)
    np.testing.assert_array_equal(a.y, t.y)


def test_duplicate_entries_sum_and_must_share_a_delay():
    # (0, 1) stored twice with weight 0.5 and the same delay: one edge of weight 1.
    D = sp.csr_matrix((np.array([0.5, 1.0, 0.5]), np.array([1, 2, 1]), np.array([0, 3, 3, 3])),
                      shape=(3, 3))
    k = dl.rhs.kuramoto(OMEGA, D, tau=np.array([0.5, 3.0, 0.5]), normalization="none")
    assert k.adjacency.nnz == 2 and k.adjacency[0, 1] == 1.0
    sol = dl.solve_dde(k, free_rotation, (0, 10), t_eval=[10.0], rtol=1e-10, atol=1e-10)
    assert sol.y[0, 0] == pytest.approx(theta0_reference(3.0, 0.5), abs=1e-7)
    with pytest.raises(ValueError, match=r"tau: .*\(0, 1\).*different delays"):
        dl.rhs.kuramoto(OMEGA, D, tau=np.array([0.5, 3.0, 0.7]))


def test_other_formats_use_row_major_order_and_stay_unchanged():
    A = unsorted_example()
    for M in (A.toarray(), A.tocoo(), A.tocsc()):
        snap = M.copy()
        k = dl.rhs.kuramoto(OMEGA, M, tau=np.array([0.5, 3.0]), normalization="none")
        sol = dl.solve_dde(k, free_rotation, (0, 10), t_eval=[10.0], rtol=1e-10, atol=1e-10)
        assert sol.y[0, 0] == pytest.approx(theta0_reference(3.0, 0.5), abs=1e-7)
        if sp.issparse(M):
            assert (M != snap).nnz == 0 and M.format == snap.format
        else:
            np.testing.assert_array_equal(M, snap)


# --- order parameters declared per system ----------------------------------------------------

def random_graph(n, seed):
    A = sp.random(n, n, density=0.3, format="csr", random_state=seed)
    A.data[:] = 1.0
    return A


def test_stuart_landau_order_parameter_is_the_phasor_coherence():
    rng = np.random.default_rng(30)
    n = 12
    sl = dl.rhs.stuart_landau(rng.normal(1, 0.3, n), random_graph(n, 31), coupling=0.4, tau=0.9)
    z0 = rng.normal(size=2 * n)
    te = np.linspace(0, 6, 13)
    full = dl.solve_dde(sl, z0, (0, 6), te, rtol=1e-9, atol=1e-11)
    op = dl.solve_dde(sl, z0, (0, 6), te, rtol=1e-9, atol=1e-11, output="order_parameter")
    z = full.y[:, 0::2] + 1j * full.y[:, 1::2]
    coh = (z / np.abs(z)).mean(axis=1)
    np.testing.assert_allclose(op.y[:, 0], np.abs(coh), atol=1e-13)
    np.testing.assert_allclose(np.exp(1j * op.y[:, 1]), coh / np.abs(coh), atol=1e-12)
    # Not the phase order parameter of the 2N interleaved numbers (the old answer).
    assert np.max(np.abs(op.y[:, 0] - np.abs(np.exp(1j * full.y).mean(axis=1)))) > 0.05


def test_stuart_landau_node_at_zero_adds_no_phase():
    n = 4
    sl = dl.rhs.stuart_landau(np.ones(n), random_graph(n, 32), coupling=0.0, tau=1.0)
    z0 = np.array([0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0])  # node 0 at z = 0 stays there
    op = dl.solve_dde(sl, z0, (0, 1), [0.0, 1.0], output="order_parameter")
    np.testing.assert_allclose(op.y[:, 0], 3 / 4, atol=1e-12)  # three aligned unit phasors / 4


def test_kuramoto_order_parameter_batch():
    rng = np.random.default_rng(33)
    n = 10
    k = dl.rhs.kuramoto(rng.normal(1, 0.3, n), random_graph(n, 34), coupling=[0.2, 1.5], tau=0.5)
    th = rng.uniform(0, 2 * np.pi, n)
    te = np.linspace(0, 5, 6)
    full = dl.solve_dde(k, th, (0, 5), te)
    op = dl.solve_dde(k, th, (0, 5), te, output="order_parameter")
    np.testing.assert_allclose(op.y[..., 0], np.abs(np.exp(1j * full.y).mean(axis=-1)), atol=1e-13)


@pytest.mark.parametrize("system, name", [
    (dl.rhs.mackey_glass(), "MackeyGlass"),
    (dl.rhs.mackey_glass(tau=[10.0, 17.0]), "MackeyGlass"),
    (dl.rhs.linear([[0.0]], [[[-1.0]]], 1.0), "LinearDDE"),
    (dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], 1, 1.0), "PythonDDE"),
])
def test_systems_without_an_order_parameter_raise(system, name):
    with pytest.raises(ValueError, match=f"output: {name} has no order parameter"):
        dl.solve_dde(system, 0.5, (0, 1), [1.0], output="order_parameter")


def test_declared_order_parameters():
    A = random_graph(3, 35)
    assert dl.rhs.kuramoto(1.0, A).order_parameter == "phases"
    assert dl.rhs.stuart_landau(1.0, A).order_parameter == "phasors"
    assert dl.rhs.mackey_glass().order_parameter is None


def test_stuart_landau_order_parameter_on_emulated_cuda_matches_the_cpu(monkeypatch):
    """The GPU path (here its CPU emulation) reduces to the same phasor coherence as the CPU
    (the vector driver's bit-for-bit twin is in tests/test_vector_solve.py)."""
    pytest.importorskip("delyap._cuda_emulated")
    sl = dl.rhs.stuart_landau(np.ones(4), random_graph(4, 37), tau=1.0)
    t = np.linspace(0, 5, 11)
    cpu = dl.solve_dde(sl, 0.3, (0, 5), t, output="order_parameter")
    monkeypatch.setenv("DELYAP_CUDA_EMULATION", "1")
    gpu = dl.solve_dde(sl, 0.3, (0, 5), t, output="order_parameter", device="cuda")
    assert gpu.success and gpu.y.shape == cpu.y.shape == (11, 2)
    np.testing.assert_allclose(gpu.y, cpu.y, rtol=0, atol=1e-12)


# --- component indices and delay floors -------------------------------------------------------

@pytest.mark.parametrize("output", [[-1], [0, -2], [1], [0, 5]])
def test_component_indices_outside_0_dim_are_rejected(output):
    with pytest.raises(ValueError, match=r"output: component indices must lie in \[0, 1\)"):
        dl.solve_dde(dl.rhs.mackey_glass(), 0.5, (0, 1), [1.0], output=output)


@pytest.mark.parametrize("make", [
    lambda tau: dl.rhs.mackey_glass(tau=tau),
    lambda tau: dl.rhs.mackey_glass(tau=[1.0, tau]),
    lambda tau: dl.rhs.linear([[0.0]], [[[-1.0]]], tau),
    lambda tau: dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], 1, [1.0, tau]),
    lambda tau: dl.rhs.kuramoto(1.0, random_graph(5, 38), tau=tau),
    lambda tau: dl.rhs.stuart_landau(1.0, random_graph(5, 38),
                                     tau=np.full(random_graph(5, 38).nnz, tau)),
])
@pytest.mark.parametrize("tau", [1e-300, 1e-20, 5e-13])
def test_delays_below_the_floor_are_rejected(make, tau):
    with pytest.raises(ValueError, match="tau: delay .* below the smallest supported delay 1e-12"):
        make(tau)


def test_delays_at_the_floor_solve():
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=1e-12), 0.5, (0, 10), [10.0])
    # τ → 0: the ODE x' = βx/(1 + xⁿ) − γx, solved independently.
    ode = solve_ivp(lambda t, x: 0.2 * x / (1 + x**10) - 0.1 * x, (0, 10), [0.5], rtol=1e-10,
                    atol=1e-12).y[0, -1]
    assert sol.y[0, 0] == pytest.approx(ode, abs=1e-6)


def test_scipy_is_a_dependency():
    """Network systems need scipy.sparse: it must be installed with delyap, not by an extra."""
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "pyproject.toml")).read()
    deps = re.search(r"^dependencies = \[(.*?)\]", text, re.M | re.S).group(1)
    assert "scipy" in deps
