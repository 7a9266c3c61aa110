"""The public API (`import mixlaw`): one front door, the functions over same-named submodules, input helpers."""

from __future__ import annotations

import pkgutil
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


def test_no_submodule_shares_a_name_with_an_api_function():
    submodules = {m.name for m in pkgutil.iter_modules(mixlaw.__path__)}
    assert not submodules & set(mixlaw.__all__)


@pytest.mark.parametrize(
    "first", ["mixlaw.optimizer", "mixlaw.reporting", "mixlaw.exporters", "mixlaw.crossval"]
)
def test_the_functions_are_the_api_functions_whatever_was_imported_first(first):
    code = (
        f"import {first}, mixlaw, mixlaw.api as api; "
        "assert all(getattr(mixlaw, n) is getattr(api, n) for n in mixlaw._API)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})


def test_import_mixlaw_loads_neither_pandas_nor_scipy():
    code = "import sys, mixlaw; assert 'pandas' not in sys.modules and 'scipy' not in sys.modules"
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
