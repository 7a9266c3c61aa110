"""The law contract (mixlaw.laws.base), checked for every law in the registry and for the schedule law.

Parametrized over `LAWS` itself: a law added with `register` before collection is checked automatically. The
data is small and the restarts few (through hyper-parameters), so the whole file runs in seconds."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.laws import COMMON_SUMMARY_KEYS, LAWS, FitContext, MixingLaw, law_from_dict
from mixlaw.schedule import ScheduleLaw, check_schedule, effective_mixtures

# Cheaper settings for the knobs laws share; a law gets those it has (the contract does not depend on them).
QUICK = {"restarts": 4, "steps": 10, "rounds": 40, "max_iter": 20, "K_max": 2, "n_log_c": 2}


def quick_hyper(law_class: type[MixingLaw]) -> dict[str, Any]:
    """The QUICK settings the law has."""
    return {k: v for k, v in QUICK.items() if k in law_class.defaults}


@dataclass
class Case:
    """How to make data for one law: draw(seed) -> (X, Y, context), and a few mixtures to predict."""

    law_class: type[MixingLaw]
    draw: Callable[[int], tuple[Any, np.ndarray, FitContext]]
    query: Any
    hyper: dict[str, Any]


def _mixture_case(law_class: type[MixingLaw]) -> Case:
    M = law_class.fixed_domains or 3
    domains = ["a", "b", "c"][:M]
    targets = ["a", "b"] if law_class.per_target else ["total"]

    def draw(seed: int) -> tuple[np.ndarray, np.ndarray, FitContext]:
        rng = np.random.default_rng(seed)
        X = rng.dirichlet(np.ones(M), size=18)
        theta = rng.normal(0, 1, (2, M)) - 1.5 * np.eye(2, M)
        Y = 2.0 + seed + np.exp(X @ theta.T) + rng.normal(0, 0.003, (18, 2))
        if not law_class.per_target:
            Y = Y.mean(axis=1, keepdims=True)
        steps = np.full(len(X), 1000.0)
        return X, Y, FitContext(domains=domains, targets=targets, steps=steps)

    hyper = quick_hyper(law_class)
    if law_class.name == "blend":  # quick members (each member uses its own defaults)
        hyper["members"] = "dml,ridge-rlogr"
    return Case(law_class, draw, np.random.default_rng(99).dirichlet(np.ones(M), size=5), hyper)


def _schedule_case() -> Case:
    def draw(seed: int) -> tuple[list, np.ndarray, FitContext]:
        rng = np.random.default_rng(seed)
        schedules = [
            check_schedule(np.array([0.5, 0.5]), rng.dirichlet(np.ones(3), size=2)) for _ in range(14)
        ]
        R = effective_mixtures(schedules, 2.0)
        Y = 1.5 + seed + np.exp(R @ np.array([[-1.0, 0.5, 0.2], [0.3, -1.5, 0.1]]).T)
        return schedules, Y + rng.normal(0, 0.001, Y.shape), FitContext(domains=["a", "b", "c"])

    query = [check_schedule(np.array([1.0]), np.array([[0.2, 0.3, 0.5]]))] * 2
    return Case(ScheduleLaw, draw, query, {"restarts": 4, "gamma": 2.0})  # a fixed gamma: no grid search


CASES = {name: _mixture_case(law_class) for name, law_class in sorted(LAWS.items())}
CASES["schedule-dml"] = _schedule_case()


@pytest.fixture(params=sorted(CASES), ids=str)
def case(request) -> Case:
    if request.param == "regmix-lgbm":
        pytest.importorskip("lightgbm")
    return CASES[request.param]


def _fit(case: Case, seed: int = 0, law: MixingLaw | None = None) -> MixingLaw:
    law = law or case.law_class(**case.hyper)
    X, Y, context = case.draw(seed)
    return law.fit(X, Y, context)


def test_facts_are_declared(case):
    law_class = case.law_class
    assert law_class.name and law_class.description
    for fact in ("per_target", "convex", "seeded", "nonparametric", "piecewise_constant", "blendable"):
        assert isinstance(getattr(law_class, fact), bool), fact
    assert law_class.auto_candidate is None or isinstance(law_class.auto_candidate, int)
    assert isinstance(law_class.auto_min_mixtures, int)
    assert not law_class.seeded or "seed" in law_class.defaults


def test_predict_before_fit_raises(case):
    with pytest.raises(RuntimeError, match="not fitted"):
        case.law_class().predict(case.query)


def test_unknown_hyper_parameter_is_rejected(case):
    with pytest.raises(MixlawInputError, match="unknown parameter"):
        case.law_class(no_such_knob=1)


def test_fit_returns_self_with_common_summary(case):
    law = case.law_class(**case.hyper)
    X, Y, context = case.draw(0)
    assert law.fit(X, Y, context) is law
    assert set(COMMON_SUMMARY_KEYS) <= set(law.summary_)
    assert law.summary_["n"] == len(Y)
    assert np.all(np.isfinite(law.predict(case.query)))


def test_refit_on_new_data_equals_a_fresh_fit(case):
    """Learned state is made only in fit: fitting again (after predicting, which may build derived state)
    forgets the first fit."""
    law = _fit(case, seed=0)
    first = law.predict(case.query)
    _fit(case, seed=1, law=law)
    fresh = _fit(case, seed=1)
    assert law.to_dict()["params"] == fresh.to_dict()["params"]
    assert np.array_equal(law.predict(case.query), fresh.predict(case.query))
    assert not np.allclose(law.predict(case.query), first)  # the two data sets do differ


def test_json_round_trip_preserves_predictions(case):
    law = _fit(case)
    data = json.loads(json.dumps(law.to_dict()))
    again = case.law_class.from_dict(data) if case.law_class is ScheduleLaw else law_from_dict(data)
    assert np.array_equal(again.predict(case.query), law.predict(case.query))
    assert again.summary_ == law.summary_ and again.hyper == law.hyper
