"""The Python API, mirroring the command line (every function is also `mixlaw.<name>`).

    import mixlaw
    runs = mixlaw.read_runs("runs.csv")
    law = mixlaw.fit(runs, law="dml", model="70M", step=30000, valid_weights="valid_weights.csv")
    law.predict(X)                               # X (n, M) shares in law.domains order -> {target: (n,)}
    mixlaw.predict(law, mixtures_frame)          # DataFrame in, pred_<target>/pred_total columns out
    scores = mixlaw.evaluate(runs, law="dml", cv="loo")
    best = mixlaw.optimize(law)                  # the pipeline's optimizer (mixlaw.optimize)
    mixlaw.report("results/", out="report.html") # or a runs table: mixlaw.report(runs, law="dml-log")
    print(mixlaw.export(best, "olmo-core", paths={"web": "s3://b/web/*.npy"}))

Errors in the input raise `mixlaw.MixlawInputError` (the CLI's exit code 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FitData, FittedLaw, prepare
from mixlaw.runs import PROPORTION_PREFIX, RunsTable, read_table, validate_runs
from mixlaw.runs import read_runs as _read_runs

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


def prepare_data(runs: RunsLike, **selection: Any) -> FitData:
    """Select one model size and checkpoint and aggregate targets, as `mixlaw fit` does with its flags.

    selection: model, params, step, tokens, step_tol, valid_weights, group, train_domains, valid_domains, metric.
    """
    unknown = sorted(set(selection) - set(SELECTION_KEYS))
    if unknown:
        raise MixlawInputError(
            f"unknown selection argument(s) {', '.join(unknown)}; expected {', '.join(SELECTION_KEYS)}"
        )
    table = as_runs(runs)
    if selection.get("model") is not None and selection.get("params") is not None:
        raise MixlawInputError("give model or params, not both")
    return prepare(table, **{k: v for k, v in selection.items() if v is not None})


def _hyper(law: str, hyper: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    from mixlaw.laws import get_law

    hyper = dict(hyper or {})
    if law != "auto":
        defaults = get_law(law).defaults
        unknown = sorted(set(hyper) - set(defaults))
        if unknown:
            raise MixlawInputError(
                f"law {law}: unknown hyper-parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(defaults) or 'none'}"
            )
        if "seed" in defaults:
            hyper.setdefault("seed", seed)
    return hyper


def fit(
    runs: RunsLike,
    law: str = "dml",
    *,
    target: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    seed: int = 0,
    **selection: Any,
) -> FittedLaw:
    """Fit a mixing law (`mixlaw fit`). Returns a FittedLaw: `.predict(X)`, `.predict_frame(df)`, `.save(path)`.

    law: a name from `mixlaw laws` (or "auto"); hyper: the law's hyper-parameters (`--param KEY=VALUE`);
    selection: model, params, step, tokens, step_tol, valid_weights, group, train_domains, valid_domains, metric.
    """
    from mixlaw.fitted import fit_law

    data = prepare_data(runs, **selection)
    return fit_law(data, law, _hyper(law, hyper, seed), target, command=f"mixlaw.fit(law={law!r})")


def evaluate(
    runs: RunsLike,
    law: str = "dml",
    *,
    cv: int | str = "loo",
    holdout_runs: Sequence[str] | None = None,
    target: str | None = None,
    hyper: Mapping[str, Any] | None = None,
    seed: int = 0,
    **selection: Any,
) -> dict[str, Any]:
    """Cross-validate a law with folds grouped by mixture (`mixlaw evaluate`): metrics per target and total,
    and the held-out `predictions` ({target: (n,)})."""
    from mixlaw.evaluate import cross_validate, holdout

    data = prepare_data(runs, **selection)
    hyper = _hyper(law, hyper, seed)
    if holdout_runs:
        return holdout(data, law, [str(r) for r in holdout_runs], hyper, target)
    return cross_validate(data, law, hyper, target, cv, seed)


def mixtures_matrix(mixtures: Any, domains: list[str]) -> np.ndarray:
    """(n, M) shares in `domains` order from a DataFrame/dict/list of dicts with `p_<domain>` (or domain) keys,
    an array, or a file path."""
    if isinstance(mixtures, (str, Path)):
        mixtures = read_table(mixtures, "mixtures")
    if isinstance(mixtures, Mapping):
        mixtures = [mixtures]
    if isinstance(mixtures, list) and mixtures and isinstance(mixtures[0], Mapping):
        mixtures = pd.DataFrame(mixtures)
    if isinstance(mixtures, pd.DataFrame):
        columns = []
        for d in domains:
            column = PROPORTION_PREFIX + d if PROPORTION_PREFIX + d in mixtures.columns else d
            if column not in mixtures.columns:
                raise MixlawInputError(f"mixtures: missing column {PROPORTION_PREFIX + d}")
            columns.append(column)
        X = mixtures[columns].to_numpy(dtype=float)
    else:
        X = np.atleast_2d(np.asarray(mixtures, dtype=float))
    if X.shape[1] != len(domains):
        raise MixlawInputError(
            f"mixtures: {X.shape[1]} shares per mixture, the law has {len(domains)} domains"
        )
    if (X < 0).any() or (np.abs(X.sum(axis=1) - 1) > 1e-6).any():
        raise MixlawInputError("mixtures: shares must be >= 0 and sum to 1")
    return X


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
    """Optimize the mixture under a fitted law (`mixlaw optimize`); arguments as `mixlaw.optimize.optimize`."""
    try:
        from mixlaw.optimize import optimize as _optimize
    except ImportError as exc:
        raise ImportError(f"the optimizer (mixlaw.optimize) is not available: {exc}") from exc
    return _optimize(load_law(law), *args, **kwargs)


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
    from mixlaw.report import from_runs, load_results_dir, write_report

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        data = load_results_dir(source)
    else:
        table = as_runs(source)
        data = from_runs(
            table,
            prepare_data(table, **selection),
            law,
            _hyper(law, hyper, seed),
            target,
            cv,
            seed,
            command=f"mixlaw.report({table.source!r}, law={law!r})",
            progress=progress,
        )
    path, _ = write_report(data, out, figures_dir, tuple(formats), title)
    return path


def export(
    optimum: str | Path | Mapping | Any,
    format: str = "json",
    *,
    paths: Mapping[str, str] | None = None,
    unit: str | None = None,
    avg_doc_tokens: str | Path | Mapping[str, float] | None = None,
    out: str | Path | None = None,
) -> str:
    """The mixture of OPT.json (path, dict or optimizer result) as a `format` config (`mixlaw export`).

    Returns the text (and writes it to `out` when given). format: megatron, nemo, olmo-core, litgpt, mosaic,
    hf-datasets, nanotron, json, yaml. unit "documents" converts token shares with `avg_doc_tokens`
    (file or {domain: mean tokens per document}).
    """
    from mixlaw.export import (
        export_mixture,
        kept_domains,
        load_doc_tokens,
        load_mixture,
        mixture_from_dict,
        recorded_max_epochs,
    )
    from mixlaw.files import read_json

    if isinstance(optimum, (str, Path)):
        mixture = load_mixture(optimum)
    else:
        raw = optimum.to_dict() if hasattr(optimum, "to_dict") else optimum
        mixture = mixture_from_dict(dict(raw), "optimum")
    domains = list(mixture.weights)
    kept = kept_domains(mixture)  # zero shares are left out and need no document length
    doc_tokens = None
    if isinstance(avg_doc_tokens, Mapping):
        doc_tokens = {str(k).removeprefix(PROPORTION_PREFIX): float(v) for k, v in avg_doc_tokens.items()}
        missing = [d for d in kept if d not in doc_tokens]
        if missing:
            raise MixlawInputError(f"avg_doc_tokens: no mean document length for {', '.join(missing)}")
    elif avg_doc_tokens is not None:
        doc_tokens = load_doc_tokens(avg_doc_tokens, kept)
    unknown = sorted(set(paths or {}) - set(domains))
    if unknown:
        raise MixlawInputError(
            f"paths: unknown domain(s) {', '.join(unknown)}; the mixture has {', '.join(domains)}"
        )
    data = read_json(optimum, "optimum") if isinstance(optimum, (str, Path)) else raw
    max_epochs = recorded_max_epochs(data, str(optimum) if isinstance(optimum, (str, Path)) else "optimum")
    text, notes = export_mixture(mixture, format, dict(paths or {}), unit, doc_tokens, max_epochs=max_epochs)
    for note in notes:
        log.info("%s", note)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    return text
