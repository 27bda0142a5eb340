"""delyap: delay differential equations at scale and Lyapunov spectra, on a C++ core.

Start with :func:`solve_dde` and the systems in :mod:`delyap.rhs`::

    import numpy as np, delyap as dl
    mg = dl.rhs.mackey_glass(beta=0.2, gamma=0.1, n=10, tau=17.0)
    sol = dl.solve_dde(mg, 0.5, (0, 1000), t_eval=np.arange(0, 1000, 1.0))

Submodules load on first use (``delyap.sgd``, ``delyap.plot``, …, as in scipy), so that
``import delyap`` imports neither torch nor matplotlib.
"""
from __future__ import annotations

import importlib
from typing import Any

from . import _core, lyapunov, rhs
from .device import CudaUnavailableError
from .errors import ConvergenceWarning, IntegrationError
from .history import build_history
from .lyapunov import LyapunovResult, iid_product, kaplan_yorke_dimension, lyapunov_spectrum
from .solution import STATUS_NAMES, DDESolution
from .solve import METHODS, solve_dde

__version__: str = _core.__version__

__all__ = ["solve_dde", "DDESolution", "rhs", "lyapunov", "lyapunov_spectrum", "iid_product",
           "LyapunovResult", "kaplan_yorke_dimension", "IntegrationError", "ConvergenceWarning",
           "STATUS_NAMES", "METHODS", "has_cuda", "CudaUnavailableError", "build_history",
           "__version__"]

# The public submodules, reachable as attributes after ``import delyap``; those not imported
# above load in __getattr__ on first access (sgd needs torch only for its torch functions,
# plot needs matplotlib).
_SUBMODULES = frozenset({"cli", "demo", "device", "errors", "history", "lyapunov", "meanfield",
                         "geometry", "networks", "nn", "plot", "rhs", "sgd", "solution", "solve",
                         "distributed"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)


def has_cuda() -> bool:
    """True when the CUDA extension is built and a CUDA device answers (with
    ``DELYAP_CUDA_EMULATION`` set: when the CPU emulation of the extension is built)."""
    from .device import cuda_backend

    try:
        cuda_backend()
    except Exception:  # CudaUnavailableError, or a driver that fails in another way
        return False
    return True
