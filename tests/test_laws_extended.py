"""Extended laws and engine additions: dml-log eps=auto, convergence-aware polish, robustness to broken starts."""

from __future__ import annotations

import numpy as np

import mixlaw.fitting as fitting
from mixlaw.fitting import fit_multistart
from mixlaw.laws import law_from_dict
from mixlaw.laws.dml import EPS_GRID, DMLLog, exp_model


def _simplex(n: int, m: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).dirichlet(np.ones(m), size=n)
    X[: n // 4, 0] = 0.0  # some mixtures without domain 0, where the log terms matter
    return X / X.sum(axis=1, keepdims=True)


def _truth(X: np.ndarray, eps: float) -> np.ndarray:
    F = np.concatenate([X, np.log(X + eps)], axis=1)
    theta = np.array([[0.3, -0.2, 0.1, -0.15, 0.05, 0.0], [-0.1, 0.2, 0.0, 0.0, -0.12, 0.03]])
    return np.array([1.5, 2.0])[None] + np.exp(F @ theta.T)


def test_dml_log_eps_auto_recovers_the_true_eps_and_round_trips():
    X = _simplex(40, 3, 0)
    Y = _truth(X, 0.03) + np.random.default_rng(1).normal(0, 2e-4, (40, 2))
    law = DMLLog(restarts=8).fit(X, Y)
    assert law.hyper["eps"] == "auto"
    assert set(law.params_["eps"]) <= set(EPS_GRID) and len(law.params_["eps"]) == 2
    assert all(0.01 <= e <= 0.1 for e in law.params_["eps"])  # neighbours of the true 0.03 at worst
    assert len(law.params_["eps_cv"]) == len(EPS_GRID)
    X_new = _simplex(10, 3, 5)
    assert np.abs(law.predict(X_new) - _truth(X_new, 0.03)).max() < 0.02
    again = law_from_dict(law.to_dict())
    np.testing.assert_allclose(again.predict(X_new), law.predict(X_new))


def test_dml_log_fixed_eps_is_unchanged_and_accepts_strings():
    X = _simplex(30, 3, 2)
    Y = _truth(X, 0.01)
    a = DMLLog(eps=0.01, restarts=8).fit(X, Y).predict(X)
    b = DMLLog(eps="0.01", restarts=8).fit(X, Y).predict(X)  # CLI values arrive as strings
    np.testing.assert_allclose(a, b)
    assert np.abs(a - Y).max() < 1e-5


def test_converged_fits_skip_the_scipy_polish(monkeypatch):
    X = _simplex(30, 3, 3)
    y = (1.0 + np.exp(X @ np.array([0.5, -1.0, 0.2])))[None]
    calls = []
    original = fitting._polish
    monkeypatch.setattr(fitting, "_polish", lambda *a, **k: calls.append(1) or original(*a, **k))
    starts = np.concatenate([np.zeros((1, 4, 1)), np.random.default_rng(0).normal(0, 0.5, (1, 4, 3))], axis=2)
    result = fit_multistart(exp_model(X), y, starts, delta=0.02)
    assert calls == []
    assert result.cost[0] < 1e-20
    np.testing.assert_allclose(result.theta[0, 1:], [0.5, -1.0, 0.2], atol=1e-6)


def test_broken_starts_do_not_crash_the_engine():
    X = _simplex(20, 3, 4)
    y = (1.0 + np.exp(X @ np.array([0.5, -1.0, 0.2])))[None]
    starts = np.array([[[0.0, 0.5, -1.0, 0.2], [0.0, 800.0, -900.0, np.nan], [0.0, 1e308, 0.0, 0.0]]])
    result = fit_multistart(exp_model(X), y, starts, delta=0.02)
    assert np.isfinite(result.cost[0]) and result.cost[0] < 1e-20
