"""Ctrl-C during a long neural-DDE pass (forward or backward): it stops with KeyboardInterrupt
promptly, and the core stays usable. A child process runs the pass; the parent sends SIGINT."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX-only")

import delyap as dl  # noqa: E402

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(dl.__file__)))

CHILD = """
import sys, time
import numpy as np
from delyap import _core
rng = np.random.default_rng(0)
D, H, B = 2, 4096, 256  # ~10^11 flops in all: minutes, unless interrupted
W, Wd = rng.standard_normal((H, D)), rng.standard_normal((1, H, D))
b, Wo = rng.standard_normal(H), rng.standard_normal((D, H)) / H
h0, tau = rng.standard_normal((B, D)), np.array([0.5])
args = (W, Wd, b, Wo, tau, 0, _core.Method.RK4)
small = _core.neural_forward(h0[:2], *args, 0.1, 1e-6, 1e-8, 0.05, None, 10**6, 1)
print("started", flush=True)
try:
    if {phase!r} == "forward":
        _core.neural_forward(h0, *args, 20.0, 1e-6, 1e-8, 0.01, None, 10**7, {threads})
    else:
        # 500 steps: the backward pass (about twice a forward step each) runs for seconds even
        # on a quiet machine, well past the signal.
        out = _core.neural_forward(h0, *args, 5.0, 1e-6, 1e-8, 0.01, None, 10**7, {threads})
        print("backward", flush=True)
        _core.neural_backward(*args, out["t"], out["X"], out["K"], np.ones((B, D)), {threads})
except KeyboardInterrupt:
    print("interrupted", flush=True)
    again = _core.neural_forward(h0[:2], *args, 0.1, 1e-6, 1e-8, 0.05, None, 10**6, 1)
    assert np.array_equal(again["y"], small["y"])
    print("reusable", flush=True)
    sys.exit(0)
print("finished without interrupt", flush=True)
sys.exit(3)
"""


# threads=1 runs the pass on the calling thread (its work polls check signals); threads=2 on
# worker threads with the calling thread watching (run_interruptible): both must stop.
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_ctrl_c_stops_the_pass(phase, threads):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([PYTHON_DIR, env.get("PYTHONPATH", "")])
    child = textwrap.dedent(CHILD.format(phase=phase, threads=threads))
    # A runner started in the background of a non-interactive shell ignores SIGINT, and the
    # child would inherit that (Python then installs no KeyboardInterrupt handler): restore the
    # default disposition in the child, as tests/test_interrupt.py does.
    proc = subprocess.Popen([sys.executable, "-c", child],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for = "backward" if phase == "backward" else "started"
        for line in proc.stdout:
            if line.strip() == wait_for:
                break
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (out, err)
    assert "interrupted" in out and "reusable" in out
    # Generous for a loaded machine: the core reads its flag every ~7e7 flops (milliseconds).
    assert elapsed < 10.0
