"""Stability maps of SGD over learning rate × batch size."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from .._progress import Progress, ProgressLike, check_progress
from .._result import Result, raise_if_failed
from .._system import ArrayLike
from .._validate import as_threads, check_distributed
from ..device import device_info, resolve_device, to_host
from ..lyapunov import check_settled
from .gram import (
    DEFAULT_SAMPLING,
    GramSpectrum,
    _check_configs,
    _resolve_transient,
    _run_core,
    _sampling_name,
    gd_exponent,
    gram_spectrum,
    mean_square_exponent,
)

if TYPE_CHECKING:  # torch is optional and imported on first use
    import torch

__all__ = ["StabilityMap", "stability_map"]

N_BLOCKS = 32  # batch-means blocks per cell


def row_seed(seed, i):
    """The seed of batch-size row ``i`` of a map (lr index j then draws stream j): one rule for
    the CPU rows, the GPU launch and the chunks of a distributed map."""
    return seed + 7919 * i


@dataclass
class StabilityMap(Result):
    """λ₁ (and friends) of linearised SGD on a grid of learning rates × batch sizes.

    Arrays are indexed [batch index, lr index] (and a last exponent index for ``exponents``).
    ``gd_exponent`` depends on lr only; ``gd_lr_limit`` = 2 / λ_max(H) is the GD edge of
    stability; ``mean_square`` is ½ log ρ(E[A⊗A]) (NaN where not computed). ``status`` is 0
    where a configuration ran to the end; ``info`` holds the transient used and the settle check.
    ``success``, ``failed`` (flat indices into [batch, lr]), ``message``,
    ``raise_for_status()`` and ``to_dict()`` as every delyap result.
    """

    lr: np.ndarray
    batch_size: np.ndarray
    exponents: np.ndarray
    stderr: np.ndarray
    gd_exponent: np.ndarray
    mean_square: np.ndarray
    normal_dim: int
    sharpness: float  # λ_max of the Hessian H = (1/N) Jᵀ J
    sampling: str
    steps: int
    status: Optional[np.ndarray] = None  # None: every cell ran to the end
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.status is None:
            self.status = np.zeros((len(self.batch_size), len(self.lr)), dtype=int)

    @property
    def top(self) -> np.ndarray:
        return self.exponents[..., 0]

    @property
    def stable(self) -> np.ndarray:
        return self.top < 0

    @property
    def gd_lr_limit(self) -> float:
        return 2.0 / self.sharpness

    def largest_stable_lr(self) -> np.ndarray:
        """Per batch size, the largest grid lr with λ₁ < 0 (NaN if none)."""
        out = np.full(len(self.batch_size), np.nan)
        for i in range(len(self.batch_size)):
            ok = np.flatnonzero(self.stable[i])
            if ok.size:
                out[i] = float(np.max(self.lr[ok]))
        return out

    def to_table(self) -> list:
        """Tidy rows: one dict per (lr, batch_size)."""
        rows = []
        for i, b in enumerate(self.batch_size):
            for j, lr in enumerate(self.lr):
                rows.append({"lr": float(lr), "batch_size": int(b),
                             "lambda1": float(self.top[i, j]),
                             "stderr": float(self.stderr[i, j, 0]),
                             "gd_exponent": float(self.gd_exponent[j]),
                             "mean_square": float(self.mean_square[i, j]),
                             "stable": bool(self.stable[i, j])})
        return rows

    def to_csv(self, path: str) -> None:
        rows = self.to_table()
        with open(path, "w") as fh:
            fh.write(",".join(rows[0]) + "\n")
            for r in rows:
                fh.write(",".join(str(v) for v in r.values()) + "\n")

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (batch_size, lr) and the grids as coordinates:
        ``exponents``/``stderr`` (with ``exponent``), ``top``, ``stable``, ``mean_square``,
        ``status``, and ``gd_exponent`` along ``lr``. Needs ``delyap[xarray]``."""
        from .._result import dataset_attrs, import_xarray

        xr = import_xarray()
        grid = ("batch_size", "lr")
        data = {"exponents": (grid + ("exponent",), self.exponents),
                "stderr": (grid + ("exponent",), self.stderr),
                "top": (grid, self.top), "stable": (grid, self.stable),
                "mean_square": (grid, self.mean_square),
                "status": (grid, np.asarray(self.status)),
                "gd_exponent": (("lr",), np.asarray(self.gd_exponent))}
        coords = {"lr": self.lr, "batch_size": self.batch_size,
                  "exponent": np.arange(1, self.exponents.shape[-1] + 1)}
        return xr.Dataset(data, coords=coords,
                          attrs=dataset_attrs(self.info, sampling=self.sampling, steps=self.steps,
                                              normal_dim=self.normal_dim,
                                              sharpness=self.sharpness))

    def __repr__(self) -> str:
        return (f"StabilityMap({len(self.lr)} lr × {len(self.batch_size)} batch sizes, "
                f"sampling={self.sampling}, normal_dim={self.normal_dim}, "
                f"{int(self.stable.sum())}/{self.stable.size} stable, "
                f"GD limit η = {self.gd_lr_limit:.4g})")

    def plot(self, path: Optional[str] = None, *, ax=None, title: str = ""):
        """Heat map of λ₁ with its sign boundary, the GD line η = 2/λ_max(H) and the
        mean-square boundary; saves a PNG when ``path`` is given."""
        from ..plot import cell_edges, diverging_ticks, figure_axes, finish_figure, tick_label

        plt, fig, ax = figure_axes(ax, (7.5, 5.2))
        from matplotlib.collections import PatchCollection
        from matplotlib.colors import TwoSlopeNorm
        from matplotlib.lines import Line2D
        from matplotlib.patches import Rectangle

        top = self.top
        finite = top[np.isfinite(top)]
        # Each side of zero gets the full colour range: stable and unstable magnitudes differ
        # by orders of magnitude, and the sign is what matters. So each side gets its own
        # ticks too (one locator over both would leave the smaller side without any).
        lo = min(float(finite.min()), 0.0) if finite.size else -1.0
        hi = max(float(finite.max()), 0.0) if finite.size else 1.0
        y = np.arange(len(self.batch_size))
        # Cells drawn from explicit edges (geometric midpoints on the log lr axis), shared by
        # the heat map and the hatching so that both mark the same cells.
        x_edges, y_edges = cell_edges(self.lr, log=True), cell_edges(y)
        mesh = ax.pcolormesh(x_edges, y_edges, top, shading="flat", cmap="RdBu_r",
                             norm=TwoSlopeNorm(0.0, min(lo, -1e-12), max(hi, 1e-12)))
        cb = plt.colorbar(mesh, ax=ax)
        ticks = diverging_ticks(lo, hi)
        cb.set_ticks(ticks, labels=[tick_label(t) for t in ticks])
        cb.set_label("top Lyapunov exponent λ₁ (per step)")
        handles: list = []  # legend entries: patches and lines
        unresolved = np.abs(top) <= 3 * self.stderr[..., 0]
        if np.any(unresolved):  # the sign is not resolved by the run length: hatch the cells
            cells = [Rectangle((x_edges[j], y_edges[i]), x_edges[j + 1] - x_edges[j],
                               y_edges[i + 1] - y_edges[i])
                     for i, j in zip(*np.nonzero(unresolved))]
            ax.add_collection(PatchCollection(cells, facecolor="none", edgecolor="0.2",
                                              linewidth=0.0, hatch="////",
                                              label="sign unresolved"))
            handles.append(Rectangle((0, 0), 1, 1, fc="none", ec="0.2", hatch="////",
                                     label="|λ₁| < 3 s.e. (sign unresolved)"))
        if len(self.lr) > 1 and len(self.batch_size) > 1:
            ax.contour(self.lr, y, top, levels=[0.0], colors="k", linewidths=1.5)
            handles.append(Line2D([], [], color="k", lw=1.5, label="λ₁ = 0 (SGD)"))
            if np.any(np.isfinite(self.mean_square)):
                ax.contour(self.lr, y, self.mean_square, levels=[0.0], colors="tab:green",
                           linewidths=1.2, linestyles="--")
                handles.append(Line2D([], [], color="tab:green", ls="--",
                                      label="mean-square boundary"))
        ax.axvline(self.gd_lr_limit, color="tab:orange", lw=1.5, ls=":")
        handles.append(Line2D([], [], color="tab:orange", ls=":",
                              label=f"GD: η = 2/λmax(H) = {self.gd_lr_limit:.3g}"))
        ax.set_xscale("log")
        ax.set_yticks(y, [str(b) for b in self.batch_size])
        ax.set_xlabel("learning rate η")
        ax.set_ylabel("batch size B")
        ax.set_title(title or f"Linear stability of SGD ({self.sampling} batches)")
        # Below the axes: inside, it would hide cells of the map.
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=2, frameon=False)
        finish_figure(plt, fig, path)
        return ax


def stability_map(model_or_K: Union[torch.nn.Module, ArrayLike, GramSpectrum],
                  X: Optional[torch.Tensor] = None, Y: Optional[torch.Tensor] = None,
                  lr: Optional[ArrayLike] = None, batch_size: Optional[ArrayLike] = None, *,
                  steps: int,
                  n_exponents: int = 1, sampling: str = DEFAULT_SAMPLING, seed: int = 0,
                  transient: Optional[int] = None, renorm_interval: int = 10,
                  mean_square: bool = True, outputs: int = 1, check: str = "raise",
                  tol: float = 1e-5, threads: Optional[int] = None,
                  progress: ProgressLike = None, device: Optional[str] = None,
                  throw: bool = True, client: Any = None,
                  store: Optional[str] = None) -> StabilityMap:
    """λ₁ of SGD for every (η, B) in ``lr`` × ``batch_size``.

    ``model_or_K`` is a torch model at an interpolating minimum (with data X, Y) or a Gram
    matrix (numpy, with ``outputs`` rows per sample). Each batch size runs all learning rates
    in parallel on the thread pool; ``progress`` shows a bar over the cells (None: when stderr
    is a terminal and the map takes more than 2 s; True, False, or a callable
    ``f(done, total)``, as in :func:`delyap.solve_dde`). Configuration (B index i, lr index j)
    uses its own random stream. ``client`` (a ``dask.distributed.Client``) runs the rows in
    chunks on a Dask cluster, bit-identical to the local map, saving finished chunks in the
    folder ``store`` to resume from (the mean-square exponents stay local).
    ``device="cuda"`` runs the whole grid in one GPU launch (one thread block per
    configuration) on the same random streams; the mean-square radius stays on the CPU.

    ``sampling``, ``transient`` and ``throw`` as in :func:`delyap.sgd.gram_lyapunov`: batches
    of B distinct samples by default (B = N is GD), an automatic transient from the GD time
    scale of the smallest learning rate (``info["transient"]``), one
    :class:`delyap.ConvergenceWarning` for the cells whose estimate has not settled
    (``info["settled"]``, per-cell ``info["settle_z"]`` indexed [batch, lr, exponent]).
    """
    device = resolve_device(device, model_or_K, X)
    as_threads(threads)  # checked before any work (used by the CPU path)
    progress = check_progress(progress)
    check_distributed(client, store, device)
    model_or_K = to_host(model_or_K)  # a Gram matrix on the GPU (the map copies it once)
    sampling = _sampling_name(sampling)
    if lr is None or batch_size is None:
        raise ValueError("lr, batch_size: both grids are required")
    info = device_info(device)
    if isinstance(model_or_K, GramSpectrum):
        spec = model_or_K
    elif isinstance(model_or_K, np.ndarray) or isinstance(model_or_K, (list, tuple)):
        spec = gram_spectrum(model_or_K, outputs)
    else:
        from .torch_model import _check_interpolation, _check_model_and_data, gram_matrix

        if X is None or Y is None:
            raise ValueError("X, Y: a model needs its data set")
        _check_model_and_data(model_or_K, X, Y)
        info["interpolation"] = _check_interpolation(model_or_K, X, Y, tol, check)
        K, c = gram_matrix(model_or_K, X)
        spec = gram_spectrum(K, c)
    lrs, bs = _check_configs(lr, batch_size, spec.n_samples, sampling)
    lrs, bs = np.atleast_1d(lrs), np.atleast_1d(bs)
    for name, grid in (("lr", lrs), ("batch_size", bs)):
        if grid.ndim != 1 or np.any(np.diff(grid) <= 0):
            # (the map's plot, contours and largest stable lr read the grid as an axis)
            raise ValueError(f"{name}: expected an increasing 1-D grid, got {grid.tolist()}")
    k = n_exponents
    ex = np.full((len(bs), len(lrs), k), np.nan)
    se = np.full_like(ex, np.nan)
    ms = np.full((len(bs), len(lrs)), np.nan)
    status: np.ndarray = np.zeros((len(bs), len(lrs)), dtype=int)
    transient, tau = _resolve_transient(spec, lrs, k, steps, transient)
    # The blocks of every cell, for one settle check over the whole map.
    blocks = {"block_sum": np.zeros((len(bs), len(lrs), N_BLOCKS, k)),
              "block_time": np.zeros((len(bs), len(lrs), N_BLOCKS))}
    with Progress(progress, len(bs) * len(lrs), "stability_map", "cell") as bar:
        if client is not None:  # every row's core runs on the cluster first
            from ..distributed import stability_map_chunks

            run = dict(steps=steps, n_exponents=k, sampling=sampling, transient=transient,
                       renorm_interval=renorm_interval, threads=threads, n_blocks=N_BLOCKS,
                       n_running=2)
            raw = stability_map_chunks(client, spec, lrs, bs, seed, run, store=store, bar=bar)
            ex[:], se[:], status[:] = raw["exponents"], raw["stderr"], raw["status"]
            for key in blocks:
                blocks[key][:] = raw[key]
            info["distributed"] = raw["distributed"]
        if device == "cuda":  # every configuration in one launch, on the CPU's streams
            n_lr = len(lrs)
            raw = _run_core(spec, np.tile(lrs, len(bs)), np.repeat(bs, n_lr), steps=steps,
                            n_exponents=k, sampling=sampling, transient=transient, seed=seed,
                            renorm_interval=renorm_interval, threads=None, n_blocks=N_BLOCKS,
                            n_running=2,
                            device="cuda",
                            seeds=np.repeat(row_seed(seed, np.arange(len(bs))),
                                            n_lr).astype(np.uint64),
                            streams=np.tile(np.arange(n_lr), len(bs)).astype(np.uint64))
            ex[:] = raw["exponents"].reshape(len(bs), n_lr, k)
            se[:] = raw["stderr"].reshape(len(bs), n_lr, k)
            status[:] = np.asarray(raw["status"]).reshape(len(bs), n_lr)
            for key in blocks:
                blocks[key][:] = np.asarray(raw[key]).reshape(blocks[key].shape)
        for i, b in enumerate(bs):
            if device == "cpu" and client is None:
                with bar.stage(len(lrs)):
                    raw = _run_core(spec, lrs, np.full(len(lrs), b), steps=steps, n_exponents=k,
                                    sampling=sampling, transient=transient,
                                    seed=row_seed(seed, i), renorm_interval=renorm_interval,
                                    threads=threads, n_blocks=N_BLOCKS, n_running=2)
                ex[i], se[i], status[i] = raw["exponents"], raw["stderr"], raw["status"]
                for key in blocks:
                    blocks[key][i] = raw[key]
            if mean_square:
                warm = None
                for j, eta in enumerate(lrs):  # warm start along the lr axis
                    ms[i, j], warm = mean_square_exponent(spec, eta, int(b), sampling=sampling,
                                                          start=warm)
    info["transient"] = transient
    out = StabilityMap(lr=lrs, batch_size=bs, exponents=ex, stderr=se,
                       gd_exponent=gd_exponent(spec, lrs), mean_square=ms, normal_dim=spec.rank,
                       sharpness=float(spec.eigenvalues[0] / spec.n_samples), sampling=sampling,
                       steps=int(steps), status=status, info=info)
    out._origin = "stability_map"
    raise_if_failed(out, throw)
    flat = {"status": status.reshape(-1), **{key: v.reshape(-1, *v.shape[2:])
                                              for key, v in blocks.items()}}
    settle = check_settled(flat, "stability_map", time_scale=np.tile(tau, len(bs)),
                           transient=transient, window=int(steps))
    settle["settle_z"] = np.reshape(settle["settle_z"], (len(bs), len(lrs), k))
    settle["time_scale"] = tau  # per learning rate (GD's)
    info.update(settle)
    return out
