"""What a report shows, gathered from a results folder or computed from a runs table.

Every part is optional: a figure whose inputs are missing is skipped and the report says why.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FitData, FittedLaw
from mixlaw.mixture import Domains, Mixture, strip_prefix
from mixlaw.optimizer import optimize
from mixlaw.runs import RunsTable, Weights, read_runs, read_table
from mixlaw.version import __version__

log = logging.getLogger(__name__)

RESULT_FILES = ("law.json", "optimum.json", "predictions.csv", "summary.md", "runs.csv")
STEP_LAW_FILES = ("step_law.json", "steplaw.json", "step_laws.json", "step-law.json")
SIZE_LAW_FILES = ("size_law.json", "sizelaw.json", "size_laws.json", "size-law.json")


@dataclass
class CVResult:
    """Held-out predictions: per target (and `total`) observed and predicted arrays plus error metrics."""

    law: str
    scheme: str
    observed: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]
    metrics: dict[str, dict[str, float]]
    observed_label: str = "observed validation loss"


@dataclass
class ReportData:
    """Everything the figures and the HTML page draw from."""

    source: str
    law: FittedLaw | None = None
    cv: CVResult | None = None
    optimum: dict[str, Any] | None = None
    step_law: dict[str, Any] | None = None
    size_law: dict[str, Any] | None = None
    runs: RunsTable | None = None
    observed_X: np.ndarray | None = None  # (n, M) mixtures of the fitted checkpoint
    observed_total: np.ndarray | None = None  # (n,) their observed total loss
    summary_md: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)  # the pipeline's stage checks (checks.json)
    target_predictions: pd.DataFrame | None = None  # the pipeline's predictions.csv (run, p_*, pred_*)
    validation: dict[str, Any] | None = None  # `mixlaw run`'s validation.json (both arms at the target)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def domains(self) -> list[str]:
        if self.law is not None:
            return list(self.law.domains)
        if self.optimum and isinstance(self.optimum.get("mixture"), dict):
            return [strip_prefix(k) for k in self.optimum["mixture"]]
        return self.runs.domains if self.runs is not None else []


def mixture_vector(
    mixture: dict[str, float] | None, domains: list[str], source: str = "optimum.json"
) -> np.ndarray | None:
    """{"p_<domain>" or "<domain>": share} -> array in `domains` order (missing domains are 0); None when there
    is no mixture over these domains.

    Checked by `Mixture` like every mixture: shares that do not sum to 1 are a one-line error naming `source`,
    never silently rescaled (they were before, so the report could show a mixture other than the file's)."""
    if not isinstance(mixture, dict) or not domains:
        return None
    known = Domains(domains)
    if not any(known.find(str(k)) is not None for k in mixture):
        return None
    return Mixture.parse(mixture, domains, f"{source}: mixture", hint=None).as_array(domains)


def versions() -> dict[str, str]:
    """Versions of mixlaw, Python and the numerical libraries (for the provenance section)."""
    out = {
        "mixlaw": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    for name in ("numpy", "scipy", "pandas", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------------------------- results folder


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MixlawInputError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else None


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def load_results_dir(folder: str | Path) -> ReportData:
    """Read whatever of law.json, optimum.json, predictions.csv, step/size law JSON, summary.md and runs.csv
    a pipeline/run output folder holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MixlawInputError(f"{folder}: not a folder")
    found = [p.name for p in folder.iterdir()]
    data = ReportData(source=str(folder))
    if (folder / "law.json").is_file():
        data.law = FittedLaw.load(folder / "law.json")
        if data.law.meta.get("command"):
            data.commands.append(str(data.law.meta["command"]))
    else:
        data.notes.append("no law.json: the fitted-law figures are skipped")
    if (folder / "optimum.json").is_file():
        data.optimum = _read_json(folder / "optimum.json")
    else:
        data.notes.append("no optimum.json: the optimum is not shown")
    _read_scale_laws_and_commands(folder, data)
    data.runs = _runs_for(folder, data.law, data.notes)
    data.cv = _held_out_predictions(folder, data)
    _add_proxy_sanity(data)
    data.optimum = _as_optimum(data.optimum)
    if not any((data.law, data.optimum, data.cv, data.step_law, data.size_law, data.runs)):
        raise MixlawInputError(
            f"{folder}: no results to report (expected some of {', '.join(RESULT_FILES)}; "
            f"found {', '.join(sorted(found)[:10]) or 'nothing'})"
        )
    return data


def _read_scale_laws_and_commands(folder: Path, data: ReportData) -> None:
    """Step/size law JSON, summary.md, checks.json and the commands recorded in the folder."""
    step = _first(folder, STEP_LAW_FILES)
    size = _first(folder, SIZE_LAW_FILES)
    data.step_law = _read_json(step) if step else None
    data.size_law = _read_json(size) if size else None
    if (folder / "summary.md").is_file():
        data.summary_md = (folder / "summary.md").read_text(errors="replace")
    manifest = _first(folder, ("manifest.json", "run.json", "pipeline.json"))
    if manifest:
        info = _read_json(manifest) or {}
        for key in ("command", "commands"):
            value = info.get(key)
            data.commands += [value] if isinstance(value, str) else [str(v) for v in value or []]
    for law_json in (data.step_law, data.size_law, data.optimum):
        if law_json and isinstance(law_json.get("command"), str):
            data.commands.append(law_json["command"])
    if (folder / "checks.json").is_file():
        data.checks = _read_json(folder / "checks.json") or {}
    if (folder / "validation.json").is_file():
        data.validation = _read_json(folder / "validation.json")
    if (folder / "joint_law.json").is_file():
        data.notes.append(
            "joint_law.json (scale law L(N, D)) is not drawn; its stage checks are in the summary"
        )


def _held_out_predictions(folder: Path, data: ReportData) -> CVResult | None:
    """Held-out predictions: cv_predictions.csv, a pipeline's extrapolated losses, predictions.csv, or a
    cross-validation of the law on its observed points (a note when none is possible)."""
    cv = None
    if (folder / "cv_predictions.csv").is_file():
        cv = read_predictions(folder / "cv_predictions.csv", data.law)
    if (folder / "predictions.csv").is_file():
        frame = read_table(folder / "predictions.csv", "predictions")
        if _is_pipeline_predictions(frame):
            data.target_predictions = frame
            if cv is None and data.law is not None:
                cv = cross_validate_extrapolated(data.law, frame, data.checks)
        elif cv is None:
            cv = read_predictions(folder / "predictions.csv", data.law)
    fit_data = _observed_points(data)
    if cv is None and fit_data is not None:
        cv = _cross_validate_law(data.law, fit_data)
    if cv is None:
        data.notes.append(
            "no held-out predictions (predictions.csv with observed and predicted losses): "
            "the predicted-against-observed figure is skipped"
        )
    return cv


def _add_proxy_sanity(data: ReportData) -> None:
    """checks.json's `proxy_sanity`, recomputed from the runs table for folders written before it existed."""
    checks = data.checks.setdefault("checks", {}) if isinstance(data.checks, dict) else {}
    if "proxy_sanity" in checks or data.runs is None or data.law is None:
        return
    meta = data.law.meta.get("weights") or {}
    frame = data.runs.frame
    if (
        not meta.get("domain_weight")
        or not meta.get("groups")
        or not {"model", "params"} <= set(frame.columns)
    ):
        return
    from mixlaw.runs import Weights, aggregate
    from mixlaw.sanity import proxy_sanity

    variable = ((data.checks.get("defaults") or {}).get("variable")) or "step"
    if variable not in frame.columns:
        return
    try:
        wide = aggregate(data.runs, Weights(meta["domain_weight"], meta["groups"], str(meta.get("spec"))))
        params = wide.groupby("model")["params"].max().astype(float).to_dict()
        checks["proxy_sanity"] = proxy_sanity(wide, variable, params)
    except (MixlawInputError, KeyError, ValueError) as exc:
        log.debug("no proxy sanity check: %s", exc)


def _as_optimum(optimum: dict | None) -> dict | None:
    """optimum.json as the report reads it; `mixlaw demo` writes {"optimum": {domain: share},
    "predicted_total_at_optimum": ...}."""
    if optimum is not None and "mixture" not in optimum and isinstance(optimum.get("optimum"), dict):
        total = optimum.get("predicted_total_at_optimum")
        return {
            "mixture": Mixture.from_dict(optimum["optimum"], source="optimum.json", hint=None).p_columns(),
            "predicted": {"total": total} if isinstance(total, (int, float)) else {},
        }
    return optimum


def _runs_for(folder: Path, law: FittedLaw | None, notes: list[str]) -> RunsTable | None:
    """runs.csv in the folder, else the runs table named in law.json (as given, or relative to the folder)."""
    candidates = [folder / name for name in ("runs.csv", "runs.parquet", "runs.jsonl")]
    source = (law.meta.get("data") or {}).get("source") if law is not None else None
    if source:
        candidates += [Path(source), folder / source, folder.parent / source]
    for path in candidates:
        if path.is_file():
            quiet = logging.getLogger("mixlaw.runs")
            level = quiet.level
            quiet.setLevel(logging.ERROR)  # renormalization warnings were given when the results were made
            try:
                return read_runs(path, renormalize=True)
            except MixlawInputError as exc:
                notes.append(f"could not read the runs table {path}: {exc}")
            finally:
                quiet.setLevel(level)
    if source:
        notes.append(
            f"runs table {source} (named in law.json) not found: observed points and the runs summary "
            "are not shown; copy it into the folder as runs.csv"
        )
    return None


def _is_pipeline_predictions(frame: pd.DataFrame) -> bool:
    """The pipeline's predictions.csv: target-scale predictions per mixture (pred_* columns, no observations)."""
    preds = [c for c in frame.columns if c.startswith("pred_")]
    return bool(preds) and not any(c in frame.columns for c in ("observed", "target"))


def cross_validate_extrapolated(
    law: FittedLaw, frame: pd.DataFrame, checks: dict[str, Any]
) -> CVResult | None:
    """Cross-validate the mixing law on the pipeline's extrapolated losses (the data it was fitted on), with the
    pipeline's folds (K = 5 unless checks.json says otherwise, seed 0)."""
    from mixlaw.selection import cross_validate_law

    columns = law.domain_columns
    targets = [t for t in law.targets if f"pred_{t}" in frame.columns]
    if targets != law.targets or not all(c in frame.columns for c in columns) or law.total_weights is None:
        return None
    meta = law.meta.get("weights") or {}
    weights = Weights(
        meta.get("domain_weight") or {},
        meta.get("groups") or {t: [t] for t in targets},
        str(meta.get("spec")),
    )
    fit_data = FitData.from_wide(
        frame.rename(columns={f"pred_{t}": t for t in targets}),
        weights,
        list(law.domains),
        targets=targets,
        total_weights=law.total_weights,
        selection=dict(law.meta.get("selection") or {}),
        source="predictions.csv",
    )
    Y, total = fit_data.Y, fit_data.total
    hyper = dict(law.law.hyper) if hasattr(law.law, "hyper") else None
    k = min(int((checks.get("defaults") or {}).get("cv", 5)), fit_data.n_mixtures)
    try:
        result = cross_validate_law(fit_data, law.law.name, hyper, None, k, 0)
    except MixlawInputError as exc:
        log.warning("could not cross-validate the mixing law: %s", exc)
        return None
    truth = {"total": total, **{t: Y[:, i] for i, t in enumerate(targets)}}
    names = [n for n in result["metrics"] if n in result["predictions"]]
    return CVResult(
        law.law.name,
        f"with {k} folds of mixtures on the extrapolated target-scale losses (recomputed "
        "by the report with the pipeline's folds)",
        {n: truth[n] for n in names},
        {n: result["predictions"][n] for n in names},
        result["metrics"],
        "extrapolated target-scale loss",
    )


def read_predictions(path: Path, law: FittedLaw | None) -> CVResult | None:
    """Held-out predictions from a CSV in long form (target, observed, predicted[, p_...]) or wide form
    (`obs_<t>`/`<t>` next to `pred_<t>`)."""
    from mixlaw.crossval import metrics

    frame = read_table(path, "predictions")
    observed: dict[str, np.ndarray] = {}
    predicted: dict[str, np.ndarray] = {}
    if {"target", "observed", "predicted"} <= set(frame.columns):
        for column in ("observed", "predicted"):
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = values.isna() & frame[column].notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise MixlawInputError(
                    f"{path}: line {i + 2}: column {column}: non-numeric value {frame[column].iloc[i]!r}"
                )
            frame[column] = values
        frame = frame.dropna(subset=["observed", "predicted"])
        for target, rows in frame.groupby("target", sort=False):
            observed[str(target)] = rows["observed"].to_numpy(dtype=float)
            predicted[str(target)] = rows["predicted"].to_numpy(dtype=float)
    else:
        for column in frame.columns:
            if not column.startswith("pred_"):
                continue
            name = column[len("pred_") :]
            truth = next((c for c in (f"obs_{name}", f"observed_{name}", name) if c in frame.columns), None)
            if truth is None:
                continue
            rows = frame[[truth, column]].apply(pd.to_numeric, errors="coerce").dropna()
            observed[name], predicted[name] = rows[truth].to_numpy(float), rows[column].to_numpy(float)
    observed = {k: v for k, v in observed.items() if len(v) > 0}
    if not observed:
        return None
    order = sorted(observed, key=lambda t: (t != "total", t))
    scheme = str(frame["cv"].iloc[0]) if "cv" in frame.columns else "held-out"
    law_name = str(frame["law"].iloc[0]) if "law" in frame.columns else (law.law.name if law else "law")
    return CVResult(
        law_name,
        scheme,
        {t: observed[t] for t in order},
        {t: predicted[t] for t in order},
        {t: metrics(observed[t], predicted[t]) for t in order},
    )


def _cross_validate_law(law: FittedLaw, fit_data: FitData, k: int = 5) -> CVResult | None:
    """Cross-validate the law of law.json on the runs it was fitted on (K folds of mixtures, seed 0)."""
    from mixlaw.selection import cross_validate_law

    k = min(k, fit_data.n_mixtures)
    target = law.meta.get("fit_target")
    try:
        result = cross_validate_law(
            fit_data, law.law.name, dict(law.law.hyper), None if target == "all" else target, k, 0
        )
    except MixlawInputError as exc:
        log.warning("could not cross-validate %s: %s", law.law.name, exc)
        return None
    truth = {"total": fit_data.total, **{t: fit_data.Y[:, i] for i, t in enumerate(fit_data.targets)}}
    names = [n for n in result["metrics"] if n in result["predictions"] and n in truth]
    return CVResult(
        law.law.name,
        f"with {k} folds of mixtures (computed by the report on the runs table)",
        {n: truth[n] for n in names},
        {n: result["predictions"][n] for n in names},
        result["metrics"],
    )


def _observed_points(data: ReportData) -> FitData | None:
    """Observed total loss of the runs at the law's selection, for the ternary and two-domain slices."""
    if data.law is None or data.observed_X is not None:
        return None
    if (data.law.meta.get("selection") or {}).get("pipeline"):
        # a pipeline law is fitted on extrapolated losses, not on observed runs: mark its mixtures only
        if data.law.meta.get("observed_mixtures"):
            data.observed_X = np.asarray(data.law.meta["observed_mixtures"], dtype=float)
        return None
    if data.runs is None:
        return None
    from mixlaw.fitted import prepare

    selection = dict(data.law.meta.get("selection") or {})
    weights = data.law.meta.get("weights") or {}
    spec = weights.get("spec")
    try:
        fit_data = prepare(
            data.runs,
            **{k: v for k, v in selection.items() if k in _PREPARE_KEYS},
            valid_weights=None if spec in (None, "uniform") else spec,
        )
    except (MixlawInputError, TypeError) as exc:
        log.debug("no observed points for the report: %s", exc)
        return None
    if fit_data.domains != data.law.domains:
        return None
    data.observed_X, data.observed_total = fit_data.X, fit_data.total
    return fit_data


_PREPARE_KEYS = ("model", "params", "step", "tokens", "step_tol", "train_domains", "valid_domains", "metric")


# --------------------------------------------------------------------------------------------- runs table


def from_runs(
    table: RunsTable,
    fit_data: FitData,
    law: str = "dml",
    hyper: dict[str, Any] | None = None,
    target: str | None = None,
    cv: int | str = "loo",
    seed: int = 0,
    command: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReportData:
    """Fit and cross-validate `law` on `fit_data`, optimize the fitted law, and gather the report."""
    from mixlaw.selection import cross_validate_law, fit_law_or_auto

    data = ReportData(source=table.source, runs=table)
    if command:
        data.commands.append(command)
    n_folds = cv if cv == "loo" else min(int(cv), fit_data.n_mixtures)
    result = cross_validate_law(fit_data, law, hyper, target, n_folds, seed, progress)
    truth = {"total": fit_data.total, **{t: fit_data.Y[:, i] for i, t in enumerate(fit_data.targets)}}
    names = [n for n in result["metrics"] if n in result["predictions"]]
    data.cv = CVResult(
        law,
        "leaving one mixture out" if n_folds == "loo" else f"with {n_folds} folds of mixtures",
        {n: truth[n] for n in names},
        {n: result["predictions"][n] for n in names},
        result["metrics"],
    )
    data.law = fit_law_or_auto(fit_data, law, hyper, target, command=command)
    data.observed_X, data.observed_total = fit_data.X, fit_data.total
    data.optimum = optimum_of(data.law, fit_data.X)
    data.notes.append(
        "no step or size laws: a runs table gives one checkpoint; run `mixlaw pipeline` for those"
    )
    return data


def optimum_of(law: FittedLaw, observed: np.ndarray | None = None) -> dict[str, Any] | None:
    """Optimize the law's total (`mixlaw.optimizer`) against the uniform mixture; None when it cannot."""
    if "total" not in law.predict(np.full((1, len(law.domains)), 1 / len(law.domains))):
        return None
    try:
        return optimize(law, observed=observed)
    except MixlawInputError as exc:
        log.warning("could not optimize the law: %s", exc)
        return None
