"""The runs table: the one data model for experiment results.

Long format, one row per (run, checkpoint, validation domain):

    run, model, params, [params_total], [step], [tokens], [seed], p_<train_domain>..., valid_domain, loss

`loss` is lower-is-better (mean cross-entropy in nats per token for the built-in trainer). An optional
`metric` column names the measure when a file holds several; select one with `metric=`. Extra columns are
kept. Column names of the Data Mixing Laws paper's published data (`model_size`, `model_params`) are accepted.

Everything that reads results (fitting, evaluation, the pipeline, reports) goes through `read_runs`,
`select` and `aggregate` here, and everything that writes one through `write_runs`, so validation and
selection rules are the same everywhere. The mixture columns are checked by `mixlaw.mixture.check_table`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import (  # noqa: F401 (dump_json, to_jsonable, read_table moved to files.py; re-exported)
    dump_json,
    read_table,
    replacing,
    to_jsonable,
)
from mixlaw.mixture import (  # noqa: F401 (SUM_TOLERANCE, mixture_keys: re-exported for existing importers)
    DECIMALS,
    PREFIX,
    SUM_TOLERANCE,
    Domains,
    check_table,
    check_unique_columns,
    mixture_keys,
    numeric_column,
    prefixed_columns,
    row_label,
    strip_prefix,
)

log = logging.getLogger(__name__)

PROPORTION_PREFIX = PREFIX  # the runs-table column of a training domain: p_<domain> (see mixlaw.mixture)
MIXTURE_DECIMALS = DECIMALS  # mixtures equal after rounding to this many decimals are the same mixture
COLUMN_ALIASES = {"model_size": "model", "model_params": "params"}
NUMERIC_COLUMNS = ("params", "params_total", "step", "tokens", "seed", "loss")
CHECKPOINT_KEYS = ("model", "params", "step", "tokens")
# `metric` / `unit` values that mean the loss is a cross-entropy (nats or bits per token): such losses (and those
# of a table without either column) must be > 0; other metrics (accuracy, perplexity deltas...) are only finite.
CROSS_ENTROPY_NAMES = frozenset(
    ("", "nan", "loss", "ce", "xent", "cross_entropy", "cross-entropy", "nll", "nats", "bits", "bpb", "bpc")
)
PLAUSIBLE_LOSS = 100.0  # nats per token: above it a warning (uniform over a 2^40-token vocabulary is ~28)
IMPOSSIBLE_LOSS = 1e4  # above it an error: a probability of e^-10000 on every token is no trained model


# --------------------------------------------------------------------------------------------- validation


def domain_columns(frame: pd.DataFrame) -> list[str]:
    """The `p_<domain>` columns, in file order."""
    return prefixed_columns(frame.columns)


# The mixture columns are validated by the one mixture module; these names stay for existing callers.
check_proportions = check_table
_numeric = numeric_column
_line = row_label


def validate_runs(frame: pd.DataFrame, source: str = "runs", renormalize: bool = False) -> pd.DataFrame:
    """Check and canonicalize a raw runs table. Returns a new frame with canonical column names."""
    check_unique_columns(frame, source)
    frame = frame.rename(
        columns={k: v for k, v in COLUMN_ALIASES.items() if k in frame.columns and v not in frame.columns}
    )
    missing = [c for c in ("run", "valid_domain", "loss") if c not in frame.columns]
    if missing:
        raise MixlawInputError(
            f"{source}: missing column(s) {', '.join(missing)} (have: {', '.join(map(str, frame.columns))})"
        )
    for column in ("run", "valid_domain"):
        if frame[column].isna().any():
            i = int(np.flatnonzero(frame[column].isna().to_numpy())[0])
            raise MixlawInputError(f"{source}: {_line(i, source)}: column {column}: empty value")
        frame[column] = frame[column].astype(str)
    if "model" in frame.columns:
        frame["model"] = frame["model"].astype(str)
    for column in NUMERIC_COLUMNS:
        if column in frame.columns:
            frame[column] = _numeric(frame[column], column, source)
    _check_losses(frame, source)
    for column in ("params", "params_total", "step", "tokens", "seed"):
        if column in frame.columns and (frame[column] % 1 == 0).all():
            frame[column] = frame[column].astype(np.int64)
    frame = check_proportions(frame, source, renormalize)

    # Exact duplicate rows are harmless: drop them with a warning.
    duplicated = frame.duplicated(keep="first")
    if duplicated.any():
        log.warning("%s: dropped %d exact duplicate row(s)", source, int(duplicated.sum()))
        frame = frame.loc[~duplicated].reset_index(drop=True)

    # One run id is one mixture.
    columns = domain_columns(frame)
    rounded = frame[columns].round(MIXTURE_DECIMALS)
    per_run = rounded.assign(run=frame["run"]).drop_duplicates()
    clash = per_run["run"].duplicated(keep=False)
    if clash.any():
        run = per_run.loc[clash, "run"].iloc[0]
        mixtures = per_run.loc[per_run["run"] == run, columns].to_numpy()
        raise MixlawInputError(
            f"{source}: run {run!r} has two different mixtures: {_fmt_mix(mixtures[0], columns)} "
            f"and {_fmt_mix(mixtures[1], columns)}"
        )

    # The same observation key with two different losses is ambiguous.
    key = ["run", "valid_domain"] + [
        c for c in ("model", "params", "step", "tokens", "seed", "metric") if c in frame.columns
    ]
    conflict = frame.duplicated(subset=key, keep=False)
    if conflict.any():
        i = int(np.flatnonzero(conflict.to_numpy())[0])
        row = frame.iloc[i]
        where = ", ".join(f"{k}={row[k]}" for k in key)
        raise MixlawInputError(f"{source}: two different losses for the same observation ({where})")
    return frame


def _check_losses(frame: pd.DataFrame, source: str) -> None:
    """Cross-entropy losses (see CROSS_ENTROPY_NAMES) must be > 0 and below IMPOSSIBLE_LOSS; above
    PLAUSIBLE_LOSS is a warning. Finiteness is checked with the other numeric columns."""
    cross_entropy = np.ones(len(frame), dtype=bool)
    for name in ("metric", "unit"):
        if name in frame.columns:
            labels = frame[name].astype(str).str.strip().str.lower()
            cross_entropy &= labels.isin(CROSS_ENTROPY_NAMES).to_numpy()
    loss = frame["loss"].to_numpy(dtype=float)
    for bad, what in (
        (cross_entropy & (loss <= 0), "a cross-entropy must be > 0"),
        (
            cross_entropy & (loss > IMPOSSIBLE_LOSS),
            f"a cross-entropy above {IMPOSSIBLE_LOSS:g} nats per token",
        ),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise MixlawInputError(
                f"{source}: {_line(i, source)}: column loss: {loss[i]:g} is not a loss ({what}; "
                f"{int(bad.sum())} row(s); a metric or unit column names other measures)"
            )
    high = cross_entropy & (loss > PLAUSIBLE_LOSS)
    if high.any():
        i = int(np.flatnonzero(high)[0])
        log.warning(
            "%s: %s: column loss: %g nats per token is implausible for a cross-entropy (%d row(s) above %g); "
            "check the unit",
            source,
            _line(i, source),
            loss[i],
            int(high.sum()),
            PLAUSIBLE_LOSS,
        )


def _fmt_mix(values: np.ndarray, columns: list[str]) -> str:
    return "{" + ", ".join(f"{c}={v:g}" for c, v in zip(columns, values)) + "}"


# --------------------------------------------------------------------------------------------- the table


@dataclass
class RunsTable:
    """A validated runs table plus where it came from.

    `frame` has canonical columns; `domains` are the training domain names (without the `p_` prefix).
    """

    frame: pd.DataFrame
    source: str = "runs"
    notes: list[str] = field(default_factory=list)
    file_hash: str | None = None  # sha256 of the file's bytes (+ read options), set by `read_runs`

    @property
    def domain_columns(self) -> list[str]:
        return domain_columns(self.frame)

    @property
    def domains(self) -> list[str]:
        return [c[len(PROPORTION_PREFIX) :] for c in self.domain_columns]

    @property
    def valid_domains(self) -> list[str]:
        return sorted(self.frame["valid_domain"].unique())

    def data_hash(self) -> str:
        """sha256 identifying the exact data a law was fitted on: the file's bytes when the table was read from a
        file (hashed once by `read_runs`), else the frame's columns and row hashes (row order ignored)."""
        if self.file_hash:
            return self.file_hash
        rows = np.sort(pd.util.hash_pandas_object(self.frame, index=False).to_numpy())
        digest = hashlib.sha256("\x1f".join(map(str, self.frame.columns)).encode())
        digest.update(rows.tobytes())
        return digest.hexdigest()

    def select(
        self,
        model: str | None = None,
        params: float | None = None,
        step: float | None = None,
        tokens: float | None = None,
        step_tol: float = 0.0,
        train_domains: list[str] | None = None,
        valid_domains: list[str] | None = None,
        metric: str | None = None,
        complete_domains: list[str] | None = None,
    ) -> RunsTable:
        """Rows matching the selection. Nearest-checkpoint selection (`step_tol` > 0) picks, per run, the
        checkpoint nearest to `step` (or `tokens`) among those within the tolerance that have every domain of
        `complete_domains`."""
        check_selection(params=params, step=step, tokens=tokens, step_tol=step_tol)
        frame = self.frame
        frame = _filter_metric(frame, metric, self.source)
        if model is not None:
            frame = _filter_equal(frame, "model", str(model), self.source)
        if params is not None:
            frame = _filter_equal(frame, "params", params, self.source)
        if train_domains:
            frame = _filter_train_domains(frame, train_domains, self.source)
        if valid_domains:
            frame = _filter_values(frame, "valid_domain", valid_domains, self.source)
        if step is not None and tokens is not None:
            raise MixlawInputError("give --step or --tokens, not both")
        if step is not None or tokens is not None:
            column, target = ("step", step) if step is not None else ("tokens", tokens)
            frame = _select_checkpoint(frame, column, float(target), step_tol, complete_domains, self.source)
        return RunsTable(frame.reset_index(drop=True), self.source, list(self.notes))

    def require_single(self, column: str, flag: str) -> None:
        """Error (listing the values) if several values of `column` remain where one is needed."""
        if column not in self.frame.columns:
            return
        values = sorted(self.frame[column].unique(), key=_sort_key)
        if len(values) > 1:
            shown = ", ".join(map(str, values[:30])) + (" ..." if len(values) > 30 else "")
            raise MixlawInputError(
                f"{self.source}: several {column} values remain ({shown}); choose one with {flag}"
            )


def check_selection(
    params: float | None = None,
    step: float | None = None,
    tokens: float | None = None,
    step_tol: float | None = None,
) -> None:
    """The numbers that select rows of a runs table: finite, `params` > 0, the others >= 0; a bad one is a
    one-line error naming its flag (a NaN tolerance would silently select the exact checkpoint)."""
    for flag, value, positive in (
        ("--params", params, True),
        ("--step", step, False),
        ("--tokens", tokens, False),
        ("--step-tol", step_tol, False),
    ):
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MixlawInputError(f"{flag} {value!r}: expected a number") from None
        if not np.isfinite(number) or number < 0 or (positive and number == 0):
            raise MixlawInputError(
                f"{flag} {value!r}: expected a finite number {'>' if positive else '>='} 0"
            )


def _sort_key(value):
    return (0, float(value), "") if isinstance(value, (int, float, np.number)) else (1, 0.0, str(value))


def _available(frame: pd.DataFrame, column: str) -> str:
    values = sorted(frame[column].unique(), key=_sort_key)
    shown = ", ".join(map(str, values[:30])) + (" ..." if len(values) > 30 else "")
    return shown


def _filter_metric(frame: pd.DataFrame, metric: str | None, source: str) -> pd.DataFrame:
    if "metric" not in frame.columns:
        if metric is not None:
            raise MixlawInputError(f"{source}: --metric given but the table has no metric column")
        return frame
    if metric is None:
        values = frame["metric"].unique()
        if len(values) > 1:
            raise MixlawInputError(
                f"{source}: several metrics ({_available(frame, 'metric')}); choose one with --metric"
            )
        return frame
    return _filter_values(frame, "metric", [metric], source)


def _filter_equal(frame: pd.DataFrame, column: str, value, source: str) -> pd.DataFrame:
    if column not in frame.columns:
        raise MixlawInputError(f"{source}: cannot select by {column}: the table has no {column} column")
    if column == "params":
        kept = frame[np.isclose(frame[column].astype(float), float(value), rtol=1e-9)]
    else:
        kept = frame[frame[column].astype(str) == str(value)]
    if kept.empty:
        raise MixlawInputError(
            f"{source}: no rows with {column}={value}; available: {_available(frame, column)}"
        )
    return kept


def _filter_values(frame: pd.DataFrame, column: str, values: list[str], source: str) -> pd.DataFrame:
    if column == "valid_domain":  # either spelling of a domain (math-prose for math_prose)
        known = Domains(dict.fromkeys(frame[column].astype(str)))
        values = [known.find(v, f"--valid-domains {v}") or v for v in values]
    unknown = [v for v in values if v not in set(frame[column].astype(str))]
    if unknown:
        raise MixlawInputError(
            f"{source}: no rows with {column}={', '.join(unknown)}; available: {_available(frame, column)}"
        )
    return frame[frame[column].astype(str).isin(values)]


def _filter_train_domains(frame: pd.DataFrame, domains: list[str], source: str) -> pd.DataFrame:
    """Keep the runs whose mixture uses only `domains`, and drop the other (all-zero) p_ columns."""
    columns = domain_columns(frame)
    known = Domains(c[len(PROPORTION_PREFIX) :] for c in columns)
    found = [known.find(d) for d in domains]
    wanted = [PROPORTION_PREFIX + (f if f is not None else strip_prefix(d)) for d, f in zip(domains, found)]
    unknown = [w for w, f in zip(wanted, found) if f is None]
    if unknown:
        raise MixlawInputError(
            f"{source}: unknown training domain(s) {', '.join(unknown)}; available: {', '.join(columns)}"
        )
    others = [c for c in columns if c not in wanted]
    kept = frame[(frame[others] == 0).all(axis=1)] if others else frame
    if kept.empty:
        raise MixlawInputError(f"{source}: no run trains only on {', '.join(wanted)}")
    return kept.drop(columns=others)


def _select_checkpoint(
    frame: pd.DataFrame,
    column: str,
    target: float,
    tol: float,
    complete_domains: list[str] | None,
    source: str,
) -> pd.DataFrame:
    if column not in frame.columns:
        raise MixlawInputError(f"{source}: cannot select by {column}: the table has no {column} column")
    exact = frame[np.isclose(frame[column].astype(float), target, rtol=0, atol=1e-9)]
    if tol <= 0:
        if exact.empty:
            raise MixlawInputError(
                f"{source}: no checkpoint at {column}={target:g}; available: {_available(frame, column)} "
                f"(or use --step-tol for the nearest)"
            )
        return exact
    # Nearest complete checkpoint of each (run, model, seed) within the tolerance.
    group_keys = [c for c in ("run", "model", "params", "seed") if c in frame.columns]
    checkpoint_keys = group_keys + [column]
    checkpoints = frame.groupby(checkpoint_keys, sort=False)["valid_domain"].agg(set).reset_index()
    if complete_domains:
        needed = set(complete_domains)
        checkpoints = checkpoints[checkpoints["valid_domain"].map(lambda have: needed <= have)]
    checkpoints = checkpoints.assign(_distance=(checkpoints[column].astype(float) - target).abs())
    checkpoints = checkpoints[checkpoints["_distance"] <= tol]
    if checkpoints.empty:
        raise MixlawInputError(
            f"{source}: no complete checkpoint within {tol:g} of {column}={target:g}; available: {_available(frame, column)}"
        )
    nearest = checkpoints.sort_values("_distance", kind="stable").groupby(group_keys, sort=False).head(1)
    return frame.merge(nearest[checkpoint_keys], on=checkpoint_keys, how="inner")


def read_runs(path: str | Path, renormalize: bool = False) -> RunsTable:
    """Read and validate a runs table (CSV, Parquet or JSONL)."""
    source = str(path)
    table = RunsTable(validate_runs(read_table(path), source, renormalize), source)
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(b"renormalize" if renormalize else b"")  # the rescaled rows are different data
    table.file_hash = digest.hexdigest()
    return table


TRAINER_FLOAT_FORMAT = (
    "%.8g"  # CSV floats of the trainer's and the sweep's runs tables (byte-stable on resume)
)


def write_runs(frame: pd.DataFrame, path: str | Path, float_format: str | None = None) -> None:
    """Write a runs table atomically: CSV, Parquet or JSONL by extension. The one runs-table writer (commands,
    importers, the trainer's per-run result.csv, the sweep's runs.csv, `mixlaw run`).

    `float_format` applies to CSV: None writes full precision; the trainer and the sweep pass
    TRAINER_FLOAT_FORMAT (8 significant digits, far below seed noise, and the bytes a resumed sweep compares)."""
    suffix = Path(path).suffix.lower()
    with replacing(path) as tmp:
        if suffix in (".parquet", ".pq"):
            frame.to_parquet(tmp, index=False)
        elif suffix in (".jsonl", ".ndjson"):
            frame.to_json(tmp, orient="records", lines=True)
        else:
            frame.to_csv(tmp, index=False, float_format=float_format)


# --------------------------------------------------------------------------------------------- aggregation


@dataclass
class Weights:
    """How validation domains combine into targets (groups or single domains) and a total.

    `domain_weight[d]` sums to 1 over the weighted domains; `groups[g]` lists the domains of target g
    (a target is a single domain when no grouping is used). Group loss = weighted mean of its domains;
    total = sum over domains of weight x loss = sum over groups of group weight x group loss.
    """

    domain_weight: dict[str, float]
    groups: dict[str, list[str]]
    spec: str = "uniform"

    @property
    def group_weight(self) -> dict[str, float]:
        return {g: float(sum(self.domain_weight[d] for d in ds)) for g, ds in self.groups.items()}

    def to_dict(self) -> dict:
        return {
            "spec": self.spec,
            "domain_weight": self.domain_weight,
            "groups": self.groups,
            "group_weight": self.group_weight,
        }


def load_weights(spec: str | None, valid_domains: list[str], group: str | None = None) -> Weights:
    """Weights from a CSV (`valid_domain`, `valid_weight`, grouping columns) or `uniform` (also the default).

    Weights are renormalized over the weighted domains present; domains without a weight are left out with
    a warning. A domain of the file may be spelled any way that `Domains.find` maps onto one of `valid_domains`.
    """
    present = list(valid_domains)
    if spec is None or spec == "uniform":
        if group is not None:
            raise MixlawInputError("--group needs a --valid-weights file with that grouping column")
        weight = {d: 1.0 / len(present) for d in present}
        return Weights(weight, {d: [d] for d in present}, "uniform")
    table = read_table(spec, "valid-weights")
    for column in ("valid_domain", "valid_weight"):
        if column not in table.columns:
            raise MixlawInputError(f"{spec}: missing column {column} (have: {', '.join(table.columns)})")
    known = Domains(present)  # either spelling of a domain (math-prose for math_prose) names it
    table["valid_domain"] = [known.find(d, spec) or d for d in table["valid_domain"].astype(str)]
    table["valid_weight"] = _numeric(table["valid_weight"], "valid_weight", spec)
    if (table["valid_weight"] < 0).any():
        i = int(np.flatnonzero((table["valid_weight"] < 0).to_numpy())[0])
        raise MixlawInputError(f"{spec}: {_line(i, spec)}: column valid_weight: negative weight")
    if group is not None and group not in table.columns:
        options = [c for c in table.columns if c not in ("valid_domain", "valid_weight")]
        raise MixlawInputError(
            f"{spec}: no grouping column {group!r}; available: {', '.join(options) or 'none'}"
        )
    table = table[table["valid_weight"] > 0]
    unweighted = [d for d in present if d not in set(table["valid_domain"])]
    if unweighted:
        log.warning("validation domain(s) without a weight, left out of the total: %s", ", ".join(unweighted))
    table = table[table["valid_domain"].isin(present)]
    if table.empty:
        raise MixlawInputError(
            f"{spec}: none of the weighted domains is in the data; data has: {', '.join(present[:30])}"
        )
    total = float(table["valid_weight"].sum())
    weight = {d: float(w) / total for d, w in zip(table["valid_domain"], table["valid_weight"])}
    if group is None:
        groups = {d: [d] for d in weight}
    else:
        groups = {}
        for d, g in zip(table["valid_domain"], table[group].astype(str)):
            groups.setdefault(g, []).append(d)
    return Weights(weight, groups, str(spec))


def checkpoint_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that identify one checkpoint of one run (everything but the validation domain and loss)."""
    keys = ["run"] + [
        c for c in ("model", "params", "params_total", "step", "tokens", "seed") if c in frame.columns
    ]
    return keys + domain_columns(frame)


def aggregate(table: RunsTable, weights: Weights) -> pd.DataFrame:
    """Wide table: one row per checkpoint, a column per target (group or domain) and `total`.

    A checkpoint missing any weighted domain is dropped with a warning naming run and step.
    """
    frame = table.frame
    keys = checkpoint_columns(frame)
    needed = list(weights.domain_weight)
    wide = frame[frame["valid_domain"].isin(needed)].pivot_table(
        index=keys, columns="valid_domain", values="loss", aggfunc="first", sort=False
    )
    wide = wide.reindex(columns=needed)
    incomplete = wide.isna().any(axis=1)
    if incomplete.any():
        for index in wide.index[incomplete][:10]:
            row = dict(zip(keys, index))
            where = f"run {row['run']}" + (f" step {row['step']}" if "step" in row else "")
            if "model" in row:
                where += f" model {row['model']}"
            missing = [d for d in needed if pd.isna(wide.loc[index, d])]
            log.warning(
                "%s: dropped checkpoint %s from aggregates: missing %s",
                table.source,
                where,
                ", ".join(missing[:5]),
            )
        if incomplete.sum() > 10:
            log.warning(
                "%s: ... %d incomplete checkpoints dropped in all", table.source, int(incomplete.sum())
            )
        wide = wide[~incomplete]
    if wide.empty:
        raise MixlawInputError(f"{table.source}: no checkpoint has every weighted validation domain")
    out = wide.index.to_frame(index=False)
    values = wide.to_numpy(dtype=float)
    column_of = {d: i for i, d in enumerate(needed)}
    for group, domains in weights.groups.items():
        w = np.array([weights.domain_weight[d] for d in domains])
        out[group] = values[:, [column_of[d] for d in domains]] @ (w / w.sum())
    w_all = np.array([weights.domain_weight[d] for d in needed])
    out["total"] = values @ w_all
    return out


def mixture_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L1 distance between mixtures, shapes (n, M) x (m, M) -> (n, m)."""
    return np.abs(a[:, None, :] - b[None, :, :]).sum(axis=2)
