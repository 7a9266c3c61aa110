"""The feasible set of mixtures and what every optimizer on it needs (design, uncertainty, demo, report).

The feasible set is the bounded simplex {r : lo_j <= r_j <= hi_j, sum_j r_j = 1}; `bounds_array` builds and
checks (lo, hi), `project` is the Euclidean projection onto it and `minimize_on_simplex` a multi-start SLSQP
minimizer of a scalar function of one mixture (shape (M,)).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from mixlaw.errors import MixlawInputError


def bounds_array(
    domains: Sequence[str], lower: Mapping[str, float] | None = None, caps: Mapping[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) arrays for the domains; checks names, ranges and that the bounded simplex is not empty."""
    domains = list(domains)
    for name, values in (("lower", lower), ("caps", caps)):
        unknown = sorted(set(values or {}) - set(domains))
        if unknown:
            raise MixlawInputError(
                f"design {name}: unknown domain(s) {', '.join(unknown)} (domains: {', '.join(domains)})"
            )
    lo = np.array([float((lower or {}).get(d, 0.0)) for d in domains])
    hi = np.array([float((caps or {}).get(d, 1.0)) for d in domains])
    if (
        not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)))
        or np.any(lo < 0)
        or np.any(hi > 1)
        or np.any(lo > hi)
    ):
        raise MixlawInputError(
            f"design: bounds must satisfy 0 <= lower <= cap <= 1; got lower {lo.tolist()} caps {hi.tolist()}"
        )
    if lo.sum() > 1 + 1e-12 or hi.sum() < 1 - 1e-12:
        raise MixlawInputError(
            f"design: no mixture satisfies the bounds (lower bounds sum to {lo.sum():.4g}, caps to {hi.sum():.4g})"
        )
    return lo, hi


def project(Y: np.ndarray, lo: np.ndarray, hi: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Euclidean projection of rows of Y onto {lo <= x <= hi, sum x = 1} (bisection on the shift)."""
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    a = (Y - hi).min(axis=1) - 1.0
    b = (Y - lo).max(axis=1) + 1.0
    for _ in range(iterations):
        tau = 0.5 * (a + b)
        s = np.clip(Y - tau[:, None], lo, hi).sum(axis=1)
        a = np.where(s > 1, tau, a)
        b = np.where(s > 1, b, tau)
    X = np.clip(Y - 0.5 * (a + b)[:, None], lo, hi)
    return _fix_sum(X, lo, hi)


def _fix_sum(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Remove the last float error of the sum using the domain with the most room."""
    X = X.copy()
    for i in range(len(X)):
        gap = 1.0 - X[i].sum()
        room = (hi - X[i]) if gap > 0 else (X[i] - lo)
        j = int(np.argmax(room))
        X[i, j] = min(hi[j], max(lo[j], X[i, j] + gap))
    return X


def minimize_on_simplex(
    objective: Callable[[np.ndarray], float], n: int, starts: int = 16, seed: int = 0
) -> np.ndarray:
    """Multi-start SLSQP over the probability simplex."""
    from scipy.optimize import minimize  # scipy loads when a design is optimized, not at `mixlaw --help`

    rng = np.random.default_rng(seed)
    best = None
    for x0 in np.vstack([np.full(n, 1 / n), rng.dirichlet(np.ones(n), size=starts - 1)]):
        res = minimize(
            objective,
            x0,
            method="SLSQP",
            bounds=[(0, 1)] * n,
            constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
        )
        if best is None or res.fun < best.fun:
            best = res
    x = np.clip(best.x, 0, 1)
    return x / x.sum()
