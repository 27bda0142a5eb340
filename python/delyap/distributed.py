"""Sweeps on a Dask cluster: the ``client=`` and ``store=`` arguments of the batch entry points.

``solve_dde`` (batches of compiled systems), ``lyapunov_spectrum`` (sweeps), ``iid_product``
(batches of problems), ``sgd.gram_lyapunov`` and ``sgd.stability_map`` accept a
``dask.distributed.Client``. The entry point validates every argument and prepares the run on
the client exactly as for a local run (the history samples, the automatic transient of the
whole batch, ...); the batch is then cut into contiguous chunks, a few per worker thread, and
each chunk runs delyap's threaded C++ on a worker as one Dask task over a sub-batch:

* a system's sub-batch is rebuilt from its recorded constructor arguments with the
  per-trajectory arguments sliced (:meth:`delyap.rhs.DDESystem._sub_batch`);
* random streams are keyed by the global configuration index, never by chunk or thread (a
  chunk starting at item ``s`` passes ``stream_offset=s`` to the core), so the assembled result
  is bit-identical to the local run whatever the number of workers or chunks.

Tasks are pure functions of their arguments: when a worker dies, Dask reruns its chunk on
another worker (the shared inputs are replicated on every worker). Results come back in order.

``store="folder"`` saves each finished chunk as ``.npz`` as it completes, in a sub-folder named
by a hash of everything that determines the results (not ``threads``); a rerun with the same
arguments loads the chunks found there and computes only the missing ones (chunk boundaries are
kept with the chunks, so a different cluster size resumes too).

Dask is optional: ``pip install 'delyap[distributed]'``. On a real cluster, start a scheduler
and workers on machines with delyap installed and connect with
``Client("tcp://scheduler-host:8786")``.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from typing import Any, Callable, Optional

import numpy as np

from . import _core
from ._progress import Progress, ProgressLike

__all__ = ["CHUNKS_PER_THREAD", "solve_chunks", "lyapunov_chunks", "iid_product_chunks",
           "gram_chunks", "stability_map_chunks"]

# Chunks per worker thread: more than one so that a slow chunk or a lost worker does not leave
# the others idle at the end, few enough that each chunk is a substantial threaded C++ run.
CHUNKS_PER_THREAD = 4

# Test hook, run by a worker at the start of each chunk (chunk index): lets the tests kill a
# worker mid-sweep. Not part of the API.
_chunk_hook: Optional[Callable[[int], None]] = None


# ----------------------------------------------------------------------------- the worker side
def _worker_threads(threads: int) -> int:
    """C++ threads for one chunk: the caller's ``threads`` if given (> 0), else this task's
    share of its machine's cores: the cores divided by the Dask threads of all workers on that
    host (several worker processes on one machine, as in a LocalCluster, must not each take
    every core). Results do not depend on it."""
    if threads > 0:
        return threads
    try:
        from distributed import get_worker

        worker = get_worker()
        per_host = _host_threads.get(_host(worker.address)) or worker.state.nthreads
    except Exception:  # not on a worker (a local test of the chunk function)
        per_host = 1
    return max(1, (os.cpu_count() or 1) // max(1, per_host))


# Dask threads per host, as the client saw them when it submitted the task running here.
_host_threads: dict = {}


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]


def _task(fn: Callable, shared: tuple, index: int, start: int, stop: int, threads: int,
          shares: dict) -> dict:
    """One chunk on a worker: ``fn(shared, index, start, stop, threads)``, after noting how
    many Dask threads share each host's cores."""
    _host_threads.update(shares)
    return fn(shared, index, start, stop, threads)


def _slice_rows(a: np.ndarray, n: int, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of an array with one row per item, or the array itself when it is
    shared by every item (leading axis 1)."""
    return np.ascontiguousarray(a[start:stop]) if a.shape[0] == n and n > 1 else a


def _solve_chunk(shared: tuple, index: int, start: int, stop: int, threads: int) -> dict:
    if _chunk_hook is not None:
        _chunk_hook(index)
    system, hist, t0, tf, times, opt, mode = shared
    from .history import HistoryData

    n = system.n_trajectories
    part = HistoryData(hist.t, _slice_rows(hist.x, n, start, stop),
                       _slice_rows(hist.f, n, start, stop), _slice_rows(hist.y0, n, start, stop),
                       hist.jumps)
    sub = system._sub_batch(start, stop)
    return sub._solve(part, t0, tf, times, opt, _worker_threads(threads), _core.OutputSpec(*mode))


def _lyapunov_chunk(shared: tuple, index: int, start: int, stop: int, threads: int) -> dict:
    if _chunk_hook is not None:
        _chunk_hook(index)
    system, args = shared
    n = system.n_trajectories
    t, x, f, y0 = args[:4]
    part = (t, _slice_rows(x, n, start, stop), _slice_rows(f, n, start, stop),
            _slice_rows(y0, n, start, stop)) + tuple(args[4:-1]) + (_worker_threads(threads),)
    return system._sub_batch(start, stop)._lyapunov(part)


def _iid_chunk(shared: tuple, index: int, start: int, stop: int, threads: int) -> dict:
    if _chunk_hook is not None:
        _chunk_hook(index)
    mats, cumulative, *rest = shared
    # The trailing `start` is the stream offset: the chunk's problems keep their global streams.
    args = (np.ascontiguousarray(mats[start:stop]), np.ascontiguousarray(cumulative[start:stop]),
            *rest, _worker_threads(threads), start)
    return _core.iid_product(*args)


def _gram_chunk(shared: tuple, index: int, start: int, stop: int, threads: int) -> dict:
    if _chunk_hook is not None:
        _chunk_hook(index)
    from .sgd.gram import _run_core

    spec, lr, batch, run = shared
    return _run_core(spec, lr[start:stop], batch[start:stop], **run,
                     threads=_worker_threads(threads), stream_offset=start)


def _map_chunk(shared: tuple, index: int, start: int, stop: int, threads: int) -> dict:
    """Cells [start, stop) of a stability map (row-major over (batch size, lr)): one core call
    per row segment, each on its row's seed with the lr index as stream."""
    if _chunk_hook is not None:
        _chunk_hook(index)
    from .sgd.gram import _run_core
    from .sgd.stability_map import row_seed

    spec, lrs, bs, seed, run = shared
    n_lr = len(lrs)
    parts = []
    cell = start
    while cell < stop:
        i, j0 = divmod(cell, n_lr)
        j1 = min(n_lr, j0 + (stop - cell))
        parts.append(_run_core(spec, lrs[j0:j1], np.full(j1 - j0, bs[i]), **run,
                               seed=row_seed(seed, i), threads=_worker_threads(threads),
                               stream_offset=j0))
        cell += j1 - j0
    return _concatenate(parts)


# ----------------------------------------------------------------------------- the client side
def _check_client(client: Any) -> None:
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("client: distributed runs need dask.distributed: "
                          "pip install 'delyap[distributed]'") from None
    if not isinstance(client, Client):
        raise TypeError(f"client: expected a dask.distributed.Client, got "
                        f"{type(client).__name__}")


def _concatenate(raws: list, shared: tuple = ()) -> dict:
    """The chunks' raw outputs joined along the item axis (keys in ``shared`` are the same in
    every chunk and taken from the first)."""
    out = {}
    for key, first in raws[0].items():
        if key in shared or not isinstance(first, np.ndarray) or first.ndim == 0:
            out[key] = first
        else:
            out[key] = np.concatenate([r[key] for r in raws], axis=0)
    return out


def _digest(payload: Any) -> str:
    return hashlib.sha256(pickle.dumps(payload, protocol=4)).hexdigest()[:32]


def _bounds(n_items: int, n_chunks: int) -> list:
    edges = np.linspace(0, n_items, n_chunks + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


class _Store:
    """A folder of finished chunks of one run (``<store>/<key>/``): ``chunks.json`` holds the
    chunk boundaries, ``chunk_<start>_<stop>.npz`` each chunk's raw output (written to a
    temporary name and renamed, so a killed client never leaves a half-written chunk)."""

    def __init__(self, root: str, key: str):
        self.folder = os.path.join(os.fspath(root), key)
        os.makedirs(self.folder, exist_ok=True)

    def bounds(self, default: list) -> list:
        path = os.path.join(self.folder, "chunks.json")
        if os.path.exists(path):
            with open(path) as fh:
                return [tuple(b) for b in json.load(fh)]
        self._write(path, lambda fh: fh.write(json.dumps(default).encode()))
        return default

    def _path(self, start: int, stop: int) -> str:
        return os.path.join(self.folder, f"chunk_{start}_{stop}.npz")

    def load(self, start: int, stop: int) -> Optional[dict]:
        path = self._path(start, stop)
        if not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def save(self, start: int, stop: int, raw: dict) -> None:
        self._write(self._path(start, stop), lambda fh: np.savez(fh, **raw))

    def _write(self, path: str, write: Callable) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


def _run(client: Any, kind: str, fn: Callable, shared: tuple, key_payload: Any, n_items: int,
         threads: int, store: Optional[str], bar: Progress, shared_keys: tuple = ()) -> dict:
    """Cut n_items into chunks, load the stored ones, run the rest on the cluster (results in
    order), save each as it completes, and join them."""
    from distributed import as_completed

    total_threads = sum(client.nthreads().values()) or 1
    bounds = _bounds(n_items, min(n_items, CHUNKS_PER_THREAD * total_threads))
    key = _digest((kind, key_payload))
    saved = None if store is None else _Store(store, key)
    if saved is not None:
        bounds = saved.bounds(bounds)
    results: list = [None] * len(bounds)
    todo = []
    for c, (a, b) in enumerate(bounds):
        raw = None if saved is None else saved.load(a, b)
        if raw is None:
            todo.append(c)
        else:
            results[c] = raw
            bar.advance(b - a)
    futures = {}
    if todo:
        # Replicated on every worker: a task rerun after its worker died finds them elsewhere.
        [data] = client.scatter([shared], broadcast=True, hash=False)
        shares = _host_shares(client)
        for c in todo:
            a, b = bounds[c]
            fut = client.submit(_task, fn, data, c, a, b, threads, shares,
                                key=f"delyap-{kind}-{key}-{a}-{b}")
            futures[fut.key] = (c, fut)
    try:
        for fut, raw in as_completed([f for _, f in futures.values()], with_results=True):
            c, _ = futures[fut.key]
            a, b = bounds[c]
            raw = {k: np.asarray(v) for k, v in raw.items()}
            if saved is not None:
                saved.save(a, b, raw)
            results[c] = raw
            bar.advance(b - a)
    finally:  # an error or Ctrl-C on the client: stop what is still queued
        pending = [f for _, f in futures.values() if not f.done()]
        if pending:
            client.cancel(pending)
    out = _concatenate(results, shared_keys)
    out["distributed"] = {"chunks": len(bounds), "computed": len(todo),
                          "loaded": len(bounds) - len(todo), "key": key}
    return out


def _threads_arg(threads: int) -> int:
    return int(threads) if threads and threads > 0 else 0


def _host_shares(client: Any) -> dict:
    """Dask threads per host over the cluster's workers (how many tasks share its cores)."""
    shares: dict = {}
    for address, n in client.nthreads().items():
        shares[_host(address)] = shares.get(_host(address), 0) + int(n)
    return shares


def solve_chunks(client: Any, system, hist, t0: float, tf: float, times, opt, n_threads: int,
                 mode: tuple, *, store: Optional[str], progress: ProgressLike) -> dict:
    """``solve_dde(..., client=)``: the core's raw output for the whole batch, run in chunks."""
    _check_client(client)
    if system.batch_size is None:
        raise ValueError("client: a distributed run needs a batch (array parameters)")
    system._sub_batch(0, 1)  # raises now, on the client, if the batch cannot be split
    shared = (system, hist, t0, tf, times, opt, tuple(mode))
    n = system.n_trajectories
    with Progress(progress, n, "solve_dde", "traj") as bar:
        return _run(client, "solve_dde", _solve_chunk, shared, shared, n,
                    _threads_arg(n_threads), store, bar, shared_keys=("t",))


def lyapunov_chunks(client: Any, system, args: tuple, *, store: Optional[str],
                    progress: ProgressLike) -> dict:
    """``lyapunov_spectrum(..., client=)``: ``args`` as for ``system._lyapunov`` (already
    holding the transient of the whole batch), run in chunks."""
    _check_client(client)
    if system.batch_size is None:
        raise ValueError("client: a distributed run needs a batch (array parameters)")
    system._sub_batch(0, 1)
    n = system.n_trajectories
    with Progress(progress, n, "lyapunov_spectrum", "traj") as bar:
        return _run(client, "lyapunov_spectrum", _lyapunov_chunk, (system, args),
                    (system, args[:-1]), n, _threads_arg(args[-1]), store, bar)


def iid_product_chunks(client: Any, core_args: tuple, *, store: Optional[str],
                       progress: ProgressLike) -> dict:
    """``iid_product(..., client=)``: ``core_args`` as for ``_core.iid_product``."""
    _check_client(client)
    n = core_args[0].shape[0]
    with Progress(progress, n, "iid_product", "problem") as bar:
        return _run(client, "iid_product", _iid_chunk, core_args[:-1], core_args[:-1], n,
                    _threads_arg(core_args[-1]), store, bar)


def gram_chunks(client: Any, spec, lr: np.ndarray, batch: np.ndarray, run: dict, *,
                store: Optional[str], progress: ProgressLike) -> dict:
    """``sgd.gram_lyapunov(..., client=)``: configurations (lr[i], batch[i]) in chunks."""
    _check_client(client)
    run = dict(run)
    threads = run.pop("threads", None)
    # Copies: broadcast views (a scalar batch size) do not travel well.
    shared = (spec, np.array(lr, dtype=float), np.array(batch), run)
    n = int(np.size(lr))
    with Progress(progress, n, "gram_lyapunov", "config") as bar:
        return _run(client, "gram_lyapunov", _gram_chunk, shared, shared, n,
                    _threads_arg(threads or 0), store, bar)


def stability_map_chunks(client: Any, spec, lrs: np.ndarray, bs: np.ndarray, seed: int,
                         run: dict, *, store: Optional[str], bar: Progress) -> dict:
    """``sgd.stability_map(..., client=)``: the map's cells, row-major over (batch size, lr),
    in chunks; arrays come back shaped (len(bs), len(lrs), ...)."""
    _check_client(client)
    run = dict(run)
    threads = run.pop("threads", None)
    shared = (spec, np.asarray(lrs, dtype=float), np.asarray(bs), int(seed), run)
    n = len(lrs) * len(bs)
    raw = _run(client, "stability_map", _map_chunk, shared, shared, n,
               _threads_arg(threads or 0), store, bar)
    shape = (len(bs), len(lrs))
    return {k: (v.reshape(shape + v.shape[1:]) if isinstance(v, np.ndarray) and v.ndim >= 1
                and v.shape[0] == n else v) for k, v in raw.items()}
