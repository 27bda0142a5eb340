"""The fixed-storage ensemble solve: what ``solve_dde(..., device="cuda")`` runs.

Each trajectory keeps its history in a ring of ``history_capacity`` anchors allocated up front
(device memory cannot grow mid-kernel); a trajectory whose delay window needs more anchors
stops with status ``history_full`` and the others finish. The same per-trajectory code has a
host mirror in ``delyap._core`` (``backend=_core``), which the CPU tests compare with the
regular solver.
"""
from __future__ import annotations

import numpy as np

from . import _core
from ._system import DDESystem
from .device import current_stream


def default_capacity(n_hist: int) -> int:
    """Anchors per trajectory: room for the initial history and a delay window of ~120 steps."""
    return int(max(128, 1 << int(np.ceil(np.log2(n_hist + 64)))))


def options_dict(opt) -> dict:
    return dict(method=int(opt.method), rtol=opt.rtol, atol=opt.atol, dt=opt.dt,
                max_step=opt.max_step, min_step=opt.min_step, max_steps=int(opt.max_steps),
                track_discontinuities=bool(opt.track_discontinuities))


def check_supported(system: DDESystem, hist, output) -> None:
    """Raise (naming the argument) for what the fixed-storage solver does not do."""
    system._check_device(hist, output)
    if hist.jumps.size:
        raise ValueError("history_jumps: not supported with device='cuda'")
    if output is not None:
        raise ValueError("output: reduced outputs are not supported with device='cuda'")


def solve_fixed(system: DDESystem, hist, t0: float, t_final: float, times: np.ndarray, opt,
                backend, capacity=None, threads: int = 0) -> dict:
    """Run the fixed-storage ensemble on ``backend`` (``_core``: host mirror; ``_cuda``)."""
    cap = default_capacity(hist.t.size) if capacity is None else int(capacity)
    if cap < hist.t.size + 2:
        raise ValueError(f"history_capacity: {cap} cannot hold the initial history's "
                         f"{hist.t.size} anchors")
    c = np.ascontiguousarray
    common = dict(hist_t=c(hist.t), hist_x=c(hist.x), hist_f=c(hist.f), y0=c(hist.y0),
                  t0=float(t0), t_final=float(t_final), t_eval=c(times),
                  options=options_dict(opt), capacity=cap)
    if backend is _core:
        common["threads"] = int(threads)
    else:
        common["stream"] = current_stream()
    return system._solve_fixed(backend, common)
