"""The constrained mixture optimizer: brute-force agreement, constraints, infeasibility, speed."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FittedLaw
from mixlaw.laws import get_law
from mixlaw.optimizer import build_constraints, optimize, parse_mixture, project


def make_law(M: int, T: int = 3, name: str = "dml", seed: int = 0) -> FittedLaw:
    """A random per-target exponential law (dml), or dml-log with extra log-share terms (non-convex)."""
    rng = np.random.default_rng(seed)
    law = get_law(name)()
    law.n_domains_ = M
    theta = rng.normal(0, 1, (T, M))
    for t in range(T):
        theta[t, t % M] -= 3
    if name == "dml-log":
        theta = np.concatenate([theta, rng.normal(0, 0.15, (T, M))], axis=1)
    law.params_ = {"log_c": np.log(rng.uniform(1, 3, T)).tolist(), "theta": theta.tolist()}
    targets = [f"t{i}" for i in range(T)]
    return FittedLaw(law, [f"d{i}" for i in range(M)], targets, {t: 1 / T for t in targets})


def simplex_grid(M: int, n: int) -> np.ndarray:
    points = [c + (n - sum(c),) for c in itertools.product(range(n + 1), repeat=M - 1) if sum(c) <= n]
    return np.array(points, dtype=float) / n


def brute_force(law: FittedLaw, M: int, n: int, keep=lambda X: np.ones(len(X), bool)) -> float:
    X = simplex_grid(M, n)
    X = X[keep(X)]
    return float(law.predict_total(X).min())


@pytest.mark.parametrize("M,n", [(2, 20000), (3, 800), (4, 150)])
@pytest.mark.parametrize("name", ["dml", "dml-log"])
def test_matches_exhaustive_search(M, n, name):
    law = make_law(M, name=name, seed=M)
    result = optimize(law, bounds={"d0": (0.05, 0.7)})
    best = brute_force(law, M, n, lambda X: (X[:, 0] >= 0.05 - 1e-12) & (X[:, 0] <= 0.7 + 1e-12))
    assert result["predicted"]["total"] <= best + 1e-4
    assert result["predicted"]["total"] >= best - 5e-3  # the grid is only a bit coarser than the optimum
    assert result["solver"]["convex"] == (name == "dml")


def test_constraints_respected_exactly():
    law = make_law(5, seed=3)
    available = {"d0": 1e12, "d1": 2e9, "d2": 5e9, "d3": 1e12, "d4": 1e12}
    result = optimize(
        law,
        bounds={"d3": (0.2, 0.4), "p_d4": (None, 0.1)},
        available=available,
        target_tokens=1e10,
        max_epochs=2,
        fixed={"p_d0": 0.25},
    )
    x = result["mixture"]
    assert abs(sum(x.values()) - 1) < 1e-9
    assert x["p_d0"] == pytest.approx(0.25, abs=1e-12)
    assert x["p_d1"] <= 2e9 * 2 / 1e10 + 1e-12
    assert x["p_d2"] <= 5e9 * 2 / 1e10 + 1e-12
    assert 0.2 - 1e-12 <= x["p_d3"] <= 0.4 + 1e-12
    assert x["p_d4"] <= 0.1 + 1e-12
    assert all(v >= 0 for v in x.values())
    assert result["baseline"]["name"].startswith("natural")
    assert result["equivalent_extra_steps"] is None
    assert "no step information" in result["equivalent_extra_steps_reason"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"bounds": {"d0": (0.6, 1), "d1": (0.6, 1)}}, "lower bounds"),
        ({"available": {"d0": 1e9, "d1": 1e9, "d2": 1e9}, "target_tokens": 1e10}, "upper bounds"),
        ({"fixed": {"d0": 0.7}, "bounds": {"d0": (0, 0.5)}}, "outside its allowed range"),
        ({"fixed": {"d0": 0.7, "d1": 0.6}}, "sum to"),
        ({"bounds": {"d0": (0.5, 0.2)}}, "above upper"),
        ({"bounds": {"zz": (0, 0.2)}}, "unknown domain"),
        ({"available": {"d0": 1e9}}, "target-tokens"),
    ],
)
def test_infeasible_and_bad_constraints(kwargs, match):
    with pytest.raises(MixlawInputError, match=match):
        optimize(make_law(3), **kwargs)


def test_objective_variants_and_prior():
    law = make_law(3, seed=5)
    one = optimize(law, objective="t1")
    X = simplex_grid(3, 400)
    assert one["predicted"]["t1"] <= law.predict(X)["t1"].min() + 1e-4
    weighted = optimize(law, objective={"t0": 3, "t2": 1})
    assert weighted["objective"]["weights"] == {"t0": 0.75, "t2": 0.25}
    pulled = optimize(law, prior={"d0": 1 / 3, "d1": 1 / 3, "d2": 1 / 3}, prior_strength=100.0)
    assert max(abs(v - 1 / 3) for v in pulled["mixture"].values()) < 0.05
    with pytest.raises(MixlawInputError, match="unknown target"):
        optimize(law, objective="nope")


def test_max_distance_to_observed():
    law = make_law(3, seed=6)
    observed = np.array([[0.6, 0.2, 0.2], [0.2, 0.6, 0.2]])
    free = optimize(law, observed=observed)
    limited = optimize(law, observed=observed, max_distance=0.1)
    assert limited["distance_to_observed"]["l1"] <= 0.1 + 1e-6
    assert limited["predicted"]["total"] >= free["predicted"]["total"] - 1e-9
    assert free["distance_to_observed"]["warning"] == (free["distance_to_observed"]["l1"] > 0.8 + 1e-9)


def test_speed_7_and_50_domains():
    law = make_law(7, T=5, seed=7)
    caps = [1, 1, 0.5857, 0.2588, 0.2254, 0.1779, 0.1727]
    started = time.perf_counter()
    result = optimize(law, available={f"d{i}": c * 1e11 for i, c in enumerate(caps)}, target_tokens=1e11)
    assert time.perf_counter() - started < 1.0
    assert all(result["mixture"][f"p_d{i}"] <= c + 1e-12 for i, c in enumerate(caps))
    law = make_law(50, T=20, seed=8)
    started = time.perf_counter()
    result = optimize(law, bounds={f"d{i}": (0, 0.1) for i in range(50)})
    assert time.perf_counter() - started < 10.0
    assert max(result["mixture"].values()) <= 0.1 + 1e-12


def test_projection_and_parse_mixture():
    x = project(np.array([0.9, 0.5, -0.2]), np.zeros(3), np.array([0.6, 1, 1]), 1.0)
    assert abs(x.sum() - 1) < 1e-12 and x[0] <= 0.6 + 1e-12 and (x >= 0).all()
    assert np.allclose(parse_mixture("d0=0.5,p_d1=0.5", ["d0", "d1", "d2"]), [0.5, 0.5, 0])
    with pytest.raises(MixlawInputError, match="sum to"):
        parse_mixture("d0=0.5,d1=0.6", ["d0", "d1"])
    with pytest.raises(MixlawInputError, match="unknown domain"):
        parse_mixture("d9=1", ["d0", "d1"])
    assert build_constraints(["a", "b"]).upper.tolist() == [1, 1]
