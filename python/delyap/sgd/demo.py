"""Built-in SGD demo problem: a small MLP trained to interpolate a synthetic regression set."""
from __future__ import annotations

import os
import time
from typing import Optional

import numpy as np

from .._validate import as_count

N_SAMPLES = 64  # the demo data set's size: batch sizes go up to it


def check_demo_options(*, n_lr: int = 24, batch_sizes=(1, 2, 4, 8, 16, 32, 64),
                       steps: int = 10_000) -> None:
    """Reject bad map options before anything is trained (training takes seconds)."""
    from .gram import _check_configs

    as_count(n_lr, "n_lr")
    as_count(steps, "steps")
    # The learning rates come after training (from the sharpness): any positive one stands in.
    # Either sampling law allows the same batch sizes, 1 … N.
    _check_configs(1.0, list(batch_sizes), N_SAMPLES, "iid")


def demo_problem(n_samples: int = N_SAMPLES, width: int = 32, seed: int = 0):
    """(model, X, Y): a tanh MLP 8 → width → width → 1 (float64) and a smooth synthetic target
    y = sin(2x₁)·cos(x₂) + x₃/2 on Gaussian inputs (well-conditioned Gram matrix)."""
    from .torch_model import _torch

    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n_samples, 8, generator=g, dtype=torch.float64)
    Y = torch.sin(2 * X[:, 0]) * torch.cos(X[:, 1]) + 0.5 * X[:, 2]
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.Tanh(),
                                torch.nn.Linear(width, width), torch.nn.Tanh(),
                                torch.nn.Linear(width, 1)).double()
    return model, X, Y


def run_sgd_map(out_dir: str = "delyap-demo", *, n_lr: int = 24,
                batch_sizes=(1, 2, 4, 8, 16, 32, 64),
                steps: int = 10_000, threads: Optional[int] = None, progress: bool = True,
                plots: bool = True, device: str = "cpu"):
    """Train the demo MLP to interpolation, map λ₁ over (η, B), print a summary, write a PNG.

    Learning rates span 0.02–4 × GD's limit 2/λmax(H)."""
    from .gram import gram_spectrum
    from .stability_map import stability_map
    from .torch_model import gram_matrix, train_to_interpolation

    check_demo_options(n_lr=n_lr, batch_sizes=batch_sizes, steps=steps)
    batch_sizes = sorted(set(int(b) for b in batch_sizes))  # the map's axis: increasing
    if device == "cuda":  # fail before training when there is no GPU
        from ..device import cuda_backend

        cuda_backend()
    if plots:  # fail before training without matplotlib or the folder
        from ..plot import require_matplotlib

        require_matplotlib()
        os.makedirs(out_dir, exist_ok=True)
    model, X, Y = demo_problem()
    start = time.perf_counter()
    rep = train_to_interpolation(model, X, Y)
    t_train = time.perf_counter() - start
    D = sum(p.numel() for p in model.parameters())
    print(f"\nSGD demo: MLP with {D} parameters, N = {X.shape[0]} samples; trained to loss "
          f"{rep['loss']:.1e} in {rep['iterations']} Levenberg–Marquardt steps ({t_train:.1f} s)")
    start = time.perf_counter()
    K, c = gram_matrix(model, X)
    spec = gram_spectrum(K, c)
    sharp = spec.eigenvalues[0] / spec.n_samples
    lrs = np.geomspace(0.02, 4.0, n_lr) * (2.0 / sharp)
    m = stability_map(spec, lr=lrs, batch_size=list(batch_sizes), steps=steps, threads=threads,
                      progress=progress, device=device)
    wall = time.perf_counter() - start
    print(f"stability map: {len(lrs)} learning rates × {len(batch_sizes)} batch sizes, "
          f"{steps} steps each, {wall:.1f} s; sharpness λmax(H) = {sharp:.4g}, "
          f"GD limit η = {2 / sharp:.4g}, normal-space dimension {m.normal_dim}")
    print(f"{'B':>5}  {'largest stable η':>17}  {'÷ GD limit':>10}")
    for b, eta in zip(m.batch_size, m.largest_stable_lr()):
        print(f"{b:>5}  {eta:>17.4g}  {eta * sharp / 2:>10.3f}")
    if plots:
        path = os.path.join(out_dir, "sgd_stability_map.png")
        m.plot(path, title=f"SGD stability at an interpolating minimum (MLP, D = {D}, "
                           f"N = {X.shape[0]})")
        print(f"wrote {path}")
    return m
