"""`mixlaw compare`, `--law auto` and the no-leak guarantees of (nested) cross-validation."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from mixlaw.cli.main import main
from mixlaw.crossval import mixture_folds
from mixlaw.fitted import FitData, FittedLaw, prepare
from mixlaw.laws import LAWS, MixingLaw, register
from mixlaw.runs import RunsTable, aggregate, load_weights, mixture_keys, validate_runs, write_runs
from mixlaw.selection import cross_validate_law, fit_law_or_auto, select_law

SEEN: list[set] = []  # one set of mixture keys per fit of the spy law


class SpyLaw(MixingLaw):
    """Records the mixtures of every fit; predicts each target's training mean."""

    name = "spy"
    description = "test only"
    defaults: ClassVar[dict[str, Any]] = {"seed": 0}

    def n_parameters(self, n_domains: int) -> int:
        return 1

    def _fit(self, X, Y, context):
        SEEN.append(set(mixture_keys(X)))
        return {"mean": Y.mean(axis=0).tolist()}

    def _predict(self, X):
        return np.tile(self.params_["mean"], (len(X), 1))


@pytest.fixture()
def spy():
    register(SpyLaw)
    SEEN.clear()
    yield SEEN
    LAWS.pop("spy", None)


def synthetic_table(n_mix: int = 24, steps=(1000, 2000, 3000), seeds=(0, 1), seed: int = 0) -> RunsTable:
    """Runs of a known dml truth over 3 domains, several checkpoints and seeds per mixture."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(3), size=n_mix)
    t = np.array([[-1.2, 0.3, 0.5], [0.4, -1.5, 0.2]])
    rows = []
    for i, x in enumerate(X):
        for step in steps:
            for s in seeds:
                for j, valid in enumerate(("x", "y")):
                    loss = 2.0 + 3000 / step * 0.1 + np.exp(x @ t[j]) + rng.normal(0, 0.002)
                    rows.append(
                        {
                            "run": f"r{i}",
                            "model": "m",
                            "step": step,
                            "seed": s,
                            "p_a": x[0],
                            "p_b": x[1],
                            "p_c": x[2],
                            "valid_domain": valid,
                            "loss": loss,
                        }
                    )
    return RunsTable(validate_runs(pd.DataFrame(rows), "synthetic"), "synthetic")


def test_cv_folds_never_leak_across_checkpoints(spy):
    """A model fitted on a fold never saw that fold's mixtures, at any checkpoint or seed."""
    table = synthetic_table()
    weights = load_weights(None, table.valid_domains)
    wide = aggregate(table, weights)  # every checkpoint and seed: 6 rows per mixture
    data = FitData.from_wide(wide, weights, table.domains, total_column="total", source="t")
    assert len(data.X) == 6 * data.n_mixtures
    folds = mixture_folds(data.mixture_id, 5, 0)
    result = cross_validate_law(data, "spy", cv=5, seed=0)
    assert len(spy) == 5
    for test, seen in zip(folds, spy):
        assert not (set(mixture_keys(data.X[test])) & seen)
        assert seen == set(mixture_keys(data.X[~test]))
        steps_held = set(wide.loc[test, "step"])
        assert steps_held == {1000, 2000, 3000}  # the held-out mixture is held out at every checkpoint
    assert np.isfinite(result["metrics"]["total"]["mae"])


def test_nested_cv_selection_never_sees_outer_fold(spy):
    """--law auto scored by nested CV: inside each outer fold, every selection fit and the final fit use only
    that fold's training mixtures."""
    data = prepare(synthetic_table(), model="m", step=3000)
    outer = mixture_folds(data.mixture_id, 4, 0)
    result = cross_validate_law(data, "auto", {"candidates": ["spy"], "cv": 3}, cv=4, seed=0)
    assert result["auto_choices"] == ["spy"] * 4
    per_outer = 3 + 1  # 3 inner folds for the selection + the final fit on the outer training set
    assert len(spy) == 4 * per_outer
    for k, test in enumerate(outer):
        held = set(mixture_keys(data.X[test]))
        fits = spy[k * per_outer : (k + 1) * per_outer]
        for seen in fits:
            assert not (held & seen)
        assert fits[-1] == set(mixture_keys(data.X[~test]))


def test_auto_cross_validates_each_candidate_once(spy):
    """auto's ranking and blend step share each candidate's held-out predictions: the spy law is fitted once
    per selection fold, plus once on all the data when the result uses it (alone or in a blend)."""
    data = prepare(synthetic_table(seeds=(0,)), model="m", step=3000)
    fitted = fit_law_or_auto(data, "auto", {"candidates": ["spy", "regmix-linear"], "cv": 4})
    blend = fitted.meta["auto"]["blend"]
    uses_spy = fitted.law.name == "spy" or (blend is not None and "spy" in blend["members"])
    assert len(spy) == 4 + int(uses_spy)
    if uses_spy:
        assert spy[-1] == set(mixture_keys(data.X))


def test_pipeline_and_fit_share_one_auto():
    """The pipeline's mixing law goes through the same dispatcher (leave-one-out up to 40 mixtures, blends)."""
    from mixlaw import pipeline, selection

    assert pipeline.fit_law_or_auto is selection.fit_law_or_auto
    assert selection.selection_cv("auto", 40) == "loo" and selection.selection_cv("auto", 41) == 5


def test_select_law_ranks_and_skips_inapplicable():
    data = prepare(synthetic_table(seeds=(0,)), model="m", step=3000)
    chosen, table = select_law(data, ["dml", "regmix-linear", "bimix"], cv=4)
    assert chosen == "dml"  # the truth's form
    assert [r["law"] for r in table[:2]] == ["dml", "regmix-linear"]
    assert "not applicable" in table[-1]["error"]


def test_fit_auto_records_choice_and_table(tmp_path):
    data = prepare(synthetic_table(seeds=(0,)), model="m", step=3000)
    fitted = fit_law_or_auto(data, "auto", {"candidates": ["dml", "regmix-linear"], "cv": 4})
    assert fitted.law.name == "dml" and fitted.meta["auto"]["chosen"] == "dml"
    fitted.save(tmp_path / "law.json")
    again = FittedLaw.load(tmp_path / "law.json")
    assert again.meta["auto"]["table"][0]["law"] == "dml"
    assert np.allclose(again.predict_total(data.X), fitted.predict_total(data.X))


def test_compare_and_auto_cli(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    write_runs(synthetic_table(seeds=(0,)).frame, runs)
    code = main(
        [
            "compare",
            str(runs),
            "--model",
            "m",
            "--step",
            "3000",
            "--cv",
            "4",
            "--laws",
            "dml,regmix-linear,bimix",
            "--json",
            "-q",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    ranking = result["ranking"]
    assert ranking[0]["law"] == "dml" and {"mae", "mare", "spearman", "fit_seconds"} <= set(ranking[0])
    assert any(r["law"] == "auto" and r.get("nested") for r in ranking)
    assert any(r["law"] == "bimix" and "not applicable" in r["error"] for r in ranking)

    assert (
        main(
            [
                "compare",
                str(runs),
                "--model",
                "m",
                "--step",
                "3000",
                "--cv",
                "4",
                "--laws",
                "dml,log-linear",
                "--no-auto",
                "-q",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "rank" in text and "dml" in text and "auto" not in text

    out = tmp_path / "law.json"
    assert (
        main(
            [
                "fit",
                str(runs),
                "--model",
                "m",
                "--step",
                "3000",
                "--law",
                "auto",
                "--candidates",
                "dml,regmix-linear",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["auto"]["chosen"] == "dml"
    assert (
        main(
            [
                "evaluate",
                str(runs),
                "--model",
                "m",
                "--step",
                "3000",
                "--law",
                "auto",
                "--candidates",
                "dml,regmix-linear",
                "--cv",
                "4",
                "--json",
                "-q",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["auto_choices"] == ["dml"] * 4


def test_compare_cli_errors(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    write_runs(synthetic_table(n_mix=8, seeds=(0,)).frame, runs)
    assert main(["compare", str(runs), "--model", "m", "--step", "3000", "--laws", "dml,nope"]) == 2
    assert "unknown law" in capsys.readouterr().err
    assert (
        main(
            [
                "fit",
                str(runs),
                "--model",
                "m",
                "--step",
                "3000",
                "--law",
                "auto",
                "--param",
                "delta=0.1",
                "--out",
                str(tmp_path / "x.json"),
            ]
        )
        == 2
    )
    assert "--param does not apply" in capsys.readouterr().err
