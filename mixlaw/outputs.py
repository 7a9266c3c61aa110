"""The one check of an output path, run by every command that writes before it does any work.

The rule:
- a **file** output (LAW.json, OPT.json, a runs table, report.html, ...) must not be a folder, its folder must
  already exist (a missing folder is refused, not created: a typo in a path should not grow a tree of folders
  where the user does not look), be a folder (not a file) and be writable; an existing file must be writable.
  `suffixes`, when given, are the extensions the writer understands (anything else is refused, not written
  as CSV under a misleading name);
- a **folder** output (a results folder the command creates and fills: pipeline, sweep, run, demo) must not be
  a file; a missing folder and its missing parents are created by the command later, so the nearest existing
  ancestor must be a folder and writable.
Every refusal is a one-line MixlawInputError naming the flag, the path and the reason (exit 2).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

from mixlaw.errors import MixlawInputError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson")  # what `mixlaw.runs.write_runs` writes


def check_output(
    path: str | Path,
    kind: Literal["file", "folder"] = "file",
    flag: str = "--out",
    suffixes: tuple[str, ...] | None = None,
) -> Path:
    """`path` as a Path if a command can write it (see the module's rule), else a one-line MixlawInputError."""
    path = Path(path)
    where = f"{flag} {path}" if flag else str(path)
    if kind == "file":
        if path.is_dir():
            raise MixlawInputError(f"{where}: is a folder, expected a file name")
        if suffixes is not None and path.suffix.lower() not in suffixes:
            raise MixlawInputError(
                f"{where}: unsupported extension {path.suffix or '(none)'!r}; use {', '.join(suffixes)}"
            )
        if path.exists() and not os.access(path, os.W_OK):
            raise MixlawInputError(f"{where}: the file is read-only")
        folder = path.parent
        if not folder.exists():
            _refuse_file_ancestor(folder, where)
            raise MixlawInputError(f"{where}: folder {folder} does not exist (create it first)")
        if not folder.is_dir():
            raise MixlawInputError(f"{where}: {folder} is a file, not a folder")
        _writable(folder, where)
        return path
    if kind != "folder":
        raise ValueError(f"kind must be 'file' or 'folder', got {kind!r}")
    if path.exists():
        if not path.is_dir():
            raise MixlawInputError(f"{where}: is a file, expected a folder")
        _writable(path, where)
        return path
    _writable(_refuse_file_ancestor(path, where), where)
    return path


def _refuse_file_ancestor(path: Path, where: str) -> Path:
    """The nearest existing ancestor of the missing `path`; an error if it is a file."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise MixlawInputError(f"{where}: {parent} is a file, not a folder")
            return parent
    return Path("/")


def _writable(folder: Path, where: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MixlawInputError(f"{where}: folder {folder} is not writable")


def portable_path(path: str | os.PathLike) -> str:
    """`path` as written into an artifact: relative paths unchanged, an absolute path relative to the working
    directory when it lies below it, else its file name (artifacts carry no machine paths)."""
    text = os.fspath(path)
    p = Path(text)
    if not p.is_absolute():
        return text
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return p.name


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (`mixlaw ...`), with absolute paths made portable (`portable_path`)."""
    parts = []
    for token in sys.argv[1:] if argv is None else argv:
        flag, eq, value = token.partition("=")
        if eq and value.startswith("/"):
            parts.append(f"{flag}={portable_path(value)}")
        else:
            parts.append(portable_path(token) if token.startswith("/") else token)
    return " ".join(["mixlaw", *parts])
