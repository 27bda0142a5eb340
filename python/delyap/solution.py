"""The result of :func:`delyap.solve_dde`."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._result import STATUS_NAMES, Result

__all__ = ["DDESolution", "STATUS_NAMES"]

STAT_FIELDS = tuple(_core.STAT_FIELDS)  # the columns of the core's stats rows (trajectory.hpp)
_NON_FINITE = next(k for k, v in STATUS_NAMES.items() if v == "non_finite")


def _no_success_with_non_finite(y: np.ndarray, y_final: np.ndarray,
                                status: np.ndarray) -> np.ndarray:
    """The invariant every result keeps: a trajectory whose status is success holds only
    finite numbers. The core should never break it (each failure has its own status); should
    one slip through, it becomes ``non_finite`` here rather than a silent wrong answer."""
    status = np.array(status, dtype=np.int32, copy=True)
    per_trajectory = lambda a: np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)  # noqa: E731
    finite = per_trajectory(y) & per_trajectory(y_final)
    status[(status == 0) & ~finite] = _NON_FINITE
    return status


@dataclass
class DDESolution(Result):
    """Solution of a DDE or a batch of DDEs.

    Attributes
    ----------
    t : ndarray, shape (n_t,)
        Output times: ``t_eval``, or every accepted step of a single trajectory when no
        ``t_eval`` was given (for a batch without ``t_eval``: the two ends of ``t_span``).
    y : ndarray
        States at ``t``: shape (n_t, dim) for one trajectory, (batch, n_t, dim) for a batch.
        Entries past the point where a trajectory failed are NaN.
    status : int or ndarray of int
        0 on success, otherwise a code from :data:`STATUS_NAMES` (per trajectory).
    stats : dict
        ``accepted``, ``rejected``, ``rhs_evals``, ``overlap_steps`` (steps longer than the
        smallest delay) and ``history_peak`` (most history anchors held at once), per trajectory.
    t_final, y_final :
        How far each trajectory got and its state there.
    info : dict
        ``output`` (what ``y`` holds) and, on a GPU, the device (formerly ``extras``).

    ``success``, ``failed``, ``status_names``, ``message``, ``raise_for_status()`` and
    ``to_dict()`` are those of every delyap result (:class:`delyap._result.Result`).
    """

    t: np.ndarray
    y: np.ndarray
    status: Union[int, np.ndarray]
    stats: dict[str, Union[int, np.ndarray]]
    t_final: Union[float, np.ndarray]
    y_final: np.ndarray
    method: str
    batch_size: Optional[int]
    wall_time: float = 0.0
    info: dict[str, Any] = field(default_factory=dict, repr=False)
    _origin = "solve_dde"

    @property
    def extras(self) -> dict[str, Any]:
        """Deprecated name of :attr:`info` (every result's metadata is ``info``)."""
        warnings.warn("DDESolution.extras is deprecated; use DDESolution.info",
                      DeprecationWarning, stacklevel=2)
        return self.info

    @property
    def message(self) -> str:
        """Success, or how many trajectories failed, how, and where (the first five)."""
        if self.success:
            return "all trajectories reached t_final" if self.batch_size else "reached t_final"
        failed = self.failed
        if self.batch_size is None:
            return f"{STATUS_NAMES[int(self.status)]} at t = {float(self.t_final):.6g}"
        status, t_final = np.asarray(self.status), np.asarray(self.t_final)
        codes = status[failed]
        kinds = {STATUS_NAMES[int(c)]: int(np.sum(codes == c)) for c in np.unique(codes)}
        shown = ", ".join(f"#{i} ({STATUS_NAMES[int(status[i])]} at t = {t_final[i]:.6g})"
                          for i in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        return f"{len(failed)} of {self.batch_size} trajectories failed {kinds}: {shown}{more}"

    def __repr__(self) -> str:
        n = "1 trajectory" if self.batch_size is None else f"{self.batch_size} trajectories"
        steps = np.asarray(self.stats["accepted"])
        return (f"DDESolution({n}, method={self.method}, y{tuple(self.y.shape)}, "
                f"t=[{self.t[0]:.6g} … {self.t[-1]:.6g}], steps={int(steps.sum())}, "
                f"{self.message}, {self.wall_time:.3g} s)")

    def to_dict(self) -> dict:
        """Plain-data export (numpy arrays and strings, stats flattened to ``stats_<name>``)
        for saving with ``np.savez``; ``info`` stays on the result."""
        out = {"t": self.t, "y": self.y, "status": np.asarray(self.status),
               "t_final": np.asarray(self.t_final), "y_final": self.y_final,
               "method": self.method}
        out.update({f"stats_{k}": np.asarray(v) for k, v in self.stats.items()})
        return out

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset``: ``y`` with dims (trajectory, time, component) for a batch,
        (time, component) for one trajectory; per-trajectory ``status``, ``t_final``,
        ``y_final`` (the full state, dim ``state``) and the stats; the swept parameters of the
        system (e.g. ``tau``, ``coupling``) as coordinates along ``trajectory``; ``component``
        labels the kept components (``r``, ``psi`` for an order parameter). Needs
        ``delyap[xarray]``."""
        from ._result import dataset_attrs, import_xarray

        xr = import_xarray()
        out = self.info.get("output", "state")
        comp = (np.array(["r", "psi"]) if isinstance(out, str) and out == "order_parameter"
                else np.arange(self.y.shape[-1]) if isinstance(out, str)
                else np.asarray(out))
        lead = () if self.batch_size is None else ("trajectory",)
        data = {"y": (lead + ("time", "component"), self.y),
                "status": (lead, np.asarray(self.status)),
                "t_final": (lead, np.asarray(self.t_final)),
                "y_final": (lead + ("state",), self.y_final)}  # the full state
        data.update({f"stats_{k}": (lead, np.asarray(v)) for k, v in self.stats.items()})
        coords: dict = {"time": self.t, "component": comp}
        if self.batch_size is not None:
            coords["trajectory"] = np.arange(self.batch_size)
            coords.update({name: ("trajectory", np.asarray(v))
                           for name, v in self.info.get("parameters", {}).items()})
        return xr.Dataset(data, coords=coords,
                          attrs=dataset_attrs({}, method=self.method, output=str(out)))

    @classmethod
    def _from_core(cls, raw: dict, method: str, batch_size: Optional[int],
                   wall: float) -> DDESolution:
        stats = {name: raw["stats"][:, i] for i, name in enumerate(STAT_FIELDS)}
        y, status, t_final, y_final = raw["y"], raw["status"], raw["t_final"], raw["y_final"]
        status = _no_success_with_non_finite(y, y_final, status)
        if batch_size is None:
            return cls(t=raw["t"], y=y[0], status=int(status[0]),
                       stats={k: int(v[0]) for k, v in stats.items()}, t_final=float(t_final[0]),
                       y_final=y_final[0], method=method, batch_size=None, wall_time=wall)
        return cls(t=raw["t"], y=y, status=status, stats=stats, t_final=t_final,
                   y_final=y_final, method=method, batch_size=batch_size, wall_time=wall)
