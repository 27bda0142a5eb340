"""Sharpness along a training run: a callback that records the edge-of-stability picture.

At a point θ, full-batch GD θ ← θ − η∇L linearises to δ ← (I − ηH) δ: it is stable iff every
Hessian eigenvalue h has |1 − ηh| < 1, i.e. λ_max < 2/η. With torch's SGD momentum β (buffer
v ← βv + g, step θ ← θ − ηv, or Nesterov's θ ← θ − η(g + βv)) each eigen-direction follows a
two-step recursion (state (δ_n, v_{n−1})), with companion matrix

    heavy ball: [[1 − ηh, −ηβ], [h, β]]                edge ηh = 2 + 2β
    Nesterov:   [[1 − ηh(1 + β), −ηβ²], [h, β]]        edge ηh = (2 + 2β)/(1 + 2β)

The GD exponent μ recorded here is log of the largest spectral radius of these maps over the
computed extreme eigenvalues (for β = 0, log max|1 − ηh| as :func:`delyap.sgd.gd_exponent`):
μ > 0 means GD is locally unstable at the current point. The radius is largest at the ends of
the spectrum (it equals √β in between), so λ_max and λ_min suffice.

Cohen et al. (2021) observed that full-batch GD first sharpens progressively until λ_max
reaches 2/η and then hovers there ("edge of stability") while the loss still decreases, non-
monotonically; :class:`SharpnessMonitor` records exactly those curves.
"""
from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from .._validate import as_count, as_positive
from .sharpness import (
    _MAX_STEPS,
    _NON_FINITE,
    GraphHVP,
    HessianEigen,
    NonFiniteProductError,
    _eigen,
    _loss_function,
    _non_finite_eigen,
    _output_gradient_start,
    _start_vector,
    choose_products,
    difference_products_trusted,
    hvp_operator,
    lanczos,
)
from .torch_model import _torch

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["SharpnessMonitor", "momentum_exponent", "stability_threshold"]

_COLUMNS = ("step", "loss", "sharpness", "min_eigenvalue", "lr", "momentum", "two_over_lr",
            "threshold", "gd_exponent", "hvps", "converged", "residual", "min_residual",
            "fallback", "lyapunov", "lyapunov_mean")


def stability_threshold(lr: float, momentum: float = 0.0, nesterov: bool = False) -> float:
    """The largest Hessian eigenvalue at which GD (with torch SGD momentum) stays linearly
    stable: 2/η, (2 + 2β)/η, or (2 + 2β)/(η(1 + 2β)) for Nesterov."""
    lr = as_positive(lr, "lr")
    b = float(momentum)
    if not 0.0 <= b < 1.0:
        raise ValueError(f"momentum: expected 0 ≤ β < 1, got {momentum}")
    return (2 + 2 * b) / (lr * (1 + 2 * b)) if nesterov else (2 + 2 * b) / lr


def momentum_exponent(eigenvalues: Any, lr: float, momentum: float = 0.0,
                      nesterov: bool = False) -> float:
    """log of the largest spectral radius, over ``eigenvalues`` h, of one GD step's linear map
    in the direction of h (the companion matrices of the module doc); stable iff < 0."""
    h = np.asarray(eigenvalues, dtype=float).reshape(-1)
    b = float(momentum)
    if not np.all(np.isfinite(h)):
        # A diverged record (NaN eigenvalues): no exponent. eigvals would raise on it and stop
        # the training loop the monitor is recording.
        return math.nan
    if b == 0.0:
        with np.errstate(divide="ignore"):
            return float(np.log(np.max(np.abs(1.0 - lr * h))))
    a11 = 1.0 - lr * h * ((1.0 + b) if nesterov else 1.0)
    a12 = np.full_like(h, -lr * (b * b if nesterov else b))
    mats = np.stack([np.stack([a11, a12], -1), np.stack([h, np.full_like(h, b)], -1)], -2)
    with np.errstate(divide="ignore"):
        return float(np.log(np.max(np.abs(np.linalg.eigvals(mats)))))


def _optimizer_settings(optimizer) -> tuple[float, float, bool]:
    """(effective η, β, nesterov) of the first parameter group. torch's SGD with dampening d
    adds (1 − d)·g to the buffer, i.e. an effective step η(1 − d). Optimizers without a
    'momentum' entry (Adam…) are reported with β = 0: the thresholds then describe plain GD."""
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        raise TypeError(f"optimizer: expected a torch optimizer with param_groups, got "
                        f"{type(optimizer).__name__}")
    g = groups[0]
    lr = float(g["lr"])
    beta = float(g.get("momentum", 0.0) or 0.0)
    damp = float(g.get("dampening", 0.0) or 0.0) if beta > 0 else 0.0
    return lr * (1.0 - damp), beta, bool(g.get("nesterov", False))


@dataclass
class _RitzRun:
    """What :func:`_extreme_ritz` found: the top Ritz pair (rho, y) of its space with the
    residual ‖Hy − ρy‖, the products used, whether the residual met the bound, Hy, and the
    second Ritz vector with H applied to it (None with one product)."""

    rho: float
    y: Any
    residual: float
    products: int
    converged: bool
    hy: Any
    second: Any
    h_second: Any
    basis: tuple = ((), ())
    asymmetry: float = 0.0  # max |q_iᵀHq_j − q_jᵀHq_i| / |ρ| over the space: the products' error


def _extreme_ritz(matvec: Callable, start: torch.Tensor, second: Optional[torch.Tensor],
                  tol: float, max_products: int, scale: float = 0.0,
                  known: tuple = ((), ())) -> _RitzRun:
    """The top Ritz pair of H on a growing subspace, for the monitor's warm path (k = 1).

    The basis grows as [start, r, second, r, r, …], r the residual Hy − ρy of the current top
    Ritz pair (ρ, y): up to ``second`` this is the Lanczos (Krylov) space of ``start``; then
    ``second`` (the previous record's second Ritz direction) joins it, and the residuals
    continue it (Davidson without preconditioner). Why the extra direction: at the edge of
    stability λ₂ ≈ 0.9–0.97 λ₁ and the top eigenvector turns within span(v₁, v₂) by up to
    ~0.1 rad between records, back and forth (no extrapolation follows it), which a Krylov
    space separates only at ≈ (1 + 2√gap) per step; Rayleigh–Ritz on a space holding the old
    v₂ resolves that rotation in one product. It comes third, after one Lanczos step, so that a
    record whose start is already good (the stable regime) pays nothing for it.

    After every product the residual is formed explicitly, ‖W s − ρ Q s‖ with W = HQ (the
    products themselves, not an estimate), and the run stops once it is ≤ tol·|ρ|: the same
    certificate as :func:`delyap.sgd.lanczos`, or with ``scale`` > 0 once it is
    ≤ tol·max(|ρ|, ``scale``): the bottom of the spectrum runs this on −H with ``scale`` =
    λ_max (:meth:`SharpnessMonitor._record_bottom`), the bound "both" Lanczos runs put on
    every pair (tol·max|θ|). ``known``: (vectors, their products) already at hand (this
    record's), the start of the basis at no cost. Returns a :class:`_RitzRun`: Hy and the
    second Ritz vector with H applied to it (None with one product) come from the products
    at no cost.
    """
    torch = _torch()
    Q: list = list(known[0])
    W: list = list(known[1])
    first = len(Q)
    queue = [start] + ([None, second] if second is not None else [])
    rho, y, hy, res, S, theta = math.nan, start, None, math.inf, None, None
    r: Any = None
    while len(Q) - first < max_products:
        v = queue.pop(0) if queue else None
        if v is None:
            v = r
        if v is None:
            break
        v = v.to(torch.float64)
        for _ in range(2):  # classical Gram–Schmidt twice, as lanczos
            for q in Q:
                v = v - float(q @ v) * q
        n = float(torch.linalg.norm(v))
        if not n > 1e-10:
            if queue:        # a direction already in the space: take the next one
                continue
            break            # the residual lies in the space: nothing more to add
        v = v / n
        w = matvec(v)
        if not bool(torch.isfinite(w).all()):
            raise NonFiniteProductError(f"warm step {len(Q) + 1}: the operator's product is not "
                                        f"finite (non-finite parameters, data or loss?)")
        Q.append(v)
        W.append(w)
        Qm, Wm = torch.stack(Q), torch.stack(W)
        M = (Qm @ Wm.T).cpu().numpy()
        theta, S = np.linalg.eigh(0.5 * (M + M.T))
        s = torch.as_tensor(S[:, -1], dtype=torch.float64).to(Qm.device)
        rho, y, hy = float(theta[-1]), s @ Qm, s @ Wm
        r = hy - rho * y
        res = float(torch.linalg.norm(r))
        if res <= tol * max(abs(rho), scale):
            break
    ok = res <= tol * max(abs(rho), scale)
    if hy is None:
        return _RitzRun(rho, y, res, 0, False, None, None, None)
    y2 = h2 = None
    if len(Q) >= 2 and S is not None:
        s2 = torch.as_tensor(S[:, -2], dtype=torch.float64).to(Q[0].device)
        y2, h2 = s2 @ torch.stack(Q), s2 @ torch.stack(W)
    asym = float(np.max(np.abs(M - M.T))) / max(abs(rho), scale, 1e-300)
    return _RitzRun(rho, y, res, len(Q) - first, ok, hy, y2, h2, (Q, W), asym)


def _join(top: HessianEigen, low: HessianEigen) -> HessianEigen:
    """One record's result from the top and bottom runs, laid out as ``which='both'``
    (values, vectors and residuals top then bottom); status the worse of the two."""
    status = (_NON_FINITE if _NON_FINITE in (top.status, low.status) else
              max(top.status, low.status))
    return HessianEigen(values=np.concatenate([top.values, low.values]),
                        vectors=np.concatenate([top.vectors, low.vectors]),
                        residuals=np.concatenate([top.residuals, low.residuals]),
                        iterations=top.iterations + low.iterations, status=status,
                        info={**top.info, "which": "both"})


class SharpnessMonitor:
    """Records loss, sharpness and the stability thresholds of a training run.

    Parameters
    ----------
    model, X, Y :
        The model being trained and the full data set whose loss Hessian is monitored (in eval
        mode, as :func:`delyap.sgd.hessian_eigenvalues`).
    every : int
        Record after every ``every``-th optimizer step.
    k : int
        Top eigenvalues per record (``records["sharpness"]`` holds the largest; all k are in
        ``records["top"]``).
    loss : str, callable or torch loss module
        The training loss (as :func:`delyap.sgd.hvp_operator`). It must be the loss the
        optimizer descends for 2/η to be the right threshold: pass the training criterion,
        e.g. ``nn.MSELoss()``.
    smallest : bool
        Also compute λ_min (the GD exponent needs it). It costs more than λ_max: the bottom of
        a network Hessian's spectrum is a dense cluster near 0, and the residual bound of the
        pair, tol·max(|λ_max|, |λ_min|) (an error δ in λ_min moves μ by ≲ ηδ), needs the
        large-curvature components out of its vector. With k = 1 the pair is tracked apart
        from the top, whose records stay those of ``smallest=False`` bit for bit
        (:meth:`_record_bottom`). Bench MLP (benchmarks/bench_hessian.py), a record every 10
        of 300 GD steps, tol 1e-3, products per record (after the first five in brackets):
        9.7 (7.3) while the sharpness grows, 16.9 (12.7) at the edge of stability, against
        12.0 (10.6) and 18.3 (15.5) for the joint ``which='both'`` Lanczos run it replaced
        (still the path for k > 1) and 1.5 and 4.8 for λ_max alone. ``smallest=False``
        records the sharpness alone; the GD exponent is then taken over λ_max only, a lower
        bound of the true one where λ_min < 0.
    tol, max_iter :
        Lanczos tolerance (on the residual, relative: every recorded top pair has
        ‖Hv − λv‖ ≤ tol·|λ|, so |λ − λ_true| ≤ tol·|λ| for an eigenvalue λ_true, and
        ~tol²·λ/gap where λ is separated; the bottom one ≤ tol·max(|λ_max|, |λ_min|); the
        residual is recorded) and step cap per record.
        A record that does not reach ``tol`` is kept with ``converged`` False, and so is one
        whose Hessian-vector products are not finite (a diverged run: NaN values). The default
        1e-3 (PyHessian's default tolerance, there on the change between iterates, which
        certifies nothing) bounds the recorded sharpness to 0.1 %, ample for its comparison
        with 2/η; the value is usually far more accurate (≈ tol²·λ/gap: on the 10⁵-parameter
        MLP of benchmarks/bench_hessian.py records at 1e-3 and 1e-4 differ by ≤ 7e-6, at the
        edge of stability too). Cost there (products per record, every 10 steps): ≈ 1.2 at
        1e-3 and 2.2 at 1e-4 while the sharpness grows or settles below 2/η; at the edge of
        stability, where the top eigenvector turns by up to ~0.1 rad within 10 steps and
        λ₂ ≈ 0.9–0.97 λ₁, ≈ 4.8 at 1e-3 and 7.1 at 1e-4 (5.4 and 8.5 with Lanczos alone; see
        :func:`_extreme_ritz`). A looser tol is cheaper there: ≈ 2.8 products per record at
        1e-2 and ≈ 1.8 at 3e-2 (with :meth:`backward`, every 10 steps: 28 % and 19 % of the
        training's time against 46 % at 1e-3), each record then within 1.1e-3 and 1.1e-2 of the
        exact λ_max (measured over 30 records; the bound is tol).
    warm_steps : int
        The cheap path: each record first runs at most ``warm_steps`` Lanczos steps (HVPs)
        from the previous eigenvectors, extrapolated along the last records (the eigenvector
        drifts smoothly under GD, so a 2–3 dimensional Krylov space usually meets ``tol``).
        With k = 1 the space also takes the previous record's second Ritz direction, after
        one Lanczos step (:func:`_extreme_ritz`); λ_min then gets at most 2·``warm_steps``
        products of its own (:meth:`_record_bottom`).
        The a-posteriori residual decides: only when it exceeds ``tol`` does the record fall
        back to a full Lanczos run (from the best warm vector plus a seeded
        random part, up to ``max_iter`` steps; ``records["fallback"]`` says which). 0: always
        the full run. That the warm path tracks the *largest* eigenvalue rests on continuity
        between records (an eigenvalue overtaking the tracked one between two records is
        picked up only as its component in the start vector grows): call
        :func:`delyap.sgd.hessian_eigenvalues` cold when that matters.
    extrapolate : int
        Records the warm start is extrapolated from: 1 (the last vector), 2 (linear), 3
        (quadratic, default) or up to 8 (a least-squares quadratic), in the recorded step
        numbers.
    seed : int
        Seed of the first start vector.
    lyapunov : bool
        With :meth:`backward` only: also record the finite-time Lyapunov exponent of the
        training map along the trajectory. A tangent vector u (seeded random, unit) follows
        u ← (I − ηH(θ_n)) u at every step n, the Jacobian of the step θ ← θ − η∇L at the
        step's own parameters (H the Hessian of the loss passed to :meth:`backward`, by one
        double-backward HVP through that step's graph: every step then builds its gradient
        with ``create_graph=True`` and costs one HVP more, ≈ 3× a plain GD step), renormalised
        each step. ``records["lyapunov"]`` is (1/n) Σ log ‖(I − ηH)u‖ over the n steps since
        the previous record, ``records["lyapunov_mean"]`` the same since the first step: > 0
        when nearby trajectories separate. Unlike the GD exponent μ, which freezes H at one
        point, it follows H along the path: in the example's run at the edge of stability
        (examples/edge_of_stability.py, records every 100 steps) μ swings between −0.7 and
        +0.4 while this exponent stays within [0, 0.02] per step.
        ``torch.optim.SGD`` without momentum (weight decay wd adds wd·I to H; momentum would
        need the buffer's tangent as well: refused).
    hvp : {'auto', 'exact', 'difference'}
        How the records form Hessian-vector products (as
        :func:`delyap.sgd.hessian_eigenvalues`): 'auto' (default) takes forward differences
        of the gradient, (∇L(θ + εv) − ∇L(θ))/ε, when every module is smooth, the products
        run in float64 and ``tol`` ≥ 1e-5; their relative error (~1e-8) stays far below
        ``tol`` and each costs one gradient, about half an exact product. With
        :meth:`backward` ∇L(θ) is the training step's own gradient, so a record costs its
        products only, one gradient each. 'exact': double backward. ``monitor.hvp`` says
        which is used. Difference products are checked (the same product at half the step,
        two gradients) at the first record, every 50 records and when ‖θ‖ has moved by a
        quarter, and by the asymmetry of every record's space; found inexact for ``tol``
        (their step grows with ‖θ‖: large or diverging parameters), the monitor switches to
        exact products for good, that record included.

    Use ``monitor.step(optimizer)`` after each ``optimizer.step()``, or ``with
    monitor.attach(optimizer):`` around the loop (a post-step hook). ``monitor.record(...)``
    records now (e.g. at step 0). Results: ``monitor.records`` (a dict of numpy arrays),
    ``monitor.to_csv(path)``, ``monitor.plot(path)``.

    In a full-batch loop, ``monitor.backward(loss, optimizer)`` in place of
    ``loss.backward()`` lets each record reuse the training step's own gradient: forward
    differences around it, or with exact products its graph (taken with ``create_graph=True``,
    every HVP one double-backward pass through it); either way the same values land in
    ``.grad`` and a record costs its HVPs only (no separate gradient). See :meth:`backward`.
    """

    def __init__(self, model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, *,
                 every: int = 10, k: int = 1, loss: Union[str, Callable, Any] = "mse",
                 smallest: bool = True, tol: float = 1e-3, max_iter: int = 100, seed: int = 0,
                 precision: str = "float64", warm_steps: int = 8, extrapolate: int = 3,
                 lyapunov: bool = False, hvp: str = "auto"):
        self.model, self.X, self.Y = model, X, Y
        self.every = as_count(every, "every")
        self.k = as_count(k, "k")
        self.loss = loss
        self.smallest = bool(smallest)
        self.tol = as_positive(tol, "tol")
        self.max_iter = as_count(max_iter, "max_iter")
        self.warm_steps = as_count(warm_steps, "warm_steps", minimum=0)
        self.extrapolate = as_count(extrapolate, "extrapolate")
        if self.extrapolate > 8:
            raise ValueError(f"extrapolate: expected 1 to 8 records, got {extrapolate}")
        self.seed = as_count(seed, "seed", minimum=0)
        self.precision = precision
        self._graph_mode = False
        self._loss_checked = False
        self.lyapunov = bool(lyapunov)
        self._tangent: Optional[torch.Tensor] = None
        self._lyap_interval = [0.0, 0]   # Σ log growth, steps since the last record
        self._lyap_total = [0.0, 0]
        self.steps = 0
        self._rows: list[dict[str, Any]] = []
        self._top: list[np.ndarray] = []
        self._last: Optional[np.ndarray] = None
        # (step, eigenvectors) of the last records, for the extrapolated warm start.
        self._history: list[tuple[int, np.ndarray]] = []
        # The second Ritz direction of the last accepted warm record that had one (k = 1,
        # largest): kept in reserve for the next record's subspace (see _extreme_ritz).
        self._second: Optional[torch.Tensor] = None
        # The bottom's start for the next record (k = 1 with smallest): the filtered bottom
        # Ritz vector and second Ritz direction of the last record (_record_bottom).
        self._low: Optional[tuple] = None
        # False: k = 1 with smallest takes the joint which='both' Lanczos path instead (the
        # path before the split; kept for k > 1 anyway; the tests compare the two).
        self._split_bottom = True
        self._top_basis: tuple = ((), ())
        self._fd_checked: Optional[tuple[int, float]] = None  # (record, ‖θ‖) of the last check
        hvp_operator(model, X, Y, loss, precision=precision)  # validate the inputs now
        self.hvp = choose_products(hvp, model, self.tol, precision)
        # backward() forms its products in the model's own dtype (the training step's).
        self._backward_hvp = choose_products(hvp, model, self.tol, "model")

    # ------------------------------------------------------------------ recording
    def step(self, optimizer: Any = None) -> Optional[HessianEigen]:
        """Count one optimizer step; record when the count is a multiple of ``every``.
        ``optimizer`` supplies η and momentum (None: recorded as NaN). Once :meth:`backward`
        is in use it records instead, and this only counts."""
        self.steps += 1
        if self._graph_mode or self.steps % self.every:
            return None
        return self.record(optimizer)

    def backward(self, loss: torch.Tensor, optimizer: Any = None) -> Optional[HessianEigen]:
        """``loss.backward()`` for a full-batch training step, recording from its graph.

        Call it in place of ``loss.backward()``, then ``optimizer.step()`` and
        ``monitor.step(optimizer)`` (or use :meth:`attach`). When the steps taken so far are a
        multiple of ``every`` (step 0 included), the record's HVPs are formed from this
        gradient: forward differences around it (``hvp`` 'difference', or 'auto' on a smooth
        float64 model), else double-backward passes through its graph, taken with
        ``create_graph=True``. The record is at the parameters this gradient is evaluated at
        (before the step), labelled with the number of steps taken, and costs its HVPs only. The
        gradients stored in ``.grad`` (accumulated as ``backward`` does) are the same values
        as ``loss.backward()`` gives (tested bit for bit), so training is unchanged.

        ``loss`` must be the monitored full-batch loss ``loss(model(X), Y)`` (checked against
        the monitor's own evaluation at the first record: a mini-batch loss or another loss
        convention raises ValueError). The HVPs run in the model's dtype (``precision`` does
        not apply: the gradient is the training one).
        """
        torch = _torch()
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0 or not loss.requires_grad:
            raise TypeError("loss: expected a scalar torch tensor with a graph (the training "
                            "loss, before .backward())")
        self._graph_mode = True
        recorded = self.steps % self.every == 0
        if not recorded and not self.lyapunov:
            loss.backward()
            return None
        lr = self._lyapunov_lr(optimizer) if self.lyapunov else (math.nan, 0.0)
        params = [p for p in self.model.parameters() if p.requires_grad]
        # Forward differences need only the step's gradient (no graph): each product is one
        # more gradient, about half a double-backward one. The Lyapunov tangent keeps exact
        # products (one per step, through the graph).
        difference = self._backward_hvp == "difference" and not self.lyapunov
        grads = torch.autograd.grad(loss, params, create_graph=not difference,
                                    allow_unused=True)
        value = float(loss.detach())
        if not self._loss_checked:
            self._check_loss(value, params[0].dtype)
        if difference:
            flat = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                              for p, g in zip(params, grads)])
            op: Any = hvp_operator(self.model, self.X, self.Y, self.loss, precision="model",
                                   hvp="difference", gradient=flat, loss_value=value)
        else:
            op = GraphHVP(params, list(grads), value)
        res = None
        try:
            if recorded:
                res = self.record(optimizer, op=op)
            if self.lyapunov:  # after the record: this step's map takes θ_n to θ_{n+1}
                self._tangent_step(op, lr)
        finally:
            if not difference:
                op.release()
        with torch.no_grad():
            for p, g in zip(params, grads):
                if g is None:
                    continue
                if p.grad is None:
                    p.grad = g.detach()
                else:
                    p.grad += g.detach()
        return res

    def _lyapunov_lr(self, optimizer) -> tuple[float, float]:
        """(η, weight decay) of plain ``torch.optim.SGD``: the tangent map is
        I − η(H + wd·I). Momentum (a second state vector) and other optimizers are refused."""
        torch = _torch()
        if not isinstance(optimizer, torch.optim.SGD):
            raise TypeError(f"optimizer: lyapunov=True needs the torch.optim.SGD optimizer in "
                            f"backward(), got {type(optimizer).__name__}")
        g = optimizer.param_groups[0]
        if float(g.get("momentum", 0) or 0) != 0 or g.get("maximize", False):
            raise ValueError("optimizer: lyapunov=True supports SGD without momentum (the map "
                             "with momentum acts on parameters and buffer together) and "
                             "without maximize")
        return float(g["lr"]), float(g.get("weight_decay", 0) or 0)

    def _tangent_step(self, op, lr: tuple[float, float]) -> None:
        """u ← (I − η(H + wd·I))u, renormalised; the log growth is summed for the records."""
        torch = _torch()
        if self._tangent is None:
            gen = torch.Generator(device="cpu").manual_seed(self.seed + 7919)
            u = torch.randn(op.dim, generator=gen, dtype=torch.float64).to(op.device)
            self._tangent = u / torch.linalg.norm(u)
        eta, wd = lr
        u = (1.0 - eta * wd) * self._tangent - eta * op(self._tangent)
        n = float(torch.linalg.norm(u))
        self._tangent = u / n
        for acc in (self._lyap_interval, self._lyap_total):
            acc[0] += math.log(n)
            acc[1] += 1

    def _check_loss(self, value: float, dtype) -> None:
        """The graph's loss must be the monitored one (full batch, same convention)."""
        torch = _torch()
        theta0, loss_of = _loss_function(self.model, self.loss)
        with torch.no_grad():
            ref = float(loss_of(theta0, self.X, self.Y))
        if not (math.isfinite(value) and math.isfinite(ref)):
            # A diverged point (NaN/inf loss) cannot tell the losses apart; the comparison
            # would blame the user's loss convention. Check at the next finite record instead;
            # this one is kept with converged False, as any diverged record.
            return
        rel = 1e-4 if dtype != torch.float64 else 1e-9
        if not abs(value - ref) <= rel * max(abs(ref), 1e-30):
            raise ValueError(f"loss: {value!r} is not the monitored full-batch loss at these "
                             f"parameters ({ref!r}): pass the full-batch training loss, and the "
                             f"training criterion as the monitor's loss= (e.g. nn.MSELoss())")
        self._loss_checked = True

    def record(self, optimizer: Any = None, *, step: Optional[int] = None,
               op: Any = None) -> HessianEigen:
        """Compute the sharpness at the model's current parameters and append a record.
        ``op``: the HVP operator to use (default: a new :func:`delyap.sgd.hvp_operator`)."""
        lr, beta, nesterov = (_optimizer_settings(optimizer) if optimizer is not None
                              else (math.nan, math.nan, False))
        at = self.steps if step is None else int(step)
        if op is None:
            op = hvp_operator(self.model, self.X, self.Y, self.loss, precision=self.precision,
                              hvp=self.hvp)
        checked = 0  # products of the difference checks (in the record's count)
        if getattr(op, "products", None) == "difference":
            op, checked = self._check_differences(op)
        # k = 1 with smallest: the top is tracked exactly as without smallest (_warm_top, its
        # own fallback and state) and the bottom separately (_record_bottom).
        split = (self._split_bottom and self.smallest and self.k == 1
                 and self.warm_steps > 0)
        which = "both" if self.smallest and not split else "largest"
        res, fallback = self._record_top(op, which, at)
        if not difference_products_trusted(res, self.tol, getattr(op, "products", None)):
            # The record's own space shows the differences inexact for tol: this record and
            # the next ones on exact products.
            checked += res.iterations
            op = self._exact_products()
            res, fallback = self._record_top(op, which, at)
        res.iterations += checked
        top = res.values[: self.k]
        if res.status != _NON_FINITE:
            # All pairs (top and, with smallest, bottom): the next start needs both ends.
            self._last = res.vectors
            self._history = (self._history + [(at, self._last)])[-self.extrapolate:]
        if split:
            low, low_fallback = self._record_bottom(op, res)
            self._top_basis = ((), ())   # not kept in memory between records
            fallback = fallback or low_fallback
            res = _join(res, low)
        lo = float(res.values[-1]) if self.smallest else math.nan
        if math.isnan(lr):
            thr = mu = math.nan
        else:
            thr = stability_threshold(lr, beta, nesterov)
            ends = [top[0], lo] if self.smallest else [top[0]]
            mu = momentum_exponent(ends, lr, beta, nesterov)
        self._rows.append({"step": at, "loss": op.loss(),
                           "sharpness": float(top[0]), "min_eigenvalue": lo, "lr": lr,
                           "momentum": beta, "two_over_lr": 2.0 / lr, "threshold": thr,
                           "gd_exponent": mu, "hvps": res.iterations,
                           "converged": res.status == 0,
                           "residual": float(res.residuals[0]),
                           "min_residual": (float(res.residuals[-1]) if self.smallest
                                            else math.nan),
                           "fallback": fallback,
                           "lyapunov": (self._lyap_interval[0] / self._lyap_interval[1]
                                        if self._lyap_interval[1] else math.nan),
                           "lyapunov_mean": (self._lyap_total[0] / self._lyap_total[1]
                                             if self._lyap_total[1] else math.nan)})
        self._lyap_interval = [0.0, 0]
        self._top.append(np.pad(top, (0, self.k - top.shape[0]), constant_values=np.nan))
        return res

    def _record_top(self, op, which: str, at: int) -> tuple[HessianEigen, bool]:
        """The record's top (and with ``which='both'`` bottom) pairs: the warm path from the
        last record, or a full run (the first record, or when the warm path does not reach
        tol); (result, whether it fell back to the full run)."""
        res, fallback = None, False
        self._top_basis = ((), ())
        if self._last is not None and self.warm_steps > 0:
            res = self._warm(op, which, at)
            # A non-finite product fails any run at this point: no full run after it.
            fallback = res.status not in (0, _NON_FINITE)
        if res is None or fallback:
            # Cold (the first record): the Jᵀ1 start of hessian_eigenvalues where it applies
            # (9 → 6 products at tol 1e-3 on the benchmark MLP, one gradient of the outputs
            # included).
            warm = (self._last if self._last is not None else
                    _output_gradient_start(op, self.k, which)) if res is None else res.vectors
            start = _start_vector(op, warm, self.seed + len(self._rows))
            full = _eigen(op, self.k, which, self.tol, self.max_iter, start, throw=False)
            full.iterations += 0 if res is None else res.iterations  # HVPs of the record
            res = full
        return res, fallback

    def _check_differences(self, op) -> tuple[Any, int]:
        """Difference products are checked (:meth:`HVPOperator.difference_error`, two
        gradients) at the first record, every 50 records and whenever ‖θ‖ has moved by more
        than a quarter since the last check: their step, and with it their error, grows with
        ‖θ‖, and a record accepted on one product has no space whose asymmetry would show it.
        An error above 0.1·tol·‖Hv‖ switches the monitor to exact products for good, this
        record included. Every 50 records, not more often: in the stable regime of the
        benchmark (1.2 products per record) a check every 25 took the monitor's overhead from
        19 to 20 %; the drift of ‖θ‖, the asymmetry of each multi-product record and the first
        check cover the rest. Returns (the operator for this record, the products spent)."""
        torch = _torch()
        norm = float(torch.linalg.norm(op.theta))
        last = self._fd_checked
        if last is not None and len(self._rows) - last[0] < 50 and \
                0.8 * last[1] <= norm <= 1.25 * last[1]:
            return op, 0
        self._fd_checked = (len(self._rows), norm)
        v = (torch.as_tensor(self._last[0], dtype=torch.float64) if self._last is not None
             else _output_gradient_start(op, 1, "largest"))
        if v is None:
            v = _start_vector(op, None, self.seed)
        err, scale = op.difference_error(v.to(op.device))
        if not (math.isfinite(err) and math.isfinite(scale)) or err <= 0.1 * self.tol * scale:
            return op, 2  # (a non-finite gradient: the record reports it, exact or not)
        return self._exact_products(), 2

    def _exact_products(self) -> Any:
        """Exact products from now on (the difference ones were found inexact for tol), and an
        exact operator for the current record."""
        self.hvp = self._backward_hvp = "exact"
        return hvp_operator(self.model, self.X, self.Y, self.loss, hvp="exact",
                            precision="model" if self._graph_mode else self.precision)

    def _record_bottom(self, op, top: HessianEigen) -> tuple[HessianEigen, bool]:
        """λ_min for a k = 1 record with ``smallest``, tracked apart from the top.

        Certificate: the same as a ``which='both'`` Lanczos run's, ‖Hv − λv‖ ≤ tol·max(|λ_max|,
        |λ_min|) with λ_max the record's sharpness (the Ritz pair and its residual formed from
        this record's products), so the recorded λ_min is within that bound of an eigenvalue
        of H (and, a Rayleigh quotient, never below the true λ_min). That scale is what the GD
        exponent needs: an error δ in λ_min moves |1 − ηλ_min| by at most ηδ, i.e. μ by
        ≲ η·tol·λ_max ≤ 2·tol below the edge of stability. A relative test on |λ_min| itself
        would be hopeless and pointless: λ_min sits in a dense cluster near 0.

        Warm path: :func:`_extreme_ritz` on −H (its top is H's bottom) from the previous
        bottom Ritz vector with the previous second one in reserve, at most 2·``warm_steps``
        products (the bottom's space builds up more slowly than the top's, and a fallback
        discards it), in a space that already holds the top's warm products of this record
        (free: H applied to them is known; they take the large-curvature directions out of
        the bottom Ritz vector). The stored vectors are (λ_max − H)y normalised, a free
        filter step (Hy is among the products) that removes the top eigendirection and damps
        every component along large curvature by (λ_max − h)/(λ_max − λ_min): those
        components, not the mix within the bottom cluster, dominate the next record's
        residual. Fallback: up to ``max_iter`` products from the best warm vector plus a
        seeded random part, as the top's full run; the first record runs ``which='both'``
        Lanczos from a seeded random vector (the comment there says why). Returns the bottom
        pair as a HessianEigen and whether it fell back."""
        torch = _torch()
        info = {"which": "smallest", "tol": self.tol, "dim": op.dim}
        if top.status == _NON_FINITE or not math.isfinite(float(top.values[0])):
            return _non_finite_eigen(1, op, info, ValueError("no finite top eigenvalue")), False
        scale = abs(float(top.values[0]))

        def neg(v):
            return -op(v)

        seed = self.seed + len(self._rows)   # the joint path's seed: same first record
        if self._low is None:
            # Cold: the joint path's first record (which='both' Lanczos, same seeded random
            # start, same value). Neither it nor a bottom-only space is sure to leave the
            # cluster from a random start: both stop once the residuals meet the bound, and
            # with another seed the bench MLP after 300 EoS steps gave λ_min ≈ +3e-5 where the
            # true one is −0.018 (within the bound of *an* eigenvalue, as certified). Later
            # records track the pair they start from.
            calls = op.calls
            both = _eigen(op, 1, "both", self.tol, self.max_iter,
                          _start_vector(op, None, seed), throw=False)
            if both.status == _NON_FINITE:
                both.iterations = op.calls - calls
            low = HessianEigen(values=both.values[-1:], vectors=both.vectors[-1:],
                               residuals=both.residuals[-1:], iterations=both.iterations,
                               status=both.status, info=info)
            if both.status != _NON_FINITE:
                self._low = (torch.as_tensor(both.vectors[-1], dtype=torch.float64), None)
            return low, False
        fallback, calls = False, op.calls
        try:
            second = None if self._low[1] is None else self._low[1].to(op.device)
            Qt, Wt = self._top_basis   # real products at this record's parameters
            run = _extreme_ritz(neg, self._low[0].to(op.device), second, self.tol,
                                2 * self.warm_steps, scale, known=(Qt, [-w for w in Wt]))
            used = run.products
            if not run.converged:
                fallback = True
                start = _start_vector(op, run.y if run.hy is not None else self._low[0], seed)
                run = _extreme_ritz(neg, start, None, self.tol, self.max_iter, scale)
                used += run.products
        except NonFiniteProductError as err:
            self._low = None
            bad = _non_finite_eigen(1, op, info, err)
            bad.iterations = op.calls - calls    # this run's products, not the top's too
            return bad, fallback
        lam = -run.rho
        out = HessianEigen(values=np.array([lam]), vectors=run.y.cpu().numpy()[None, :],
                           residuals=np.array([run.residual]), iterations=used,
                           status=0 if run.converged else _MAX_STEPS, info=info)
        if run.hy is not None:
            # run.hy = −Hy: (λ_max − H)y = λ_max·y + run.hy (the free filter step above).
            keep = [(scale * v + hv) if hv is not None else None
                    for v, hv in ((run.y, run.hy), (run.second, run.h_second))]
            self._low = tuple(None if z is None or not float(torch.linalg.norm(z)) > 0 else
                              (z / torch.linalg.norm(z)).detach() for z in keep)
            if self._low[0] is None:
                self._low = None
        return out, fallback

    def _warm_start(self, op, at: int):
        """The previous eigenvectors (top, and bottom with ``smallest``), moved on to step
        ``at`` along the last records (signs aligned), as one unit start vector: the value at
        ``at`` of the least-squares polynomial of degree ≤ 2 through the recorded vectors
        (interpolation for 2 or 3 records). Fitting more records than the degree needs
        averages out the error of each stored vector, which interpolation amplifies (the
        weights of quadratic extrapolation one record ahead are 3, −3, 1), at the price of a
        larger truncation error from older records."""
        torch = _torch()
        v = np.asarray(self._last, dtype=float)
        steps = np.array([h[0] for h in self._history], dtype=float)
        if len(steps) >= 2 and np.all(np.diff(steps) > 0) and at > steps[-1]:
            vs = [h[1] for h in self._history]
            for i in range(len(vs) - 2, -1, -1):  # align signs with the newest
                sign = np.sign(np.sum(vs[i] * vs[i + 1], axis=1, keepdims=True))
                vs[i] = vs[i] * np.where(sign == 0, 1.0, sign)
            # A swap of eigenvectors between records (large jumps) is not a drift: then
            # extrapolating would aim at neither; start from the last vector instead.
            if all(np.all(np.linalg.norm(b - a, axis=1) < 0.5) for a, b in zip(vs, vs[1:])):
                # Weights w with v(at) ≈ Σ w_i v_i: e(at)ᵀ A⁺ for the Vandermonde matrix A
                # of the (scaled) record steps, degree ≤ 2.
                scale = max(steps[-1] - steps[0], 1.0)
                t = (steps - steps[-1]) / scale
                deg = min(2, len(steps) - 1)
                A = np.vander(t, deg + 1)
                e = np.vander(np.array([(at - steps[-1]) / scale]), deg + 1)
                w = (e @ np.linalg.pinv(A)).ravel()
                v = sum(wi * vi for wi, vi in zip(w, vs))
        start = torch.as_tensor(v.sum(axis=0), dtype=torch.float64).to(op.device)
        return start / torch.linalg.norm(start)

    def _warm(self, op, which: str, at: int) -> HessianEigen:
        """At most ``warm_steps`` Lanczos steps from the warm start, without the random part
        (it would put a residual floor of its own under the cheap path); status 0 iff every
        wanted residual is below tol, the same test as the full run."""
        need = 2 * self.k if which == "both" else self.k
        if self.k == 1 and which == "largest":
            return self._warm_top(op, at)
        info: dict[str, Any] = {"which": which, "tol": self.tol, "dim": op.dim}
        try:
            stats: dict = {}
            values, vecs, res, steps, ok, _ = lanczos(
                op, self._warm_start(op, at), self.k, which=which, tol=self.tol,
                max_iter=max(self.warm_steps, need), restart=False, stats=stats)
            info["asymmetry"] = stats["asymmetry"]
        except NonFiniteProductError as err:
            return _non_finite_eigen(need, op, info, err)
        # restart=False stops on an invariant subspace with exact pairs, but possibly fewer
        # than asked for: only a full set counts as converged.
        ok = ok and len(values) == need
        return HessianEigen(values=np.asarray(values, dtype=float), vectors=vecs.cpu().numpy(),
                            residuals=np.asarray(res, dtype=float), iterations=steps,
                            status=0 if ok else _MAX_STEPS, info=info)

    def _warm_top(self, op, at: int) -> HessianEigen:
        """The warm path for the top eigenvalue alone: :func:`_extreme_ritz` from the warm start
        with the previous record's second Ritz direction in reserve (measured on the benchmark
        MLP at the edge of stability, every 10 steps: 4.8 products per record against 5.4 for
        Lanczos from the same start, and unchanged, ≈ 1.2, while the sharpness still grows).
        Keeps for the next record, when accepted, Hy/‖Hy‖ (the free power step) and, where the
        space had two vectors, H applied to the second Ritz vector."""
        torch = _torch()
        info = {"which": "largest", "tol": self.tol, "dim": op.dim}
        second = None if self._second is None else self._second.to(op.device)
        try:
            run = _extreme_ritz(op, self._warm_start(op, at), second, self.tol,
                                max(self.warm_steps, 1))
            rho, y, res, used, ok, hy, h2 = (run.rho, run.y, run.residual, run.products,
                                             run.converged, run.hy, run.h_second)
            # This record's products of the top, for the bottom's space (_record_bottom).
            self._top_basis = run.basis if self.smallest else ((), ())
        except NonFiniteProductError as err:
            return _non_finite_eigen(1, op, info, err)
        info["asymmetry"] = run.asymmetry
        out = HessianEigen(values=np.array([rho]), vectors=y.cpu().numpy()[None, :],
                           residuals=np.array([res]), iterations=used,
                           status=0 if ok else _MAX_STEPS, info=info)
        if not ok:  # the record falls back to a full run: keep the earlier second direction
            return out
        if h2 is not None and bool(torch.isfinite(h2).all()) and float(h2.norm()) > 0:
            self._second = (h2 / torch.linalg.norm(h2)).detach()
        if rho > 0 and hy is not None:
            # The recorded pair is (ρ, y), but the vector kept for the next start is Hy/‖Hy‖,
            # a free power step that scales the component along each other eigenvector h_j by
            # h_j/λ (|·| < 1 unless a negative eigenvalue is larger in magnitude than λ: then
            # the next record just needs more steps). It damps the error that extrapolation
            # would carry forward.
            out.vectors = (hy / torch.linalg.norm(hy)).cpu().numpy()[None, :]
        return out

    @contextlib.contextmanager
    def attach(self, optimizer: Any) -> Iterator[SharpnessMonitor]:
        """Within the block, every ``optimizer.step()`` calls ``self.step(optimizer)``."""
        if not hasattr(optimizer, "register_step_post_hook"):
            raise TypeError(f"optimizer: expected a torch optimizer, got "
                            f"{type(optimizer).__name__}")
        handle = optimizer.register_step_post_hook(lambda opt, args, kwargs: self.step(opt))
        try:
            yield self
        finally:
            handle.remove()

    # ------------------------------------------------------------------ output
    @property
    def records(self) -> dict[str, np.ndarray]:
        """Columns ``step, loss, sharpness, min_eigenvalue, lr, momentum, two_over_lr,
        threshold, gd_exponent, hvps, converged, residual`` (‖Hv − λv‖ of the sharpness),
        ``min_residual`` (that of λ_min; NaN without ``smallest``),
        ``fallback`` (the warm path missed ``tol``; a full Lanczos run was made),
        ``lyapunov`` and ``lyapunov_mean`` (with lyapunov=True, else NaN: the class doc) and
        ``top`` (records × k)."""
        out = {c: np.array([r[c] for r in self._rows]) for c in _COLUMNS}
        out["top"] = np.array(self._top).reshape(len(self._top), self.k)
        return out

    def to_csv(self, path: Any) -> None:
        """One row per record, the columns of :attr:`records` (``top`` as top_1 … top_k)."""
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(list(_COLUMNS) + [f"top_{i + 1}" for i in range(self.k)])
            for r, t in zip(self._rows, self._top):
                w.writerow([r[c] for c in _COLUMNS] + [float(x) for x in t])

    def plot(self, path: Optional[str] = None, *, ax: Any = None) -> Any:
        """Sharpness against steps with the 2/η (and momentum) threshold; the loss on a second
        (log) axis. Needs matplotlib (``pip install 'delyap[plot]'``)."""
        from ..plot import figure_axes, finish_figure

        plt, fig, ax = figure_axes(ax, (7, 4))
        r = self.records
        ax.plot(r["step"], r["sharpness"], color="tab:blue", lw=1.2, label="sharpness λ_max")
        ax.plot(r["step"], r["two_over_lr"], "k--", lw=1, label="2/η")
        if np.any(np.nan_to_num(r["momentum"]) > 0):
            ax.plot(r["step"], r["threshold"], "k:", lw=1, label="momentum threshold")
        ax.set_xlabel("step")
        ax.set_ylabel("sharpness")
        ax2 = ax.twinx()
        ax2.plot(r["step"], r["loss"], color="tab:red", lw=1, alpha=0.7, label="loss")
        ax2.set_yscale("log")
        ax2.set_ylabel("loss", color="tab:red")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="best")
        finish_figure(plt, fig, path)
        return ax

    def __repr__(self) -> str:
        if not self._rows:
            return f"SharpnessMonitor(every={self.every}, no records)"
        last = self._rows[-1]
        return (f"SharpnessMonitor({len(self._rows)} records, step {last['step']}: loss "
                f"{last['loss']:.4g}, sharpness {last['sharpness']:.4g}, 2/η "
                f"{last['two_over_lr']:.4g})")
