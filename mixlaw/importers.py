"""Read peers' result files into the runs table (long format, see `mixlaw.runs`).

    import_regmix("mixtures.csv", "losses.csv")          # RegMix: index,train_<d>... + index,metric/<d>_val_loss...
    import_olmix("ratios.csv", "metrics.csv")            # Olmix: run,name,index,<domain>... + run,...,<metric>...
    import_mixinglaws(["70M.txt"], domains=[...])        # Data Mixing Laws raw logs: checkpoint_path valid_file loss
    import_wandb("export.csv", mixture_prefix=..., loss_prefix=...)   # Weights & Biases CSV export
    read_olmix_mixture("result.json")                     # Olmix's result: [{"domain": d, "weight": w}, ...]

Every importer returns a validated runs frame (`validate_runs`) and raises `MixlawInputError` with a one-line
message naming the file, line and column for malformed input. Text cells that a spreadsheet would run as a
formula (beginning with `=`, `+`, `-`, `@`, tab or carriage return and not a number) are neutralized with a
leading `'` (`neutralize_formulas`); `mixlaw import` writes a runs table only to a .csv, .parquet or .jsonl
path (`mixlaw.outputs.check_output`).
"""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.mixture import OLMIX_SUM_TOLERANCE, olmix_shares
from mixlaw.mixture import column as p_column
from mixlaw.runs import read_table, validate_runs

log = logging.getLogger(__name__)

FORMATS = ("regmix", "olmix", "mixinglaws", "wandb")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def neutralize_formulas(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Prefix `'` to text cells that a spreadsheet would evaluate as a formula (not numbers like -1.5)."""
    out = frame.copy()
    changed = 0
    for column in out.columns:
        if out[column].dtype != object and not pd.api.types.is_string_dtype(out[column]):
            continue
        values = out[column]
        text = values.astype(str)
        risky = values.notna() & text.str.startswith(FORMULA_STARTS) & ~text.map(_is_number)
        if risky.any():
            changed += int(risky.sum())
            out[column] = values.where(~risky, "'" + text)
    if changed:
        log.warning(
            "%s: neutralized %d cell(s) that begin like a spreadsheet formula (prefixed with ')",
            source,
            changed,
        )
    return out


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


def _drop_index_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop the index column pandas writes with `to_csv()` (read back as `Unnamed: 0`), as Olmix does."""
    return frame[[c for c in frame.columns if not str(c).startswith("Unnamed")]]


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
    return validate_runs(neutralize_formulas(frame, mixture_csv), f"{mixture_csv}+{loss_csv}", renormalize)


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
    ratios = _drop_index_columns(read_table(ratios_csv, "Olmix ratios CSV"))
    metrics = _drop_index_columns(read_table(metrics_csv, "Olmix metrics CSV"))
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
    sums = ratios[domains].sum(axis=1)
    off = (sums - 1).abs()
    if not renormalize and ((off > 1e-6) & (off <= OLMIX_SUM_TOLERANCE)).any():
        log.warning(
            "%s: rescaled %d mixture(s) whose ratios sum to within %g of 1 (Olmix's tolerance)",
            ratios_csv,
            int(((off > 1e-6) & (off <= OLMIX_SUM_TOLERANCE)).sum()),
            OLMIX_SUM_TOLERANCE,
        )
        near = off <= OLMIX_SUM_TOLERANCE
        ratios.loc[near, domains] = ratios.loc[near, domains].div(sums[near], axis=0)
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
    return validate_runs(neutralize_formulas(frame, ratios_csv), f"{ratios_csv}+{metrics_csv}", renormalize)


def read_olmix_mixture(path: str | Path) -> dict[str, float]:
    """Olmix's result file (JSON list of `{domain, weight}`) as {domain: share of tokens}."""
    from mixlaw.files import read_json

    return olmix_shares(read_json(path, "Olmix result"), str(path))


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
    base_mixture: dict[str, float] | None = None,
) -> pd.DataFrame:
    """The Data Mixing Laws paper's raw loss logs: whitespace-separated lines `checkpoint_path valid_file loss`.

    Checkpoint names carry run, proportions (in `domains` order; the names carry no domain names) and step;
    the model size comes from the name's prefix (`70M_...`) or `model` (which overrides it; needed for names
    without a prefix). The validation domain is the file name without its extension and `valid` parts
    (`pythia-pile.valid.Github.bin` -> Github, `starcoder.python.valid.bin` -> python). Step directories named
    `last` are skipped with a warning.

    A checkpoint name without proportions or step (the `ct` logs' base model, `.../pythia_70m_step20000`) is
    the base run: run `base`, step 0, mixture `base_mixture` (default: all on the first domain, as the paper's
    base Pythia was trained on the Pile alone), model label that of the other lines."""
    if not domains:
        raise MixlawInputError("the paper's raw logs need --domains (checkpoint names carry no domain names)")
    base = _base_mixture(base_mixture, domains)
    rows = []
    skipped_last = base_lines = 0
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
            if not props and not step.isdigit():
                base_lines += 1
                row = {"run": "base", "model": model, "step": 0}
                if tokens_per_step:
                    row["tokens"] = 0.0
                row.update({p_column(d): base[d] for d in domains})
                row.update({"valid_domain": valid_name(valid_file), "loss": _loss(loss, where)})
                rows.append(row)
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
            loss_value = _loss(loss, where)
            label = model or size
            if label is None:
                raise MixlawInputError(
                    f"{where}: checkpoint name {checkpoint.rstrip('/').split('/')[-2]!r} has no "
                    "size prefix; pass --model"
                )
            valid = valid_name(valid_file)
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
    if base_lines:
        labels = sorted(set(frame.loc[frame["run"] != "base", "model"].dropna()))
        if model is None and len(labels) != 1:
            raise MixlawInputError(
                f"{', '.join(paths)}: {base_lines} base-model line(s) and model sizes "
                f"{', '.join(labels) or '(none)'}: pass --model"
            )
        frame.loc[frame["run"] == "base", "model"] = model or labels[0]
        log.warning(
            "mapped %d base-model line(s) to run 'base' at step 0 with mixture %s",
            base_lines,
            ", ".join(f"{p_column(d)}={v:g}" for d, v in base.items()),
        )
    dup = frame.duplicated()
    if dup.any():
        log.warning("dropped %d exact duplicate line(s)", int(dup.sum()))
        frame = frame[~dup]
    source = ", ".join(paths)
    return validate_runs(neutralize_formulas(frame.reset_index(drop=True), source), source, renormalize)


def valid_name(valid_file: str) -> str:
    """Validation domain of a log's validation file: its name without extension and `valid` parts."""
    name = valid_file.rstrip("/").split("/")[-1]
    parts = name.split(".")
    if len(parts) > 1:
        parts = parts[:-1]  # the extension (.bin)
    kept = [p for p in parts if p.lower() not in ("valid", "validation", "val")]
    return kept[-1] if kept else name


def _loss(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise MixlawInputError(f"{where}: non-numeric loss {text!r}") from None


def _base_mixture(given: dict[str, float] | None, domains: list[str]) -> dict[str, float]:
    if given is None:
        return {d: float(i == 0) for i, d in enumerate(domains)}
    unknown = [d for d in given if d not in domains]
    if unknown:
        raise MixlawInputError(f"base mixture: unknown domain(s) {', '.join(unknown)}")
    return {d: float(given.get(d, 0.0)) for d in domains}


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
    config_path: str | None = None,
) -> pd.DataFrame:
    """A W&B CSV export. Mixture columns are `<mixture_prefix><domain>`, loss columns
    `<loss_prefix><valid_domain><loss_suffix>`. A summary export has one row per run (no `step_col`, or `step`
    for all); a history export has one row per logged step (`step_col`, e.g. `_step`), where rows without any
    loss are skipped and the mixture may be given on any row of the run.

    Also read: dict-valued cells (the `summary`/`config` columns of the export script in W&B's docs, written
    as Python or JSON dict text) flattened to `<key>` / `<key>.<subkey>` columns; a history table
    (`runs.histories()`: `run_id`, `_step`, metrics) with the mixture in a separate `config_path` table joined
    on the run column (falling back to `run_id`, `name`, `id`); a single run's `run.history()` CSV, which has no
    run column (the run is named after the file)."""
    frame = _wandb_table(path)
    run_col = _wandb_run_column(frame, run_col)
    if run_col is None:
        run_col = "run"
        frame[run_col] = Path(path).stem
    if config_path is not None:
        frame = _join_wandb_config(frame, run_col, config_path, mixture_prefix)
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
    return validate_runs(neutralize_formulas(out, path), path, renormalize)


RUN_COLUMNS = ("run_id", "name", "Name", "id", "run")


def _wandb_run_column(frame: pd.DataFrame, preferred: str) -> str | None:
    if preferred in frame.columns:
        return preferred
    return next((c for c in RUN_COLUMNS if c in frame.columns), None)


def _wandb_table(path: str) -> pd.DataFrame:
    """A W&B table with pandas' index column dropped and dict-valued cells flattened into columns."""
    frame = _drop_index_columns(read_table(path, "W&B export"))
    for column in list(frame.columns):
        values = frame[column]
        if values.dtype != object and not pd.api.types.is_string_dtype(values):
            continue
        parsed = values.map(_dict_cell)
        present = values.notna()
        if present.any() and parsed[present].map(lambda v: isinstance(v, dict)).all():
            flat = pd.DataFrame(
                [_flatten(v) if isinstance(v, dict) else {} for v in parsed], index=frame.index
            )
            clash = [c for c in flat.columns if c in frame.columns and c != column]
            if clash:
                flat = flat.rename(columns={c: f"{column}.{c}" for c in clash})
            frame = pd.concat([frame.drop(columns=[column]), flat], axis=1)
    return frame


def _dict_cell(value: object) -> object:
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return ast.literal_eval(value)  # W&B's docs script writes str(dict) (Python literals, never code)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value


def _flatten(data: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if set(value) == {"value"}:  # W&B config entries as {"value": v, "desc": ...} in some exports
                out[name] = value["value"]
            else:
                out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _join_wandb_config(
    frame: pd.DataFrame, run_col: str, config_path: str, mixture_prefix: str
) -> pd.DataFrame:
    """Put the mixture columns of a config table (one row per run) onto every history row of its run."""
    config = _wandb_table(config_path)
    key = run_col if run_col in config.columns else _wandb_run_column(config, run_col)
    mix_cols = [c for c in config.columns if c.startswith(mixture_prefix)]
    if not mix_cols:
        raise MixlawInputError(f"{config_path}: no column starts with --mixture-prefix {mixture_prefix!r}")
    if key is None:
        if len(config) != 1 or frame[run_col].nunique() != 1:
            raise MixlawInputError(f"{config_path}: no run column ({', '.join(RUN_COLUMNS)}) to join on")
        config = config.assign(_run=frame[run_col].iloc[0])
        key = "_run"
    keys = _unique_key(config, key, config_path)
    table = config[mix_cols].set_axis(keys.to_numpy())
    runs = frame[run_col].astype(str).str.strip()
    missing = sorted(set(runs) - set(keys))
    if missing:
        raise MixlawInputError(
            f"{config_path}: run {missing[0]!r} of the history has no row here ({len(missing)} missing)"
        )
    joined = table.loc[runs.to_numpy()].set_axis(frame.index)
    return pd.concat([frame.drop(columns=[c for c in mix_cols if c in frame.columns]), joined], axis=1)


def import_any(fmt: str, paths: list[str], **options) -> pd.DataFrame:
    """Dispatch on the format name (`regmix`, `olmix`, `mixinglaws`, `wandb`)."""
    if fmt not in FORMATS:
        raise MixlawInputError(f"--from {fmt}: unknown format; available: {', '.join(FORMATS)}")
    needed = {"regmix": (2,), "olmix": (2,), "wandb": (1, 2)}
    if fmt in needed and len(paths) not in needed[fmt]:
        what = {
            "regmix": "MIXTURES.csv LOSSES.csv",
            "olmix": "ratios.csv metrics.csv",
            "wandb": "EXPORT.csv [CONFIG.csv]",
        }[fmt]
        count = " or ".join(map(str, needed[fmt]))
        raise MixlawInputError(f"--from {fmt} takes {count} file(s): {what}; got {len(paths)}")
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
        config_path=paths[1] if len(paths) > 1 else None,
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
