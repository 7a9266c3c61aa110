"""`mixlaw report` and the Python API: figure list (golden), self-contained page, partial results, exit codes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import make_runs
from report_fixtures import FAST, add_validation, write_results_dir, write_runs_csv

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
    assert "wrote" in err and "7 figures" in err
    html = out.read_text()
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html), (
        "the page must not load anything from the network"
    )
    assert html.count('src="data:image/png;base64,') == 7
    for spec in FIGURES:
        if spec.name == "validation":  # only a `mixlaw run` folder has validation.json
            assert not (out.parent / "report_figures" / "validation.png").exists()
            continue
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
        "<h3>mixlaw pipeline summary</h3>",
    ):
        assert text in html, text
    # summary.md is rendered, not pasted: no markdown syntax survives
    summary = html[html.index('id="summary"') :]
    assert "<table>" in summary and "|---|" not in summary and "**" not in summary
    # the answer comes first: verdict line, mixture table and chart, then warnings, then the diagnostics
    order = [html.index(key) for key in ('id="verdict"', 'id="mixture-table"', 'data-figure="mixture"')]
    order.append(html.index('id="diagnostics"'))
    assert order == sorted(order) and order[-1] < html.index('data-figure="cv_scatter"')
    assert "P(beats baseline)" in html[: order[1]] and "90% interval" in html[: order[-1]]


def test_partial_results_dir(cli, results, tmp_path):
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "optimum.json").write_text((results / "optimum.json").read_text())
    code, _, err = cli("report", folder, "--formats", "none")
    assert code == 0, err
    html = (folder / "report.html").read_text()
    assert _figures_in(html) == ["mixture", "optimum"]
    assert "no law.json" in html and html.count("Not shown:") == 6
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
    assert _figures_in(path.read_text()) == [f.name for f in FIGURES if f.name != "validation"]
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


def test_run_folder_leads_with_verdict_mixture_and_validation(cli, results, tmp_path):
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(results, folder)
    recommendation = {
        "verdict": "decline",
        "reason": "the gain is within the noise of the proxies",
        "p_beats_baseline": 0.61,
        "gain": {"value": 0.0004, "lo": -0.002, "hi": 0.003},
    }
    add_validation(folder, recommendation)
    code, _, err = cli("report", folder, "--formats", "none", "--quiet")
    assert code == 0, err
    html = (folder / "report.html").read_text()
    verdict = html[html.index('id="verdict"') : html.index('id="mixture-table"')]
    assert "Decline: keep the baseline" in verdict and "within the noise" in verdict
    assert "+0.0004" in verdict and "-0.0020 to +0.0030" in verdict and "0.61" in verdict
    assert _figures_in(html)[:2] == ["mixture", "validation"]
    # the validation sentence: measured gain 0.02 lies outside the recommendation's interval, same sign
    assert "The prediction held in direction but not in size" in html
    assert html.index('data-figure="validation"') < html.index('id="diagnostics"')


def test_answer_without_recommendation_has_no_verdict_word(results):
    from mixlaw.reporting.answer import answer_lines, answer_of

    optimum = json.loads((results / "optimum.json").read_text())
    optimum.pop("recommendation", None)  # as in an optimum.json written before recommendations existed
    answer = answer_of(optimum)
    assert answer.verdict is None and answer.gain is not None
    lines = answer_lines(optimum)
    assert not any(line.startswith("Verdict") for line in lines)
    assert lines[0].startswith("Mixture (90% intervals): ") and "[" in lines[0]
    assert "Predicted gain over uniform" in lines[1] and "P(beats baseline)" in lines[1]
    shares = {s.domain: s for s in answer.shares}
    assert set(shares) == {"a", "b", "c"} and all(s.lo <= s.hi for s in shares.values())


def test_robust_limits_ignore_one_diverging_curve():
    from mixlaw.reporting.figures import robust_limits

    curves = np.concatenate([np.linspace(2.0, 2.5, 200), np.geomspace(2.5, 1e10, 20)])
    lo, hi = robust_limits(curves, np.array([2.1]))
    assert lo < 2.0 and 2.5 <= hi < 4
    assert robust_limits(np.array([np.nan])) is None


def test_model_sizes_sort_naturally():
    import pandas as pd

    from mixlaw.reporting.scaling import model_order, natural_key

    assert sorted(["410M", "70M", "1B", "160M", "305M"], key=natural_key) == [
        "70M",
        "160M",
        "305M",
        "410M",
        "1B",
    ]
    assert sorted(["L2-D48", "L2-D128", "L1-D32"], key=natural_key) == ["L1-D32", "L2-D48", "L2-D128"]
    frame = pd.DataFrame({"model": ["big", "small", "mid"], "params": [3e8, 7e7, 1.6e8]})
    assert model_order(frame) == ["small", "mid", "big"]


def test_proxy_sanity_counts_violations_and_leaves_one_size_out():
    import pandas as pd

    from mixlaw.sanity import proxy_sanity

    params = {"70M": 7e7, "160M": 1.6e8, "410M": 4.1e8}
    rows = []
    for run in ("r0", "r1"):
        for model, n in params.items():
            for step in (1000, 2000, 3000):
                loss = 2.0 + 5 * (n / 7e7) ** -0.3 + (step / 1000) ** -0.5
                if run == "r1" and model == "160M":
                    loss += 2.0  # the middle size worse than the smallest: 3 checkpoints
                if run == "r0" and model == "70M" and step == 3000:
                    loss += 0.5  # loss rises with steps once
                rows.append({"run": run, "model": model, "params": n, "step": step, "total": loss})
    result = proxy_sanity(pd.DataFrame(rows), "step", params)
    assert result["size"]["violations"] == 3 and result["size"]["pairs"]["160M > 70M"] == 3
    assert result["size"]["mixtures_with_violations"] == 1 and result["size"]["checkpoints"] == 6
    assert result["step"]["violations"] == 1 and result["step"]["per_model"] == {
        "70M": 1,
        "160M": 0,
        "410M": 0,
    }
    held = result["size_loso"]["held_out"]
    assert set(held) == set(params) and held["410M"]["n"] == 2 and held["410M"]["max_rel"] > 0
    text = " ".join(result["messages"])
    assert "at 3 of 6 checkpoints" in text and "1 of 9 checkpoint intervals" not in text
    assert "in 1 of 12 checkpoint intervals" in text and "leave-one-size-out" in text
