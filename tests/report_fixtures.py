"""Small, fast inputs for the report tests: a 3-domain runs table and a results folder with every part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from conftest import make_runs

from mixlaw.cli.main import main

FAST = {"restarts": 4}


def write_runs_csv(folder: Path) -> Path:
    path = folder / "runs.csv"
    make_runs(n_mixtures=16).to_csv(path, index=False)
    return path


def scaled_runs(n_mixtures: int = 10, seed: int = 0) -> pd.DataFrame:
    """A 3-domain runs table at 4 model sizes and 6 checkpoints: per-domain exponential mixing law plus
    power laws in steps and parameters, small noise."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(3), size=n_mixtures).round(4)
    X[:, -1] = 1 - X[:, :-1].sum(axis=1)
    c = np.array([2.0, 1.5, 3.0])
    T = np.array([[-2.0, 0.2, 0.1], [0.3, -1.5, 0.0], [0.1, 0.2, -1.0]])
    rows = []
    for model, params in (("s1", 2e7), ("s2", 5e7), ("s3", 1.2e8), ("s4", 3e8)):
        for step in (1000, 2000, 3000, 4000, 6000, 8000):
            scale = 0.8 * (params / 2e7) ** -0.3 + 0.6 * (step / 1000) ** -0.5
            Y = c[None] + np.exp(X @ T.T) * (0.5 + scale) + rng.normal(0, 0.002, (n_mixtures, 3))
            for r in range(n_mixtures):
                for i, d in enumerate(("a", "b", "c")):
                    rows.append(
                        {
                            "run": f"r{r}",
                            "model": model,
                            "params": int(params),
                            "step": step,
                            **{f"p_{x}": X[r, j] for j, x in enumerate(("a", "b", "c"))},
                            "valid_domain": d,
                            "loss": Y[r, i],
                        }
                    )
    return pd.DataFrame(rows)


def write_results_dir(folder: Path) -> Path:
    """A results folder written by the real `mixlaw pipeline` on `scaled_runs` (runs.csv copied in)."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = folder / "runs.csv"
    scaled_runs().to_csv(runs, index=False)
    code = main(
        [
            "pipeline",
            str(runs),
            "--target-params",
            "1e9",
            "--target-step",
            "20000",
            "--law",
            "dml",
            "--fit-steps",
            ":6000",
            "--out",
            str(folder),
            "--quiet",
        ]
    )
    assert code == 0
    return folder


def add_validation(folder: Path, recommendation: dict | None = None) -> Path:
    """Make a pipeline results folder look like `mixlaw run`'s: a validation.json in the shape
    `mixlaw.job.Validation` writes (both arms' seed-mean curves, measured and predicted objective, gain,
    verdict), built from the folder's optimum.json; optionally a `recommendation` in optimum.json."""
    import json

    optimum = json.loads((folder / "optimum.json").read_text())
    steps = [5000, 10000, 15000, 20000]
    arms = {}
    for arm, source, offset in (("optimum", optimum, 0.0), ("baseline", optimum["baseline"], 0.02)):
        predicted = float(source["predicted"]["objective"])
        mean = [predicted + offset + 0.3 * (20000 / s - 1) ** 0.5 - 0.01 for s in steps]
        arms[arm] = {
            "mixture": {k.removeprefix("p_"): v for k, v in source["mixture"].items()},
            "measured": {"mean": mean[-1], "std": 0.004, "n": 3},
            "predicted": predicted,
            "rel_error": (predicted - mean[-1]) / mean[-1],
            "curve": {"step": steps, "mean": mean, "std": [0.004] * len(steps)},
        }
    arms["baseline"]["name"] = optimum["baseline"]["name"]
    gain = arms["baseline"]["measured"]["mean"] - arms["optimum"]["measured"]["mean"]
    validation = {
        "target": {"model": "1B", "steps": 20000, "params": 1_000_000_000, "tokens": 0},
        "arms": arms,
        "gain": {"measured": gain, "predicted": float(optimum["improvement"]), "sigma_pooled": 0.004},
        "verdict": {"result": "win", "text": "synthetic"},
    }
    (folder / "validation.json").write_text(json.dumps(validation))
    if recommendation is not None:
        optimum["recommendation"] = recommendation
        (folder / "optimum.json").write_text(json.dumps(optimum))
    return folder
