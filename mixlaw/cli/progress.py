"""Progress on stderr for the commands that take a while (evaluate, compare, design, pipeline).

The work functions take a `progress(done, total)` callback (optax style: passed in, never imported from the
CLI); `progress_callback` makes one. On a terminal it redraws one line; elsewhere (a log file, CI) it prints a
line when a step finishes at least `every` seconds after the last line, and always the last step, so a long
run is never silent and a short one prints one line. Nothing goes to stdout, and `-q` turns it off.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from mixlaw.train.eta import format_seconds

Progress = Callable[[int, int], None]


def progress_callback(
    label: str,
    quiet: bool = False,
    every: float = 10.0,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Progress | None:
    """A (done, total) callback that reports `label` progress with elapsed time and time left (linear in the
    steps done); None with `quiet`."""
    if quiet:
        return None
    out = stream or sys.stderr
    tty = out.isatty()
    started = clock()
    last = [started]

    def show(done: int, total: int) -> None:
        now = clock()
        elapsed = now - started
        left = elapsed / done * (total - done) if done else None
        text = f"mixlaw: {label} {done}/{total} ({format_seconds(elapsed)}"
        text += f", ~{format_seconds(left)} left)" if left is not None and done < total else ")"
        final = done >= total
        if tty:
            out.write("\r\x1b[2K" + text + ("\n" if final else ""))
            out.flush()
        elif final or now - last[0] >= every:
            print(text, file=out, flush=True)
            last[0] = now

    return show


def stage_logger(label: str, quiet: bool = False, stream: TextIO | None = None) -> Callable[[str], None]:
    """A `log(message)` callback: one `mixlaw: LABEL: message` line per stage on stderr (none with `quiet`)."""
    out = stream or sys.stderr

    def log(message: str) -> None:
        if not quiet:
            print(f"mixlaw: {label}: {message}", file=out, flush=True)

    return log


@contextmanager
def library_lines(
    logger: str, label: str, quiet: bool = False, stream: TextIO | None = None
) -> Iterator[None]:
    """While the block runs, show the INFO messages of `logger` (the library's one line per stage, e.g. the
    corpus build's `reading domain ...`) as `mixlaw: LABEL: message` lines on stderr; nothing with `quiet`."""
    if quiet:
        yield
        return
    target = logging.getLogger(logger)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_LabelFormatter(label))
    saved = target.level, target.propagate
    target.setLevel(min(logging.INFO, target.getEffectiveLevel()))
    target.propagate = False  # the root handler would print the same record a second time
    target.addHandler(handler)
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(saved[0])
        target.propagate = saved[1]


class _LabelFormatter(logging.Formatter):
    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def format(self, record: logging.LogRecord) -> str:
        kind = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return f"mixlaw: {self.label}: {kind}{record.getMessage()}"
