"""The built-in neural vector field written in torch for the tests, independently of
delyap.nn: f(t, h, h_delayed) = W_out a_{L−1}, a_0 = σ(W h + Σ_k W_k h_k + b + wt·t),
a_l = σ(Vh[l−1] a_{l−1} + ch[l−1]), for odeint_dde's stage loop (torch's autograd through it is
the reference for the C++ discrete adjoint)."""
from __future__ import annotations

import torch


def torch_field(W, Wd, b, Wout, Vh=(), ch=(), act=torch.tanh, wt=None):
    """f(t, h, hd) with hd of shape (batch, n_delays, dim); Vh, ch the stacked layers (none by
    default), wt the time input's weights (None: autonomous)."""
    def f(t, h, hd):
        z = h @ W.T + b + (0.0 if wt is None else wt * t)
        for k in range(Wd.shape[0]):
            z = z + hd[:, k] @ Wd[k].T
        a = act(z)
        for V, c in zip(Vh, ch):
            a = act(a @ V.T + c)
        return a @ Wout.T
    return f
