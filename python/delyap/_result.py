"""The surface every result of a run shares: ``status``, ``success``, ``message``, ``info``,
``raise_for_status()`` and ``to_dict()``.

Each public result (:class:`delyap.DDESolution`, :class:`delyap.LyapunovResult`,
:class:`delyap.sgd.SGDLyapunovResult`, :class:`delyap.sgd.StabilityMap`) is a dataclass with
``status`` (0 on success, else a code of :data:`delyap.STATUS_NAMES`, one per run) and ``info``
(a dict of metadata: the transient used, the device, the settle check, …) fields; this base
turns them into the common verdict, so that ``throw=True`` in every entry point and
``result.raise_for_status()`` after ``throw=False`` raise the same error.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import numpy as np

from . import _core
from .errors import IntegrationError

__all__ = ["Result", "STATUS_NAMES"]

STATUS_NAMES: dict[int, str] = {int(k): v for k, v in _core.STATUS_NAMES.items()}
# The other way round: a code by its name ("non_finite" → 3).
STATUS_CODE: dict[str, int] = {v: k for k, v in STATUS_NAMES.items()}

# What a lost_direction status means, in a failed result's message.
_LOST_DIRECTION = ("tangent directions collapsed onto each other between two "
                   "re-orthonormalisations (a vanishing coupling, or exponents too far apart over "
                   "one interval), so the later exponents would be rounding noise or −∞; shorten "
                   "renorm_interval or ask for fewer exponents")

# Appended to the error of the throw=True paths: the way to get the partial result instead.
THROW_HINT = " (pass throw=False to get the partial result with its status)"


class Result:
    """Base of delyap's results (a mixin for dataclasses with ``status`` and ``info`` fields).

    Attributes
    ----------
    status : int or ndarray of int
        0 where a run completed, else a code from :data:`delyap.STATUS_NAMES` (one per run:
        trajectory, problem or configuration).
    info : dict
        Metadata of the run (what was chosen automatically, where it ran, convergence checks).
    """

    # Declared by each subclass: an int for one run, an integer array for several.
    status: Any
    info: dict[str, Any]
    # The public function that made the result, named by its errors (set by each entry point).
    _origin: Optional[str] = None

    @property
    def success(self) -> bool:
        """True when every run completed (every status is 0)."""
        return bool(np.all(np.asarray(self.status) == 0))

    @property
    def failed(self) -> np.ndarray:
        """Flat (C-order) indices of the runs that did not complete (empty on success)."""
        return np.flatnonzero(np.asarray(self.status).reshape(-1) != 0)

    @property
    def status_names(self) -> Union[str, list[Any]]:
        """The status codes as names (``'success'``, ``'non_finite'``, …): a string for one
        run, else nested lists shaped like ``status``."""
        status = np.asarray(self.status)
        if status.ndim == 0:
            return _status_name(int(status))
        names = np.array([_status_name(int(s)) for s in status.reshape(-1)], dtype=object)
        return names.reshape(status.shape).tolist()

    @property
    def message(self) -> str:
        """One line: success, or which runs failed and why (the first five)."""
        if self.success:
            return "success"
        status = np.asarray(self.status).reshape(-1)
        bad = self.failed
        names = [_status_name(int(status[i])) for i in bad[:5]]
        out = f"{len(bad)} run(s) failed: {list(zip(bad[:5].tolist(), names))}"
        if "lost_direction" in names:
            info = getattr(self, "info", None)
            detail = info.get("lost_direction") if isinstance(info, dict) else None
            out += "; lost_direction: " + (detail or _LOST_DIRECTION)
        return out

    def raise_for_status(self) -> None:
        """Raise :class:`delyap.IntegrationError` (carrying this result as ``err.solution`` and
        the failed runs as ``err.failed``) unless every run completed; the error that
        ``throw=True`` raises."""
        self._raise_for_status()

    def _raise_for_status(self, hint: str = "") -> None:
        if self.success:
            return
        what = self._origin or type(self).__name__
        raise IntegrationError(f"{what}: {self.message}{hint}", solution=self, failed=self.failed)

    def to_xarray(self) -> Any:
        """The result as an ``xarray.Dataset`` with named dimensions and the swept parameters
        as coordinates (needs the optional ``xarray``: ``pip install 'delyap[xarray]'``)."""
        raise TypeError(f"{type(self).__name__} has no labelled form (to_xarray)")

    def to_netcdf(self, path: Any, **kwargs: Any) -> None:
        """Write :meth:`to_xarray` to a netCDF file (``xarray.Dataset.to_netcdf``)."""
        self.to_xarray().to_netcdf(path, **kwargs)

    def to_zarr(self, store: Any, **kwargs: Any) -> None:
        """Write :meth:`to_xarray` to a zarr store (``xarray.Dataset.to_zarr``; needs zarr)."""
        self.to_xarray().to_zarr(store, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain data (numpy arrays, numbers, strings); ``info`` as a copy."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]  # subclasses are dataclasses
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, dict) else value
        return out


def _status_name(code: int) -> str:
    return STATUS_NAMES.get(code, str(code))


def import_xarray() -> Any:
    """xarray, or an ImportError naming the extra that installs it."""
    try:
        import xarray
    except ImportError:
        raise ImportError("to_xarray / to_netcdf / to_zarr need xarray: "
                          "pip install 'delyap[xarray]' (or pip install xarray)") from None
    return xarray


def dataset_attrs(info: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The plain scalar entries of ``info`` (and ``extra``) as dataset attributes: what netCDF
    can store (numbers, strings, booleans as 0/1)."""
    out: dict[str, Any] = {}
    for key, value in {**info, **extra}.items():
        if isinstance(value, (bool, np.bool_)):
            out[key] = int(value)
        elif isinstance(value, (int, float, str, np.integer, np.floating)):
            out[key] = value
    return out


def raise_if_failed(res: Result, throw: bool) -> None:
    """throw=True: a failed run raises :class:`delyap.IntegrationError` carrying the result;
    throw=False: the caller reads ``result.status`` (or calls ``raise_for_status()``)."""
    if throw:
        res._raise_for_status(THROW_HINT)
