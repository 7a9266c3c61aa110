"""Hold-out checks of each extrapolation stage: the last checkpoints (step), the largest size (size), both at
once (chain), the observed checkpoints beyond the fitted range (step_beyond); relative error of the weighted
total."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.extrapolation import (
    fit_joint,
    fit_size_laws,
    fit_step_laws,
    predict_curves,
    rel_errors,
    wide_predictions,
)
from mixlaw.runs import Weights
from mixlaw.scaling import CurveLaws, late_window
from mixlaw.settings import PipelineConfig

HOLDOUT_STEP_RATIO = (
    1.5  # the step check fits checkpoints up to (last fitted step) / 1.5 and predicts the rest
)


def stage_checks(
    wide: pd.DataFrame,
    in_range: pd.DataFrame,
    runs: list[str],
    variable: str,
    targets: list[str],
    weights: Weights,
    params: dict[str, float],
    config: PipelineConfig,
    lo: float,
    hi: float,
    step_laws: CurveLaws | None,
) -> dict[str, Any]:
    """Hold-out errors (relative error of the weighted total) of each stage."""
    checks: dict[str, Any] = {}
    models = list(params)
    largest = models[-1]
    cut = hi / HOLDOUT_STEP_RATIO
    early = in_range[in_range[variable] <= cut]
    # The same late fit window as the pipeline's step laws, relative to the check's own last fitted step.
    early = early[late_window(early[variable], config.step_window, last=cut)]
    start = float(early[variable].min()) if len(early) else lo
    late = in_range[(in_range[variable] > cut) & in_range["run"].isin(runs)]
    observed_total = lambda f: f["total"].to_numpy(dtype=float)  # noqa: E731

    def score(pred: pd.DataFrame, truth: pd.DataFrame, on: list[str]) -> dict[str, Any]:
        merged = truth.merge(pred, on=on, suffixes=("", "_pred"))
        if merged.empty:
            return {"skipped": "nothing to compare"}
        p = sum(weights.group_weight[t] * merged[f"{t}_pred"].to_numpy(dtype=float) for t in targets)
        return rel_errors(p, observed_total(merged))

    if config.scale == "chain":
        # 1. Step stage: fit up to `cut`, predict the later checkpoints of each size.
        try:
            laws = fit_step_laws(
                early, variable, targets, config.step_share, config.delta, config.step_exponent
            )
            points = np.sort(late[variable].unique()).astype(float)[:, None]
            pred = wide_predictions(
                predict_curves(laws, points).assign(
                    **{variable: lambda d: points[d["_point"].to_numpy(), 0]}
                ),
                ["model", "run", variable],
                targets,
            )
            checks["step"] = {
                "what": f"step laws fitted on {variable}s {start:g}:{cut:g}, predicting "
                f"{cut:g} < {variable} <= {hi:g} at every size",
                **score(pred, late, ["model", "run", variable]),
                "per_size": {
                    m: score(pred[pred["model"] == m], late[late["model"] == m], ["model", "run", variable])
                    for m in models
                },
            }
        except MixlawInputError as exc:
            checks["step"] = {"skipped": str(exc)}
        # 2. Beyond the fitted range: observed checkpoints after `hi`, predicted by the full step laws.
        beyond = wide[wide[variable] > hi]
        if step_laws is not None and not beyond.empty:
            points = np.sort(beyond[variable].unique()).astype(float)[:, None]
            pred = wide_predictions(
                predict_curves(step_laws, points).assign(
                    **{variable: lambda d: points[d["_point"].to_numpy(), 0]}
                ),
                ["model", "run", variable],
                targets,
            )
            checks["step_beyond"] = {
                "what": f"observed checkpoints beyond the fitted range ({variable} > {hi:g}), "
                "predicted by the step laws",
                **score(pred, beyond, ["model", "run", variable]),
                "cases": cases(pred, beyond, targets, weights, ["model", "run", variable]),
            }
        # 3. Size stage: observed losses at `hi` for all sizes but the largest, predict the largest.
        at_hi = wide[(wide[variable] == hi) & wide["run"].isin(runs)]
        smaller = at_hi[at_hi["model"] != largest]
        if len(models) - 1 >= 3 and not smaller.empty:
            try:
                laws = fit_size_laws(
                    smaller[["model", "run"] + targets],
                    params,
                    targets,
                    config.size_share,
                    config.delta,
                    config.size_exponent,
                )
                pred = wide_predictions(predict_curves(laws, np.array([[params[largest]]])), ["run"], targets)
                checks["size"] = {
                    "what": f"size laws fitted on observed losses at {variable} {hi:g} of "
                    f"{', '.join(models[:-1])}, predicting {largest}",
                    **score(pred, at_hi[at_hi["model"] == largest], ["run"]),
                }
            except MixlawInputError as exc:
                checks["size"] = {"skipped": str(exc)}
        else:
            checks["size"] = {"skipped": "needs at least 4 sizes (3 to fit, the largest to check)"}
        # 4. Chain: step laws up to `cut` on all but the largest size, then size laws, predict the largest later.
        if len(models) - 1 >= 3:
            try:
                laws = fit_step_laws(
                    early[early["model"] != largest],
                    variable,
                    targets,
                    config.step_share,
                    config.delta,
                    config.step_exponent,
                )
                truth = late[late["model"] == largest]
                preds = []
                for value in np.sort(truth[variable].unique()):
                    at = wide_predictions(
                        predict_curves(laws, np.array([[value]])), ["model", "run"], targets
                    )
                    size = fit_size_laws(
                        at[at["run"].isin(runs)],
                        params,
                        targets,
                        config.size_share,
                        config.delta,
                        config.size_exponent,
                    )
                    p = wide_predictions(
                        predict_curves(size, np.array([[params[largest]]])), ["run"], targets
                    )
                    preds.append(p.assign(**{variable: value}))
                checks["chain"] = {
                    "what": f"step laws on {variable}s {start:g}:{cut:g} and sizes {', '.join(models[:-1])}, "
                    f"then size laws, predicting {largest} at {variable}s {cut:g}:{hi:g}",
                    **score(pd.concat(preds), truth, ["run", variable]),
                }
            except MixlawInputError as exc:
                checks["chain"] = {"skipped": str(exc)}
        else:
            checks["chain"] = {"skipped": "needs at least 4 sizes"}
    else:
        fit_frame = in_range[in_range["run"].isin(runs)]

        def joint_score(train: pd.DataFrame, truth: pd.DataFrame, what: str) -> dict[str, Any]:
            try:
                law = fit_joint(train, variable, targets, config)
            except MixlawInputError as exc:
                return {"skipped": str(exc)}
            pts = truth[["params", variable]].drop_duplicates().to_numpy(dtype=float)
            long = predict_curves(law, pts)
            long["params"], long[variable] = pts[long["_point"], 0], pts[long["_point"], 1]
            pred = wide_predictions(long, ["run", "params", variable], targets)
            return {"what": what, **score(pred, truth, ["run", "params", variable])}

        checks["step"] = joint_score(
            fit_frame[fit_frame[variable] <= cut],
            late,
            f"joint law fitted on {variable}s <= {cut:g}, predicting the later checkpoints",
        )
        at_hi = fit_frame[fit_frame[variable] == hi]
        checks["size"] = joint_score(
            fit_frame[fit_frame["model"] != largest],
            at_hi[at_hi["model"] == largest],
            f"joint law fitted without {largest}, predicting {largest} at {variable} {hi:g}",
        )
        checks["chain"] = joint_score(
            fit_frame[(fit_frame["model"] != largest) & (fit_frame[variable] <= cut)],
            late[late["model"] == largest],
            f"joint law fitted without {largest} on {variable}s <= {cut:g}, predicting {largest} later",
        )
    return checks


def cases(
    pred: pd.DataFrame, truth: pd.DataFrame, targets: list[str], weights: Weights, on: list[str]
) -> list[dict]:
    merged = truth.merge(pred, on=on, suffixes=("", "_pred"))
    out = []
    for _, row in merged.iterrows():
        p = sum(weights.group_weight[t] * row[f"{t}_pred"] for t in targets)
        out.append(
            {
                **{k: row[k] for k in on},
                "observed": float(row["total"]),
                "predicted": float(p),
                "rel_error": float(p / row["total"] - 1),
            }
        )
    return out
