"""The one output-path check (`mixlaw.outputs.check_output`): the rule, and that nothing is created."""

from __future__ import annotations

import os

import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.outputs import TABLE_SUFFIXES, check_output


def test_a_writable_file_or_folder_passes_and_nothing_is_created(tmp_path):
    assert check_output(tmp_path / "law.json") == tmp_path / "law.json"
    (tmp_path / "old.json").write_text("{}")
    assert check_output(tmp_path / "old.json") == tmp_path / "old.json"  # overwriting is allowed
    assert check_output(tmp_path / "new" / "deeper", "folder") == tmp_path / "new" / "deeper"
    assert check_output(tmp_path, "folder") == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


@pytest.mark.parametrize(
    "name, kind, reason",
    [
        ("adir", "file", "is a folder, expected a file name"),
        ("missing/out.json", "file", "does not exist (create it first)"),
        ("afile/out.json", "file", "afile is a file, not a folder"),
        ("afile/deeper/out.json", "file", "afile is a file, not a folder"),
        ("afile", "folder", "is a file, expected a folder"),
        ("afile/sub/deeper", "folder", "afile is a file, not a folder"),
    ],
)
def test_bad_paths_are_one_line_naming_flag_path_and_reason(tmp_path, name, kind, reason):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(MixlawInputError) as exc:
        check_output(tmp_path / name, kind, flag="--curve")
    message = str(exc.value)
    assert message.startswith(f"--curve {tmp_path / name}: ") and reason in message
    assert "\n" not in message


def test_unwritable_folder_and_read_only_file(tmp_path, monkeypatch):
    (tmp_path / "locked.json").write_text("{}")
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p).startswith(str(tmp_path)) else real(p, mode)
    )
    with pytest.raises(MixlawInputError, match="folder .* is not writable"):
        check_output(tmp_path / "law.json")
    with pytest.raises(MixlawInputError, match="the file is read-only"):
        check_output(tmp_path / "locked.json")
    with pytest.raises(MixlawInputError, match="is not writable"):
        check_output(tmp_path / "results", "folder")


def test_suffixes_are_the_writer_s(tmp_path):
    assert check_output(tmp_path / "runs.parquet", suffixes=TABLE_SUFFIXES)
    with pytest.raises(MixlawInputError, match=r"unsupported extension '\.xlsx'; use \.csv"):
        check_output(tmp_path / "runs.xlsx", suffixes=TABLE_SUFFIXES)
