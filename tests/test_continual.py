"""Continual pretraining: critical proportion on synthetic data with a known answer, CLI and errors."""

import json

import numpy as np
import pandas as pd
import pytest

from mixlaw.cli.main import main
from mixlaw.continual import continual_analysis, critical_share, fit_curve, prepare_continual
from mixlaw.runs import RunsTable, validate_runs

C, B, K = 2.5, -1.2, -3.0  # original-domain law: L = C + exp(B + K r)
CN, BN, KN = 1.1, -1.5, 0.8  # new-domain law
R_STAR = 0.3
WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}
OFFSETS = {"a": -0.1, "b": 0.05, "c": 0.175}  # per-domain offsets with weighted mean 0


def _law(r):
    return C + np.exp(B + K * r)


def _frame(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Base run at step 0 (all original data), continual runs at steps 500 and 1000; the weighted original
    total follows the law exactly at step 1000 (plus optional noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    base_total = _law(R_STAR)
    for d, off in OFFSETS.items():
        rows.append(
            {
                "run": "base",
                "step": 0,
                "p_orig": 1.0,
                "p_new": 0.0,
                "valid_domain": d,
                "loss": base_total + off,
            }
        )
    rows.append({"run": "base", "step": 0, "p_orig": 1.0, "p_new": 0.0, "valid_domain": "new", "loss": 2.0})
    for i, r in enumerate([0.1, 0.2, 0.45, 0.6, 0.35]):
        for step in (500, 1000):
            shift = 0.0 if step == 1000 else 0.05
            eps = rng.normal(0, noise) if noise else 0.0
            for d, off in OFFSETS.items():
                rows.append(
                    {
                        "run": f"r{i}",
                        "step": step,
                        "p_orig": r,
                        "p_new": 1 - r,
                        "valid_domain": d,
                        "loss": _law(r) + off + shift + eps,
                    }
                )
            rows.append(
                {
                    "run": f"r{i}",
                    "step": step,
                    "p_orig": r,
                    "p_new": 1 - r,
                    "valid_domain": "new",
                    "loss": CN + np.exp(BN + KN * r) + shift,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture()
def weights_file(tmp_path):
    path = tmp_path / "w.csv"
    pd.DataFrame({"valid_domain": list(WEIGHTS), "valid_weight": list(WEIGHTS.values())}).to_csv(
        path, index=False
    )
    return str(path)


def test_critical_share_recovered_exactly_on_noiseless_data(weights_file):
    table = RunsTable(validate_runs(_frame(), "synthetic"), "synthetic")
    data = prepare_continual(table, "base", "all", ["new"], weights_file)
    assert data.step == 1000 and data.original_train == ["orig"]
    assert data.base_original == pytest.approx(_law(R_STAR), abs=1e-12)
    res = continual_analysis(data, holdout_runs=["r4"], n_bootstrap=50, c_init="joint")
    assert res["critical"]["share"] == pytest.approx(R_STAR, abs=1e-4)
    assert res["law"]["original"]["c"] == pytest.approx(C, abs=1e-3)
    h = res["holdout"][0]
    assert h["original"]["error"] == pytest.approx(0.0, abs=1e-4)
    assert h["measured_no_forgetting"] and h["critical_share_on_right_side"]
    curve = res["curve"]
    assert (curve["no_forgetting"] == (curve["original_share"] >= R_STAR - 1e-4)).all()
    assert res["critical"]["new_gain_at_share"] == pytest.approx(
        2.0 - (CN + np.exp(BN + KN * R_STAR)), abs=1e-3
    )


def test_interval_covers_the_answer_under_noise(weights_file):
    table = RunsTable(validate_runs(_frame(noise=0.002, seed=1), "synthetic"), "synthetic")
    data = prepare_continual(table, "base", "all", ["new"], weights_file)
    res = continual_analysis(data, n_bootstrap=200, level=0.95)
    lo, hi = res["critical"]["interval"]
    assert lo <= R_STAR <= hi
    assert res["noise"]["original"]["sd"] > 0
    assert abs(res["critical"]["share"] - R_STAR) < 0.05


def test_critical_share_edge_cases():
    p = {"c": 2.0, "b": 0.0, "k": -2.0}  # L(0) = 3, L(1) = 2.135
    assert critical_share(p, 3.5) == (0.0, "always")
    assert critical_share(p, 2.1) == (None, "never")
    share, status = critical_share(p, 2.5)
    assert status == "reached" and 2.0 + np.exp(-2 * share) == pytest.approx(2.5)
    r = np.array([0.1, 0.3, 0.5, 0.7])
    fitted = fit_curve(r, 2.0 + np.exp(-2.0 * r))
    assert fitted["k"] == pytest.approx(-2.0, abs=0.05)


def test_cli_writes_json_and_curve_and_errors_are_one_line(tmp_path, weights_file, capsys):
    runs = tmp_path / "runs.csv"
    _frame().to_csv(runs, index=False)
    out, curve = tmp_path / "res.json", tmp_path / "curve.csv"
    code = main(
        [
            "continual",
            str(runs),
            "--base-run",
            "base",
            "--original",
            "a,b,c",
            "--new",
            "new",
            "--valid-weights",
            weights_file,
            "--holdout-runs",
            "r4",
            "--bootstrap",
            "20",
            "--out",
            str(out),
            "--curve",
            str(curve),
            "-q",
        ]
    )
    assert code == 0
    res = json.loads(out.read_text())
    assert res["critical"]["share"] == pytest.approx(R_STAR, abs=2e-3)
    assert "right side" in capsys.readouterr().out
    assert {"original_share", "pred_original", "forgetting", "new_gain"} <= set(pd.read_csv(curve).columns)
    for extra, message in (
        (["--base-run", "nope"], "no run 'nope'"),
        (["--base-run", "base", "--step", "7"], "step 7"),
        (["--base-run", "base", "--holdout-runs", "zz"], "--holdout-runs"),
    ):
        code = main(
            ["continual", str(runs), "--original", "all", "--new", "new", *extra, "--bootstrap", "0", "-q"]
        )
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1
    code = main(["continual", str(runs), "--base-run", "base", "--original", "all", "--new", "python", "-q"])
    assert code == 2 and "--new" in capsys.readouterr().err
