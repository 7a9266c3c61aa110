"""The pipeline end to end on synthetic runs with known step, size and mixing laws, and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mixlaw.fitted import FittedLaw

DOMAINS = ["a", "b", "c"]
SIZES = {"s1": 2e7, "s2": 8e7, "s3": 2e8, "s4": 3e8}
STEPS = [2000, 3000, 4000, 5000, 6000, 8000, 10000]
C = np.array([1.6, 1.2, 2.2])
T = np.array([[-2.0, 0.3, 0.2], [0.4, -1.8, 0.1], [0.2, 0.3, -1.2]])
A = np.array([0.9, 0.7, 1.1])
B = np.array([0.5, 0.4, 0.6])
ALPHA, BETA = 0.3, 0.5
TARGET_N, TARGET_S = 1e9, 30000


def truth(X: np.ndarray, n: float, s: float) -> np.ndarray:
    """Per-target loss: c + exp(T r) + A (n / 3e8)^-alpha + B (s / 1e4)^-beta, X (k, 3) -> (k, 3)."""
    return C + np.exp(X @ T.T) + A * (n / 3e8) ** -ALPHA + B * (s / 1e4) ** -BETA


def make_table(noise: float = 1e-4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(3), size=14).round(4)
    X[:, -1] = 1 - X[:, :-1].sum(axis=1)
    rows = []
    for model, n in SIZES.items():
        for s in STEPS:
            Y = truth(X, n, s) + rng.normal(0, noise, (len(X), 3))
            for r in range(len(X)):
                for i, d in enumerate(DOMAINS):
                    rows.append(
                        {
                            "run": str(r),
                            "model": model,
                            "params": n,
                            "step": s,
                            "tokens": s * 1000,
                            **{f"p_{x}": X[r, j] for j, x in enumerate(DOMAINS)},
                            "valid_domain": d,
                            "loss": Y[r, i],
                        }
                    )
    # One mixture only at two sizes: not used (fewer than 3 sizes), whatever its run id.
    for model in ("s1", "s2"):
        for s in STEPS:
            for i, d in enumerate(DOMAINS):
                rows.append(
                    {
                        "run": "999",
                        "model": model,
                        "params": SIZES[model],
                        "step": s,
                        "tokens": s * 1000,
                        "p_a": 0.5,
                        "p_b": 0.25,
                        "p_c": 0.25,
                        "valid_domain": d,
                        "loss": truth(np.array([[0.5, 0.25, 0.25]]), SIZES[model], s)[0, i],
                    }
                )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory):
    from mixlaw.cli.main import main

    folder = tmp_path_factory.mktemp("pipe")
    make_table().to_csv(folder / "runs.csv", index=False)
    pd.DataFrame({"valid_domain": DOMAINS, "valid_weight": [0.5, 0.3, 0.2]}).to_csv(
        folder / "w.csv", index=False
    )
    pd.DataFrame({"domain": ["a", "p_b"], "lower": [0.1, None], "upper": [None, 0.6]}).to_csv(
        folder / "bounds.csv", index=False
    )
    code = main(
        [
            "pipeline",
            str(folder / "runs.csv"),
            "--target-params",
            str(TARGET_N),
            "--target-step",
            str(TARGET_S),
            "--valid-weights",
            str(folder / "w.csv"),
            "--law",
            "dml",
            "--bounds",
            str(folder / "bounds.csv"),
            "--baseline",
            "a=0.5,b=0.25,c=0.25",
            "--out",
            str(folder / "out"),
            "-q",
        ]
    )
    assert code == 0
    return folder


def test_outputs_and_recovery(pipeline_out):
    out = pipeline_out / "out"
    for name in (
        "predictions.csv",
        "law.json",
        "optimum.json",
        "step_laws.json",
        "size_laws.json",
        "summary.md",
        "checks.json",
    ):
        assert (out / name).exists(), name
    pred = pd.read_csv(out / "predictions.csv", dtype={"run": str})
    assert "999" not in set(pred["run"])  # only 2 sizes
    X = pred[[f"p_{d}" for d in DOMAINS]].to_numpy()
    expected = truth(X, TARGET_N, TARGET_S)
    for i, d in enumerate(DOMAINS):
        assert np.abs(pred[f"pred_{d}"] / expected[:, i] - 1).max() < 3e-3
    total = expected @ np.array([0.5, 0.3, 0.2])
    assert np.abs(pred["pred_total"] / total - 1).max() < 3e-3
    checks = json.loads((out / "checks.json").read_text())["checks"]
    for stage in ("step", "size", "chain"):
        assert checks[stage]["mean_rel"] < 2e-3, stage
    summary = (out / "summary.md").read_text()
    assert "every complete checkpoint up to the largest step observed at all sizes" in summary


def test_optimum_and_equivalent_steps(pipeline_out):
    out = pipeline_out / "out"
    opt = json.loads((out / "optimum.json").read_text())
    assert set(opt) >= {"mixture", "predicted", "baseline", "equivalent_extra_steps"}
    x = np.array([opt["mixture"][f"p_{d}"] for d in DOMAINS])
    assert x[0] >= 0.1 - 1e-9 and x[1] <= 0.6 + 1e-9
    # The true optimum under the same bounds, by a fine grid.
    g = np.array([(i, j, 400 - i - j) for i in range(401) for j in range(401 - i)]) / 400
    g = g[(g[:, 0] >= 0.1) & (g[:, 1] <= 0.6)]
    w = np.array([0.5, 0.3, 0.2])
    true_tot = truth(g, TARGET_N, TARGET_S) @ w
    assert truth(x[None], TARGET_N, TARGET_S)[0] @ w <= true_tot.min() + 2e-3
    # Baseline (0.5, 0.25, 0.25): equivalent steps from the true curves.
    base = np.array([[0.5, 0.25, 0.25]])
    L_opt = truth(x[None], TARGET_N, TARGET_S)[0] @ w
    const = truth(base, TARGET_N, 1e300)[0] @ w  # the step term vanishes
    s_star = 1e4 * ((L_opt - const) / (B @ w)) ** (-1 / BETA)
    assert opt["equivalent_extra_steps"] == pytest.approx(s_star / TARGET_S, rel=0.05)


def test_law_json_works_with_predict_and_optimize(pipeline_out, cli, tmp_path):
    out = pipeline_out / "out"
    law = FittedLaw.load(out / "law.json")
    assert law.meta["step_grid"]["target"] == TARGET_S
    mixtures = tmp_path / "m.csv"
    pd.DataFrame({"p_a": [0.2], "p_b": [0.3], "p_c": [0.5]}).to_csv(mixtures, index=False)
    code, stdout, _ = cli("predict", out / "law.json", mixtures)
    assert code == 0 and "pred_total" in stdout
    code, stdout, _ = cli(
        "optimize", out / "law.json", "--fix", "p_c=0.3", "--out", tmp_path / "o.json", "-q"
    )
    assert code == 0
    opt = json.loads((tmp_path / "o.json").read_text())
    assert opt["mixture"]["p_c"] == pytest.approx(0.3)
    assert opt["equivalent_extra_steps"] is not None
    assert opt["distance_to_observed"]["l1"] is not None


def test_joint_scale_law(tmp_path, cli):
    make_table().to_csv(tmp_path / "runs.csv", index=False)
    code, _, err = cli(
        "pipeline",
        tmp_path / "runs.csv",
        "--target-params",
        TARGET_N,
        "--target-step",
        TARGET_S,
        "--scale-law",
        "joint",
        "--law",
        "dml",
        "--out",
        tmp_path / "out",
        "-q",
    )
    assert code == 0, err
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv")
    X = pred[[f"p_{d}" for d in DOMAINS]].to_numpy()
    assert np.abs(pred["pred_a"] / truth(X, TARGET_N, TARGET_S)[:, 0] - 1).max() < 3e-3
    assert (tmp_path / "out" / "joint_law.json").exists()


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--fit-steps", "5000"], "expected A:B"),
        (["--fit-steps", "9000:3000"], "empty range"),
        (["--fit-sizes", "s1,zz"], "no such model"),
        (["--model", "s1"], "--fit-sizes"),
        (["--law", "nope"], "unknown law"),
        (["--baseline", "a=0.7,b=0.7"], "sum to"),
        (["--baseline", "a=0.5,zz=0.5"], "unknown domain"),
        (["--available", "MISSING.csv"], "not found"),
        (["--step-exponent", "2:1"], "LO < HI"),
        (["--step-window", "abc"], "--step-window abc: expected a ratio >= 1 or none"),
        (["--step-window", "0.5"], "--step-window: 0.5 must be >= 1"),
    ],
)
def test_bad_inputs(tmp_path, cli, extra, match):
    make_table().to_csv(tmp_path / "runs.csv", index=False)
    code, _, err = cli(
        "pipeline",
        tmp_path / "runs.csv",
        "--target-params",
        "1e9",
        "--target-step",
        "30000",
        "--law",
        "dml",
        "--out",
        tmp_path / "out",
        *extra,
    )
    assert code == 2, err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and match in errors[0]
    assert "mixtures at" not in err  # input errors come before any fitting


def test_infeasible_through_cli(tmp_path, cli, pipeline_out):
    bounds = tmp_path / "b.csv"
    pd.DataFrame({"domain": ["a", "b"], "lower": [0.6, 0.6], "upper": [1, 1]}).to_csv(bounds, index=False)
    code, _, err = cli(
        "optimize", pipeline_out / "out" / "law.json", "--bounds", bounds, "--out", tmp_path / "o.json"
    )
    assert code == 2 and "infeasible" in err
    tokens = tmp_path / "t.csv"
    pd.DataFrame({"domain": ["a", "b", "c"], "tokens": [1e9, 1e9, 1e9]}).to_csv(tokens, index=False)
    code, _, err = cli(
        "optimize",
        pipeline_out / "out" / "law.json",
        "--available",
        tokens,
        "--target-tokens",
        "1e11",
        "--out",
        tmp_path / "o.json",
    )
    assert code == 2 and "infeasible" in err and "--max-epochs" in err


def test_target_flags_are_exclusive(tmp_path):
    from mixlaw.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "pipeline",
                str(tmp_path / "r.csv"),
                "--target-params",
                "1e9",
                "--target-step",
                "1",
                "--target-tokens",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    assert exc.value.code == 2


def _transient_table() -> pd.DataFrame:
    """make_table plus a fast early transient (+0.3 (s / 2000)^-3 nats) that a late window leaves out."""
    frame = make_table()
    return frame.assign(loss=frame["loss"] + 0.3 * (frame["step"] / 2000.0) ** -3.0)


def test_step_window_fits_the_late_checkpoints_only():
    from mixlaw.pipeline import PipelineConfig, run_pipeline
    from mixlaw.runs import RunsTable, load_weights, validate_runs
    from mixlaw.scaling import STEP_SHARE_VALIDATED, STEP_WINDOW

    table = RunsTable(validate_runs(_transient_table(), "runs"))
    weights = load_weights(None, table.valid_domains)
    errors, results = {}, {}
    for window in (STEP_WINDOW, None):
        config = PipelineConfig(target_params=TARGET_N, target_step=TARGET_S, law="dml", step_window=window)
        assert config.step_share == STEP_SHARE_VALIDATED
        result = run_pipeline(table, weights, config)
        X = result.predictions[[f"p_{d}" for d in DOMAINS]].to_numpy()
        expected = truth(X, TARGET_N, TARGET_S)
        pred = result.predictions[[f"pred_{d}" for d in DOMAINS]].to_numpy()
        errors[window], results[window] = np.abs(pred / expected - 1).mean(), result
    windowed = results[STEP_WINDOW]
    assert windowed.defaults["step_window"] == STEP_WINDOW
    assert windowed.defaults["step_fit_from"] == 4000  # >= 10000 / 3
    assert set(windowed.step_laws.n_points) == {5}  # 4000 ... 10000
    assert set(results[None].step_laws.n_points) == {7}
    assert results[None].defaults["step_fit_from"] == 2000
    # The transient biases the fit on every checkpoint; the late window stays near the truth.
    assert errors[STEP_WINDOW] < 0.5 * errors[None]


def test_holdout_cut_is_the_jobs_ratio_or_the_nearest_the_data_allow():
    from mixlaw.checks import HOLDOUT_STEP_RATIO, holdout_cut

    steps = np.array(STEPS, float)  # 2000 ... 10000
    exact = holdout_cut(steps, 10000, 20000, 3.0)
    assert exact["cut"] == 5000 and exact["ratio"] == 2.0 and not exact["capped"]
    assert "job's ratio" in exact["reason"]
    # 3x would fit only 2000 and 3000 (< 3 checkpoints): capped at 4000, the nearest cut with 3.
    capped = holdout_cut(steps, 10000, 30000, 3.0)
    assert capped["capped"] and capped["cut"] == 4000 and capped["ratio"] == 2.5
    assert capped["job_ratio"] == 3.0 and "capped" in capped["reason"]
    # Without a window 2000..3333 still has 2 points: the same cap.
    assert holdout_cut(steps, 10000, 30000, None)["cut"] == 4000
    inside = holdout_cut(steps, 10000, 8000, 3.0)
    assert inside["ratio"] == pytest.approx(HOLDOUT_STEP_RATIO) and not inside["capped"]
    assert holdout_cut(steps[:3], 4000, 40000, 3.0)["cut"] is None  # nothing left to hold back


def test_job_ratio_check_says_when_its_error_exceeds_the_gaps():
    from mixlaw.checks import job_ratio_check

    checks = {
        "holdout": {"cut": 5000.0, "ratio": 2.0, "job_ratio": 2.0, "capped": False, "reason": "the job's"},
        "step": {"mean_rel": 0.01, "bias_rel": 0.01, "n": 10},
    }
    lead = job_ratio_check(checks, np.array([3.0, 3.01, 3.02]), "step")
    assert lead["error_at_target"] == pytest.approx(0.0301)
    assert lead["gap_median"] == pytest.approx(0.01) and lead["gap_best_two"] == pytest.approx(0.01)
    assert lead["larger_than_gaps"] and "cannot rank" in lead["warning"]
    small = job_ratio_check(
        {**checks, "step": {**checks["step"], "mean_rel": 1e-4}}, np.array([3.0, 3.1]), "step"
    )
    assert not small["larger_than_gaps"] and "warning" not in small
    assert "skipped" in job_ratio_check({"holdout": {}, "step": {"skipped": "x"}}, np.array([3.0]), "step")


def test_checks_lead_with_the_jobs_ratio_and_report_the_regime(pipeline_out):
    checks = json.loads((pipeline_out / "out" / "checks.json").read_text())["checks"]
    assert next(iter(checks)) == "at_job_ratio"
    lead = checks["at_job_ratio"]
    assert lead["job_ratio"] == pytest.approx(3.0) and lead["ratio"] == pytest.approx(2.5) and lead["capped"]
    assert checks["step"]["ratio"] == pytest.approx(2.5)
    assert lead["mean_rel"] == checks["step"]["mean_rel"] and not lead["larger_than_gaps"]
    regime = checks["regime"]
    assert regime["at_bound"] == 0.0 and abs(regime["beta_quantiles"]["q50"] - BETA) < 0.02
    assert set(regime["per_model"]) == set(SIZES)
    summary = (pipeline_out / "out" / "summary.md").read_text()
    assert summary.index("Check at the job's extrapolation ratio") < summary.index("## Stage checks")
    assert "holds back 2.50x" in summary and "Regime of the step fits" in summary


def _anchor_table(mixture: np.ndarray, seeds: int = 2) -> pd.DataFrame:
    """Target-scale runs (TARGET_N, TARGET_S) of one mixture, at the true losses."""
    y = truth(mixture[None], TARGET_N, TARGET_S)[0]
    rows = [
        {
            "run": f"anchor{seed}",
            "model": "target",
            "params": TARGET_N,
            "step": TARGET_S,
            "tokens": TARGET_S * 1000,
            **{f"p_{x}": mixture[j] for j, x in enumerate(DOMAINS)},
            "valid_domain": d,
            "loss": y[i],
        }
        for seed in range(seeds)
        for i, d in enumerate(DOMAINS)
    ]
    return pd.DataFrame(rows)


def test_gain_and_anchor_remove_the_common_mode_error(tmp_path, cli):
    """Proxies with an early transient fitted on every checkpoint (--step-window none): every mixture's
    extrapolation is off by about the same amount, the gains are not (the scale terms of the truth are common
    to all mixtures), and a target-scale anchor run of the baseline removes the shared error."""
    base = np.array([0.5, 0.25, 0.25])
    _transient_table().to_csv(tmp_path / "runs.csv", index=False)
    _anchor_table(base).to_csv(tmp_path / "anchor.csv", index=False)
    pd.DataFrame({"valid_domain": DOMAINS, "valid_weight": [0.5, 0.3, 0.2]}).to_csv(
        tmp_path / "w.csv", index=False
    )
    code, out, err = cli(
        "pipeline",
        tmp_path / "runs.csv",
        "--target-params",
        TARGET_N,
        "--target-step",
        TARGET_S,
        "--valid-weights",
        tmp_path / "w.csv",
        "--law",
        "dml",
        "--baseline",
        "a=0.5,b=0.25,c=0.25",
        "--step-window",
        "none",
        "--step-share",
        "mixture",
        "--bootstrap",
        "10",
        "--anchor",
        tmp_path / "anchor.csv",
        "--out",
        tmp_path / "out",
        "-q",
    )
    assert code == 0, err
    assert "gain over the baseline" in out and "anchor (2 run(s))" in out
    opt = json.loads((tmp_path / "out" / "optimum.json").read_text())
    w = np.array([0.5, 0.3, 0.2])
    x = np.array(list(opt["mixture"].values()))
    true_opt, true_base = (
        truth(x[None], TARGET_N, TARGET_S)[0] @ w,
        truth(base[None], TARGET_N, TARGET_S)[0] @ w,
    )
    absolute_error = opt["predicted"]["objective"] - true_opt
    assert abs(absolute_error) > 0.03  # the transient biases every mixture's extrapolation
    gain = opt["gain"]
    assert abs(gain["value"] - (true_base - true_opt)) < 0.05 * abs(absolute_error)
    assert gain["lo"] <= true_base - true_opt <= gain["hi"] and gain["lo"] < gain["value"] < gain["hi"]
    assert set(gain["variants"]) == {
        "window none, share all",
        "window 3, share mixture",
        "window 3, share all",
    }
    assert gain["value"] == pytest.approx(opt["improvement"], abs=1e-9)
    gains = {g["run"]: g for g in opt["candidate_gains"]}
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv", dtype={"run": str})
    X = pred[[f"p_{d}" for d in DOMAINS]].to_numpy()
    true_gains = true_base - truth(X, TARGET_N, TARGET_S) @ w
    assert np.abs(np.array([gains[r]["value"] for r in pred["run"]]) - true_gains).max() < 2e-3
    anchor = opt["anchor"]
    assert anchor["n_runs"] == 2 and anchor["source"] == "anchor.csv"
    assert anchor["correction"]["objective"] == pytest.approx(-absolute_error, rel=0.05)
    assert abs(anchor["corrected"]["optimum"]["objective"] - true_opt) < 0.02 * abs(absolute_error)
    assert anchor["corrected"]["baseline"]["objective"] == pytest.approx(true_base, abs=1e-6)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert (
        "Predicted gain of the optimum over the baseline" in summary and "common-mode correction" in summary
    )


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda f: f.assign(params=5e8), "no run at params 1e+09 and step 30000"),
        (lambda f: f.assign(p_a=np.where(f["run"] == "anchor0", 0.6, 0.5)), "one mixture"),
    ],
)
def test_bad_anchor(tmp_path, cli, change, match):
    make_table().to_csv(tmp_path / "runs.csv", index=False)
    frame = change(_anchor_table(np.array([0.5, 0.25, 0.25])))
    frame["p_c"] = 1 - frame["p_a"] - frame["p_b"]
    frame.to_csv(tmp_path / "anchor.csv", index=False)
    code, _, err = cli(
        "pipeline",
        tmp_path / "runs.csv",
        "--target-params",
        TARGET_N,
        "--target-step",
        TARGET_S,
        "--law",
        "dml",
        "--bootstrap",
        "0",
        "--anchor",
        tmp_path / "anchor.csv",
        "--out",
        tmp_path / "out",
        "-q",
    )
    assert code == 2 and "anchor.csv" in err and match in err, err
