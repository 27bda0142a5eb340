"""Exceptions and warnings raised by delyap."""
from __future__ import annotations

__all__ = ["IntegrationError", "ConvergenceWarning"]


class IntegrationError(RuntimeError):
    """One or more trajectories did not reach the end of the time span.

    Attributes
    ----------
    solution : DDESolution
        The partial solution; ``solution.status`` says what happened to each trajectory and
        ``solution.t_final`` how far each one got.
    failed : numpy.ndarray
        Indices of the trajectories that failed.
    """

    def __init__(self, message: str, solution=None, failed=None):
        super().__init__(message)
        self.solution = solution
        self.failed = failed


class ConvergenceWarning(UserWarning):
    """An estimate (e.g. a Lyapunov exponent) has not converged to the requested accuracy."""
