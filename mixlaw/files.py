"""File helpers shared by every module: crash-safe writes, folder locks, JSON/YAML reads with one-line errors,
and JSON writes of numpy values.

A file is written to a temporary name in the same folder, flushed to disk and renamed over the target, so a
reader (or a resumed run after a kill) sees either the old file or the complete new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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


def to_jsonable(value: Any) -> Any:
    """Recursively convert numpy scalars/arrays to plain Python for json.dump (non-finite floats -> None)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dump_json(value: Any, path: str | Path) -> None:
    """Write `value` as indented JSON atomically (see `to_jsonable`)."""
    atomic_write(path, json.dumps(to_jsonable(value), indent=2) + "\n")


def read_table(path: str | Path, what: str = "runs table") -> pd.DataFrame:
    """Read a CSV, Parquet or JSONL file into a DataFrame with clear one-line errors."""
    path = Path(path)
    if not path.exists():
        raise MixlawInputError(f"{path}: {what} file not found")
    if path.is_dir():
        raise MixlawInputError(f"{path}: is a directory, expected a {what} file (.csv, .parquet, .jsonl)")
    if path.stat().st_size == 0:
        raise MixlawInputError(f"{path}: {what} file is empty")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types
            raise MixlawInputError(f"{path}: cannot read Parquet: {exc}") from None
    elif suffix in (".jsonl", ".ndjson", ".json"):
        text = _decode(path)
        try:
            frame = pd.read_json(io.StringIO(text), lines=suffix != ".json", dtype=False)
        except ValueError as exc:
            raise MixlawInputError(f"{path}: invalid JSON lines: {exc}") from None
    else:
        frame = _read_csv(path, _decode(path))
    if frame.empty:
        raise MixlawInputError(f"{path}: {what} has a header but no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MixlawInputError(
            f"{path}: line {line}: bytes that are not UTF-8 (at byte {exc.start})"
        ) from None


def _read_csv(path: Path, text: str) -> pd.DataFrame:
    rows = csv.reader(io.StringIO(text))
    try:
        header = next(rows)
    except StopIteration:
        raise MixlawInputError(f"{path}: file is empty") from None
    width = len(header)
    if width == 0 or all(not h.strip() for h in header):
        raise MixlawInputError(f"{path}: line 1: empty header")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise MixlawInputError(f"{path}: line 1: duplicated column(s) {', '.join(duplicated)}")
    n_rows = 0
    if (
        '"' not in text
    ):  # no quoting: fields are the commas + 1 (5x faster than the csv module on large tables)
        for line_number, line in enumerate(text.splitlines()[1:], start=2):
            if not line:
                continue
            fields = line.count(",") + 1
            if fields != width:
                raise MixlawInputError(
                    f"{path}: line {line_number}: ragged row with {fields} fields, header has {width}"
                )
            n_rows += 1
    else:
        for line_number, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != width:
                raise MixlawInputError(
                    f"{path}: line {line_number}: ragged row with {len(row)} fields, header has {width}"
                )
            n_rows += 1
    if n_rows == 0:
        raise MixlawInputError(f"{path}: header only, no data rows")
    return pd.read_csv(
        io.StringIO(text), dtype={"run": str, "valid_domain": str, "model": str}, skip_blank_lines=True
    )
