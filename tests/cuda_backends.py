"""Which backends device="cuda" can use in this installation: "gpu" (the CUDA build on a GPU)
and "emulated" (the same CUDA sources compiled for the CPU against cpp/cuda/emulation, built
with -Ccmake.define.DELYAP_CUDA_EMULATION=ON; DELYAP_CUDA_EMULATION=1 selects it)."""
import importlib

import numpy as np


def _gpu_present() -> bool:
    try:
        return importlib.import_module("delyap._cuda").device_count() > 0
    except Exception:
        return False


def _emulation_built() -> bool:
    try:
        importlib.import_module("delyap._cuda_emulated")
        return True
    except ImportError:
        return False


BACKENDS = [b for b, there in (("gpu", _gpu_present()), ("emulated", _emulation_built())) if there]
SKIP_REASON = ("needs the CUDA build and a GPU, or the CPU emulation "
               "(-Ccmake.define.DELYAP_CUDA_EMULATION=ON)")


def environment(backend: str) -> dict:
    """The DELYAP_CUDA_EMULATION setting that sends device="cuda" to `backend`."""
    return {"DELYAP_CUDA_EMULATION": "1" if backend == "emulated" else "0"}


class CupyLike:
    """A stand-in for a CuPy array: __cuda_array_interface__ and .get()."""

    def __init__(self, a):
        self._a = np.asarray(a)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self._a.shape, "typestr": "<f8", "data": (0, False), "version": 3}

    def get(self):
        return self._a
