"""Linear-regression baselines on transformed proportions (closed form, numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mixlaw.laws.base import FitContext, MixingLaw

RIDGE_GRID = tuple(10.0**k for k in range(-6, 3))


def ridge_loo(F: np.ndarray, y: np.ndarray, alphas=RIDGE_GRID) -> tuple[float, np.ndarray, float]:
    """Ridge with an unpenalized intercept; alpha by exact leave-one-out error (hat-matrix shortcut).

    F (n, q) features, y (n,). Returns (alpha, coef (q + 1,) with the intercept first, LOO MAE).
    """
    mean_f, mean_y = F.mean(axis=0), y.mean()
    Fc, yc = F - mean_f, y - mean_y
    best = None
    for alpha in alphas:
        A = Fc.T @ Fc + alpha * np.eye(F.shape[1])
        w = np.linalg.solve(A, Fc.T @ yc)
        hat = np.einsum("ij,ji->i", Fc, np.linalg.solve(A, Fc.T)) + 1.0 / len(y)
        loo = (yc - Fc @ w) / np.maximum(1 - hat, 1e-9)
        score = float(np.abs(loo).mean())
        if best is None or score < best[2]:
            best = (alpha, np.concatenate([[mean_y - mean_f @ w], w]), score)
    return best


class RidgeRLogR(MixingLaw):
    name = "ridge-rlogr"
    description = "baseline: ridge regression of the loss on r_j and log(r_j + eps), alpha by leave-one-out"
    defaults = {"eps": 0.01}
    auto_candidate = 2

    def features(self, X: np.ndarray) -> np.ndarray:
        return np.concatenate([X, np.log(X + self.hyper["eps"])], axis=1)

    def n_parameters(self, n_domains: int) -> int:
        return 2  # ridge regularizes; it needs only a couple of mixtures to be defined

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        F = self.features(X)
        fits = [ridge_loo(F, Y[:, t]) for t in range(Y.shape[1])]
        return {"alpha": [f[0] for f in fits], "coef": [f[1].tolist() for f in fits]}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        F = np.concatenate([np.ones((len(X), 1)), self.features(X)], axis=1)
        return F @ np.array(self.params_["coef"]).T
