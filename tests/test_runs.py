"""The runs table: reading, validation errors (through the CLI), selection and aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_runs

from mixlaw.errors import MixlawInputError
from mixlaw.runs import aggregate, load_weights, read_runs

FIT = ["fit", "--law", "dml", "--out"]


def write(tmp_path, text: str, name: str = "runs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD_HEADER = "run,p_a,p_b,valid_domain,loss\n"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        (GOOD_HEADER, "header only"),
        (GOOD_HEADER + "r1,0.5,0.5,a,2.0,extra\n", "line 2: ragged row"),
        ("run,p_a,p_b,loss\nr1,0.5,0.5,2.0\n", "missing column(s) valid_domain"),
        (GOOD_HEADER + "r1,0.5,0.5,a,abc\n", "line 2: column loss: non-numeric value 'abc'"),
        (GOOD_HEADER + "r1,0.5,0.5,a,inf\n", "line 2: column loss: non-finite value"),
        (GOOD_HEADER + "r1,1.5,-0.5,a,2.0\n", "line 2: column p_a: proportion 1.5 outside [0, 1]"),
        (GOOD_HEADER + "r1,0.5,0.5,a,2.0\nr2,0.5,0.6,a,2.0\n", "line 3: proportions sum to 1.1, not 1"),
        (GOOD_HEADER + "r1,0.5,0.5,a,2.0\nr1,0.4,0.6,b,2.0\n", "run 'r1' has two different mixtures"),
        (
            GOOD_HEADER + "r1,0.5,0.5,a,2.0\nr1,0.5,0.5,a,2.1\n",
            "two different losses for the same observation",
        ),
        ("run,valid_domain,loss\nr1,a,2.0\n", "no mixture columns"),
    ],
)
def test_bad_runs_tables_give_one_line_errors(tmp_path, cli, content, message):
    path = write(tmp_path, content)
    code, out, err = cli(*FIT, tmp_path / "law.json", path)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and str(path) in err


def test_missing_file_and_undecodable_bytes(tmp_path, cli):
    code, _, err = cli(*FIT, tmp_path / "law.json", tmp_path / "nope.csv")
    assert code == 2 and "not found" in err
    path = tmp_path / "bad.csv"
    path.write_bytes(GOOD_HEADER.encode() + b"r1,0.5,0.5,\xff\xfe,2.0\n")
    code, _, err = cli(*FIT, tmp_path / "law.json", path)
    assert code == 2 and "line 2: bytes that are not UTF-8" in err


def test_renormalize_and_duplicates(tmp_path, caplog):
    path = write(tmp_path, GOOD_HEADER + "r1,0.51,0.51,a,2.0\nr1,0.51,0.51,a,2.0\n")
    with pytest.raises(MixlawInputError, match="--renormalize"):
        read_runs(path)
    table = read_runs(path, renormalize=True)
    assert len(table.frame) == 1  # exact duplicate dropped
    assert table.frame[["p_a", "p_b"]].sum(axis=1).iloc[0] == pytest.approx(1.0)
    assert "duplicate" in caplog.text and "renormalized" in caplog.text


def test_paper_column_names_and_formats(tmp_path):
    frame = make_runs(n_mixtures=5).rename(columns={"model": "model_size", "params": "model_params"})
    frame["family"] = "synthetic"  # extra columns are kept
    for name in ("runs.csv", "runs.parquet", "runs.jsonl"):
        path = tmp_path / name
        if name.endswith(".csv"):
            frame.to_csv(path, index=False)
        elif name.endswith(".parquet"):
            frame.to_parquet(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True)
        table = read_runs(path)
        assert {"model", "params", "family"} <= set(table.frame.columns)
        assert table.domains == ["a", "b", "c"]
        assert len(table.frame) == len(frame)


def test_selection_errors_list_what_is_available(tmp_path, cli):
    path = tmp_path / "runs.csv"
    make_runs(models=("small", "large"), steps=(1000, 2000)).to_csv(path, index=False)
    code, _, err = cli(*FIT, tmp_path / "l.json", path, "--step", "1000")
    assert code == 2 and "several model values remain (large, small)" in err and "--model" in err
    code, _, err = cli(*FIT, tmp_path / "l.json", path, "--model", "small")
    assert code == 2 and "several step values remain (1000, 2000)" in err
    code, _, err = cli(*FIT, tmp_path / "l.json", path, "--model", "medium", "--step", "1000")
    assert code == 2 and "no rows with model=medium; available: large, small" in err
    code, _, err = cli(*FIT, tmp_path / "l.json", path, "--model", "small", "--step", "1500")
    assert code == 2 and "no checkpoint at step=1500" in err
    code, _, _ = cli(
        *FIT, tmp_path / "l.json", path, "--model", "small", "--step", "1900", "--step-tol", "150"
    )
    assert code == 0


def test_too_few_mixtures_for_the_law(tmp_path, cli):
    path = tmp_path / "runs.csv"
    make_runs(n_mixtures=3).to_csv(path, index=False)
    code, _, err = cli(*FIT, tmp_path / "l.json", path)
    assert code == 2 and "parameters per target but only 3 distinct mixtures" in err


def test_nearest_checkpoint_skips_incomplete_ones(tmp_path):
    frame = make_runs(n_mixtures=4, steps=(1000, 1100))
    # run r0 lacks domain c at step 1100: nearest complete checkpoint to 1100 is 1000 for r0
    frame = frame[~((frame.run == "r0") & (frame.step == 1100) & (frame.valid_domain == "c"))]
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    selected = read_runs(path).select(step=1100, step_tol=200, complete_domains=["a", "b", "c"])
    steps = selected.frame.groupby("run")["step"].first()
    assert steps["r0"] == 1000 and steps["r1"] == 1100


def test_aggregation_with_groups_and_missing_weights(tmp_path, caplog):
    frame = make_runs(n_mixtures=4)
    frame = frame[~((frame.run == "r1") & (frame.valid_domain == "b"))]  # incomplete checkpoint
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    weights = tmp_path / "w.csv"
    pd.DataFrame(
        {
            "valid_domain": ["a", "b", "c", "zz"],
            "valid_weight": [2, 1, 0, 5],
            "kind": ["g1", "g1", "g2", "g2"],
        }
    ).to_csv(weights, index=False)
    table = read_runs(path)
    w = load_weights(str(weights), table.valid_domains, "kind")
    # c has weight 0 and zz is absent: only a and b are weighted, renormalized to 2/3 and 1/3
    assert w.domain_weight == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert w.groups == {"g1": ["a", "b"]}
    wide = aggregate(table, w)
    assert "r1" not in set(wide["run"])
    assert "dropped checkpoint run r1 step 1000" in caplog.text
    r0 = frame[frame.run == "r0"].set_index("valid_domain")["loss"]
    row = wide[wide.run == "r0"].iloc[0]
    assert row["total"] == pytest.approx(2 / 3 * r0["a"] + 1 / 3 * r0["b"])
    assert row["g1"] == pytest.approx(row["total"])


def test_uniform_weights_by_default(runs_csv):
    table = read_runs(runs_csv)
    w = load_weights(None, table.valid_domains)
    wide = aggregate(table, w)
    per_domain = table.frame.pivot_table(index="run", columns="valid_domain", values="loss")
    expected = per_domain.mean(axis=1).loc[wide["run"]].to_numpy()
    assert np.allclose(wide["total"], expected)
