"""Test-only entry points of the C++ core (``_core._testing``): kernels exposed one by one so
that the test suite and the benchmarks can check them against independent references. Not part
of delyap's API: names and signatures may change without notice."""
from ._core import _testing as _t

# Philox4x32-10 (common/rng.hpp): one block, and the uniforms the solvers and kernels draw.
philox4x32 = _t.philox4x32
philox_uniforms = _t.philox_uniforms
# Thin QR kernels of the Lyapunov engines, and which ones iid_product picks for a shape.
householder_qr = _t.householder_qr
blocked_qr = _t.blocked_qr
dense_backend = _t.dense_backend
# One application of the SGD Gram row update and its reduced-coordinate gather.
gram_subtract_rows = _t.gram_subtract_rows
gram_gather_rows = _t.gram_gather_rows
# The Butcher tableau the core uses for a method, as a dict.
tableau = _t.tableau


def solve_network_vector(system, history, t0, t_final, t_eval, options, output):
    """The GPU driver's CPU twin for a network system (rhs.kuramoto / rhs.stuart_landau): the
    same per-component code as the device solver, on host memory."""
    return _t.solve_network_vector(system._args, system._lam, history.to_core(), t0, t_final,
                                   t_eval, options, output)


__all__ = ["philox4x32", "philox_uniforms", "householder_qr", "blocked_qr", "dense_backend",
           "gram_subtract_rows", "gram_gather_rows", "tableau", "solve_network_vector"]
