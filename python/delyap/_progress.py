"""Progress of long calls: the ``progress=`` argument of every batch entry point.

The C++ core counts finished work items (trajectories, configurations, problems) in an atomic
that its worker threads bump without the GIL; the thread that waits for the run (and checks for
Ctrl-C every 50 ms) passes changed counts to the callback installed here
(``cpp/bindings/interruptible.hpp``). A call may run several core calls (a stability map runs
one per batch size, a distributed sweep one per chunk): :class:`Progress` adds them up over
the call's declared total.

``progress`` is

* ``None`` (default): a tqdm bar on stderr when stderr is a terminal, shown only once the call
  has run for :data:`SHOW_AFTER` seconds (short calls print nothing);
* ``True``: a tqdm bar from the start (the command line always passes this);
* ``False``: nothing;
* a callable ``f(done, total)``: called with a non-decreasing count of finished items, last
  with ``done == total`` when the call completes.

tqdm is optional: without it the bar is silently absent (a callable still works).
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Optional, Union

from . import _core

# (The type-ignores on _core below: stubs for the new progress hook and stream_offset come
# with the next stub regeneration.)

__all__ = ["Progress", "ProgressLike", "check_progress"]

ProgressLike = Union[None, bool, Callable[[int, int], Any]]

# Default (progress=None): the bar appears only after this many seconds, so that calls which
# finish quickly leave the terminal alone (tqdm's own ``delay``).
SHOW_AFTER = 2.0

_active = threading.local()  # the Progress running on this thread, if any (nested calls)


def check_progress(progress: ProgressLike) -> ProgressLike:
    """Validate ``progress`` (None, a bool, or a callable), naming the argument."""
    if progress is None or isinstance(progress, bool) or callable(progress):
        return progress
    raise TypeError(f"progress: expected None, True, False or a callable f(done, total), "
                    f"got {type(progress).__name__}")


def _make_bar(total: int, desc: str, unit: str, delay: float):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # optional: no bar
        return None
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, delay=delay, leave=False,
                dynamic_ncols=True)


class Progress:
    """Progress of one call over ``total`` items (a context manager).

    Inside ``with Progress(...) as p:``, each core call runs inside ``with p.stage(n):`` (its
    counts are offset by the items of the earlier stages); Python-side work reports with
    :meth:`advance`. A call nested in another's progress (``progress=None`` inside a running
    bar) reports nothing of its own.
    """

    def __init__(self, progress: ProgressLike, total: int, desc: str = "", unit: str = "it"):
        progress = check_progress(progress)
        self.total = int(total)
        self.done = 0
        self._offset = 0
        self._callback: Optional[Callable[[int, int], Any]] = None
        self._bar: Any = None
        nested = getattr(_active, "progress", None) is not None
        if callable(progress) and not isinstance(progress, bool):
            self._callback = progress
        elif progress is True or (progress is None and not nested and sys.stderr.isatty()):
            self._bar = _make_bar(self.total, desc, unit, 0.0 if progress else SHOW_AFTER)
        self.enabled = self._callback is not None or self._bar is not None
        self._outer: Optional[Progress] = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self._outer = getattr(_active, "progress", None)
            _active.progress = self
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.enabled:
            return
        _active.progress = self._outer
        if exc_type is None:
            self._set(self.total)
        if self._bar is not None:
            self._bar.close()

    def _set(self, n: int) -> None:
        n = min(int(n), self.total)
        if n <= self.done:
            return
        if self._bar is not None:
            self._bar.update(n - self.done)
        self.done = n
        if self._callback is not None:
            self._callback(n, self.total)

    def advance(self, n: int = 1) -> None:
        """Python-side work: ``n`` more items finished."""
        if self.enabled:
            self._offset += int(n)
            self._set(self._offset)

    def stage(self, n_items: int) -> _Stage:
        """Context for one core call over ``n_items`` items: the core's counts (installed as
        this thread's callback) are reported after those of the earlier stages."""
        return _Stage(self, int(n_items))


class _Stage:
    def __init__(self, owner: Progress, n_items: int):
        self.owner, self.n_items = owner, n_items
        self._previous: Any = None

    def __enter__(self) -> _Stage:
        if self.owner.enabled:
            base = self.owner._offset
            self._previous = _core._set_progress_callback(
                lambda n: self.owner._set(base + min(int(n), self.n_items)))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.owner.enabled:
            _core._set_progress_callback(self._previous)
            if exc_type is None:
                self.owner.advance(self.n_items)
