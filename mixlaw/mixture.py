"""The one mixture model: parse, validate and name training-data mixtures in one place.

A mixture is a share of training tokens per training domain, every share in [0, 1], summing to 1:

    Mixture.parse("web=0.7,code=0.3", domains=["web", "code", "math"])   # missing domains are 0
    Mixture.parse({"p_web": 0.7, "p_code": 0.3})                         # p_ columns or plain names
    Mixture.parse(np.array([0.7, 0.3]), domains=["web", "code"])
    Mixture.from_file("optimum.json")                                    # JSON, YAML or a one-row table
    mixtures_array(frame, domains)                                       # (n, M) from a table of mixtures

Every parser, validator and domain-name normalizer of mixlaw lives here; other modules call it.

Sum tolerance (`SUM_TOLERANCE` = 1e-6, for single mixtures and runs-table rows alike). Every mixture mixlaw writes
sums to 1 far closer than that: designs are drawn on an integer grid, the optimizer solves with an exact equality
constraint, run mixtures are rounded with the residual on the largest share and exported shares likewise. A
looser tolerance only admits hand-rounded shares (0.333 x 3 = 0.999) and silently moves their missing 0.1% of
the tokens (100M tokens of a 100B-token run) somewhere; such inputs are rejected with a message that names the
source and the sum, and rescaled only when asked (`renormalize=True`, the CLI's `--renormalize`). (The old
1e-3 of `export.mixture_from_dict` accepted and rescaled them silently.)

Domain names. The canonical spelling is the runs-table column spelling `canonical_name`: lower case, every
character other than a-z, 0-9 and `_` replaced by `_` (`math-prose` -> `math_prose`). The trainer has always
written its `p_<domain>` columns that way, so existing runs tables, LAW.json and optimum.json files already use
it (their keys do not change), and it is safe in CSV headers, Parquet columns and file names. Input accepts
any spelling that normalizes to a known domain (`math-prose`, `p_math_prose`, `Math-Prose`); what is written is
the spelling of the domain list the mixture is resolved against (for the trainer: the canonical one). Domains
of a runs table that are not in canonical form (`ArXiv`) keep their spelling: names are matched, never renamed.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import read_json, read_table, read_yaml

log = logging.getLogger(__name__)

PREFIX = "p_"  # runs-table column of a training domain: p_<domain>
SUM_TOLERANCE = 1e-6  # |sum of shares - 1| accepted without renormalizing (see the module docstring)
DECIMALS = 6  # mixtures equal after rounding to this many decimals are the same mixture
RENORMALIZE_HINT = "pass --renormalize to rescale"
OLMIX_SUM_TOLERANCE = 0.01  # Olmix accepts ratios whose sum is within this of 1 (its result files, its runs)
FILE_SUFFIXES = (".json", ".yaml", ".yml", ".csv", ".parquet", ".pq", ".jsonl", ".ndjson")


# --------------------------------------------------------------------------------------------- names


def canonical_name(domain: str) -> str:
    """The one written spelling of a domain: lower case, characters other than a-z, 0-9, _ replaced by _."""
    return re.sub(r"[^a-z0-9_]", "_", str(domain).lower())


def strip_prefix(name: str) -> str:
    """`p_web` -> `web`; a name without the prefix is returned unchanged (surrounding spaces removed)."""
    name = str(name).strip()
    return name[len(PREFIX) :] if name.startswith(PREFIX) else name


def column(domain: str) -> str:
    """The runs-table column of `domain`: `p_<domain>`."""
    return PREFIX + domain


def prefixed_columns(columns: Iterable[Any]) -> list[str]:
    """The `p_<domain>` columns among `columns`, in order."""
    return [str(c) for c in columns if str(c).startswith(PREFIX)]


def olmix_shares(data: object, source: str) -> dict[str, float]:
    """Olmix's result (a list of `{"domain": name, "weight": share}`) as {domain: share}; shares must be
    numbers >= 0 summing to 1 within Olmix's 0.01 (then rescaled, with a warning)."""
    if not isinstance(data, list) or not data:
        raise MixlawInputError(f'{source}: expected a list of {{"domain": ..., "weight": ...}} objects')
    weights: dict[str, float] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "domain" not in item or "weight" not in item:
            raise MixlawInputError(f'{source}: item {i}: expected an object with "domain" and "weight"')
        name, value = item["domain"], item["weight"]
        if not isinstance(name, str) or not name.strip():
            raise MixlawInputError(f"{source}: item {i}: domain {name!r} is not a name")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise MixlawInputError(
                f"{source}: item {i}: weight of {name!r} is {value!r}, expected a number >= 0"
            )
        if name in weights:
            raise MixlawInputError(f"{source}: domain {name!r} appears twice")
        weights[name] = float(value)
    total = sum(weights.values())
    if abs(total - 1) > OLMIX_SUM_TOLERANCE:
        raise MixlawInputError(f"{source}: weights sum to {total:.6g}, not 1 (Olmix allows 0.01)")
    if abs(total - 1) > 1e-9:
        log.warning("%s: weights sum to %.6g; rescaled to 1", source, total)
    return {d: w / total for d, w in weights.items()}


@dataclass(frozen=True)
class Domains:
    """An ordered list of training-domain names and the one rule that maps user spellings onto them.

    `resolve` accepts the exact name, the name with the `p_` prefix, or any spelling with the same
    `canonical_name` (`math-prose` for `math_prose`); anything else is a one-line error naming `what`.
    """

    names: tuple[str, ...]

    def __init__(self, names: Iterable[str]):
        object.__setattr__(self, "names", tuple(str(n) for n in names))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(self.names)

    @property
    def columns(self) -> list[str]:
        return [column(d) for d in self.names]

    def find(self, name: str, what: str = "mixture") -> str | None:
        """The known domain `name` stands for, or None (several matches: an error naming `what`)."""
        raw = str(name).strip()
        for candidate in (raw, strip_prefix(raw)):
            if candidate in self.names:
                return candidate
        key = canonical_name(strip_prefix(raw))
        matches = [d for d in self.names if canonical_name(d) == key]
        if len(matches) > 1:
            raise MixlawInputError(f"{what}: domain {name!r} is ambiguous: it matches {', '.join(matches)}")
        return matches[0] if matches else None

    def resolve(self, name: str, what: str = "mixture") -> str:
        found = self.find(name, what)
        if found is None:
            raise MixlawInputError(
                f"{what}: unknown domain {strip_prefix(str(name))!r} (training domains: {', '.join(self.names)})"
            )
        return found

    def index(self, name: str, what: str = "mixture") -> int:
        return self.names.index(self.resolve(name, what))


# --------------------------------------------------------------------------------------------- one mixture


def _number(value: Any, name: str, source: str) -> float:
    if isinstance(value, bool) or value is None:
        raise MixlawInputError(f"{source}: {name}: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MixlawInputError(f"{source}: {name}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise MixlawInputError(f"{source}: {name}: {value!r} is not a finite number")
    return number


def check_shares(
    names: Sequence[str],
    values: Sequence[float],
    source: str = "mixture",
    renormalize: bool = False,
    hint: str | None = RENORMALIZE_HINT,
) -> tuple[float, ...]:
    """Validate the shares of one mixture: each in [0, 1], summing to 1 within SUM_TOLERANCE.

    With `renormalize`, a sum off by more than the tolerance is rescaled (with a warning); without it, it is an
    error `<source>: proportions sum to <sum>, not 1` (plus `hint`). Returns the shares (rescaled or as given).
    """
    x = np.array([_number(v, n, source) for n, v in zip(names, values)], dtype=float)
    for name, v in zip(names, x):
        if v < 0 or (v > 1 and not renormalize):
            raise MixlawInputError(f"{source}: {name}: proportion {v:g} outside [0, 1]")
    total = float(x.sum())
    if abs(total - 1) > SUM_TOLERANCE:
        if not renormalize:
            raise MixlawInputError(
                f"{source}: proportions sum to {total:.10g}, not 1" + (f" ({hint})" if hint else "")
            )
        if total <= 0:
            raise MixlawInputError(f"{source}: proportions are all zero")
        log.warning("%s: renormalized proportions that summed to %.10g", source, total)
        x = x / total
    return tuple(float(v) for v in x)


@dataclass(frozen=True)
class Mixture:
    """One validated mixture: `domains` (names) and their `shares` (fractions of training tokens, sum 1).

    Build it with a `from_*` constructor or `parse`; shares are checked on construction (never rescaled unless
    `renormalize=True` is asked for). `source` names where it came from in error messages; it is not part of
    equality.
    """

    domains: tuple[str, ...]
    shares: tuple[float, ...]
    source: str = field(default="mixture", compare=False)

    def __post_init__(self):
        object.__setattr__(self, "domains", tuple(str(d) for d in self.domains))
        if len(self.domains) != len(self.shares):
            raise MixlawInputError(
                f"{self.source}: {len(self.shares)} shares for {len(self.domains)} domains"
            )
        if not self.domains:
            raise MixlawInputError(f"{self.source}: empty mixture")
        if len(set(self.domains)) != len(self.domains):
            twice = sorted({d for d in self.domains if self.domains.count(d) > 1})
            raise MixlawInputError(f"{self.source}: domain(s) given twice: {', '.join(twice)}")
        object.__setattr__(self, "shares", check_shares(self.domains, self.shares, self.source))

    # ----------------------------------------------------------------------------------------- constructors

    @classmethod
    def from_dict(
        cls,
        mapping: Mapping[str, Any],
        domains: Sequence[str] | None = None,
        source: str = "mixture",
        renormalize: bool = False,
        hint: str | None = RENORMALIZE_HINT,
    ) -> Mixture:
        """From {domain or p_domain: share}. With `domains`, names resolve onto them (any spelling, see
        `Domains`), unknown names are an error and missing domains get 0; without, the keys (prefix removed)
        are the domains, in order."""
        if not isinstance(mapping, Mapping) or not mapping:
            raise MixlawInputError(f"{source}: expected a mapping domain -> proportion, got {mapping!r}")
        known = Domains(domains) if domains is not None else None
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            name = known.resolve(str(key), source) if known is not None else strip_prefix(str(key))
            if name in values:
                raise MixlawInputError(f"{source}: domain {name!r} given twice")
            values[name] = value
        names = list(known) if known is not None else list(values)
        shares = [values.get(d, 0.0) for d in names]
        return cls(tuple(names), check_shares(names, shares, source, renormalize, hint), source)

    @classmethod
    def from_string(
        cls,
        text: str,
        domains: Sequence[str] | None = None,
        source: str = "mixture",
        renormalize: bool = False,
        hint: str | None = RENORMALIZE_HINT,
    ) -> Mixture:
        """From `name=value,name=value` text (as on the command line)."""
        pairs: dict[str, str] = {}
        for item in str(text).split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise MixlawInputError(
                    f"{source}: expected name=value pairs separated by commas, got {item.strip()!r}"
                )
            name, value = (s.strip() for s in item.split("=", 1))
            if name in pairs:
                raise MixlawInputError(f"{source}: domain {name!r} given twice")
            pairs[name] = value
        if not pairs:
            raise MixlawInputError(f"{source}: empty mixture (expected name=value pairs)")
        return cls.from_dict(pairs, domains, source, renormalize, hint)

    @classmethod
    def from_array(
        cls,
        values: Any,
        domains: Sequence[str],
        source: str = "mixture",
        renormalize: bool = False,
        hint: str | None = RENORMALIZE_HINT,
    ) -> Mixture:
        """From shares (M,) in the order of `domains`."""
        try:
            x = np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError):
            raise MixlawInputError(f"{source}: {values!r} is not a list of numbers") from None
        if len(x) != len(domains):
            raise MixlawInputError(f"{source}: expected {len(domains)} shares, got {len(x)}")
        names = list(domains)
        return cls(tuple(names), check_shares(names, x.tolist(), source, renormalize, hint), source)

    @classmethod
    def from_pairs(cls, pairs: Iterable[Sequence[Any]], source: str = "mixture") -> Mixture:
        """From ((domain, share), ...) as `RunSpec.mixture` holds them (and spec.json stores them)."""
        items = [(str(d), s) for d, s in pairs]
        names = [d for d, _ in items]
        return cls(tuple(names), check_shares(names, [s for _, s in items], source, hint=None), source)

    @classmethod
    def from_weights(cls, weights: Mapping[str, float], source: str = "mixture") -> Mixture:
        """Shares proportional to non-negative `weights` (token counts, `1.0` each for uniform): the one place
        where rescaling is the intent rather than a repair."""
        names = [str(k) for k in weights]
        w = np.array([_number(v, n, source) for n, v in zip(names, weights.values())], dtype=float)
        if (w < 0).any() or w.sum() <= 0:
            raise MixlawInputError(f"{source}: weights must be >= 0 and not all zero, got {dict(weights)}")
        return cls(tuple(names), tuple(float(v) for v in w / w.sum()), source)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        domains: Sequence[str] | None = None,
        renormalize: bool = False,
        hint: str | None = RENORMALIZE_HINT,
    ) -> Mixture:
        """From a JSON/YAML file (a mapping, or an object with a `mixture` mapping: optimum.json) or a table
        (CSV/Parquet/JSONL) with one row of `p_<domain>` columns."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            return cls.from_record(read_json(path, "mixture"), domains, str(path), renormalize, hint)
        if suffix in (".yaml", ".yml"):
            return cls.from_record(read_yaml(path, "mixture"), domains, str(path), renormalize, hint)
        frame = read_table(path, "mixture")
        if len(frame) != 1:
            raise MixlawInputError(f"{path}: expected one mixture row, found {len(frame)}")
        row = {c: frame[c].iloc[0] for c in prefixed_columns(frame.columns)}
        if not row:
            raise MixlawInputError(f"{path}: no p_<domain> columns")
        return cls.from_dict(row, domains, str(path), renormalize, hint)

    @classmethod
    def from_record(
        cls,
        data: Any,
        domains: Sequence[str] | None = None,
        source: str = "mixture",
        renormalize: bool = False,
        hint: str | None = RENORMALIZE_HINT,
    ) -> Mixture:
        """From a parsed JSON/YAML object: `{"mixture": {...}}` (optimum.json), `{"optimum": {...}}` (the
        demo) or a plain {domain: share} mapping."""
        if isinstance(data, list):  # Olmix's result file: [{"domain": ..., "weight": ...}, ...]
            return cls.from_dict(olmix_shares(data, source), domains, source, renormalize, hint)
        if not isinstance(data, Mapping):
            raise MixlawInputError(f"{source}: expected a JSON object with a 'mixture' field")
        raw = data.get("mixture", data.get("optimum"))
        plain = data and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data.values())
        # a plain mapping names at least two domains or uses p_ keys: {"x": 1} is a stray object, not a mixture
        if raw is None and plain and (len(data) >= 2 or all(str(k).startswith(PREFIX) for k in data)):
            raw = data
        if not isinstance(raw, Mapping) or not raw:
            raise MixlawInputError(f"{source}: no 'mixture' object of {{\"p_<domain>\": share}}")
        return cls.from_dict(raw, domains, source, renormalize, hint)

    @classmethod
    def parse(
        cls,
        spec: Any,
        domains: Sequence[str] | None = None,
        source: str = "mixture",
        renormalize: bool = False,
        hint: str | None = RENORMALIZE_HINT,
    ) -> Mixture:
        """Any supported form: a Mixture, a mapping, `name=value,...` text, a file path, or an array (needs
        `domains`)."""
        if isinstance(spec, Mixture):
            return spec if domains is None else spec.reorder(domains, source)
        if isinstance(spec, Mapping):
            return cls.from_dict(spec, domains, source, renormalize, hint)
        if isinstance(spec, Path) or (
            isinstance(spec, str) and "=" not in spec and spec.strip().lower().endswith(FILE_SUFFIXES)
        ):
            return cls.from_file(spec, domains, renormalize, hint)
        if isinstance(spec, str):
            return cls.from_string(spec, domains, source, renormalize, hint)
        if domains is None:
            raise MixlawInputError(f"{source}: an array of shares needs the list of domains")
        return cls.from_array(spec, domains, source, renormalize, hint)

    # ----------------------------------------------------------------------------------------- views

    def as_dict(self) -> dict[str, float]:
        """{domain: share}."""
        return dict(zip(self.domains, self.shares))

    def p_columns(self) -> dict[str, float]:
        """{"p_<domain>": share}: the runs-table / optimum.json form."""
        return {column(d): s for d, s in zip(self.domains, self.shares)}

    def pairs(self) -> tuple[tuple[str, float], ...]:
        """((domain, share), ...): the form of `RunSpec.mixture`."""
        return tuple(zip(self.domains, self.shares))

    def as_array(self, domains: Sequence[str] | None = None) -> np.ndarray:
        """Shares (M,) in the order of `domains` (default its own); domains it lacks are 0. A domain of the
        mixture with a share > 0 that is not in `domains` is an error."""
        if domains is None:
            return np.array(self.shares, dtype=float)
        return np.array(self.reorder(domains).shares, dtype=float)

    def reorder(self, domains: Sequence[str], source: str | None = None) -> Mixture:
        """The same mixture over `domains` (names resolved as in `Domains`; missing ones 0)."""
        known = Domains(domains)
        values: dict[str, float] = {}
        for d, s in zip(self.domains, self.shares):
            name = known.find(d)
            if name is None:
                if s > 0:
                    raise MixlawInputError(
                        f"{source or self.source}: unknown domain {d!r} (training domains: {', '.join(known)})"
                    )
                continue
            if name in values:
                raise MixlawInputError(f"{source or self.source}: domain {name!r} given twice ({d!r})")
            values[name] = s
        return Mixture(tuple(known), tuple(values.get(d, 0.0) for d in known), source or self.source)

    def rounded(self, decimals: int = DECIMALS) -> Mixture:
        """Shares rounded to `decimals` that still sum to 1: the remainder goes to the largest share.

        (The run mixtures of `mixlaw run`: their values are part of each RunSpec's content hash, so this
        arithmetic must not change.)"""
        values = np.round(np.array(self.shares, dtype=float), decimals)
        values[int(np.argmax(values))] += 1.0 - values.sum()
        return Mixture(self.domains, tuple(float(round(v, decimals + 2)) for v in values), self.source)

    def __str__(self) -> str:
        return ", ".join(f"{d}={s:g}" for d, s in zip(self.domains, self.shares))


# --------------------------------------------------------------------------------------------- many mixtures


def row_label(index: int, source: str) -> str:
    """Where row `index` (0-based data row) is: `line N` of a CSV (line 1 is the header), else `row N`."""
    return f"line {index + 2}" if source.endswith(".csv") else f"row {index + 1}"


def numeric_column(series: pd.Series, name: str, source: str) -> pd.Series:
    """`series` as numbers; a non-numeric or non-finite value is an error naming its line and column."""
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise MixlawInputError(
            f"{source}: {row_label(i, source)}: column {name}: non-numeric value {series.iloc[i]!r}"
        )
    finite = np.isfinite(values.to_numpy(dtype=float))
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise MixlawInputError(
            f"{source}: {row_label(i, source)}: column {name}: non-finite value {series.iloc[i]!r}"
        )
    return values


def check_unique_columns(frame: pd.DataFrame, source: str) -> None:
    """Refuse two columns whose names differ only by surrounding whitespace (`p_a` and `p_a `): which one is
    meant is ambiguous, and either would silently be dropped or misread."""
    seen: dict[str, Any] = {}
    for name in frame.columns:
        key = str(name).strip()
        if key in seen:
            raise MixlawInputError(
                f"{source}: column {key!r} appears twice (the names differ only by whitespace)"
            )
        seen[key] = name


def check_table(
    frame: pd.DataFrame, source: str, renormalize: bool = False, required: list[str] | None = None
) -> pd.DataFrame:
    """Validate the `p_` columns of a table (runs table, mixtures file): numeric, finite, in [0, 1], each row
    summing to 1 within SUM_TOLERANCE (or rescaled with `renormalize`). Errors name the line and column.

    `required` lists the exact `p_` columns the table must have (a law's domains). Returns a copy whose rows are
    divided by their sums (so rows within the tolerance sum to 1 exactly, as the runs table always did)."""
    check_unique_columns(frame, source)
    columns = prefixed_columns(frame.columns)
    if not columns:
        raise MixlawInputError(f"{source}: no mixture columns (expected p_<domain> columns)")
    if required is not None:
        missing = [c for c in required if c not in columns]
        unknown = [c for c in columns if c not in required]
        if missing:
            raise MixlawInputError(f"{source}: missing training domain column(s) {', '.join(missing)}")
        if unknown:
            raise MixlawInputError(
                f"{source}: unknown training domain column(s) {', '.join(unknown)}; expected {', '.join(required)}"
            )
    frame = frame.copy()
    for name in columns:
        frame[name] = numeric_column(frame[name], name, source)
    values = frame[columns].to_numpy(dtype=float)
    bad = np.argwhere((values < 0) | (values > 1))
    if len(bad):
        i, j = bad[0]
        raise MixlawInputError(
            f"{source}: {row_label(i, source)}: column {columns[j]}: proportion {values[i, j]} outside [0, 1]"
        )
    sums = values.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1) > SUM_TOLERANCE)
    if len(off):
        if not renormalize:
            i = off[0]
            raise MixlawInputError(
                f"{source}: {row_label(i, source)}: proportions sum to {sums[i]:.10g}, not 1 "
                f"({len(off)} row(s) affected; pass --renormalize to rescale them)"
            )
        if np.any(sums[off] <= 0):
            i = off[np.argmax(sums[off] <= 0)]
            raise MixlawInputError(f"{source}: {row_label(i, source)}: proportions are all zero")
        log.warning("%s: renormalized %d row(s) whose proportions did not sum to 1", source, len(off))
    frame[columns] = values / sums[:, None]
    return frame


def to_p_columns(frame: pd.DataFrame, domains: Sequence[str], source: str = "mixtures") -> pd.DataFrame:
    """Rename the columns of `frame` that name one of `domains` (`web`, `p_web`, `p_Web`, ...) to `p_<domain>`.

    Other columns are kept as they are; two columns naming the same domain are an error."""
    known = Domains(domains)
    renames: dict[str, str] = {}
    for name in frame.columns:
        found = known.find(str(name))
        if found is None:
            continue
        target = column(found)
        if target in renames.values():
            raise MixlawInputError(f"{source}: two columns for domain {found!r}")
        renames[name] = target
    return frame.rename(columns=renames)


def mixtures_array(
    mixtures: Any, domains: Sequence[str], source: str = "mixtures", renormalize: bool = False
) -> np.ndarray:
    """(n, M) shares in `domains` order from a DataFrame (or a list of mappings, or one mapping) with
    `p_<domain>` or domain-name columns, an (n, M) / (M,) array, or a file path (CSV/Parquet/JSONL).

    Every domain must have a column; rows are checked by `check_table` (errors name the row)."""
    if isinstance(mixtures, (str, Path)):
        source = str(mixtures)
        mixtures = read_table(mixtures, "mixtures")
    if isinstance(mixtures, Mixture):
        mixtures = [mixtures.p_columns()]
    if isinstance(mixtures, Mapping):
        mixtures = [mixtures]
    if isinstance(mixtures, list) and mixtures and isinstance(mixtures[0], Mapping):
        mixtures = pd.DataFrame(mixtures)
    columns = [column(d) for d in domains]
    if isinstance(mixtures, pd.DataFrame):
        frame = to_p_columns(mixtures, domains, source)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MixlawInputError(f"{source}: missing column(s) {', '.join(missing)}")
        frame = frame[prefixed_columns(frame.columns)]  # other p_ columns: unknown domains, an error below
    else:
        try:
            X = np.atleast_2d(np.asarray(mixtures, dtype=float))
        except (TypeError, ValueError):
            raise MixlawInputError(f"{source}: not a table or an array of shares") from None
        if X.ndim != 2 or X.shape[1] != len(domains):
            raise MixlawInputError(
                f"{source}: {X.shape[-1]} shares per mixture, the law has {len(domains)} domains"
            )
        frame = pd.DataFrame(X, columns=columns)
    return check_table(frame, source, renormalize, required=columns)[columns].to_numpy(dtype=float)


def mixture_keys(proportions: np.ndarray) -> list[tuple[float, ...]]:
    """Hashable identity of each mixture row (rounded to DECIMALS), shape (n, M) -> n tuples."""
    return [tuple(row) for row in np.round(proportions, DECIMALS)]


def as_mixture_list(X: np.ndarray, domains: Sequence[str]) -> list[dict[str, float]]:
    """Rows of X (n, M) as {domain: share} mappings (the design functions' return form)."""
    return [{d: float(v) for d, v in zip(domains, row)} for row in np.atleast_2d(X)]
