"""One spelling per domain (issue 18 item 6): sweeps write the p_ columns' spelling (math_prose) for validation
domains too, and every input takes either spelling."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import fit_law, resolve_target
from mixlaw.laws import get_law
from mixlaw.optimizer import objective_weights
from mixlaw.runs import load_weights, read_runs
from mixlaw.train.spec import RunSpec
from mixlaw.train.sweep import read_results
from tests.conftest import make_runs


def _hyphenated(tmp_path: Path) -> Path:
    """A runs table whose validation domains are spelled like the demo corpus's (`math-prose`)."""
    frame = make_runs()
    frame["valid_domain"] = frame["valid_domain"].map({"a": "math_prose", "b": "b", "c": "c"})
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    return path


def test_sweep_tables_write_the_canonical_spelling(tmp_path):
    spec = RunSpec(mixture=(("code", 0.5), ("math-prose", 0.5)), layers=1, width=32, steps=10)
    run_dir = tmp_path / "runs" / spec.run_id
    run_dir.mkdir(parents=True)
    pd.DataFrame(
        {
            "run": [spec.run_id] * 2,
            "model": ["L1-D32"] * 2,
            "step": [10, 10],
            "p_code": [0.5, 0.5],
            "p_math_prose": [0.5, 0.5],
            "valid_domain": ["code", "math-prose"],  # the trainer's result.csv: the corpus's names
            "loss": [2.0, 2.5],
        }
    ).to_csv(run_dir / "result.csv", index=False)
    table = read_results([spec], tmp_path)
    assert list(table["valid_domain"]) == ["code", "math_prose"]


def test_valid_weights_accept_either_spelling(tmp_path):
    weights = tmp_path / "w.csv"
    weights.write_text("valid_domain,valid_weight\nmath-prose,3\nb,1\n")
    w = load_weights(str(weights), ["math_prose", "b", "c"])
    assert w.domain_weight == {"math_prose": 0.75, "b": 0.25}
    weights.write_text("valid_domain,valid_weight\nMath_Prose,1\n")
    assert load_weights(str(weights), ["math-prose", "b"]).domain_weight == {"math-prose": 1.0}


def test_valid_domain_selection_and_target_accept_either_spelling(tmp_path):
    table = read_runs(_hyphenated(tmp_path))
    assert table.select(valid_domains=["math-prose", "b"]).valid_domains == ["b", "math_prose"]
    with pytest.raises(MixlawInputError, match="zz"):
        table.select(valid_domains=["zz"])
    from mixlaw.api import prepare_data

    data = prepare_data(table)
    names, _ = resolve_target(data, get_law("dml"), "math-prose")
    assert names == ["math_prose"]


def test_objective_weights_accept_either_spelling(tmp_path):
    from mixlaw.api import prepare_data

    data = prepare_data(read_runs(_hyphenated(tmp_path)))
    law = fit_law(data, "dml")
    assert objective_weights(law, {"math-prose": 1.0, "b": 1.0}) == {"math_prose": 0.5, "b": 0.5}
    assert objective_weights(law, "math-prose") == {"math_prose": 1.0}
    with pytest.raises(MixlawInputError, match="unknown target"):
        objective_weights(law, {"zz": 1.0})
