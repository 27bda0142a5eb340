"""Any torch vector field f(t, h, h_delayed) on delyap's step sequence and interpolant, with
torch's autograd through the stages (the general, slower path beside the C++ one)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional, Union

import numpy as np
import torch

from .. import _core
from .._testing import tableau as _tableau
from ._solve import _METHODS

__all__ = ["odeint_dde"]


def odeint_dde(f: Callable[[float, torch.Tensor, torch.Tensor], torch.Tensor],
               h0: torch.Tensor, tau: Union[torch.Tensor, Sequence[float]], t_final: float, *,
               method: str = "RK4", dt: Optional[float] = None,
               grid: Optional[np.ndarray] = None) -> torch.Tensor:
    """h(T) of h'(t) = f(t, h(t), h_delayed(t)), h(s) = h0 on [−max τ, 0], through torch.

    ``f(t, h, h_delayed)`` gets h of shape (batch, dim) and the delayed states of shape
    (batch, n_delays, dim) and returns (batch, dim); it is called once per stage for the whole
    batch. The steps are the explicit RK method ``method`` on the fixed grid ``n·dt`` (dt ≤ min
    τ) or on ``grid`` (e.g. the ``info["t"]`` of an adaptive :func:`delyap.nn.neural_solve`
    pass), and delayed states are read by the interpolant the C++ core uses, so on the
    built-in vector field both paths compute the same pass. Gradients come from torch's
    autograd, including those w.r.t. ``tau`` when it requires grad (through the interpolant's
    derivative at the read time, the step sequence held fixed, as in the C++ adjoint).

    Parameters
    ----------
    f : callable
        Any function or ``nn.Module`` of (t, h, h_delayed).
    h0 : Tensor (batch, dim)
    tau : Tensor or sequence (n_delays,)
        Positive delays.
    t_final : float
    method : {"Euler", "RK4", "BS3", "DP5"}
    dt : float, optional
        Step of the fixed grid (needed unless ``grid`` is given).
    grid : array, optional
        Step times 0 = t_0 < … < t_N = t_final.
    """
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {sorted(_METHODS)}, got {method!r}")
    if not isinstance(h0, torch.Tensor) or h0.ndim != 2:
        raise ValueError("h0: expected a (batch, dim) tensor")
    tau_t = torch.as_tensor(tau, dtype=h0.dtype)
    if tau_t.ndim != 1 or bool((tau_t.detach() <= 0).any()):
        raise ValueError("tau: expected a 1-D sequence of positive delays")
    if grid is None:
        if dt is None or not dt > 0:
            raise ValueError("dt: needed (positive) when no grid is given")
        n = int(np.ceil(t_final / dt - 1e-9))
        grid = np.minimum(np.arange(n + 1) * float(dt), t_final)
        grid[-1] = t_final
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid[0] != 0.0 or not np.all(np.diff(grid) > 0):
        raise ValueError("grid: expected increasing times starting at 0")
    tau_min = float(tau_t.detach().min()) if tau_t.numel() else np.inf
    if np.max(np.diff(grid)) > tau_min * (1 + 1e-12):
        raise ValueError(f"dt: steps must not exceed the smallest delay ({tau_min})")
    tab = _tableau(_METHODS[method])
    S, a, b, c, fsal = tab["stages"], tab["a"], tab["b"], tab["c"], tab["fsal"]
    X = [h0]
    K: list[list[torch.Tensor]] = []

    def read(s_tau: torch.Tensor, n: int) -> torch.Tensor:
        s = float(s_tau.detach())
        if not s > 0.0 or n == 0:
            return h0
        i = int(np.searchsorted(grid[: n + 1], s, side="right")) - 1
        i = min(max(i, 0), n - 1)
        h = grid[i + 1] - grid[i]
        theta = min(1.0, max(0.0, (s - grid[i]) / h))
        w, w_end, dw, dw_end = _core.neural_read_weights(_METHODS[method], theta)
        val = X[i] + sum(h * wj * K[i][j] for j, wj in enumerate(w) if wj != 0.0)
        der = sum(dwj * K[i][j] for j, dwj in enumerate(dw) if dwj != 0.0)
        if w_end != 0.0 or dw_end != 0.0:
            f_end = K[i + 1][0]
            val = val + h * w_end * f_end
            der = der + dw_end * f_end
        # The read's dependence on τ through s, to first order: x(s) moves by −x'(s)·dτ.
        # (s_tau − s) is zero in value, so this adds the derivative and nothing else.
        return val + (s_tau - s) * der if isinstance(der, torch.Tensor) else val

    for n in range(len(grid) - 1):
        t, h = float(grid[n]), float(grid[n + 1] - grid[n])
        ks: list[torch.Tensor] = []
        K.append(ks)
        for j in range(S):
            if j == 0 and fsal and n > 0:
                ks.append(K[n - 1][S - 1])
                continue
            u = X[n] + sum(h * a[j][m] * ks[m] for m in range(j) if a[j][m] != 0.0)
            ys = [read(t + c[j] * h - tau_t[k], n) for k in range(tau_t.numel())]
            yd = torch.stack(ys, dim=1) if ys else h0.new_zeros(h0.shape[0], 0, h0.shape[1])
            ks.append(f(t + c[j] * h, u, yd))
        X.append(X[n] + sum(h * b[j] * ks[j] for j in range(S) if b[j] != 0.0))
    return X[-1]

