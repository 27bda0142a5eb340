"""Gradient flow θ' = −∇L(θ) as the reference for full-batch gradient descent.

GD with step η is the explicit Euler method for the gradient flow with time step η, so θ_n
follows θ(nη) while η·λ_max(H) is small along the way; at the edge of stability (λ_max ≈ 2/η)
it leaves the flow (Cohen et al. 2021 compare exactly these two). :func:`gradient_flow`
integrates the flow with delyap's adaptive ODE path (Dormand–Prince 5(4) on a delay-free
Python system), runs GD from the same initialisation on a copy of the parameters, and reports
the first step at which ‖θ_GD(n) − θ_flow(nη)‖ exceeds a threshold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from .._result import Result, raise_if_failed
from .._validate import as_count, as_positive, check_finite_parameters
from .sharpness import hvp_operator

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["GradientFlowResult", "gradient_flow"]


@dataclass
class GradientFlowResult(Result):
    """GD against the gradient flow from the same initialisation.

    Attributes
    ----------
    steps : ndarray (n + 1,)
        0 … n.
    times : ndarray (n + 1,)
        n·η, where the flow is sampled.
    distance : ndarray (n + 1,)
        ‖θ_GD(n) − θ_flow(nη)‖ (Euclidean, over all trainable parameters).
    gd_loss, flow_loss : ndarray (n + 1,)
        L along each.
    departure_step : int or None
        First step with distance > threshold or not finite (None: GD stayed within it).
    flow_final, gd_final : ndarray (D,)
        Final parameters of each (flat, in ``named_parameters()`` order).
    status : int
        The ODE solver's status (0 on success).
    """

    steps: np.ndarray
    times: np.ndarray
    distance: np.ndarray
    gd_loss: np.ndarray
    flow_loss: np.ndarray
    departure_step: Optional[int]
    threshold: float
    flow_final: np.ndarray
    gd_final: np.ndarray
    status: int = 0
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        where = ("stayed within" if self.departure_step is None
                 else f"left at step {self.departure_step}")
        return (f"GradientFlowResult({len(self.steps) - 1} GD steps, {where} distance "
                f"{self.threshold:g}; final distance {self.distance[-1]:.3g})")


def gradient_flow(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, lr: float,
                  steps: int, *, loss: Union[str, Callable, Any] = "mse",
                  threshold: float = 1e-2, rtol: float = 1e-8, atol: float = 1e-10,
                  throw: bool = True) -> GradientFlowResult:
    """Integrate θ' = −∇L(θ) over [0, steps·η] and compare with ``steps`` GD steps of size η.

    Parameters
    ----------
    model, X, Y, loss :
        As :func:`delyap.sgd.hessian_eigenvalues`; the model's parameters are the common
        initialisation and are not modified (both runs work on float64 copies).
    lr : float
        η: GD's step and the flow's sampling interval.
    steps : int
        GD steps.
    threshold : float
        Distance (Euclidean norm in parameter space) that counts as leaving the flow.
    rtol, atol : float
        Tolerances of the adaptive ODE solver (DP5).
    throw : bool
        True (default): a failed ODE integration raises :class:`delyap.IntegrationError`.
    """
    import torch

    from .. import rhs
    from ..solve import solve_dde

    eta = as_positive(lr, "lr")
    n = as_count(steps, "steps")
    thr = as_positive(threshold, "threshold")
    # (unchecked, the ODE solver's check reported NaN parameters as its argument "history")
    check_finite_parameters(model)
    op = hvp_operator(model, X, Y, loss)
    theta0 = op.theta.detach().clone()
    dim = op.dim

    def loss_at(th) -> float:
        with torch.no_grad():
            return float(op._loss_of(th, op.X, op.Y))

    def rhs_f(t, x):
        # x: (1, D) numpy → −∇L, from the operator's torch.func gradient.
        th = torch.as_tensor(np.asarray(x[0]), dtype=op.dtype, device=op.device)
        return -op.gradient(th).detach().cpu().numpy().reshape(1, dim)

    times = eta * np.arange(n + 1)
    sol = solve_dde(rhs.python(rhs_f, dim, tau=()), theta0.cpu().numpy(), (0.0, times[-1]),
                    t_eval=times, rtol=rtol, atol=atol, throw=False)
    flow = np.asarray(sol.y).reshape(len(times), dim)  # one trajectory: (n_t, dim)
    gd = np.empty((n + 1, dim))
    th = theta0.clone()
    gd[0] = th.cpu().numpy()
    for i in range(n):
        th = th - eta * op.gradient(th).detach()
        gd[i + 1] = th.cpu().numpy()
    dist = np.linalg.norm(gd - flow, axis=1)
    over = np.flatnonzero(~(dist <= thr))  # a NaN distance (GD diverged) has departed
    to_t = lambda v: torch.as_tensor(v, dtype=op.dtype, device=op.device)  # noqa: E731
    out = GradientFlowResult(
        steps=np.arange(n + 1), times=times, distance=dist,
        gd_loss=np.array([loss_at(to_t(v)) for v in gd]),
        flow_loss=np.array([loss_at(to_t(v)) for v in flow]),
        departure_step=int(over[0]) if over.size else None, threshold=thr,
        flow_final=flow[-1], gd_final=gd[-1], status=int(np.asarray(sol.status).reshape(-1)[0]),
        info={"lr": eta, "ode_status": sol.status, "rtol": rtol, "atol": atol})
    out._origin = "gradient_flow"
    raise_if_failed(out, throw)
    return out
