"""Neural delay differential equations and neural ODEs as differentiable torch modules.

:class:`NeuralDDE` maps x ↦ λ2(h(T)) with h'(t) = W_out σ(W h(t) + Σ_k W_k h(t − τ_k) + b) and
the constant history h = λ1(x) on [−max τ, 0]; :class:`NeuralODE` is the same without delays.
Forward and backward run in delyap's C++ core (batched, GIL released): the backward pass is the
exact discrete adjoint of the computed forward pass, including the gradient w.r.t. τ.
:func:`odeint_dde` integrates any torch vector field on the same steps and interpolant through
torch's autograd. :func:`memory_capacity` gives Kτ, whose size (Kτ·e < 1 or not) decides whether
a non-augmented neural DDE can do more than a neural ODE (Kuehn & Kuntz, arXiv 2505.07244).

torch is needed for the modules and loaded on first use (``import delyap.nn`` does not).
"""
from __future__ import annotations

import importlib
from typing import Any

from ._capacity import MemoryCapacity, memory_capacity
from ._solve import neural_solve

__all__ = ["NeuralDDE", "NeuralODE", "odeint_dde", "neural_solve", "memory_capacity",
           "MemoryCapacity"]

_LAZY = {"NeuralDDE": "._modules", "NeuralODE": "._modules", "odeint_dde": "._general"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
