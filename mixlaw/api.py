"""The Python API, mirroring the command line (every function is also `mixlaw.<name>`).

    import mixlaw
    runs = mixlaw.read_runs("runs.csv")
    law = mixlaw.fit(runs, law="dml", model="70M", step=30000, valid_weights="valid_weights.csv")
    law.predict(X)                               # X (n, M) shares in law.domains order -> {target: (n,)}
    mixlaw.predict(law, mixtures_frame)          # DataFrame in, pred_<target>/pred_total columns out
    scores = mixlaw.evaluate(runs, law="dml", cv="loo")
    best = mixlaw.optimize(law)                  # the pipeline's optimizer (mixlaw.optimizer)
    mixlaw.report("results/", out="report.html") # or a runs table: mixlaw.report(runs, law="dml-log")
    print(mixlaw.export(best, "olmo-core", paths={"web": "s3://b/web/*.npy"}))
    sol = mixlaw.api.solve(runs, weights, PipelineConfig(1e9, target_step=1e5), "out/")  # `mixlaw pipeline`

The optimizer's inputs read from files and strings as the command line takes them: `read_bounds`,
`read_available`, `read_fixed`, `read_objective`, `read_mixture`.

Errors in the input raise `mixlaw.MixlawInputError` (the CLI's exit code 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw import exporters, optimizer, reporting
from mixlaw.constraints import read_available, read_bounds, read_fixed, read_mixture, read_objective
from mixlaw.errors import MixlawInputError
from mixlaw.files import read_json
from mixlaw.fitted import FitData, FittedLaw, prepare
from mixlaw.mixture import Domains, mixtures_array, strip_prefix
from mixlaw.pipeline import PipelineResult, run_pipeline
from mixlaw.recommendation import refuse_declined
from mixlaw.runs import RunsTable, validate_runs
from mixlaw.runs import read_runs as _read_runs
from mixlaw.selection import cross_validate_law, fit_law_or_auto, holdout_law
from mixlaw.settings import PipelineConfig, law_hyper
from mixlaw.solve import Solution, optimize_with_intervals, solve

__all__ = [
    "PipelineConfig",
    "PipelineResult",
    "Solution",
    "as_runs",
    "evaluate",
    "export",
    "fit",
    "law_hyper",
    "load_law",
    "mixtures_matrix",
    "optimize",
    "optimize_with_intervals",
    "predict",
    "prepare_data",
    "read_available",
    "read_bounds",
    "read_fixed",
    "read_mixture",
    "read_objective",
    "read_runs",
    "report",
    "run_pipeline",
    "solve",
]

log = logging.getLogger(__name__)

SELECTION_KEYS = (
    "model",
    "params",
    "step",
    "tokens",
    "step_tol",
    "valid_weights",
    "group",
    "train_domains",
    "valid_domains",
    "metric",
)
RunsLike = RunsTable | pd.DataFrame | str | Path
LawLike = FittedLaw | str | Path | Mapping


def read_runs(path: str | Path, renormalize: bool = False) -> RunsTable:
    """Read and validate a runs table (CSV, Parquet or JSONL); see `mixlaw.runs` for the columns."""
    return _read_runs(path, renormalize=renormalize)


def as_runs(runs: RunsLike, renormalize: bool = False) -> RunsTable:
    """A RunsTable from a table, a DataFrame in the runs-table format, or a path."""
    if isinstance(runs, RunsTable):
        return runs
    if isinstance(runs, pd.DataFrame):
        return RunsTable(validate_runs(runs.copy(), "runs", renormalize), "runs")
    if isinstance(runs, (str, Path)):
        return _read_runs(runs, renormalize=renormalize)
    raise MixlawInputError(f"runs: expected a path, a DataFrame or a RunsTable, got {type(runs).__name__}")


def load_law(law: LawLike) -> FittedLaw:
    """A FittedLaw from LAW.json (path), its dict, or a FittedLaw."""
    if isinstance(law, FittedLaw):
        return law
    if isinstance(law, Mapping):
        return FittedLaw.from_dict(dict(law))
    if isinstance(law, (str, Path)):
        return FittedLaw.load(law)
    raise MixlawInputError(f"law: expected a FittedLaw, a LAW.json path or dict, got {type(law).__name__}")


def prepare_data(runs: RunsLike | FitData, **selection: Any) -> FitData:
    """Select one model size and checkpoint and aggregate targets, as `mixlaw fit` does with its flags.

    selection: model, params, step, tokens, step_tol, valid_weights, group, train_domains, valid_domains, metric.
    A FitData is returned as it is (no selection allowed then).
    """
    if isinstance(runs, FitData):
        if any(v is not None for v in selection.values()):
            raise MixlawInputError("selection arguments apply to a runs table, not to prepared FitData")
        return runs
    unknown = sorted(set(selection) - set(SELECTION_KEYS))
    if unknown:
        raise MixlawInputError(
            f"unknown selection argument(s) {', '.join(unknown)}; expected {', '.join(SELECTION_KEYS)}"
        )
    table = as_runs(runs)
    if selection.get("model") is not None and selection.get("params") is not None:
        raise MixlawInputError("give model or params, not both")
    return prepare(table, **{k: v for k, v in selection.items() if v is not None})


def fit(
    runs: RunsLike | FitData,
    law: str = "dml",
    *,
    target: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    seed: int = 0,
    command: str | None = None,
    **selection: Any,
) -> FittedLaw:
    """Fit a mixing law (`mixlaw fit`). Returns a FittedLaw: `.predict(X)`, `.predict_frame(df)`, `.save(path)`.

    law: a name from `mixlaw laws` (or "auto"); hyper: the law's hyper-parameters (`--param KEY=VALUE`);
    selection: model, params, step, tokens, step_tol, valid_weights, group, train_domains, valid_domains, metric.
    """
    data = prepare_data(runs, **selection)
    command = command or f"mixlaw.fit(law={law!r})"
    return fit_law_or_auto(data, law, law_hyper(law, hyper, seed), target, command=command)


def evaluate(
    runs: RunsLike | FitData,
    law: str = "dml",
    *,
    cv: int | str = "loo",
    holdout_runs: Sequence[str] | None = None,
    target: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **selection: Any,
) -> dict[str, Any]:
    """Cross-validate a law with folds grouped by mixture (`mixlaw evaluate`): metrics per target and total,
    and the held-out `predictions` ({target: (n,)})."""
    data = prepare_data(runs, **selection)
    hyper = law_hyper(law, hyper, seed)
    if holdout_runs:
        return holdout_law(data, law, [str(r) for r in holdout_runs], hyper, target)
    return cross_validate_law(data, law, hyper, target, cv, seed, progress)


def mixtures_matrix(mixtures: Any, domains: list[str]) -> np.ndarray:
    """(n, M) shares in `domains` order from a DataFrame/dict/list of dicts with `p_<domain>` (or domain) keys,
    an array, or a file path (parsed and checked by `mixlaw.mixture.mixtures_array`)."""
    return mixtures_array(mixtures, domains, "mixtures")


def predict(law: LawLike, mixtures: Any) -> pd.DataFrame:
    """Predicted loss per target and total of each mixture (`mixlaw predict`): one row per mixture with its
    `p_<domain>` shares and `pred_<target>` columns."""
    fitted = load_law(law)
    X = mixtures_matrix(mixtures, fitted.domains)
    out = pd.DataFrame(X, columns=fitted.domain_columns)
    for name, values in fitted.predict(X).items():
        out[f"pred_{name}"] = values
    return out


def optimize(law: LawLike, *args: Any, **kwargs: Any) -> Any:
    """Optimize the mixture under a fitted law (`mixlaw optimize`); arguments as `mixlaw.optimizer.optimize`."""
    return optimizer.optimize(load_law(law), *args, **kwargs)


def report(
    source: RunsLike,
    out: str | Path = "report.html",
    *,
    law: str = "dml",
    cv: int | str = "loo",
    target: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    seed: int = 0,
    figures_dir: str | Path | None = None,
    formats: Sequence[str] = ("png", "svg"),
    title: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    **selection: Any,
) -> Path:
    """Write the HTML report (`mixlaw report`) and return its path.

    source: a results folder (reads law.json, optimum.json, predictions.csv, step/size laws, summary.md,
    runs.csv) or a runs table (path, DataFrame, RunsTable: the law is fitted and cross-validated first).
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        data = reporting.load_results_dir(source)
    else:
        table = as_runs(source)
        data = reporting.from_runs(
            table,
            prepare_data(table, **selection),
            law,
            law_hyper(law, hyper, seed),
            target,
            cv,
            seed,
            command=f"mixlaw.report({table.source!r}, law={law!r})",
            progress=progress,
        )
    path, _ = reporting.write_report(data, out, figures_dir, tuple(formats), title)
    return path


def export(
    optimum: str | Path | Mapping | Any,
    format: str = "json",
    *,
    paths: Mapping[str, str] | None = None,
    unit: str | None = None,
    avg_doc_tokens: str | Path | Mapping[str, float] | None = None,
    out: str | Path | None = None,
    force: bool = False,
) -> str:
    """The mixture of OPT.json (path, dict or optimizer result) as a `format` config (`mixlaw export`).

    Returns the text (and writes it to `out` when given). format: megatron, nemo, olmo-core, litgpt, mosaic,
    hf-datasets, nanotron, json, yaml. unit "documents" converts token shares with `avg_doc_tokens`
    (file or {domain: mean tokens per document}). A declined optimum (`recommendation.verdict` decline) is
    refused unless `force`.
    """

    if isinstance(optimum, (str, Path)):
        mixture = exporters.load_mixture(optimum)
        raw, source = read_json(Path(optimum), "optimum"), str(optimum)
    else:
        raw = optimum.to_dict() if hasattr(optimum, "to_dict") else optimum
        mixture = exporters.mixture_from_dict(dict(raw), "optimum")
        source = "optimum"
    refuse_declined(raw, source, force)
    domains = list(mixture.weights)
    kept = exporters.kept_domains(mixture)  # zero shares are left out and need no document length
    doc_tokens = None
    if isinstance(avg_doc_tokens, Mapping):
        known = Domains(domains)
        doc_tokens = {known.find(str(k)) or strip_prefix(str(k)): float(v) for k, v in avg_doc_tokens.items()}
        missing = [d for d in kept if d not in doc_tokens]
        if missing:
            raise MixlawInputError(f"avg_doc_tokens: no mean document length for {', '.join(missing)}")
    elif avg_doc_tokens is not None:
        doc_tokens = exporters.load_doc_tokens(avg_doc_tokens, kept)
    known = Domains(domains)
    unknown = sorted(d for d in paths or {} if known.find(str(d)) is None)
    if unknown:
        raise MixlawInputError(
            f"paths: unknown domain(s) {', '.join(unknown)}; the mixture has {', '.join(domains)}"
        )
    paths = {known.find(str(d)): p for d, p in (paths or {}).items()}
    data = read_json(optimum, "optimum") if isinstance(optimum, (str, Path)) else raw
    max_epochs = exporters.recorded_max_epochs(
        data, str(optimum) if isinstance(optimum, (str, Path)) else "optimum"
    )
    text, notes = exporters.export_mixture(mixture, format, paths, unit, doc_tokens, max_epochs=max_epochs)
    for note in notes:
        log.info("%s", note)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    return text
