"""The law contract shared by every mixing law (scikit-learn style).

    law = Law(**hyperparameters).fit(X, Y, context=FitContext(domains=..., targets=..., steps=...))
    law.predict(X)                           # X (n, M) mixture proportions -> (n, T) losses of T targets
    law.params_                              # fitted parameters (JSON-able), law.summary_ goodness of fit
    Law.from_dict(law.to_dict())             # JSON round trip

The contract (checked for every registered law by tests/test_law_contract.py):
- `__init__` only stores hyper-parameters (unknown names are rejected); every knob is a hyper-parameter.
- Extra inputs arrive through one argument, `fit(X, Y, context)`: the names of the training domains and of the
  fitted targets, the optimizer step of each row. A law uses what it needs and ignores the rest.
- Learned state (names ending in `_`) is made only in `fit`, which starts from scratch every time and returns
  self; state derived from `params_` (e.g. parsed tree models) is rebuilt by `_load`, after `fit` and after
  `from_dict`, never lazily inside `predict`.
- `predict` before `fit` raises; the JSON round trip preserves predictions exactly; `summary_` has at least
  COMMON_SUMMARY_KEYS.
- Facts about a law that code elsewhere needs are class attributes (see below), not lists of names.

Targets are validation domains or groups; a law that only models an aggregate (implicit aggregation)
declares `per_target = False` and is fitted on one column, the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.fitting import blas_threads, huber

COMMON_SUMMARY_KEYS = ("n", "rmse", "mae", "max_abs", "r2", "huber_mean")


@dataclass(frozen=True)
class FitContext:
    """What a fit may need besides X and Y; every field is optional.

    domains: names of the M training domains (the columns of X); targets: names of the T fitted targets (the
    columns of Y, e.g. validation domains or ["total"]); steps: (n,) optimizer step of each row."""

    domains: list[str] | None = None
    targets: list[str] | None = None
    steps: np.ndarray | None = None


class MixingLaw:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # -- facts about the law, read by the code that uses it ---------------------------------------------------
    per_target: ClassVar[bool] = True  # one law per target (explicit aggregation); False: fitted on the total
    convex: ClassVar[bool] = (
        False  # the predicted total is convex in the mixture (the optimizer needs 2 starts)
    )
    seeded: ClassVar[bool] = (
        False  # comparisons and `auto` pass the caller's seed as the `seed` hyper-parameter
    )
    auto_candidate: ClassVar[int | None] = None  # place in `auto`'s default candidate list; None: not tried
    auto_min_mixtures: ClassVar[int] = 0  # `auto` tries it by default only on at least this many mixtures
    nonparametric: ClassVar[bool] = False  # no fixed functional form (trees, kernels)
    piecewise_constant: ClassVar[bool] = (
        False  # zero gradient almost everywhere: optimize by sampling, not SLSQP
    )
    blendable: ClassVar[bool] = True  # may be a member of a `blend` (fits every target on the same X)
    fixed_domains: ClassVar[int | None] = None  # the number of training domains the law needs, if fixed

    def __init__(self, **hyper: Any) -> None:
        unknown = sorted(set(hyper) - set(self.defaults))
        if unknown:
            raise MixlawInputError(
                f"law {self.name}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(self.defaults) or 'none'}"
            )
        self.hyper: dict[str, Any] = {**self.defaults, **hyper}
        self._reset()

    # -- to implement --------------------------------------------------------------------------------------
    def n_parameters(self, n_domains: int) -> int:
        """Free parameters per target for M training domains (used to refuse under-determined fits)."""
        raise NotImplementedError

    def _fit(self, X: Any, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        """The fitted parameters (JSON-able) of X and Y (n, T); `context` as in `fit`."""
        raise NotImplementedError

    def _predict(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def _load(self) -> None:
        """Rebuild state derived from `params_` (called after `fit` and `from_dict`); most laws have none."""

    # -- input conventions (a law whose inputs are not proportion arrays, e.g. schedules, overrides these) ----
    def _inputs(self, X: Any) -> Any:
        """X as the law takes it: (n, M) float proportions (one mixture (M,) becomes (1, M))."""
        return np.atleast_2d(np.asarray(X, dtype=float))

    def _n_domains_of(self, X: Any) -> int:
        return int(X.shape[1])

    def _n_distinct(self, X: Any) -> int:
        return len(np.unique(np.round(X, 6), axis=0))

    def _fitted_values(self, X: Any, context: FitContext) -> np.ndarray:
        """In-sample predictions for the summary (a step-aware law predicts each row at its own step)."""
        return self.predict(X)

    # -- shared --------------------------------------------------------------------------------------------
    def _reset(self) -> None:
        for attribute in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, attribute)
        self.params_: dict[str, Any] | None = None
        self.summary_: dict[str, Any] = {}
        self.n_domains_: int | None = None

    def fit(self, X: Any, Y: np.ndarray, context: FitContext | None = None) -> MixingLaw:
        """Fit on X (n, M) proportions and Y (n, T) or (n,) losses; every earlier fit is forgotten."""
        context = context or FitContext()
        X = self._inputs(X)
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        if len(X) != len(Y) or Y.ndim != 2:
            raise ValueError(
                f"X must be (n, M) and Y (n, T); got {len(X)} rows of X and Y of shape {Y.shape}"
            )
        n_domains = self._n_domains_of(X)
        if self.fixed_domains is not None and n_domains != self.fixed_domains:
            raise MixlawInputError(
                f"law {self.name} needs exactly {self.fixed_domains} training domains, got {n_domains}"
            )
        self._reset()
        n_unique = self._n_distinct(X)
        needed = self.n_parameters(n_domains)
        if n_unique < needed:
            raise MixlawInputError(
                f"law {self.name} has {needed} parameters per target but only {n_unique} distinct mixtures were given"
            )
        self.n_domains_ = n_domains
        with blas_threads(1):  # the engine's many tiny matrix products: BLAS threads only add overhead
            self.params_ = self._fit(X, Y, context)
        self._load()
        self.summary_ = self.goodness_of_fit(X, Y, context)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted losses, (n, M) -> (n, T)."""
        if self.params_ is None:
            raise RuntimeError(f"law {self.name} is not fitted")
        X = self._inputs(X)
        if self._n_domains_of(X) != self.n_domains_:
            raise ValueError(
                f"law {self.name} was fitted on {self.n_domains_} domains, got {self._n_domains_of(X)}"
            )
        return self._predict(X)

    def goodness_of_fit(self, X: Any, Y: np.ndarray, context: FitContext | None = None) -> dict[str, Any]:
        residual = self._fitted_values(X, context or FitContext()) - Y
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
            "n_domains": self.n_domains_,
            "params": self.params_,
            "summary": self.summary_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MixingLaw:
        law = cls(**data.get("hyper", {}))
        law.params_ = data["params"]
        law.n_domains_ = None if data.get("n_domains") is None else int(data["n_domains"])
        law.summary_ = data.get("summary", {})
        if law.params_ is not None:
            law._load()
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
