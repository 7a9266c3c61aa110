"""Extended laws and engine additions: dml-log eps=auto, convergence-aware polish, robustness to broken starts,
ridge chosen by inner CV and finite predictions where a domain was never (or almost never) seen."""

from __future__ import annotations

import numpy as np
import pytest

import mixlaw.fitting as fitting
from mixlaw.fitting import fit_multistart
from mixlaw.laws import get_law, law_from_dict
from mixlaw.laws.dml import DML, EPS_GRID, RIDGE_GRID, DMLImplicit, DMLLog, exp_model, simplex_basis


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


# ------------------------------------------------------------------ robustness: unidentified exponents, ridge


def _absent_domain_data(seed: int = 0, n: int = 24, almost: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """4 domains; domain 3 is 0 in every fitting mixture (or nonzero in a single one when `almost`)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 4))
    X[:, :3] = rng.dirichlet(np.ones(3), size=n)
    if almost:
        X[0] = [0.3, 0.3, 0.2, 0.2]
    t = np.array([[-1.5, 0.2, 0.3, -1.0], [0.3, -1.2, 0.1, 0.2]])
    Y = np.array([2.0, 2.5])[None] + np.exp(X @ t.T) + rng.normal(0, 2e-3, (n, 2))
    return X, Y


@pytest.mark.parametrize("almost", [False, True])
@pytest.mark.parametrize("name", ["dml", "dml-log", "dml-implicit"])
def test_unseen_domain_gives_finite_bounded_predictions(name, almost):
    X, Y = _absent_domain_data(almost=almost)
    law = get_law(name)(restarts=8, **({"K_max": 2} if name == "dml-implicit" else {}))
    y = Y.sum(axis=1) if name == "dml-implicit" else Y
    law.fit(X, y)
    new = np.random.default_rng(7).dirichlet(np.ones(4), size=200)  # in the simplex, using the unseen domain
    new[:10] = np.eye(4)[[3] * 10]  # and the unseen domain alone
    pred = law.predict(new)
    assert np.isfinite(pred).all()
    y2 = np.atleast_2d(y.T).T
    span = y2.max(axis=0) - y2.min(axis=0)
    assert (pred <= y2.max(axis=0) + 3 * span + 0.5).all() and (pred >= y2.min(axis=0) - 3 * span - 0.5).all()


def test_ridge_is_chosen_by_cv_and_recorded():
    X, Y = _absent_domain_data()
    law = DMLLog(eps=0.01, restarts=8).fit(X, Y)
    assert set(law.params_["ridge"]) <= set(RIDGE_GRID) and len(law.params_["ridge"]) == 2
    assert len(law.params_["cv"]["cv_mae"][0]) == len(RIDGE_GRID)
    fixed = DMLLog(eps=0.01, ridge=0, restarts=8).fit(X, Y)  # ridge=0: no penalty, no inner CV
    assert fixed.params_["ridge"] == [0.0, 0.0] and "cv" not in fixed.params_
    dml = DML(ridge="1e-6", restarts=8).fit(X, Y)  # CLI values arrive as strings
    assert dml.params_["ridge"] == [1e-6, 1e-6]


def test_engine_accepts_one_ridge_row_per_problem():
    X = _simplex(20, 3, 4)
    y = 1.0 + np.exp(X @ np.array([0.5, -1.0, 0.2]))
    starts = np.tile(np.array([0.0, 0.5, -1.0, 0.2])[None, None], (2, 2, 1))
    ridge = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 10.0, 10.0, 10.0]])
    result = fit_multistart(exp_model(X), np.stack([y, y]), starts, delta=0.02, ridge=ridge)
    np.testing.assert_allclose(result.theta[0, 1:], [0.5, -1.0, 0.2], atol=1e-6)
    assert np.abs(result.theta[1, 1:]).sum() < np.abs(result.theta[0, 1:]).sum()  # the penalized one shrinks
    one = fit_multistart(exp_model(X), y[None], starts[:1], delta=0.02, ridge=ridge[1])  # (P,) still works
    np.testing.assert_allclose(one.theta[0], result.theta[1], atol=1e-6)


def test_simplex_basis_separates_level_and_centered_part():
    Q = simplex_basis(5)
    assert np.allclose(Q[:, 0], 1) and np.allclose(Q[:, 1:].sum(axis=0), 0)
    assert np.allclose(Q[:, 1:].T @ Q[:, 1:], np.eye(4))


def test_dml_implicit_chooses_K_and_ridge_and_stays_sane():
    X = np.random.default_rng(0).dirichlet(np.ones(3), size=30)
    y = 1.0 + np.exp(X @ np.array([-3.0, 0.5, 0.2])) + np.exp(X @ np.array([0.4, 0.3, -2.5]))
    law = DMLImplicit(K_max=2, restarts=16).fit(X, y + np.random.default_rng(3).normal(0, 1e-3, 30))
    assert law.params_["K"] in (1, 2) and law.params_["ridge"] in RIDGE_GRID
    assert [row["K"] for row in law.params_["K_cv"]] == [1, 2]
    new = np.random.default_rng(1).dirichlet(np.ones(3) * 0.3, size=100)
    truth = 1.0 + np.exp(new @ np.array([-3.0, 0.5, 0.2])) + np.exp(new @ np.array([0.4, 0.3, -2.5]))
    assert np.abs(law.predict(new)[:, 0] - truth).max() < 0.2


def test_data_hash_is_cheap_and_identifies_the_data(tmp_path):
    from conftest import make_runs

    from mixlaw.runs import RunsTable, read_runs

    frame = make_runs()
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    table = read_runs(path)
    assert table.file_hash and table.data_hash() == read_runs(path).data_hash()  # hashed once, at read time
    memory = RunsTable(table.frame, "memory")
    shuffled = RunsTable(table.frame.sample(frac=1.0, random_state=0), "memory")
    assert memory.data_hash() == shuffled.data_hash()  # row order does not matter
    changed = table.frame.copy()
    changed.loc[0, "loss"] += 1e-6
    assert RunsTable(changed, "memory").data_hash() != memory.data_hash()
