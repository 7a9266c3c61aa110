"""File helpers shared by every module: crash-safe writes, folder locks, and JSON/YAML reads with one-line errors.

A file is written to a temporary name in the same folder, flushed to disk and renamed over the target, so a
reader (or a resumed run after a kill) sees either the old file or the complete new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mixlaw.errors import MixlawInputError


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds, fsync it and rename it over `path`
    (for writers that want a file name, e.g. `to_parquet` or `safetensors.save_file`). On error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to `path` atomically."""
    with replacing(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)


@contextlib.contextmanager
def locked(path: str | Path, busy: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the lock file `path` for the block (released if the process dies).

    With `busy`, do not wait: if another process holds the lock, raise MixlawInputError(busy) (a folder that a
    second `mixlaw run` or sweep must not share). Without it, wait for the lock (a cache built once).
    Portable (`filelock`: flock on POSIX, msvcrt on Windows)."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # thread_local=False and is_singleton=False: every call is its own lock, so a second holder in the same
    # process is refused exactly like one in another process.
    lock = FileLock(path, timeout=0 if busy else -1, thread_local=False, is_singleton=False)
    try:
        lock.acquire()
    except Timeout:
        raise MixlawInputError(busy) from None
    try:
        yield
    finally:
        lock.release()


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; a missing file or invalid JSON is a one-line MixlawInputError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise MixlawInputError(f"{path}: {what} file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MixlawInputError(f"{path}: not valid JSON ({exc})") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse a YAML (or JSON) file; errors as in `read_json`, with the line of a YAML syntax error."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MixlawInputError(f"{path}: {what} file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise MixlawInputError(f"{path}: bytes that are not UTF-8 ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MixlawInputError(
            f"{path}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        ) from None
