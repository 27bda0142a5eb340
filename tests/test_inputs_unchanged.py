"""Every public entry point leaves the caller's arrays and sparse matrices bit for bit unchanged,
and accepts read-only ones (issue 12: the network constructors used to sort a CSR matrix in
place). Each case builds fresh inputs, snapshots them, calls, and compares the bytes; then calls
again with every input read-only (flags.writeable = False), where an in-place write raises."""
import copy

import numpy as np
import pytest
import scipy.sparse as sp

import delyap as dl
from delyap import sgd


def unsorted_csr(n, seed):
    """A random CSR matrix whose rows store their entries in shuffled (unsorted) order."""
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=0.4, format="csr", random_state=seed)
    A.data[:] = rng.uniform(0.5, 1.5, A.nnz)
    perm = np.concatenate([lo + rng.permutation(hi - lo)
                           for lo, hi in zip(A.indptr[:-1], A.indptr[1:])])
    U = sp.csr_matrix((A.data[perm], A.indices[perm], A.indptr.copy()), shape=A.shape)
    assert not np.array_equal(U.indices, A.indices)
    return U


def arrays_of(value):
    """The numpy arrays that hold ``value``'s numbers (a sparse matrix: its buffers)."""
    if sp.issparse(value):
        return [getattr(value, k) for k in ("data", "indices", "indptr", "row", "col")
                if hasattr(value, k)]
    return [value] if isinstance(value, np.ndarray) else []


def same_bytes(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def read_only(value):
    value = copy.deepcopy(value)
    for arr in arrays_of(value):
        arr.flags.writeable = False
    return value


def dense_K(n=8, seed=0):
    J = np.random.default_rng(seed).normal(size=(n, 20))
    return J @ J.T / 20


def mg_history_grid():
    return np.linspace(-17.0, 0.0, 50)


# name -> (inputs factory, call). Inputs are a dict of keyword values handed to the call.
CASES = {
    "mackey_glass": (lambda: dict(beta=np.array([0.2, 0.25]), tau=np.array([17.0, 10.0])),
                     lambda i: dl.rhs.mackey_glass(beta=i["beta"], tau=i["tau"])),
    "mackey_glass.rhs/jacobian": (
        lambda: dict(x=np.array([0.5]), xd=np.array([[0.7]])),
        lambda i: (dl.rhs.mackey_glass().rhs(0.0, i["x"], i["xd"]),
                   dl.rhs.mackey_glass().jacobian(0.0, i["x"], i["xd"]))),
    "linear": (lambda: dict(A=np.array([[0.0, 1.0], [-1.0, 0.0]]),
                            B=np.array([[[-0.5, 0.0], [0.0, -0.5]]]), tau=np.array([1.0])),
               lambda i: dl.rhs.linear(i["A"], i["B"], i["tau"]).rhs(0.0, np.ones(2),
                                                                     np.ones((1, 2)))),
    "python": (lambda: dict(tau=np.array([1.0, 2.0])),
               lambda i: dl.rhs.python(lambda t, x, xd: -xd[:, 0, :], 1, i["tau"])),
    "kuramoto (unsorted CSR, per-edge tau)": (
        lambda: dict(A=unsorted_csr(9, 1), omega=np.linspace(0.9, 1.1, 9),
                     coupling=np.array([0.5, 1.0]), normalization=np.full(9, 2.0)),
        lambda i: dl.rhs.kuramoto(i["omega"], i["A"], i["coupling"],
                                  np.where(np.arange(i["A"].nnz) % 2, 0.5, 1.5),
                                  normalization=i["normalization"])),
    "kuramoto (tau array, sparse tau)": (
        lambda: dict(A=unsorted_csr(7, 2),
                     tau=np.where(np.arange(unsorted_csr(7, 2).nnz) % 3, 0.4, 1.1)),
        lambda i: (dl.rhs.kuramoto(1.0, i["A"], 1.0, i["tau"]),
                   dl.rhs.kuramoto(1.0, i["A"], 1.0, sp.csr_matrix(
                       (i["tau"], i["A"].indices, i["A"].indptr), shape=i["A"].shape)))),
    "stuart_landau (COO, CSC, dense)": (
        lambda: dict(coo=unsorted_csr(6, 3).tocoo(), csc=unsorted_csr(6, 4).tocsc(),
                     dense=unsorted_csr(6, 5).toarray()),
        lambda i: [dl.rhs.stuart_landau(1.0, i[k], 0.5, 1.0) for k in ("coo", "csc", "dense")]),
    "solve_dde (arrays)": (
        lambda: dict(history=np.array([[0.5], [0.6]]), t_span=np.array([0.0, 5.0]),
                     t_eval=np.linspace(0, 5, 6), y0=np.array([[0.9], [0.8]])),
        lambda i: dl.solve_dde(dl.rhs.mackey_glass(tau=[17.0, 10.0]), i["history"], i["t_span"],
                               i["t_eval"], y0=i["y0"])),
    "solve_dde (output, jumps, grid)": (
        lambda: dict(output=np.array([0]), jumps=np.array([-3.0]), grid=mg_history_grid(),
                     t_eval=np.array([1.0, 2.0])),
        lambda i: (dl.solve_dde(dl.rhs.mackey_glass(), lambda t: 0.5 + 0.0 * t, (0, 2), i["t_eval"],
                                output=i["output"], history_jumps=i["jumps"]),
                   dl.solve_dde(dl.rhs.mackey_glass(), lambda t: 0.5 + 0.0 * t, (0, 2), i["t_eval"],
                                history_grid=i["grid"]))),
    "solve_dde (network, order parameter)": (
        lambda: dict(A=unsorted_csr(8, 6), theta=np.linspace(0, 3, 8), t_eval=np.array([0.0, 2.0])),
        lambda i: dl.solve_dde(dl.rhs.kuramoto(1.0, i["A"], 1.0, 0.7), i["theta"], (0, 2),
                               i["t_eval"], output="order_parameter")),
    "lyapunov_spectrum": (
        lambda: dict(history=np.array([0.5])),
        lambda i: dl.lyapunov_spectrum(dl.rhs.mackey_glass(), i["history"], 2, 200.0,
                                       t_transient=10.0)),
    "iid_product": (
        lambda: dict(mats=np.stack([np.eye(3) * 0.9, np.arange(9.0).reshape(3, 3) / 10]),
                     probs=np.array([0.3, 0.7])),
        lambda i: dl.iid_product(i["mats"], i["probs"], steps=500)),
    "sgd.gram_lyapunov": (
        lambda: dict(K=dense_K(), lr=np.array([0.1, 0.5]), bs=np.array([1, 4])),
        lambda i: sgd.gram_lyapunov(i["K"], i["lr"], i["bs"], steps=500, transient=100)),
    "sgd.stability_map": (
        lambda: dict(K=dense_K(), lr=np.array([0.1, 0.5]), bs=np.array([1, 4])),
        lambda i: sgd.stability_map(i["K"], lr=i["lr"], batch_size=i["bs"], steps=500,
                                    transient=100, progress=False)),
    "sgd.gram_spectrum/gd_exponent": (
        lambda: dict(K=dense_K(), lr=np.array([0.1, 0.5])),
        lambda i: sgd.gd_exponent(sgd.gram_spectrum(i["K"]), i["lr"])),
}


@pytest.mark.filterwarnings("ignore::Warning")
@pytest.mark.parametrize("name", list(CASES))
def test_inputs_are_unchanged_and_read_only_inputs_accepted(name):
    make, call = CASES[name]
    inputs = make()
    snapshot = copy.deepcopy(inputs)
    call(inputs)
    for key, value in inputs.items():
        now, before = arrays_of(value), arrays_of(snapshot[key])
        assert len(now) == len(before)
        for a, b in zip(now, before):
            assert same_bytes(a, b), f"{name}: input {key!r} was modified"
        if sp.issparse(value):
            assert value.format == snapshot[key].format and value.shape == snapshot[key].shape
    call({k: read_only(v) for k, v in make().items()})  # no in-place write may be attempted


def test_network_system_does_not_alias_the_callers_matrix():
    """The system keeps its own copy: later edits of the caller's matrix do not reach it."""
    A = unsorted_csr(6, 7)
    k = dl.rhs.kuramoto(1.0, A, 1.0, 0.5)
    kept = k.adjacency.copy()
    A.data[:] = 100.0
    assert (k.adjacency != kept).nnz == 0
    assert not np.shares_memory(k.adjacency.data, A.data)
