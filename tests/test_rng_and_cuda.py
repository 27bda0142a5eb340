"""The counter-based generator shared by CPU and CUDA code, and the CUDA module when present."""
import numpy as np
import pytest

import delyap as dl
from delyap import _core


def test_philox_known_answers():
    """Random123's known-answer vectors for Philox4x32-10."""
    assert _core.philox4x32(0, 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    m = 2**64 - 1
    assert _core.philox4x32(m, m, m) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)


def test_uniforms_are_uniform_and_stream_dependent():
    u = _core.philox_uniforms(42, 0, 50_000)
    assert np.all((u > 0) & (u < 1))
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    chi2 = np.sum((counts - u.size / 20) ** 2 / (u.size / 20))
    assert chi2 < 45  # 19 degrees of freedom, p ≈ 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02
    assert not np.array_equal(u[:10], _core.philox_uniforms(42, 1, 5))


def test_has_cuda_matches_the_cuda_module():
    try:
        from delyap import _cuda
    except ImportError:
        assert dl.has_cuda() is False
        return
    assert dl.has_cuda() == (_cuda.device_count() > 0)


@pytest.mark.skipif(not dl.has_cuda(), reason="needs a CUDA build and a GPU")
def test_gpu_draws_the_cpu_stream():
    from delyap import _cuda

    rng = np.random.default_rng()
    seed, stream = int(rng.integers(0, 2**63)), int(rng.integers(0, 2**32))
    np.testing.assert_array_equal(_cuda.philox_uniforms(seed, stream, 100_003),
                                  _core.philox_uniforms(seed, stream, 100_003))
