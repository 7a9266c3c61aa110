"""Choosing a law by cross-validation on the fitting data only (`--law auto`), and comparing laws.

name, table = select_law(data)              # ranked CV table on `data`
fitted = fit_law(data, "auto")              # = fit_auto: select on data, fit the winner, record the table
cross_validate(data, "auto")                # nested CV: selection is redone inside every outer fold
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.evaluate import cross_validate
from mixlaw.fitted import FitData, FittedLaw, fit_law, resolve_target
from mixlaw.laws import LAWS

# Laws tried by `auto` unless a list is given. `olmix` is left out (same model as dml, slower fit) and
# `dml-implicit` / `dml2` answer other questions (total only, two domains).
AUTO_CANDIDATES = [
    "dml",
    "dml-log",
    "ridge-rlogr",
    "log-linear",
    "regmix-linear",
    "regmix-lgbm",
    "bimix",
    "gp",
]
# Non-parametric candidates are tried by default only on swarms of at least this many mixtures (Olmix reports
# that LightGBM needs more than ~100 runs); below it they add selection noise and are rarely best.
NONPARAMETRIC = ("regmix-lgbm", "gp")
NONPARAMETRIC_MIN_MIXTURES = 100
# `auto` may blend its two best candidates: w best + (1 - w) runner-up, w chosen from these by the same CV.
BLEND_WEIGHTS = (1.0, 0.75, 0.5, 0.25)
# The selection's own CV: leave-one-mixture-out on small swarms (less variance), K-fold above.
SMALL_SWARM = 40


def default_candidates(n_mixtures: int) -> list[str]:
    """AUTO_CANDIDATES that are registered, without the non-parametric ones on small swarms."""
    return [
        c
        for c in AUTO_CANDIDATES
        if c in LAWS and (c not in NONPARAMETRIC or n_mixtures >= NONPARAMETRIC_MIN_MIXTURES)
    ]


def selection_cv(cv: int | str, n_mixtures: int) -> int | str:
    """Resolve `auto` (loo up to SMALL_SWARM mixtures, else 5 folds) and cap K at the number of mixtures."""
    if cv == "auto":
        return "loo" if n_mixtures <= SMALL_SWARM else 5
    return cv if cv == "loo" else min(int(cv), n_mixtures)


def law_hyper(
    name: str,
    seed: int = 0,
    domain_map: str | dict | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Hyper-parameters a law gets in comparisons: the seed and domain map where the law takes them."""
    defaults = LAWS[name].defaults
    hyper: dict[str, Any] = {}
    if "seed" in defaults and name != "regmix-lgbm":
        hyper["seed"] = seed
    if "domain_map" in defaults and domain_map is not None:
        hyper["domain_map"] = domain_map
    hyper.update((extra or {}).get(name, {}))
    return hyper


def _key(metrics: dict[str, dict]) -> str:
    return "total" if "total" in metrics else next(iter(metrics))


def select_law(
    data: FitData,
    candidates: list[str] | None = None,
    cv: int | str = "auto",
    seed: int = 0,
    target: str | None = None,
    domain_map: str | dict | None = None,
    hypers: dict[str, dict[str, Any]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Cross-validate each candidate on `data` (grouped by mixture, the same folds for all) and return the best
    name by MAE of the total (or of the single target) plus the ranked table. Laws that cannot be fitted (too
    few mixtures, no domain map, missing package) are listed with their reason and skipped."""
    table, _ = _cross_validate_candidates(
        data, candidates or default_candidates(data.n_mixtures), cv, seed, target, domain_map, hypers
    )
    return table[0]["law"], table


def _cross_validate_candidates(
    data: FitData,
    candidates: list[str],
    cv: int | str,
    seed: int,
    target: str | None,
    domain_map: str | dict | None,
    hypers: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The ranked CV table of `select_law` and each scored law's held-out predictions of the scored target."""
    unknown = [c for c in candidates if c not in LAWS]
    if unknown:
        raise MixlawInputError(f"unknown law(s) {', '.join(unknown)}; available: {', '.join(LAWS)}")
    n_folds = selection_cv(cv, data.n_mixtures)
    table, predictions = [], {}
    for name in candidates:
        try:
            result = cross_validate(
                data, name, law_hyper(name, seed, domain_map, hypers), target=target, cv=n_folds, seed=seed
            )
        except MixlawInputError as exc:
            table.append({"law": name, "error": str(exc)})
            continue
        key = _key(result["metrics"])
        table.append(
            {"law": name, "scored_on": key, **result["metrics"][key], "fit_seconds": result["fit_seconds"]}
        )
        predictions[name] = result["predictions"][key]
    scored = sorted((row for row in table if "mae" in row), key=lambda row: row["mae"])
    if not scored:
        raise MixlawInputError("no candidate law could be fitted: " + "; ".join(r["error"] for r in table))
    return scored + [row for row in table if "mae" not in row], predictions


def blend_weight(first: np.ndarray, second: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The weight w of the better law in w first + (1 - w) second with the lowest held-out MAE, over
    BLEND_WEIGHTS (w = 1 first: ties keep the single law). Returns (w, its MAE)."""
    scores = [(float(np.mean(np.abs(w * first + (1 - w) * second - truth))), -w) for w in BLEND_WEIGHTS]
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
) -> FittedLaw:
    """Pick a law by CV on `data` only, fit it on all of `data`, and record the choice and table in the meta
    (`auto` in LAW.json). With `blend_candidates`, the two best laws are blended when a weight in BLEND_WEIGHTS
    gives a lower CV error than the best law alone (the weight is chosen on the same held-out predictions)."""
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
        weight, mae = blend_weight(predictions[scored[0]], predictions[scored[1]], truth)
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
