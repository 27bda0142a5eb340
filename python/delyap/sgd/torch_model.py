"""torch models → Gram matrices and SGD Lyapunov exponents (torch imported lazily).

The per-sample output Jacobians come from ``torch.func`` (``vmap`` of ``jacrev`` over a
``functional_call``), in chunks of samples; K = J Jᵀ is accumulated in float64. When the full
Jacobian (N·c × D doubles) fits ``memory_budget`` bytes it is kept and multiplied once;
otherwise K is built block by block, recomputing chunk Jacobians (memory O(chunk · D)).
Models whose batch-norm, dropout or similar layers are in training mode are rejected (call
``model.eval()``): the linearisation needs a deterministic function of each sample. X must have
the parameters' dtype.
"""
from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, NamedTuple, Optional

import numpy as np

from .._system import ArrayLike
from .._validate import as_count, as_positive
from ..errors import ConvergenceWarning
from .gram import DEFAULT_SAMPLING, SGDLyapunovResult, gram_lyapunov

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["GramMatrix", "gram_matrix", "model_lyapunov", "lyapunov", "train_to_interpolation",
           "interpolation_report"]


def _torch():
    try:
        import torch
        import torch.func  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("this function needs PyTorch: pip install 'delyap[torch]'") from None
    return torch


def _check_model_and_data(model, X, Y=None):
    torch = _torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model: has no parameters that require grad")
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X: expected a torch.Tensor, got {type(X).__name__}")
    device = next(iter(params.values())).device
    if X.device != device:
        raise ValueError(f"X: is on {X.device} but the model is on {device}")
    if X.shape[0] == 0:
        raise ValueError("X: empty data set")
    _check_dtypes(params, X)
    _check_eval_mode(model)
    if not torch.isfinite(X).all():
        raise ValueError("X: contains NaN or inf")
    if Y is not None:
        if not isinstance(Y, torch.Tensor):
            raise TypeError(f"Y: expected a torch.Tensor, got {type(Y).__name__}")
        if Y.device != device:
            raise ValueError(f"Y: is on {Y.device} but the model is on {device}")
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"X, Y: lengths differ ({X.shape[0]} samples vs {Y.shape[0]} targets)")
        if not torch.isfinite(Y).all():
            raise ValueError("Y: contains NaN or inf")
    return params


def _check_dtypes(params: dict, X) -> None:
    """One floating dtype for the parameters and X: torch does not promote inside a layer."""
    dtypes = {p.dtype for p in params.values()}
    if len(dtypes) > 1:
        kinds = ", ".join(sorted(str(d).replace("torch.", "") for d in dtypes))
        raise TypeError(f"model: parameters of mixed dtypes ({kinds}); convert the model to one "
                        f"dtype, e.g. model.double()")
    dtype = dtypes.pop()
    if X.dtype != dtype:
        name = lambda d: str(d).replace("torch.", "")  # noqa: E731
        raise TypeError(f"X: dtype {name(X.dtype)} but the model's parameters are {name(dtype)}; "
                        f"convert the model or the data to float64 (model.double(), X.double())")


def _mode_dependent(module) -> bool:
    """Whether ``module`` computes something else in training mode than in eval mode: batch
    statistics and their running-average updates (batch norm, instance norm that tracks
    running stats) or random masks (dropout, RReLU, attention dropout)."""
    torch = _torch()
    nn = torch.nn
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return bool(module.track_running_stats)
    if isinstance(module, (nn.modules.dropout._DropoutNd, nn.RReLU)):
        return True
    if isinstance(module, nn.MultiheadAttention):
        return module.dropout > 0
    return False


def _check_eval_mode(model) -> None:
    """Per-sample Jacobians need a deterministic function of one sample: no module may use
    batch statistics or random masks (which torch.func reports only as vmap errors)."""
    batch_norm = _torch().nn.modules.batchnorm._BatchNorm
    for name, m in model.named_modules():
        where = f"'{name}' ({type(m).__name__})" if name else type(m).__name__
        if m.training and _mode_dependent(m):
            raise ValueError(f"model: {where} is in training mode, where its output depends on "
                             f"the batch or on random draws; call model.eval() first")
        if isinstance(m, batch_norm) and m.running_mean is None:
            raise ValueError(f"model: {where} normalises with batch statistics in every mode "
                             f"(track_running_stats=False), so a sample's output depends on the "
                             f"others; it needs running statistics and model.eval()")


def _per_sample_function(model):
    torch = _torch()
    buffers = {n: b for n, b in model.named_buffers()}
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}

    def f(params, x):
        out = torch.func.functional_call(model, {**params, **frozen, **buffers}, (x.unsqueeze(0),))
        return out.reshape(-1)

    return f


def _jacobian_rows(f, params, X_chunk):
    """(n·c, D) float64 Jacobian of the chunk's outputs, parameters flattened in order."""
    torch = _torch()
    jac = torch.func.vmap(torch.func.jacrev(f), in_dims=(None, 0))(params, X_chunk)
    n = X_chunk.shape[0]
    parts = [j.reshape(n, j.shape[1], -1) for j in jac.values()]
    J = torch.cat(parts, dim=2)
    return J.reshape(n * J.shape[1], -1).to(torch.float64)


class GramMatrix(NamedTuple):
    """What :func:`gram_matrix` returns; unpacks as ``K, n_outputs = gram_matrix(model, X)``."""

    K: np.ndarray
    """K = J Jᵀ, shape (N·c, N·c), rows grouped by sample (sample i owns rows i·c … i·c + c − 1)."""
    n_outputs: int
    """c, the model's outputs per sample (what :func:`delyap.sgd.gram_lyapunov` takes as
    ``outputs``)."""


def gram_matrix(model: torch.nn.Module, X: torch.Tensor, *, chunk_size: Optional[int] = None,
                memory_budget: int = 2 * 1024**3) -> GramMatrix:
    """The Gram matrix K = J Jᵀ of the model's per-sample output gradients.

    Returns a :class:`GramMatrix` ``(K, n_outputs)``: K of shape (N·c, N·c) with rows grouped by
    sample (sample i owns rows i·c … i·c + c − 1), and c, the outputs per sample.
    """
    torch = _torch()
    params = _check_model_and_data(model, X)
    params = {n: p.detach() for n, p in params.items()}
    D = sum(p.numel() for p in params.values())
    f = _per_sample_function(model)
    N = X.shape[0]
    with torch.no_grad():
        c = int(f(params, X[0]).numel())
    if chunk_size is None:  # about 256 MB of float64 Jacobian per chunk
        chunk_size = max(1, min(N, (256 * 1024**2) // max(1, 8 * c * D)))
    chunk_size = as_count(chunk_size, "chunk_size")
    chunks = [slice(s, min(N, s + chunk_size)) for s in range(0, N, chunk_size)]
    K = torch.zeros((N * c, N * c), dtype=torch.float64, device=X.device)
    if 8 * N * c * D <= memory_budget:
        J = torch.cat([_jacobian_rows(f, params, X[s]) for s in chunks])
        K = J @ J.T
    else:  # block by block; recompute chunk Jacobians instead of storing all of J
        for a, sa in enumerate(chunks):
            Ja = _jacobian_rows(f, params, X[sa])
            for sb in chunks[: a + 1]:
                Jb = Ja if sb == sa else _jacobian_rows(f, params, X[sb])
                blk = Ja @ Jb.T
                K[sa.start * c: sa.stop * c, sb.start * c: sb.stop * c] = blk
                K[sb.start * c: sb.stop * c, sa.start * c: sa.stop * c] = blk.T
    return GramMatrix(K.cpu().numpy(), c)


def interpolation_report(model, X, Y) -> dict:
    """Residuals and the full-batch gradient norm of L = (1/N) Σ ½‖f_i − y_i‖²."""
    torch = _torch()
    params = _check_model_and_data(model, X, Y)
    out = model(X)
    pred, target = out.reshape(X.shape[0], -1), Y.reshape(X.shape[0], -1)
    if pred.shape[1] != target.shape[1]:  # (they would broadcast)
        raise ValueError(f"Y: {target.shape[1]} target values per sample, the model gives "
                         f"{pred.shape[1]} outputs")
    res = (pred - target).to(torch.float64)
    loss = 0.5 * (res**2).sum() / X.shape[0]
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    gnorm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads if g is not None))
    y_scale = float(Y.detach().double().pow(2).mean().sqrt())
    res = res.detach()
    return {"residual_rms": float(res.pow(2).mean().sqrt()), "residual_max": float(res.abs().max()),
            "loss": float(loss.detach()), "grad_norm": gnorm, "target_rms": y_scale}


def _check_interpolation(model, X, Y, tol: float, check: str) -> dict:
    if check not in ("raise", "warn", "ignore"):
        raise ValueError(f"check: expected 'raise', 'warn' or 'ignore', got {check!r}")
    tol = as_positive(tol, "tol")
    rep = interpolation_report(model, X, Y)
    # (written so that NaN residuals, from non-finite parameters, count as not interpolating)
    bad = not rep["residual_rms"] <= tol * max(1.0, rep["target_rms"])
    if bad and check != "ignore":
        msg = (f"model: does not interpolate the data (residual rms {rep['residual_rms']:.3g}, "
               f"max {rep['residual_max']:.3g}, gradient norm {rep['grad_norm']:.3g}; tolerance "
               f"{tol:g} × max(1, rms(Y))). The linearisation assumes a global minimum with zero "
               f"loss: train further (delyap.sgd.train_to_interpolation) or pass check='warn'.")
        if check == "raise":
            raise ValueError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return rep


def model_lyapunov(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, lr: ArrayLike,
                   batch_size: ArrayLike, *, steps: int, n_exponents: int = 1,
                   loss: str = "mse", sampling: str = DEFAULT_SAMPLING, seed: int = 0,
                   transient: Optional[int] = None, renorm_interval: int = 10,
                   mean_square: bool = False, check: str = "raise", tol: float = 1e-5,
                   threads: Optional[int] = None, chunk_size: Optional[int] = None,
                   device: Optional[str] = None, throw: bool = True) -> SGDLyapunovResult:
    """Lyapunov exponents of SGD (η = lr, batch B) linearised at the model's current parameters.

    The model must sit at an interpolating minimum of L = (1/N) Σ ½‖f(x_i) − y_i‖² (checked:
    ``check`` = 'raise' (default), 'warn' or 'ignore'; ``tol`` is relative to max(1, rms(Y))).
    λ₁ < 0: SGD with these settings can converge to this minimum; λ₁ > 0: it cannot.
    Works for vector outputs (N·c rows) and any ``nn.Module`` (buffers are kept fixed).
    ``device``: where the SGD product runs ("cpu" or "cuda"; None: "cuda" when the model's
    parameters are on a GPU). The Jacobians are computed by torch wherever the model lives.
    ``sampling``, ``transient`` and ``throw`` are those of :func:`delyap.sgd.gram_lyapunov`:
    batches of B distinct samples by default (B = N is gradient descent) and a transient set
    from the time scale of the product.
    """
    if device is None:
        first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
        device = "cuda" if first is not None and first.device.type == "cuda" else "cpu"
    if loss != "mse":
        raise ValueError(f"loss: only 'mse' (ℓ_i = ½‖f_i − y_i‖²) is supported by the Gram "
                         f"path, got {loss!r}")
    _check_model_and_data(model, X, Y)
    rep = _check_interpolation(model, X, Y, tol, check)
    K, c = gram_matrix(model, X, chunk_size=chunk_size)
    res = gram_lyapunov(K, lr, batch_size, steps=steps, n_exponents=n_exponents, sampling=sampling,
                        transient=transient, seed=seed, outputs=c, renorm_interval=renorm_interval,
                        mean_square=mean_square, threads=threads, device=device, throw=throw)
    res.info["interpolation"] = rep
    return res


def lyapunov(*args, **kwargs) -> SGDLyapunovResult:
    """Deprecated name of :func:`model_lyapunov` (it read as the :mod:`delyap.lyapunov` module)."""
    warnings.warn("delyap.sgd.lyapunov is renamed delyap.sgd.model_lyapunov (the Lyapunov "
                  "exponents of SGD on a torch model); the old name will be removed",
                  DeprecationWarning, stacklevel=2)
    return model_lyapunov(*args, **kwargs)


def train_to_interpolation(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, *,
                           tol: float = 1e-16, max_iter: int = 200,
                           memory_budget: int = 1024**3, verbose: bool = False) -> dict:
    """Drive a (small, over-parameterised) model to an interpolating minimum of the squared loss.

    Levenberg–Marquardt in its minimum-norm form, θ ← θ − Jᵀ (J Jᵀ + μ I)⁻¹ r, which converges
    quadratically onto the manifold of interpolating solutions when J has full row rank (the
    over-parameterised case); μ adapts (smaller after a successful step). Needs the full
    Jacobian (N·c × D doubles within ``memory_budget``); larger models fall back to full-batch
    L-BFGS. Stops when L = (1/N) Σ ½‖f_i − y_i‖² ≤ ``tol``. Returns the final
    :func:`interpolation_report` plus the iteration count. For demos and tests; large models
    want their own training loop.
    """
    torch = _torch()
    params = _check_model_and_data(model, X, Y)
    n = X.shape[0]
    D = sum(p.numel() for p in params.values())
    c = int(model(X[:1]).numel())

    def residual():
        with torch.no_grad():
            return (model(X).reshape(n, -1) - Y.reshape(n, -1)).reshape(-1).to(torch.float64)

    if 8 * n * c * D > memory_budget:
        return _train_lbfgs(model, X, Y, list(params.values()), tol, max_iter, verbose)
    f = _per_sample_function(model)
    plist = list(params.values())
    r = residual()
    loss = 0.5 * float(r @ r) / n
    mu, it = None, 0
    while it < max_iter and loss > tol:
        it += 1
        J = _jacobian_rows(f, {k: p.detach() for k, p in params.items()}, X)
        K = J @ J.T
        if mu is None:
            mu = 1e-3 * float(torch.trace(K)) / K.shape[0]
        theta0 = torch.nn.utils.parameters_to_vector(plist).detach().clone()
        for _ in range(30):  # raise the damping until the step decreases the loss
            a = torch.linalg.solve(K + mu * torch.eye(K.shape[0], dtype=K.dtype), r)
            step = (J.T @ a).to(theta0.dtype)
            torch.nn.utils.vector_to_parameters(theta0 - step, plist)
            r_new = residual()
            new = 0.5 * float(r_new @ r_new) / n
            if new < loss:
                r, loss, mu = r_new, new, max(mu / 3.0, 1e-15)
                break
            mu *= 4.0
        else:
            torch.nn.utils.vector_to_parameters(theta0, plist)
            break
        if verbose:
            print(f"train_to_interpolation: iteration {it}, loss {loss:.3e}, damping {mu:.2e}")
    return _final_report(model, X, Y, tol, it, "iterations", stacklevel=3)


def _train_lbfgs(model, X, Y, params, tol, max_iter, verbose) -> dict:
    torch = _torch()
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=20, history_size=50, tolerance_grad=1e-14,
                            tolerance_change=1e-16, line_search_fn="strong_wolfe")
    n = X.shape[0]

    def closure():
        opt.zero_grad()
        res = model(X).reshape(n, -1) - Y.reshape(n, -1)
        loss = 0.5 * (res**2).sum() / n
        loss.backward()
        return loss

    it = 0
    while it < max_iter:
        loss = float(opt.step(closure).detach())
        it += 1
        if verbose:
            print(f"train_to_interpolation (L-BFGS): round {it}, loss {loss:.3e}")
        if loss <= tol or not math.isfinite(loss):
            break
    return _final_report(model, X, Y, tol, it, "L-BFGS rounds", stacklevel=4)


def _final_report(model, X, Y, tol, iterations, unit, stacklevel) -> dict:
    """The report train_to_interpolation returns, warning (at the user's call, ``stacklevel``
    frames up) when the loss stayed above tol."""
    rep = interpolation_report(model, X, Y)
    rep["iterations"] = iterations
    if not rep["loss"] <= tol:  # (a NaN loss, from non-finite parameters, warns too)
        warnings.warn(f"train_to_interpolation: loss {rep['loss']:.3g} above tol {tol:g} after "
                      f"{iterations} {unit}", ConvergenceWarning, stacklevel=stacklevel)
    return rep
