"""Read peers' result files into the runs table (long format, see `mixlaw.runs`).

    import_regmix("mixtures.csv", "losses.csv")          # RegMix: index,train_<d>... + index,metric/<d>_val_loss...
    import_olmix("ratios.csv", "metrics.csv")            # Olmix: run,name,index,<domain>... + run,...,<metric>...
    import_mixinglaws(["70M.txt"], domains=[...])        # Data Mixing Laws raw logs: checkpoint_path valid_file loss
    import_wandb("export.csv", mixture_prefix=..., loss_prefix=...)   # Weights & Biases CSV export

Every importer returns a validated runs frame (`validate_runs`) and raises `MixlawInputError` with a one-line
message naming the file, line and column for malformed input.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.mixture import column as p_column
from mixlaw.runs import read_table, validate_runs

log = logging.getLogger(__name__)

FORMATS = ("regmix", "olmix", "mixinglaws", "wandb")
SIZE_PREFIX = re.compile(r"^(\d+(?:\.\d+)?[KMBT])", re.IGNORECASE)


def _numeric(frame: pd.DataFrame, column: str, source: str, allow_missing: bool = False) -> pd.Series:
    """Column as floats; a non-numeric cell is an error naming its line (empty cells are NaN if allowed)."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & (raw.notna() if allow_missing else True)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise MixlawInputError(f"{source}: line {i + 2}: column {column}: non-numeric value {raw.iloc[i]!r}")
    return values.astype(float)


def _require(frame: pd.DataFrame, columns: list[str], source: str, hint: str = "") -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MixlawInputError(
            f"{source}: missing column(s) {', '.join(missing)}{hint} "
            f"(have: {', '.join(map(str, frame.columns[:12]))}{' ...' if len(frame.columns) > 12 else ''})"
        )


def _unique_key(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    keys = frame[column].astype(str).str.strip()
    if (keys == "").any() or frame[column].isna().any():
        i = int(np.flatnonzero(((keys == "") | frame[column].isna()).to_numpy())[0])
        raise MixlawInputError(f"{source}: line {i + 2}: column {column}: empty join key")
    dup = keys.duplicated(keep=False)
    if dup.any():
        raise MixlawInputError(
            f"{source}: {column} {keys[dup].iloc[0]!r} appears on {int((keys == keys[dup].iloc[0]).sum())} rows"
        )
    return keys


def _join(mix: pd.DataFrame, loss: pd.DataFrame, key: str, mix_source: str, loss_source: str) -> pd.DataFrame:
    """Inner join on `key` where every loss row must have a mixture (mixtures without losses are warned about)."""
    mix_keys = _unique_key(mix, key, mix_source)
    loss_keys = _unique_key(loss, key, loss_source)
    orphan = sorted(set(loss_keys) - set(mix_keys))
    if orphan:
        raise MixlawInputError(
            f"{loss_source}: {key} {orphan[0]!r} has no mixture in {mix_source} "
            f"({len(orphan)} of {len(loss_keys)} unmatched)"
        )
    unused = set(mix_keys) - set(loss_keys)
    if unused:
        log.warning("%s: %d mixture(s) without losses are skipped", mix_source, len(unused))
    return mix.assign(_key=mix_keys.to_numpy()).merge(
        loss.assign(_key=loss_keys.to_numpy()), on="_key", suffixes=("", "_loss")
    )


def _long(
    wide: pd.DataFrame,
    run: pd.Series,
    mixture: dict[str, pd.Series],
    losses: dict[str, pd.Series],
    extra: dict[str, pd.Series | object] | None = None,
) -> pd.DataFrame:
    """Wide rows (one per checkpoint) -> long rows (one per validation domain); empty loss cells are skipped."""
    base = pd.DataFrame({"run": run.astype(str).to_numpy()})
    for name, value in (extra or {}).items():
        base[name] = value.to_numpy() if isinstance(value, pd.Series) else value
    for domain, values in mixture.items():
        base[p_column(domain)] = values.to_numpy(dtype=float)
    parts = []
    for valid, values in losses.items():
        part = base.assign(valid_domain=valid, loss=values.to_numpy(dtype=float))
        parts.append(part[part["loss"].notna()])
    out = pd.concat(parts, ignore_index=True)
    skipped = sum(int(v.isna().sum()) for v in losses.values())
    if skipped:
        log.warning("skipped %d empty loss cell(s)", skipped)
    if out.empty:
        raise MixlawInputError("no loss values found")
    return out


def _constants(model: str | None, step: float | None, tokens_per_step: float | None) -> dict[str, object]:
    out: dict[str, object] = {}
    if model is not None:
        out["model"] = str(model)
    if step is not None:
        out["step"] = step
        if tokens_per_step:
            out["tokens"] = step * tokens_per_step
    return out


# ------------------------------------------------------------------------------------------ RegMix


def import_regmix(
    mixture_csv: str,
    loss_csv: str,
    model: str | None = None,
    step: float | None = None,
    tokens_per_step: float | None = None,
    renormalize: bool = False,
) -> pd.DataFrame:
    """RegMix's wide CSVs: `index,train_<domain>...` joined on `index` to `index,metric/<domain>_val_loss...`
    (other loss-file columns are ignored). The released mixtures are rounded to 3 decimals: pass
    `renormalize=True` to rescale them."""
    mix = read_table(mixture_csv, "RegMix mixture CSV")
    loss = read_table(loss_csv, "RegMix loss CSV")
    _require(mix, ["index"], mixture_csv, " (the join key)")
    _require(loss, ["index"], loss_csv, " (the join key)")
    train = [c for c in mix.columns if c.startswith("train_")]
    if not train:
        raise MixlawInputError(f"{mixture_csv}: no train_<domain> columns")
    pattern = re.compile(r"^metric/(.+)_val_loss$")
    metric = {m.group(1): c for c in loss.columns if (m := pattern.match(c))}
    if not metric:
        raise MixlawInputError(f"{loss_csv}: no metric/<domain>_val_loss columns")
    for c in train:
        mix[c] = _numeric(mix, c, mixture_csv)
    for c in metric.values():
        loss[c] = _numeric(loss, c, loss_csv, allow_missing=True)
    joined = _join(mix, loss, "index", mixture_csv, loss_csv)
    frame = _long(
        joined,
        joined["_key"],
        {c[len("train_") :]: joined[c] for c in train},
        {d: joined[c] for d, c in metric.items()},
        _constants(model, step, tokens_per_step),
    )
    return validate_runs(frame, f"{mixture_csv}+{loss_csv}", renormalize)


# ------------------------------------------------------------------------------------------ Olmix

OLMIX_META = ("run", "run_id", "name", "index")


def import_olmix(
    ratios_csv: str,
    metrics_csv: str,
    model: str | None = None,
    step: float | None = None,
    tokens_per_step: float | None = None,
    renormalize: bool = False,
) -> pd.DataFrame:
    """Olmix's `ratios.csv` (`run,name,index,<domain>...`) joined on `run` (or `run_id`) to `metrics.csv`
    (`run,name,index,<metric>...`); every metric becomes a validation domain (lower is better, e.g. BPB)."""
    ratios = read_table(ratios_csv, "Olmix ratios CSV")
    metrics = read_table(metrics_csv, "Olmix metrics CSV")
    key = "run" if "run" in ratios.columns else "run_id"
    _require(ratios, [key], ratios_csv, " (the join key: run or run_id)")
    _require(metrics, [key], metrics_csv, " (the join key: run or run_id)")
    domains = [c for c in ratios.columns if c not in OLMIX_META]
    names = [c for c in metrics.columns if c not in OLMIX_META]
    if not domains:
        raise MixlawInputError(f"{ratios_csv}: no domain columns besides {', '.join(OLMIX_META)}")
    if not names:
        raise MixlawInputError(f"{metrics_csv}: no metric columns besides {', '.join(OLMIX_META)}")
    for c in domains:
        ratios[c] = _numeric(ratios, c, ratios_csv)
    for c in names:
        metrics[c] = _numeric(metrics, c, metrics_csv, allow_missing=True)
    joined = _join(ratios[[key] + domains], metrics[[key] + names], key, ratios_csv, metrics_csv)
    frame = _long(
        joined,
        joined["_key"],
        {d: joined[d] for d in domains},
        {m: joined[m if m not in domains else m + "_loss"] for m in names},
        _constants(model, step, tokens_per_step),
    )
    return validate_runs(frame, f"{ratios_csv}+{metrics_csv}", renormalize)


# ------------------------------------------------------------------------------------------ Data Mixing Laws logs


def parse_checkpoint(path: str) -> tuple[str | None, str, list[str], str]:
    """`.../<prefix>_<run>-<p1>-<p2>.../<step>` -> (size prefix or None, run, proportion strings, step string).

    The run is the number after the last `_` of the name's first `-` field; names without `_` have no prefix."""
    parts = [p for p in path.rstrip("/").split("/") if p]
    if len(parts) < 2:
        raise ValueError("expected .../<name>/<step>")
    step, name = parts[-1], parts[-2]
    fields = name.split("-")
    head = fields[0]
    prefix, run = head.rsplit("_", 1) if "_" in head else (None, head)
    size = SIZE_PREFIX.match(prefix).group(1) if prefix and SIZE_PREFIX.match(prefix) else None
    return size, run, fields[1:], step


def import_mixinglaws(
    paths: list[str],
    domains: list[str],
    model: str | None = None,
    tokens_per_step: float | None = None,
    renormalize: bool = False,
) -> pd.DataFrame:
    """The Data Mixing Laws paper's raw loss logs: whitespace-separated lines `checkpoint_path valid_file loss`.

    Checkpoint names carry run, proportions (in `domains` order; the names carry no domain names) and step;
    the model size comes from the name's prefix (`70M_...`) or `model` (which overrides it; needed for names
    without a prefix). The validation domain is `valid_file.split('.')[-2]`. Step directories named `last`
    are skipped with a warning."""
    if not domains:
        raise MixlawInputError("the paper's raw logs need --domains (checkpoint names carry no domain names)")
    rows = []
    skipped_last = 0
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise MixlawInputError(f"{path}: loss log not found")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise MixlawInputError(f"{path}: not UTF-8 text") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split()
            where = f"{path}: line {number}"
            if len(fields) != 3:
                raise MixlawInputError(
                    f"{where}: expected 3 fields (checkpoint_path valid_file loss), got {len(fields)}"
                )
            checkpoint, valid_file, loss = fields
            try:
                size, run, props, step = parse_checkpoint(checkpoint)
            except ValueError as exc:
                raise MixlawInputError(f"{where}: checkpoint path {checkpoint!r}: {exc}") from None
            if step == "last":
                skipped_last += 1
                continue
            if len(props) != len(domains):
                raise MixlawInputError(
                    f"{where}: checkpoint name has {len(props)} proportions, --domains gives "
                    f"{len(domains)} ({', '.join(domains)})"
                )
            try:
                values = [float(v) for v in props]
            except ValueError:
                raise MixlawInputError(f"{where}: non-numeric proportion in {checkpoint!r}") from None
            try:
                step_value = int(step)
            except ValueError:
                raise MixlawInputError(f"{where}: step {step!r} is not an integer") from None
            try:
                loss_value = float(loss)
            except ValueError:
                raise MixlawInputError(f"{where}: non-numeric loss {loss!r}") from None
            label = model or size
            if label is None:
                raise MixlawInputError(
                    f"{where}: checkpoint name {checkpoint.rstrip('/').split('/')[-2]!r} has no "
                    "size prefix; pass --model"
                )
            parts = valid_file.split(".")
            valid = parts[-2] if len(parts) >= 2 else valid_file
            row = {"run": run, "model": label, "step": step_value}
            if tokens_per_step:
                row["tokens"] = step_value * tokens_per_step
            row.update({p_column(d): v for d, v in zip(domains, values)})
            row.update({"valid_domain": valid, "loss": loss_value})
            rows.append(row)
    if skipped_last:
        log.warning("skipped %d line(s) whose step directory is 'last'", skipped_last)
    if not rows:
        raise MixlawInputError(f"{', '.join(paths)}: no loss lines")
    frame = pd.DataFrame(rows)
    dup = frame.duplicated()
    if dup.any():
        log.warning("dropped %d exact duplicate line(s)", int(dup.sum()))
        frame = frame[~dup]
    return validate_runs(frame.reset_index(drop=True), ", ".join(paths), renormalize)


# ------------------------------------------------------------------------------------------ Weights & Biases


def import_wandb(
    path: str,
    mixture_prefix: str,
    loss_prefix: str,
    loss_suffix: str = "",
    run_col: str = "Name",
    model_col: str | None = None,
    step_col: str | None = None,
    model: str | None = None,
    step: float | None = None,
    tokens_per_step: float | None = None,
    renormalize: bool = False,
) -> pd.DataFrame:
    """A W&B CSV export. Mixture columns are `<mixture_prefix><domain>`, loss columns
    `<loss_prefix><valid_domain><loss_suffix>`. A summary export has one row per run (no `step_col`, or `step`
    for all); a history export has one row per logged step (`step_col`, e.g. `_step`), where rows without any
    loss are skipped and the mixture may be given on any row of the run."""
    frame = read_table(path, "W&B export")
    _require(frame, [run_col], path, " (set --run-col)")
    for flag, column in (("--model-col", model_col), ("--step-col", step_col)):
        if column is not None and column not in frame.columns:
            raise MixlawInputError(f"{path}: {flag} {column!r}: no such column")
    mix_cols = [c for c in frame.columns if c.startswith(mixture_prefix)]
    loss_cols = [
        c
        for c in frame.columns
        if c.startswith(loss_prefix)
        and c.endswith(loss_suffix)
        and c not in mix_cols
        and len(c) > len(loss_prefix) + len(loss_suffix)
    ]
    if not mix_cols:
        raise MixlawInputError(f"{path}: no column starts with --mixture-prefix {mixture_prefix!r}")
    if not loss_cols:
        raise MixlawInputError(
            f"{path}: no column matches --loss-prefix {loss_prefix!r}"
            + (f" and --loss-suffix {loss_suffix!r}" if loss_suffix else "")
        )
    for c in mix_cols:
        frame[c] = _numeric(frame, c, path, allow_missing=True)
    for c in loss_cols:
        frame[c] = _numeric(frame, c, path, allow_missing=True)
    if frame[run_col].isna().any():
        i = int(np.flatnonzero(frame[run_col].isna().to_numpy())[0])
        raise MixlawInputError(f"{path}: line {i + 2}: column {run_col}: empty run name")
    runs = frame[run_col].astype(str)
    # The mixture is a per-run constant: fill it onto every row of the run (history exports log it once).
    filled = frame[mix_cols].groupby(runs).transform("first")
    no_mix = filled.isna().any(axis=1)
    if no_mix.any():
        raise MixlawInputError(
            f"{path}: run {runs[no_mix].iloc[0]!r} has no complete mixture in the {mixture_prefix}* columns"
        )
    frame[mix_cols] = filled
    frame = frame[frame[loss_cols].notna().any(axis=1)]
    runs = frame[run_col].astype(str)
    extra: dict[str, object] = _constants(model, step, tokens_per_step)
    if model_col is not None:
        extra["model"] = frame[model_col].astype(str)
    if step_col is not None:
        steps = _numeric(frame, step_col, path)
        extra["step"] = steps
        if tokens_per_step:
            extra["tokens"] = steps * tokens_per_step
    else:
        keys = runs + ("|" + extra["model"] if isinstance(extra.get("model"), pd.Series) else "")
        dup = keys.duplicated(keep=False)
        if dup.any():
            raise MixlawInputError(
                f"{path}: run {runs[dup].iloc[0]!r} is on {int((keys == keys[dup].iloc[0]).sum())} "
                "rows; a history export needs --step-col (e.g. _step)"
            )
    out = _long(
        frame,
        runs,
        {c[len(mixture_prefix) :]: frame[c] for c in mix_cols},
        {c[len(loss_prefix) : len(c) - len(loss_suffix)]: frame[c] for c in loss_cols},
        extra,
    )
    return validate_runs(out, path, renormalize)


def import_any(fmt: str, paths: list[str], **options) -> pd.DataFrame:
    """Dispatch on the format name (`regmix`, `olmix`, `mixinglaws`, `wandb`)."""
    if fmt not in FORMATS:
        raise MixlawInputError(f"--from {fmt}: unknown format; available: {', '.join(FORMATS)}")
    needed = {"regmix": 2, "olmix": 2, "wandb": 1}
    if fmt in needed and len(paths) != needed[fmt]:
        what = {
            "regmix": "MIXTURES.csv LOSSES.csv",
            "olmix": "ratios.csv metrics.csv",
            "wandb": "EXPORT.csv",
        }[fmt]
        raise MixlawInputError(f"--from {fmt} takes {needed[fmt]} file(s): {what}; got {len(paths)}")
    if fmt == "regmix":
        return import_regmix(*paths, **_pick(options, "model", "step", "tokens_per_step", "renormalize"))
    if fmt == "olmix":
        return import_olmix(*paths, **_pick(options, "model", "step", "tokens_per_step", "renormalize"))
    if fmt == "mixinglaws":
        if not options.get("domains"):
            raise MixlawInputError(
                "--from mixinglaws needs --domains (checkpoint names carry no domain names)"
            )
        return import_mixinglaws(
            paths, **_pick(options, "domains", "model", "tokens_per_step", "renormalize")
        )
    for flag in ("mixture_prefix", "loss_prefix"):
        if not options.get(flag):
            raise MixlawInputError(f"--from wandb needs --{flag.replace('_', '-')}")
    return import_wandb(
        paths[0],
        **_pick(
            options,
            "mixture_prefix",
            "loss_prefix",
            "loss_suffix",
            "run_col",
            "model_col",
            "step_col",
            "model",
            "step",
            "tokens_per_step",
            "renormalize",
        ),
    )


def _pick(options: dict, *names: str) -> dict:
    return {n: options[n] for n in names if options.get(n) is not None}
