"""progress=: the C++ core counts finished items (trajectories, problems, configurations) in
an atomic; the waiting thread hands the counts to a Python callback; a tqdm bar shows them."""
import sys
import warnings

import numpy as np
import pytest

import delyap as dl
from delyap import _core


@pytest.fixture
def core_counts():
    """The raw counts the core reports (installed below any Progress: progress=False leaves
    this thread's callback alone)."""
    seen = []
    previous = _core._set_progress_callback(seen.append)
    yield seen
    _core._set_progress_callback(previous)


def _monotone_to(counts, total):
    assert counts, "no progress reported"
    assert all(b >= a for a, b in zip(counts, counts[1:])), counts
    assert counts[-1] == total, counts


def test_core_counts_every_trajectory_once(core_counts):
    """The outermost parallel loop counts each finished item exactly once (not per thread,
    not the nested loops): the last count is the batch size, for every kind of batch."""
    dl.solve_dde(dl.rhs.mackey_glass(tau=np.linspace(5, 20, 37)), 0.5, (0, 50), threads=2,
                 progress=False)
    _monotone_to(core_counts, 37)
    core_counts.clear()
    mats = np.stack([np.eye(3) * 0.9, np.diag([1.1, 0.5, 0.7])])
    dl.iid_product(np.stack([mats] * 11), steps=50, threads=2, progress=False)
    _monotone_to(core_counts, 11)
    core_counts.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=[5.0, 7.0, 9.0]), 0.5, 2, 50.0,
                             threads=2, progress=False)
    _monotone_to(core_counts, 3)


def test_callback_counts_are_monotone_and_end_at_total():
    calls = []
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=np.linspace(5, 20, 64)), 0.5, (0, 200),
                       threads=2, progress=lambda done, total: calls.append((done, total)))
    assert sol.success
    assert {t for _, t in calls} == {64}
    _monotone_to([d for d, _ in calls], 64)


def test_stability_map_progress_adds_up_its_rows():
    from delyap import sgd

    rng = np.random.default_rng(0)
    J = rng.standard_normal((10, 6))
    calls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        sgd.stability_map(J @ J.T, lr=[0.02, 0.05, 0.1], batch_size=[1, 2, 5, 10], steps=200,
                          mean_square=False, progress=lambda d, t: calls.append((d, t)))
        res = sgd.gram_lyapunov(J @ J.T, [0.02, 0.05], [2, 3], steps=200,
                                progress=lambda d, t: calls.append((d, t)))
    assert res.success
    map_calls = [c for c in calls if c[1] == 12]
    _monotone_to([d for d, _ in map_calls], 12)
    assert calls[-1] == (2, 2)


def test_callback_error_stops_the_run_and_propagates():
    def boom(done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        dl.solve_dde(dl.rhs.mackey_glass(tau=np.linspace(5, 20, 8)), 0.5, (0, 100),
                     progress=boom)
    # the callback slot is restored: a later call without progress is unaffected
    assert dl.solve_dde(dl.rhs.mackey_glass(tau=[5.0, 6.0]), 0.5, (0, 10)).success


def test_progress_false_prints_nothing(capsys):
    dl.solve_dde(dl.rhs.mackey_glass(tau=np.linspace(5, 20, 16)), 0.5, (0, 50), progress=False)
    dl.iid_product(np.stack([np.eye(2)[None].repeat(2, 0)] * 3), steps=20, progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_default_is_silent_when_stderr_is_not_a_terminal(capsys):
    dl.solve_dde(dl.rhs.mackey_glass(tau=np.linspace(5, 20, 16)), 0.5, (0, 50))
    assert capsys.readouterr().err == ""


def test_progress_true_draws_a_tqdm_bar(capsys):
    pytest.importorskip("tqdm")
    dl.solve_dde(dl.rhs.mackey_glass(tau=np.linspace(5, 20, 16)), 0.5, (0, 50), progress=True)
    assert "solve_dde" in capsys.readouterr().err


def test_no_tqdm_no_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    sol = dl.solve_dde(dl.rhs.mackey_glass(tau=np.linspace(5, 20, 16)), 0.5, (0, 50),
                       progress=True)
    assert sol.success and capsys.readouterr().err == ""


def test_bad_progress_names_the_argument():
    with pytest.raises(TypeError, match="progress"):
        dl.solve_dde(dl.rhs.mackey_glass(tau=[5.0, 6.0]), 0.5, (0, 10), progress="yes")


def test_single_trajectory_reports_its_time_span(core_counts):
    """One trajectory (a large network runs minutes) counts in thousandths of its span: many
    intermediate counts, monotone, proportional to the time reached, ending at the declared
    total; on every single-trajectory path (dense output, every step, the executor-resident
    network driver, a lockstep Python batch)."""
    units = _core.PROGRESS_SPAN_UNITS
    mg = dl.rhs.mackey_glass(tau=17.0)
    for t_eval in (np.linspace(0, 2000, 5), None):  # the ensemble and the every-step drivers
        core_counts.clear()
        dl.solve_dde(mg, 0.5, (0, 2000), t_eval=t_eval, progress=False)
        _monotone_to(core_counts, units)
        calls: list = []
        dl.solve_dde(mg, 0.5, (0, 2000), t_eval=t_eval, progress=lambda d, t, c=calls: c.append(
            (d, t)))
        assert {t for _, t in calls} == {units}
        _monotone_to([d for d, _ in calls], units)

    # The counts follow the time reached: a run stopped by a failing Python f at t = 30 of
    # [0, 100] has reported 30 % of the span (29.9 %: units − 1 go by time).
    def f(t, x):
        if t > 30.0:
            raise RuntimeError("stop here")
        return -x

    core_counts.clear()
    with pytest.raises(RuntimeError, match="stop here"):
        dl.solve_dde(dl.rhs.python(f, 1, tau=()), 1.0, (0, 100), max_step=0.01, progress=False)
    assert core_counts and abs(core_counts[-1] - 0.3 * (units - 1)) <= 3, core_counts[-1:]

    # A lockstep Python batch is one state: the same units, not a trajectory count.
    calls = []
    batch = dl.rhs.python(lambda t, x: -x, 1, tau=(), batch_size=4)
    dl.solve_dde(batch, np.ones((4, 1)), (0, 5), progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (units, units)


def test_network_driver_counts_time_and_batches(core_counts):
    """The executor-resident network driver (the GPU path's host twin) counts a single network
    by time and a coupling batch by trajectories."""
    import scipy.sparse as sp

    from delyap import _testing
    from delyap.solve import METHODS, _output_spec

    units = _core.PROGRESS_SPAN_UNITS
    rng = np.random.default_rng(3)
    A = sp.random(30, 30, density=0.2, format="csr", random_state=3)
    opt = _core.SolverOptions()
    opt.method = METHODS["DP5"]
    te = np.linspace(0, 50, 11)
    for coupling, total in ((1.0, units), ([0.5, 1.0, 1.5], 3)):
        core_counts.clear()
        net = dl.rhs.kuramoto(rng.uniform(-1, 1, 30), A, coupling, tau=0.5)
        hist = dl.build_history(rng.uniform(0, 6, 30), net, 0.0, None, history_points=20)
        out = _testing.solve_network_vector(net, hist, 0.0, 50.0, te, opt,
                                            _output_spec(None, net, te))
        assert np.all(np.asarray(out["status"]) == 0)
        _monotone_to(core_counts, total)


def test_single_spectrum_reports_its_time_span(core_counts):
    """A single Lyapunov spectrum (minutes for a large network) counts thousandths of its time
    span (transient and averaging), not one item at its end; a batch still counts spectra."""
    units = _core.PROGRESS_SPAN_UNITS
    calls: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=17.0), 0.5, 2, 3000.0,
                             progress=lambda d, t, c=calls: c.append((d, t)))
    assert calls and calls[-1] == (units, units)
    _monotone_to([d for d, _ in calls], units)
    core_counts.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dl.ConvergenceWarning)
        dl.lyapunov_spectrum(dl.rhs.mackey_glass(tau=17.0), 0.5, 2, 3000.0, progress=False)
    _monotone_to(core_counts, units)

    # The counts follow the time reached: a spectrum whose f fails at t = 30 of its span
    # [0, 100] (transient 30 + averaging 70) has reported 30 % of it.
    def f(t, x):
        if t > 30.0:
            raise RuntimeError("stop here")
        return -x

    ode = dl.rhs.python(f, 1, tau=(), jac=lambda t, x: -np.eye(1))
    core_counts.clear()
    with pytest.raises(RuntimeError, match="stop here"):
        dl.lyapunov_spectrum(ode, 1.0, 1, 70.0, t_transient=30.0, max_step=0.01,
                             progress=False)
    assert core_counts and abs(core_counts[-1] - 0.3 * (units - 1)) <= 3, core_counts[-1:]
