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


# -- length dependence ----------------------------------------------------------------------------------------

STEPS = (400, 500, 600, 700, 800, 900, 1000)
DRIFT = -0.04  # the synthetic critical share moves by this per doubling of the continual run's length


def _r_star_at(step: float) -> float:
    return R_STAR + DRIFT * np.log2(step / 1000)


def _drifting_frame(noise: float = 0.0005, seed: int = 0) -> pd.DataFrame:
    """Base run at step 0; continual runs whose original-loss law at step S crosses the base loss at
    r*(S) = R_STAR + DRIFT log2(S / 1000) (checkpoint noise `noise`)."""
    rng = np.random.default_rng(seed)
    base_total = _law(R_STAR)
    rows = [
        {"run": "base", "step": 0, "p_orig": 1.0, "p_new": 0.0, "valid_domain": d, "loss": base_total + off}
        for d, off in OFFSETS.items()
    ]
    rows.append({"run": "base", "step": 0, "p_orig": 1.0, "p_new": 0.0, "valid_domain": "new", "loss": 2.0})
    for i, r in enumerate([0.1, 0.2, 0.35, 0.45, 0.6]):
        for step in STEPS:
            b = np.log(base_total - C) - K * _r_star_at(step)  # L(r*(S)) = base
            eps = rng.normal(0, noise)
            common = {"run": f"r{i}", "step": step, "p_orig": r, "p_new": 1 - r}
            rows += [
                {**common, "valid_domain": d, "loss": C + np.exp(b + K * r) + off + eps}
                for d, off in OFFSETS.items()
            ]
            rows.append({**common, "valid_domain": "new", "loss": CN + np.exp(BN + KN * r)})
    return pd.DataFrame(rows)


def test_length_drift_is_recovered_and_the_interval_widens_beyond_the_observed_lengths(weights_file):
    from mixlaw.continual import continual_recommendation, critical_share_by_length, observed_lengths

    table = RunsTable(validate_runs(_drifting_frame(), "synthetic"), "synthetic")
    data = prepare_continual(table, "base", "all", ["new"], weights_file)
    assert observed_lengths(data) == [500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]  # the late half
    res = continual_analysis(data, n_bootstrap=100)
    assert res["critical"]["holds_for_step"] == 1000
    by = {}
    for target in (None, 750.0, 4000.0):
        by[target] = critical_share_by_length(data, res, target, n_bootstrap=100)
    lengths = by[None]["lengths"]
    for o in lengths:
        assert o["share"] == pytest.approx(_r_star_at(o["step"]), abs=0.01)
    assert by[None]["trend"]["per_doubling"] == pytest.approx(DRIFT, abs=0.01)
    observed_width = max(o["interval"][1] - o["interval"][0] for o in lengths)
    req = by[None]["requested"]
    assert req["basis"] == "observed" and req["interval"] == res["critical"]["interval"]
    inter = by[750.0]["requested"]
    assert inter["basis"] == "interpolated" and inter["share"] == pytest.approx(_r_star_at(750), abs=0.01)
    far = by[4000.0]["requested"]
    assert far["basis"] == "extrapolated" and far["length_ratio"] == pytest.approx(4.0)
    lo, hi = far["interval"]
    assert hi - lo > observed_width  # wider than at any observed length
    assert lo <= _r_star_at(4000) <= hi  # the drift continues: inside
    assert lo <= lengths[-1]["share"] <= hi  # the drift stops: inside too
    res["by_length"] = by[None]
    rec = continual_recommendation(res)
    assert rec["verdict"] == "recommend" and rec["share"] == res["critical"]["interval"][1]
    assert rec["p_beats_baseline"] >= 0.9 and rec["gain"]["lo"] > 0
    res["by_length"] = by[4000.0]
    rec = continual_recommendation(res)
    assert rec["verdict"] == "decline" and "outside the observed lengths 500-1000" in rec["reason"]


def test_continual_cli_declines_beyond_the_observed_lengths(tmp_path, weights_file, capsys):
    runs = tmp_path / "runs.csv"
    _drifting_frame().to_csv(runs, index=False)
    out = tmp_path / "res.json"
    args = ["continual", str(runs), "--base-run", "base", "--original", "all", "--new", "new"]
    args += ["--valid-weights", weights_file, "--bootstrap", "40", "--out", str(out), "-q"]
    assert main([*args, "--target-step", "5000"]) == 0
    text = capsys.readouterr().out
    assert "holds for 1000-step continual runs only" in text
    assert "at 5000 steps (extrapolated, 5x the nearest observed length)" in text
    assert "recommendation: decline. No confident recommendation: the requested length 5000 steps" in text
    res = json.loads(out.read_text())
    rec = res["recommendation"]
    assert rec["verdict"] == "decline" and set(rec) >= {
        "verdict",
        "reason",
        "p_beats_baseline",
        "gain",
        "share",
    }
    assert set(res["by_length"]) >= {"lengths", "trend", "requested"}
    assert res["by_length"]["requested"]["basis"] == "extrapolated"
    assert "critical" in res and "holdout" in res  # the old keys stay
    assert main(args) == 0  # at the observed length: recommended
    assert "recommendation: train with at least" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:  # argparse's one-line error
        main([*args, "--target-step", "nan"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
