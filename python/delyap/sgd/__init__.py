"""Dynamical stability of SGD at global minima: Lyapunov exponents and stability maps.

numpy users bring a Gram matrix (:func:`gram_lyapunov`); torch users bring a model and data
(:func:`model_lyapunov`, :func:`stability_map`, :func:`train_to_interpolation`; needs torch).

Which path applies:

* **Gram path** (:func:`model_lyapunov`, :func:`stability_map`, :func:`gram_lyapunov`): squared loss
  at an exact interpolating minimum (residuals ≈ 0, checked), where H_i = J_iᵀ J_i. Cost per
  SGD step O(N·B·c·k) after one Gram matrix (N·c × N·c); scales to D = 10⁶ parameters since
  only K is kept. The default choice.
* **Hessian path** (:func:`hessian_lyapunov`): any twice-differentiable per-sample loss
  (cross-entropy near an interpolating solution, custom losses), or points that are not exact
  minima. Matrix-free: Hessian-vector products give the normal space (Lanczos) and the
  per-sample Hessians restricted to it; memory O(D·r + N·r²), r the normal dimension.
"""
from .gradient_flow import GradientFlowResult, gradient_flow
from .gram import (
                   GramSpectrum,
                   MeanSquareExponent,
                   SGDLyapunovResult,
                   gd_exponent,
                   gram_lyapunov,
                   gram_spectrum,
                   mean_square_exponent,
)
from .hessian_path import hessian_lyapunov
from .monitor import SharpnessMonitor
from .sharpness import (
                   HessianDensity,
                   HessianEigen,
                   HessianTrace,
                   hessian_density,
                   hessian_eigenvalues,
                   hessian_trace,
                   hvp_operator,
)
from .stability_map import StabilityMap, stability_map
from .torch_model import GramMatrix, gram_matrix, lyapunov, model_lyapunov, train_to_interpolation

__all__ = ["gram_lyapunov", "gram_spectrum", "gd_exponent", "mean_square_exponent",
           "MeanSquareExponent",
           "GramSpectrum", "SGDLyapunovResult", "StabilityMap", "stability_map", "model_lyapunov",
           "lyapunov", "GramMatrix", "gram_matrix", "train_to_interpolation", "hessian_lyapunov",
           "hessian_eigenvalues", "hessian_trace", "hessian_density", "hvp_operator",
           "HessianEigen", "HessianTrace", "HessianDensity", "SharpnessMonitor",
           "gradient_flow", "GradientFlowResult"]
