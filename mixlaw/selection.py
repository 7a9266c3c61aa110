"""The floor above `fitted`: "a law name or auto" -> a fitted law, choosing by cross-validation on the fitting
data only, and comparing laws.

fitted = fit_law_or_auto(data, "auto")        # or a registry name (then it is `fitted.fit_law`)
name, table = select_law(data)                # ranked CV table on `data`
cross_validate_law(data, "auto", cv=5)        # nested CV: the selection is redone inside every outer fold

`auto` means one thing everywhere (`mixlaw fit/evaluate --law auto`, the pipeline, the API, the report):
cross-validate the default candidates (the laws whose `auto_candidate` is set, without those whose
`auto_min_mixtures` the data does not reach) on the same folds grouped by mixture, leave-one-mixture-out up to
SMALL_SWARM mixtures and 5 folds above; rank by the MAE of the total (or of the single fitted target); blend
the two best when a weight in BLEND_WEIGHTS lowers the same held-out error; fit the result on all the data.
Each candidate is cross-validated once: its held-out predictions serve the ranking, the blend's weight and the
blend's error (no candidate is refitted for the blend step).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from mixlaw.crossval import cross_validate, holdout
from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FitData, FittedLaw, fit_law, resolve_target
from mixlaw.laws import LAWS, law_hyper

# `auto` may blend its two best candidates: w best + (1 - w) runner-up, w chosen from these by the same CV.
BLEND_WEIGHTS = (1.0, 0.75, 0.5, 0.25)
# The selection's own CV: leave-one-mixture-out on small swarms (less variance), K-fold above.
SMALL_SWARM = 40


def auto_candidates() -> list[str]:
    """Registered laws that `auto` may try, in their `auto_candidate` order."""
    found = [(c.auto_candidate, name) for name, c in LAWS.items() if c.auto_candidate is not None]
    return [name for _, name in sorted(found)]


def default_candidates(n_mixtures: int) -> list[str]:
    """The candidates `auto` tries on `n_mixtures` mixtures: `auto_candidates()` without the laws whose
    `auto_min_mixtures` is not reached (the non-parametric ones on small swarms)."""
    return [c for c in auto_candidates() if n_mixtures >= LAWS[c].auto_min_mixtures]


def selection_cv(cv: int | str, n_mixtures: int) -> int | str:
    """Resolve `auto` (loo up to SMALL_SWARM mixtures, else 5 folds) and cap K at the number of mixtures."""
    if cv == "auto":
        return "loo" if n_mixtures <= SMALL_SWARM else 5
    return cv if cv == "loo" else min(int(cv), n_mixtures)


def _key(metrics: dict[str, dict]) -> str:
    return "total" if "total" in metrics else next(iter(metrics))


# --------------------------------------------------------------------------------------------- the dispatcher


def fit_law_or_auto(
    data: FitData,
    law: str,
    hyper: dict[str, Any] | None = None,
    target: str | None = None,
    command: str | None = None,
) -> FittedLaw:
    """Fit `law` on `data`: a registry name (`fitted.fit_law`, `hyper` its hyper-parameters) or "auto"
    (`fit_auto`, `hyper` its options: candidates, cv, seed, domain_map, blend_candidates, blend_weights)."""
    if law == "auto":
        return fit_auto(data, target=target, command=command, **(hyper or {}))
    return fit_law(data, law, hyper, target, command=command)


def law_fitter(
    law: str, hyper: dict[str, Any] | None = None, target: str | None = None
) -> Callable[[FitData], FittedLaw]:
    """The fit function `evaluate.cross_validate` and `evaluate.holdout` take, for a law name or auto."""
    return partial(fit_law_or_auto, law=law, hyper=hyper, target=target)


def cross_validate_law(
    data: FitData,
    law: str,
    hyper: dict[str, Any] | None = None,
    target: str | None = None,
    cv: int | str = "loo",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """`evaluate.cross_validate` of a law name or auto (auto: nested, the choice is redone in every fold)."""
    return cross_validate(data, law_fitter(law, hyper, target), cv, seed, progress, law=law)


def holdout_law(
    data: FitData, law: str, runs: list[str], hyper: dict[str, Any] | None = None, target: str | None = None
) -> dict[str, Any]:
    """`evaluate.holdout` of a law name or auto."""
    return holdout(data, law_fitter(law, hyper, target), runs, law=law)


# --------------------------------------------------------------------------------------------- selection


def select_law(
    data: FitData,
    candidates: list[str] | None = None,
    cv: int | str = "auto",
    seed: int = 0,
    target: str | None = None,
    domain_map: str | dict | None = None,
    hypers: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Cross-validate each candidate on `data` (grouped by mixture, the same folds for all) and return the best
    name by MAE of the total (or of the single target) plus the ranked table. Laws that cannot be fitted (too
    few mixtures, no domain map, missing package) are listed with their reason and skipped."""
    candidates = candidates or default_candidates(data.n_mixtures)
    table, _ = _cross_validate_candidates(data, candidates, cv, seed, target, domain_map, hypers, progress)
    return table[0]["law"], table


def _cross_validate_candidates(
    data: FitData,
    candidates: list[str],
    cv: int | str,
    seed: int,
    target: str | None,
    domain_map: str | dict | None,
    hypers: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The ranked CV table of `select_law` and each scored law's held-out predictions of the scored target
    (computed once per candidate; `fit_auto` reuses them for the blend)."""
    unknown = [c for c in candidates if c not in LAWS]
    if unknown:
        raise MixlawInputError(f"unknown law(s) {', '.join(unknown)}; available: {', '.join(LAWS)}")
    n_folds = selection_cv(cv, data.n_mixtures)
    table, predictions = [], {}
    for i, name in enumerate(candidates):
        if progress and i:  # candidates done so far (a failing candidate counts as done)
            progress(i, len(candidates))
        try:
            result = cross_validate(
                data,
                law_fitter(name, law_hyper(name, seed, domain_map, hypers), target),
                n_folds,
                seed,
                law=name,
            )
        except MixlawInputError as exc:
            table.append({"law": name, "error": str(exc)})
            continue
        key = _key(result["metrics"])
        table.append(
            {"law": name, "scored_on": key, **result["metrics"][key], "fit_seconds": result["fit_seconds"]}
        )
        predictions[name] = result["predictions"][key]
    if progress:
        progress(len(candidates), len(candidates))
    scored = sorted((row for row in table if "mae" in row), key=lambda row: row["mae"])
    if not scored:
        raise MixlawInputError("no candidate law could be fitted: " + "; ".join(r["error"] for r in table))
    return scored + [row for row in table if "mae" not in row], predictions


def blend_weight(
    first: np.ndarray, second: np.ndarray, truth: np.ndarray, weights: tuple[float, ...] = BLEND_WEIGHTS
) -> tuple[float, float]:
    """The weight w of the better law in w first + (1 - w) second with the lowest held-out MAE, over `weights`
    (ties prefer the larger w: with 1.0 among them, ties keep the single law). Returns (w, its MAE)."""
    scores = [(float(np.mean(np.abs(w * first + (1 - w) * second - truth))), -w) for w in weights]
    mae, neg_w = min(scores)
    return -neg_w, mae


def fit_auto(
    data: FitData,
    candidates: list[str] | None = None,
    cv: int | str = "auto",
    seed: int = 0,
    target: str | None = None,
    domain_map: str | dict | None = None,
    command: str | None = None,
    blend_candidates: bool = True,
    blend_weights: tuple[float, ...] | list[float] = BLEND_WEIGHTS,
) -> FittedLaw:
    """Pick a law by CV on `data` only, fit it on all of `data`, and record the choice and table in the meta
    (`auto` in LAW.json). With `blend_candidates`, the two best laws are blended when a weight in
    `blend_weights` gives a lower CV error than the best law alone (the weight is chosen on the same held-out
    predictions the ranking used)."""
    candidates = candidates or default_candidates(data.n_mixtures)
    table, predictions = _cross_validate_candidates(data, candidates, cv, seed, target, domain_map)
    chosen, blend = table[0]["law"], None
    scored = [row["law"] for row in table if "mae" in row]
    if blend_candidates and len(scored) > 1:  # the best law, or a CV-weighted blend with the runner-up
        truth = (
            data.total
            if table[0]["scored_on"] == "total"
            else resolve_target(data, LAWS[chosen], target)[1][:, 0]
        )
        weight, mae = blend_weight(
            predictions[scored[0]], predictions[scored[1]], truth, tuple(float(w) for w in blend_weights)
        )
        if weight < 1:
            blend = {"members": [scored[0], scored[1]], "weights": [weight, 1 - weight], "cv_mae": mae}
    if blend:
        hyper = {
            "members": ",".join(blend["members"]),
            "weights": ",".join(f"{w:g}" for w in blend["weights"]),
            "seed": seed,
            "domain_map": domain_map,
        }
        fitted = fit_law(data, "blend", hyper, target, command=command)
        chosen = "blend(" + ",".join(f"{m}:{w:g}" for m, w in zip(blend["members"], blend["weights"])) + ")"
    else:
        fitted = fit_law(data, chosen, law_hyper(chosen, seed, domain_map), target, command=command)
    fitted.meta["auto"] = {
        "chosen": chosen,
        "cv": selection_cv(cv, data.n_mixtures),
        "seed": seed,
        "candidates": candidates,
        "table": table,
        "blend": blend,
    }
    return fitted
