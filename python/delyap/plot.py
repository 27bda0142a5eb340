"""Plotting helpers (needs the ``plot`` extra: ``pip install delyap[plot]``)."""
from __future__ import annotations

from typing import Optional

import numpy as np


def require_matplotlib():
    """The matplotlib module, or an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'delyap[plot]'") from None
    return matplotlib


def _pyplot():
    matplotlib = require_matplotlib()
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def figure_axes(ax, figsize):
    """(pyplot, own figure or None, axes): a new figure unless the caller passed ``ax``."""
    plt = _pyplot()
    if ax is not None:
        return plt, None, ax
    fig, ax = plt.subplots(figsize=figsize, dpi=120)
    return plt, fig, ax


def finish_figure(plt, fig, path: Optional[str]) -> None:
    """Lay out a figure this module created and save it (PNG) when ``path`` is given."""
    if fig is None:
        return
    fig.tight_layout()
    if path:
        fig.savefig(path)
        plt.close(fig)


def delay_embedding(t: np.ndarray, x: np.ndarray, tau: float):
    """Pairs (x(t), x(t − τ)) from a uniformly sampled series (τ a multiple of the spacing)."""
    dt = t[1] - t[0]
    lag = int(round(tau / dt))
    if lag <= 0 or abs(lag * dt - tau) > 1e-9 * max(1.0, tau):
        raise ValueError(f"tau: {tau} is not a multiple of the sampling step {dt}")
    return x[lag:], x[:-lag]


def plot_attractor(t, x, tau: float, path: Optional[str] = None, *, title: str = "", ax=None):
    """Phase portrait x(t) against x(t − τ); saves a PNG when ``path`` is given."""
    plt, fig, ax = figure_axes(ax, (5.5, 5))
    now, past = delay_embedding(np.asarray(t), np.asarray(x).reshape(-1), tau)
    ax.plot(past, now, lw=0.4, color="tab:blue")
    ax.set_xlabel(f"x(t − {tau:g})")
    ax.set_ylabel("x(t)")
    ax.set_title(title or f"Delay attractor, τ = {tau:g}")
    finish_figure(plt, fig, path)
    return ax


def plot_sweep(param, samples, path: Optional[str] = None, *, label: str = "τ",
               title: str = "", ax=None):
    """Bifurcation-style diagram: late-time samples (batch, n) of x against a parameter."""
    plt, fig, ax = figure_axes(ax, (7, 4.5))
    samples = np.asarray(samples)
    p = np.repeat(np.asarray(param)[:, None], samples.shape[1], axis=1)
    ax.plot(p.ravel(), samples.ravel(), ".", ms=0.8, color="k", alpha=0.6)
    ax.set_xlabel(label)
    ax.set_ylabel("x (late-time samples)")
    ax.set_title(title or f"Sweep over {label}")
    finish_figure(plt, fig, path)
    return ax


def plot_solution(sol, path: Optional[str] = None, *, components=None, ax=None):
    """x(t) of a single-trajectory :class:`DDESolution` (or the first few of a batch)."""
    plt, fig, ax = figure_axes(ax, (7, 3.5))
    y = sol.y if sol.batch_size is None else sol.y[:5].transpose(1, 0, 2).reshape(len(sol.t), -1)
    cols = range(y.shape[1]) if components is None else components
    for c in cols:
        ax.plot(sol.t, y[:, c], lw=0.8, label=f"x[{c}]")
    ax.set_xlabel("t")
    if y.shape[1] <= 8:
        ax.legend(loc="upper right", fontsize=8)
    finish_figure(plt, fig, path)
    return ax
