"""Readers of the optimizer's inputs (bounds, availability, fixed shares, objective, a mixture) from the files
and strings the command line takes, for API users too: each returns what `mixlaw.optimizer.optimize` accepts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import read_table
from mixlaw.mixture import mixtures_array, strip_prefix
from mixlaw.optimizer import parse_mixture


def read_bounds(path: str) -> dict[str, tuple[float | None, float | None]]:
    """Bounds per domain from a CSV `domain,lower,upper` (blank = 0 or 1; domain with or without p_)."""
    frame = read_table(path, "bounds")
    if "domain" not in frame.columns:
        raise MixlawInputError(f"{path}: missing column domain (expected domain,lower,upper)")
    if "lower" not in frame.columns and "upper" not in frame.columns:
        raise MixlawInputError(f"{path}: needs a lower and/or upper column")
    out = {}
    for i, row in frame.iterrows():
        values = []
        for column in ("lower", "upper"):
            value = row.get(column)
            if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
                values.append(None)
                continue
            try:
                values.append(float(value))
            except ValueError:
                raise MixlawInputError(
                    f"{path}: line {i + 2}: column {column}: non-numeric value {value!r}"
                ) from None
        name = strip_prefix(row["domain"])
        if name in out:
            raise MixlawInputError(f"{path}: domain {name} listed twice")
        out[name] = (values[0], values[1])
    return out


def read_available(path: str) -> dict[str, float]:
    """Tokens available per domain from a CSV `domain,tokens`."""
    frame = read_table(path, "available tokens")
    for column in ("domain", "tokens"):
        if column not in frame.columns:
            raise MixlawInputError(f"{path}: missing column {column} (expected domain,tokens)")
    out = {}
    for i, row in frame.iterrows():
        try:
            value = float(row["tokens"])
        except (TypeError, ValueError):
            raise MixlawInputError(
                f"{path}: line {i + 2}: column tokens: non-numeric value {row['tokens']!r}"
            ) from None
        if not np.isfinite(value) or value < 0:
            raise MixlawInputError(f"{path}: line {i + 2}: column tokens: expected a non-negative number")
        out[strip_prefix(row["domain"])] = value
    return out


def read_fixed(items: list[str] | None) -> dict[str, float]:
    """Fixed shares from `p_domain=value` strings (as `--fix` gives them)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MixlawInputError(f"--fix {item!r}: expected p_domain=value")
        name, value = (s.strip() for s in item.split("=", 1))
        try:
            out[strip_prefix(name)] = float(value)
        except ValueError:
            raise MixlawInputError(f"--fix {item}: {value!r} is not a number") from None
    return out


def read_objective(spec: str) -> str | dict[str, float]:
    """`total`, one target name, or a weights file `target,weight` -> {target: weight}."""
    if Path(spec).suffix.lower() not in (".csv", ".json", ".jsonl", ".parquet"):
        return spec
    frame = read_table(spec, "objective weights")
    name = next((c for c in ("target", "domain", "group", "valid_domain") if c in frame.columns), None)
    weight = next((c for c in ("weight", "valid_weight") if c in frame.columns), None)
    if name is None or weight is None:
        raise MixlawInputError(f"{spec}: expected columns target,weight")
    try:
        return {str(k): float(v) for k, v in zip(frame[name], frame[weight])}
    except ValueError:
        raise MixlawInputError(f"{spec}: column {weight}: non-numeric weight") from None


def read_mixture(spec: str | None, domains: list[str], what: str, renormalize: bool) -> np.ndarray | None:
    """A mixture given as a CSV file with one row of p_ columns, or `name=value,...` pairs."""
    if spec is None:
        return None
    if Path(spec).exists():
        X = mixtures_array(spec, domains, spec, renormalize)
        if len(X) != 1:
            raise MixlawInputError(f"{spec}: a {what} file must have exactly one data row, got {len(X)}")
        return X[0]
    if "=" not in spec:
        raise MixlawInputError(f"--{what} {spec}: not a file and not name=value pairs")
    return parse_mixture(spec, domains, f"--{what}", renormalize)


def tokens_per_step(frame: pd.DataFrame) -> float | None:
    """Tokens per step when the runs table has `tokens` and `step` columns in one constant ratio, else None."""
    if "tokens" not in frame.columns or "step" not in frame.columns:
        return None
    ratio = (frame["tokens"] / frame["step"].where(frame["step"] > 0)).dropna()
    if len(ratio) and np.allclose(ratio, ratio.iloc[0], rtol=1e-6):
        return float(ratio.iloc[0])
    return None
