"""Progress on stderr for evaluate, compare, design (the corpus build): lines, throttling, -q, clean stdout."""

from __future__ import annotations

import io
import json
import logging

import yaml

from mixlaw.cli.main import main
from mixlaw.cli.progress import library_lines, progress_callback
from tests.conftest import make_runs


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_are_throttled_off_a_terminal_and_the_last_always_shows():
    out, clock = io.StringIO(), Clock()
    show = progress_callback("evaluate: folds", stream=out, every=10.0, clock=clock)
    for i in range(1, 6):
        clock.now = 4.0 * i  # a step every 4 s
        show(i, 5)
    lines = out.getvalue().splitlines()
    # at 12 s (>= 10 s after the start) and at 20 s (the last)
    assert lines == ["mixlaw: evaluate: folds 3/5 (12s, ~8s left)", "mixlaw: evaluate: folds 5/5 (20s)"]
    assert progress_callback("x", quiet=True) is None


def test_progress_redraws_one_line_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, clock = Tty(), Clock()
    show = progress_callback("compare: laws", stream=out, clock=clock)
    show(1, 2)
    show(2, 2)
    assert (
        out.getvalue()
        == "\r\x1b[2Kmixlaw: compare: laws 1/2 (0s, ~0s left)\r\x1b[2Kmixlaw: compare: laws 2/2 (0s)\n"
    )


def test_library_lines_show_a_loggers_stage_messages_then_restore_it():
    logger = logging.getLogger("mixlaw.test.stages")
    before = logger.level, logger.propagate
    out = io.StringIO()
    with library_lines("mixlaw.test.stages", "design", stream=out):
        logger.info("corpus: reading domain %s", "web")
        logger.warning("corpus: short")
        logger.debug("not shown")
    logger.info("after the block: not shown")
    assert out.getvalue().splitlines() == [
        "mixlaw: design: corpus: reading domain web",
        "mixlaw: design: warning: corpus: short",
    ]
    assert (logger.level, logger.propagate) == before
    quiet = io.StringIO()
    with library_lines("mixlaw.test.stages", "design", quiet=True, stream=quiet):
        logger.info("x")
    assert quiet.getvalue() == ""


def _corpus_config(tmp_path):
    (tmp_path / "txt").mkdir()
    for i in range(30):
        (tmp_path / "txt" / f"{i}.txt").write_text(f"story {i}: " + "once upon a time " * 20)
    with open(tmp_path / "web.jsonl", "w") as fh:
        for i in range(30):
            fh.write(json.dumps({"content": f"web page {i} " + "lorem ipsum " * 30}) + "\n")
    config = {
        "corpus": {
            "valid_fraction": 0.2,
            "domains": [
                {"name": "stories", "source": "files", "paths": ["txt/*.txt"]},
                {"name": "web-pages", "source": "files", "paths": ["web.jsonl"], "text_field": "content"},
            ],
        },
        "models": [{"layers": 1, "width": 32}],
        "steps": 10,
        "training": {"batch_size": 2, "seq_len": 16, "warmup_steps": 1},
        "design": {"method": "dirichlet", "n": 3, "seed": 0},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_design_shows_the_corpus_build_on_stderr_only(tmp_path, capsys):
    config = _corpus_config(tmp_path)
    assert main(["design", str(config), "--cache-dir", str(tmp_path / "cache")]) == 0
    captured = capsys.readouterr()
    assert "mixlaw: design: corpus: reading domain stories" in captured.err
    assert len(yaml.safe_load(captured.out)["mixtures"]) == 3  # stdout stays the YAML, pipeable
    # cached: no build lines; -q: nothing at all
    assert main(["design", str(config), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "reading domain" not in capsys.readouterr().err
    assert main(["design", str(config), "--cache-dir", str(tmp_path / "cache2"), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_evaluate_and_compare_report_progress_on_stderr(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    make_runs(n_mixtures=10).to_csv(runs, index=False)
    assert main(["evaluate", str(runs), "--law", "dml", "--cv", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert "mixlaw: evaluate: cross-validation folds 3/3" in captured.err
    assert json.loads(captured.out)["law"] == "dml"  # stdout: the JSON only
    assert main(["compare", str(runs), "--laws", "dml,regmix-linear", "--cv", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert "mixlaw: compare: laws 2/2" in captured.err
    assert "mixlaw: compare: auto (nested), outer folds 3/3" in captured.err
    assert json.loads(captured.out)["cv"] == 3
    assert main(["evaluate", str(runs), "--law", "dml", "--cv", "3", "-q"]) == 0
    assert capsys.readouterr().err == ""
