"""Argument checks shared by the public functions: every message names the argument."""
from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np


def as_float_array(value: Any, name: str, *, ndim: Optional[tuple] = None) -> np.ndarray:
    """A C-contiguous float64 copy of ``value`` that is finite, with ndim in ``ndim``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a number or an array of numbers, "
                        f"got {type(value).__name__}")
    if hasattr(value, "detach") and hasattr(value, "device"):  # a torch tensor
        if str(value.device) != "cpu":
            raise ValueError(f"{name}: tensor is on {value.device}; move it to the CPU first")
        value = value.detach()
        if value.is_complex():
            raise TypeError(f"{name}: complex values are not supported")
        value = value.to(dtype=value.new_zeros(()).double().dtype).numpy()  # bfloat16 etc.
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: cannot be read as a numeric array ({exc})") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex values are not supported")
    if arr.dtype.kind not in "biuf":  # timedelta64 counts as a number to numpy; not here
        raise TypeError(f"{name}: expected numbers, got an array of dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64, order="C")  # a copy; keeps 0-d arrays 0-d
    if ndim is not None and arr.ndim not in ndim:
        raise ValueError(f"{name}: expected {' or '.join(f'{d}-D' for d in ndim)} input, "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def as_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: must be {'non-negative' if allow_zero else 'positive'}, got {v}")
    return v


def as_count(value: Any, name: str, *, minimum: int = 1, maximum: int = 2**62) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if int(value) < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    if int(value) > maximum:
        raise ValueError(f"{name}: must be at most {maximum}, got {value}")
    return int(value)


# More worker threads than this is a mistake (the pool is sized once per call).
MAX_THREADS = 4096


def as_threads(value: Any, name: str = "threads") -> int:
    """``threads=``: None (all cores, 0 to the core) or a positive count."""
    return 0 if value is None else as_count(value, name, maximum=MAX_THREADS)


def as_index(value: Any, size: int, name: str = "index") -> int:
    """A trajectory index in [0, size), negative values counting from the end."""
    i = as_count(value, name, minimum=-size, maximum=size - 1)
    return i + size if i < 0 else i


def check_finite_parameters(model: Any, name: str = "model") -> None:
    """A ValueError naming the first parameter of a torch module that holds NaN or inf: the
    ranks, Jacobians and Hessians of such a model mean nothing, and unchecked they came out as
    results (a class, an empty set of critical points, a regime)."""
    for pname, p in model.named_parameters():
        if not bool(p.detach().isfinite().all()):
            raise ValueError(f"{name}: parameter {pname!r} contains NaN or inf")


def check_distributed(client: Any, store: Any, device: Optional[str] = None) -> None:
    """``client=`` and ``store=`` of the batch entry points: a store belongs to a distributed
    run, and a distributed run uses the workers' CPUs (``device``: the resolved device; None
    where the entry point has no device choice or has not resolved it yet)."""
    if store is not None and client is None:
        raise ValueError("store: only used with client= (a distributed run)")
    if client is not None and device not in (None, "cpu"):
        raise ValueError("client: distributed runs use the workers' CPUs (device='cpu')")
