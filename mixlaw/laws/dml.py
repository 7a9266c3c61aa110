"""The data mixing laws of Ye et al. (2024) and an extension, all of the form  c + sum_k exp(F(r) . theta_k).

- `dml2`:   L(r) = c + k exp(t r), one coordinate r of a two-domain mixture.
- `dml`:    L_i(r) = c_i + k_i exp(sum_j t_ij r_j), one law per target (explicit aggregation sums them).
- `dml-log`: L_i(r) = c_i + exp(sum_j t_ij r_j + sum_j u_ij log(r_j + eps)), our extension for proportions at
            or near 0, where the exponential form is poor.
- `dml-implicit`: L(r) = sum_k s_k (c_k + k_k exp(t_k . r)) fitted on the total, K latent domains.

On the simplex (sum_j r_j = 1) the scale k of an exponential is not identifiable apart from t
(log k + t.r = (log k + a) + (t - a).r), so `dml` and `dml-implicit` absorb log k into t; the stored
parameters report the equivalent paper form with the gauge mean_j t_ij = 0 (see `paper_form`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.fitting import fit_multistart
from mixlaw.laws.base import MixingLaw

C_FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.995)


def exp_model(F: np.ndarray, fit_c: bool = True, c_fixed: np.ndarray | None = None):
    """Model c + exp(F theta) for features F (n, q). theta = [log c, theta_1..q] (or theta_1..q when c is
    fixed per problem in `c_fixed` (B,))."""

    def model(theta: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if fit_c:
            c = np.exp(theta[:, 0])
            e = np.exp(theta[:, 1:] @ F.T)
            jac = np.concatenate([np.broadcast_to(c[:, None, None], e.shape + (1,)), e[:, :, None] * F[None]], axis=2)
            return c[:, None] + e, jac
        e = np.exp(theta @ F.T)
        return c_fixed[index][:, None] + e, e[:, :, None] * F[None]

    return model


def linearized_starts(
    F: np.ndarray, y: np.ndarray, n_starts: int, rng: np.random.Generator, fit_c: bool = True, ridge: float = 1e-6
) -> np.ndarray:
    """Data-driven starts for c + exp(F theta): for several c below min(y), solve log(y - c) = F theta by
    (lightly regularized) linear least squares; the rest are jittered copies. Returns (n_starts, P)."""
    q = F.shape[1]
    base = []
    fractions = C_FRACTIONS if fit_c else (0.0,)
    for fraction in fractions:
        c = fraction * y.min()
        z = np.log(np.maximum(y - c, 1e-12))
        theta = np.linalg.solve(F.T @ F + ridge * np.eye(q), F.T @ z)
        base.append(np.concatenate([[np.log(max(c, 1e-8))], theta]) if fit_c else theta)
    base = np.array(base)
    starts = [base]
    n_more = max(0, n_starts - len(base))
    if n_more:
        picks = base[rng.integers(len(base), size=n_more)]
        scale = np.maximum(np.abs(picks), 0.5)
        jitter = picks + rng.normal(size=picks.shape) * scale * rng.uniform(0.05, 0.6, size=(n_more, 1))
        if fit_c:
            jitter[:, 0] = np.log(np.maximum(rng.uniform(0.0, 0.99, n_more) * y.min(), 1e-8))
        starts.append(jitter)
    return np.concatenate(starts)[:n_starts]


class _ExponentialLaw(MixingLaw):
    """Shared machinery: one `c + exp(F theta)` law per target, all targets fitted in one batch."""

    defaults = {"delta": 0.02, "restarts": 32, "seed": 0}

    def features(self, X: np.ndarray) -> np.ndarray:
        return X

    def n_parameters(self, n_domains: int) -> int:
        return 1 + self.features(np.full((1, n_domains), 1.0 / n_domains)).shape[1]

    def ridge(self, n_domains: int) -> np.ndarray | None:
        """Per-parameter ridge weights (None = unpenalized)."""
        return None

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        F = self.features(X)
        rng = np.random.default_rng(self.hyper["seed"])
        starts = np.stack([linearized_starts(F, Y[:, t], self.hyper["restarts"], rng) for t in range(Y.shape[1])])
        result = fit_multistart(exp_model(F), Y.T, starts, delta=self.hyper["delta"], ridge=self.ridge(X.shape[1]))
        return {"log_c": result.theta[:, 0].tolist(), "theta": result.theta[:, 1:].tolist(),
                "starts_at_best": result.n_success.tolist()}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        F = self.features(X)
        c = np.exp(np.array(self.params_["log_c"]))
        theta = np.array(self.params_["theta"])
        return c[None, :] + np.exp(F @ theta.T)


class DML(_ExponentialLaw):
    name = "dml"
    description = "Ye et al. multi-domain law per target: L_i = c_i + k_i exp(sum_j t_ij r_j); explicit aggregation"

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        params = super()._fit(X, Y)
        params.update(paper_form(np.array(params["theta"])))
        return params


def paper_form(theta: np.ndarray) -> dict[str, list]:
    """Report exp(theta . r) as k exp(t . r) with the gauge mean_j t_j = 0 (valid on the simplex)."""
    shift = theta.mean(axis=1, keepdims=True)
    return {"log_k": shift[:, 0].tolist(), "t": (theta - shift).tolist()}


EPS_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)


class DMLLog(_ExponentialLaw):
    name = "dml-log"
    description = ("extension: L_i = c_i + exp(sum_j t_ij r_j + sum_j u_ij log(r_j + eps)); handles shares near 0 "
                   "(eps=auto: chosen per target by grouped CV on the fitting data)")
    defaults = {**_ExponentialLaw.defaults, "eps": "auto", "ridge": 0.0, "cv_folds": 5}

    def ridge(self, n_domains: int) -> np.ndarray | None:
        if not self.hyper["ridge"]:
            return None
        return np.concatenate([np.zeros(1 + n_domains), np.full(n_domains, np.sqrt(self.hyper["ridge"]))])

    def features(self, X: np.ndarray, eps: float | None = None) -> np.ndarray:
        eps = self._eps_value() if eps is None else eps
        return np.concatenate([X, np.log(X + eps)], axis=1)

    def _eps_value(self) -> float:
        eps = self.hyper["eps"]
        return 0.01 if str(eps) == "auto" else float(eps)

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        if str(self.hyper["eps"]) != "auto":
            params = self._fit_eps(X, Y, float(self.hyper["eps"]))
            params["eps"] = [float(self.hyper["eps"])] * Y.shape[1]
            return params
        eps, table = self._choose_eps(X, Y)
        fits = [self._fit_eps(X, Y[:, [t]], e) for t, e in enumerate(eps)]
        params = {key: [fit[key][0] for fit in fits] for key in ("log_c", "theta", "starts_at_best")}
        params.update({"eps": list(eps), "eps_cv": table})
        return params

    def _fit_eps(self, X: np.ndarray, Y: np.ndarray, eps: float) -> dict[str, Any]:
        F = self.features(X, eps)
        rng = np.random.default_rng(self.hyper["seed"])
        starts = np.stack([linearized_starts(F, Y[:, t], self.hyper["restarts"], rng) for t in range(Y.shape[1])])
        result = fit_multistart(exp_model(F), Y.T, starts, delta=self.hyper["delta"], ridge=self.ridge(X.shape[1]))
        return {"log_c": result.theta[:, 0].tolist(), "theta": result.theta[:, 1:].tolist(),
                "starts_at_best": result.n_success.tolist()}

    def _choose_eps(self, X: np.ndarray, Y: np.ndarray) -> tuple[list[float], list[dict]]:
        """eps per target by grouped K-fold CV (folds of mixtures) on the fitting data only."""
        folds = _mixture_folds(X, int(self.hyper["cv_folds"]), int(self.hyper["seed"]))
        table, errors = [], []
        for eps in EPS_GRID:
            residual = np.full(Y.shape, np.nan)
            for test in folds:
                params = self._fit_eps(X[~test], Y[~test], eps)
                residual[test] = _exp_predict(self.features(X[test], eps), params) - Y[test]
            mae = np.abs(residual).mean(axis=0)
            errors.append(mae)
            table.append({"eps": eps, "cv_mae": mae.tolist()})
        best = np.argmin(np.array(errors), axis=0)
        return [EPS_GRID[i] for i in best], table

    def _predict(self, X: np.ndarray) -> np.ndarray:
        eps = self.params_.get("eps") or [self._eps_value()] * len(self.params_["log_c"])
        return np.stack([_exp_predict(self.features(X, e), self.params_, t)[:, 0] for t, e in enumerate(eps)], axis=1)


def _exp_predict(F: np.ndarray, params: dict[str, Any], target: int | None = None) -> np.ndarray:
    """c + exp(F theta) for all targets of `params` (or only `target`), (n, T)."""
    c = np.exp(np.array(params["log_c"]))
    theta = np.array(params["theta"])
    if target is not None:
        c, theta = c[[target]], theta[[target]]
    return c[None, :] + np.exp(F @ theta.T)


def _mixture_folds(X: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """Test masks of `n_folds` folds of distinct mixtures (rows of one mixture stay together)."""
    keys = np.unique(np.round(X, 6), axis=0, return_inverse=True)[1].ravel()
    n_mix = int(keys.max()) + 1
    k = max(2, min(n_folds, n_mix))
    assignment = np.random.default_rng(seed).permutation(n_mix) % k
    return [assignment[keys] == f for f in range(k)]


class DML2(MixingLaw):
    name = "dml2"
    description = "Ye et al. two-domain law L = c + k exp(t r), r = one domain's share; c_init=correlation for the paper's two-stage fit"
    defaults = {"delta": 0.02, "restarts": 32, "seed": 0, "c_init": "joint", "domain": None}

    def n_parameters(self, n_domains: int) -> int:
        return 2 if self.hyper["c_init"] == "correlation" else 3

    def fit(self, X: np.ndarray, Y: np.ndarray, coordinates: list[int] | None = None) -> DML2:
        """`coordinates[t]`: which column of X is r for target t (default 0; `mixlaw fit` picks the training
        domain whose name matches the target, or the `domain` parameter)."""
        X = np.asarray(X, dtype=float)
        if X.shape[1] != 2:
            raise MixlawInputError(f"law dml2 needs exactly 2 training domains, got {X.shape[1]} (use dml)")
        if self.hyper["c_init"] not in ("joint", "correlation"):
            raise MixlawInputError(f"law dml2: c_init must be joint or correlation, got {self.hyper['c_init']!r}")
        Y2 = np.asarray(Y, dtype=float)
        self._coordinates = coordinates or [0] * (Y2.shape[1] if Y2.ndim == 2 else 1)
        return super().fit(X, Y)

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        rng = np.random.default_rng(self.hyper["seed"])
        T = Y.shape[1]
        coords = self._coordinates
        two_stage = self.hyper["c_init"] == "correlation"
        c_fixed = np.array([correlation_c(X[:, coords[t]], Y[:, t]) for t in range(T)]) if two_stage else None
        thetas, log_c = [], []
        for t in range(T):  # coordinates differ per target, so each target is its own small batch
            F = np.stack([np.ones(len(X)), X[:, coords[t]]], axis=1)
            y = Y[:, t] - (c_fixed[t] if two_stage else 0.0)
            starts = linearized_starts(F, y, self.hyper["restarts"], rng, fit_c=not two_stage)
            if two_stage:
                model = exp_model(F, fit_c=False, c_fixed=np.zeros(1))
                result = fit_multistart(model, y[None], starts[None], delta=self.hyper["delta"])
                thetas.append(result.theta[0])
                log_c.append(float(np.log(c_fixed[t])) if c_fixed[t] > 0 else float("-inf"))
            else:
                result = fit_multistart(exp_model(F), y[None], starts[None], delta=self.hyper["delta"])
                thetas.append(result.theta[0, 1:])
                log_c.append(float(result.theta[0, 0]))
        thetas = np.array(thetas)
        c = np.exp(np.array(log_c))
        return {
            "coordinate": list(coords),
            "c": c.tolist(),
            "log_k": thetas[:, 0].tolist(),  # the paper's b in  y - c = exp(k r + b)
            "t": thetas[:, 1].tolist(),  # the paper's k
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        p = self.params_
        r = X[:, p["coordinate"]]
        return np.array(p["c"])[None] + np.exp(np.array(p["log_k"])[None] + np.array(p["t"])[None] * r)


def correlation_c(r: np.ndarray, y: np.ndarray, n_grid: int = 1000) -> float:
    """The paper's first stage: c in linspace(0, min y) maximizing |corr(r, log(y - c))|."""
    best_c, best_corr = 0.0, -1.0
    for c in np.linspace(0.0, y.min(), n_grid)[:-1]:
        z = np.log(y - c)
        if np.std(z) == 0 or np.std(r) == 0:
            continue
        corr = abs(np.corrcoef(r, z)[0, 1])
        if corr > best_corr:
            best_c, best_corr = c, corr
    return float(best_c)


def implicit_model(X: np.ndarray, K: int):
    """L = C + sum_k exp(X t_k); theta = [log C, t_1 (M), ..., t_K (M)]."""
    M = X.shape[1]

    def model(theta: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        C = np.exp(theta[:, 0])
        T = theta[:, 1:].reshape(len(theta), K, M)
        e = np.exp(np.einsum("nm,bkm->bkn", X, T))  # (B, K, n)
        jac_t = e[:, :, :, None] * X[None, None]  # (B, K, n, M)
        jac = np.concatenate(
            [np.broadcast_to(C[:, None, None], (len(theta), X.shape[0], 1)), jac_t.transpose(0, 2, 1, 3).reshape(len(theta), X.shape[0], K * M)],
            axis=2,
        )
        return C[:, None] + e.sum(axis=1), jac

    return model


class DMLImplicit(MixingLaw):
    name = "dml-implicit"
    description = "Ye et al. implicit aggregation on the total: L = sum_k s_k (c_k + k_k exp(t_k . r)), K latent domains (K=auto: CV)"
    defaults = {"K": "auto", "K_max": 4, "delta": 0.02, "restarts": 48, "seed": 0, "ridge": 0.0, "cv_folds": 5}
    per_target = False

    def _K(self) -> int | None:
        return None if str(self.hyper["K"]) == "auto" else int(self.hyper["K"])

    def n_parameters(self, n_domains: int) -> int:
        return 1 + (self._K() or 1) * n_domains

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        if Y.shape[1] != 1:
            raise ValueError("dml-implicit fits one target (the total)")
        y = Y[:, 0]
        K = self._K()
        cv_table = None
        if K is None:
            K, cv_table = self._choose_K(X, y)
        theta = self._fit_K(X, y, K)
        M = X.shape[1]
        T = theta[1:].reshape(K, M)
        # Implicit domain weights: each component's share of the reducible loss at the mean training mixture.
        share = np.exp(T @ X.mean(axis=0))
        return {"K": K, "log_C": float(theta[0]), "t": T.tolist(), "s": (share / share.sum()).tolist(),
                "K_cv": cv_table}

    def _fit_K(self, X: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
        rng = np.random.default_rng(self.hyper["seed"])
        single = linearized_starts(X, y, self.hyper["restarts"], rng)  # (R, 1 + M)
        R, M = len(single), X.shape[1]
        starts = np.empty((R, 1 + K * M))
        starts[:, 0] = single[:, 0]
        spread = rng.normal(size=(R, K, M)) * rng.uniform(0.1, 2.0, size=(R, 1, 1))
        spread[0] = 0.0
        starts[:, 1:] = (single[:, None, 1:] - np.log(K) + spread).reshape(R, K * M)
        ridge = np.concatenate([[0.0], np.full(K * M, float(self.hyper["ridge"]))]) if self.hyper["ridge"] else None
        result = fit_multistart(implicit_model(X, K), y[None], starts[None], delta=self.hyper["delta"], ridge=ridge,
                                max_iter=200)
        return result.theta[0]

    def _choose_K(self, X: np.ndarray, y: np.ndarray) -> tuple[int, list[dict]]:
        """K by grouped K-fold CV on the fitting data only."""
        keys = np.unique(np.round(X, 6), axis=0, return_inverse=True)[1].ravel()
        n_mix = keys.max() + 1
        folds = np.random.default_rng(self.hyper["seed"]).permutation(n_mix) % min(self.hyper["cv_folds"], n_mix)
        table = []
        for K in range(1, int(self.hyper["K_max"]) + 1):
            if 1 + K * X.shape[1] > n_mix * (1 - 1 / min(self.hyper["cv_folds"], n_mix)) and K > 1:
                break
            errors = []
            for fold in np.unique(folds):
                test = folds[keys] == fold
                theta = self._fit_K(X[~test], y[~test], K)
                pred = implicit_model(X[test], K)(theta[None], np.zeros(1, int))[0][0]
                errors.append(np.abs(pred - y[test]))
            table.append({"K": K, "cv_mae": float(np.concatenate(errors).mean())})
        best = min(table, key=lambda row: row["cv_mae"])
        return best["K"], table

    def _predict(self, X: np.ndarray) -> np.ndarray:
        p = self.params_
        theta = np.concatenate([[p["log_C"]], np.ravel(p["t"])])
        return implicit_model(X, p["K"])(theta[None], np.zeros(1, int))[0][0][:, None]
