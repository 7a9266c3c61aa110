"""Experiment design on the constrained simplex: space-filling and adaptive (optimum-uncertainty) designs.

The feasible set is {r : lower_j <= r_j <= cap_j, sum_j r_j = 1}; caps come from data availability (token
counts and an epoch limit, see `mixlaw.train.design.epoch_caps`) or are given directly. Every proposal is
rounded to a grid of `10**-decimals` while staying exactly inside the bounds and summing to 1.

- `spacefilling_design`: greedy maximin (farthest-point, i.e. k-center) selection from a large seeded
  candidate set of Dirichlet draws inside the bounds (plus projections onto the bounded simplex), away from
  mixtures that already exist.
- `adaptive_design`: given the runs so far, fit a bootstrap ensemble of the law (`mixlaw.uncertainty`),
  re-optimize every member, and choose the next mixtures that most reduce the expected posterior spread of the
  optimum: for each candidate batch, each ensemble member in turn plays the truth, its predictions at the batch
  reweight the ensemble (Gaussian likelihood with the law's out-of-bag error), and the weighted variance of the
  members' optima is averaged over the truths. Optionally (`objective="both"`, the default) the posterior
  variance of the predicted total over the candidate region is added, so the design also improves prediction.

Everything is deterministic for a seed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.mixture import Mixture, as_mixture_list
from mixlaw.simplex import bounds_array, project

log = logging.getLogger(__name__)

Shares = dict[str, float]  # {domain: share}: a design's mixtures as plain mappings (`Mixture.as_dict()`)


# --------------------------------------------------------------------------------------------- geometry


def round_feasible(X: np.ndarray, lo: np.ndarray, hi: np.ndarray, decimals: int = 4) -> np.ndarray:
    """Round rows to multiples of 10**-decimals that sum to 1 and stay within [lo, hi] (largest remainder)."""
    scale = 10**decimals
    kmin = np.ceil(lo * scale - 1e-9).astype(np.int64)
    kmax = np.floor(hi * scale + 1e-9).astype(np.int64)
    # grid values must respect the bounds exactly in floating point
    kmin = kmin + (kmin / scale < lo)
    kmax = kmax - (kmax / scale > hi)
    if kmin.sum() > scale or kmax.sum() < scale:
        raise MixlawInputError(
            f"design: the bounds leave no mixture on a {10**-decimals:g} grid; use more --decimals"
        )
    out = np.empty_like(np.atleast_2d(X), dtype=float)
    for i, x in enumerate(np.atleast_2d(X)):
        raw = x * scale
        k = np.clip(np.floor(raw).astype(np.int64), kmin, kmax)
        frac = raw - k
        while k.sum() < scale:
            room = k < kmax
            j = int(np.flatnonzero(room)[np.argmax(frac[room])])
            k[j] += 1
            frac[j] -= 1
        while k.sum() > scale:
            room = k > kmin
            j = int(np.flatnonzero(room)[np.argmin(frac[room])])
            k[j] -= 1
            frac[j] += 1
        out[i] = k / scale
    return out


def candidates(lo: np.ndarray, hi: np.ndarray, n: int = 4096, seed: int = 0) -> np.ndarray:
    """About `n` seeded points of the bounded simplex: Dirichlet draws (several concentrations) that satisfy
    the bounds, topped up with projections of draws onto the bounds (these cover the faces)."""
    rng = np.random.default_rng(seed)
    M = len(lo)
    found: list[np.ndarray] = []
    have = 0
    for _ in range(20):
        alpha = rng.choice([0.3, 1.0, 3.0], size=(4 * n, 1))
        draws = rng.gamma(np.broadcast_to(alpha, (4 * n, M)))
        draws /= draws.sum(axis=1, keepdims=True)
        ok = np.all((draws >= lo) & (draws <= hi), axis=1)
        found.append(draws[ok])
        have += int(ok.sum())
        if have >= n // 2:
            break
    inside = np.concatenate(found)[: n // 2] if found else np.empty((0, M))
    rest = n - len(inside)
    projected = project(rng.dirichlet(np.full(M, 0.7), size=rest) * 1.2 - 0.1, lo, hi)
    return np.concatenate([inside, projected])


def farthest_points(cands: np.ndarray, k: int, existing: np.ndarray | None = None) -> list[int]:
    """Greedy maximin (k-center) selection of k rows of `cands` (L1 distance), away from `existing` rows.

    Starts from the candidate nearest the candidates' centroid when nothing exists yet."""
    if k > len(cands):
        raise MixlawInputError(
            f"design: asked for {k} mixtures but only {len(cands)} candidates are available"
        )
    if existing is not None and len(existing):
        dist = np.abs(cands[:, None, :] - np.asarray(existing)[None]).sum(axis=2).min(axis=1)
        chosen: list[int] = []
    else:
        first = int(np.argmin(np.abs(cands - cands.mean(axis=0)).sum(axis=1)))
        chosen = [first]
        dist = np.abs(cands - cands[first]).sum(axis=1)
    while len(chosen) < k:
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.abs(cands - cands[j]).sum(axis=1))
    return chosen


def _as_mixtures(X: np.ndarray, domains: Sequence[str]) -> list[Shares]:
    return as_mixture_list(X, domains)


def _existing_array(existing, domains: Sequence[str]) -> np.ndarray | None:
    """Existing mixtures (an (n, M) array or {domain: share} mappings) as (n, M); each mapping is checked."""
    if existing is None:
        return None
    if isinstance(existing, np.ndarray):
        return np.atleast_2d(existing.astype(float))
    if not len(existing):
        return None
    return np.array(
        [
            Mixture.parse(m, domains, f"existing mixture {i + 1}").as_array(domains)
            for i, m in enumerate(existing)
        ]
    )


def spacefilling_design(
    domains: Sequence[str],
    n: int,
    seed: int = 0,
    lower: Mapping[str, float] | None = None,
    caps: Mapping[str, float] | None = None,
    existing: Sequence[Mapping[str, float]] | np.ndarray | None = None,
    n_candidates: int = 4096,
    decimals: int = 4,
) -> list[Shares]:
    """`n` maximin mixtures on the bounded simplex (rounded to `decimals`), spread away from `existing` ones."""
    domains = list(domains)
    if len(domains) < 2:
        raise MixlawInputError("design: a mixture design needs at least two domains")
    if n < 1:
        raise MixlawInputError(f"design: n must be at least 1, got {n}")
    lo, hi = bounds_array(domains, lower, caps)
    cands = np.unique(round_feasible(candidates(lo, hi, n_candidates, seed), lo, hi, decimals), axis=0)
    chosen = farthest_points(cands, n, _existing_array(existing, domains))
    return _as_mixtures(cands[chosen], domains)


# --------------------------------------------------------------------------------------------- adaptive design


def _optimum_spread(optima: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted variance (sum over domains) of member optima for each row of weights (A, B)."""
    mean = weights @ optima  # (A, M)
    second = weights @ (optima**2).sum(axis=1)  # (A,)
    return second - (mean**2).sum(axis=1)


def select_batch(
    pred: np.ndarray,
    optima: np.ndarray,
    sigma: float,
    k: int,
    objective: str = "both",
    region: np.ndarray | None = None,
    observed: np.ndarray | None = None,
) -> tuple[list[int], dict[str, float]]:
    """Greedy batch of k candidate columns minimizing the expected posterior uncertainty of the optimum.

    pred (B, C): ensemble total predictions at C candidates; optima (B, M): each member's optimum; sigma: the
    observation error (noise plus lack of fit) of one run; region (B, R): predictions over the region whose
    predictive variance counts for `objective` "prediction"/"both"; observed (C,) True for candidates that may
    not be chosen. Returns the chosen columns and the prior / expected posterior uncertainties.
    """
    B, C = pred.shape
    prior_opt = float(_optimum_spread(optima, np.full((1, B), 1.0 / B))[0])
    prior_pred = float(region.var(axis=0).mean()) if region is not None else 0.0
    scale_opt = max(prior_opt, 1e-12)
    scale_pred = max(prior_pred, 1e-12)
    acc = np.zeros((B, B))  # accumulated squared differences: member a as truth (rows) vs member b
    blocked = np.zeros(C, bool) if observed is None else observed.copy()
    chosen: list[int] = []
    best_value = np.nan
    for _ in range(k):
        values = np.full(C, np.inf)
        for c in np.flatnonzero(~blocked):
            d = acc + (pred[:, c][:, None] - pred[:, c][None, :]) ** 2
            logw = -d / (2 * sigma**2)
            w = np.exp(logw - logw.max(axis=1, keepdims=True))
            w /= w.sum(axis=1, keepdims=True)
            value = 0.0
            if objective in ("optimum", "both"):
                value += float(_optimum_spread(optima, w).mean()) / scale_opt
            if objective in ("prediction", "both") and region is not None:
                mean = w @ region
                var = w @ region**2 - mean**2
                value += float(var.mean()) / scale_pred
            values[c] = value
        c = int(np.argmin(values))
        if not np.isfinite(values[c]):
            break
        best_value = float(values[c])
        chosen.append(c)
        blocked[c] = True
        acc = acc + (pred[:, c][:, None] - pred[:, c][None, :]) ** 2
    return chosen, {
        "prior_optimum_var": prior_opt,
        "prior_prediction_var": prior_pred,
        "expected_posterior_score": best_value,
        "prior_score": float((objective in ("optimum", "both")) + (objective in ("prediction", "both"))),
    }


def adaptive_design(
    data,
    law: str,
    n: int,
    hyper: dict[str, Any] | None = None,
    target: str | None = None,
    seed: int = 0,
    lower: Mapping[str, float] | None = None,
    caps: Mapping[str, float] | None = None,
    pool: np.ndarray | None = None,
    n_bootstrap: int = 32,
    restarts: int = 8,
    n_candidates: int = 1024,
    decimals: int = 4,
    objective: str = "both",
    min_distance: float = 0.02,
    table=None,
    optimize_kwargs: dict[str, Any] | None = None,
) -> tuple[list[Shares], dict[str, Any]]:
    """Propose `n` next mixtures given the runs so far (`data`: a `FitData`).

    Candidates: a seeded space-filling set of the bounded simplex plus the members' optima (or, with `pool`
    (P, M), only the rows of the pool). Candidates within `min_distance` (L1) of an existing mixture are skipped.
    Returns the mixtures and diagnostics (prior and expected posterior uncertainty, members' optima)."""
    from mixlaw.uncertainty import bootstrap_law, reoptimize

    if objective not in ("optimum", "prediction", "both"):
        raise MixlawInputError(f"design: objective must be optimum, prediction or both, got {objective!r}")
    domains = list(data.domains)
    lo, hi = bounds_array(domains, lower, caps)
    ensemble = bootstrap_law(
        data, law, hyper, target, n_bootstrap=n_bootstrap, seed=seed, restarts=restarts, table=table
    )
    bounds = {"lower": dict(zip(domains, lo.tolist())), "caps": dict(zip(domains, hi.tolist()))}
    opt_kwargs = {**bounds, **(optimize_kwargs or {})}
    optima = np.array([reoptimize(m, seed=seed, **opt_kwargs) for m in ensemble.members])
    if pool is not None:
        cands = np.atleast_2d(np.asarray(pool, dtype=float))
    else:
        base = round_feasible(candidates(lo, hi, n_candidates, seed), lo, hi, decimals)
        near = round_feasible(
            project(optima + np.random.default_rng(seed).normal(0, 0.03, optima.shape), lo, hi),
            lo,
            hi,
            decimals,
        )
        cands = np.unique(np.concatenate([base, round_feasible(optima, lo, hi, decimals), near]), axis=0)
    dist = np.abs(cands[:, None, :] - data.X[None]).sum(axis=2).min(axis=1)
    blocked = dist < min_distance
    if (~blocked).sum() < n:
        raise MixlawInputError(f"design: only {(~blocked).sum()} candidate mixtures are new; asked for {n}")
    pred = np.stack([m.predict_total(cands) for m in ensemble.members])
    ok = np.all(np.isfinite(pred), axis=0)
    blocked |= ~ok
    pred = np.where(np.isfinite(pred), pred, np.nanmedian(pred, axis=0))
    sigma = ensemble.observation_sd("total")
    region = pred[
        :, np.random.default_rng(seed).permutation(len(cands))[:256]
    ]  # where prediction variance counts
    chosen, info = select_batch(pred, optima, sigma, n, objective, region=region, observed=blocked)
    diagnostics = {
        "method": "adaptive",
        "law": law,
        "objective": objective,
        "n_bootstrap": len(ensemble.members),
        "n_runs": int(data.n_mixtures),
        "n_candidates": int(len(cands)),
        "sigma": sigma,
        **info,
        "member_optima": optima.tolist(),
    }
    return _as_mixtures(cands[chosen], domains), diagnostics
