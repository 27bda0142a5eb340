"""Matrix-free SGD stability for any twice-differentiable per-sample loss.

The Gram path (:func:`delyap.sgd.model_lyapunov`) needs a squared loss at an exact interpolating
minimum, where H_i = J_iᵀ J_i. For other losses (cross-entropy near an interpolating solution, a
custom loss) the per-sample Hessians are used directly, never as D × D matrices:

1. the normal space is the range of H = (1/N) Σ H_i, found by Lanczos (scipy ``eigsh``) on
   Hessian-vector products of the full loss (``torch.func``: forward-over-reverse);
2. each H_i is restricted to it, Hn_i = Vᵀ H_i V (r × r), from N·r per-sample HVPs;
3. the product of A_ξ = I − (η/B) Σ_{i∈ξ} Hn_i runs in the compiled engine for B = 1
   (a finite matrix set) and in a numpy loop otherwise.

Memory is O(D·r + N·r²): the right tool when r (the normal-space dimension, at most N·c) is
moderate. For squared loss at interpolation both paths agree (tested).
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Callable, Optional, Union

import numpy as np

from .._result import raise_if_failed
from .._validate import as_count, as_positive, as_threads
from ..lyapunov import auto_transient, iid_product, mean_map_time_scale
from .gram import DEFAULT_SAMPLING, SGDLyapunovResult, _check_configs, _sampling_name
from .torch_model import _check_model_and_data, _torch

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["hessian_lyapunov", "per_sample_loss"]


def per_sample_loss(loss: Union[str, Callable]):
    """ℓ(output, target) for one sample: 'mse' (½‖f − y‖²), 'cross_entropy' (class index
    target), or a callable returning a scalar."""
    torch = _torch()
    if callable(loss):
        return loss
    if loss == "mse":
        def mse(out, y):
            if out.numel() != y.numel():  # (the difference would broadcast, unnoticed)
                raise ValueError(f"Y: a sample's target has {y.numel()} values, the model "
                                 f"gives {out.numel()} outputs")
            return 0.5 * ((out.reshape(-1) - y.reshape(-1)) ** 2).sum()
        return mse
    if loss == "cross_entropy":
        def cross_entropy(out, y):
            if torch.is_floating_point(y):  # (.long() would truncate a label of 0.7 to 0)
                raise TypeError(f"Y: 'cross_entropy' takes class indices (an integer tensor), "
                                f"got {y.dtype}")
            return torch.nn.functional.cross_entropy(out.reshape(1, -1), y.reshape(1).long())
        return cross_entropy
    raise ValueError(f"loss: expected 'mse', 'cross_entropy' or a callable, got {loss!r}")


def flat_model(model):
    """(θ₀, call): the model's trainable parameters as one flat vector θ₀ and
    ``call(θ, inputs)``, the model evaluated at the flat parameters θ (buffers and frozen
    parameters held at their values): the functional form every Hessian computation uses."""
    torch = _torch()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    sizes = [p.numel() for _, p in named]
    fixed = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    fixed.update(dict(model.named_buffers()))
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])

    def call(theta, inputs):
        parts = torch.split(theta, sizes)
        params = {n: t.reshape(s) for n, t, s in zip(names, parts, shapes)}
        return torch.func.functional_call(model, {**params, **fixed}, (inputs,))

    return theta0, call


def _flat_loss_functions(model, X, Y, loss_fn):
    """ℓ_i(θ_flat) for one sample and the full-data loss, as functions of a flat vector."""
    torch = _torch()
    theta0, call = flat_model(model)

    def sample_loss(theta, x, y):
        return loss_fn(call(theta, x.unsqueeze(0)).reshape(-1), y)

    def full_loss(theta):
        losses = torch.func.vmap(sample_loss, in_dims=(None, 0, 0))(theta, X, Y)
        return losses.mean()

    return theta0, sample_loss, full_loss


def hessian_lyapunov(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, lr: float,
                     batch_size: int, *, loss: Union[str, Callable] = "cross_entropy",
                     steps: int, n_exponents: int = 1, normal_dim: Optional[int] = None,
                     rank_tol: float = 1e-8, sampling: str = DEFAULT_SAMPLING, seed: int = 0,
                     transient: Optional[int] = None, renorm_interval: int = 1,
                     chunk_size: int = 16, threads: Optional[int] = None,
                     throw: bool = True) -> SGDLyapunovResult:
    """Lyapunov exponents of SGD linearised at the model's parameters, for any per-sample loss.

    ``normal_dim`` caps the Lanczos basis (default: min(N·c, D − 1)); eigenvalues of H below
    ``rank_tol``·max are treated as tangent (zero) directions and dropped. ``sampling`` and
    ``transient`` as in :func:`delyap.sgd.gram_lyapunov` (the automatic transient from the
    time scale of GD, log|1 − η h_j| over the Hessian's eigenvalues h_j). ``threads``: worker
    threads of the compiled product (B = 1); ``throw`` as in :func:`delyap.sgd.gram_lyapunov`
    (a product that overflows raises :class:`delyap.IntegrationError` carrying the result).
    """
    torch = _torch()
    from scipy.sparse.linalg import LinearOperator, eigsh

    sampling = _sampling_name(sampling)
    n_threads = as_threads(threads)
    _check_model_and_data(model, X, Y)
    lr_a, b_a = _check_configs(lr, batch_size, X.shape[0], sampling)
    if lr_a.ndim or b_a.ndim:
        raise ValueError("lr, batch_size: hessian_lyapunov takes one configuration")
    eta, B = float(lr_a), int(b_a)
    loss_fn = per_sample_loss(loss)
    theta0, sample_loss, full_loss = _flat_loss_functions(model, X, Y, loss_fn)
    D, N = theta0.numel(), X.shape[0]
    dtype = theta0.dtype

    grad_full = torch.func.grad(full_loss)

    def full_hvp(v):
        t = torch.as_tensor(v, dtype=dtype).reshape(-1)
        return torch.func.jvp(grad_full, (theta0,), (t,))[1].detach().cpu().numpy()

    with torch.no_grad():
        c = int(model(X[:1]).numel())
    r_max = min(N * c, D - 1) if normal_dim is None else as_count(normal_dim, "normal_dim",
                                                                   maximum=D - 1)
    if r_max < 1:
        raise ValueError("model: too few parameters for a normal space")
    op = LinearOperator((D, D), matvec=full_hvp, dtype=np.float64)
    w, V = eigsh(op, k=r_max, which="LM", v0=np.random.default_rng(seed).standard_normal(D))
    keep = np.abs(w) > as_positive(rank_tol, "rank_tol") * np.abs(w).max()
    # N·c bounds H's rank only where the residual term vanishes (an interpolating minimum).
    # Elsewhere the basis cuts curvature off: one product on a seeded direction outside it
    # tells (zero up to rounding at an interpolating point).
    outside = np.random.default_rng(seed + 1).standard_normal(D)
    outside -= V @ (V.T @ outside)
    outside /= np.linalg.norm(outside)
    cut = float(np.linalg.norm(full_hvp(outside))) / float(np.abs(w).max())
    if cut > max(rank_tol, 1e-6):
        warnings.warn(f"hessian_lyapunov: H has curvature outside its {r_max} kept directions "
                      f"(‖H u‖ = {cut:.2g}·λ_max for a unit u orthogonal to them): the point "
                      "is not an interpolating minimum, or normal_dim is too small; the "
                      "exponents are those of the truncated space (info['cut_curvature'])",
                      stacklevel=2)
    order = np.argsort(w[keep])[::-1]
    w, V = w[keep][order], V[:, keep][:, order]
    r = V.shape[1]
    k = as_count(n_exponents, "n_exponents", maximum=r)
    Vt = torch.as_tensor(V, dtype=dtype)

    # Hn_i = Vᵀ H_i V: per-sample HVPs on the r basis vectors, vmapped over vectors and samples.
    grad_i = torch.func.grad(sample_loss)

    def hvp_i(x, y, v):
        return torch.func.jvp(lambda th: grad_i(th, x, y), (theta0,), (v,))[1]

    per_sample = torch.func.vmap(torch.func.vmap(hvp_i, in_dims=(None, None, 1), out_dims=1),
                                 in_dims=(0, 0, None))
    Hn = np.empty((N, r, r))
    for s in range(0, N, chunk_size):
        HV = per_sample(X[s:s + chunk_size], Y[s:s + chunk_size], Vt)  # (n, D, r)
        Hn[s:s + chunk_size] = torch.einsum("dr,nds->nrs", Vt, HV).detach().cpu().numpy()
    Hn = 0.5 * (Hn + Hn.transpose(0, 2, 1))

    eye = np.eye(r)
    with np.errstate(divide="ignore"):
        tau = float(mean_map_time_scale(np.log(np.abs(1 - eta * w)), k)[0])
    if transient is None:
        transient = auto_transient(tau, as_count(steps, "steps"))
    if B == 1 and sampling != "epochs":  # one index: with and without replacement coincide
        res = iid_product(eye[None] - eta * Hn, steps=steps, n_exponents=k, transient=transient,
                          seed=seed, renorm_interval=renorm_interval, threads=n_threads or None,
                          throw=False)
    else:
        state = {"perm": None, "pos": N}

        def sampler(rng):
            if sampling == "iid":
                idx = rng.integers(0, N, size=B)
            elif sampling == "without":
                idx = rng.choice(N, size=B, replace=False)
            else:
                if state["pos"] + B > N:
                    state["perm"], state["pos"] = rng.permutation(N), 0
                idx = state["perm"][state["pos"]: state["pos"] + B]
                state["pos"] += B
            return eye - (eta / B) * Hn[idx].sum(axis=0)

        res = iid_product(sampler, steps=steps, n_exponents=k, transient=transient, seed=seed,
                          renorm_interval=renorm_interval, throw=False)
    hess_eigs = w
    mu = float(np.log(np.max(np.abs(1 - eta * hess_eigs))))
    out = SGDLyapunovResult(exponents=res.exponents, stderr=res.stderr, gd_exponent=mu,
                            mean_square_exponent=None, normal_dim=r, lr=eta, batch_size=B,
                            sampling=sampling, steps=int(steps), running=res.running,
                            running_t=res.running_t, status=res.status,
                            info={**res.info, "hessian_eigenvalues": hess_eigs,
                                  "path": "hessian", "time_scale": tau,
                                  "cut_curvature": cut})
    out._origin = "hessian_lyapunov"
    raise_if_failed(out, throw)
    return out
