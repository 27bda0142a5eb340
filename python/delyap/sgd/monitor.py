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
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from .._validate import as_count, as_positive
from .sharpness import _MAX_STEPS, HessianEigen, _eigen, _start_vector, hvp_operator, lanczos
from .torch_model import _torch

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["SharpnessMonitor", "momentum_exponent", "stability_threshold"]

_COLUMNS = ("step", "loss", "sharpness", "min_eigenvalue", "lr", "momentum", "two_over_lr",
            "threshold", "gd_exponent", "hvps", "converged", "residual", "fallback")


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
        Also compute λ_min (the GD exponent needs it; costs a few more HVPs).
    tol, max_iter :
        Lanczos tolerance (on the residual, relative: every recorded pair has
        ‖Hv − λv‖ ≤ tol·|λ|, so |λ − λ_true| ≤ tol·|λ| for an eigenvalue λ_true, and
        ~tol²·λ/gap where λ is separated; the residual is recorded) and step cap per record.
        A record that does not reach ``tol`` is kept with ``converged`` False.
    warm_steps : int
        The cheap path: each record first runs at most ``warm_steps`` Lanczos steps (HVPs)
        from the previous eigenvectors, extrapolated along the last records (the eigenvector
        drifts smoothly under GD, so a 2–3 dimensional Krylov space usually meets ``tol``).
        The a-posteriori residual decides: only when it exceeds ``tol`` does the record fall
        back to a full Lanczos run (from the best warm vector plus a seeded
        random part, up to ``max_iter`` steps; ``records["fallback"]`` says which). 0: always
        the full run. That the warm path tracks the *largest* eigenvalue rests on continuity
        between records (an eigenvalue overtaking the tracked one between two records is
        picked up only as its component in the start vector grows): call
        :func:`delyap.sgd.hessian_eigenvalues` cold when that matters.
    extrapolate : int
        Records the warm start is extrapolated from: 1 (the last vector), 2 (linear) or 3
        (quadratic, default), in the recorded step numbers.
    seed : int
        Seed of the first start vector.

    Use ``monitor.step(optimizer)`` after each ``optimizer.step()``, or ``with
    monitor.attach(optimizer):`` around the loop (a post-step hook). ``monitor.record(...)``
    records now (e.g. at step 0). Results: ``monitor.records`` (a dict of numpy arrays),
    ``monitor.to_csv(path)``, ``monitor.plot(path)``.
    """

    def __init__(self, model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, *,
                 every: int = 10, k: int = 1, loss: Union[str, Callable, Any] = "mse",
                 smallest: bool = True, tol: float = 1e-4, max_iter: int = 100, seed: int = 0,
                 precision: str = "float64", warm_steps: int = 8, extrapolate: int = 3):
        self.model, self.X, self.Y = model, X, Y
        self.every = as_count(every, "every")
        self.k = as_count(k, "k")
        self.loss = loss
        self.smallest = bool(smallest)
        self.tol = as_positive(tol, "tol")
        self.max_iter = as_count(max_iter, "max_iter")
        self.warm_steps = as_count(warm_steps, "warm_steps", minimum=0)
        self.extrapolate = as_count(extrapolate, "extrapolate")
        if self.extrapolate > 3:
            raise ValueError(f"extrapolate: expected 1, 2 or 3 records, got {extrapolate}")
        self.seed = as_count(seed, "seed", minimum=0)
        self.precision = precision
        self.steps = 0
        self._rows: list[dict[str, Any]] = []
        self._top: list[np.ndarray] = []
        self._last: Optional[np.ndarray] = None
        # (step, eigenvectors) of the last records, for the extrapolated warm start.
        self._history: list[tuple[int, np.ndarray]] = []
        hvp_operator(model, X, Y, loss, precision=precision)  # validate the inputs now

    # ------------------------------------------------------------------ recording
    def step(self, optimizer: Any = None) -> Optional[HessianEigen]:
        """Count one optimizer step; record when the count is a multiple of ``every``.
        ``optimizer`` supplies η and momentum (None: recorded as NaN)."""
        self.steps += 1
        if self.steps % self.every:
            return None
        return self.record(optimizer)

    def record(self, optimizer: Any = None, *, step: Optional[int] = None) -> HessianEigen:
        """Compute the sharpness at the model's current parameters and append a record."""
        lr, beta, nesterov = (_optimizer_settings(optimizer) if optimizer is not None
                              else (math.nan, math.nan, False))
        at = self.steps if step is None else int(step)
        op = hvp_operator(self.model, self.X, self.Y, self.loss, precision=self.precision)
        which = "both" if self.smallest else "largest"
        res, fallback = None, False
        if self._last is not None and self.warm_steps > 0:
            res = self._warm(op, which, at)
            fallback = res.status != 0
        if res is None or fallback:
            warm = self._last if res is None else res.vectors
            start = _start_vector(op, warm, self.seed + len(self._rows))
            full = _eigen(op, self.k, which, self.tol, self.max_iter, start, throw=False)
            full.iterations += 0 if res is None else res.iterations  # HVPs of the record
            res = full
        top = res.values[: self.k]
        # All pairs (top and, with smallest, bottom): the next start needs both ends.
        self._last = res.vectors
        self._history = (self._history + [(at, self._last)])[-self.extrapolate:]
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
                           "residual": float(res.residuals[0]), "fallback": fallback})
        self._top.append(np.pad(top, (0, self.k - top.shape[0]), constant_values=np.nan))
        return res

    def _warm_start(self, op, at: int):
        """The previous eigenvectors (top, and bottom with ``smallest``), moved on linearly to
        step ``at`` along the last two records (signs aligned), as one unit start vector."""
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
                # Lagrange extrapolation through the recorded steps (degree ≤ 2).
                w = [np.prod([(at - sj) / (si - sj) for j, sj in enumerate(steps) if j != i])
                     for i, si in enumerate(steps)]
                v = sum(wi * vi for wi, vi in zip(w, vs))
        start = torch.as_tensor(v.sum(axis=0), dtype=torch.float64).to(op.device)
        return start / torch.linalg.norm(start)

    def _warm(self, op, which: str, at: int) -> HessianEigen:
        """At most ``warm_steps`` Lanczos steps from the warm start, without the random part
        (it would put a residual floor of its own under the cheap path); status 0 iff every
        wanted residual is below tol, the same test as the full run."""
        need = 2 * self.k if which == "both" else self.k
        values, vecs, res, steps, ok, _ = lanczos(
            op, self._warm_start(op, at), self.k, which=which, tol=self.tol,
            max_iter=max(self.warm_steps, need), restart=False)
        # restart=False stops on an invariant subspace with exact pairs, but possibly fewer
        # than asked for: only a full set counts as converged.
        ok = ok and len(values) == need
        return HessianEigen(values=np.asarray(values, dtype=float),
                            vectors=vecs.cpu().numpy(), residuals=np.asarray(res, dtype=float),
                            iterations=steps, status=0 if ok else _MAX_STEPS,
                            info={"which": which, "tol": self.tol, "dim": op.dim})

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
        threshold, gd_exponent, hvps, converged, residual`` (‖Hv − λv‖ of the sharpness: its
        error bound), ``fallback`` (the warm path missed ``tol``; a full Lanczos run was made)
        and ``top`` (records × k)."""
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
