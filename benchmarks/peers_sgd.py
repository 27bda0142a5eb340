"""Baselines for bench_sgd.py: linearised SGD at an interpolating minimum, done without delyap.

(a) ``numpy_gram_lyapunov``: delyap's own algorithm in plain numpy. In output coordinates
    u = J δ one SGD step is u ← u − (η/B) K[:, ξ] u[ξ, :] (K = J Jᵀ, ξ the B sampled indices,
    i.i.d. with replacement); k directions, QR every ``renorm`` steps, log|diag R| summed.
    Vectorised per step (row gather of K + one BLAS product on all k directions, indices drawn
    up front); one configuration at a time.

(b) ``DenseSGD``: the parameter-space view. At the minimum the per-sample Hessians of
    ℓ_i = ½(f_i − y_i)² are H_i = g_i g_iᵀ, so each step forms H_ξ = (1/B) J_ξᵀ J_ξ as a dense
    D × D matrix (O(D²·B) time, O(D²) memory) and applies δ ← δ − η H_ξ δ to k directions,
    QR every ``renorm`` steps. Generous to the baseline: H is built from a cached Jacobian
    (not from autograd Hessians), written into one preallocated buffer, and 1/B is folded into
    the update. The directions start in range(Jᵀ) (the normal space): the other D − N
    directions are neutral (exponent 0) and would otherwise be all a naive run reports.

Both report exponents per step with batch-means standard errors computed exactly as delyap
does (32 contiguous blocks of QR increments, sd(block estimates)/√32).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

N_BLOCKS = 32


@contextlib.contextmanager
def torch_threads(n):
    """torch's intra-op pool (its MKL is not visible to threadpoolctl); None leaves it alone."""
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- memory

def _status_kib(field: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


class PeakMemory:
    """Peak RSS growth over a block, in MiB (Linux: resets VmHWM via /proc/self/clear_refs).

    NaN where the peak cannot be reset (then only the theoretical sizes are meaningful).
    """

    def __init__(self):
        self.mib = float("nan")

    def __enter__(self):
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self._ok = True
        except OSError:
            self._ok = False
        self._rss0 = _status_kib("VmRSS")
        return self

    def __exit__(self, *exc):
        if self._ok:
            self.mib = max(0.0, (_status_kib("VmHWM") - self._rss0) / 1024.0)
        return False


# --------------------------------------------------------------------------- statistics

def batch_means(logs: np.ndarray, weights: np.ndarray, n_blocks: int = N_BLOCKS):
    """Exponents and stderr from per-QR log|R_jj| (rows) covering ``weights`` steps each."""
    n = logs.shape[0]
    exps = logs.sum(axis=0) / weights.sum()
    blk = (np.arange(n) * n_blocks) // n
    est = []
    for b in range(min(n_blocks, n)):
        sel = blk == b
        if np.any(sel):
            est.append(logs[sel].sum(axis=0) / weights[sel].sum())
    est = np.array(est)
    se = (est.std(axis=0, ddof=1) / np.sqrt(len(est)) if len(est) > 1
          else np.full(exps.shape, np.nan))
    return exps, se


# --------------------------------------------------------------------------- (a) numpy

def numpy_gram_lyapunov(K, lr, B, steps, k, rng, *, renorm=10, u0=None, idx=None):
    """(a): returns (exponents, stderr, wall seconds, CPU seconds).

    ``u0``/``idx`` fix the start / the index stream (steps × B)."""
    K = np.ascontiguousarray(K)
    n = K.shape[0]
    t0, c0 = time.perf_counter(), time.process_time()
    if idx is None:
        idx = rng.integers(0, n, size=(steps, B))
    if u0 is None:
        u0 = rng.standard_normal((n, k))
    Q = np.linalg.qr(u0)[0]
    s = lr / B
    n_qr = -(-steps // renorm)
    logs = np.empty((n_qr, k))
    w = np.empty(n_qr)
    q = since = 0
    for t in range(steps):
        ix = idx[t]
        G = Q[ix]            # the batch rows of u, taken before the update
        G *= s
        Q -= K[ix].T @ G     # K symmetric: rows ξ of K = columns ξ (contiguous gather)
        since += 1
        if since == renorm or t == steps - 1:
            Q, R = np.linalg.qr(Q)
            logs[q] = np.log(np.abs(np.diagonal(R)))
            w[q] = since
            q += 1
            since = 0
    sec, cpu = time.perf_counter() - t0, time.process_time() - c0
    exps, se = batch_means(logs, w)
    return exps, se, sec, cpu


# --------------------------------------------------------------------------- (b) dense torch

class DenseSGD:
    """(b): δ ← δ − η H_ξ δ with H_ξ = (1/B) J_ξᵀ J_ξ formed densely (D × D) every step."""

    def __init__(self, J):
        import torch

        self.torch = torch
        self.J = J.contiguous()                       # N × D float64
        D = J.shape[1]
        self.H = torch.empty((D, D), dtype=J.dtype)   # the O(D²) buffer
        self.H.fill_(0.0)                             # touch the pages outside any timing

    @property
    def D(self) -> int:
        return self.J.shape[1]

    def start(self, k, gen):
        """k orthonormal directions in range(Jᵀ) (the normal space at the minimum)."""
        torch = self.torch
        a = torch.randn((self.J.shape[0], k), dtype=self.J.dtype, generator=gen)
        return torch.linalg.qr(self.J.T @ a)[0]

    def run(self, lr, B, Q, idx, *, renorm=10, time_budget=None, min_steps=3):
        """Steps with the index rows ``idx`` (steps × B). With ``time_budget`` (seconds) the run
        stops once that much time and ``min_steps`` steps have passed (for per-step timing).
        Returns (exponents, stderr, wall seconds, CPU seconds, steps done, Q)."""
        torch = self.torch
        J, H = self.J, self.H
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        steps = idx.shape[0]
        alpha = lr / B
        logs, w = [], []
        since = 0
        done = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for t in range(steps):
            Jb = J.index_select(0, idx[t])       # B × D
            torch.mm(Jb.T, Jb, out=H)            # H_ξ·B, D × D: O(D²·B)
            Q.sub_(H @ Q, alpha=alpha)           # O(D²·k)
            since += 1
            done = t + 1
            last = done == steps or (time_budget is not None and done >= min_steps
                                     and time.perf_counter() - t0 >= time_budget)
            if since == renorm or last:
                Q, R = torch.linalg.qr(Q)
                logs.append(torch.log(torch.abs(torch.diagonal(R))).numpy())
                w.append(since)
                since = 0
            if last:
                break
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        if len(logs) > 1:
            exps, se = batch_means(np.array(logs), np.array(w, dtype=float))
        else:
            exps, se = np.array(logs[0]) / w[0], np.full(len(logs[0]), np.nan)
        return exps, se, sec, cpu, done, Q

    def seconds_per_step(self, B, k, *, time_budget, min_steps, seed=0, lr=1e-3):
        """One untimed warm-up step, then steps until the budget; (wall, CPU) seconds per step."""
        torch = self.torch
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        n = self.J.shape[0]
        Q = self.start(k, gen)
        self.run(lr, B, Q, rng.integers(0, n, size=(1, B)))
        max_steps = 10_000
        _, _, sec, cpu, done, _ = self.run(lr, B, Q, rng.integers(0, n, size=(max_steps, B)),
                                           time_budget=time_budget, min_steps=min_steps)
        return sec / done, cpu / done
