"""Depth-wise Lyapunov spectra of deep networks (signal propagation, vanishing/exploding
gradients).

A network x_l = F_l(x_{l−1}) is a dynamical system in depth; the exponents of the product of its
layer-to-layer Jacobians J_l = ∂F_l/∂x_{l−1},

    λ_i = (1/L) Σ_l log R_ii^(l),    J_l Q_{l−1} = Q_l R^(l)    (QR accumulation),

measure how perturbations (and, by transposition, back-propagated gradients) grow per layer:
λ₁ > 0 chaotic (exploding), λ₁ < 0 ordered (vanishing), λ₁ = 0 the edge of chaos where deep
networks train (Poole et al. 2016; Schoenholz et al. 2017; Pennington et al. 2017).

* :func:`layer_spectrum`: a torch model (``nn.Sequential``: a layer starts at each child with
  parameters and takes the parameter-free children that follow, e.g. Linear + Tanh; residual
  blocks are children with parameters) or a list of layer callables; Jacobian-frame products
  by ``torch.func.jvp``, in float64, per input, averaged over inputs with standard errors.
* :func:`layer_spectrum_sweep`: random networks over a (σ_w, σ_b) grid in C++ (layers drawn on
  the fly from the counter-based generator and shared by the grid points, which run in
  parallel, GIL released).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from . import _core
from ._result import STATUS_CODE, Result, raise_if_failed
from ._system import ArrayLike
from ._validate import as_count, as_float_array, as_positive, as_threads

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["LayerSpectrum", "LayerSweep", "layer_spectrum", "layer_spectrum_sweep",
           "random_network_draws", "ACTIVATIONS"]

ACTIVATIONS = {"linear": 0, "tanh": 1, "relu": 2}


@dataclass
class LayerSpectrum(Result):
    """Depth-wise Lyapunov exponents of one network.

    Attributes
    ----------
    exponents, stderr : ndarray (k,)
        Per-layer exponents (mean over inputs, largest first) and their standard errors over
        inputs (NaN for one input).
    per_input : ndarray (n_inputs, k)
        The exponents of each input.
    layer_rates : ndarray (L, k)
        log R_ii of each layer, averaged over inputs (the local expansion rates), each
        input's columns in the order of its sorted exponents: their mean over layers is
        ``exponents``.
    depth : int
        L, the number of layers the exponents are normalised by.
    status : int
        0; 11 (lost_direction) where a Jacobian annihilated a direction (a dead ReLU layer:
        log 0); 3 (non_finite) where a Jacobian was not finite.
    """

    exponents: np.ndarray
    stderr: np.ndarray
    per_input: np.ndarray
    layer_rates: np.ndarray
    depth: int
    status: int = 0
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{e:.5g} ± {s:.2g}" for e, s in zip(self.exponents, self.stderr))
        return f"LayerSpectrum(depth {self.depth}: [{pairs}])"


def _torch():
    from .sgd.torch_model import _torch as t

    return t()


def _split_layers(model) -> list[Callable]:
    """The layers of an nn.Sequential: each child with parameters opens a layer, parameter-free
    children (activations) join the layer before them."""
    torch = _torch()
    if isinstance(model, torch.nn.Sequential):
        groups: list[list] = []
        for child in model:
            if any(True for _ in child.parameters()) or not groups:
                groups.append([child])
            else:
                groups[-1].append(child)
        return [torch.nn.Sequential(*g) for g in groups]
    if isinstance(model, torch.nn.Module):
        return [model]
    if isinstance(model, (list, tuple)) and model and all(callable(f) for f in model):
        return list(model)
    raise TypeError(f"model_or_layers: expected an nn.Sequential, an nn.Module or a list of "
                    f"layer callables, got {type(model).__name__}")


def layer_spectrum(model_or_layers: Union[torch.nn.Module, Sequence[Callable]], X: torch.Tensor,
                   n_exponents: int = 1, *, q0: Optional[ArrayLike] = None,
                   seed: int = 0, throw: bool = True) -> LayerSpectrum:
    """Lyapunov exponents (per layer) of the product of a network's layer Jacobians.

    Parameters
    ----------
    model_or_layers : nn.Sequential, nn.Module or list of callables
        The network; each layer maps a batch (n, d_in) to (n, d_out).
    X : tensor (n_inputs, d)
        Inputs: the exponents are computed along each input's forward pass and averaged.
    n_exponents : int
        k, at most the smallest width along the way.
    q0 : array (d, k), optional
        Start frame (orthonormalised); default a seeded random orthonormal one.
    seed : int
        Seed of the default start frame.
    throw : bool
        True (default): a direction annihilated by a layer (log 0) raises
        :class:`delyap.IntegrationError`; False: ``status`` is 11 (lost_direction), or 3
        (non_finite) for a Jacobian that is not finite.
    """
    torch = _torch()
    layers = _split_layers(model_or_layers)
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X: expected a torch.Tensor, got {type(X).__name__}")
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X: expected shape (n_inputs, d) with n_inputs ≥ 1, got {tuple(X.shape)}")
    if isinstance(model_or_layers, torch.nn.Module):
        params = list(model_or_layers.parameters())
        dtype = params[0].dtype if params else X.dtype
        if X.dtype != dtype:
            raise TypeError(f"X: dtype {X.dtype} but the model's parameters are {dtype}")
        if dtype != torch.float64:
            raise TypeError("model_or_layers: exponents need float64 (model.double(), "
                            "X.double()): per-layer rates are averaged over many layers")
    elif X.dtype != torch.float64:
        # (callables: their dtype shows only in X; float32 rates would be averaged as well)
        raise TypeError(f"X: exponents need float64 inputs (X.double()), got {X.dtype}")
    d = int(X.shape[1])
    k = as_count(n_exponents, "n_exponents", maximum=d)
    if q0 is None:
        rng = np.random.default_rng(as_count(seed, "seed", minimum=0))
        q0_np = np.linalg.qr(rng.standard_normal((d, k)))[0]
    else:
        q0_np = as_float_array(q0, "q0", ndim=(2,))
        if q0_np.shape != (d, k):
            raise ValueError(f"q0: expected shape ({d}, {k}), got {q0_np.shape}")
        q0_np, r0 = np.linalg.qr(q0_np)
        r0 = np.abs(np.diag(r0))
        if not (np.all(np.isfinite(r0)) and r0.min() > 1e-12 * r0.max()):
            raise ValueError(f"q0: expected {k} finite, linearly independent columns")
    n = int(X.shape[0])
    x = X.detach()
    Q = torch.as_tensor(q0_np, dtype=x.dtype, device=x.device).expand(n, d, k).clone()
    rates = np.zeros((len(layers), n, k))
    status = 0
    with torch.no_grad():
        for li, layer in enumerate(layers):
            def one(xi, layer=layer):
                return layer(xi.unsqueeze(0)).squeeze(0)

            def push(xi, Qi, one=one):
                # J Q column by column: forward-mode derivatives, one jvp per direction.
                def jv(q):
                    return torch.func.jvp(one, (xi,), (q,))[1]
                return one(xi), torch.func.vmap(jv, in_dims=1, out_dims=1)(Qi)

            x_new, JQ = torch.func.vmap(push)(x, Q)
            if JQ.shape[1] < k:
                raise ValueError(f"n_exponents: layer {li} has width {JQ.shape[1]} < {k}")
            Q, R = torch.linalg.qr(JQ)
            diag = torch.diagonal(R, dim1=-2, dim2=-1).abs()
            with np.errstate(divide="ignore"):
                rates[li] = np.log(diag.cpu().numpy())
            x = x_new
    if np.any(np.isnan(rates) | (rates == np.inf)):
        status = STATUS_CODE["non_finite"]
    elif np.any(rates == -np.inf):
        status = STATUS_CODE["lost_direction"]
    per_input = rates.sum(axis=0) / len(layers)
    # Exponents sorted per input: QR keeps the order of the frame, which matches the ordering
    # of the exponents only asymptotically; report the sorted spectrum, and each input's layer
    # rates in that same order (so their mean over layers is ``exponents``).
    order = np.argsort(-per_input, axis=1, kind="stable")
    per_input = np.take_along_axis(per_input, order, axis=1)
    rates = np.take_along_axis(rates, order[None, :, :], axis=2)
    mean = per_input.mean(axis=0)
    se = per_input.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(k, np.nan)
    out = LayerSpectrum(exponents=mean, stderr=se, per_input=per_input,
                        layer_rates=rates.mean(axis=1), depth=len(layers), status=status,
                        info={"n_inputs": n})
    out._origin = "layer_spectrum"
    raise_if_failed(out, throw)
    return out


@dataclass
class LayerSweep(Result):
    """Depth-wise exponents of random networks over a (σ_w, σ_b) grid.

    Attributes
    ----------
    sigma_w, sigma_b : ndarray
        The grid axes; ``exponents[i, j]`` belongs to (sigma_w[i], sigma_b[j]).
    exponents, stderr : ndarray (n_w, n_b, k)
        Per-layer exponents (mean over inputs) and standard errors over inputs.
    per_input : ndarray (n_w, n_b, n_inputs, k)
    status : ndarray of int (n_w, n_b)
    """

    sigma_w: np.ndarray
    sigma_b: np.ndarray
    exponents: np.ndarray
    stderr: np.ndarray
    per_input: np.ndarray
    status: np.ndarray
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        lead = self.exponents[..., 0]
        return (f"LayerSweep({self.sigma_w.size} × {self.sigma_b.size} (σ_w, σ_b) grid, "
                f"{self.exponents.shape[-1]} exponent(s); λ1 from {np.nanmin(lead):.4g} to "
                f"{np.nanmax(lead):.4g})")

    def edge(self, index: int = 0) -> np.ndarray:
        """σ_w where exponent ``index`` (default λ₁: the order-to-chaos edge) first crosses 0,
        per σ_b column (linear interpolation between grid points; NaN where it does not)."""
        lam = self.exponents[..., index]
        out = np.full(lam.shape[1], np.nan)
        for j in range(lam.shape[1]):
            s = np.sign(lam[:, j])
            idx = np.flatnonzero(s[:-1] * s[1:] < 0)
            if idx.size:
                i = idx[0]
                a, b = lam[i, j], lam[i + 1, j]
                out[j] = self.sigma_w[i] + (self.sigma_w[i + 1] - self.sigma_w[i]) * a / (a - b)
        return out


def _activation_code(activation: str) -> int:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return ACTIVATIONS[activation]


def layer_spectrum_sweep(width: int, depth: int, sigma_w: ArrayLike, sigma_b: ArrayLike, *,
                         activation: str = "tanh", n_exponents: int = 1, n_inputs: int = 8,
                         input_scale: float = 1.0, seed: int = 0, threads: Optional[int] = None,
                         throw: bool = True) -> LayerSweep:
    """Depth-wise Lyapunov exponents of random networks, over a (σ_w, σ_b) grid, in C++.

    Layer l: h = W_l x + b_l, x ← φ(h), W_l entries N(0, σ_w²/width), b_l entries N(0, σ_b²);
    inputs with N(0, input_scale²) entries. Every grid point scales the *same* standard normal
    draws, W_l = (σ_w/√N) Z_l and b_l = σ_b z_l (common random numbers: the layers are drawn
    on the fly once per worker for all its grid points, never stored, and the surface
    λ(σ_w, σ_b) is smooth, so its edge carries less noise than independent networks give),
    and runs ``n_inputs`` inputs through it from one random start frame. The standard errors
    are over inputs of that one network shape; they do not cover network-to-network spread
    (change ``seed`` for independent networks). :func:`random_network_draws` returns the
    draws, for checks against :func:`layer_spectrum`.

    Parameters
    ----------
    width, depth : int
        N and L.
    sigma_w, sigma_b : float or 1-D array
        The grid axes.
    activation : {'tanh', 'relu', 'linear'}
    n_exponents, n_inputs, seed :
        k, inputs per grid point, generator seed.
    threads : int, optional
        Worker threads over grid points (default: all cores); results do not depend on it.
    throw : bool
        True (default): a grid point whose product lost a direction (log 0: dead ReLU layers)
        raises :class:`delyap.IntegrationError`; False: its ``status`` is 11 (lost_direction;
        3, non_finite, for a product that is not finite).
    """
    width = as_count(width, "width")
    depth = as_count(depth, "depth")
    k = as_count(n_exponents, "n_exponents", maximum=width)
    n_in = as_count(n_inputs, "n_inputs")
    code = _activation_code(activation)
    sw = as_float_array(sigma_w, "sigma_w", ndim=(0, 1)).reshape(-1)
    sb = as_float_array(sigma_b, "sigma_b", ndim=(0, 1)).reshape(-1)
    if sw.size == 0 or sb.size == 0:
        raise ValueError("sigma_w, sigma_b: empty grid")
    if np.any(sw < 0) or np.any(sb < 0):
        raise ValueError("sigma_w, sigma_b: must be non-negative")
    scale = float(input_scale)
    if not (scale >= 0 and math.isfinite(scale)):
        raise ValueError(f"input_scale: expected a finite value ≥ 0, got {input_scale}")
    W, B = np.meshgrid(sw, sb, indexing="ij")
    raw = _core.random_network_sweep(np.ascontiguousarray(W.ravel()),
                                     np.ascontiguousarray(B.ravel()), width, depth, k, n_in,
                                     scale, code, as_count(seed, "seed", minimum=0),
                                     as_threads(threads))
    per_input = -np.sort(-raw["logs"] / depth, axis=2)
    status = np.asarray(raw["status"]).reshape(W.shape)
    per_input = per_input.reshape(W.shape + (n_in, k))
    mean = per_input.mean(axis=2)
    se = (per_input.std(axis=2, ddof=1) / math.sqrt(n_in) if n_in > 1
          else np.full(mean.shape, np.nan))
    bad = status != 0
    mean[bad], se[bad] = np.nan, np.nan
    out = LayerSweep(sigma_w=sw, sigma_b=sb, exponents=mean, stderr=se, per_input=per_input,
                     status=status, info={"width": width, "depth": depth,
                                          "activation": activation, "n_inputs": n_in})
    out._origin = "layer_spectrum_sweep"
    raise_if_failed(out, throw)
    return out


def random_network_draws(width: int, depth: int, sigma_w: float, sigma_b: float, *,
                         n_exponents: int = 1, n_inputs: int = 8, input_scale: float = 1.0,
                         seed: int = 0, stream: int = 0) -> dict[str, np.ndarray]:
    """The network :func:`layer_spectrum_sweep` runs at (σ_w, σ_b) (with ``stream`` 0, its
    draws): ``weights`` (L, N, N), ``biases`` (L, N), ``inputs`` (n_inputs, N) and the start
    frame ``q0`` (N, k)."""
    # Checked as layer_spectrum_sweep checks them (NaN scales gave NaN draws without a word).
    sw, sb, scale = (as_positive(v, name, allow_zero=True) for v, name in
                     ((sigma_w, "sigma_w"), (sigma_b, "sigma_b"), (input_scale, "input_scale")))
    return dict(_core.random_network_draws(
        as_count(width, "width"), as_count(depth, "depth"), as_count(n_exponents, "n_exponents"),
        as_count(n_inputs, "n_inputs"), sw, sb, scale,
        as_count(seed, "seed", minimum=0), as_count(stream, "stream", minimum=0)))
