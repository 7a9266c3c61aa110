"""Designs on the bounded simplex: bounds and caps hold exactly, results are deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from mixlaw.adaptive import adaptive_design, bounds_array, project, round_feasible, spacefilling_design
from mixlaw.errors import MixlawInputError
from mixlaw.fitted import prepare
from mixlaw.runs import RunsTable, validate_runs
from tests.conftest import make_runs

DOMAINS = ["web", "code", "books", "math"]
LOWER = {"web": 0.2}
CAPS = {"code": 0.25, "math": 0.1, "books": 0.3}


def check(mixtures, domains, lower, caps):
    lo, hi = bounds_array(domains, lower, caps)
    X = np.array([[m[d] for d in domains] for m in mixtures])
    assert np.all(X >= lo) and np.all(X <= hi)
    np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-12)
    return X


def test_spacefilling_respects_bounds_and_is_deterministic():
    one = spacefilling_design(DOMAINS, 12, seed=3, lower=LOWER, caps=CAPS)
    two = spacefilling_design(DOMAINS, 12, seed=3, lower=LOWER, caps=CAPS)
    assert one == two
    X = check(one, DOMAINS, LOWER, CAPS)
    assert len(np.unique(X, axis=0)) == 12
    assert spacefilling_design(DOMAINS, 12, seed=4, lower=LOWER, caps=CAPS) != one
    # spread: the minimum pairwise L1 distance beats random feasible points of the same number
    d = np.abs(X[:, None] - X[None]).sum(axis=2)[np.triu_indices(12, 1)]
    assert d.min() > 0.05


def test_spacefilling_avoids_existing_mixtures():
    existing = spacefilling_design(DOMAINS, 6, seed=0, caps=CAPS)
    new = spacefilling_design(DOMAINS, 6, seed=0, caps=CAPS, existing=existing)
    assert not {tuple(m.values()) for m in new} & {tuple(m.values()) for m in existing}


def test_projection_and_rounding_are_exact():
    lo, hi = bounds_array(DOMAINS, LOWER, CAPS)
    rng = np.random.default_rng(0)
    X = project(rng.normal(size=(200, 4)), lo, hi)
    assert np.all(X >= lo) and np.all(X <= hi)
    np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-12)
    R = round_feasible(X, lo, hi, decimals=3)
    assert np.all(R >= lo) and np.all(R <= hi)
    np.testing.assert_allclose(R.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(R * 1000, np.round(R * 1000), atol=1e-9)


def test_infeasible_bounds_are_refused():
    with pytest.raises(MixlawInputError):
        spacefilling_design(DOMAINS, 4, caps={"web": 0.1, "code": 0.1, "books": 0.1, "math": 0.1})
    with pytest.raises(MixlawInputError):
        spacefilling_design(DOMAINS, 4, lower={"web": 0.6, "code": 0.6})
    with pytest.raises(MixlawInputError):
        spacefilling_design(DOMAINS, 4, caps={"nope": 0.5})


def test_adaptive_design_respects_bounds_and_is_deterministic():
    data = prepare(RunsTable(validate_runs(make_runs(n_mixtures=12)), "sim"), model="m1", step=1000)
    caps, lower = {"a": 0.5, "c": 0.6}, {"b": 0.1}
    kwargs = dict(seed=2, lower=lower, caps=caps, n_bootstrap=10, restarts=4, n_candidates=256)
    one, info = adaptive_design(data, "dml", 3, **kwargs)
    two, _ = adaptive_design(data, "dml", 3, **kwargs)
    assert one == two
    X = check(one, ["a", "b", "c"], lower, caps)
    assert np.abs(X[:, None] - data.X[None]).sum(axis=2).min() >= 0.02
    assert info["expected_posterior_score"] <= info["prior_score"]


def test_adaptive_design_from_a_pool():
    data = prepare(RunsTable(validate_runs(make_runs(n_mixtures=10)), "sim"), model="m1", step=1000)
    pool = np.random.default_rng(1).dirichlet(np.ones(3), size=15)
    chosen, _ = adaptive_design(data, "ridge-rlogr", 2, pool=pool, n_bootstrap=10)
    X = np.array([[m[d] for d in ("a", "b", "c")] for m in chosen])
    assert all(np.any(np.all(np.isclose(pool, x), axis=1)) for x in X)


def test_cli_design_spacefilling(cli):
    code, out, err = cli(
        "design",
        "--domains",
        "web,code,books",
        "--method",
        "spacefilling",
        "-n",
        "5",
        "--caps",
        "code=0.25",
        "--lower",
        "web=0.3",
        "--seed",
        "1",
    )
    assert code == 0, err
    import yaml

    mixtures = yaml.safe_load(out)["mixtures"]
    assert len(mixtures) == 5
    check(mixtures, ["web", "code", "books"], {"web": 0.3}, {"code": 0.25})
