"""The fitting engine: robust nonlinear least squares with many restarts, in numpy/scipy (float64).

`fit_multistart` solves B independent problems of the same model at once. Each problem b has its own data
row y[b] (n values, NaN = missing) and R starting points. All B x R starts run through one vectorised
Levenberg-Marquardt loop (Huber handled by iteratively reweighted least squares), the best few starts of each
problem are polished with `scipy.optimize.least_squares(loss="huber")` unless the LM run already converged
(at convergence the IRLS fixed point is the exact Huber optimum, so a polish cannot improve it; skipping it
also keeps scipy.optimize out of the import path of a typical `mixlaw fit`), and the best is returned.

A model is a function `model(theta, index) -> (pred, jac)` where `theta` has shape (K, P), `index` (K,)
says which problem each row belongs to, `pred` has shape (K, n) and `jac` (K, n, P). Positive quantities are
parameterized in log space by the laws themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

Model = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def huber(residual: np.ndarray, delta: float | None) -> np.ndarray:
    """Elementwise Huber loss (0.5 r^2 inside delta, linear outside); plain 0.5 r^2 when delta is None."""
    if delta is None:
        return 0.5 * residual**2
    a = np.abs(residual)
    return np.where(a <= delta, 0.5 * residual**2, delta * (a - 0.5 * delta))


@dataclass
class FitResult:
    """Best parameters per problem, shape (B, P), with their robust cost and all starts' final costs."""

    theta: np.ndarray
    cost: np.ndarray
    n_starts: int
    n_success: np.ndarray  # starts per problem that ended within 1e-6 (relative) of the best cost


def _cost(
    residual: np.ndarray, theta: np.ndarray, delta: float | None, ridge: np.ndarray | None
) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        cost = np.nansum(huber(residual, delta), axis=1)
        if ridge is not None:
            cost = cost + 0.5 * ((theta * ridge) ** 2).sum(axis=1)
        bad = ~np.isfinite(residual) & ~np.isnan(residual)
        cost[bad.any(axis=1) | ~np.isfinite(cost)] = np.inf
    return cost


def levenberg_marquardt(
    model: Model,
    theta: np.ndarray,
    y: np.ndarray,
    index: np.ndarray,
    delta: float | None = None,
    ridge: np.ndarray | None = None,
    max_iter: int = 100,
    rtol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised LM over K starts. `y` (K, n) may hold NaN for missing values. Returns (theta, cost)."""
    theta, cost, _ = _lm(model, theta, y, index, delta, ridge, max_iter, rtol)
    return theta, cost


def _lm(
    model: Model,
    theta: np.ndarray,
    y: np.ndarray,
    index: np.ndarray,
    delta: float | None,
    ridge: np.ndarray | None,
    max_iter: int,
    rtol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`levenberg_marquardt` that also returns which starts converged (relative improvement below rtol).

    A model with a `normal` method (e.g. `laws.dml.BatchedExpModel`) takes the structured path: `model.compact`
    returns (pred, aux) instead of the dense Jacobian and `model.normal(aux, w, r, theta, index)` the Gauss-Newton
    J^T W J and J^T W r; the iteration is otherwise the same."""
    normal = getattr(model, "normal", None)
    evaluate = model if normal is None else model.compact
    theta = np.array(theta, dtype=float)
    mask = ~np.isnan(y)
    y0 = np.where(mask, y, 0.0)
    K, P = theta.shape
    eye = np.eye(P)
    if ridge is not None:
        ridge = np.broadcast_to(np.asarray(ridge, dtype=float), (K, P))  # one row of weights per start
    with np.errstate(all="ignore"):
        pred, jac = evaluate(theta, index)
        residual = np.where(mask, pred - y0, 0.0)
    cost = _cost(residual, theta, delta, ridge)
    lam = np.full(K, 1e-3)
    active = np.isfinite(cost)
    converged = np.zeros(K, bool)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        r, J, th = residual[idx], jac[idx], theta[idx]
        rr = None if ridge is None else ridge[idx]
        if delta is None:
            w = mask[idx].astype(float)
        else:
            w = np.where(mask[idx], np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300)), 0.0)
        if normal is None:
            J = np.where(np.isfinite(J), J, 0.0)
            JW = J * w[:, :, None]
            A = JW.transpose(0, 2, 1) @ J
            g = (JW.transpose(0, 2, 1) @ r[:, :, None])[:, :, 0]
        else:
            A, g = normal(J, w, r, th, index[idx])
        # A + ridge^2 I, then damped by lam (diag(A) + 1e-9) on the diagonal, in place on A's diagonal (the same
        # values as forming the (K, P, P) identity terms; A is a fresh array here).
        damped = np.ascontiguousarray(A)
        diag = damped.reshape(len(idx), P * P)[:, :: P + 1]
        if rr is not None:
            diag += rr**2
            g = g + rr**2 * th
        diag += lam[idx, None] * (diag + 1e-9)
        finite = np.isfinite(damped).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
        damped[~finite], g[~finite] = eye, 0.0  # broken starts take no step and are retired below
        step = _solve(damped, g)
        candidate = th + step
        with np.errstate(all="ignore"):
            pred_new, jac_new = evaluate(candidate, index[idx])
            residual_new = np.where(mask[idx], pred_new - y0[idx], 0.0)
        cost_new = _cost(residual_new, candidate, delta, rr)
        accept = cost_new < cost[idx]
        with np.errstate(all="ignore"):
            improvement = (cost[idx] - cost_new) / np.maximum(cost[idx], 1e-300)
        a = idx[accept]
        theta[a], residual[a], jac[a], cost[a] = (
            candidate[accept],
            residual_new[accept],
            jac_new[accept],
            cost_new[accept],
        )
        lam[idx] = np.where(accept, lam[idx] / 3.0, lam[idx] * 4.0)
        # Converged: a negligible accepted improvement, or no step improves any more (lam blew up).
        small = (accept & (improvement < rtol)) | ((lam[idx] > 1e12) & finite)
        converged[idx[small]] = True
        done = small | ~finite
        active[idx[done]] = False
    return theta, cost, converged


def _solve(A: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Batched solve of A x = -g; singular systems fall back to least squares, then to no step."""
    try:
        return np.linalg.solve(A, -g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        out = np.zeros_like(g)
        for i, (a, gg) in enumerate(zip(A, g)):
            try:
                out[i] = np.linalg.lstsq(a, -gg, rcond=None)[0]
            except np.linalg.LinAlgError:
                pass
        return out


def fit_multistart(
    model: Model,
    y: np.ndarray,
    starts: np.ndarray,
    delta: float | None = None,
    ridge: np.ndarray | None = None,
    max_iter: int = 100,
    polish: int = 3,
    rtol: float = 1e-12,
) -> FitResult:
    """Fit B problems from R starts each.

    y: (B, n) data (NaN = missing). starts: (B, R, P) starting parameters.
    Huber `delta` is on the scale of y (None = plain least squares). `ridge` (P,), or (B, P) for one row of
    weights per problem, adds 0.5 * (ridge * theta)^2 to the cost (shrinks parameters toward 0; 0 entries leave a
    parameter free). A start has converged when an accepted step improves its cost by less than `rtol`
    (relative); `polish` of the best unconverged starts per problem then continue (0: none).
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    B, R, P = starts.shape
    index = np.repeat(np.arange(B), R)
    if ridge is not None:
        ridge = np.broadcast_to(np.asarray(ridge, dtype=float), (B, P))
    theta, cost, converged = _lm(
        model,
        starts.reshape(B * R, P),
        y[index],
        index,
        delta,
        None if ridge is None else ridge[index],
        max_iter,
        rtol,
    )
    theta = theta.reshape(B, R, P)
    cost = cost.reshape(B, R)
    converged = converged.reshape(B, R)
    # The best few starts that stopped at max_iter continue in the LM loop (batched, cheap) before any scipy polish.
    top = np.argsort(cost, axis=1, kind="stable")[:, :polish]
    pending = [(b, r) for b in range(B) for r in top[b] if np.isfinite(cost[b, r]) and not converged[b, r]]
    if pending:
        bs, rs = np.array(pending).T
        more, more_cost, more_conv = _lm(
            model, theta[bs, rs], y[bs], bs, delta, None if ridge is None else ridge[bs], 10 * max_iter, rtol
        )
        better = more_cost <= cost[bs, rs]
        theta[bs[better], rs[better]], cost[bs[better], rs[better]] = more[better], more_cost[better]
        converged[bs, rs] = more_conv
    order = np.argsort(cost, axis=1, kind="stable")
    best_theta = theta[np.arange(B), order[:, 0]].copy()
    best_cost = cost[np.arange(B), order[:, 0]].copy()
    for b in range(B if ridge is None else 0):
        for r in order[b, :polish]:
            if not np.isfinite(cost[b, r]) or converged[b, r]:
                continue
            polished, polished_cost = _polish(model, theta[b, r], y[b], b, delta, None)
            if polished_cost < best_cost[b] - 1e-15:
                best_theta[b], best_cost[b] = polished, polished_cost
    n_success = (cost <= best_cost[:, None] * (1 + 1e-6) + 1e-12).sum(axis=1)
    return FitResult(best_theta, best_cost, R, n_success)


def _polish(
    model: Model, theta: np.ndarray, y: np.ndarray, b: int, delta: float | None, ridge: np.ndarray | None
) -> tuple[np.ndarray, float]:
    """Refine one start with scipy's trust-region least squares (exact Huber loss).

    Not used with a ridge penalty: scipy's robust loss would also bend the penalty terms.
    """
    from scipy.optimize import least_squares  # lazy: most fits converge in the LM loop and never need it

    mask = ~np.isnan(y)
    index = np.array([b])

    def residuals(th: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            pred, _ = model(th[None], index)
        out = (pred[0] - y)[mask]
        return np.where(np.isfinite(out), out, 1e6)

    def jacobian(th: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            _, jac = model(th[None], index)
        out = jac[0][mask]
        return np.where(np.isfinite(out), out, 0.0)

    try:
        if delta is None:
            result = least_squares(residuals, theta, jac=jacobian, method="trf", x_scale="jac", max_nfev=200)
        else:
            result = least_squares(
                residuals,
                theta,
                jac=jacobian,
                method="trf",
                loss="huber",
                f_scale=delta,
                x_scale="jac",
                max_nfev=200,
            )
    except (ValueError, np.linalg.LinAlgError):
        return theta, np.inf
    with np.errstate(all="ignore"):
        pred, _ = model(result.x[None], index)
    cost = _cost(np.where(mask, pred[0] - np.where(mask, y, 0.0), 0.0)[None], result.x[None], delta, ridge)[0]
    return result.x, float(cost)


# ------------------------------------------------------------------------------------------ BLAS threads


@contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Run the block with at most `n` BLAS threads (threadpoolctl), then restore the previous setting.

    The engine multiplies thousands of tiny matrices (one Gram matrix per start); OpenBLAS threads each of
    them, which costs more than it saves and, on a loaded machine, slows a fit down by an order of magnitude
    (measured: 0.25 s vs 2.8 s per LM iteration of 3600 starts on 2 busy cores). Results are unchanged."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield
