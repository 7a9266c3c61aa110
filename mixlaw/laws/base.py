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

import math
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


@dataclass(frozen=True)
class Hyper:
    """The values one hyper-parameter takes: a kind (int, float, bool, str; None = anything JSON-able), a range
    for numbers (`low`/`high`, excluded when `*_open`), words accepted besides numbers (a law whose default is a
    word, e.g. "auto", accepts that word too) and whether None is allowed. Numbers must be finite."""

    kind: type | None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    words: tuple[str, ...] = ()
    nullable: bool = False

    def describe(self) -> str:
        parts = []
        if self.kind in (int, float):
            what = "an integer" if self.kind is int else "a finite number"
            if self.low is not None:
                what += f" {'>' if self.low_open else '>='} {self.low:g}"
            if self.high is not None:
                what += f"{' and' if self.low is not None else ''} {'<' if self.high_open else '<='} {self.high:g}"
            parts.append(what)
        elif self.kind is bool:
            parts.append("true or false")
        elif self.kind is str and not self.words:
            parts.append("a string")
        parts += list(self.words)
        if self.nullable:
            parts.append("none")
        return " or ".join(parts) or "a value"

    def with_default(self, default: Any) -> Hyper:
        """This spec, also accepting the law's default when that is a word or None."""
        any_string = self.kind is str and not self.words
        words = self.words + (
            (default,) if isinstance(default, str) and default not in self.words and not any_string else ()
        )
        return Hyper(
            self.kind,
            self.low,
            self.high,
            self.low_open,
            self.high_open,
            words,
            self.nullable or default is None,
        )

    def parse(self, text: str) -> Any:
        """A command-line value (`--param key=text`) as this kind; raises ValueError when it is not one."""
        if text.lower() in ("none", "null"):
            return None
        if text in self.words:
            return text
        if self.kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if self.kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError(text)
            return int(number)
        if self.kind is float:
            return float(text)
        if self.kind is None:
            try:
                return float(text)
            except ValueError:
                return text
        return text

    def check(self, value: Any) -> Any:
        """`value` normalized to this kind (an integral float becomes an int, a numeric string a number);
        raises ValueError when it is not a valid value."""
        if value is None:
            if self.nullable or self.kind is None:
                return None
            raise ValueError("none")
        if isinstance(value, str) and value in self.words:
            return value
        if self.kind is None:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("not finite")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError("not a bool")
            return value
        if self.kind is str:
            if not isinstance(value, str) or self.words:
                raise ValueError("not one of the words")
            return value
        if isinstance(value, bool):
            raise ValueError("a bool")
        number = self.parse(value) if isinstance(value, str) else value
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise ValueError("not a number")
        if not math.isfinite(number):
            raise ValueError("not finite")
        if self.kind is int:
            if not float(number).is_integer():
                raise ValueError("not an integer")
            number = int(number)
        else:
            number = float(number)
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            raise ValueError("below the range")
        if self.high is not None and (number > self.high or (self.high_open and number == self.high)):
            raise ValueError("above the range")
        return number


# Hyper-parameters shared by several laws, by name; a law's `hyper_schema` overrides or adds to these, and a
# name in neither is checked against the type of its default.
COMMON_HYPER: dict[str, Hyper] = {
    "seed": Hyper(int, 0),
    "restarts": Hyper(int, 1),
    "delta": Hyper(float, 0, low_open=True, nullable=True),  # Huber delta; None = least squares
    "ridge": Hyper(float, 0, nullable=True),
    "eps": Hyper(float, 0),
    "cv_folds": Hyper(int, 2),
    "large_swarm": Hyper(int, 1),
    "K": Hyper(int, 1),
    "K_max": Hyper(int, 1),
    "steps": Hyper(int, 1),
    "max_iter": Hyper(int, 1),
    "c_init": Hyper(str, words=("joint", "correlation")),
}


def _inferred(default: Any) -> Hyper:
    for kind in (bool, int, float, str):
        if isinstance(default, kind):
            return Hyper(kind)
    return Hyper(None)


class MixingLaw:
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # what each hyper-parameter accepts, where COMMON_HYPER or the default's type does not say enough
    hyper_schema: ClassVar[dict[str, Hyper]] = {}
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
        self.hyper: dict[str, Any] = {**self.defaults, **self.check_hyper(hyper)}
        self._reset()

    @classmethod
    def hyper_spec(cls, key: str) -> Hyper:
        """What hyper-parameter `key` accepts (the law's `hyper_schema`, else COMMON_HYPER, else its default's
        type), including the default itself when that is a word or None."""
        default = cls.defaults.get(key)
        spec = cls.hyper_schema.get(key) or COMMON_HYPER.get(key) or _inferred(default)
        return spec.with_default(default)

    @classmethod
    def check_hyper(cls, hyper: dict[str, Any], flag: str = "parameter") -> dict[str, Any]:
        """`hyper` with each value checked against its spec (type, finiteness, range) and normalized; a bad value
        is a one-line MixlawInputError naming the law and the parameter. `flag` names where it came from."""
        checked = {}
        for key, value in hyper.items():
            spec = cls.hyper_spec(key)
            try:
                checked[key] = spec.check(value)
            except (ValueError, TypeError, OverflowError):
                raise MixlawInputError(
                    f"{flag} {key}={value!r}: expected {spec.describe()} (law {cls.name})"
                ) from None
        return checked

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
            raise MixlawInputError(
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

    # -- the stored parameters a law file must hold: {key: (shape, kind)} checked by `from_dict` ------------
    # shape: "scalar", "vector" (one value per target) or "matrix" (per target x something); kind: "number"
    # (finite) or "any". Laws with a dynamic layout (trees, blends) check `params_` in `_check_params`.
    params_schema: ClassVar[dict[str, tuple[str, str]]] = {}

    def _check_params(self, params: dict[str, Any]) -> None:
        """Raise ValueError/TypeError/KeyError naming what is wrong with `params` read from a file (beyond
        `params_schema`); the default checks nothing more."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MixingLaw:
        """The law stored by `to_dict`, checked on load: hyper-parameters against their specs, `params` against
        `params_schema` and `_check_params`; anything malformed is a MixlawInputError naming the key."""
        if not isinstance(data, dict):
            raise MixlawInputError(f"law: expected an object, got {type(data).__name__}")
        hyper = {} if data.get("hyper") is None else data["hyper"]
        if not isinstance(hyper, dict):
            raise MixlawInputError(f"hyper: expected an object, got {type(hyper).__name__}")
        law = cls(**{str(k): v for k, v in hyper.items()})
        params = data.get("params")
        if params is not None and not isinstance(params, dict):
            raise MixlawInputError(f"params: expected an object, got {type(params).__name__}")
        n_domains = data.get("n_domains")
        if n_domains is not None and (
            isinstance(n_domains, bool) or not isinstance(n_domains, int) or n_domains < 1
        ):
            raise MixlawInputError(f"n_domains: expected a positive integer, got {n_domains!r}")
        summary = data.get("summary") or {}
        if not isinstance(summary, dict):
            raise MixlawInputError(f"summary: expected an object, got {type(summary).__name__}")
        law.params_ = params
        law.n_domains_ = n_domains
        law.summary_ = summary
        if params is not None:
            for key, (shape, kind) in cls.params_schema.items():
                if key not in params:
                    raise MixlawInputError(f"params: missing {key!r} (law {cls.name})")
                _check_array(params[key], f"params.{key}", shape, kind)
            try:
                law._check_params(params)
                law._load()
            except MixlawInputError:
                raise
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                what = f"missing {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else str(exc)
                raise MixlawInputError(f"params: {what or type(exc).__name__} (law {cls.name})") from None
        return law


def _check_array(value: Any, where: str, shape: str, kind: str) -> None:
    """A stored parameter: "scalar" a number, "vector" a non-empty list of numbers, "matrix" a non-empty list of
    equally long non-empty lists of numbers; numbers finite (kind "number")."""
    try:
        array = np.asarray(value, dtype=float) if kind == "number" else np.asarray(value, dtype=object)
    except (ValueError, TypeError):
        raise MixlawInputError(f"{where}: expected {shape} of numbers, got {value!r:.60}") from None
    ndim = {"scalar": 0, "vector": 1, "matrix": 2}[shape]
    if array.ndim != ndim or (ndim and array.size == 0) or any(isinstance(v, bool) for v in np.ravel(array)):
        raise MixlawInputError(f"{where}: expected a {shape} of numbers, got {value!r:.60}")
    if kind == "number" and not np.isfinite(array).all():
        raise MixlawInputError(f"{where}: values must be finite")


def parse_hyper(law_class: type[MixingLaw], pairs: list[str] | None) -> dict[str, Any]:
    """Parse `--param key=value` pairs into hyper-parameters, each checked against the law's spec for it (type,
    finiteness, range: `MixingLaw.hyper_spec`); a bad pair is a one-line error naming the parameter."""
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
        spec = law_class.hyper_spec(key)
        try:
            parsed = spec.parse(value)
        except (ValueError, OverflowError):
            raise MixlawInputError(
                f"--param {key}={value}: expected {spec.describe()} (law {law_class.name})"
            ) from None
        hyper.update(law_class.check_hyper({key: parsed}, "--param"))
    return hyper
