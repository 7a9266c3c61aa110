"""Start-up and guards of a sweep's pool workers. Imports only the standard library's light modules.

The process pool unpickles `init` (this module) before any work item, so importing it costs milliseconds and
the worker is tied to the sweep before it imports pandas or torch for its first run:

- `init(parent, threads)`, the pool initializer: PR_SET_PDEATHSIG (SIGKILL when the sweep process dies, Linux),
  then exit at once if the sweep already died before that was set (`getppid()` is no longer `parent`); a
  watchdog thread for other systems; single-threaded math; SIGINT only asks the worker to stop.
- `check_may_train(lock)`, before each run: the sweep process is alive and the folder's lock is held, so a
  worker never trains into a folder without its lock; a stop was not asked for.
- `stop_requested()`, polled by the trainer after every step: after a SIGINT the running run writes a
  checkpoint and stops (instead of finishing, then taking the next queued run).
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
import time
from pathlib import Path

_parent: int | None = None  # the sweep process of a pool worker; None in any other process
_stop = threading.Event()


def init(parent: int, threads: int) -> None:
    """Pool initializer: die with the sweep process `parent`, `threads` math threads, SIGINT = stop."""
    global _parent
    _parent = parent
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the sweep died before the death signal was set
        os._exit(1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    signal.signal(signal.SIGINT, _on_sigint)
    threading.Thread(target=_watchdog, args=(parent,), daemon=True).start()


def _on_sigint(signum: int, frame: object) -> None:
    _stop.set()


def _watchdog(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def stop_requested() -> bool:
    """Whether this worker was told to stop (SIGINT)."""
    return _stop.is_set()


def check_may_train(lock: str | Path) -> None:
    """In a pool worker, before a run: exit if the sweep process is gone, raise if the folder's `lock` is
    free (no sweep holds it) or a stop was asked for. Does nothing outside a pool worker (inline, Ray)."""
    if _parent is None:
        return
    if os.getppid() != _parent:
        os._exit(1)
    if _stop.is_set():
        raise KeyboardInterrupt("sweep worker: stopped before the run")
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # held, by the sweep process that is our parent
        fcntl.flock(fh, fcntl.LOCK_UN)
    raise RuntimeError(f"{lock}: the sweep does not hold this lock; a worker does not train without it")
