"""Choosing a law by cross-validation on the fitting data only (`--law auto`)."""

from __future__ import annotations

from typing import Any

from mixlaw.errors import MixlawInputError
from mixlaw.evaluate import cross_validate
from mixlaw.fitted import FitData
from mixlaw.laws import LAWS

# Laws tried by `auto` unless a list is given; peers register more and may add themselves here.
AUTO_CANDIDATES = ["dml", "dml-log", "ridge-rlogr"]


def select_law(
    data: FitData,
    candidates: list[str] | None = None,
    cv: int | str = 5,
    seed: int = 0,
    target: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Cross-validate each candidate on `data` (grouped by mixture) and return the best name by MAE of the
    total (or of the single target) plus the ranked table. Laws that cannot be fitted (too few mixtures,
    wrong number of domains) are listed with their reason and skipped."""
    candidates = candidates or [c for c in AUTO_CANDIDATES if c in LAWS]
    n_folds = cv if cv == "loo" else min(int(cv), data.n_mixtures)
    table = []
    for name in candidates:
        try:
            result = cross_validate(data, name, target=target, cv=n_folds, seed=seed)
        except MixlawInputError as exc:
            table.append({"law": name, "error": str(exc)})
            continue
        key = "total" if "total" in result["metrics"] else next(iter(result["metrics"]))
        table.append({"law": name, **result["metrics"][key], "fit_seconds": result["fit_seconds"]})
    scored = sorted((row for row in table if "mae" in row), key=lambda row: row["mae"])
    if not scored:
        raise MixlawInputError("no candidate law could be fitted: " + "; ".join(r["error"] for r in table))
    return scored[0]["law"], scored + [row for row in table if "mae" not in row]
