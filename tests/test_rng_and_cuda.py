"""The counter-based generator shared by CPU and CUDA code, and the CUDA module when present."""
import sys

import numpy as np
import pytest

import delyap as dl
from delyap import _testing


def test_philox_known_answers():
    """Random123's known-answer vectors for Philox4x32-10."""
    assert _testing.philox4x32(0, 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    m = 2**64 - 1
    assert _testing.philox4x32(m, m, m) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)


def test_uniforms_are_uniform_and_stream_dependent():
    u = _testing.philox_uniforms(42, 0, 50_000)
    assert np.all((u > 0) & (u < 1))
    assert abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / u.size)
    counts, _ = np.histogram(u, bins=20, range=(0, 1))
    chi2 = np.sum((counts - u.size / 20) ** 2 / (u.size / 20))
    assert chi2 < 45  # 19 degrees of freedom, p ≈ 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02
    assert not np.array_equal(u[:10], _testing.philox_uniforms(42, 1, 5))


def test_has_cuda_matches_the_cuda_module(monkeypatch):
    monkeypatch.delenv("DELYAP_CUDA_EMULATION", raising=False)
    try:
        from delyap import _cuda
    except ImportError:
        assert dl.has_cuda() is False
        return
    assert dl.has_cuda() == (_cuda.device_count() > 0)


def test_emulation_asked_for_but_not_built_says_how_to_build_it(monkeypatch):
    monkeypatch.setenv("DELYAP_CUDA_EMULATION", "1")
    monkeypatch.setitem(sys.modules, "delyap._cuda_emulated", None)  # import fails …
    monkeypatch.delattr(dl, "_cuda_emulated", raising=False)  # … even after an earlier one
    assert dl.has_cuda() is False
    with pytest.raises(dl.CudaUnavailableError, match="DELYAP_CUDA_EMULATION=ON"):
        dl.solve_dde(dl.rhs.mackey_glass(tau=[5.0, 7.0]), 0.5, (0.0, 10.0), device="cuda")
    monkeypatch.setenv("DELYAP_CUDA_EMULATION", "0")  # "0" means off
    from delyap.device import emulated

    assert not emulated()
