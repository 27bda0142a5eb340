"""Plotting helpers (needs the ``plot`` extra: ``pip install delyap[plot]``)."""
from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike


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


def cell_edges(centres: ArrayLike, log: bool = False) -> np.ndarray:
    """The n + 1 edges of the cells around n increasing grid values: midway between neighbours
    (geometrically when ``log``, so cells look even on a log axis), the end cells as wide as
    their neighbours. One value gets a cell of width 1 (a factor e on a log axis)."""
    c = np.asarray(centres, dtype=float).reshape(-1)
    if log:
        return np.exp(cell_edges(np.log(c)))
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def diverging_ticks(lo: float, hi: float, per_side: int = 4) -> np.ndarray:
    """Colorbar ticks for a scale centred on 0 (TwoSlopeNorm): round values on each side of 0
    chosen separately, so the side with the smaller magnitudes gets ticks of its own."""
    from matplotlib.ticker import MaxNLocator

    ticks = [0.0]
    for end in (lo, hi):
        if end != 0.0:
            loc = MaxNLocator(nbins=per_side, steps=[1, 2, 2.5, 5, 10])
            side = loc.tick_values(min(end, 0.0), max(end, 0.0))
            ticks += [float(t) for t in side if t != 0.0 and abs(t) <= abs(end) * (1 + 1e-9)
                      and np.sign(t) == np.sign(end)]
    return np.unique(ticks)


def tick_label(value: float) -> str:
    """A colorbar tick as a reader reads it: 3 significant digits, a real minus sign. (The
    default formatter picks one precision for the whole bar, which prints the small side of a
    diverging scale as "−0".)"""
    return f"{value:.3g}".replace("-", "\u2212")


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
               title: str = "", ylabel: str = "x (late-time samples)", ax=None):
    """Bifurcation-style diagram: values (batch, n) of x against a parameter, NaN for none.

    ``ylabel`` says what the values are (late-time samples by default; the demo passes local
    maxima)."""
    plt, fig, ax = figure_axes(ax, (7, 4.5))
    samples = np.asarray(samples)
    p = np.repeat(np.asarray(param)[:, None], samples.shape[1], axis=1)
    ax.plot(p.ravel(), samples.ravel(), ".", ms=0.8, color="k", alpha=0.6)
    ax.set_xlabel(label)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"Sweep over {label}")
    finish_figure(plt, fig, path)
    return ax


def plot_solution(sol, path: Optional[str] = None, *, components=None, ax=None):
    """x(t) of a single-trajectory :class:`DDESolution`, or of the first five trajectories of a
    batch; ``components`` picks state components (all by default)."""
    plt, fig, ax = figure_axes(ax, (7, 3.5))
    y = np.asarray(sol.y)
    runs = [(None, y)] if sol.batch_size is None else list(enumerate(y[:5]))
    cols = range(y.shape[-1]) if components is None else components
    for run, yr in runs:
        for c in cols:
            name = f"x[{c}]" if run is None else f"trajectory {run}, x[{c}]"
            ax.plot(sol.t, yr[:, c], lw=0.8, label=name)
    ax.set_xlabel("t")
    ax.set_ylabel("x(t)")
    if sol.batch_size is not None:
        ax.set_title(f"First {len(runs)} of {sol.batch_size} trajectories" if sol.batch_size > 5
                     else f"{sol.batch_size} trajectories")
    if len(ax.lines) <= 8:
        ax.legend(loc="upper right", fontsize=8)
    finish_figure(plt, fig, path)
    return ax
