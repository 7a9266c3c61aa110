"""Each law recovers known parameters from noisy synthetic data and round-trips through JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import exp_law_loss

from mixlaw.errors import MixlawInputError
from mixlaw.laws import get_law, law_from_dict, parse_hyper
from mixlaw.laws.dml import DML, DML2, DMLImplicit, DMLLog, correlation_c


def simplex(n: int, m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(m), size=n)


def test_dml_recovers_parameters():
    X = simplex(40, 3)
    c = np.array([2.0, 1.5])
    T = np.array([[-2.0, 0.5, 0.1], [0.3, -1.5, 0.4]])
    Y = exp_law_loss(X, c, T) + np.random.default_rng(1).normal(0, 1e-3, (40, 2))
    law = DML().fit(X, Y)
    assert np.exp(law.params_["log_c"]) == pytest.approx(c, abs=0.05)
    assert np.array(law.params_["theta"]) == pytest.approx(T, abs=0.1)
    X_new = simplex(100, 3, seed=5)
    assert np.abs(law.predict(X_new) - exp_law_loss(X_new, c, T)).max() < 5e-3
    assert max(law.summary_["rmse"]) < 2e-3


def test_dml_is_robust_to_outliers():
    X = simplex(40, 3)
    c, T = np.array([2.0]), np.array([[-2.0, 0.5, 0.1]])
    Y = exp_law_loss(X, c, T) + np.random.default_rng(1).normal(0, 1e-3, (40, 1))
    Y[:3] += 0.3  # three wild checkpoints
    X_new = simplex(100, 3, seed=5)
    robust = DML(delta=0.01).fit(X, Y)
    plain = DML(delta=None).fit(X, Y)
    truth = exp_law_loss(X_new, c, T)
    assert np.abs(robust.predict(X_new) - truth).mean() < 0.3 * np.abs(plain.predict(X_new) - truth).mean()


def test_dml2_joint_and_two_stage():
    r = np.linspace(0.25, 0.75, 5)
    X = np.stack([r, 1 - r], axis=1)
    y = 1.3 + np.exp(-0.6 - 2.4 * r)
    joint = DML2().fit(X, y)
    assert joint.params_["t"][0] == pytest.approx(-2.4, abs=0.02)
    assert joint.params_["log_k"][0] == pytest.approx(-0.6, abs=0.02)
    assert joint.params_["c"][0] == pytest.approx(1.3, abs=0.01)
    two_stage = DML2(c_init="correlation").fit(X, y)
    assert two_stage.params_["c"][0] == pytest.approx(correlation_c(r, y))
    assert np.abs(two_stage.predict(X) - y[:, None]).max() < 2e-3
    with pytest.raises(MixlawInputError, match="exactly 2 training domains"):
        DML2().fit(simplex(10, 3), y[:1].repeat(10))


def test_dml_log_recovers_power_response_near_zero():
    X = simplex(60, 3)
    X[::4, 0] = 0.0
    X /= X.sum(axis=1, keepdims=True)
    theta = np.array([0.2, 0.1, -0.3, -0.25, 0.0, 0.0])
    F = np.concatenate([X, np.log(X + 0.01)], axis=1)
    y = 1.8 + np.exp(F @ theta)
    law = DMLLog(eps=0.01).fit(X, y + np.random.default_rng(2).normal(0, 1e-3, 60))
    assert np.exp(law.params_["log_c"][0]) == pytest.approx(1.8, abs=0.05)
    X_new = simplex(50, 3, seed=9)
    F_new = np.concatenate([X_new, np.log(X_new + 0.01)], axis=1)
    assert np.abs(law.predict(X_new)[:, 0] - (1.8 + np.exp(F_new @ theta))).max() < 0.01


def test_dml_implicit_fits_a_two_component_truth():
    X = simplex(60, 3)
    y = 1.0 + np.exp(X @ np.array([-3.0, 0.5, 0.2])) + np.exp(X @ np.array([0.4, 0.3, -2.5]))
    law = DMLImplicit(K=2).fit(X, y + np.random.default_rng(3).normal(0, 1e-3, 60))
    X_new = simplex(50, 3, seed=11)
    truth = 1.0 + np.exp(X_new @ np.array([-3.0, 0.5, 0.2])) + np.exp(X_new @ np.array([0.4, 0.3, -2.5]))
    assert np.abs(law.predict(X_new)[:, 0] - truth).max() < 0.02
    assert law.params_["K"] == 2 and sum(law.params_["s"]) == pytest.approx(1)
    auto = DMLImplicit(K="auto", K_max=3, restarts=16).fit(X, y)
    assert auto.params_["K"] >= 2 and [row["K"] for row in auto.params_["K_cv"]] == [1, 2, 3]


@pytest.mark.parametrize("name", ["dml2", "dml", "dml-log", "dml-implicit", "ridge-rlogr"])
def test_json_round_trip(name):
    X = simplex(30, 2 if name == "dml2" else 3)
    y = 2.0 + np.exp(X @ (np.arange(X.shape[1]) - 1.0))
    hyper = {"K": 1} if name == "dml-implicit" else {}
    law = get_law(name)(**hyper).fit(X, y)
    again = law_from_dict(json.loads(json.dumps(law.to_dict())))
    assert np.array_equal(again.predict(X), law.predict(X))


def test_fits_are_deterministic_for_a_seed():
    X = simplex(30, 3)
    y = 2.0 + np.exp(X @ np.array([-1.0, 0.2, 0.5])) + np.random.default_rng(0).normal(0, 0.01, 30)
    a = DMLLog(seed=3).fit(X, y).predict(X)
    b = DMLLog(seed=3).fit(X, y).predict(X)
    assert np.array_equal(a, b)


def test_hyper_parameters_are_typed_and_checked():
    assert parse_hyper(DML, ["delta=0.05", "restarts=8"]) == {"delta": 0.05, "restarts": 8}
    assert parse_hyper(DML, ["delta=none"]) == {"delta": None}
    with pytest.raises(MixlawInputError, match="no such parameter"):
        parse_hyper(DML, ["K=3"])
    with pytest.raises(MixlawInputError, match="expected an integer"):
        parse_hyper(DML, ["restarts=many"])
