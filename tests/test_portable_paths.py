import os

from mixlaw.outputs import command_line, portable_path


def test_portable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert portable_path("a/b.csv") == "a/b.csv"
    assert portable_path(str(tmp_path / "x" / "r.csv")) == os.path.join("x", "r.csv")
    assert portable_path("/elsewhere/data/r.csv") == "r.csv"
    assert (
        command_line(["fit", "/elsewhere/r.csv", "--out=/elsewhere/l.json", "-q"])
        == "mixlaw fit r.csv --out=l.json -q"
    )
