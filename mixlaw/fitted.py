"""From a runs table to a fitted law and back: selection, targets, explicit aggregation, LAW.json.

data = prepare(read_runs("5mix.csv"), model="70M", step=30000, valid_weights="w.csv", group="pile_category")
fitted = fit_law(data, "dml")      # one named law; "a name or auto" is mixlaw.selection.fit_law_or_auto
fitted.predict_frame(mixtures)     # pred_<target> columns and pred_total
fitted.save("law.json"); FittedLaw.load("law.json")
"""

from __future__ import annotations

import base64
import logging
import platform
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json, read_json
from mixlaw.laws import FitContext, MixingLaw, get_law, law_from_dict
from mixlaw.mixture import Domains, check_table, column, mixture_keys, to_p_columns
from mixlaw.outputs import portable_path
from mixlaw.runs import RunsTable, Weights, aggregate, check_selection, load_weights, read_table
from mixlaw.scale_error import check_record
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

    @classmethod
    def from_wide(
        cls,
        wide: pd.DataFrame,
        weights: Weights,
        domains: list[str],
        targets: list[str] | None = None,
        total_weights: dict[str, float] | None = None,
        selection: dict[str, Any] | None = None,
        data_hash: str = "",
        source: str = "runs",
        total_column: str | None = None,
    ) -> FitData:
        """From a wide frame: one row per checkpoint, `p_<domain>` columns and a loss column per target.

        `targets` defaults to the groups of `weights`. The total is the `total_column` when given (`total`, as
        `runs.aggregate` writes it), else sum over targets of `total_weights` (default the group weights) x
        target loss. A missing column is a one-line error naming `source`."""
        targets = list(weights.groups) if targets is None else list(targets)
        columns = [column(d) for d in domains]
        needed = [*columns, *targets, *([total_column] if total_column else [])]
        missing = [c for c in needed if c not in wide.columns]
        if missing:
            raise MixlawInputError(f"{source}: missing column(s) {', '.join(missing)}")
        if total_column:
            total = wide[total_column].to_numpy(dtype=float)
        else:
            tw = weights.group_weight if total_weights is None else total_weights
            total = sum(tw[t] * wide[t].to_numpy(dtype=float) for t in targets)
        return cls(
            X=wide[columns].to_numpy(dtype=float),
            Y=wide[targets].to_numpy(dtype=float),
            total=np.asarray(total, dtype=float),
            targets=targets,
            domains=list(domains),
            weights=weights,
            frame=wide.reset_index(drop=True),
            selection=dict(selection or {}),
            data_hash=data_hash,
            source=source,
        )

    @classmethod
    def from_table(
        cls,
        table: RunsTable,
        weights: Weights | str | None = None,
        group: str | None = None,
        domains: list[str] | None = None,
        model: str | None = None,
        params: float | None = None,
        step: float | None = None,
        tokens: float | None = None,
        step_tol: float | None = 0.0,
        train_domains: list[str] | None = None,
        valid_domains: list[str] | None = None,
        metric: str | None = None,
    ) -> FitData:
        """Select one model size and one checkpoint of a runs table, aggregate its validation domains into
        targets and a total.

        `weights`: a Weights, or a valid-weights file / `uniform` / None (read with `group`). `domains`: the
        training domains in the order wanted (default the table's); a law's domains the table lacks are an
        error."""
        check_selection(params=params, step=step, tokens=tokens, step_tol=step_tol)
        selected = table.select(
            model=model,
            params=params,
            train_domains=train_domains,
            valid_domains=valid_domains,
            metric=metric,
        )
        if "model" in selected.frame.columns:
            selected.require_single("model", "--model")
        else:
            selected.require_single("params", "--params")
        if not isinstance(weights, Weights):
            weights = load_weights(weights, selected.valid_domains, group)
        if step is not None or tokens is not None:
            selected = selected.select(
                step=step,
                tokens=tokens,
                step_tol=step_tol or 0.0,
                complete_domains=list(weights.domain_weight),
            )
        else:
            for name, flag in (("step", "--step"), ("tokens", "--tokens")):
                selected.require_single(name, flag)
        wide = aggregate(selected, weights)
        if domains is None:
            domains = selected.domains
        missing = [column(d) for d in domains if column(d) not in wide.columns]
        if missing:
            raise MixlawInputError(
                f"{table.source}: missing training domain column(s) {', '.join(missing)} of the law"
            )
        selection = {
            "model": model,
            "params": params,
            "step": step,
            "tokens": tokens,
            "step_tol": step_tol or None,
            "train_domains": train_domains,
            "valid_domains": valid_domains,
            "metric": metric,
        }
        return cls.from_wide(
            wide,
            weights,
            list(domains),
            selection={k: v for k, v in selection.items() if v is not None},
            data_hash=table.data_hash(),
            source=table.source,
            total_column="total",
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
    """Select one model size and one checkpoint, aggregate validation domains into targets and a total
    (`FitData.from_table`)."""
    return FitData.from_table(
        table,
        valid_weights,
        group,
        model=model,
        params=params,
        step=step,
        tokens=tokens,
        step_tol=step_tol,
        train_domains=train_domains,
        valid_domains=valid_domains,
        metric=metric,
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
        return [column(d) for d in self.domains]

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
        mixtures = to_p_columns(mixtures, self.domains, source)
        checked = check_table(mixtures, source, renormalize, required=self.domain_columns)
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
            **(
                {"observed_mixtures": pack_mixtures(self.meta["observed_mixtures"])}
                if self.meta.get("observed_mixtures") is not None
                else {}
            ),
        }

    def save(self, path: str | Path) -> None:
        dump_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "law") -> FittedLaw:
        """The law stored by `to_dict`, validated: schema version, types and shapes of every section, the law's
        own hyper-parameters and parameters, and a trial prediction; a malformed file is a one-line
        MixlawInputError naming `source` and the key."""
        if not isinstance(data, dict):
            raise MixlawInputError(f"{source}: not a mixlaw law file (expected a JSON object)")
        for key in ("law", "params", "domains", "targets"):
            if key not in data:
                raise MixlawInputError(f"{source}: not a mixlaw law file (missing {key!r})")
        version = data.get("schema_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise MixlawInputError(f"{source}: schema_version must be an integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise MixlawInputError(
                f"{source}: written by a newer mixlaw (schema version {version}; this one reads up to "
                f"{SCHEMA_VERSION}); upgrade mixlaw"
            )
        if not isinstance(data["law"], str):
            raise MixlawInputError(f"{source}: law must be a law name, got {data['law']!r}")
        domains = _names(data["domains"], "domains", source)
        targets = _names(data["targets"], "targets", source)
        total_weights = data.get("total_weights")
        if total_weights is not None:
            if not isinstance(total_weights, dict) or set(total_weights) != set(targets):
                raise MixlawInputError(
                    f"{source}: total_weights must map each target ({', '.join(targets)}) to a weight"
                )
            for target, weight in total_weights.items():
                if (
                    isinstance(weight, bool)
                    or not isinstance(weight, (int, float))
                    or not np.isfinite(weight)
                ):
                    raise MixlawInputError(
                        f"{source}: total_weights.{target} must be a finite number, got {weight!r}"
                    )
        n_domains = data.get("n_domains")
        if n_domains is not None and n_domains != len(domains):
            raise MixlawInputError(
                f"{source}: the law was fitted on {n_domains} domains but domains lists {len(domains)} "
                f"({', '.join(domains)})"
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
        if isinstance(meta.get("observed_mixtures"), dict):  # packed (older files hold a list of lists)
            meta["observed_mixtures"] = unpack_mixtures(meta["observed_mixtures"], source)
        if "scale_uncertainty" in meta:  # target-scale laws of the pipeline (older files have none)
            meta["scale_uncertainty"] = check_record(meta["scale_uncertainty"], source)
        try:
            law = law_from_dict(data)
        except MixlawInputError as exc:
            raise MixlawInputError(f"{source}: {exc}") from None
        fitted = cls(law, domains, targets, total_weights, meta)
        if (
            law.params_ is not None and type(law)._inputs is MixingLaw._inputs
        ):  # proportion laws: one trial prediction
            fitted._check_prediction(source)
        return fitted

    def _check_prediction(self, source: str) -> None:
        """Predict the uniform mixture once: parameters a hand edit broke (missing, wrong type or shape, fitted on
        other domains or targets) fail here, as one line naming the file, instead of later as a traceback."""
        uniform = np.full((1, len(self.domains)), 1.0 / len(self.domains))
        try:
            with np.errstate(all="ignore"):
                Y = np.asarray(self.law.predict(uniform), dtype=float)
        except MixlawInputError as exc:
            raise MixlawInputError(f"{source}: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            what = f"missing {exc.args[0]!r}" if isinstance(exc, KeyError) and exc.args else str(exc)
            raise MixlawInputError(
                f"{source}: params do not fit law {self.law.name} on domains {', '.join(self.domains)} ({what})"
            ) from None
        if Y.shape != (1, len(self.targets)):
            raise MixlawInputError(
                f"{source}: law {self.law.name} predicts {Y.shape[-1]} target(s) but targets lists "
                f"{len(self.targets)} ({', '.join(self.targets)})"
            )

    @classmethod
    def load(cls, path: str | Path) -> FittedLaw:
        return cls.from_dict(read_json(path, "law"), str(path))


def _names(value: Any, key: str, source: str) -> list[str]:
    """A law file's list of domain or target names: non-empty, strings, no repeats."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise MixlawInputError(f"{source}: {key} must be a non-empty list of names, got {value!r:.80}")
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise MixlawInputError(f"{source}: {key}: repeated name(s) {', '.join(repeated)}")
    return list(value)


def pack_mixtures(X: Any) -> dict[str, Any]:
    """The observed mixtures (n, M) as one compressed block in LAW.json instead of n x M JSON numbers (2 MB at
    2,000 runs x 100 domains): zlib + base64 of little-endian uint32 shares in millionths when they lie on that
    grid (fit_law rounds them to 6 decimals), else of float64. Lossless; `unpack_mixtures` reverses it."""
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    micro = np.round(X * 1e6)
    on_grid = bool(np.array_equal(micro / 1e6, X) and (micro >= 0).all() and (micro < 2**32).all())
    raw = micro.astype("<u4").tobytes() if on_grid else X.astype("<f8").tobytes()
    return {
        "encoding": "zlib+base64",
        "dtype": "uint32" if on_grid else "float64",
        "scale": 1e-6 if on_grid else 1.0,
        "shape": list(X.shape),
        "data": base64.b64encode(zlib.compress(raw, 9)).decode("ascii"),
    }


def unpack_mixtures(packed: dict[str, Any], source: str = "law") -> list[list[float]]:
    """The list of observed mixtures from `pack_mixtures`' block."""
    try:
        dtype = {"uint32": "<u4", "float64": "<f8"}[packed["dtype"]]
        if packed.get("encoding") != "zlib+base64":
            raise KeyError("encoding")
        values = np.frombuffer(zlib.decompress(base64.b64decode(packed["data"])), dtype=dtype)
        X = values.astype(float).reshape(packed["shape"])
    except (KeyError, ValueError, TypeError, zlib.error) as exc:
        raise MixlawInputError(f"{source}: observed_mixtures: not a valid packed block ({exc})") from None
    if packed["dtype"] == "uint32":
        X = np.round(X * float(packed["scale"]), 6)  # back onto the 6-decimal grid it was packed from
    return X.tolist()


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
    target = Domains(data.targets).find(target, "--target") or target  # either spelling (math-prose)
    if target not in data.targets:
        raise MixlawInputError(f"--target {target}: unknown; available: total, {', '.join(data.targets)}")
    i = data.targets.index(target)
    return [target], data.Y[:, [i]]


def fit_context(data: FitData, targets: list[str]) -> FitContext:
    """What a law may need besides X and Y: the training domains, the fitted targets and each row's step."""
    steps = data.frame["step"].to_numpy(dtype=float) if "step" in data.frame.columns else None
    return FitContext(domains=list(data.domains), targets=list(targets), steps=steps)


def fit_law(
    data: FitData,
    law: str,
    hyper: dict[str, Any] | None = None,
    target: str | None = None,
    command: str | None = None,
) -> FittedLaw:
    """Fit the law named `law` (registry name) on `data`; returns a FittedLaw with provenance metadata.

    Choosing a law (`auto`) happens a floor above, in `mixlaw.selection.fit_law_or_auto`."""
    if law == "auto":
        raise MixlawInputError(
            "fit_law fits one named law; for auto use mixlaw.selection.fit_law_or_auto(data, 'auto', ...)"
        )
    law_class = get_law(law)
    names, Y = resolve_target(data, law_class, target)
    estimator = law_class(**(hyper or {})).fit(data.X, Y, fit_context(data, names))
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
        "data": {"source": portable_path(data.source), "sha256": data.data_hash},
        "mixlaw_version": __version__,
        "python": platform.python_version(),
    }
    if command:
        meta["command"] = command
    return FittedLaw(estimator, data.domains, names, total_weights, meta)


def read_mixtures(path: str, domains: list[str], renormalize: bool = False) -> pd.DataFrame:
    """A mixtures file (CSV/Parquet/JSONL with p_<domain> columns), validated against the law's domains."""
    frame = to_p_columns(read_table(path, "mixtures"), domains, path)
    check_table(frame, path, renormalize, required=[column(d) for d in domains])
    return frame
