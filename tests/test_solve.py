"""`mixlaw pipeline` and `mixlaw run`'s pipeline stage share one `solve()`: same law and optimum on the same
runs table (a synthetic table, no training)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mixlaw.cli.main import main
from mixlaw.errors import MixlawInputError
from mixlaw.job.config import parse_run_config
from mixlaw.job.stages import _baseline_mixture, _pipeline_stage
from mixlaw.runs import read_runs
from mixlaw.solve import optimize_with_intervals, solve

DOMAINS = ["code", "docs", "math-prose", "math"]
COLUMNS = ["p_code", "p_docs", "p_math_prose", "p_math"]
SIZES = {"L1-D16": 3_000.0, "L1-D24": 7_000.0, "L1-D32": 12_000.0}
STEPS = [10, 15, 20, 25, 30, 40]
TOKENS_PER_STEP = 4 * 32  # TINY's batch_size x seq_len
COUNTS = {"code": 60_000, "docs": 30_000, "math-prose": 20_000, "math": 10_000}
CONFIG = {
    "corpus": {"demo": {"tokenizer": "bytes"}},
    "training": {"batch_size": 4, "seq_len": 32, "eval_points": 4},
    "proxies": {"models": list(SIZES), "steps": 40, "design": {"method": "dirichlet", "n": 8, "seed": 0}},
    "target": {"model": "L2-D32", "steps": 40},
    "pipeline": {"law": "dml", "cv": 3},
    "optimize": {"max_epochs": 4, "bootstrap": 10},
}


def _table(seed: int = 0) -> pd.DataFrame:
    """Losses of 9 mixtures x 3 sizes x 6 checkpoints from a known law (mixing x size x steps)."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(4), size=9).round(4)
    X[:, -1] = 1 - X[:, :-1].sum(axis=1)
    T = np.array([[2.0, 0.3, 0.2, 0.1], [0.2, 1.5, 0.6, 0.1], [0.1, 0.5, 1.8, 0.9], [0.1, 0.1, 1.0, 2.2]])
    rows = []
    for model, n in SIZES.items():
        for s in STEPS:
            Y = 2.0 + 1.2 * np.exp(-X @ T.T) + 40 * n**-0.5 + 3 * s**-0.6 + rng.normal(0, 1e-4, (9, 4))
            for r in range(9):
                for i, d in enumerate(DOMAINS):
                    rows.append(
                        {
                            "run": f"m{r + 1:02d}",
                            "model": model,
                            "params": n,
                            "step": s,
                            "tokens": s * TOKENS_PER_STEP,
                            **dict(zip(COLUMNS, X[r])),
                            "valid_domain": d.replace("-", "_"),
                            "loss": Y[r, i],
                        }
                    )
    return pd.DataFrame(rows)


def test_pipeline_command_and_run_stage_give_the_same_law_and_optimum(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _table().to_csv(run_dir / "runs.csv", index=False)
    cfg = parse_run_config(CONFIG, str(tmp_path / "run.yaml"), tmp_path)
    target_params = 40_000
    target_tokens = cfg.target_steps * TOKENS_PER_STEP
    baseline = _baseline_mixture(cfg, COUNTS)
    optimum, info = _pipeline_stage(
        cfg, run_dir, {}, COUNTS, target_params, target_tokens, baseline, "mixlaw run", True
    )
    assert info["law"] == "dml"

    pd.DataFrame({"domain": [c.replace("-", "_") for c in COUNTS], "tokens": list(COUNTS.values())}).to_csv(
        tmp_path / "tokens.csv", index=False
    )
    argv = ["pipeline", str(run_dir / "runs.csv"), "--target-params", str(target_params)]
    argv += ["--target-step", str(cfg.target_steps), "--law", "dml", "--cv", "3", "--bootstrap", "10"]
    argv += ["--available", str(tmp_path / "tokens.csv"), "--max-epochs", "4", "--out", str(tmp_path / "cli")]
    argv += ["--baseline", ",".join(f"p_{d.replace('-', '_')}={v!r}" for d, v in baseline[1]), "-q"]
    assert main(argv) == 0, capsys.readouterr().err
    cli_optimum = json.loads((tmp_path / "cli" / "optimum.json").read_text())
    run_law = json.loads((run_dir / "law.json").read_text())
    cli_law = json.loads((tmp_path / "cli" / "law.json").read_text())
    for key in ("law", "hyper", "params", "step_grid", "observed_runs", "target_scale", "uncertainty"):
        assert run_law[key] == cli_law[key], key  # the same mixing law, parameters and bootstrap included
    assert optimum["mixture"] == cli_optimum["mixture"]
    assert optimum["predicted"] == cli_optimum["predicted"]
    assert optimum["baseline"]["mixture"] == cli_optimum["baseline"]["mixture"]
    assert optimum["uncertainty"] == cli_optimum["uncertainty"]  # same bootstrap, same intervals
    assert (
        json.loads((run_dir / "checks.json").read_text())["checks"]
        == json.loads((tmp_path / "cli" / "checks.json").read_text())["checks"]
    )


def test_solve_refuses_availability_without_target_tokens_before_fitting(tmp_path):
    table = read_runs(_write(tmp_path, _table().drop(columns="tokens")))
    from mixlaw.runs import load_weights
    from mixlaw.settings import PipelineConfig

    config = PipelineConfig(40_000, target_step=40, law="dml", cv=3)
    log = []
    with pytest.raises(MixlawInputError, match="--available needs --target-tokens"):
        solve(
            table,
            load_weights(None, table.valid_domains),
            config,
            tmp_path / "o",
            {"available": COUNTS},
            log=log.append,
        )
    assert log == [] and not (tmp_path / "o").exists()


def test_optimize_with_intervals_says_why_there_are_none(tmp_path):
    from mixlaw.api import fit

    law = fit(_write(tmp_path, _table()), law="dml", model="L1-D32", step=40, hyper={"restarts": 2})
    result = optimize_with_intervals(law, {"max_epochs": 1.0})
    assert result["uncertainty"] is None and "bootstrap" in result["uncertainty_reason"]
    with pytest.raises(MixlawInputError, match="unknown problem key"):
        optimize_with_intervals(law, {"epochs": 1})
    with pytest.raises(MixlawInputError, match="--interval"):
        optimize_with_intervals(law, {}, interval=1.5)


@pytest.mark.parametrize(
    "flags, match", [(["--bootstrap", "3"], "--bootstrap"), (["--interval", "2"], "--interval")]
)
def test_pipeline_flags_checked_before_fitting(tmp_path, capsys, flags, match):
    path = _write(tmp_path, _table())
    argv = [
        "pipeline",
        str(path),
        "--target-params",
        "4e4",
        "--target-step",
        "40",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv + flags) == 2
    err = capsys.readouterr().err
    assert match in err and "mixtures at" not in err and len(err.strip().splitlines()) == 1


def _write(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    return path
