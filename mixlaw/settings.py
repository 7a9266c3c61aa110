"""Typed settings: dataclass configs whose fields carry each default once and the rules to check a value.

A field's `metadata` holds its rule (`rule(gt=0)`, `rule(choices=(...))`, `rule(increasing=True)`); the
field's type hint gives the type check. `check_fields` applies both to a mapping of values and names each
bad value the way its source does: a command-line flag (`--min-sizes`) or a config key
(`run.yaml: pipeline.min_sizes`). `from_mapping` builds a config from a YAML block (unknown key -> one-line
error naming the file and key). The argparse side reads its defaults from `defaults(cls)`.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from mixlaw.errors import MixlawInputError
from mixlaw.laws import LAWS, get_law
from mixlaw.mixture import Domains
from mixlaw.recommendation import MIN_CONFIDENCE
from mixlaw.scaling import (
    DEFAULT_DELTA,
    SHARE_OPTIONS,
    SIZE_EXPONENT,
    STEP_EXPONENT,
    STEP_SHARE_VALIDATED,
    STEP_WINDOW,
)

Label = Callable[[str], str]


def rule(
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple | None = None,
    increasing: bool = False,
    key: str | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> dict[str, Any]:
    """Field metadata: bounds (`gt`, `ge`, `le`), allowed `choices`, `increasing` for a (lo, hi) pair with
    0 < lo < hi, `key`: the name users see (flag / config key) when it differs from the field's, and
    `check`: a function of the value returning what is wrong with it (or None)."""
    return {
        "gt": gt,
        "ge": ge,
        "le": le,
        "choices": choices,
        "increasing": increasing,
        "key": key,
        "check": check,
    }


def external_name(cls: type, name: str) -> str:
    """The flag / config key of a field (`delta` -> `huber_delta`)."""
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("key") or name
    return name


def flag_label(cls: type) -> Label:
    """Labels errors by command-line flag: `min_sizes` -> `--min-sizes`."""
    return lambda name: "--" + external_name(cls, name).replace("_", "-")


def key_label(cls: type, where: str) -> Label:
    """Labels errors by config key: `min_sizes` -> `WHERE.min_sizes`."""
    return lambda name: f"{where}.{external_name(cls, name)}"


def defaults(cls: type) -> dict[str, Any]:
    """{field: default} of a dataclass (fields without a default are left out)."""
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


# --------------------------------------------------------------------------------------------- type checks


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _check_scalar(value: Any, hint: Any, label: str) -> Any:
    """`value` as a bool, int, float (finite) or str, or a one-line error."""
    if hint is bool:
        ok, kind = isinstance(value, bool), "true or false"
    elif hint is int:
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif hint is float:
        ok, kind = is_number(value), "a finite number"
    else:
        ok, kind = isinstance(value, str), "a string"
    if not ok:
        raise MixlawInputError(f"{label}: {value!r} must be {kind}")
    return float(value) if hint is float else value


def _check_union(value: Any, args: tuple, label: str) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    for option in (a for a in args if a is not type(None)):
        try:
            return _check_type(value, option, label)
        except MixlawInputError as exc:
            errors.append(str(exc))
    raise MixlawInputError(errors[0] if len(errors) == 1 else f"{label}: {value!r} has the wrong type")


def _check_sequence(value: Any, origin: Any, args: tuple, label: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise MixlawInputError(f"{label}: {value!r} must be a list")
    if origin is list:
        return [_check_type(v, args[0], label) for v in value] if args else list(value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_check_type(v, args[0], label) for v in value)
    if len(value) != len(args):
        raise MixlawInputError(f"{label}: {value!r} must have {len(args)} values")
    return tuple(_check_type(v, a, label) for v, a in zip(value, args))


def _check_type(value: Any, hint: Any, label: str) -> Any:
    """`value` converted to `hint` (int, float, str, bool, X | None, tuple[...], list[...], dict[...]) or a
    one-line error."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, args, label)
    if hint in (bool, int, float, str):
        return _check_scalar(value, hint, label)
    if origin in (tuple, list):
        return _check_sequence(value, origin, args, label)
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise MixlawInputError(f"{label}: {value!r} must be a mapping")
        return dict(value)
    return value


def _check_rule(value: Any, meta: Mapping[str, Any], label: str) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise MixlawInputError(f"{label}: {value!r} is not one of {', '.join(map(str, choices))}")
    problem = meta["check"](value) if meta.get("check") else None
    if problem:
        raise MixlawInputError(f"{label}: {problem}")
    if meta.get("increasing") and not 0 < value[0] < value[1]:
        raise MixlawInputError(f"{label}: {list(value)!r} must be [lo, hi] with 0 < lo < hi")
    for bound, ok, words in (
        ("gt", lambda v, b: v > b, "> {:g}"),
        ("ge", lambda v, b: v >= b, ">= {:g}"),
        ("le", lambda v, b: v <= b, "<= {:g}"),
    ):
        b = meta.get(bound)
        if b is not None and not ok(value, b):
            raise MixlawInputError(f"{label}: {value!r} must be {words.format(b)}")


def check_fields(cls: type, values: Mapping[str, Any], label: Label) -> dict[str, Any]:
    """Every value of `values` (field name -> value) checked and converted by its field's type and rule."""
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}
    out = {}
    for name, value in values.items():
        f = by_name[name]
        v = _check_type(value, hints[name], label(name))
        _check_rule(v, f.metadata, label(name))
        out[name] = v
    return out


def check_keys(block: object, allowed: set[str] | list[str], where: str) -> dict:
    """A config block as a dict; None -> {}; unknown keys -> one-line error naming `where` and the key."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise MixlawInputError(f"{where}: expected a mapping (allowed keys: {sorted(allowed)})")
    bad = set(block) - set(allowed)
    if bad:
        raise MixlawInputError(f"{where}: unknown key(s) {sorted(bad)} (allowed: {sorted(allowed)})")
    return block


def config_keys(cls: type) -> set[str]:
    """The config keys of a dataclass (external names)."""
    return {external_name(cls, f.name) for f in fields(cls)}


def from_mapping(cls: type, block: object, where: str, skip: tuple[str, ...] = (), **given: Any):
    """`cls` from a config block (keys = external names, except `skip`ped fields which the caller fills
    with `given`); values are checked with errors naming `where.key`."""
    allowed = config_keys(cls) - set(skip)
    block = check_keys(block, allowed, where)
    by_key = {external_name(cls, f.name): f.name for f in fields(cls)}
    values = {by_key[k]: v for k, v in block.items()}
    values = check_fields(cls, values, key_label(cls, where))
    obj = cls(**{**given, **values})
    return obj


# --------------------------------------------------------------------------------------------- law settings


def law_hyper(law: str, hyper: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    """A law's hyper-parameters checked against its defaults, with `seed` added when the law (or `auto`)
    takes one: the one place where the seed enters hyper-parameters."""
    hyper = dict(hyper or {})
    if law == "auto":
        hyper.setdefault("seed", seed)
        return hyper
    known = get_law(law).defaults
    unknown = sorted(set(hyper) - set(known))
    if unknown:
        raise MixlawInputError(
            f"law {law}: unknown hyper-parameter(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
        )
    if "seed" in known:
        hyper.setdefault("seed", seed)
    return hyper


# --------------------------------------------------------------------------------------------- configs


@dataclass
class ModelShape:
    """A GPT shape: `layers` x `width` with `heads` attention heads (0 = width // 32)."""

    layers: int = field(metadata=rule(ge=1))
    width: int = field(metadata=rule(ge=1))
    heads: int = field(default=0, metadata=rule(ge=0))

    @property
    def label(self) -> str:
        return f"L{self.layers}-D{self.width}"

    @classmethod
    def parse(cls, value: object, where: str) -> ModelShape:
        """From a label like `L4-D128` or a mapping {layers, width[, heads]}."""
        import re

        if isinstance(value, str):
            m = re.fullmatch(r"L(\d+)-D(\d+)", value.strip())
            if not m:
                raise MixlawInputError(f"{where}: {value!r} is not a label like L4-D128")
            return cls(int(m.group(1)), int(m.group(2)))
        if not isinstance(value, dict):
            raise MixlawInputError(f"{where}: expected a label like L4-D128 or {{layers: 4, width: 128}}")
        for k in ("layers", "width"):
            if k not in value:
                raise MixlawInputError(f"{where}.{k}: {None!r} must be a positive integer")
        try:
            shape = from_mapping(cls, value, where)
        except MixlawInputError as exc:
            if "unknown key" in str(exc):
                bad = sorted(set(value) - {"layers", "width", "heads"})
                raise MixlawInputError(
                    f"{where}: unknown key(s) {bad} (allowed: layers, width, heads)"
                ) from None
            raise
        eff = shape.heads or max(1, shape.width // 32)
        if shape.width % eff:
            raise MixlawInputError(f"{where}.heads: width {shape.width} is not divisible by {eff} heads")
        return shape


MIN_BOOTSTRAP = 10  # fewer bootstrap refits give no usable intervals


def _bootstrap_size(n: int) -> str | None:
    return (
        None
        if n == 0 or n >= MIN_BOOTSTRAP
        else f"{n}: use 0 (no intervals) or at least {MIN_BOOTSTRAP} refits"
    )


@dataclass
class OptimizeConfig:
    """The optimization problem of `mixlaw run` (block `optimize:`); shares are in training-domain names."""

    max_epochs: float = field(default=4.0, metadata=rule(gt=0))
    bounds: dict[str, list] | None = None
    fixed: dict[str, float] | None = None
    objective: str | dict[str, float] = "total"
    baseline: str | dict[str, float] = "natural"
    max_distance: float | None = field(default=None, metadata=rule(gt=0))
    trust_region: bool = True  # keep the optimum near the observed mixtures (mixlaw.optimizer.TRUST_RADIUS)
    min_confidence: float = field(default=MIN_CONFIDENCE, metadata=rule(gt=0, le=1))
    bootstrap: int = field(default=30, metadata=rule(ge=0, check=_bootstrap_size))
    interval: float = field(default=0.9, metadata=rule(gt=0, le=0.999999))

    def check_domains(self, domains: list[str], where: str) -> None:
        """Bounds, fixed shares and the baseline against the training domains (one-line errors); either
        spelling of a domain is accepted (math-prose or math_prose)."""
        known = Domains(domains)
        for d, b in (self.bounds or {}).items():
            if known.find(d) is None:
                raise MixlawInputError(f"{where}.bounds: unknown domain {d!r} (training domains: {domains})")
            if not (isinstance(b, list) and len(b) == 2 and all(x is None or is_number(x) for x in b)):
                raise MixlawInputError(f"{where}.bounds.{d}: {b!r} must be [lower, upper] (null = 0 or 1)")
            lo, hi = (0.0 if b[0] is None else b[0]), (1.0 if b[1] is None else b[1])
            if not 0 <= lo <= hi <= 1:
                raise MixlawInputError(f"{where}.bounds.{d}: {b!r} must satisfy 0 <= lower <= upper <= 1")
        for d, v in (self.fixed or {}).items():
            if known.find(d) is None:
                raise MixlawInputError(f"{where}.fixed: unknown domain {d!r} (training domains: {domains})")
            if not is_number(v) or not 0 <= v <= 1:
                raise MixlawInputError(f"{where}.fixed.{d}: {v!r} must be a share in [0, 1]")
        if sum((self.fixed or {}).values()) > 1 + 1e-9:
            raise MixlawInputError(f"{where}.fixed: the fixed shares sum to more than 1")
        if isinstance(self.baseline, str) and self.baseline not in ("natural", "uniform"):
            raise MixlawInputError(
                f"{where}.baseline: {self.baseline!r} must be natural, uniform or a mixture mapping"
            )
        if isinstance(self.baseline, dict):
            from mixlaw.train.design import check_mixture

            check_mixture(self.baseline, domains, f"{where}.baseline")
        if isinstance(self.objective, dict):
            for k, v in self.objective.items():
                if not is_number(v) or v < 0:
                    raise MixlawInputError(f"{where}.objective.{k}: {v!r} must be a weight >= 0")


@dataclass
class ValidateConfig:
    """The validation at the target scale (block `validate:`)."""

    seeds: list[int] | int = field(default_factory=lambda: [0, 1, 2])
    baseline_steps: float = field(default=1.5, metadata=rule(ge=1))
    eval_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.125, 1.25, 1.375, 1.5, 1.75, 2.0)


STEP_GRID_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)


def known_law(name: str) -> str | None:
    """What is wrong with a law name (None: a registered law or auto)."""
    if name in ("auto", *LAWS):
        return None
    return f"unknown law {name!r}; available: auto, {', '.join(LAWS)}"


@dataclass
class PipelineConfig:
    """What the pipeline predicts and how. Steps and tokens are in the units of the runs table's columns.

    Flags and config keys are the field names, except `scale` (`--scale-law`, `scale_law`) and `delta`
    (`--huber-delta`, `huber_delta`)."""

    target_params: float = field(metadata=rule(gt=0))
    target_step: float | None = field(default=None, metadata=rule(gt=0))
    target_tokens: float | None = field(default=None, metadata=rule(gt=0))
    fit_steps: tuple[float | None, float | None] | None = None
    fit_sizes: list[str] | None = None
    law: str | None = field(default=None, metadata=rule(check=known_law))  # None or auto: cross-validated
    scale: str = field(default="chain", metadata=rule(choices=("chain", "joint"), key="scale_law"))
    # Step-law sharing and fit window validated by benchmarks/extrapolation_backtest.py (issue 14 item 4);
    # step_share "mixture" with step_window None is the behaviour before it.
    step_share: str = field(default=STEP_SHARE_VALIDATED, metadata=rule(choices=SHARE_OPTIONS))
    step_window: float | None = field(default=STEP_WINDOW, metadata=rule(ge=1))
    size_share: str = field(default="all", metadata=rule(choices=SHARE_OPTIONS))
    joint_share: str = field(default="all", metadata=rule(choices=SHARE_OPTIONS))
    min_sizes: int = field(default=3, metadata=rule(ge=2))
    delta: float | None = field(default=DEFAULT_DELTA, metadata=rule(gt=0, key="huber_delta"))
    cv: int = field(default=5, metadata=rule(ge=2))
    seed: int = field(default=0, metadata=rule(ge=0))  # numpy refuses negative seeds
    step_grid: tuple[float, ...] = STEP_GRID_FACTORS
    step_exponent: tuple[float, float] = field(default=STEP_EXPONENT, metadata=rule(increasing=True))
    size_exponent: tuple[float, float] = field(default=SIZE_EXPONENT, metadata=rule(increasing=True))

    def __post_init__(self) -> None:
        if (self.target_step is None) == (self.target_tokens is None):
            raise MixlawInputError("give exactly one of --target-step and --target-tokens")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in check_fields(type(self), values, flag_label(type(self))).items():
            setattr(self, name, value)

    @property
    def variable(self) -> str:
        return "step" if self.target_step is not None else "tokens"

    @property
    def target(self) -> float:
        return float(self.target_step if self.target_step is not None else self.target_tokens)
