"""Constrained mixture optimization on the simplex, and the paper's `equivalent_extra_steps` metric.

    from mixlaw.fitted import FittedLaw
    from mixlaw.optimizer import optimize
    result = optimize(FittedLaw.load("law.json"), bounds={"github": (0, 0.2)},
                      available={"github": 30e9, "web": 1e12}, target_tokens=100e9, max_epochs=4)
    result["mixture"], result["predicted"]["total"], result["equivalent_extra_steps"]

The objective is a weighted sum of the law's targets (default: its total), plus an optional quadratic pull
toward a prior mixture. The search is continuous (SLSQP with an exact simplex constraint and box bounds), with
the law's analytic gradient where it has one (`jacobian`: the exponential laws) and central finite differences
otherwise:

- `dml`, `dml2`, `dml-implicit` are sums of c + exp(linear in r) with non-negative weights, so the objective is
  convex and any local optimum is global: two starts are enough, the answer is exact up to solver tolerance.
- Other laws may be non-convex: many starts, seeded from the best points of a random feasible sample.
- Tree laws (`regmix-lgbm`) are piecewise constant: their gradient is 0 almost everywhere, so SLSQP would never
  leave its starts. They get a seeded sample-based search instead (`sample_search`, like RegMix's and Olmix's
  simulation proposers): Dirichlet samples around the centre, the prior and the best observed mixtures, then
  rounds of tighter samples around the best so far.

Constraints: per-domain lower/upper bounds, token availability (share_d <= available_d x max_epochs /
target_tokens), fixed shares, and optionally a maximal L1 distance to the nearest observed mixture.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FittedLaw
from mixlaw.fitting import blas_threads
from mixlaw.laws import law_from_dict
from mixlaw.mixture import Domains, Mixture
from mixlaw.runs import PROPORTION_PREFIX

log = logging.getLogger(__name__)

TOL = 1e-9
SEARCH_SAMPLES = 4096  # mixtures per round of `sample_search` (two rounds; a tree law costs ~0.15 ms each)
SEARCH_ELITE = 100  # best mixtures averaged (RegMix's top-k)
SEARCH_CONCENTRATION = (0.1, 5.0)  # range of the Dirichlet concentration s (RegMix's swarm sampler)
# Default trust region (L1 distance to the nearest observed mixture) of `mixlaw pipeline`/`optimize`/`run`:
# chosen by benchmarks/trust_region.py (buffered leave-one-mixture-out on 5Mix and RedPajama observed losses).
TRUST_RADIUS = 0.4
_DISTANCE_CHUNK = 2_000_000  # pairwise distances held at once by `nearest_l1` (16 MB)


# --------------------------------------------------------------------------------------------- constraints


def _domain_index(domains: list[str], name: str, what: str) -> int:
    return Domains(domains).index(name, what)


@dataclass
class Constraints:
    """Box [lower, upper] per domain (availability folded into upper), fixed shares, reasons for each bound."""

    lower: np.ndarray
    upper: np.ndarray
    fixed: dict[int, float]
    upper_reason: list[str]

    def to_dict(self, domains: list[str]) -> dict[str, Any]:
        return {
            "lower": {PROPORTION_PREFIX + d: float(v) for d, v in zip(domains, self.lower)},
            "upper": {PROPORTION_PREFIX + d: float(v) for d, v in zip(domains, self.upper)},
            "upper_reason": {PROPORTION_PREFIX + d: r for d, r in zip(domains, self.upper_reason)},
            "fixed": {PROPORTION_PREFIX + domains[i]: float(v) for i, v in self.fixed.items()},
        }


def build_constraints(
    domains: list[str],
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    available: dict[str, float] | None = None,
    target_tokens: float | None = None,
    max_epochs: float = 1.0,
    fixed: dict[str, float] | None = None,
) -> Constraints:
    """Check and combine the constraints; raise MixlawInputError (saying why) when no mixture satisfies them."""
    M = len(domains)
    lower, upper = np.zeros(M), np.ones(M)
    reason = ["1"] * M
    for name, (lo, hi) in (bounds or {}).items():
        i = _domain_index(domains, name, "bounds")
        lower[i] = 0.0 if lo is None else float(lo)
        upper[i] = 1.0 if hi is None else float(hi)
        if not (0 <= lower[i] <= 1 and 0 <= upper[i] <= 1):
            raise MixlawInputError(f"bounds: {name}: bounds must lie in [0, 1], got [{lower[i]}, {upper[i]}]")
        if lower[i] > upper[i]:
            raise MixlawInputError(f"bounds: {name}: lower bound {lower[i]} is above upper bound {upper[i]}")
        if hi is not None:
            reason[i] = "bound"
    if available is not None:
        if target_tokens is None or target_tokens <= 0:
            raise MixlawInputError("token availability needs a positive --target-tokens")
        if max_epochs <= 0:
            raise MixlawInputError(f"--max-epochs must be positive, got {max_epochs}")
        for name, tokens in available.items():
            i = _domain_index(domains, name, "available tokens")
            if tokens < 0 or not np.isfinite(tokens):
                raise MixlawInputError(
                    f"available tokens: {name}: expected a non-negative number, got {tokens}"
                )
            cap = tokens * max_epochs / target_tokens
            if cap < upper[i]:
                upper[i] = cap
                reason[i] = (
                    f"availability ({tokens:.4g} tokens x {max_epochs:g} epochs / {target_tokens:.4g})"
                )
    fixed_idx: dict[int, float] = {}
    for name, value in (fixed or {}).items():
        i = _domain_index(domains, name, "--fix")
        if not 0 <= value <= 1:
            raise MixlawInputError(f"--fix {name}={value}: a share must lie in [0, 1]")
        if value < lower[i] - TOL or value > upper[i] + TOL:
            raise MixlawInputError(
                f"infeasible constraints: --fix {name}={value} is outside its allowed range "
                f"[{lower[i]:.6g}, {upper[i]:.6g}] (upper from {reason[i]})"
            )
        fixed_idx[i] = float(value)
    free = [i for i in range(M) if i not in fixed_idx]
    budget = 1.0 - sum(fixed_idx.values())
    if budget < -TOL:
        raise MixlawInputError(f"infeasible constraints: fixed shares sum to {1 - budget:.6g} > 1")
    if not free:
        if abs(budget) > 1e-6:
            raise MixlawInputError(
                f"infeasible constraints: every share is fixed and they sum to {1 - budget:.6g}, not 1"
            )
    else:
        lo_sum, hi_sum = lower[free].sum(), upper[free].sum()
        if lo_sum > budget + TOL:
            raise MixlawInputError(
                f"infeasible constraints: lower bounds of the free domains sum to {lo_sum:.6g} but only "
                f"{budget:.6g} is left to share"
            )
        if hi_sum < budget - TOL:
            caps = ", ".join(f"{domains[i]}<={upper[i]:.4g} ({reason[i]})" for i in free)
            raise MixlawInputError(
                f"infeasible constraints: the upper bounds of the free domains sum to {hi_sum:.6g} < {budget:.6g}, "
                f"so no mixture sums to 1 ({caps}); raise --max-epochs, lower --target-tokens or relax bounds"
            )
    return Constraints(lower, upper, fixed_idx, reason)


def project(v: np.ndarray, lower: np.ndarray, upper: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of v (n,) or of each row of v (k, n) onto {lower <= x <= upper, sum x = total}
    (bisection on the shift)."""
    V = np.atleast_2d(v)
    lo_t = (V - upper).min(axis=1) - 1.0
    hi_t = (V - lower).max(axis=1) + 1.0
    for _ in range(100):
        t = 0.5 * (lo_t + hi_t)
        above = np.clip(V - t[:, None], lower, upper).sum(axis=1) > total
        lo_t = np.where(above, t, lo_t)
        hi_t = np.where(above, hi_t, t)
    X = np.clip(V - 0.5 * (lo_t + hi_t)[:, None], lower, upper)
    # Distribute the last rounding error over coordinates with room.
    gap = total - X.sum(axis=1)
    room = np.where(gap[:, None] > 0, upper - X, X - lower)
    sums = room.sum(axis=1)
    X = X + np.where(sums[:, None] > 0, gap[:, None] * room / np.where(sums > 0, sums, 1.0)[:, None], 0.0)
    return X[0] if np.ndim(v) == 1 else X


# --------------------------------------------------------------------------------------------- objective


def objective_weights(law: FittedLaw, objective: str | dict[str, float] = "total") -> dict[str, float]:
    """Weights over the law's targets: "total" (the law's own total weights), one target, or a dict (normalized).
    A target may be named in either spelling (`math-prose` for the law's `math_prose`)."""
    targets = Domains(law.targets)
    if isinstance(objective, dict):
        objective = {(targets.find(t, "objective weights") or t): v for t, v in objective.items()}
        unknown = [t for t in objective if t not in law.targets]
        if unknown:
            raise MixlawInputError(
                f"objective weights: unknown target(s) {', '.join(unknown)}; "
                f"the law has {', '.join(law.targets)}"
            )
        values = np.array(list(objective.values()), dtype=float)
        if (values < 0).any() or values.sum() <= 0:
            raise MixlawInputError("objective weights must be non-negative with a positive sum")
        return {t: float(v) / float(values.sum()) for t, v in objective.items()}
    if objective == "total":
        if law.total_weights is not None:
            return dict(law.total_weights)
        if law.targets == ["total"]:
            return {"total": 1.0}
        if len(law.targets) == 1:
            return {law.targets[0]: 1.0}
        raise MixlawInputError("this law has no total; choose --objective TARGET or a weights file")
    objective = targets.find(objective, "--objective") or objective
    if objective not in law.targets:
        raise MixlawInputError(
            f"--objective {objective}: unknown target; available: total, {', '.join(law.targets)}"
        )
    return {objective: 1.0}


def objective_gradient(
    law: FittedLaw, weights: dict[str, float]
) -> Callable[[np.ndarray], np.ndarray] | None:
    """Analytic gradient of `objective_function`, X (n, M) -> (n, M), from the law's `jacobian` (n, T, M); None
    when the law has none (the solver then uses finite differences)."""
    jacobian = getattr(law.law, "jacobian", None)
    if jacobian is None:
        return None
    index = {t: i for i, t in enumerate(law.targets)}
    target_weights = np.zeros(len(law.targets))
    for t, w in weights.items():
        if t in index:
            target_weights[index[t]] += w
        else:  # the total of an explicitly aggregated law
            for name, share in (law.total_weights or {}).items():
                target_weights[index[name]] += w * share

    def grad(X: np.ndarray) -> np.ndarray:
        return np.einsum("ntm,t->nm", jacobian(X), target_weights)

    return grad


def objective_function(law: FittedLaw, weights: dict[str, float]) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised objective: X (n, M) -> (n,) weighted loss."""
    index = {t: i for i, t in enumerate(law.targets)}

    def f(X: np.ndarray) -> np.ndarray:
        Y = law.law.predict(X)
        out = np.zeros(len(X))
        for t, w in weights.items():
            out += w * (Y[:, index[t]] if t in index else law.predict(X)[t])
        return out

    return f


# --------------------------------------------------------------------------------------------- solver


def _solve(
    f: Callable[[np.ndarray], np.ndarray],
    cons: Constraints,
    M: int,
    starts: np.ndarray,
    extra: list[dict] | None = None,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, float, int]:
    """SLSQP over the free coordinates from each start (full mixtures, (R, M)); returns best (x, value, n_ok).
    `grad` X (n, M) -> (n, M): the objective's analytic gradient (default: central finite differences)."""
    free = np.array([i for i in range(M) if i not in cons.fixed], dtype=int)
    base = np.zeros(M)
    for i, v in cons.fixed.items():
        base[i] = v
    budget = 1.0 - sum(cons.fixed.values())
    lo, hi = cons.lower[free], cons.upper[free]
    if len(free) == 0:
        return base, float(f(base[None])[0]), 1
    h = 1e-6
    eye = np.eye(len(free))

    def embed(z: np.ndarray) -> np.ndarray:
        X = np.repeat(base[None], len(z), axis=0)
        X[:, free] = z
        return X

    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def value_and_grad(z: np.ndarray) -> tuple[float, np.ndarray]:
        key = z.tobytes()
        if key not in cache and grad is not None:
            X = embed(z[None])
            cache.clear()
            cache[key] = (float(f(X)[0]), grad(X)[0, free])
        if key not in cache:
            zp = np.minimum(z[None] + h * eye, 1.0)
            zm = np.maximum(z[None] - h * eye, 0.0)
            values = f(embed(np.vstack([z[None], zp, zm])))
            n = len(free)
            fd = (values[1 : n + 1] - values[n + 1 :]) / np.maximum(np.diag(zp - zm), 1e-12)
            cache.clear()
            cache[key] = (float(values[0]), fd)
        return cache[key]

    constraints = [{"type": "eq", "fun": lambda z: z.sum() - budget, "jac": lambda z: np.ones_like(z)}]
    for c in extra or []:
        constraints.append(
            {
                "type": c["type"],
                "fun": (lambda z, c=c: c["fun"](embed(z[None])[0])),
                "jac": (lambda z, c=c: c["jac"](embed(z[None])[0])[free]),
            }
        )
    from scipy.optimize import minimize  # lazy: keeps scipy off the import path of every mixlaw command

    best_z, best_v, n_ok = None, np.inf, 0
    for start in starts:
        z0 = project(start[free], lo, hi, budget)
        with np.errstate(all="ignore"):
            res = minimize(
                lambda z: value_and_grad(z)[0],
                z0,
                jac=lambda z: value_and_grad(z)[1],
                method="SLSQP",
                bounds=list(zip(lo, hi)),
                constraints=constraints,
                options={"maxiter": 500, "ftol": 1e-13},
            )
        z = project(np.clip(res.x, lo, hi), lo, hi, budget)
        ok = all(c["fun"](embed(z[None])[0]) >= -1e-7 for c in extra or [] if c["type"] == "ineq")
        value = float(f(embed(z[None]))[0])
        if ok and np.isfinite(value):
            n_ok += 1
            if value < best_v:
                best_z, best_v = z, value
    if best_z is None:
        raise MixlawInputError("the optimizer found no feasible mixture (constraints too tight?)")
    return embed(best_z[None])[0], best_v, n_ok


def _feasible_sample(cons: Constraints, M: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n random mixtures satisfying bounds and fixed shares (Dirichlet points projected onto the feasible set)."""
    free = np.array([i for i in range(M) if i not in cons.fixed], dtype=int)
    budget = 1.0 - sum(cons.fixed.values())
    X = np.zeros((n, M))
    for i, v in cons.fixed.items():
        X[:, i] = v
    if len(free):
        raw = rng.dirichlet(np.full(len(free), 0.7), size=n) * budget
        X[:, free] = project(raw, cons.lower[free], cons.upper[free], budget)
    return X


# --------------------------------------------------------------------------------------------- public API


def parse_mixture(
    spec: Any, domains: list[str], what: str = "mixture", renormalize: bool = False
) -> np.ndarray:
    """A mixture (M,) in `domains` order from any form `mixlaw.mixture.Mixture.parse` reads: a dict
    {domain or p_domain: share}, an array (M,), `name=value,...` text or a file; missing domains are 0.

    Checked like the runs table: every share in [0, 1], known domains, sum 1 (or renormalized)."""
    return Mixture.parse(spec, domains, what, renormalize).as_array(domains)


def optimize(
    law: FittedLaw,
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    available: dict[str, float] | None = None,
    target_tokens: float | None = None,
    max_epochs: float = 1.0,
    fixed: dict[str, float] | None = None,
    objective: str | dict[str, float] = "total",
    prior: Any = None,
    prior_strength: float = 0.0,
    baseline: Any = None,
    baseline_name: str | None = None,
    observed: np.ndarray | None = None,
    max_distance: float | None = None,
    warn_distance: float | None = None,
    starts: int | None = None,
    seed: int = 0,
    trust_region: bool = False,
) -> dict[str, Any]:
    """Optimal mixture of `law` under the constraints; JSON-able result (see docs/pipeline.md).

    `trust_region`: without `max_distance`, keep the optimum within TRUST_RADIUS (L1) of an observed mixture
    (on by default in `mixlaw.solve`, i.e. the pipeline, `mixlaw optimize` and `mixlaw run`).

    `observed` (n, M): mixtures the law was fitted on (default: the law's `observed_mixtures` metadata), used
    to report and optionally bound (`max_distance`, L1) the distance of the optimum to the data.
    `baseline`: a mixture (see `parse_mixture`); default the natural token-proportional mixture when
    `available` is given, else uniform. `prior` + `prior_strength` add strength x ||r - prior||^2.
    """
    arguments = dict(locals())
    # SLSQP's tiny dense solves: BLAS threads cost 10x more than they save on busy cores. scipy's own BLAS is
    # loaded first: threadpoolctl limits only the libraries already loaded when the block starts.
    import scipy.optimize  # noqa: F401  (lazy: keeps scipy off the import path of every mixlaw command)

    with blas_threads(1):
        return _optimize(**arguments)


def _optimize(
    law: FittedLaw,
    bounds: dict[str, tuple[float | None, float | None]] | None,
    available: dict[str, float] | None,
    target_tokens: float | None,
    max_epochs: float,
    fixed: dict[str, float] | None,
    objective: str | dict[str, float],
    prior: Any,
    prior_strength: float,
    baseline: Any,
    baseline_name: str | None,
    observed: np.ndarray | None,
    max_distance: float | None,
    warn_distance: float | None,
    starts: int | None,
    seed: int,
    trust_region: bool,
) -> dict[str, Any]:
    started = time.perf_counter()
    domains = list(law.domains)
    M = len(domains)
    cons = build_constraints(domains, bounds, available, target_tokens, max_epochs, fixed)
    weights = objective_weights(law, objective)
    loss = objective_function(law, weights)
    prior_x = None if prior is None else parse_mixture(prior, domains, "prior")
    if prior_strength < 0:
        raise MixlawInputError("prior strength must be non-negative")

    def f(X: np.ndarray) -> np.ndarray:
        out = loss(X)
        if prior_x is not None and prior_strength:
            out = out + prior_strength * ((X - prior_x) ** 2).sum(axis=1)
        return out

    loss_grad = objective_gradient(law, weights)
    grad = None
    if loss_grad is not None:

        def grad(X: np.ndarray) -> np.ndarray:
            out = loss_grad(X)
            if prior_x is not None and prior_strength:
                out = out + 2 * prior_strength * (X - prior_x)
            return out

    if observed is None and law.meta.get("observed_mixtures") is not None:
        observed = np.asarray(law.meta["observed_mixtures"], dtype=float)
    default_region = trust_region and max_distance is None and observed is not None and len(observed) > 0
    if default_region:
        max_distance = TRUST_RADIUS
    convex = law.law.convex
    rng = np.random.default_rng(seed)
    center = _feasible_sample_center(cons, M)
    if law.law.piecewise_constant:
        # centres: the prior (RegMix samples around the natural token distribution), else the observed swarm's
        # mean (its sampler's centre), else the centre of the feasible set; then the best observed mixtures
        seeds = [] if prior_x is None else [prior_x]
        if observed is not None and len(observed):
            seeds += [observed.mean(axis=0), *observed[np.argsort(f(observed), kind="stable")[:8]]]
        seeds += [center]
        near = None
        if max_distance is not None and observed is not None and len(observed):
            near = lambda X: nearest_l1(X, observed)[0] <= max_distance + 1e-9  # noqa: E731
        elif max_distance is not None:
            raise MixlawInputError("--max-distance needs the observed mixtures (the law file has none)")
        x, value, n_evaluated = sample_search(f, cons, M, np.array(seeds), rng, feasible=near)
        solver = {"method": "sample-search", "starts": len(seeds), "converged_starts": n_evaluated}
    else:
        sample = _feasible_sample(cons, M, 256 if convex else 2048, rng)
        values = f(sample)
        n_starts = starts or (2 if convex else (12 if M <= 10 else 8 if M <= 25 else 5))
        order = np.argsort(values)
        start_points = np.vstack([center[None], sample[order[: n_starts - 1]]])
        x, value, n_ok = _solve(f, cons, M, start_points, grad=grad)
        solver = {"method": "SLSQP", "starts": int(len(start_points)), "converged_starts": n_ok}
    solver["gradient"] = (
        None if solver["method"] != "SLSQP" else "analytic" if grad is not None else "finite differences"
    )

    distance_info: dict[str, Any] = {"l1": None}
    if observed is not None and len(observed):
        if max_distance is not None and solver["method"] == "SLSQP":
            x, value = _solve_near_observed(f, cons, M, x, value, observed, max_distance, grad)
        distance_info = _distance_report(x, observed, warn_distance)
        distance_info["trust_radius"] = TRUST_RADIUS if max_distance is None else float(max_distance)
        distance_info["trust_region"] = (
            "off" if max_distance is None else "default" if default_region else "--max-distance"
        )
        distance_info["inside_trust_region"] = bool(
            distance_info["l1"] <= distance_info["trust_radius"] + 1e-6
        )
        if distance_info["warning"]:
            log.warning(
                "the optimum is %.3g (L1) from the nearest observed mixture, beyond the threshold %.3g: "
                "the law extrapolates; consider --max-distance",
                distance_info["l1"],
                distance_info["threshold"],
            )
    elif max_distance is not None:
        raise MixlawInputError("--max-distance needs the observed mixtures (the law file has none)")
    else:
        distance_info["reason"] = "the law file does not list the mixtures it was fitted on"

    predicted = _predictions(law, x, weights)
    if baseline is None:
        by_index = {_domain_index(domains, k, "available tokens"): v for k, v in (available or {}).items()}
        if len(by_index) == M and sum(by_index.values()) > 0:
            tokens = np.array([by_index[i] for i in range(M)], dtype=float)
            base_x, base_name = tokens / tokens.sum(), "natural (token-proportional)"
        else:
            base_x, base_name = np.full(M, 1.0 / M), "uniform"
    else:
        base_x = parse_mixture(baseline, domains, "baseline")
        base_name = baseline_name or "user"
    base_pred = _predictions(law, base_x, weights)
    eq, eq_info = equivalent_extra_steps(law, x, base_x, weights)
    active = [
        PROPORTION_PREFIX + d
        for i, d in enumerate(domains)
        if i not in cons.fixed and (x[i] <= cons.lower[i] + 1e-7 or x[i] >= cons.upper[i] - 1e-7)
    ]
    return {
        "mixture": {PROPORTION_PREFIX + d: float(v) for d, v in zip(domains, _clean(x))},
        "predicted": predicted,
        "objective": {
            "weights": weights,
            "value": float(value),
            "prior_strength": prior_strength,
            "prior": None if prior_x is None else dict(zip(law.domain_columns, prior_x.tolist())),
        },
        "baseline": {
            "name": base_name,
            "mixture": dict(zip(law.domain_columns, base_x.tolist())),
            "predicted": base_pred,
        },
        "improvement": float(base_pred["objective"] - predicted["objective"]),
        "equivalent_extra_steps": eq,
        **eq_info,
        "distance_to_observed": distance_info,
        "constraints": {
            **cons.to_dict(domains),
            "active": active,
            "max_distance": max_distance,
            # as numbers, for exporters (olmo-core max_repetition_ratio): the epoch limit and tokens per domain
            "max_epochs": float(max_epochs) if available is not None else None,
            "target_tokens": None if target_tokens is None else float(target_tokens),
            "available_tokens": {
                PROPORTION_PREFIX + k.removeprefix(PROPORTION_PREFIX): float(v)
                for k, v in (available or {}).items()
            }
            or None,
        },
        "solver": {
            "method": solver["method"],
            "convex": convex,
            "starts": int(solver["starts"]),
            "converged_starts": int(solver["converged_starts"]),
            "gradient": solver["gradient"],
            "seconds": time.perf_counter() - started,
        },
        "law": {"name": law.law.name, "targets": law.targets},
    }


def _clean(x: np.ndarray) -> np.ndarray:
    x = np.where(np.abs(x) < 1e-12, 0.0, x)
    return x


def _feasible_sample_center(cons: Constraints, M: int) -> np.ndarray:
    free = np.array([i for i in range(M) if i not in cons.fixed], dtype=int)
    budget = 1.0 - sum(cons.fixed.values())
    x = np.zeros(M)
    for i, v in cons.fixed.items():
        x[i] = v
    if len(free):
        x[free] = project(np.full(len(free), budget / len(free)), cons.lower[free], cons.upper[free], budget)
    return x


def _predictions(law: FittedLaw, x: np.ndarray, weights: dict[str, float]) -> dict[str, float]:
    pred = {k: float(v[0]) for k, v in law.predict(x[None]).items()}
    pred["objective"] = float(sum(w * pred[t] for t, w in weights.items()))
    return {"total": pred.get("total"), **{k: v for k, v in pred.items() if k != "total"}}


def nearest_l1(A: np.ndarray, B: np.ndarray, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """L1 distance from each row of A (n, M) to its nearest row of B (m, M), and that row's index (the lowest
    among ties): (n,), (n,). `exclude_self`: A is B and a row is not its own neighbour.

    In chunks of rows of at most _DISTANCE_CHUNK distances (scipy's cdist): memory O((n + m) M) plus the chunk
    instead of an (n, m, M) array."""
    from scipy.spatial.distance import cdist  # lazy: keeps scipy off the import path of every mixlaw command

    A, B = np.atleast_2d(np.asarray(A, dtype=float)), np.atleast_2d(np.asarray(B, dtype=float))
    dist, index = np.empty(len(A)), np.empty(len(A), int)
    rows = max(1, _DISTANCE_CHUNK // max(len(B), 1))
    for lo in range(0, len(A), rows):
        D = cdist(A[lo : lo + rows], B, metric="cityblock")
        r = np.arange(len(D))
        if exclude_self:
            D[r, lo + r] = np.inf
        index[lo : lo + len(D)] = i = np.argmin(D, axis=1)
        dist[lo : lo + len(D)] = D[r, i]
    return dist, index


def _distance_report(x: np.ndarray, observed: np.ndarray, warn_distance: float | None) -> dict[str, Any]:
    d, nearest = nearest_l1(x[None], observed)
    i = int(nearest[0])
    if warn_distance is None:
        if len(observed) > 1:
            # largest nearest-neighbour gap among observed mixtures
            warn_distance = float(nearest_l1(observed, observed, exclude_self=True)[0].max())
        else:
            warn_distance = 0.1
    return {
        "l1": float(d[0]),
        "nearest_index": i,
        "nearest_mixture": observed[i].tolist(),
        "threshold": warn_distance,
        "warning": bool(d[0] > warn_distance + 1e-9),
        "metric": "L1 = sum_j |r_j - r'_j| (2 x the share of tokens that would have to move)",
    }


def _solve_near_observed(
    f,
    cons: Constraints,
    M: int,
    x: np.ndarray,
    value: float,
    observed: np.ndarray,
    max_distance: float,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, float]:
    """Best mixture within L1 distance `max_distance` of some observed mixture (smoothed L1 constraint,
    one solve per nearby observed mixture)."""
    d = np.abs(observed - x[None]).sum(axis=1)
    if d.min() <= max_distance:
        return x, value
    eps = 1e-9
    best = None
    for i in np.argsort(d)[:8]:
        anchor = observed[i]
        if any(abs(anchor[j] - v) > max_distance for j, v in cons.fixed.items()):
            continue
        constraint = {
            "type": "ineq",
            "fun": lambda r, a=anchor: max_distance - np.sqrt((r - a) ** 2 + eps**2).sum(),
            "jac": lambda r, a=anchor: -(r - a) / np.sqrt((r - a) ** 2 + eps**2),
        }
        start = (
            project(anchor, cons.lower, cons.upper, 1.0)
            if not cons.fixed
            else _feasible_sample_center(cons, M)
        )
        try:
            xi, vi, _ = _solve(
                f, cons, M, np.vstack([start[None], (0.5 * (start + x))[None]]), [constraint], grad
            )
        except MixlawInputError:
            continue
        if best is None or vi < best[1]:
            best = (xi, vi)
    if best is None:
        raise MixlawInputError(
            f"infeasible constraints: no mixture within --max-distance {max_distance} of an "
            "observed mixture satisfies the bounds"
        )
    return best


def _to_feasible(cons: Constraints, M: int, X: np.ndarray) -> np.ndarray:
    """Mixtures (n, M) moved onto the feasible set: fixed shares set, the rest projected onto the box."""
    free = np.array([i for i in range(M) if i not in cons.fixed], dtype=int)
    budget = 1.0 - sum(cons.fixed.values())
    out = np.array(X, dtype=float)
    for i, v in cons.fixed.items():
        out[:, i] = v
    if len(free):
        out[:, free] = project(out[:, free], cons.lower[free], cons.upper[free], budget)
    return out


def _feasible_dirichlet(
    cons: Constraints, M: int, centers: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """RegMix's proposal: n mixtures from Dirichlet(s x center) around the given centers (C, M) in turn, with
    the concentration s log-uniform in [SEARCH_CONCENTRATION], projected onto the bounds and fixed shares."""
    free = np.array([i for i in range(M) if i not in cons.fixed], dtype=int)
    budget = 1.0 - sum(cons.fixed.values())
    X = np.zeros((n, M))
    for i, v in cons.fixed.items():
        X[:, i] = v
    if len(free):
        picks = centers[np.arange(n) % len(centers)][:, free]
        picks = picks / np.maximum(picks.sum(axis=1, keepdims=True), 1e-12)
        lo, hi = np.log(SEARCH_CONCENTRATION)
        s = np.exp(rng.uniform(lo, hi, n))
        raw = rng.standard_gamma(np.maximum(s[:, None] * picks, 1e-3))
        raw = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-300) * budget
        X[:, free] = project(raw, cons.lower[free], cons.upper[free], budget)
    return X


def sample_search(
    f: Callable[[np.ndarray], np.ndarray],
    cons: Constraints,
    M: int,
    centers: np.ndarray,
    rng: np.random.Generator,
    samples: int = SEARCH_SAMPLES,
    elite: int = SEARCH_ELITE,
    feasible: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, float, int]:
    """Seeded sample-based minimization of f for laws without a useful gradient (trees), after RegMix's
    simulation: Dirichlet samples around the `centers` (C, M) (the swarm's centre or the prior first: it gets
    half the samples), the mean of the `elite` best predicted (RegMix's top-k average, which keeps the answer
    off the single samples a tree happens to score lowest); then one refinement round of samples around that
    mean, whose elite mean is kept if f scores it lower. `feasible` X -> bool mask (the --max-distance trust
    region) drops candidates. Returns (x (M,), f(x), mixtures evaluated)."""
    half = samples // 2
    X = np.vstack(
        [
            _to_feasible(cons, M, centers),
            _feasible_dirichlet(cons, M, centers[:1], half, rng),
            _feasible_dirichlet(cons, M, centers, samples - half, rng),
        ]
    )
    best_x, best_v, n_evaluated = None, np.inf, 0
    pool_x, pool_v = np.empty((0, M)), np.empty(0)
    for _ in range(2):
        if feasible is not None:
            X = X[feasible(X)]
        values = f(X) if len(X) else np.empty(0)
        n_evaluated += len(X)
        pool_x, pool_v = (
            np.vstack([pool_x, X]),
            np.concatenate([pool_v, np.where(np.isfinite(values), values, np.inf)]),
        )
        keep = np.argsort(pool_v, kind="stable")[:elite]
        pool_x, pool_v = pool_x[keep], pool_v[keep]
        pool_x, pool_v = pool_x[np.isfinite(pool_v)], pool_v[np.isfinite(pool_v)]
        if not len(pool_x):
            break
        mean = pool_x.mean(axis=0)  # a convex combination of feasible mixtures: feasible for the box and sums
        if feasible is None or feasible(mean[None])[0]:
            value = float(f(mean[None])[0])
            n_evaluated += 1
            if value < best_v:
                best_x, best_v = mean, value
        X = _feasible_dirichlet(cons, M, mean[None], samples, rng)
    if best_x is None:
        if not len(pool_x):
            raise MixlawInputError("the optimizer found no feasible mixture (constraints too tight?)")
        best_x, best_v = pool_x[0], float(pool_v[0])
    return best_x, best_v, n_evaluated


# --------------------------------------------------------------------------------------------- equivalent steps


def step_laws(law: FittedLaw) -> tuple[list[float], list[FittedLaw]] | None:
    """The laws at several training lengths carried by a pipeline law (`step_grid` metadata), or None."""
    grid = law.meta.get("step_grid")
    if not grid:
        return None
    laws = [FittedLaw(law_from_dict(d), law.domains, law.targets, law.total_weights) for d in grid["laws"]]
    return [float(s) for s in grid["values"]], laws


def equivalent_extra_steps(
    law: FittedLaw, x_opt: np.ndarray, x_base: np.ndarray, weights: dict[str, float]
) -> tuple[float | None, dict[str, Any]]:
    """Steps the baseline needs to reach the optimum's predicted objective, as a ratio to the target steps.

    Uses the law's `step_grid` (mixing laws fitted at several training lengths at the target size): the
    baseline's objective across the grid is fitted by L(S) = E + B (S / S_target)^-beta and solved for
    L(S) = objective of the optimum at the target. Returns (ratio or None, details with a reason if None).
    """
    from mixlaw.scaling import fit_curves

    grid = step_laws(law)
    if grid is None:
        return None, {
            "equivalent_extra_steps_reason": "the law carries no step information (a single-scale law); run `mixlaw pipeline` for a "
            "step-aware law"
        }
    values, laws = grid
    target = float(law.meta["step_grid"]["target"])
    variable = law.meta["step_grid"].get("variable", "step")
    L_opt = sum(w * law.predict(x_opt[None])[t][0] for t, w in weights.items())
    curve = np.array([sum(w * g.predict(x_base[None])[t][0] for t, w in weights.items()) for g in laws])
    fit = fit_curves(
        "step",
        np.array(values)[:, None],
        curve[None],
        [{"mixture": "baseline"}],
        np.zeros(1, int),
        "none",
        [variable],
        delta=None,
    )
    E, B = fit.coef[0]
    beta = fit.exps[0, 0]
    ref = fit.ref[0]
    info: dict[str, Any] = {
        "equivalent_extra_steps_detail": {
            "variable": variable,
            "target": target,
            "grid": values,
            "baseline_curve": curve.tolist(),
            "baseline_law": {"E": float(E), "B": float(B), "beta": float(beta), "ref": ref},
            "optimum_objective": float(L_opt),
        }
    }
    if L_opt <= E + 1e-12 or B <= 0:
        info["equivalent_extra_steps_reason"] = (
            f"the baseline's predicted loss never reaches the optimum's {L_opt:.5g} (its asymptote is {E:.5g})"
        )
        return None, info
    steps = ref * ((L_opt - E) / B) ** (-1.0 / beta)
    info["equivalent_extra_steps_detail"]["equivalent_steps"] = float(steps)
    if not min(values) <= steps <= max(values):
        info["equivalent_extra_steps_detail"]["note"] = (
            f"outside the step grid [{min(values):g}, {max(values):g}]: extrapolated by the fitted curve"
        )
    return float(steps / target), info
