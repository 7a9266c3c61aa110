"""The law interface shared by every mixing law (scikit-learn style).

    law = Law(**hyperparameters).fit(X, Y)   # X (n, M) mixture proportions, Y (n, T) losses of T targets
    law.predict(X)                           # -> (n, T)
    law.params_                              # fitted parameters (JSON-able), law.summary_ goodness of fit
    Law.from_dict(law.to_dict())             # JSON round trip

Targets are validation domains or groups; a law that only models an aggregate (implicit aggregation)
declares `per_target = False` and is fitted on one column, the total.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.fitting import blas_threads, huber


class MixingLaw:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    per_target: ClassVar[bool] = True

    def __init__(self, **hyper: Any) -> None:
        unknown = sorted(set(hyper) - set(self.defaults))
        if unknown:
            raise MixlawInputError(
                f"law {self.name}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(self.defaults) or 'none'}"
            )
        self.hyper: dict[str, Any] = {**self.defaults, **hyper}
        self.params_: dict[str, Any] | None = None
        self.summary_: dict[str, Any] = {}

    # -- to implement --------------------------------------------------------------------------------------
    def n_parameters(self, n_domains: int) -> int:
        """Free parameters per target for M training domains (used to refuse under-determined fits)."""
        raise NotImplementedError

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def _predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------------------
    def fit(self, X: np.ndarray, Y: np.ndarray) -> MixingLaw:
        """Fit on X (n, M) proportions and Y (n, T) or (n,) losses."""
        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        if X.ndim != 2 or len(X) != len(Y):
            raise ValueError(f"X must be (n, M) and Y (n, T); got {X.shape} and {Y.shape}")
        n_unique = len(np.unique(np.round(X, 6), axis=0))
        needed = self.n_parameters(X.shape[1])
        if n_unique < needed:
            raise MixlawInputError(
                f"law {self.name} has {needed} parameters per target but only {n_unique} distinct mixtures were given"
            )
        self.n_domains_ = X.shape[1]
        with blas_threads(1):  # the engine's many tiny matrix products: BLAS threads only add overhead
            self.params_ = self._fit(X, Y)
        self.summary_ = self.goodness_of_fit(X, Y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted losses, (n, M) -> (n, T)."""
        if self.params_ is None:
            raise RuntimeError(f"law {self.name} is not fitted")
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.n_domains_:
            raise ValueError(f"law {self.name} was fitted on {self.n_domains_} domains, got {X.shape[1]}")
        return self._predict(X)

    def goodness_of_fit(self, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        residual = self.predict(X) - Y
        delta = self.hyper.get("delta")
        ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
        return {
            "n": int(len(Y)),
            "rmse": np.sqrt((residual**2).mean(axis=0)).tolist(),
            "mae": np.abs(residual).mean(axis=0).tolist(),
            "max_abs": np.abs(residual).max(axis=0).tolist(),
            "r2": (1 - (residual**2).sum(axis=0) / np.where(ss_tot > 0, ss_tot, np.nan)).tolist(),
            "huber_mean": huber(residual, delta).mean(axis=0).tolist(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "law": self.name,
            "hyper": self.hyper,
            "n_domains": getattr(self, "n_domains_", None),
            "params": self.params_,
            "summary": self.summary_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MixingLaw:
        law = cls(**data.get("hyper", {}))
        law.params_ = data["params"]
        law.n_domains_ = data["n_domains"]
        law.summary_ = data.get("summary", {})
        return law


def parse_hyper(law_class: type[MixingLaw], pairs: list[str] | None) -> dict[str, Any]:
    """Parse `--param key=value` pairs, converting each value to the type of the law's default."""
    hyper: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise MixlawInputError(f"--param {pair!r}: expected key=value")
        key, value = (s.strip() for s in pair.split("=", 1))
        if key not in law_class.defaults:
            known = ", ".join(law_class.defaults) or "none"
            raise MixlawInputError(
                f"--param {key}: law {law_class.name} has no such parameter; known: {known}"
            )
        hyper[key] = _convert(value, law_class.defaults[key], key)
    return hyper


def _convert(value: str, default: Any, key: str) -> Any:
    if value.lower() in ("none", "null"):
        return None
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float) or default is None:
            try:
                return float(value)
            except ValueError:
                if default is None:
                    return value
                raise
    except ValueError:
        raise MixlawInputError(f"--param {key}={value}: expected a {type(default).__name__}") from None
    return value
