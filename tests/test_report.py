"""`mixlaw report` and the Python API: figure list (golden), self-contained page, partial results, exit codes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_runs
from report_fixtures import FAST, write_results_dir, write_runs_csv

import mixlaw
from mixlaw.cli.main import build_parser
from mixlaw.reporting import FIGURES

GOLDEN = Path(__file__).parent / "golden" / "report_figures.json"
UPDATE = os.environ.get("MIXLAW_UPDATE_GOLDEN") == "1"
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_results_dir(tmp_path_factory.mktemp("results") / "results")


def _figures_in(html: str) -> list[str]:
    return re.findall(r'data-figure="([^"]+)"', html)


def test_figure_list_golden(cli, results, tmp_path):
    code, _, err = cli("report", results, "--out", tmp_path / "full.html", "--quiet")
    assert code == 0, err
    full = _figures_in((tmp_path / "full.html").read_text())
    runs = write_runs_csv(tmp_path)
    code, _, err = cli(
        "report", runs, "--out", tmp_path / "runs.html", "--cv", "4", "--param", "restarts=4", "-q"
    )
    assert code == 0, err
    from_runs = _figures_in((tmp_path / "runs.html").read_text())
    actual = {
        "figures": [{"name": f.name, "title": f.title} for f in FIGURES],
        "results_dir": full,
        "runs_table_3_domains": from_runs,
    }
    if UPDATE:
        GOLDEN.write_text(json.dumps(actual, indent=2) + "\n")
    assert actual == json.loads(GOLDEN.read_text())


def test_results_dir_report_is_self_contained(cli, results, tmp_path):
    out = tmp_path / "sub" / "report.html"
    code, _, err = cli("report", results, "--out", out)
    assert code == 2 and "sub does not exist" in err  # a file output's folder is not created (mixlaw.outputs)
    out.parent.mkdir()
    code, _, err = cli("report", results, "--out", out)
    assert code == 0, err
    assert "wrote" in err and "6 figures" in err
    html = out.read_text()
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html), (
        "the page must not load anything from the network"
    )
    assert html.count('src="data:image/png;base64,') == 6
    for spec in FIGURES:
        for ext in ("png", "svg"):
            path = out.parent / "report_figures" / f"{spec.name}.{ext}"
            assert path.stat().st_size > 5000, path
    # error numbers, optimum, runs summary, commands and versions are on the page
    for text in (
        "MAE",
        "Spearman",
        "optimum",
        "uniform",
        "mixlaw pipeline",
        "mixlaw report",
        "step check",
        "size check",
        "equivalent_extra_steps",
        "numpy",
        "matplotlib",
        "validation domains",
        "Pipeline summary",
    ):
        assert text in html, text


def test_partial_results_dir(cli, results, tmp_path):
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "optimum.json").write_text((results / "optimum.json").read_text())
    code, _, err = cli("report", folder, "--formats", "none")
    assert code == 0, err
    html = (folder / "report.html").read_text()
    assert _figures_in(html) == ["optimum"]
    assert "no law.json" in html and html.count("Not shown:") == 5
    assert not (folder / "report_figures").exists()


def test_report_input_errors(cli, tmp_path, results):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("report", empty)
    assert code == 2 and "no results to report" in err
    code, _, err = cli("report", tmp_path / "missing.csv")
    assert code == 2 and "not found" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "predictions.csv").write_text("run,target,observed,predicted\nr1,total,oops,2.0\n")
    code, _, err = cli("report", bad)
    assert code == 2 and "line 2: column observed: non-numeric value 'oops'" in err
    code, _, err = cli("report", results, "--formats", "gif")
    assert code == 2 and "unknown format(s) gif" in err


def test_python_api_mirrors_cli(tmp_path, results):
    runs = mixlaw.read_runs(write_runs_csv(tmp_path))
    law = mixlaw.fit(runs, law="dml", hyper=FAST)
    assert law.domains == ["a", "b", "c"]
    X = np.array([[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    predicted = law.predict(X)
    assert set(predicted) == {"a", "b", "c", "total"} and predicted["total"].shape == (2,)
    frame = mixlaw.predict(law, [{"p_a": 0.2, "p_b": 0.3, "p_c": 0.5}])
    assert frame["pred_total"].iloc[0] == pytest.approx(predicted["total"][0])
    best = mixlaw.optimize(law)
    assert set(best["mixture"]) == {"p_a", "p_b", "p_c"}
    assert best["predicted"]["total"] <= best["baseline"]["predicted"]["total"] + 1e-9
    assert "target_ratio" in mixlaw.export(best, "olmo-core")
    scores = mixlaw.evaluate(make_runs(n_mixtures=12), law="dml", cv=3, hyper=FAST)
    assert scores["metrics"]["total"]["mae"] < 0.02
    path = mixlaw.report(results, out=tmp_path / "api.html", formats=())
    assert _figures_in(path.read_text()) == [f.name for f in FIGURES]
    with pytest.raises(mixlaw.MixlawInputError, match="unknown selection argument"):
        mixlaw.fit(runs, law="dml", modle="70M")


def _commands() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)


def test_every_command_has_help_with_examples():
    missing = [name for name, sub in _commands().items() if "example" not in sub.format_help().lower()]
    assert missing == [], f"--help without examples: {', '.join(missing)}"


def test_exit_codes_documented(cli):
    code, out, _ = cli()
    assert code == 2
    assert "exit codes: 0 ok, 2 bad input" in out and "1 internal error" in out
