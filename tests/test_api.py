"""The public API (`import mixlaw`): one front door, the functions over same-named submodules, input helpers."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mixlaw
from mixlaw import api
from tests.report_fixtures import make_runs

REPO = Path(__file__).resolve().parents[1]
FAST = {"restarts": 2}


def test_package_functions_are_the_api_functions_even_after_submodule_imports():
    for name in ("evaluate", "export", "optimize", "report"):
        importlib.import_module(f"mixlaw.{name}")  # the submodule of the same name
        assert getattr(mixlaw, name) is getattr(api, name)
        assert callable(getattr(mixlaw, name))
    assert hasattr(sys.modules["mixlaw.export"], "FORMATS")
    assert hasattr(sys.modules["mixlaw.optimize"], "build_constraints")


@pytest.mark.parametrize("first", ["mixlaw.optimize", "mixlaw.report", "mixlaw.export", "mixlaw.evaluate"])
def test_a_submodule_imported_first_does_not_hide_the_function(first):
    code = f"import {first}, mixlaw; assert mixlaw.{first.split('.')[1]} is mixlaw.api.{first.split('.')[1]}"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})


def test_module_class_is_plain():
    assert type(mixlaw) is type(np)
    assert mixlaw.__version__ == mixlaw.version.__version__


def test_fit_predict_optimize_round_trip(tmp_path):
    runs = make_runs(n_mixtures=10)
    law = mixlaw.fit(runs, law="dml", hyper=FAST)
    X = np.full((1, len(law.domains)), 1 / len(law.domains))
    frame = mixlaw.predict(law, X)
    assert "pred_total" in frame.columns and np.isfinite(frame["pred_total"]).all()
    law.save(tmp_path / "law.json")
    best = mixlaw.optimize(tmp_path / "law.json")
    assert abs(sum(best["mixture"].values()) - 1) < 1e-9
    assert best["predicted"]["total"] <= best["baseline"]["predicted"]["total"] + 1e-9


def test_law_hyper_is_the_one_place_the_seed_enters():
    with pytest.raises(mixlaw.MixlawInputError, match="unknown hyper-parameter"):
        api.law_hyper("dml", {"nope": 1}, 0)
    seeded = [name for name, cls in mixlaw.laws.LAWS.items() if "seed" in cls.defaults]
    if seeded:
        assert api.law_hyper(seeded[0], None, 7)["seed"] == 7
        assert api.law_hyper(seeded[0], {"seed": 1}, 7)["seed"] == 1


def test_errors_are_input_errors():
    with pytest.raises(mixlaw.MixlawInputError, match="expected a path"):
        api.as_runs(42)
    with pytest.raises(mixlaw.MixlawInputError, match="expected a FittedLaw"):
        api.load_law(42)
    with pytest.raises(mixlaw.MixlawInputError, match="sum to 1"):
        api.mixtures_matrix([[0.5, 0.6]], ["a", "b"])
