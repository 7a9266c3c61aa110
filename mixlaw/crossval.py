"""Honest evaluation: cross-validation with folds grouped by mixture, and scoring of held-out runs.

Rows of one mixture (seeds, repeats) always fall in the same fold. Every choice a law makes (K, ridge, ...)
happens inside its own `fit`, so it only ever sees the training folds. What is fitted is passed in as a
function `fit(data) -> FittedLaw` (one named law, or `auto`: see `mixlaw.selection.cross_validate_law`), so
this module sits below the code that chooses laws.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FitData, FittedLaw

FitFunction = Callable[[FitData], FittedLaw]


def mixture_folds(mixture_id: np.ndarray, cv: int | str, seed: int = 0) -> list[np.ndarray]:
    """Test-row masks, one per fold. `cv` is "loo" (one mixture per fold) or K (K folds of mixtures)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MixlawInputError(f"--seed {seed}: expected an integer >= 0")
    unique = np.unique(mixture_id)
    if cv == "loo":
        return [mixture_id == m for m in unique]
    k = int(cv)
    if k < 2:
        raise MixlawInputError(f"--cv {cv}: need at least 2 folds (or loo)")
    if k > len(unique):
        raise MixlawInputError(f"--cv {cv}: more folds than the {len(unique)} mixtures")
    assignment = np.random.default_rng(seed).permutation(len(unique)) % k
    fold_of = dict(zip(unique, assignment))
    fold = np.array([fold_of[m] for m in mixture_id])
    return [fold == f for f in range(k)]


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, mean absolute relative error, RMSE, max error, Spearman and R^2 of held-out predictions."""
    from scipy.stats import spearmanr  # lazy: scipy.stats costs ~0.5 s of start-up for every mixlaw command

    error = y_pred - y_true
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    spearman = (
        float(spearmanr(y_true, y_pred).statistic) if len(y_true) > 2 and np.ptp(y_true) > 0 else float("nan")
    )
    return {
        "mae": float(np.abs(error).mean()),
        "mare": float(np.abs(error / y_true).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "max": float(np.abs(error).max()),
        "spearman": spearman,
        "r2": float(1 - (error**2).sum() / ss_tot) if ss_tot > 0 else float("nan"),
    }


def _score(
    data: FitData, fitted_targets: list[str], predictions: dict[str, np.ndarray], rows: np.ndarray
) -> dict:
    out = {}
    truth = {"total": data.total, **{t: data.Y[:, i] for i, t in enumerate(data.targets)}}
    for name in ["total"] + fitted_targets:
        if name in predictions and name in truth and (name == "total" or name not in out):
            out[name] = metrics(truth[name][rows], predictions[name][rows])
    return out


def cross_validate(
    data: FitData,
    fit: FitFunction,
    cv: int | str = "loo",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    law: str = "",
) -> dict[str, Any]:
    """Held-out predictions of every row by `fit` applied to the other mixtures; metrics per target and total.

    `law` labels the result. When `fit` chooses a law itself (`auto`, meta["auto"]), the choice made inside each
    outer fold is listed under "auto_choices" (nested cross-validation)."""
    folds = mixture_folds(data.mixture_id, cv, seed)
    predictions: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    choices = []
    for i, test in enumerate(folds):
        fitted = fit(data.subset(~test))
        if "auto" in fitted.meta:
            choices.append(fitted.meta["auto"]["chosen"])
        for name, values in fitted.predict(data.X[test]).items():
            predictions.setdefault(name, np.full(len(data.X), np.nan))[test] = values
        if progress:
            progress(i + 1, len(folds))
    rows = np.ones(len(data.X), bool)
    result = {
        "law": law,
        "cv": cv if cv == "loo" else int(cv),
        "n_mixtures": data.n_mixtures,
        "n_rows": int(len(data.X)),
        "metrics": _score(data, fitted.targets, predictions, rows),
        "fit_seconds": (time.perf_counter() - started) / len(folds),
        "predictions": predictions,
    }
    if choices:
        result["auto_choices"] = choices
    return result


def holdout(data: FitData, fit: FitFunction, runs: list[str], law: str = "") -> dict[str, Any]:
    """Apply `fit` to every mixture except those of `runs` and score the listed runs (`law` labels the result)."""
    run_ids = data.frame["run"].astype(str).to_numpy()
    unknown = sorted(set(runs) - set(run_ids))
    if unknown:
        raise MixlawInputError(f"--holdout-runs: unknown run(s) {', '.join(unknown)}")
    held_mixtures = set(data.mixture_id[np.isin(run_ids, runs)])
    test = np.isin(data.mixture_id, list(held_mixtures))
    if test.all():
        raise MixlawInputError("--holdout-runs: nothing left to fit on")
    started = time.perf_counter()
    fitted = fit(data.subset(~test))
    seconds = time.perf_counter() - started
    predictions = {name: np.full(len(data.X), np.nan) for name in fitted.predict(data.X[:1])}
    for name, values in fitted.predict(data.X[test]).items():
        predictions[name][test] = values
    return {
        "law": law,
        "cv": "holdout",
        "holdout_runs": sorted(runs),
        "n_mixtures": data.n_mixtures,
        "n_rows": int(len(data.X)),
        "metrics": _score(data, fitted.targets, predictions, test),
        "fit_seconds": seconds,
        "predictions": predictions,
    }
