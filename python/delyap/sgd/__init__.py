"""Dynamical stability of SGD at global minima: Lyapunov exponents and stability maps.

numpy users bring a Gram matrix (:func:`gram_lyapunov`); torch users bring a model and data
(:func:`lyapunov`, :func:`stability_map`, :func:`train_to_interpolation`; needs torch).
"""
from .gram import (GramSpectrum, SGDLyapunovResult, gd_exponent, gram_lyapunov, gram_spectrum,
                   mean_square_exponent)
from .stability_map import StabilityMap, stability_map
from .torch_model import gram_matrix, lyapunov, train_to_interpolation

__all__ = ["gram_lyapunov", "gram_spectrum", "gd_exponent", "mean_square_exponent",
           "GramSpectrum", "SGDLyapunovResult", "StabilityMap", "stability_map", "lyapunov",
           "gram_matrix", "train_to_interpolation"]
