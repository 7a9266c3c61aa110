"""From a runs table to a fitted law and back: selection, targets, explicit aggregation, LAW.json.

data = prepare(read_runs("5mix.csv"), model="70M", step=30000, valid_weights="w.csv", group="pile_category")
fitted = fit_law(data, "dml")
fitted.predict_frame(mixtures)     # pred_<target> columns and pred_total
fitted.save("law.json"); FittedLaw.load("law.json")
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import read_json
from mixlaw.laws import MixingLaw, get_law, law_from_dict
from mixlaw.laws.dml import DML2
from mixlaw.runs import (
    PROPORTION_PREFIX,
    RunsTable,
    Weights,
    aggregate,
    check_proportions,
    dump_json,
    load_weights,
    mixture_keys,
    read_table,
)
from mixlaw.version import __version__

SCHEMA_VERSION = 1


@dataclass
class FitData:
    """The selected, aggregated data a law is fitted on.

    X (n, M) proportions; Y (n, T) target losses (groups or validation domains); total (n,) weighted total;
    mixture_id (n,) integer id of each row's mixture (rows of one mixture share it: seeds, repeats).
    """

    X: np.ndarray
    Y: np.ndarray
    total: np.ndarray
    targets: list[str]
    domains: list[str]
    weights: Weights
    frame: pd.DataFrame
    selection: dict[str, Any]
    data_hash: str
    source: str

    @property
    def mixture_id(self) -> np.ndarray:
        keys = mixture_keys(self.X)
        index: dict[tuple, int] = {}
        return np.array([index.setdefault(k, len(index)) for k in keys])

    @property
    def n_mixtures(self) -> int:
        return len(set(mixture_keys(self.X)))

    def subset(self, rows: np.ndarray) -> FitData:
        return FitData(
            self.X[rows],
            self.Y[rows],
            self.total[rows],
            self.targets,
            self.domains,
            self.weights,
            self.frame.iloc[np.flatnonzero(rows) if rows.dtype == bool else rows].reset_index(drop=True),
            self.selection,
            self.data_hash,
            self.source,
        )


def prepare(
    table: RunsTable,
    model: str | None = None,
    params: float | None = None,
    step: float | None = None,
    tokens: float | None = None,
    step_tol: float = 0.0,
    valid_weights: str | None = None,
    group: str | None = None,
    train_domains: list[str] | None = None,
    valid_domains: list[str] | None = None,
    metric: str | None = None,
) -> FitData:
    """Select one model size and one checkpoint, aggregate validation domains into targets and a total."""
    selected = table.select(
        model=model, params=params, train_domains=train_domains, valid_domains=valid_domains, metric=metric
    )
    if "model" in selected.frame.columns:
        selected.require_single("model", "--model")
    else:
        selected.require_single("params", "--params")
    weights = load_weights(valid_weights, selected.valid_domains, group)
    if step is not None or tokens is not None:
        selected = selected.select(
            step=step, tokens=tokens, step_tol=step_tol, complete_domains=list(weights.domain_weight)
        )
    else:
        for column, flag in (("step", "--step"), ("tokens", "--tokens")):
            selected.require_single(column, flag)
    wide = aggregate(selected, weights)
    targets = list(weights.groups)
    columns = selected.domain_columns
    return FitData(
        X=wide[columns].to_numpy(dtype=float),
        Y=wide[targets].to_numpy(dtype=float),
        total=wide["total"].to_numpy(dtype=float),
        targets=targets,
        domains=[c[len(PROPORTION_PREFIX) :] for c in columns],
        weights=weights,
        frame=wide,
        selection={
            k: v
            for k, v in {
                "model": model,
                "params": params,
                "step": step,
                "tokens": tokens,
                "step_tol": step_tol or None,
                "train_domains": train_domains,
                "valid_domains": valid_domains,
                "metric": metric,
            }.items()
            if v is not None
        },
        data_hash=table.data_hash(),
        source=table.source,
    )


@dataclass
class FittedLaw:
    """A fitted law plus what it needs to be used: training domains, targets, aggregation weights, provenance."""

    law: MixingLaw
    domains: list[str]
    targets: list[str]
    total_weights: dict[str, float] | None  # weight of each target in the total; None = no total defined
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def domain_columns(self) -> list[str]:
        return [PROPORTION_PREFIX + d for d in self.domains]

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted loss per target and `total` (where defined), X (n, M) -> {name: (n,)}."""
        Y = self.law.predict(X)
        out = {t: Y[:, i] for i, t in enumerate(self.targets)}
        if self.total_weights is not None and "total" not in out:
            out["total"] = sum(self.total_weights[t] * out[t] for t in self.targets)
        return out

    def predict_total(self, X: np.ndarray) -> np.ndarray:
        prediction = self.predict(X)
        if "total" not in prediction:
            raise MixlawInputError("this law has no total (it was fitted on a single domain)")
        return prediction["total"]

    def predict_frame(
        self, mixtures: pd.DataFrame, source: str = "mixtures", renormalize: bool = False
    ) -> pd.DataFrame:
        """Validate a frame of `p_<domain>` columns and add `pred_<target>` / `pred_total` columns."""
        checked = check_proportions(mixtures, source, renormalize, required=self.domain_columns)
        out = mixtures.copy()
        out[self.domain_columns] = checked[self.domain_columns]
        for name, values in self.predict(checked[self.domain_columns].to_numpy(dtype=float)).items():
            out[f"pred_{name}"] = values
            self._warn_if_implausible(name, values, source)
        return out

    def _warn_if_implausible(self, name: str, values: np.ndarray, source: str) -> None:
        """Warn when predictions are not finite or lie far outside the losses the law was fitted on (more than
        twice their range beyond it): an unregularized law extrapolating wildly, not a prediction to trust."""
        span = (self.meta.get("loss_range") or {}).get(name)
        if span is None:
            return
        lo, hi = span
        margin = 2 * max(hi - lo, 1e-12)
        bad = ~np.isfinite(values) | (values < lo - margin) | (values > hi + margin)
        if bad.any():
            logging.getLogger("mixlaw").warning(
                f"{source}: {int(bad.sum())} pred_{name} value(s) far outside the fitted losses [{lo:.4g}, {hi:.4g}] "
                f"(e.g. row {int(np.flatnonzero(bad)[0]) + 1}: {values[bad][0]:.4g}); the law extrapolates there"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "mixing_law",
            **self.law.to_dict(),
            "domains": self.domains,
            "targets": self.targets,
            "total_weights": self.total_weights,
            **self.meta,
        }

    def save(self, path: str | Path) -> None:
        dump_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "law") -> FittedLaw:
        for key in ("law", "params", "domains", "targets"):
            if key not in data:
                raise MixlawInputError(f"{source}: not a mixlaw law file (missing {key!r})")
        if data.get("schema_version", 0) > SCHEMA_VERSION:
            raise MixlawInputError(
                f"{source}: schema version {data['schema_version']} is newer than this mixlaw"
            )
        known = {
            "schema_version",
            "kind",
            "law",
            "hyper",
            "n_domains",
            "params",
            "summary",
            "domains",
            "targets",
            "total_weights",
        }
        meta = {k: v for k, v in data.items() if k not in known}
        return cls(law_from_dict(data), data["domains"], data["targets"], data.get("total_weights"), meta)

    @classmethod
    def load(cls, path: str | Path) -> FittedLaw:
        return cls.from_dict(read_json(path, "law"), str(path))


def resolve_target(
    data: FitData, law_class: type[MixingLaw], target: str | None
) -> tuple[list[str], np.ndarray]:
    """Which columns the law is fitted on: all targets (explicit aggregation), `total`, or one target."""
    if target is None:
        target = "all" if law_class.per_target else "total"
    if target == "all":
        return list(data.targets), data.Y
    if target == "total":
        return ["total"], data.total[:, None]
    if target not in data.targets:
        raise MixlawInputError(f"--target {target}: unknown; available: total, {', '.join(data.targets)}")
    i = data.targets.index(target)
    return [target], data.Y[:, [i]]


def fit_law(
    data: FitData,
    law: str,
    hyper: dict[str, Any] | None = None,
    target: str | None = None,
    command: str | None = None,
) -> FittedLaw:
    """Fit law `law` (registry name) on `data`; returns a FittedLaw with provenance metadata."""
    if law == "auto":  # choose by cross-validation on `data` only (see mixlaw.selection)
        from mixlaw.selection import fit_auto

        return fit_auto(data, target=target, command=command, **(hyper or {}))
    law_class = get_law(law)
    names, Y = resolve_target(data, law_class, target)
    estimator = law_class(**(hyper or {}))
    if getattr(law_class, "wants_names", False):  # e.g. bimix maps targets to training domains by name
        estimator.target_names_, estimator.domain_names_ = list(names), list(data.domains)
    if getattr(law_class, "wants_steps", False) and "step" in data.frame.columns:
        estimator.steps_ = data.frame["step"].to_numpy(dtype=float)
    if isinstance(estimator, DML2):
        estimator.fit(
            data.X,
            Y,
            coordinates=[dml2_coordinate(data.domains, t, estimator.hyper["domain"]) for t in names],
        )
    else:
        estimator.fit(data.X, Y)
    total_weights = None
    if names == ["total"]:
        total_weights = None
    elif len(names) == len(data.targets):
        total_weights = data.weights.group_weight
    meta = {
        "weights": data.weights.to_dict(),
        "selection": data.selection,
        "fit_target": target or ("all" if law_class.per_target else "total"),
        "n_rows": int(len(data.X)),
        "n_mixtures": data.n_mixtures,
        # distinct training mixtures: the optimizer measures how far an optimum extrapolates from them
        "observed_mixtures": np.unique(np.round(data.X, 6), axis=0).tolist(),
        # range of each fitted target (and the total) to flag predictions far outside it
        "loss_range": {
            name: [float(np.min(col)), float(np.max(col))]
            for name, col in [*zip(names, Y.T), *([("total", data.total)] if total_weights else [])]
        },
        "data": {"source": data.source, "sha256": data.data_hash},
        "mixlaw_version": __version__,
        "python": platform.python_version(),
    }
    if command:
        meta["command"] = command
    return FittedLaw(estimator, data.domains, names, total_weights, meta)


def dml2_coordinate(domains: list[str], target: str, domain: str | None) -> int:
    """r of the two-domain law: the `domain` parameter, else the training domain named like the target, else
    the first domain."""

    def norm(name: str) -> str:
        return "".join(ch for ch in name.lower() if ch.isalnum())

    if domain is not None:
        if norm(str(domain)) not in [norm(d) for d in domains]:
            raise MixlawInputError(f"--param domain={domain}: not a training domain ({', '.join(domains)})")
        return [norm(d) for d in domains].index(norm(str(domain)))
    matches = [i for i, d in enumerate(domains) if norm(d) == norm(target)]
    return matches[0] if matches else 0


def read_mixtures(path: str, domains: list[str], renormalize: bool = False) -> pd.DataFrame:
    """A mixtures file (CSV/Parquet/JSONL with p_<domain> columns), validated against the law's domains."""
    frame = read_table(path, "mixtures")
    columns = [PROPORTION_PREFIX + d for d in domains]
    check_proportions(frame, path, renormalize, required=columns)
    return frame
