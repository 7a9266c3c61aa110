"""The large-swarm paths (100 or more distinct mixtures): same model and accuracy as the full fits, cheaper
choices. Speed itself is measured by benchmarks/compare_laws.py, not here."""

from __future__ import annotations

import numpy as np
import pytest

from mixlaw.fitting import blas_threads
from mixlaw.laws import get_law
from mixlaw.laws.dml import is_large_swarm


def sparse_swarm(n: int, M: int, seed: int = 0) -> np.ndarray:
    """Sparse Dirichlet mixtures with exact zeros, like RegMix's swarms."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.full(M, 0.5), size=n)
    X[X < 0.02] = 0.0
    X[X.sum(axis=1) == 0, 0] = 1.0
    return X / X.sum(axis=1, keepdims=True)


def exp_truth(X: np.ndarray, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    M = X.shape[1]
    t = rng.normal(0, 0.6, (3, M))
    t[np.arange(3), np.arange(3)] = -2.0
    c = np.array([2.0, 2.4, 1.8])
    return c[None] + np.exp(X @ t.T), c, t


def test_is_large_swarm_counts_distinct_mixtures():
    X = sparse_swarm(120, 6)
    assert is_large_swarm(X)
    assert not is_large_swarm(np.repeat(X[:50], 3, axis=0))  # 150 rows but 50 mixtures: the small-swarm path
    assert not is_large_swarm(X[:60])


@pytest.mark.parametrize("law", ["dml", "dml-log"])
def test_large_swarm_exponential_laws_recover_truth(law):
    X = sparse_swarm(150, 8)
    Y, _, _ = exp_truth(X)
    rng = np.random.default_rng(2)
    fitted = get_law(law)().fit(X, Y + rng.normal(0, 0.003, Y.shape))
    assert "large_swarm" in fitted.params_["cv"]  # the cheap path was taken (and recorded)
    new = sparse_swarm(100, 8, seed=5)
    assert np.abs(fitted.predict(new) - exp_truth(new)[0]).mean() < 0.01
    assert min(fitted.params_["starts_at_best"]) >= 1


def test_large_swarm_matches_small_swarm_fit():
    """On the same data the large-swarm path of dml-log predicts like the full (small-swarm) fit."""
    X = sparse_swarm(120, 6, seed=3)
    Y, _, _ = exp_truth(X, seed=4)
    Y = Y + np.random.default_rng(3).normal(0, 0.003, Y.shape)
    fast = get_law("dml-log")(eps=0.01).fit(X, Y)
    full = get_law("dml-log")(eps=0.01, large_swarm=10**9).fit(X, Y)
    assert "large_swarm" not in full.params_["cv"]
    new = sparse_swarm(100, 6, seed=6)
    assert np.abs(fast.predict(new) - full.predict(new)).mean() < 0.003


def test_large_swarm_implicit_fits_total():
    X = sparse_swarm(120, 5, seed=7)
    Y, _, _ = exp_truth(X, seed=8)
    total = Y @ np.array([0.5, 0.3, 0.2])
    fitted = get_law("dml-implicit")(K_max=2).fit(X, total)
    new = sparse_swarm(60, 5, seed=9)
    assert (
        np.abs(fitted.predict(new)[:, 0] - exp_truth(new, seed=8)[0] @ np.array([0.5, 0.3, 0.2])).mean()
        < 0.02
    )


def test_olmix_screened_lm_matches_lbfgs():
    """olmix on a large swarm (batched LM over the same 300 starts) reaches Olmix's L-BFGS cost or better."""
    X = sparse_swarm(110, 4, seed=10)
    Y, _, _ = exp_truth(X, seed=11)
    Y = Y + np.random.default_rng(4).normal(0, 0.003, Y.shape)
    screened = get_law("olmix")().fit(X, Y)
    assert screened.params_["optimizer"] == "lm-screened"
    lbfgs = get_law("olmix")(steps=30, large_swarm=10**9).fit(X, Y)
    assert "optimizer" not in lbfgs.params_
    assert np.all(
        np.array(screened.params_["huber_mean"]) <= np.array(lbfgs.params_["huber_mean"]) * (1 + 1e-4)
    )
    dml = get_law("dml")(ridge=0.0).fit(X, Y)  # the same model: mixlaw's fit matches it
    assert np.allclose(dml.summary_["huber_mean"], screened.summary_["huber_mean"], rtol=1e-3)


def test_blas_threads_limits_and_restores():
    from threadpoolctl import threadpool_info

    def blas_threads_now() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads_now()
    with blas_threads(1):
        assert all(n == 1 for n in blas_threads_now())
        A = np.random.default_rng(0).normal(size=(50, 30, 30))
        product = A @ A
    assert blas_threads_now() == before
    assert np.allclose(product, np.einsum("kij,kjl->kil", A, A))
