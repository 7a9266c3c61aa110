"""The speed shortcuts of the fitting path give the exact results of the plain computation they replace."""

from __future__ import annotations

import numpy as np
import pytest

from mixlaw.fitting import fit_multistart
from mixlaw.laws import get_law
from mixlaw.laws.base import FitContext
from mixlaw.laws.dml import BatchedExpModel


def _problems(seed: int = 0, n: int = 12, q: int = 6, designs: int = 3, starts: int = 40):
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(designs, n, q))
    design = rng.integers(designs, size=starts)
    theta = rng.normal(scale=0.3, size=(starts, 1 + q))
    return F, design, theta, rng


def test_structured_normal_equations_equal_the_dense_jacobian_products():
    F, design, theta, rng = _problems()
    model = BatchedExpModel(F, design)
    index = rng.permutation(len(theta))  # rows in any order, several designs interleaved
    th = theta[index]
    pred_dense, J = model(th, index)
    pred, e = model.compact(th, index)
    np.testing.assert_allclose(pred, pred_dense, rtol=1e-13)
    w = rng.uniform(0.0, 1.0, size=pred.shape) * (rng.uniform(size=pred.shape) > 0.2)  # 0 = a held-out row
    r = rng.normal(size=pred.shape)
    A, g = model.normal(e, w, r, th, index)
    JW = J * w[:, :, None]
    np.testing.assert_allclose(A, JW.transpose(0, 2, 1) @ J, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, (JW.transpose(0, 2, 1) @ r[:, :, None])[:, :, 0], rtol=1e-12, atol=1e-12)


def test_structured_fit_equals_the_dense_fit():
    """The same LM iterations with the dense Jacobian (a plain model function) reach the same optimum."""
    F, _, _, rng = _problems(seed=1, n=15, q=4, designs=2, starts=0)
    B, R = 6, 5
    design = np.arange(B) % 2
    truth = rng.normal(scale=0.5, size=(B, 1 + F.shape[2]))
    truth[:, 0] = np.log(1.5)
    Y = np.exp(truth[:, :1]) + np.exp(np.einsum("bnq,bq->bn", F[design], truth[:, 1:]))
    Y = Y + rng.normal(scale=0.01, size=Y.shape)
    Y[0, :3] = np.nan  # held-out rows, as in the inner CV
    starts = truth[:, None] + rng.normal(scale=0.3, size=(B, R, truth.shape[1]))
    ridge = np.full((B, truth.shape[1]), 1e-3)
    ridge[:, 0] = 0.0
    structured = BatchedExpModel(F, design)

    def dense(theta, index):
        return structured(theta, index)

    fast = fit_multistart(structured, Y, starts, delta=0.02, ridge=ridge)
    plain = fit_multistart(dense, Y, starts, delta=0.02, ridge=ridge)
    np.testing.assert_allclose(fast.theta, plain.theta, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fast.cost, plain.cost, rtol=1e-9)


@pytest.mark.parametrize("law", ["dml", "dml-log"])
def test_exponential_law_fit_is_unchanged_by_the_structured_path(law, monkeypatch):
    """dml and dml-log (inner CV and final fit) choose the same ridge/eps and predict the same with the dense
    path forced (the model without `normal`), leave-one-mixture-out on a small table."""
    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(4), size=12)
    Y = np.stack([2.0 + np.exp(X @ t) for t in rng.normal(scale=0.8, size=(2, 4))], axis=1)
    Y = Y + rng.normal(scale=0.003, size=Y.shape)

    def loo(law_name):
        out, chosen = [], []
        for i in range(0, len(X), 3):
            keep = np.arange(len(X)) != i
            fitted = get_law(law_name)(seed=0).fit(X[keep], Y[keep], FitContext())
            out.append(fitted.predict(X[i : i + 1])[0])
            chosen.append((fitted.params_["ridge"], fitted.params_.get("eps")))
        return np.array(out), chosen

    fast, fast_chosen = loo(law)
    monkeypatch.setattr(BatchedExpModel, "__getattribute__", _without_normal)
    plain, plain_chosen = loo(law)
    assert fast_chosen == plain_chosen
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-6)


def _without_normal(self, name):
    if name == "normal":
        raise AttributeError(name)  # `fitting._lm` then takes the dense Jacobian path
    return object.__getattribute__(self, name)


def test_step_grid_reuses_the_fit_at_the_target_and_the_frames_are_cached():
    """The step-aware law at factor 1 is the law a refit on the same losses gives; the extrapolator computes
    each length once and hands out copies."""
    from mixlaw.pipeline import PipelineConfig, _refit, run_pipeline
    from mixlaw.runs import RunsTable, load_weights, validate_runs
    from tests.test_pipeline import TARGET_N, TARGET_S, make_table

    table = RunsTable(validate_runs(make_table(), "runs"))
    config = PipelineConfig(target_params=TARGET_N, target_step=TARGET_S, law="dml")
    result = run_pipeline(table, load_weights(None, table.valid_domains), config)
    grid = result.law.meta["step_grid"]
    at_target = grid["laws"][grid["factors"].index(1.0)]
    assert at_target == _refit(result.law, result.data).law.to_dict()
    X = result.data.X
    refit = _refit(result.law, result.data).predict(X)
    reused = result.mixing_law_at(TARGET_S).predict(X)
    assert all(np.array_equal(refit[k], reused[k]) for k in refit)
    first = result.extrapolate(2 * TARGET_S)
    first.iloc[:, 1:] = 0.0  # a caller's edit must not reach the cache
    again = result.extrapolate(2 * TARGET_S)
    assert (again.drop(columns="run").to_numpy() != 0).all()
    assert len(result.extrapolator._cache) == len(set(grid["values"]) | {float(TARGET_S)} | {2.0 * TARGET_S})
