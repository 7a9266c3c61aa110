"""The `blend` law and `--law auto`'s choice between the best law and a blend of the two best."""

from __future__ import annotations

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FittedLaw, prepare
from mixlaw.laws import get_law, law_from_dict
from mixlaw.selection import blend_weight, fit_law_or_auto
from tests.test_compare import synthetic_table


def _swarm(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(4), size=40)
    Y = np.stack(
        [2.0 + np.exp(X @ np.array([-1.5, 0.4, 0.2, 0.1])), 2.5 + 0.1 / (X[:, 1] + 0.02) ** 0.3], axis=1
    ) + rng.normal(0, 0.003, (40, 2))
    return X, Y


def test_blend_predicts_the_weighted_mean_of_its_members_and_round_trips():
    X, Y = _swarm()
    blend = get_law("blend")(members="dml-log,ridge-rlogr", weights="0.75,0.25").fit(X, Y)
    first = get_law("dml-log")(seed=0).fit(X, Y).predict(X)
    second = get_law("ridge-rlogr")().fit(X, Y).predict(X)
    assert np.allclose(blend.predict(X), 0.75 * first + 0.25 * second)
    again = law_from_dict(blend.to_dict())
    assert np.allclose(again.predict(X[:5]), blend.predict(X[:5]))


@pytest.mark.parametrize(
    "hyper",
    [
        {"members": "dml-log"},
        {"members": "dml-log,nope"},
        {"members": "dml-log,dml", "weights": "0.7,0.7"},
        {"members": "dml-log,dml", "weights": "1.5,-0.5"},
        {"members": "dml-log,dml-implicit"},
    ],
)
def test_blend_rejects_bad_members_and_weights(hyper):
    X, Y = _swarm()
    with pytest.raises(MixlawInputError, match="law blend"):
        get_law("blend")(**hyper).fit(X, Y)


def test_blend_weight_prefers_the_single_law_on_ties_and_blends_opposite_errors():
    truth = np.linspace(2.0, 3.0, 12)
    same = truth + 0.01
    assert blend_weight(same, same, truth) == (1.0, pytest.approx(0.01))
    over, under = truth + 0.01, truth - 0.01  # opposite errors: the half-half blend is exact
    weight, mae = blend_weight(over, under, truth)
    assert weight == 0.5 and mae == pytest.approx(0.0)


def test_auto_records_a_blend_and_it_survives_law_json(tmp_path, monkeypatch):
    data = prepare(synthetic_table(seeds=(0,)), model="m", step=3000)
    # blend_weights=(0.5,): the only weight on offer, so auto blends
    fitted = fit_law_or_auto(
        data, "auto", {"candidates": ["dml", "regmix-linear"], "cv": 4, "blend_weights": (0.5,)}
    )
    assert fitted.law.name == "blend"
    assert fitted.meta["auto"]["chosen"] == "blend(dml:0.5,regmix-linear:0.5)"
    assert fitted.meta["auto"]["blend"]["members"] == ["dml", "regmix-linear"]
    fitted.save(tmp_path / "law.json")
    again = FittedLaw.load(tmp_path / "law.json")
    assert np.allclose(again.predict_total(data.X), fitted.predict_total(data.X))
