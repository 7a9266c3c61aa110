"""`mixlaw fit / predict / evaluate / laws / demo` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from mixlaw.fitted import FittedLaw


def test_fit_then_predict(tmp_path, cli, runs_csv):
    law_path = tmp_path / "law.json"
    code, _, err = cli("fit", runs_csv, "--law", "dml", "--out", law_path, "--param", "restarts=8")
    assert code == 0, err
    saved = json.loads(law_path.read_text())
    assert saved["schema_version"] == 1 and saved["law"] == "dml" and saved["domains"] == ["a", "b", "c"]
    assert saved["data"]["sha256"] and saved["mixlaw_version"] and saved["weights"]["spec"] == "uniform"
    mixtures = tmp_path / "mix.csv"
    pd.DataFrame({"name": ["x", "y"], "p_a": [0.2, 0.5], "p_b": [0.3, 0.5], "p_c": [0.5, 0.0]}).to_csv(
        mixtures, index=False
    )
    out = tmp_path / "pred.csv"
    code, _, err = cli("predict", law_path, mixtures, "--out", out)
    assert code == 0, err
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["name", "p_a", "p_b", "p_c", "pred_a", "pred_b", "pred_c", "pred_total"]
    assert pred["pred_total"].tolist() == pytest.approx(
        pred[["pred_a", "pred_b", "pred_c"]].mean(axis=1).tolist()
    )
    # the law reproduces its own training data closely
    fitted = FittedLaw.load(law_path)
    assert max(fitted.law.summary_["rmse"]) < 0.01


def test_predict_warns_when_a_law_extrapolates_wildly(tmp_path, cli, runs_csv, caplog):
    law_path = tmp_path / "law.json"
    cli("fit", runs_csv, "--law", "dml", "--out", law_path, "--param", "restarts=4")
    saved = json.loads(law_path.read_text())
    assert set(saved["loss_range"]) == {"a", "b", "c", "total"}
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("p_a,p_b,p_c\n0.2,0.3,0.5\n")
    code, _, _ = cli("predict", law_path, mixtures)
    assert code == 0 and "far outside" not in caplog.text
    saved["params"]["theta"][0] = [40.0, 0.0, 0.0]  # an exponent blown up as by an unregularized fit
    law_path.write_text(json.dumps(saved))
    code, _, _ = cli("predict", law_path, mixtures)
    assert (
        code == 0
        and "pred_a value(s) far outside the fitted losses" in caplog.text
        and "row 1" in caplog.text
    )


def test_predict_rejects_bad_mixtures(tmp_path, cli, runs_csv):
    law_path = tmp_path / "law.json"
    cli("fit", runs_csv, "--law", "dml", "--out", law_path, "--param", "restarts=4")
    cases = {
        "p_a,p_b\n0.5,0.5\n": "missing training domain column(s) p_c",
        "p_a,p_b,p_c,p_d\n0.5,0.5,0,0\n": "unknown training domain column(s) p_d",
        "p_a,p_b,p_c\n0.5,0.5,0.5\n": "line 2: proportions sum to 1.5",
    }
    for text, message in cases.items():
        path = tmp_path / "m.csv"
        path.write_text(text)
        code, _, err = cli("predict", law_path, path)
        assert code == 2 and message in err
    code, _, err = cli("predict", tmp_path / "missing.json", path)
    assert code == 2 and "law file not found" in err


def test_evaluate_json_contract(cli, runs_csv):
    code, out, err = cli("evaluate", runs_csv, "--law", "dml", "--cv", "4", "--json", "--param", "restarts=8")
    assert code == 0, err
    result = json.loads(out)
    assert list(result)[:4] == ["law", "cv", "n_mixtures", "metrics"]
    assert result["cv"] == 4 and result["n_mixtures"] == 24
    assert set(result["metrics"]) == {"total", "a", "b", "c"}
    assert set(result["metrics"]["total"]) == {"mae", "mare", "rmse", "max", "spearman", "r2"}
    assert result["metrics"]["total"]["mae"] < 0.01  # noise is 0.002 per domain


def test_evaluate_holdout_and_table(cli, runs_csv):
    code, out, _ = cli("evaluate", runs_csv, "--law", "ridge-rlogr", "--holdout-runs", "r0,r1,r2")
    assert code == 0 and "total" in out and "mae" in out
    code, _, err = cli("evaluate", runs_csv, "--law", "dml", "--holdout-runs", "r0,zz")
    assert code == 2 and "unknown run(s) zz" in err
    code, _, err = cli("evaluate", runs_csv, "--law", "nope")
    assert code == 2 and "unknown law 'nope'" in err


def test_laws_listing(cli):
    code, out, _ = cli("laws")
    names = [line.split("\t")[0] for line in out.strip().splitlines()]
    assert {"dml2", "dml", "dml-implicit", "dml-log", "ridge-rlogr"} <= set(names)
    assert all("\t" in line for line in out.strip().splitlines())


@pytest.mark.slow  # 60 s on a loaded 2-core machine
def test_demo_runs_end_to_end(tmp_path, cli):
    code, out, _ = cli("demo", "--out", tmp_path / "demo", "--quiet")
    assert code == 0
    optimum = json.loads((tmp_path / "demo" / "optimum.json").read_text())
    # the optimum chosen from the fitted law is close to the true optimum's loss
    assert optimum["regret"] < 0.003
    assert optimum["true_total_at_optimum"] < optimum["true_total_at_uniform"]
    assert "chosen law" in out


def test_console_script_exit_codes(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mixlaw",
            "fit",
            str(tmp_path / "x.csv"),
            "--law",
            "dml",
            "--out",
            str(tmp_path / "l.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and run.stderr.startswith("mixlaw: error:") and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "mixlaw", "fit", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "examples:" in run.stdout
