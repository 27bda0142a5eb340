"""Ctrl-C during a long solve: the solve stops promptly with KeyboardInterrupt.

Each test runs a child Python process that prints "started", then blocks in a long
solve_dde call. The parent sends SIGINT 0.5 s later and expects the child to catch a
KeyboardInterrupt, print "interrupted" and exit 0 within 1.5 s of the signal. The child
then runs a small solve to check the library is still usable after an interrupt.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from cuda_backends import BACKENDS, SKIP_REASON, environment

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX-only")

import delyap as dl  # noqa: E402

# Where the delyap under test lives (the installed package in CI, python/ in a dev tree).
PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(dl.__file__)))

PRELUDE = """
import sys, time
import numpy as np
import delyap as dl

def after():
    # The library must still work after an interrupted solve.
    s = dl.solve_dde(dl.rhs.mackey_glass(), 0.5, (0.0, 50.0), t_eval=[50.0])
    assert s.success
    print("reusable", flush=True)

{setup}
print("started", flush=True)
t_start = time.perf_counter()
try:
{body}
except KeyboardInterrupt:
    print("interrupted", flush=True)
    print("caught_at", repr(time.monotonic()), flush=True)
    after()
    sys.exit(0)
print("finished without interrupt after %.1f s" % (time.perf_counter() - t_start), flush=True)
sys.exit(3)
"""

SIGNAL_DELAY = 0.5    # seconds between "started" and SIGINT
EXIT_DEADLINE = 1.5   # seconds allowed between SIGINT and the child's exit


def _child_env(extra=None):
    env = dict(os.environ, **(extra or {}))
    parts = [PYTHON_DIR] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _interrupt_child(body: str, env=None, setup: str = ""):
    """Run ``body`` in a child, SIGINT it 0.5 s after "started"; return (rc, out, err, latency,
    catch_latency): the time from the signal to the child's exit, and to its catching the
    KeyboardInterrupt (None when it did not)."""
    # `setup` (e.g. building large inputs) runs before "started", so the signal lands in `body`.
    code = PRELUDE.format(setup=textwrap.dedent(setup).strip(),
                          body=textwrap.indent(textwrap.dedent(body).strip(), "    "))
    # A runner started in the background of a non-interactive shell ignores SIGINT, and the
    # child would inherit that (Python then never installs its Ctrl-C handler): restore it.
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_child_env(env),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()  # blocks until the child reaches its solve
        if line.strip() != "started":
            out, err = proc.communicate(timeout=10)
            pytest.fail(f"child did not start: {line!r}{out!r}\nstderr:\n{err}")
        time.sleep(SIGNAL_DELAY)
        assert proc.poll() is None, "child finished before it was interrupted"
        sent = time.perf_counter()
        sent_monotonic = time.monotonic()  # CLOCK_MONOTONIC: the same clock in the child
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=EXIT_DEADLINE + 1.5)
        except subprocess.TimeoutExpired:
            pass
        latency = time.perf_counter() - sent
        out, err = proc.communicate(timeout=0.1) if proc.poll() is not None else ("", "")
        words = out.split()
        caught = (float(words[words.index("caught_at") + 1]) - sent_monotonic
                  if "caught_at" in words else None)
        return proc.returncode, out, err, latency, caught
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


CATCH_DEADLINE = 1.0  # seconds from SIGINT to the KeyboardInterrupt in the child


def _check(rc, out, err, latency, caught):
    assert rc is not None, f"child still running {latency:.2f} s after SIGINT (hung)"
    assert rc == 0, f"child exit code {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert "interrupted" in out.split(), \
        f"no KeyboardInterrupt reported\nstdout:\n{out}\nstderr:\n{err}"
    assert "reusable" in out.split(), f"library unusable after interrupt\nstderr:\n{err}"
    # The latency includes the small check solve after the interrupt (milliseconds).
    assert latency < EXIT_DEADLINE, f"child took {latency:.2f} s to stop after SIGINT"
    assert caught is not None and caught < CATCH_DEADLINE, \
        f"KeyboardInterrupt arrived {caught} s after SIGINT"


def test_ctrl_c_stops_large_compiled_sweep():
    # 200000 Mackey–Glass trajectories to t = 1e5 on two threads: hours of work.
    body = """
    mg = dl.rhs.mackey_glass(tau=np.linspace(5.0, 30.0, 200_000))
    dl.solve_dde(mg, 0.5, (0.0, 1e5), threads=2)
    """
    _check(*_interrupt_child(body))


def test_ctrl_c_stops_single_long_compiled_trajectory():
    # One trajectory with every accepted step recorded (the StepSink path, not the ensemble).
    body = """
    mg = dl.rhs.mackey_glass(tau=17.0)
    dl.solve_dde(mg, 0.5, (0.0, 1e9), max_step=0.01, rtol=1e-10, atol=1e-12)
    """
    _check(*_interrupt_child(body))


def test_ctrl_c_stops_batched_compiled_linear_with_t_eval():
    body = """
    A = np.zeros((50_000, 2, 2)); A[:, 0, 1] = 1.0; A[:, 1, 0] = -1.0
    lin = dl.rhs.linear(A, -0.1 * np.eye(2), np.linspace(0.5, 2.0, 50_000).reshape(-1, 1))
    dl.solve_dde(lin, 1.0, (0.0, 1e6), t_eval=np.linspace(0.0, 1e6, 11), threads=2)
    """
    _check(*_interrupt_child(body))


def test_ctrl_c_stops_python_rhs():
    body = """
    def f(t, x, xd):
        return 0.2 * xd[:, 0, :] / (1.0 + xd[:, 0, :] ** 10) - 0.1 * x
    py = dl.rhs.python(f, 1, 17.0)
    dl.solve_dde(py, 0.5, (0.0, 1e9), max_step=0.01)
    """
    _check(*_interrupt_child(body))


def test_ctrl_c_stops_slow_python_rhs():
    # Each call of f takes ~10 ms, so a step (6-7 stages) takes ~70 ms: cancellation must
    # be noticed within a few steps, not after dozens.
    body = """
    def f(t, x, xd):
        time.sleep(0.01)
        return -0.1 * x + 0.2 * xd[:, 0, :] / (1.0 + xd[:, 0, :] ** 10)
    py = dl.rhs.python(f, 1, 17.0)
    dl.solve_dde(py, 0.5, (0.0, 1e9), max_step=0.01)
    """
    _check(*_interrupt_child(body))


def test_ctrl_c_stops_a_product_whose_single_step_takes_seconds():
    # d = 1500, full spectrum: one step is ~10^10 flops (≥ 0.3 s here even with blocked
    # kernels; seconds on the baseline build). Polling every N steps cannot stop this within
    # 1 s; polling by work done (common/work_poll.hpp) must, inside the product and the QR.
    setup = "mats = np.random.default_rng(0).normal(size=(2, 1500, 1500)) / 40"
    body = "dl.iid_product(mats, steps=100, transient=0, threads=1)"
    _check(*_interrupt_child(body, setup=setup))


def test_ctrl_c_stops_sgd_gram_map_with_long_steps():
    # Few long steps (full-rank K, n = 1000, k = 300 directions, B = 64): a step and its QR are
    # ~4e8 flops, so "every 256 steps" read the flag once a minute; by work it is prompt.
    setup = """
    import delyap.sgd as sgd
    J = np.random.default_rng(0).standard_normal((1000, 1000)) / np.sqrt(1000)
    spec = sgd.gram_spectrum(J @ J.T)
    """
    body = "sgd.gram_lyapunov(spec, 0.01, 64, steps=10**6, n_exponents=300, threads=1)"
    _check(*_interrupt_child(body, setup=setup))


def test_ctrl_c_stops_python_rhs_between_stages():
    # One call of f takes 0.25 s, so one DP5 step (6 stages + the error estimate) is ~1.7 s:
    # checking only between steps misses 1 s; the check before each call does not.
    body = """
    def f(t, x, xd):
        time.sleep(0.25)
        return -0.1 * x + 0.2 * xd[:, 0, :] / (1.0 + xd[:, 0, :] ** 10)
    dl.solve_dde(dl.rhs.python(f, 1, 17.0), 0.5, (0.0, 1e9), max_step=0.01)
    """
    _check(*_interrupt_child(body))


@pytest.mark.parametrize("backend", BACKENDS or [pytest.param(None, marks=pytest.mark.skip(
    reason=SKIP_REASON))])
def test_ctrl_c_stops_a_gpu_ensemble_kernel(backend):
    # The kernel polls a host-mapped flag every 1024 steps of each trajectory.
    body = """
    mg = dl.rhs.mackey_glass(tau=np.linspace(5.0, 30.0, 256))
    dl.solve_dde(mg, 0.5, (0.0, 1e9), device="cuda", history_capacity=256)
    """
    _check(*_interrupt_child(body, environment(backend)))


@pytest.mark.parametrize("backend", BACKENDS or [pytest.param(None, marks=pytest.mark.skip(
    reason=SKIP_REASON))])
def test_ctrl_c_stops_a_gpu_sgd_map(backend):
    # Each block's leader polls the flag every 256 steps.
    body = """
    import delyap.sgd as sgd
    J = np.random.default_rng(0).standard_normal((64, 200)) / 14
    sgd.gram_lyapunov(J @ J.T, np.linspace(0.1, 1.0, 16), 4, steps=10**9, device="cuda")
    """
    _check(*_interrupt_child(body, environment(backend)))


def test_ctrl_c_during_the_first_scipy_lookup_is_not_swallowed():
    """The first large product imports scipy's BLAS (slow under load): a Ctrl-C landing there
    must reach the caller, and must not switch scipy's kernels off for the rest of the process
    (it used to be taken for 'no scipy', losing the interrupt)."""
    code = textwrap.dedent("""
        import sys, numpy as np, delyap as dl
        from delyap import _testing
        import scipy.linalg.cython_blas as real

        class Interrupting:
            def __getattr__(self, name):
                raise KeyboardInterrupt

        sys.modules["scipy.linalg.cython_blas"] = Interrupting()
        mats = np.stack([np.eye(64), 0.5 * np.eye(64)])
        try:
            dl.iid_product(mats, steps=10, n_exponents=4, transient=0)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
        sys.modules["scipy.linalg.cython_blas"] = real
        print("backend", _testing.dense_backend(120, 10)[0])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_child_env(), timeout=60)
    assert out.stdout.split() == ["interrupted", "backend", "scipy"], out.stdout + out.stderr
