"""Where delyap runs: ``device="cpu"`` (default) or ``device="cuda"``.

The CUDA kernels live in the optional extension ``delyap._cuda``, built when nvcc is found at
install time (``DELYAP_CUDA=AUTO``). :func:`cuda_backend` returns it or raises a
:class:`CudaUnavailableError` that says which part is missing: the build, the driver or a
device. Inputs that already live on a GPU (torch tensors, or anything exposing
``__cuda_array_interface__``) select ``"cuda"`` when ``device`` is left at None.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional

__all__ = ["CudaUnavailableError", "cuda_backend", "resolve_device", "on_cuda", "current_stream",
           "emulated", "device_info"]

DEVICES = ("cpu", "cuda")


class CudaUnavailableError(RuntimeError):
    """``device="cuda"`` was asked for and this installation or machine cannot run it."""


EMULATION_VARIABLE = "DELYAP_CUDA_EMULATION"


def emulated() -> bool:
    """True when ``DELYAP_CUDA_EMULATION`` is set (to anything but "" or "0"): ``device="cuda"``
    then runs the CUDA sources compiled for the CPU (``delyap._cuda_emulated``, built with
    ``-Ccmake.define.DELYAP_CUDA_EMULATION=ON``). A development tool for testing the GPU code
    paths on machines without a GPU; it is slow and says nothing about GPU speed."""
    return os.environ.get(EMULATION_VARIABLE, "") not in ("", "0")


_warned_emulation = False


def _emulated_backend():
    global _warned_emulation
    try:
        from . import _cuda_emulated  # type: ignore[attr-defined]
    except ImportError as exc:
        raise CudaUnavailableError(
            f"device='cuda': {EMULATION_VARIABLE} is set, but this delyap was built without the "
            "CPU emulation of its CUDA module (reinstall with "
            "-Ccmake.define.DELYAP_CUDA_EMULATION=ON)") from exc
    if not _warned_emulation:  # a variable left set would otherwise go unnoticed
        _warned_emulation = True
        warnings.warn(f"{EMULATION_VARIABLE} is set: device='cuda' runs the CUDA code on its "
                      "CPU emulation (for testing; slow, and no GPU is used)", RuntimeWarning,
                      stacklevel=3)
    return _cuda_emulated


def cuda_backend():
    """The CUDA extension module, checked to have a usable device (or, when
    ``DELYAP_CUDA_EMULATION`` is set, its CPU emulation)."""
    if emulated():
        return _emulated_backend()
    try:
        from . import _cuda  # type: ignore[attr-defined]
    except ImportError as exc:
        raise CudaUnavailableError(
            "device='cuda': this delyap was built without CUDA (no nvcc at install time; "
            "reinstall with nvcc on PATH, or set -Ccmake.define.DELYAP_CUDA=ON)") from exc
    n = _cuda.device_count()
    if n <= 0:
        raise CudaUnavailableError(
            "device='cuda': delyap has its CUDA module, but no CUDA device is visible "
            "(no GPU, no driver, or CUDA_VISIBLE_DEVICES hides it)")
    return _cuda


def current_stream() -> int:
    """The CUDA stream the kernels launch on: torch's current stream when torch is in use (so
    delyap's work orders with the caller's), else 0 (the default stream)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                return int(torch.cuda.current_stream().cuda_stream)
        except Exception:  # a CPU-only torch build
            return 0
    return 0


def on_cuda(value: Any) -> bool:
    """True for arrays that live on a CUDA device (torch tensors, CuPy, Numba arrays)."""
    if hasattr(value, "__cuda_array_interface__"):
        return True
    dev = getattr(value, "device", None)
    return getattr(dev, "type", None) == "cuda"


def device_info(device: str) -> dict:
    """Where a result was computed, for its ``info`` / ``extras``: the device and, for
    "cuda", whether that was the CPU emulation."""
    return {"device": device, "emulated": device == "cuda" and emulated()}


def resolve_device(device: Optional[str], *inputs: Any) -> str:
    """``device`` validated; None picks "cuda" when any input is on a GPU, else "cpu"."""
    if device is None:
        if not any(on_cuda(v) for v in inputs):
            return "cpu"
        try:
            cuda_backend()
        except CudaUnavailableError as exc:
            raise CudaUnavailableError(
                f"{exc}. device='cuda' was chosen because an input is on a CUDA device; pass "
                "device='cpu' to run on the CPU") from exc
        return "cuda"
    if not isinstance(device, str) or device.lower() not in DEVICES:
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    return device.lower()


def to_host(value: Any) -> Any:
    """A GPU array as a host numpy array (small parameter arrays only cross this way)."""
    if on_cuda(value):
        if hasattr(value, "detach"):  # torch
            return value.detach().cpu().numpy()
        if hasattr(value, "get"):  # CuPy
            return value.get()
        raise TypeError("a CUDA array without .get() or .cpu(): pass a numpy array instead")
    return value
