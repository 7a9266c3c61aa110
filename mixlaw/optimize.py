"""Constrained mixture optimization on the simplex, and the paper's `equivalent_extra_steps` metric.

    from mixlaw.fitted import FittedLaw
    from mixlaw.optimize import optimize
    result = optimize(FittedLaw.load("law.json"), bounds={"github": (0, 0.2)},
                      available={"github": 30e9, "web": 1e12}, target_tokens=100e9, max_epochs=4)
    result["mixture"], result["predicted"]["total"], result["equivalent_extra_steps"]

The objective is a weighted sum of the law's targets (default: its total), plus an optional quadratic pull
toward a prior mixture. The search is continuous (SLSQP with an exact simplex constraint and box bounds):

- `dml`, `dml2`, `dml-implicit` are sums of c + exp(linear in r) with non-negative weights, so the objective is
  convex and any local optimum is global: two starts are enough, the answer is exact up to solver tolerance.
- Other laws may be non-convex: many starts, seeded from the best points of a random feasible sample.

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
from mixlaw.laws import law_from_dict
from mixlaw.runs import PROPORTION_PREFIX, mixture_distance

log = logging.getLogger(__name__)

CONVEX_LAWS = ("dml", "dml2", "dml-implicit")
TOL = 1e-9


# --------------------------------------------------------------------------------------------- constraints


def _domain_index(domains: list[str], name: str, what: str) -> int:
    key = name[len(PROPORTION_PREFIX) :] if name.startswith(PROPORTION_PREFIX) else name
    if key not in domains:
        raise MixlawInputError(f"{what}: unknown training domain {name!r}; known: {', '.join(domains)}")
    return domains.index(key)


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
    """Weights over the law's targets: "total" (the law's own total weights), one target, or a dict (normalized)."""
    if isinstance(objective, dict):
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
    if objective not in law.targets:
        raise MixlawInputError(
            f"--objective {objective}: unknown target; available: total, {', '.join(law.targets)}"
        )
    return {objective: 1.0}


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
) -> tuple[np.ndarray, float, int]:
    """SLSQP over the free coordinates from each start (full mixtures, (R, M)); returns best (x, value, n_ok)."""
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
        if key not in cache:
            zp = np.minimum(z[None] + h * eye, 1.0)
            zm = np.maximum(z[None] - h * eye, 0.0)
            values = f(embed(np.vstack([z[None], zp, zm])))
            n = len(free)
            grad = (values[1 : n + 1] - values[n + 1 :]) / np.maximum(np.diag(zp - zm), 1e-12)
            cache.clear()
            cache[key] = (float(values[0]), grad)
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
    """A mixture from a dict {domain or p_domain: share}, an array (M,), or `name=value,...` text.

    Checked like the runs table: every share in [0, 1], known domains, sum 1 (or renormalized); missing
    domains are 0.
    """
    if isinstance(spec, str):
        pairs = {}
        for item in spec.split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise MixlawInputError(
                    f"{what}: expected name=value pairs separated by commas, got {item.strip()!r}"
                )
            name, value = (s.strip() for s in item.split("=", 1))
            try:
                pairs[name] = float(value)
            except ValueError:
                raise MixlawInputError(f"{what}: {name}: {value!r} is not a number") from None
        spec = pairs
    if isinstance(spec, dict):
        x = np.zeros(len(domains))
        for name, value in spec.items():
            x[_domain_index(domains, str(name), what)] = float(value)
    else:
        x = np.asarray(spec, dtype=float).ravel()
        if len(x) != len(domains):
            raise MixlawInputError(f"{what}: expected {len(domains)} shares, got {len(x)}")
    if not np.isfinite(x).all() or (x < 0).any() or (x > 1).any():
        raise MixlawInputError(f"{what}: shares must be numbers in [0, 1]")
    total = x.sum()
    if abs(total - 1) > 1e-6:
        if not renormalize or total <= 0:
            raise MixlawInputError(
                f"{what}: shares sum to {total:.10g}, not 1"
                + ("" if renormalize else " (pass --renormalize to rescale)")
            )
        x = x / total
    return x


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
) -> dict[str, Any]:
    """Optimal mixture of `law` under the constraints; JSON-able result (see docs/pipeline.md).

    `observed` (n, M): mixtures the law was fitted on (default: the law's `observed_mixtures` metadata), used
    to report and optionally bound (`max_distance`, L1) the distance of the optimum to the data.
    `baseline`: a mixture (see `parse_mixture`); default the natural token-proportional mixture when
    `available` is given, else uniform. `prior` + `prior_strength` add strength x ||r - prior||^2.
    """
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

    if observed is None and law.meta.get("observed_mixtures") is not None:
        observed = np.asarray(law.meta["observed_mixtures"], dtype=float)
    convex = law.law.name in CONVEX_LAWS
    rng = np.random.default_rng(seed)
    sample = _feasible_sample(cons, M, 256 if convex else 2048, rng)
    values = f(sample)
    n_starts = starts or (2 if convex else (12 if M <= 10 else 8 if M <= 25 else 5))
    order = np.argsort(values)
    center = _feasible_sample_center(cons, M)
    start_points = np.vstack([center[None], sample[order[: n_starts - 1]]])
    x, value, n_ok = _solve(f, cons, M, start_points)

    distance_info: dict[str, Any] = {"l1": None}
    if observed is not None and len(observed):
        if max_distance is not None:
            x, value = _solve_near_observed(f, cons, M, x, value, observed, max_distance)
        distance_info = _distance_report(x, observed, warn_distance)
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
            "method": "SLSQP",
            "convex": convex,
            "starts": int(len(start_points)),
            "converged_starts": n_ok,
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


def _distance_report(x: np.ndarray, observed: np.ndarray, warn_distance: float | None) -> dict[str, Any]:
    d = mixture_distance(x[None], observed)[0]
    i = int(np.argmin(d))
    if warn_distance is None:
        if len(observed) > 1:
            pair = mixture_distance(observed, observed)
            np.fill_diagonal(pair, np.inf)
            warn_distance = float(
                pair.min(axis=1).max()
            )  # largest nearest-neighbour gap among observed mixtures
        else:
            warn_distance = 0.1
    return {
        "l1": float(d[i]),
        "nearest_index": i,
        "nearest_mixture": observed[i].tolist(),
        "threshold": warn_distance,
        "warning": bool(d[i] > warn_distance + 1e-9),
        "metric": "L1 = sum_j |r_j - r'_j| (2 x the share of tokens that would have to move)",
    }


def _solve_near_observed(
    f, cons: Constraints, M: int, x: np.ndarray, value: float, observed: np.ndarray, max_distance: float
) -> tuple[np.ndarray, float]:
    """Best mixture within L1 distance `max_distance` of some observed mixture (smoothed L1 constraint,
    one solve per nearby observed mixture)."""
    d = mixture_distance(x[None], observed)[0]
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
            xi, vi, _ = _solve(f, cons, M, np.vstack([start[None], (0.5 * (start + x))[None]]), [constraint])
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
