"""The large-swarm paths of issue 19: batched Gram matrices, analytic gradients, the chunked distance report,
the tree-law search and the packed observed mixtures. Cost itself is measured by benchmarks/scale.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixlaw.fitted import FittedLaw, pack_mixtures, unpack_mixtures
from mixlaw.laws import FitContext, get_law
from mixlaw.laws.dml import C_FRACTIONS, _jitter, batched_starts
from mixlaw.optimizer import (
    _distance_report,
    _feasible_sample,
    build_constraints,
    nearest_l1,
    objective_function,
    objective_gradient,
    optimize,
)
from mixlaw.runs import mixture_distance


def sparse_swarm(n: int, M: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.full(M, 0.5), size=n)
    X[X < 0.03] = 0.0
    X[X.sum(axis=1) == 0, 0] = 1.0
    return X / X.sum(axis=1, keepdims=True)


def exp_data(n: int, M: int, T: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 100)
    X = sparse_swarm(n, M, seed)
    theta = rng.normal(0, 0.5, (T, M))
    theta[np.arange(T), np.arange(T) % M] = -2.0
    Y = rng.uniform(1.8, 2.5, T)[None] + np.exp(X @ theta.T) + rng.normal(0, 0.003, (n, T))
    return X, Y


# ------------------------------------------------------------------------------------------ batched starts


def einsum_starts(F, Y, penalty, n_starts, rng):
    """The pre-issue-19 batched_starts (three-operand einsum, one design matrix per problem)."""
    mask = ~np.isnan(Y)
    y_min = np.nanmin(Y, axis=1)
    c = np.array(C_FRACTIONS)[None] * y_min[:, None]
    gap = np.where(mask[:, None], Y[:, None] - c[:, :, None], 1.0)
    z = np.log(np.maximum(gap, 1e-12))
    w2 = np.where(mask[:, None], gap**2, 0.0)
    A = np.einsum("bfn,bnq,bnr->bfqr", w2, F, F)
    rhs = np.einsum("bfn,bnq,bfn->bfq", w2, F, z)
    q = F.shape[2]
    scale = np.einsum("bfqq->bf", A)[:, :, None, None] / q
    A = A + (penalty**2)[:, None, :, None] * np.eye(q) + 1e-10 * scale * np.eye(q)
    theta = np.linalg.solve(A, rhs[..., None])[..., 0]
    base = np.concatenate([np.log(np.maximum(c, 1e-8))[..., None], theta], axis=2)
    return np.stack([_jitter(base[b], n_starts, rng, y_min[b]) for b in range(len(Y))])


def test_batched_starts_equal_the_einsum_version_with_shared_designs():
    rng = np.random.default_rng(0)
    designs = rng.normal(size=(2, 30, 4))
    y = 2.0 + np.exp(designs[0] @ rng.normal(size=4) * 0.2)
    folds = [np.arange(30) % 3 == f for f in range(3)]
    # problems: 2 designs x 3 folds x 2 ridge values (the ridge values share their Gram matrix)
    problems = [(d, f, a) for d in range(2) for f in range(3) for a in (1e-6, 1e-2)]
    design = np.array([d for d, _, _ in problems])
    Y = np.stack([np.where(folds[f], np.nan, y) for _, f, _ in problems])
    penalty = np.stack([np.full(4, np.sqrt(a * 20)) for _, _, a in problems])
    expected = einsum_starts(designs[design], Y, penalty, 10, np.random.default_rng(5))
    stacked = batched_starts(designs[design], Y, penalty, 10, np.random.default_rng(5))
    indexed = batched_starts(designs, Y, penalty, 10, np.random.default_rng(5), design)
    np.testing.assert_allclose(stacked, expected, rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(indexed, stacked)


# ------------------------------------------------------------------------------------------ gradients


def finite_difference_jacobian(law, X: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.empty((len(X), law.predict(X).shape[1], X.shape[1]))
    for j in range(X.shape[1]):
        step = np.zeros(X.shape[1])
        step[j] = h
        out[:, :, j] = (law.predict(X + step) - law.predict(X - step)) / (2 * h)
    return out


@pytest.mark.parametrize("name", ["dml", "dml-log", "dml-implicit", "dml2"])
def test_analytic_jacobian_equals_finite_differences(name):
    M = 2 if name == "dml2" else 5
    X, Y = exp_data(40, M)
    if name == "dml-implicit":
        Y = Y.mean(axis=1, keepdims=True)
    hyper = {"eps": "auto"} if name == "dml-log" else {}
    law = get_law(name)(**hyper)
    context = FitContext(domains=["a", "b"], targets=["a", "b", "a"]) if name == "dml2" else None
    law.fit(X, Y, context=context)
    at = sparse_swarm(6, M, seed=9) * 0.9 + 0.1 / M  # interior points: the central differences stay inside
    J = law.jacobian(at)
    assert J.shape == (6, Y.shape[1], M)
    np.testing.assert_allclose(J, finite_difference_jacobian(law, at), rtol=1e-5, atol=1e-7)


def test_dml_log_jacobian_with_a_different_eps_per_target():
    X, Y = exp_data(40, 4)
    law = get_law("dml-log")(eps=0.01, ridge=1e-4).fit(X, Y)
    law.params_["eps"] = [0.001, 0.03, 0.1]
    at = sparse_swarm(5, 4, seed=3) * 0.9 + 0.025
    np.testing.assert_allclose(law.jacobian(at), finite_difference_jacobian(law, at), rtol=1e-5, atol=1e-7)


def test_objective_gradient_of_the_total_and_of_weights():
    X, Y = exp_data(40, 4)
    law = FittedLaw(
        get_law("dml")().fit(X, Y), list("abcd"), ["t0", "t1", "t2"], {"t0": 0.5, "t1": 0.3, "t2": 0.2}
    )
    at = sparse_swarm(4, 4, seed=2) * 0.9 + 0.025
    for weights in ({"total": 1.0}, {"t1": 0.25, "t2": 0.75}):
        f, g = objective_function(law, weights), objective_gradient(law, weights)
        fd = np.stack([(f(at + 1e-6 * e) - f(at - 1e-6 * e)) / 2e-6 for e in np.eye(4)], axis=1)
        np.testing.assert_allclose(g(at), fd, rtol=1e-5, atol=1e-8)
    ridge = FittedLaw(get_law("ridge-rlogr")().fit(X, Y), list("abcd"), ["t0", "t1", "t2"], None)
    assert objective_gradient(ridge, {"t0": 1.0}) is None  # no jacobian: the solver's finite differences


def test_optimize_uses_the_analytic_gradient_and_agrees_with_finite_differences():
    X, Y = exp_data(60, 6)
    fitted = FittedLaw(get_law("dml-log")().fit(X, Y), [f"d{j}" for j in range(6)], ["a", "b", "c"], None)
    fitted.total_weights = {"a": 0.2, "b": 0.3, "c": 0.5}
    analytic = optimize(fitted)
    assert analytic["solver"]["gradient"] == "analytic"
    fitted.law.jacobian = None  # the same law without a jacobian: the finite-difference path
    numeric = optimize(fitted)
    del fitted.law.jacobian
    assert numeric["solver"]["gradient"] == "finite differences"
    assert abs(analytic["objective"]["value"] - numeric["objective"]["value"]) < 1e-6
    assert analytic["objective"]["value"] <= numeric["objective"]["value"] + 1e-9


# ------------------------------------------------------------------------------------------ distance report


def old_distance_report(x, observed):
    """The pre-issue-19 report: an (n, n, M) array for the largest nearest-neighbour gap."""
    d = mixture_distance(x[None], observed)[0]
    pair = mixture_distance(observed, observed)
    np.fill_diagonal(pair, np.inf)
    return float(d.min()), int(np.argmin(d)), float(pair.min(axis=1).max())


@pytest.mark.parametrize("n,M", [(2, 3), (30, 4), (120, 9)])
def test_distance_report_equals_the_old_one(n, M, monkeypatch):
    import mixlaw.optimizer as optimize_module

    monkeypatch.setattr(optimize_module, "_DISTANCE_CHUNK", 7 * n)  # several chunks even on small data
    observed = np.round(sparse_swarm(n, M, seed=n), 3)
    observed = np.vstack([observed, observed[:1]])  # a repeated mixture: gap 0 to its copy, lowest index wins
    x = sparse_swarm(1, M, seed=99)[0]
    report = _distance_report(x, observed, None)
    l1, index, gap = old_distance_report(x, observed)
    assert report["l1"] == pytest.approx(l1, abs=1e-12)
    assert report["nearest_index"] == index
    assert report["threshold"] == pytest.approx(gap, abs=1e-12)
    assert report["warning"] == (l1 > gap + 1e-9)
    dist, nearest = nearest_l1(observed, observed, exclude_self=True)
    pair = mixture_distance(observed, observed)
    np.fill_diagonal(pair, np.inf)
    np.testing.assert_allclose(dist, pair.min(axis=1), atol=1e-12)
    np.testing.assert_array_equal(nearest, pair.argmin(axis=1))


# ------------------------------------------------------------------------------------------ tree laws


def test_tree_law_search_beats_random_search_on_a_tree_friendly_truth():
    pytest.importorskip("lightgbm")
    M = 8
    rng = np.random.default_rng(0)

    def truth(X):  # axis-aligned steps, where trees are right: low when d0 and d1 are both well represented
        return 3.0 - 0.4 * (X[:, 0] > 0.25) - 0.3 * (X[:, 1] > 0.15) - 0.2 * (X[:, 2] < 0.05) + 0.1 * X[:, 3]

    X = sparse_swarm(400, M, seed=1)
    y = truth(X) + rng.normal(0, 0.01, len(X))
    fitted = FittedLaw(
        get_law("regmix-lgbm")().fit(X, y[:, None]), [f"d{j}" for j in range(M)], ["total"], None
    )
    fitted.meta["observed_mixtures"] = X.tolist()
    result = optimize(fitted)
    assert result["solver"]["method"] == "sample-search"
    x = np.array(list(result["mixture"].values()))
    assert abs(x.sum() - 1) < 1e-9 and (x >= 0).all()
    # plain random search with the same number of law evaluations: the best predicted of a feasible sample
    cons = build_constraints(fitted.domains)
    sample = _feasible_sample(cons, M, result["solver"]["converged_starts"], np.random.default_rng(0))
    random_pick = sample[np.argmin(fitted.predict_total(sample))]
    assert truth(x[None])[0] < truth(random_pick[None])[0]
    assert truth(x[None])[0] <= 3.0 - 0.4 - 0.3 - 0.2 + 0.05  # all three steps taken


# ------------------------------------------------------------------------------------------ LAW.json


def test_packed_observed_mixtures_round_trip_exactly():
    X = np.round(sparse_swarm(50, 7), 6)
    packed = pack_mixtures(X.tolist())
    assert packed["dtype"] == "uint32"
    assert np.array_equal(np.array(unpack_mixtures(packed)), X)
    off_grid = sparse_swarm(5, 3, seed=4)
    assert pack_mixtures(off_grid)["dtype"] == "float64"
    assert np.array_equal(np.array(unpack_mixtures(pack_mixtures(off_grid))), off_grid)


def test_law_json_is_smaller_and_old_files_still_load(tmp_path):
    X, Y = exp_data(300, 12)
    observed = np.unique(np.round(X, 6), axis=0)
    fitted = FittedLaw(
        get_law("dml")(ridge=1e-6).fit(X, Y), [f"d{j}" for j in range(12)], ["a", "b", "c"], None
    )
    fitted.total_weights = {"a": 0.2, "b": 0.3, "c": 0.5}
    fitted.meta["observed_mixtures"] = observed.tolist()
    new = tmp_path / "law.json"
    fitted.save(new)
    data = json.loads(new.read_text())
    assert data["observed_mixtures"]["encoding"] == "zlib+base64"
    old = tmp_path / "old.json"  # the layout written before: a list of lists
    old.write_text(json.dumps({**data, "observed_mixtures": observed.tolist()}))
    assert new.stat().st_size < 0.6 * old.stat().st_size
    for path in (new, old):
        loaded = FittedLaw.load(path)
        assert np.array_equal(np.array(loaded.meta["observed_mixtures"]), observed)
        result = optimize(loaded)
        assert result["distance_to_observed"]["l1"] is not None
    assert optimize(FittedLaw.load(new))["mixture"] == optimize(FittedLaw.load(old))["mixture"]
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({**data, "observed_mixtures": {"encoding": "zlib+base64", "dtype": "uint8"}})
    )
    with pytest.raises(Exception, match="observed_mixtures"):
        FittedLaw.load(broken)
