"""torchdde peer for the delay-coupled Kuramoto benchmark (CPU, float32).

torchdde (0.1.3) integrates DDEs with constant delays: the vector field gets
the current state and a list with the state at t - tau_k for each delay k
(read from the history function, or from its dense interpolation of the
solution).  The model is written in the same trig-free, per-delay-class form
as the numpy peer: one sparse CSR product per class for sin and cos of the
delayed phases.

Things that shape its cost and accuracy (read from torchdde's source):

* Dopri5 with an adaptive controller, but steps are capped at the smallest
  delay (it does not iterate over steps longer than a delay).  That cap has a
  bug in 0.1.3: when it triggers, ``tnext`` is computed from the uncapped step
  and the dense output of the next step is built on the wrong interval (with
  K = 0, where theta is exactly linear, r(t) came out wrong by up to 0.05).
  Passing ``dtmax`` just below the smallest delay to the controller keeps the
  cap from ever triggering, which is the workaround used here;
* no tracking of the derivative jumps at t = tau_k (the t = 0 kink propagates
  without steps being placed on it);
* the dense-output store is grown by torch.cat on every accepted step, so
  memory traffic grows like steps^2 x N;
* the step loop is Python, several tensor ops per stage;
* float32 only: the Dopri5 dense output casts its coefficients to float32
  (``FourthOrderPolynomialInterpolation._calculate`` ends in
  ``.type(torch.float32)``, and ``_Dopri5Interpolation.c_mid`` is a float32
  tensor), so a float64 state fails in einsum ("expected scalar type Double
  but found Float").  The delayed values come from that dense output, so the
  whole solve runs in float32, which puts a floor of ~1e-7 relative (phases
  grow to ~100 rad by t = 100: ~1e-5 absolute) under the error it can reach.

torch is limited to one intra-op thread (fairness: every tool runs on one core).
"""

from __future__ import annotations

import time
import warnings

import numpy as np


def _import():
    import torch
    import torchdde

    return torch, torchdde


def solve(prob, t_eval, rtol: float, atol: float, max_steps: int = 200_000):
    """r(t_eval) for the rotating past.  Returns (r, seconds, stats)."""
    torch, torchdde = _import()
    import scipy.sparse as sp

    torch.set_num_threads(1)
    dtype = torch.float32  # see the module docstring: float64 is not possible
    n = prob.n
    delays = prob.delays
    A = prob.A
    rows, klass, w = prob.edge_classes()
    mats = []
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
    for k in range(len(delays)):
        sel = klass == k
        Ak = sp.csr_matrix((w[sel], (rows[sel], A.indices[sel])), shape=(n, n))
        mats.append(torch.sparse_csr_tensor(torch.from_numpy(Ak.indptr.astype(np.int64)),
                                            torch.from_numpy(Ak.indices.astype(np.int64)),
                                            torch.from_numpy(Ak.data).to(dtype), size=(n, n),
                                            dtype=dtype, check_invariants=True))
    omega = torch.from_numpy(prob.omega).to(dtype)
    theta0 = torch.from_numpy(prob.theta0).to(dtype)

    def history(t):
        return (theta0 + t * omega).unsqueeze(0)  # (batch=1, N)

    n_rhs = [0]

    def field(t, y, args, *, history):
        n_rhs[0] += 1
        s_sum = torch.zeros_like(y)
        c_sum = torch.zeros_like(y)
        for Ak, yd in zip(mats, history):
            s_sum += (Ak @ torch.sin(yd[0]).unsqueeze(1)).squeeze(1)
            c_sum += (Ak @ torch.cos(yd[0]).unsqueeze(1)).squeeze(1)
        return omega + torch.cos(y) * s_sum - torch.sin(y) * c_sum

    ts = torch.as_tensor(np.asarray(t_eval, dtype=float), dtype=dtype)
    # dtmax below the smallest delay: see the module docstring (step-cap bug).
    ctrl = torchdde.AdaptiveStepSizeController(atol=atol, rtol=rtol,
                                               dtmax=0.999 * float(delays.min()))
    t0 = time.perf_counter()
    with torch.no_grad():
        ys = torchdde.integrate(field, torchdde.Dopri5(), ts[0], ts[-1], ts, history, None,
                                stepsize_controller=ctrl,
                                delays=torch.as_tensor(delays, dtype=dtype),
                                max_steps=max_steps)
    sec = time.perf_counter() - t0
    theta = ys[0].numpy()  # (len(t_eval), N)
    r = np.abs(np.exp(1j * theta).mean(axis=1))
    stats = {"rhs_evals": n_rhs[0]}
    return r, sec, stats
