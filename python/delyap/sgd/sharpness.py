"""Sharpness of a torch model's full-batch loss: Hessian eigenvalues, trace and spectral density.

Matrix-free, on Hessian-vector products of L(θ) = (1/N) Σ ℓ(f(x_i; θ), y_i): the gradient is
built once with its graph (``create_graph=True``) and each HVP is one double-backward pass
through it (about two gradients' cost, no forward per product; :class:`GraphHVP`). With
``chunk_size`` the samples are processed in chunks by ``torch.func`` instead (one chunk's graph
in memory at a time, the forward recomputed per product):

* :func:`hessian_eigenvalues`: Lanczos with full reorthogonalisation, the largest and/or
  smallest *algebraic* eigenvalues (a saddle's negative curvature comes out negative, not as a
  magnitude), their eigenvectors and residual norms ‖Hv − λv‖;
* :func:`hessian_trace`: Hutchinson's estimator with Rademacher probes and its standard error;
* :func:`hessian_density`: stochastic Lanczos quadrature (Ghorbani et al. 2019, as PyHessian).

Why Lanczos rather than the power iteration of PyHessian: the power iteration converges like
(λ₂/λ₁)ⁿ on |λ| (and finds the largest *magnitude*, which at a saddle may be negative), while a
Krylov space of the same size holds the Chebyshev-optimal polynomial, converging like
exp(−2n√gap); full reorthogonalisation keeps the Ritz values free of ghost copies.

Sharpness is the top eigenvalue λ_max: full-batch GD with step η is linearly stable at a minimum
iff λ_max < 2/η (heavy-ball momentum β: (2 + 2β)/η), the threshold of the edge of stability
(Cohen et al. 2021); see :class:`delyap.sgd.SharpnessMonitor`.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from .._result import Result, raise_if_failed
from .._system import ArrayLike
from .._validate import as_count, as_positive
from .hessian_path import _flat_loss_functions, flat_model, per_sample_loss
from .torch_model import _check_model_and_data, _torch

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["HessianEigen", "HessianTrace", "HessianDensity", "hessian_eigenvalues",
           "hessian_trace", "hessian_density", "hvp_operator", "lanczos", "NonFiniteProductError"]

# Status of a Lanczos run whose Ritz pairs did not reach ``tol`` within ``max_iter`` steps
# (the code the ODE solver uses for an exhausted step budget).
_MAX_STEPS = 1
_NON_FINITE = 3
_WHICH = ("largest", "smallest", "both")


class NonFiniteProductError(FloatingPointError):
    """An operator product (a Hessian-vector product) came back with NaN or ±inf: the
    parameters, the data or the loss are not finite there."""


# Relative step of the forward-difference HVP (√eps of float64).
_FD_STEP = math.sqrt(np.finfo(np.float64).eps)
# Modules whose output is a smooth function of parameters and inputs: forward differences of
# the gradient are accurate through them (a ReLU's kink crossed by the ε-step would put an O(1)
# error into the product).
SMOOTH_MODULES = ("Linear", "Tanh", "Sigmoid", "Softplus", "GELU", "SiLU", "ELU", "Identity",
                  "Flatten", "Bilinear", "Softsign", "Mish", "Sequential", "ModuleList",
                  "Conv1d", "Conv2d", "Conv3d", "AvgPool1d", "AvgPool2d", "LayerNorm")


def is_smooth_model(model) -> bool:
    """Whether every module of ``model`` is in :data:`SMOOTH_MODULES` (its loss is then a
    smooth function of the parameters, as forward-difference HVPs need)."""
    return all(type(m).__name__ in SMOOTH_MODULES for m in model.modules())


# ----------------------------------------------------------------------------- operator
class HVPOperator:
    """v ↦ H v for the full-batch loss at the model's current parameters (flat float64 vectors).

    Built once per point: the parameters are copied (``theta``), so later optimizer steps do not
    change this operator; a monitor builds a new one at each call (or, with
    :meth:`SharpnessMonitor.backward`, uses the training step's own graph instead).

    ``products='exact'`` (default): double backward through one gradient graph (or
    ``torch.func`` per chunk). ``products='difference'``: the forward difference
    (∇L(θ + εv) − ∇L(θ))/ε, ε‖v‖ = √eps·max(1, ‖θ‖), one gradient per product (about half
    the cost of an exact one) with a relative error ~1e-8 for a smooth loss in float64
    (measured 3e-8 on the benchmark MLP; the test suite checks 1e-6 against exact products):
    for eigenvalue tolerances ≥ 1e-5 and smooth models only (a kink of ReLU crossed by the
    step spoils a product). ``gradient`` (with ``loss_value``): ∇L(θ) when the caller
    already has it, e.g. the training step's.
    """

    def __init__(self, model, X, Y, loss: Union[str, Callable, Any] = "mse", *,
                 precision: str = "float64", chunk_size: Optional[int] = None,
                 products: str = "exact", gradient: Optional[torch.Tensor] = None,
                 loss_value: Optional[float] = None):
        torch = _torch()
        if precision not in ("float64", "model"):
            raise ValueError(f"precision: expected 'float64' or 'model', got {precision!r}")
        if products not in ("exact", "difference"):
            raise ValueError(f"hvp: expected 'exact' or 'difference', got {products!r}")
        _check_model_and_data(model, X, Y)
        if precision == "float64" and next(model.parameters()).dtype != torch.float64:
            # A float64 copy: float32 HVPs carry relative errors ~1e-6, as large as the
            # tolerance users want on the sharpness. The caller's model is not touched.
            model = copy.deepcopy(model).double()
            X = X.double()
            Y = Y.double() if torch.is_floating_point(Y) else Y
        self.model, self.X, self.Y = model, X, Y
        self.n_samples = int(X.shape[0])
        chunk = self.n_samples if chunk_size is None else as_count(chunk_size, "chunk_size")
        self._chunks = [slice(s, min(self.n_samples, s + chunk))
                        for s in range(0, self.n_samples, chunk)]
        self.theta, self._loss_of = _loss_function(model, loss)
        self.dim = int(self.theta.numel())
        self.dtype = self.theta.dtype
        self.device = self.theta.device
        self.calls = 0

        summed = len(self._chunks) > 1 and _chunked_loss_is_sum(loss, Y)

        def chunk_loss(theta, s):
            # Mean over the whole data set: each chunk contributes its share (a summed torch
            # loss: its sum).
            share = 1.0 if summed else (s.stop - s.start) / self.n_samples
            return self._loss_of(theta, X[s], Y[s]) * share

        self._chunk_loss = chunk_loss
        self._grad = torch.func.grad(chunk_loss)
        self._graph: Optional[GraphHVP] = None
        self._loss_value: Optional[float] = None
        self.products = products
        self._g0: Any = None
        if products == "difference":
            if self.dtype != torch.float64:
                raise ValueError("hvp: 'difference' products need float64 (their error is "
                                 "~√eps of the working precision: 1e-8 in float64, 3e-4 in "
                                 "float32)")
            if gradient is None:
                self._g0, value = self._gradient_and_value(self.theta)
                self._loss_value = float(value)
            else:
                self._g0 = gradient.detach().reshape(-1).to(self.dtype)
                if self._g0.numel() != self.dim:
                    raise ValueError(f"gradient: expected {self.dim} entries, got "
                                     f"{self._g0.numel()}")
                self._loss_value = None if loss_value is None else float(loss_value)
            # ε·‖v‖ = √eps·max(1, ‖θ‖): the forward difference's truncation error (∝ ε) and
            # rounding error (∝ eps·‖∇L‖/ε) balance near √eps relative to the scale of θ.
            self._fd_scale = _FD_STEP * max(1.0, float(torch.linalg.norm(self.theta)))
        elif len(self._chunks) == 1:
            # Reverse-over-reverse on one gradient graph, built once (PyHessian's scheme): each
            # HVP is one double-backward pass, without recomputing the forward. It works for
            # every loss (torch 2.x's mse_loss has no forward-mode double derivative), and was
            # measured as cheap as torch.func's vjp-of-grad per HVP and cheaper to build
            # (benchmarks/bench_hessian.py, unit costs). The forward evaluates L: kept, so that
            # loss() costs nothing.
            th = self.theta.detach().requires_grad_(True)
            value = self._loss_of(th, X, Y)
            (g,) = torch.autograd.grad(value, th, create_graph=True)
            self._loss_value = float(value.detach())
            self._graph = GraphHVP([th], [g], self._loss_value)

    def loss(self) -> float:
        """L at the operator's point."""
        torch = _torch()
        if self._loss_value is not None:
            return self._loss_value
        with torch.no_grad():
            return float(sum(float(self._loss_of(self.theta, self.X[s], self.Y[s]))
                             * (s.stop - s.start) for s in self._chunks) / self.n_samples)

    def gradient(self, theta: Optional[torch.Tensor] = None) -> torch.Tensor:
        """∇L (flat), at ``theta`` (default: the operator's point)."""
        return self._gradient_and_value(self.theta if theta is None else theta)[0]

    def _gradient_and_value(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇L, L) at a flat θ, detached: one forward and one reverse pass per chunk by plain
        autograd. A forward-difference product is exactly one such gradient, and
        ``torch.func.grad``'s transform made it ≈ 11 % dearer (24.9 against 22.1 ms CPU on the
        benchmark MLP, where a GD step is 21.3 ms)."""
        torch = _torch()
        th = theta.detach().requires_grad_(True)
        g: Any = None
        value: Any = 0.0
        with torch.enable_grad():
            for s in self._chunks:
                part = self._chunk_loss(th, s)
                (gs,) = torch.autograd.grad(part, th)
                g = gs if g is None else g + gs
                value = value + part.detach()
        return g, value

    def _difference(self, v, step: float):
        """(∇L(θ + εv) − ∇L(θ))/ε with ε·‖v‖ = ``step``: one gradient."""
        torch = _torch()
        self.calls += 1
        v = v.to(self.dtype)
        nv = float(torch.linalg.norm(v))
        if nv == 0.0:
            return torch.zeros_like(v)
        eps = step / nv
        return ((self.gradient(self.theta + eps * v) - self._g0) / eps).detach()

    def difference_error(self, v) -> tuple[float, float]:
        """(estimated error, ‖Hv‖) of this operator's forward-difference product at v, for two
        gradients: the product and the same at half the step. A forward difference's error
        is to first order proportional to its step, so D(ε) − D(ε/2) ≈ half the error of D(ε)
        (Richardson). Rounding, ~√eps relative at these steps, stays below the tolerances
        this is checked against."""
        torch = _torch()
        full = self._difference(v, self._fd_scale)
        half = self._difference(v, 0.5 * self._fd_scale)
        return 2.0 * float(torch.linalg.norm(full - half)), float(torch.linalg.norm(full))

    def output_gradient(self) -> Optional[torch.Tensor]:
        """Jᵀ1 = ∇_θ Σ_i f(x_i; θ) (flat, float64) for a model with one output per sample,
        else None: a cheap start vector for the top eigenvector (one forward and backward).

        For squared loss H = (2/N) JᵀJ + (residual term), and the top eigenvector of JᵀJ is
        Jᵀu for the top eigenvector u of the Gram matrix JJᵀ, which for networks whose
        features have a nonzero mean is close to the constant vector (the dominant "mean
        mode" of the neural tangent kernel): at initialisation this start cuts the Lanczos
        steps of the benchmark MLP from 8 to 5 at 1e-5 (benchmarks/bench_hessian.py).
        With several outputs the sum of outputs can be a flat direction (softmax cross-entropy
        is invariant under adding a constant to all logits), hence the one-output rule."""
        torch = _torch()
        _, call = flat_model(self.model)
        th = self.theta.detach().requires_grad_(True)
        g = None
        for s in self._chunks:
            out = call(th, self.X[s])
            if out.numel() != s.stop - s.start:
                return None
            (gs,) = torch.autograd.grad(out.sum(), th)
            g = gs if g is None else g + gs
        return None if g is None else g.detach().to(torch.float64)

    def __call__(self, v):
        """H v for a flat vector v (torch tensor on the operator's device), in float64."""
        torch = _torch()
        if self._g0 is not None:
            return self._difference(v, self._fd_scale)
        if self._graph is not None:
            self.calls += 1
            return self._graph(v)
        self.calls += 1
        v = v.to(self.dtype)
        out = None
        for s in self._chunks:  # memory of one chunk's graph at a time
            hv = torch.func.vjp(lambda th, s=s: self._grad(th, s), self.theta)[1](v)[0]
            out = hv if out is None else out + hv
        return out.detach().to(torch.float64)


class GraphHVP:
    """v ↦ H v by double backward through a gradient graph g = ∇L built with
    ``create_graph=True`` (on flat or per-parameter tensors): each product is one backward pass
    through the graph of g, no forward recomputation (PyHessian's scheme).

    ``params`` are the leaves g was taken with respect to, ``grads`` the gradients (graph
    attached), ``loss_value`` L at that point. Vectors are flat float64 in ``params`` order; a
    gradient that does not depend on any parameter (L linear in that parameter) contributes
    zero rows. :meth:`release` frees the graph.
    """

    def __init__(self, params: list, grads: list, loss_value: float):
        torch = _torch()
        self.params = list(params)
        self.sizes = [int(p.numel()) for p in self.params]
        self.shapes = [p.shape for p in self.params]
        self.dim = int(sum(self.sizes))
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.calls = 0
        self._loss_value = float(loss_value)
        # Only gradients with a graph can be differentiated again; the others are constant.
        self._live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        self._grads: Optional[list] = [grads[i] for i in self._live]
        self._zeros = torch.zeros(self.dim, dtype=torch.float64, device=self.device)

    def loss(self) -> float:
        """L at the graph's point."""
        return self._loss_value

    def __call__(self, v):
        """H v (float64) for a flat vector v."""
        torch = _torch()
        if self._grads is None:
            raise RuntimeError("GraphHVP: the graph was released")
        self.calls += 1
        if not self._live:
            return self._zeros.clone()
        parts = torch.split(v.to(self.dtype), self.sizes)
        outs = [parts[i].view(self.shapes[i]) for i in self._live]
        hv = torch.autograd.grad(self._grads, self.params, grad_outputs=outs,
                                 retain_graph=True, allow_unused=True)
        return torch.cat([(h.reshape(-1) if h is not None else
                           torch.zeros(n, dtype=self.dtype, device=self.device))
                          for h, n in zip(hv, self.sizes)]).detach().to(torch.float64)

    def release(self) -> None:
        """Drop the gradient graph (its memory); later products raise."""
        self._grads = None


def _chunked_loss_is_sum(loss, Y) -> bool:
    """Whether the chunks of a chunked operator add up (a torch loss module with reduction
    'sum') rather than average with weights chunk/N (a per-sample mean: names, callables,
    plain 'mean' modules). A weighted mean (class weights, ignored targets) has no such split:
    refused, with the argument to change."""
    torch = _torch()
    if not isinstance(loss, torch.nn.modules.loss._Loss):
        return False
    reduction = getattr(loss, "reduction", "mean")
    if reduction == "sum":
        return True
    if reduction != "mean":
        raise ValueError(f"loss: reduction={reduction!r} gives no scalar loss")
    ignore = getattr(loss, "ignore_index", None)
    ignored = (ignore is not None and not torch.is_floating_point(Y) and
               bool((Y == ignore).any()))
    if getattr(loss, "weight", None) is not None or ignored:
        raise ValueError("chunk_size: a class-weighted mean (or one with ignored targets) does "
                         "not split into chunks weighted by their size; pass chunk_size=None or "
                         "a per-sample loss callable")
    return False


def _loss_function(model, loss):
    """(θ₀ flat, L(θ, X, Y) batch mean) for a loss name, a per-sample callable or a torch loss
    module (``nn.MSELoss()``, ``nn.CrossEntropyLoss()``: applied to the whole batch)."""
    torch = _torch()
    if isinstance(loss, torch.nn.modules.loss._Loss):
        theta0, call = flat_model(model)

        def batch_loss(theta, X, Y):
            out = call(theta, X)
            return loss(out.reshape(Y.shape) if out.numel() == Y.numel() else out, Y)

        return theta0, batch_loss
    loss_fn = per_sample_loss(loss)
    # The per-sample losses of the Hessian path (one rule for 'mse' = ½‖f − y‖² and the rest).
    theta0, sample_loss, _ = _flat_loss_functions(model, None, None, loss_fn)

    def mean_loss(theta, X, Y):
        return torch.func.vmap(sample_loss, in_dims=(None, 0, 0))(theta, X, Y).mean()

    return theta0, mean_loss


def hvp_operator(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor,
                 loss: Union[str, Callable, Any] = "mse", *, precision: str = "float64",
                 chunk_size: Optional[int] = None, hvp: str = "exact",
                 gradient: Optional[torch.Tensor] = None,
                 loss_value: Optional[float] = None) -> HVPOperator:
    """The Hessian-vector product v ↦ ∇²L(θ) v of the full-batch loss at the model's parameters.

    Parameters
    ----------
    model, X, Y :
        A ``torch.nn.Module`` in eval mode and the full data set (as :func:`delyap.sgd.lyapunov`).
    loss : str, callable or torch loss module
        'mse' (ℓ = ½‖f − y‖², delyap's convention, so that λ(H) = λ(K)/N at interpolation),
        'cross_entropy', a per-sample callable ℓ(output, target), or a torch loss module such
        as ``nn.MSELoss()`` applied to the whole batch (the criterion of a training loop; note
        ``nn.MSELoss()`` = (2/c)·'mse' for c outputs).
    precision : {'float64', 'model'}
        'float64' (default): HVPs of a float64 copy of the model; 'model': in its own dtype.
    chunk_size : int, optional
        Samples per HVP pass (default: all at once); smaller bounds the memory.
    hvp : {'exact', 'difference'}
        Exact products (double backward) or forward differences of the gradient (half the
        cost, relative error ~1e-8, smooth models in float64 only: see :class:`HVPOperator`).
    gradient, loss_value : optional
        With 'difference': ∇L and L at the model's parameters when already known (flat, in
        the parameters' order), e.g. from the training step; else computed here.
    """
    return HVPOperator(model, X, Y, loss, precision=precision, chunk_size=chunk_size,
                       products=hvp, gradient=gradient, loss_value=loss_value)


def choose_products(hvp: str, model, tol: float, precision: str) -> str:
    """'exact' or 'difference' for ``hvp`` in {'auto', 'exact', 'difference'}: 'auto' takes
    forward differences when they are safe and pay off: a model of smooth modules
    (:func:`is_smooth_model`), products in float64, and a tolerance ≥ 1e-5 (the difference
    error, ~1e-8 relative, then stays three decades below it, so a residual recorded at the
    tolerance is the true one to 0.1 %)."""
    torch = _torch()
    if hvp not in ("auto", "exact", "difference"):
        raise ValueError(f"hvp: expected 'auto', 'exact' or 'difference', got {hvp!r}")
    if hvp != "auto":
        return hvp
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    if not params:          # not a model: hvp_operator's validation says what is wrong
        return "exact"
    f64 = precision == "float64" or params[0].dtype == torch.float64
    return "difference" if f64 and tol >= 1e-5 and is_smooth_model(model) else "exact"


# ----------------------------------------------------------------------------- Lanczos
def lanczos(matvec: Callable, v0: Any, k: int = 1, *, which: str = "largest",
            tol: float = 1e-8, max_iter: int = 300, check_every: int = 1,
            restart: bool = True, stats: Optional[dict] = None) -> tuple:
    """Lanczos with full reorthogonalisation on a symmetric operator.

    ``v0`` is a torch float64 vector (``matvec`` maps torch vectors) or a numpy vector (then
    everything runs in numpy: :mod:`delyap.sgd.gram` uses it on matrices without torch).

    Raises :class:`NonFiniteProductError` when a product is not finite.

    Returns ``(values, vectors, residuals, steps, converged, (alpha, beta))``: the selected Ritz
    values in decreasing order, their Ritz vectors (rows), the residual norms ‖Av − θv‖ (with
    full reorthogonalisation the Lanczos estimate β_m |s_m| equals them up to rounding), the
    steps (matvecs) used, whether every selected residual is below ``tol`` · max |θ|, and the
    tridiagonal T (diagonal, off-diagonal).

    When the Krylov space becomes invariant (β ≈ 0) the run stops if ``restart`` is False (its
    Ritz pairs are then exact); otherwise it continues from a random vector orthogonal to the
    basis, so that repeated eigenvalues and start vectors inside an invariant subspace still
    give k pairs.

    ``stats``: a dict that receives ``"asymmetry"``, the largest |q_iᵀ(A q_j) − q_jᵀ(A q_i)|
    seen over the basis, relative to max |θ|, at no cost: the first Gram–Schmidt pass gives
    q_iᵀ A q_j for every earlier q_i, whose values for a symmetric operator are β_{j−1} (i = j − 1)
    and 0 (i < j − 1). It is ~1e-15 for exact products and measures the error of inexact ones
    (forward differences), which the residual test alone cannot see.
    """
    from scipy.linalg import eigh_tridiagonal

    on_numpy = isinstance(v0, np.ndarray)
    if on_numpy:
        rng = np.random.default_rng(12345)
        norm, v0 = np.linalg.norm, np.asarray(v0, dtype=float).ravel()
    else:
        torch = _torch()
        gen = torch.Generator(device="cpu").manual_seed(12345)
        norm = torch.linalg.norm
    dim = v0.size if on_numpy else v0.numel()
    need = k if which != "both" else 2 * k
    max_iter = min(max_iter, dim)
    Q = (np.empty((max_iter, dim)) if on_numpy else
         torch.empty((max_iter, dim), dtype=torch.float64, device=v0.device))
    Q[0] = v0 / norm(v0)
    alpha, beta = np.zeros(max_iter), np.zeros(max_iter)
    m, converged = 0, False
    theta = S = sel = None
    asym = 0.0
    for j in range(max_iter):
        w = matvec(Q[j])
        alpha[j] = float(Q[j] @ w)
        proj = Q[:j + 1] @ w  # q_iᵀ A q_j
        w = w - Q[:j + 1].T @ proj
        w = w - Q[:j + 1].T @ (Q[:j + 1] @ w)  # classical Gram–Schmidt twice
        if j >= 1:
            c = np.abs(np.asarray(proj[:j].tolist()))
            c[j - 1] = abs(c[j - 1] - beta[j - 1])  # q_{j−1}ᵀ A q_j against q_jᵀ A q_{j−1}
            asym = max(asym, float(c.max()))
        beta[j] = float(norm(w))
        if not (math.isfinite(alpha[j]) and math.isfinite(beta[j])):
            raise NonFiniteProductError(f"Lanczos step {j + 1}: the operator's product is not "
                                        f"finite (non-finite parameters, data or loss?)")
        m = j + 1
        scale = float(np.max(np.abs(alpha[:m]))) or 1.0
        invariant = beta[j] <= 1e-12 * scale
        if invariant and not restart:
            converged = True
            break
        if m >= need and (invariant or m == max_iter or m % check_every == 0):
            theta, S = eigh_tridiagonal(alpha[:m], beta[:m - 1]) if m > 1 else (
                alpha[:1].copy(), np.ones((1, 1)))
            sel = _select(theta, k, which)
            res = beta[j] * np.abs(S[-1, sel])
            if np.all(res <= tol * max(float(np.max(np.abs(theta))), 1e-300)):
                converged = True
                break
        if m == max_iter:
            break
        if invariant:
            # Breakdown: restart from a random direction orthogonal to the basis (β_j = 0
            # splits T into blocks; Ritz pairs of the earlier block are exact).
            w = (rng.standard_normal(dim) if on_numpy else
                 torch.randn(dim, generator=gen, dtype=torch.float64).to(v0.device))
            for _ in range(2):
                w = w - Q[:m].T @ (Q[:m] @ w)
            beta[j] = 0.0
            Q[m] = w / norm(w)
            continue
        Q[m] = w / beta[j]
    if theta is None or S is None or S.shape[0] != m:
        theta, S = eigh_tridiagonal(alpha[:m], beta[:m - 1]) if m > 1 else (
            alpha[:1].copy(), np.ones((1, 1)))
        sel = _select(theta, k, which)
    res = beta[m - 1] * np.abs(S[-1, sel])
    if stats is not None:
        stats["asymmetry"] = asym / max(float(np.max(np.abs(theta))), 1e-300)
    coef = S[:, sel].T.copy()
    vecs = coef @ Q[:m] if on_numpy else torch.as_tensor(coef, device=v0.device) @ Q[:m]
    return theta[sel], vecs, res, m, converged, (alpha[:m], beta[:m - 1])


def _select(theta: np.ndarray, k: int, which: str) -> np.ndarray:
    """Indices (into increasing Ritz values) of the wanted ones, in decreasing order."""
    n = theta.shape[0]
    if which == "largest":
        idx = np.arange(n - 1, max(n - k, 0) - 1, -1)
    elif which == "smallest":
        idx = np.arange(min(k, n) - 1, -1, -1)
    else:  # both ends, without counting a Ritz value twice when the space is small
        idx = np.unique(np.concatenate([np.arange(max(n - k, 0), n), np.arange(min(k, n))]))[::-1]
    return idx


# ----------------------------------------------------------------------------- results
@dataclass
class HessianEigen(Result):
    """Extreme eigenpairs of the full-batch loss Hessian.

    Attributes
    ----------
    values : ndarray (k,) or (2k,)
        Eigenvalues in decreasing order (for ``which='both'``: the k largest, then the k
        smallest).
    vectors : ndarray (k, D)
        Unit eigenvectors (rows), parameters flattened in ``model.named_parameters()`` order.
    residuals : ndarray
        ‖H v − λ v‖ per pair: |λ − λ_true| ≤ residual (Weyl), and the angle to the true
        eigenvector is at most residual / gap.
    iterations : int
        Lanczos steps = Hessian-vector products used.
    status : int
        0 when every residual is below ``tol``·max|λ|; 1 (max_steps) when not within the step
        cap; 3 (non_finite) when a Hessian-vector product was not finite (non-finite
        parameters, data or loss: the values are NaN, ``info["error"]`` says where).
    info : dict
        ``which``, ``tol``, ``loss`` (L at the point), ``dim``.
    """

    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    iterations: int
    status: int = 0
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def sharpness(self) -> float:
        """The largest eigenvalue found (λ_max for which='largest' or 'both')."""
        return float(self.values[0])

    def __repr__(self) -> str:
        vals = ", ".join(f"{v:.6g}" for v in self.values)
        return (f"HessianEigen([{vals}], max residual {float(np.max(self.residuals)):.2g}, "
                f"{self.iterations} HVPs, {self.message})")


@dataclass
class HessianTrace(Result):
    """Hutchinson estimate of tr(H) with its standard error (``n_probes`` Rademacher probes).

    ``status`` is 0, or 3 (non_finite) when a Hessian-vector product was not finite
    (non-finite parameters or loss: ``trace`` and ``stderr`` are NaN, ``info["error"]`` names
    the probe)."""

    trace: float
    stderr: float
    n_probes: int
    status: int = 0
    info: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class HessianDensity(Result):
    """Stochastic Lanczos quadrature of the Hessian's spectral density.

    Attributes
    ----------
    nodes, weights : ndarray (n_probes, m)
        Ritz values of each probe's Lanczos run and their Gauss quadrature weights (each row
        sums to 1): the density is the average over probes of Σ_i w_i δ(λ − θ_i).
    dim : int
        D, the number of parameters: D · Σ w_i θ_i estimates the trace.
    status : int
        0, or 3 (non_finite) when a Hessian-vector product was not finite (non-finite
        parameters or loss: nodes and weights are NaN, ``info["error"]`` says where).
    """

    nodes: np.ndarray
    weights: np.ndarray
    dim: int
    status: int = 0
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def density(self, grid: ArrayLike, width: Optional[float] = None) -> np.ndarray:
        """The density smoothed by a Gaussian of standard deviation ``width`` (default 1 % of
        the spectral range) on ``grid``; integrates to 1 over a grid covering the spectrum."""
        grid = np.asarray(grid, dtype=float)
        lo, hi = float(self.nodes.min()), float(self.nodes.max())
        s = (0.01 * max(hi - lo, 1e-12)) if width is None else as_positive(width, "width")
        z = (grid[..., None, None] - self.nodes) / s
        g = np.exp(-0.5 * z * z) / (s * math.sqrt(2 * math.pi))
        return np.sum(g * self.weights, axis=(-2, -1)) / self.nodes.shape[0]

    @property
    def trace(self) -> float:
        """D · E[Σ_i w_i θ_i], the SLQ estimate of tr(H)."""
        return float(self.dim * np.mean(np.sum(self.weights * self.nodes, axis=1)))


# ----------------------------------------------------------------------------- entry points
def _start_vector(op: Any, v0, seed: int):
    """A unit start vector: v0 (a vector, or rows whose sum is used) plus a seeded random part of
    relative size 1e-3, so that a warm start that is an exact eigenvector still lets Lanczos
    see the rest of the spectrum."""
    torch = _torch()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    r = torch.randn(op.dim, generator=gen, dtype=torch.float64).to(op.device)
    r = r / torch.linalg.norm(r)
    if v0 is None:
        return r
    v = torch.as_tensor(np.asarray(v0, dtype=float) if not isinstance(v0, torch.Tensor) else v0,
                        dtype=torch.float64).to(op.device)
    if v.ndim == 2:
        v = v.sum(dim=0)
    if v.ndim != 1 or v.numel() != op.dim:
        raise ValueError(f"v0: expected {op.dim} entries (one per parameter) or rows of them, got "
                         f"shape {tuple(v.shape)}")
    n = torch.linalg.norm(v)
    if not torch.isfinite(n) or n == 0:
        raise ValueError("v0: must be finite and nonzero")
    return v / n + 1e-3 * r


def hessian_eigenvalues(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, k: int = 1, *,
                        loss: Union[str, Callable, Any] = "mse", which: str = "largest",
                        tol: float = 1e-8, max_iter: int = 300, seed: int = 0,
                        v0: Optional[Union[np.ndarray, torch.Tensor]] = None,
                        precision: str = "float64", chunk_size: Optional[int] = None,
                        start: str = "auto", hvp: str = "auto",
                        throw: bool = True) -> HessianEigen:
    """Extreme eigenvalues and eigenvectors of the full-batch loss Hessian (Lanczos).

    Parameters
    ----------
    model, X, Y, loss, precision, chunk_size :
        As :func:`hvp_operator` (default loss 'mse': L = (1/N) Σ ½‖f_i − y_i‖²).
    k : int
        Eigenpairs per end of the spectrum.
    which : {'largest', 'smallest', 'both'}
        Largest *algebraic* eigenvalues (the sharpness), smallest (negative curvature at a
        saddle), or k of each.
    tol : float
        Stop when every residual ‖Hv − λv‖ ≤ tol · max|λ|. That certifies each value to within
        tol·max|λ| of *an* eigenvalue; that it is the largest (or smallest) rests on the Krylov
        space having reached that end of the spectrum, which a start close to another
        eigenvector can delay past a loose tol (see ``v0``).
    max_iter : int
        Most Lanczos steps (= HVPs; memory max_iter × D doubles).
    seed : int
        Seed of the random start vector.
    v0 : array or tensor (D,) or (m, D), optional
        Warm start (e.g. the previous ``result.vectors``); a seeded random part is mixed in.
        After the top two eigenvalues cross, the previous top vector is the new *second* one,
        and at a loose tol the run can stop on λ₂: during edge-of-stability training of the
        benchmark MLP (benchmarks/bench_hessian.py), warm starts from the previous call
        returned λ₂ for 1 of 30 calls at tol 1e-2 (11 % low) and 10 of 30 at 3e-2 (up to 23 %
        low). Tight tolerances, the default start, or :class:`SharpnessMonitor` (which keeps
        the previous second direction in its space for this reason) avoid it.
    start : {'auto', 'random'}
        Start vector when ``v0`` is None. 'auto' (default): for ``which='largest'``, k = 1 and
        a model with one output per sample, Jᵀ1 = ∇_θ Σ_i f(x_i) (one forward and backward;
        close to the top eigenvector when the tangent kernel has its usual dominant mean mode,
        see :meth:`HVPOperator.output_gradient`) plus the seeded random part; otherwise, and
        when Jᵀ1 vanishes, the seeded random vector. 'random': always the random vector.
        Either way the stopping test is the residual, so the start changes the cost and which
        end of the spectrum is reached first, not the residual bound (see ``tol``).
    hvp : {'auto', 'exact', 'difference'}
        How Hessian-vector products are formed: 'exact' (double backward through one
        gradient graph), 'difference' (forward differences of the gradient: one gradient per
        product, about half the cost, relative error ~1e-8 for smooth float64 losses), or
        'auto' (default): 'difference' when ``tol`` ≥ 1e-5, the products run in float64 and
        every module is smooth (:data:`SMOOTH_MODULES`: no ReLU kinks), else 'exact'.
        ``result.info["hvp"]`` says which was used. A run on difference products whose
        Lanczos basis shows them asymmetric beyond 0.1·``tol`` (their step grows with ‖θ‖:
        large or diverged parameters) is redone with exact products, ``info["hvp_fallback"]``
        saying why: the residual test alone cannot see an error of the products themselves.
    throw : bool
        True (default): raise :class:`delyap.IntegrationError` when ``tol`` is not reached;
        False: return the result with ``status`` 1 (max_steps).
    """
    if which not in _WHICH:
        raise ValueError(f"which: expected 'largest', 'smallest' or 'both', got {which!r}")
    k = as_count(k, "k")
    tol = as_positive(tol, "tol")
    max_iter = as_count(max_iter, "max_iter")
    seed = as_count(seed, "seed", minimum=0)
    if start not in ("auto", "random"):
        raise ValueError(f"start: expected 'auto' or 'random', got {start!r}")
    products = choose_products(hvp, model, tol, precision)
    op = hvp_operator(model, X, Y, loss, precision=precision, chunk_size=chunk_size,
                      hvp=products)
    if (2 * k if which == "both" else k) > op.dim:
        raise ValueError(f"k: at most {op.dim // (2 if which == 'both' else 1)} for a model with "
                         f"{op.dim} parameters")
    if v0 is None and start == "auto":
        v0 = _output_gradient_start(op, k, which)
    v_start = _start_vector(op, v0, seed)
    out = _eigen(op, k, which, tol, max_iter, v_start, False)
    if difference_products_trusted(out, tol):
        raise_if_failed(out, throw)
        return out
    # The forward differences were not accurate enough for tol (their step grows with ‖θ‖:
    # a large or diverged parameter vector): the same run with exact products.
    exact = _eigen(hvp_operator(model, X, Y, loss, precision=precision, chunk_size=chunk_size,
                                hvp="exact"), k, which, tol, max_iter, v_start, False)
    exact.iterations += out.iterations
    exact.info["hvp_fallback"] = (f"difference products failed the symmetry check "
                                  f"(asymmetry {out.info['asymmetry']:.1e} > 0.1·tol)")
    raise_if_failed(exact, throw)
    return exact


def difference_products_trusted(result: Any, tol: float,
                                products: Optional[str] = None) -> bool:
    """Whether a run on forward-difference products (``products``, default
    ``result.info["hvp"]``) can stand: its basis showed them symmetric to 0.1·tol relative to
    max|λ| (``info["asymmetry"]``; a run that stopped on a non-finite product has nothing to
    redo). The difference error grows with the step, √eps·max(1, ‖θ‖): at ‖θ‖ ~ 1e8 it reaches
    the eigenvalues themselves (a 17 % error with a converged residual, measured), and the
    residual test cannot see it, since it uses the same products."""
    if (products or result.info.get("hvp")) != "difference" or result.status == _NON_FINITE:
        return True
    return bool(result.info.get("asymmetry", 0.0) <= 0.1 * tol)


def _output_gradient_start(op: Any, k: int, which: str) -> Optional[torch.Tensor]:
    """The Jᵀ1 start (:meth:`HVPOperator.output_gradient`) where it helps: the top eigenvalue
    alone (k = 1, which 'largest') of an operator that can form it, finite and nonzero; else
    None (a random start)."""
    form = getattr(op, "output_gradient", None)
    if form is None or k != 1 or which != "largest":
        return None
    g = form()
    if g is None or not bool(_torch().isfinite(g).all()) or float(g.abs().max()) == 0:
        return None
    return g


def _eigen(op: Any, k, which, tol, max_iter, start, throw) -> HessianEigen:
    max_iter = max(max_iter, 2 * k if which == "both" else k)
    info = {"which": which, "tol": tol, "dim": op.dim, "hvp": getattr(op, "products", "exact")}
    try:
        # The convergence check (a tridiagonal eigenproblem of size m) costs nothing next to
        # an HVP.
        stats: dict = {}
        values, vecs, res, steps, ok, _ = lanczos(op, start, k, which=which, tol=tol,
                                                  max_iter=max_iter, stats=stats)
        info["asymmetry"] = stats["asymmetry"]
    except NonFiniteProductError as err:
        out = _non_finite_eigen(2 * k if which == "both" else k, op, info, err)
    else:
        out = HessianEigen(values=np.asarray(values, dtype=float), vectors=vecs.cpu().numpy(),
                           residuals=np.asarray(res, dtype=float), iterations=steps,
                           status=0 if ok else _MAX_STEPS, info=info)
    out._origin = "hessian_eigenvalues"
    raise_if_failed(out, throw)
    return out


def _non_finite_eigen(n: int, op: Any, info: dict, err: Exception) -> HessianEigen:
    """The result of a run stopped by a non-finite product: n NaN pairs, status non_finite,
    the products spent so far, ``info['error']`` naming the step."""
    return HessianEigen(values=np.full(n, np.nan), vectors=np.full((n, op.dim), np.nan),
                        residuals=np.full(n, np.nan), iterations=op.calls, status=_NON_FINITE,
                        info={**info, "error": str(err)})


def _rademacher(dim: int, gen, device):
    torch = _torch()
    return (torch.randint(0, 2, (dim,), generator=gen, dtype=torch.int8).to(torch.float64)
            * 2 - 1).to(device)


def hessian_trace(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, *,
                  loss: Union[str, Callable, Any] = "mse", n_probes: int = 100, seed: int = 0,
                  precision: str = "float64", chunk_size: Optional[int] = None,
                  throw: bool = True) -> HessianTrace:
    """Hutchinson's estimate tr(H) ≈ (1/n) Σ zᵀHz over Rademacher probes z (seeded), with the
    standard error of the mean (the probes are independent).

    ``throw``: True (default) raises :class:`delyap.IntegrationError` when a Hessian-vector
    product is not finite; False returns the result with ``status`` 3 (non_finite)."""
    torch = _torch()
    n = as_count(n_probes, "n_probes", minimum=2)
    op = hvp_operator(model, X, Y, loss, precision=precision, chunk_size=chunk_size)
    gen = torch.Generator(device="cpu").manual_seed(as_count(seed, "seed", minimum=0))
    samples = np.full(n, np.nan)
    info: dict[str, Any] = {"samples": samples, "dim": op.dim}
    status = 0
    for i in range(n):
        z = _rademacher(op.dim, gen, op.device)
        samples[i] = float(z @ op(z))
        if not math.isfinite(samples[i]):
            # (a NaN mean with status 0 would read as a computed trace)
            status = _NON_FINITE
            info["error"] = (f"probe {i + 1}: the Hessian-vector product is not finite "
                             f"(non-finite parameters or loss?)")
            break
    if status:
        trace = se = math.nan
    else:
        trace, se = float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(n))
    out = HessianTrace(trace=trace, stderr=se, n_probes=n, status=status, info=info)
    out._origin = "hessian_trace"
    raise_if_failed(out, throw)
    return out


def hessian_density(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, *,
                    loss: Union[str, Callable, Any] = "mse", n_probes: int = 10,
                    n_steps: int = 80, seed: int = 0, precision: str = "float64",
                    chunk_size: Optional[int] = None, throw: bool = True) -> HessianDensity:
    """Spectral density of H by stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019).

    Each of ``n_probes`` Rademacher probes runs ``n_steps`` Lanczos steps (fully
    reorthogonalised); the Ritz values θ_i with weights (first component of the Ritz vector)²
    are the Gauss quadrature of the probe's spectral measure, exact for polynomials of degree
    < 2·n_steps. Evaluate with ``result.density(grid, width)``.

    ``throw``: True (default) raises :class:`delyap.IntegrationError` when a Hessian-vector
    product is not finite; False returns the result with ``status`` 3 (non_finite).
    """
    torch = _torch()
    from scipy.linalg import eigh_tridiagonal

    n = as_count(n_probes, "n_probes")
    m = as_count(n_steps, "n_steps")
    op = hvp_operator(model, X, Y, loss, precision=precision, chunk_size=chunk_size)
    m = min(m, op.dim)
    gen = torch.Generator(device="cpu").manual_seed(as_count(seed, "seed", minimum=0))
    nodes, weights = np.zeros((n, m)), np.zeros((n, m))
    info: dict[str, Any] = {"n_steps": m}
    status = 0
    for p in range(n):
        z = _rademacher(op.dim, gen, op.device)
        # Only T is needed: its eigenpairs are the quadrature nodes and weights.
        try:
            _, _, _, steps, _, (alpha, beta) = lanczos(op, z, 1, tol=1e-300, max_iter=m,
                                                       check_every=m, restart=False)
        except NonFiniteProductError as err:
            status, info["error"] = _NON_FINITE, f"probe {p + 1}: {err}"
            nodes[:], weights[:] = np.nan, np.nan
            break
        th, S = eigh_tridiagonal(alpha, beta) if steps > 1 else (alpha.copy(), np.ones((1, 1)))
        nodes[p, :steps], weights[p, :steps] = th, S[0] ** 2
        if steps < m:  # an invariant subspace: the quadrature is exact; pad with zero weights
            nodes[p, steps:] = th[-1]
    out = HessianDensity(nodes=nodes, weights=weights, dim=op.dim, status=status, info=info)
    out._origin = "hessian_density"
    raise_if_failed(out, throw)
    return out
