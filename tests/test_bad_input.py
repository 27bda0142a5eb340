"""Bad input: every mistake raises a clear ValueError/TypeError naming the argument.

Also: exceptions from user callables propagate unchanged, and one failing trajectory in an
ensemble reports its own status without disturbing the others.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import delyap as dl

S = dl.solve_dde


def mg():
    return dl.rhs.mackey_glass()


def lin2():
    """x' = -x(t - 1) in two independent components."""
    return dl.rhs.linear(np.zeros((2, 2)), -np.eye(2), 1.0)


def decay(t, x, xd):
    return -xd[:, 0, :]


# --------------------------------------------------------------------------- parameters
OBJ = np.array([1.0, None], dtype=object)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(beta="0.2"), TypeError, "beta"),
    (dict(beta=b"0.2"), TypeError, "beta"),
    (dict(gamma=0.1 + 0.2j), TypeError, "gamma.*complex"),
    (dict(n=np.array([10.0, 10.0], dtype=complex)), TypeError, "n.*complex"),
    (dict(beta=OBJ), TypeError, "beta"),
    (dict(tau=[[1.0, 2.0], [3.0]]), TypeError, "tau"),
    (dict(beta=None), TypeError, "beta"),
    (dict(beta=np.nan), ValueError, "beta.*NaN"),
    (dict(gamma=[0.1, np.inf]), ValueError, "gamma.*(NaN|inf)"),
    (dict(tau=np.inf), ValueError, "tau"),
    (dict(tau=np.nan), ValueError, "tau"),
    (dict(tau=np.nan), ValueError, "tau.*(finite|NaN)"),  # τ = 0 is allowed: no delay
    (dict(tau=-1.0), ValueError, "tau.*≥ 0"),
    (dict(tau=[5.0, np.inf, 3.0]), ValueError, "tau.*(finite|NaN)"),
    (dict(tau=[5.0, -2.0]), ValueError, "tau.*≥ 0"),
    (dict(beta=np.ones((2, 2))), ValueError, "beta.*shape"),
    (dict(tau=np.array([])), ValueError, "tau.*(empty|zero)"),
    (dict(beta=np.array([]), tau=np.array([])), ValueError, "(empty|zero)"),
    (dict(tau=np.ones(3), beta=np.ones(4)), ValueError, r"mismatched.*beta: 4.*tau: 3"),
    (dict(tau=np.ones(3), n=np.ones(2), gamma=0.1), ValueError, "mismatched"),
])
def test_mackey_glass_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        dl.rhs.mackey_glass(**kwargs)


@pytest.mark.parametrize("A, B, tau, exc, match", [
    ("abc", np.eye(2), 1.0, TypeError, "A"),
    (np.eye(2) * 1j, np.eye(2), 1.0, TypeError, "A.*complex"),
    (np.eye(2), np.array([[1, None], [0, 1]], dtype=object), 1.0, TypeError, "B"),
    (np.eye(2), [[1.0, 0.0], [0.0]], 1.0, TypeError, "B"),
    (np.full((2, 2), np.nan), np.eye(2), 1.0, ValueError, "A.*NaN"),
    (np.eye(2), np.full((2, 2), np.inf), 1.0, ValueError, "B.*(NaN|inf)"),
    (np.eye(2), np.eye(2), np.nan, ValueError, "tau"),
    (np.eye(2), np.eye(2), np.nan, ValueError, "tau.*(finite|NaN)"),
    (np.eye(2), np.eye(2), -0.5, ValueError, "tau.*≥ 0"),
    (np.eye(2), np.eye(2), [1.0, -1.0, 2.0], ValueError, "tau.*≥ 0"),
    (np.ones(2), np.eye(2), 1.0, ValueError, "A.*shape"),
    (np.ones((2, 3)), np.eye(2), 1.0, ValueError, "A.*square"),
    (np.eye(2), np.eye(3), 1.0, ValueError, "B.*shape"),
    (np.eye(2), np.ones((2, 2, 2)), [1.0, 2.0, 3.0], ValueError, "tau.*delays"),
    (np.ones((0, 2, 2)), np.eye(2), 1.0, ValueError, "empty|zero"),
    (np.ones((3, 2, 2)), np.ones((4, 1, 2, 2)), 1.0, ValueError, "batch sizes.*A.*3.*B.*4"),
])
def test_linear_bad_parameters(A, B, tau, exc, match):
    with pytest.raises(exc, match=match):
        dl.rhs.linear(A, B, tau)


@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((3, 1, 1.0), {}, TypeError, "f.*callable"),
    ((decay, 0, 1.0), {}, ValueError, "dim"),
    ((decay, 1.5, 1.0), {}, TypeError, "dim"),
    ((decay, "1", 1.0), {}, TypeError, "dim"),
    ((decay, 1, np.inf), {}, ValueError, "tau.*(finite|NaN)"),
    ((decay, 1, -1.0), {}, ValueError, "tau.*≥ 0"),
    ((decay, 1, [1.0, np.nan]), {}, ValueError, "tau"),
    ((decay, 1, np.ones((2, 2))), {}, ValueError, "tau.*shape"),
    ((decay, 1, [np.nan]), {}, ValueError, "tau"),  # tau=[] is an ODE (tests/test_ode.py)
    ((decay, 1, 1.0), dict(batch_size=0), ValueError, "batch_size"),
    ((decay, 1, 1.0), dict(batch_size=2.0), TypeError, "batch_size"),
])
def test_python_system_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        dl.rhs.python(*args, **kwargs)


# --------------------------------------------------------------------------- solve_dde options
@pytest.mark.parametrize("system", ["mackey_glass", object(), None, 1.0, dl.rhs.mackey_glass],
                         ids=["str", "object", "None", "float", "factory-not-called"])
def test_system_not_a_ddesystem(system):
    with pytest.raises(TypeError, match="system"):
        S(system, 0.5, (0.0, 1.0))


@pytest.mark.parametrize("t_span, exc, match", [
    ((1.0, 0.0), ValueError, "t_span.*greater"),
    ((1.0, 1.0), ValueError, "t_span.*greater"),
    ((0.0,), ValueError, "t_span"),
    ((0.0, 1.0, 2.0), ValueError, "t_span"),
    ((), ValueError, "t_span"),
    (5.0, ValueError, "t_span"),
    ([[0.0, 1.0]], ValueError, "t_span"),
    ((0.0, np.nan), ValueError, "t_span.*NaN"),
    ((-np.inf, 1.0), ValueError, "t_span.*(NaN|inf)"),
    ((0.0, np.inf), ValueError, "t_span.*(NaN|inf)"),
    ("ab", TypeError, "t_span"),
    (("0", "1"), TypeError, "t_span"),
    ((0.0, 1.0j), TypeError, "t_span"),
    (None, TypeError, "t_span"),
    (np.array([0.0, None], dtype=object), TypeError, "t_span"),
])
def test_bad_t_span(t_span, exc, match):
    with pytest.raises(exc, match=match):
        S(mg(), 0.5, t_span)


@pytest.mark.parametrize("t_eval, exc, match", [
    ([0.0, 11.0], ValueError, "t_eval.*inside"),
    ([-1.0, 5.0], ValueError, "t_eval.*inside"),
    ([20.0], ValueError, "t_eval.*inside"),
    ([5.0, 1.0], ValueError, "t_eval.*sorted"),
    ([1.0, 3.0, 2.0, 4.0], ValueError, "t_eval.*sorted"),
    ([], ValueError, "t_eval.*empty"),
    (np.array([]), ValueError, "t_eval.*empty"),
    ([1.0, np.nan], ValueError, "t_eval.*NaN"),
    ([1.0, np.inf], ValueError, "t_eval.*(NaN|inf)"),
    (np.ones((2, 2)), ValueError, "t_eval.*shape"),
    ("abc", TypeError, "t_eval"),
    ([1.0, 2.0j], TypeError, "t_eval"),
    ([[1.0, 2.0], [3.0]], TypeError, "t_eval"),
])
def test_bad_t_eval(t_eval, exc, match):
    with pytest.raises(exc, match=match):
        S(mg(), 0.5, (0.0, 10.0), t_eval=t_eval)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(rtol=0.0), ValueError, "rtol.*positive"),
    (dict(rtol=-1e-3), ValueError, "rtol.*positive"),
    (dict(rtol=np.nan), ValueError, "rtol"),
    (dict(rtol=np.inf), ValueError, "rtol"),
    (dict(rtol="1e-3"), TypeError, "rtol"),
    (dict(rtol=None), TypeError, "rtol"),
    (dict(rtol=np.array([1e-3, 1e-4])), TypeError, "rtol"),
    (dict(atol=-1e-9), ValueError, "atol.*non-negative"),
    (dict(atol=np.nan), ValueError, "atol"),
    (dict(atol="0"), TypeError, "atol"),
    (dict(method="RK45"), ValueError, "method.*RK45"),
    (dict(method=""), ValueError, "method"),
    (dict(method=None), ValueError, "method"),
    (dict(method=5), ValueError, "method"),
    (dict(method="RK4"), ValueError, "dt.*RK4"),
    (dict(method="Euler"), ValueError, "dt.*Euler"),
    (dict(method="euler"), ValueError, "dt"),
    (dict(method="RK4", dt=0.0), ValueError, "dt.*positive"),
    (dict(method="RK4", dt=-0.1), ValueError, "dt.*positive"),
    (dict(method="Euler", dt=np.nan), ValueError, "dt"),
    (dict(method="RK4", dt=np.inf), ValueError, "dt"),
    (dict(method="RK4", dt="0.1"), TypeError, "dt"),
    (dict(dt=0.0), ValueError, "dt.*positive"),
    (dict(dt=-1.0), ValueError, "dt.*positive"),
    (dict(threads=0), ValueError, "threads"),
    (dict(threads=-1), ValueError, "threads"),
    (dict(threads=1.5), TypeError, "threads"),
    (dict(threads=True), TypeError, "threads"),
    (dict(threads="2"), TypeError, "threads"),
    (dict(max_step=0.0), ValueError, "max_step.*positive"),
    (dict(max_step=-1.0), ValueError, "max_step"),
    (dict(min_step=-1.0), ValueError, "min_step"),
    (dict(min_step=np.nan), ValueError, "min_step"),
    (dict(max_steps=0), ValueError, "max_steps"),
    (dict(max_steps=10.5), TypeError, "max_steps"),
    (dict(history_points=1), ValueError, "history_points"),
])
def test_bad_solver_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        S(mg(), 0.5, (0.0, 10.0), **kwargs)


def test_good_edge_options_are_accepted():
    # Boundary values that are valid must not be rejected.
    assert S(mg(), 0.5, (0.0, 10.0), atol=0.0).success
    assert S(mg(), 0.5, (0.0, 10.0), rtol=np.float32(1e-4), threads=np.int64(1)).success
    assert S(mg(), 0.5, (0.0, 10.0), min_step=0.0).success
    assert S(mg(), 0.5, (0.0, 10.0), method="rk4", dt=0.1).success
    assert S(mg(), 0.5, (0.0, 10.0), t_eval=10.0).y.shape == (1, 1)


def test_threads_too_large_names_argument():
    with pytest.raises((ValueError, OverflowError), match="threads"):
        S(mg(), 0.5, (0.0, 10.0), threads=2**31)


def test_max_steps_too_large_names_argument():
    with pytest.raises((ValueError, OverflowError), match="max_steps"):
        S(mg(), 0.5, (0.0, 10.0), max_steps=2**70)


def test_min_step_above_max_step():
    with pytest.raises(ValueError, match="min_step"):
        S(mg(), 0.5, (0.0, 10.0), min_step=1.0, max_step=0.1)


# --------------------------------------------------------------------------- history and y0
@pytest.mark.parametrize("system, history, exc, match", [
    (mg, np.nan, ValueError, "history.*NaN"),
    (mg, -np.inf, ValueError, "history.*(NaN|inf)"),
    (lin2, [1.0, np.nan], ValueError, "history.*NaN"),
    (mg, "0.5", TypeError, "history"),
    (mg, 0.5 + 1j, TypeError, "history.*complex"),
    (mg, None, TypeError, "history"),
    (mg, np.array([0.5, None], dtype=object), TypeError, "history"),
    (lin2, [[1.0, 2.0], [3.0]], TypeError, "history"),
    (mg, np.ones(3), ValueError, "history.*3"),
    (mg, np.ones((2, 2)), ValueError, r"history.*\(2, 2\)"),
    (mg, np.ones((1, 1, 1)), ValueError, "history"),
    (lin2, np.ones(3), ValueError, "history.*dim = 2"),
    (lin2, np.ones((2, 2)), ValueError, r"history.*\(2, 2\)"),
    (lin2, np.ones((1, 3)), ValueError, "history"),
])
def test_bad_history_value(system, history, exc, match):
    with pytest.raises(exc, match=match):
        S(system(), history, (0.0, 5.0))


def test_batch_history_wrong_length():
    sweep = dl.rhs.mackey_glass(tau=[5.0, 10.0, 17.0])
    assert S(sweep, [0.4, 0.5, 0.6], (0.0, 5.0)).success  # one value per trajectory is fine
    with pytest.raises(ValueError, match="history.*batch = 3"):
        S(sweep, [0.4, 0.5], (0.0, 5.0))
    with pytest.raises(ValueError, match=r"history.*\(3, 1\)"):
        S(sweep, np.ones((4, 1)), (0.0, 5.0))


@pytest.mark.parametrize("h, exc, match", [
    (lambda t: np.ones((len(t), 3)), ValueError, r"history\(t\).*\(1001, 3\)"),
    (lambda t: np.ones(len(t)), ValueError, r"history\(t\).*shape"),
    (lambda t: np.ones((2, len(t))), ValueError, r"history\(t\).*shape"),
    (lambda t: 1.0, ValueError, r"history\(t\).*shape"),
    (lambda t: np.ones(3), ValueError, r"history\(t\).*shape"),
    (lambda t: np.full((len(t), 2), np.nan), ValueError, r"history\(t\).*NaN"),
    (lambda t: "x", TypeError, r"history\(t\)"),
    (lambda t: None, TypeError, r"history\(t\)"),
    (lambda t: np.ones((len(t), 2)) * 1j, TypeError, r"history\(t\).*complex"),
    (lambda t: [[0.0, 1.0]] * (len(t) - 1) + [[0.0]], TypeError, r"history\(t\)"),
])
def test_history_callable_bad_return(h, exc, match):
    with pytest.raises(exc, match=match):
        S(lin2(), h, (0.0, 5.0))


def test_history_callable_exception_propagates():
    class HistoryFailure(Exception):
        pass

    def h(t):
        raise HistoryFailure("no data before t0")

    with pytest.raises(HistoryFailure, match="no data before t0"):
        S(lin2(), h, (0.0, 5.0))


def test_history_callable_custom_exception_constructor_propagates():
    class TwoArgError(Exception):
        def __init__(self, code, detail):
            super().__init__(f"{code}: {detail}")

    def h(t):
        raise TwoArgError(7, "sensor offline")

    with pytest.raises(TwoArgError, match="sensor offline"):
        S(lin2(), h, (0.0, 5.0))


@pytest.mark.parametrize("y0, exc, match", [
    (np.ones(3), ValueError, "y0.*dim = 2"),
    (np.ones((2, 2)), ValueError, r"y0.*\(2, 2\)"),
    (np.ones((1, 1, 2)), ValueError, "y0"),
    ([1.0, np.nan], ValueError, "y0.*NaN"),
    ([1.0, np.inf], ValueError, "y0"),
    ("ab", TypeError, "y0"),
    ([1.0, 1.0j], TypeError, "y0"),
    (np.array([1.0, None], dtype=object), TypeError, "y0"),
])
def test_bad_y0(y0, exc, match):
    with pytest.raises(exc, match=match):
        S(lin2(), 1.0, (0.0, 5.0), y0=y0)


# ------------------------------------------------------------------------- Python right-hand sides
@pytest.mark.parametrize("ret, dim, batch, match", [
    (lambda x: np.ones(3), 1, None, r"shape \(3,\).*\(1, 1\)"),
    (lambda x: np.ones((1, 2)), 1, None, r"shape \(1, 2\).*\(1, 1\)"),
    (lambda x: np.ones((2, 2)), 2, 3, r"shape \(2, 2\).*\(3, 2\)"),
    (lambda x: np.ones(6), 2, 3, r"shape \(6,\).*\(3, 2\)"),
    (lambda x: np.ones((3, 2, 1)), 2, 3, r"shape \(3, 2, 1\)"),
    (lambda x: x.T, 2, 3, r"shape \(2, 3\).*\(3, 2\)"),
])
def test_python_rhs_wrong_shape(ret, dim, batch, match):
    py = dl.rhs.python(lambda t, x, xd: ret(x), dim, 1.0, batch_size=batch)
    with pytest.raises(ValueError, match=match):
        S(py, 1.0, (0.0, 5.0))


@pytest.mark.parametrize("ret", [1.0, None], ids=["scalar", "None"])
def test_python_rhs_scalar_or_none(ret):
    py = dl.rhs.python(lambda t, x, xd: ret, 1, 1.0)
    with pytest.raises((ValueError, TypeError), match="f"):
        S(py, 1.0, (0.0, 5.0))


@pytest.mark.parametrize("ret", [
    "abc", {}, np.array([["a"]]), np.array([[object()]], dtype=object),
], ids=["str", "dict", "str-array", "object-array"])
def test_python_rhs_non_numeric(ret):
    py = dl.rhs.python(lambda t, x, xd: ret, 1, 1.0)
    with pytest.raises(TypeError, match="f must return an array of floats"):
        S(py, 1.0, (0.0, 5.0))


def test_python_rhs_complex_return_rejected():
    py = dl.rhs.python(lambda t, x, xd: -xd[:, 0, :] * (1 + 1j), 1, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # only whether it raises matters here
        with pytest.raises(TypeError, match="f"):
            S(py, 1.0, (0.0, 5.0))


def test_python_rhs_list_return_is_accepted():
    py = dl.rhs.python(lambda t, x, xd: (-xd[:, 0, :]).tolist(), 1, 1.0)
    ref = dl.rhs.python(decay, 1, 1.0)
    np.testing.assert_array_equal(S(py, 1.0, (0.0, 5.0), t_eval=[5.0]).y,
                                  S(ref, 1.0, (0.0, 5.0), t_eval=[5.0]).y)


class RhsFailure(Exception):
    pass


def _raising_f(t, x, xd):
    if t > 2.0:
        raise RhsFailure(f"model undefined at t={t:.3f}")
    return -xd[:, 0, :]


@pytest.mark.parametrize("throw", [True, False])
def test_python_rhs_exception_propagates(throw):
    py = dl.rhs.python(_raising_f, 1, 1.0)
    with pytest.raises(RhsFailure, match="model undefined at t=2"):
        S(py, 1.0, (0.0, 5.0), throw=throw)
    # The library is still usable afterwards.
    assert S(dl.rhs.python(decay, 1, 1.0), 1.0, (0.0, 5.0)).success


@pytest.mark.parametrize("exc_type", [ZeroDivisionError, KeyError, OverflowError])
def test_python_rhs_builtin_exceptions_propagate(exc_type):
    def f(t, x, xd):
        raise exc_type("inside f")

    with pytest.raises(exc_type, match="inside f"):
        S(dl.rhs.python(f, 1, 1.0), 1.0, (0.0, 5.0))


def test_python_rhs_nan_reports_status():
    py = dl.rhs.python(lambda t, x, xd: x * np.nan, 1, 1.0)
    sol = S(py, 1.0, (0.0, 5.0), throw=False)
    assert sol.status_names == "non_finite"
    with pytest.raises(dl.IntegrationError, match="non_finite"):
        S(py, 1.0, (0.0, 5.0))


@pytest.mark.parametrize("t_eval", [None, [0.0, 1.0, 5.0]], ids=["no-t_eval", "t_eval"])
def test_python_batch_solves(t_eval):
    # Regression: a Python batch once failed to split its lockstep output per trajectory.
    py = dl.rhs.python(decay, 1, 1.0, batch_size=3)
    sol = S(py, [0.5, 1.0, 2.0], (0.0, 5.0), t_eval=t_eval)
    assert sol.success and sol.batch_size == 3
    assert sol.y.shape == (3, len(sol.t), 1)
    np.testing.assert_array_equal(sol.status, 0)
    # The equation is linear and the batch shares its steps: scaling by 2 is exact.
    np.testing.assert_array_equal(sol.y[1], 2 * sol.y[0])
    np.testing.assert_array_equal(sol.y[2], 2 * sol.y[1])
    single = S(dl.rhs.python(decay, 1, 1.0), 1.0, (0.0, 5.0), t_eval=[5.0])
    np.testing.assert_allclose(sol.y[1, -1], single.y[-1], rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------- torch tensors
def test_torch_cpu_tensor_parameters_match_numpy():
    torch = pytest.importorskip("torch")
    tau = np.array([5.0, 10.0, 17.0])
    t_eval = [25.0, 50.0]
    ref = S(dl.rhs.mackey_glass(tau=tau), 0.5, (0.0, 50.0), t_eval=t_eval)
    for tensor in (torch.tensor(tau), torch.tensor(tau, requires_grad=True)):
        got = S(dl.rhs.mackey_glass(tau=tensor), torch.tensor(0.5), torch.tensor([0.0, 50.0]),
                t_eval=torch.tensor(t_eval))
        np.testing.assert_array_equal(got.y, ref.y)
    # float32 tensors are widened; these values are exact in float32.
    got32 = S(dl.rhs.mackey_glass(tau=torch.tensor(tau, dtype=torch.float32)), 0.5, (0.0, 50.0),
              t_eval=t_eval)
    np.testing.assert_array_equal(got32.y, ref.y)
    A, B = np.array([[0.0, 1.0], [-1.0, 0.0]]), -0.1 * np.eye(2)
    ref_lin = S(dl.rhs.linear(A, B, 1.0), 1.0, (0.0, 5.0), t_eval=[5.0])
    got_lin = S(dl.rhs.linear(torch.tensor(A), torch.tensor(B), torch.tensor(1.0)), 1.0,
                (0.0, 5.0), t_eval=[5.0])
    np.testing.assert_array_equal(got_lin.y, ref_lin.y)


def test_torch_bad_tensors():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="tau.*complex"):
        dl.rhs.mackey_glass(tau=torch.tensor([5.0 + 1j]))
    with pytest.raises(ValueError, match="tau.*NaN"):
        dl.rhs.mackey_glass(tau=torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="tau.*meta"):
        dl.rhs.mackey_glass(tau=torch.empty(3, device="meta"))
    with pytest.raises(ValueError, match="tau.*empty|zero"):
        dl.rhs.mackey_glass(tau=torch.empty(0))


def test_torch_bfloat16_is_converted():
    torch = pytest.importorskip("torch")
    sys_ = dl.rhs.mackey_glass(tau=torch.tensor([5.0], dtype=torch.bfloat16))
    assert sys_.tau.dtype == np.float64 and sys_.tau[0] == 5.0


# --------------------------------------------------------------------------- rhs()/jacobian() index
def test_linear_rhs_index_out_of_range():
    lb = dl.rhs.linear(np.stack([np.eye(2)] * 3), np.eye(2), 1.0)
    with pytest.raises((IndexError, ValueError), match="index"):
        lb.jacobian(0.0, [1.0, 1.0], [1.0, 1.0], index=10**6)


def test_mackey_glass_rhs_negative_index():
    # Negative indices count from the end, as in Python; beyond the batch they are errors.
    np.testing.assert_array_equal(mg().rhs(0.0, 1.0, 1.0, index=-1), mg().rhs(0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="index"):
        mg().rhs(0.0, 1.0, 1.0, index=-2)


# ------------------------------------------------------------------------- failures in an ensemble
T_EVAL = np.linspace(0.0, 10.0, 6)


def _max_steps_case():
    """Member 2 grows like e^{50 t} and exhausts max_steps; the others decay."""
    A = -np.ones((4, 1, 1))
    A[2, 0, 0] = 50.0
    B = 0.5 * np.ones((1, 1))
    return (dl.rhs.linear(A, B, 1.0), dl.rhs.linear(A[[0, 1, 3]], B, 1.0),
            2, "max_steps", dict(max_steps=300))


def _underflow_case():
    """Member 1 is stiff (rate -1e5) and cannot take steps above min_step."""
    A = -np.ones((4, 1, 1))
    A[:, 0, 0] = [-1.0, -1e5, -2.0, -3.0]
    B = 0.5 * np.ones((1, 1))
    return (dl.rhs.linear(A, B, 1.0), dl.rhs.linear(A[[0, 2, 3]], B, 1.0),
            1, "step_underflow", dict(min_step=1e-3))


@pytest.mark.parametrize("case", [_max_steps_case, _underflow_case], ids=["max_steps", "underflow"])
def test_ensemble_failure_throw(case):
    system, _, bad, name, opts = case()
    with pytest.raises(dl.IntegrationError,
                       match=rf"1 of 4 trajectories failed.*#{bad} \({name}") as ei:
        S(system, 1.0, (0.0, 10.0), t_eval=T_EVAL, **opts)
    err = ei.value
    assert list(err.failed) == [bad]
    assert err.solution is not None
    status = np.asarray(err.solution.status)
    assert status[bad] == next(k for k, v in dl.STATUS_NAMES.items() if v == name)
    assert np.all(np.delete(status, bad) == 0)


@pytest.mark.parametrize("case", [_max_steps_case, _underflow_case], ids=["max_steps", "underflow"])
@pytest.mark.parametrize("threads", [1, 2])
def test_ensemble_failure_no_throw(case, threads):
    system, good_system, bad, name, opts = case()
    sol = S(system, 1.0, (0.0, 10.0), t_eval=T_EVAL, throw=False, threads=threads, **opts)
    assert not sol.success
    assert list(sol.failed) == [bad]
    assert sol.status_names[bad] == name
    assert [s for i, s in enumerate(sol.status_names) if i != bad] == ["success"] * 3
    assert f"#{bad} ({name}" in sol.message and "1 of 4" in sol.message
    assert sol.t_final[bad] < 10.0
    np.testing.assert_array_equal(np.delete(sol.t_final, bad), 10.0)
    # Output after the failure point is NaN, never stale or garbage values.
    assert np.all(np.isnan(sol.y[bad][T_EVAL > sol.t_final[bad]]))
    # The good trajectories are exactly what a separate solve of them alone gives.
    alone = S(good_system, 1.0, (0.0, 10.0), t_eval=T_EVAL, threads=threads, **opts)
    assert alone.success
    keep = [i for i in range(4) if i != bad]
    np.testing.assert_array_equal(sol.y[keep], alone.y)
    np.testing.assert_array_equal(sol.y_final[keep], alone.y_final)
    for k in ("accepted", "rejected", "rhs_evals"):
        np.testing.assert_array_equal(sol.stats[k][keep], alone.stats[k])


def test_min_step_with_steady_initial_state():
    # x = 1 is a fixed point of the default Mackey–Glass (0.2·1/(1+1) − 0.1·1 = 0).
    sol = S(mg(), 1.0, (0.0, 10.0), min_step=1e-4, throw=False)
    assert sol.success, sol.message


def test_single_trajectory_failure_reports_status():
    sol = S(mg(), 0.5, (0.0, 1000.0), throw=False, max_steps=10)
    assert sol.status_names == "max_steps"
    assert list(sol.failed) == [0]
    assert "max_steps" in sol.message
    with pytest.raises(dl.IntegrationError, match="max_steps") as ei:
        S(mg(), 0.5, (0.0, 1000.0), max_steps=10)
    assert ei.value.solution.status == sol.status
