"""The CPU emulation of the CUDA runtime (cpp/cuda/emulation) must expose the GPU bugs it is
there to catch, or its green runs of tests/test_cuda.py would mean nothing: a reduction missing
its barriers gives a wrong sum, a barrier in divergent code and a copy in the wrong direction
raise, and a write one past the end of a device buffer faults. Skipped without the emulated
build (-Ccmake.define.DELYAP_CUDA_EMULATION=ON)."""
import signal
import subprocess
import sys

import numpy as np
import pytest

emu = pytest.importorskip("delyap._cuda_emulated")


def test_block_sum_needs_its_barriers():
    x = np.random.default_rng(17).uniform(1.0, 2.0, size=128)
    assert emu.block_sum(x, barriers=True) == pytest.approx(x.sum(), rel=1e-14)
    # Without barriers each thread runs to the end before the next starts. Launches alternate
    # between running the threads backwards (where this tree happens to come out right) and
    # forwards, where thread 0 adds partial sums nobody has written yet in this launch (the
    # previous launch's, for other data: shared memory is not cleared between launches).
    inputs = [x, x + 1.0]
    errors = [abs(emu.block_sum(v, barriers=False) - v.sum()) for v in inputs]
    assert max(errors) > 100.0
    assert emu.block_sum(x, barriers=True) == pytest.approx(x.sum(), rel=1e-14)


def test_divergent_barrier_is_a_launch_failure():
    with pytest.raises(RuntimeError, match="divergent_barrier_kernel: unspecified launch failure"):
        emu.selftest("divergent_barrier")


def test_copy_in_the_wrong_direction_is_an_error():
    with pytest.raises(RuntimeError, match="cudaMemcpy: invalid argument"):
        emu.selftest("copy_direction")


def test_host_pointer_passed_to_a_kernel_is_a_launch_failure():
    with pytest.raises(RuntimeError, match="write_kernel: unspecified launch failure"):
        emu.selftest("host_pointer")


@pytest.mark.parametrize("bug", ["out_of_bounds", "out_of_bounds_int"])
def test_write_one_element_past_the_end_of_device_memory_faults(bug):
    code = f"from delyap import _cuda_emulated as e; e.selftest({bug!r}); print('ran')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == -signal.SIGSEGV, run.stderr  # the guard page after the buffer


def test_gpu_benchmark_script_runs_and_agrees_with_the_cpu_on_the_emulator():
    """benchmarks/gpu/bench_gpu.py waits for a GPU machine; --smoke keeps it runnable here."""
    import os
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / "bench_gpu.py"
    env = dict(os.environ, DELYAP_CUDA_EMULATION="1")
    run = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True,
                         text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "CPU emulation" in run.stdout
    assert run.stdout.count("(ok)") == 3 and "MISMATCH" not in run.stdout
