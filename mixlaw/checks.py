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

# The step check holds back the job's own step ratio (target / last fitted step): it fits checkpoints up to
# hi / ratio and predicts the rest (`holdout_cut`). Where fewer than MIN_CHECK_POINTS checkpoints would remain
# to fit, the ratio is capped at the nearest the data allow (and the check says so); a target inside the fitted
# range (ratio <= 1) falls back to HOLDOUT_STEP_RATIO.
HOLDOUT_STEP_RATIO = 1.5
MIN_CHECK_POINTS = 3


def holdout_cut(
    checkpoints: np.ndarray,
    hi: float,
    target: float,
    window: float | None,
    min_points: int = MIN_CHECK_POINTS,
) -> dict[str, Any]:
    """Where the step check cuts: the last fitted checkpoint of the check (`cut`) and its `ratio` = hi / cut.

    checkpoints: the fitted range's checkpoint values (steps or tokens); the check fits those <= cut inside
    the late window (`late_window(..., last=cut)`) and predicts those in (cut, hi]. Returns {cut, ratio,
    job_ratio, capped, reason}."""
    xs = np.unique(np.asarray(checkpoints, dtype=float))
    job_ratio = float(target / hi)
    wanted = job_ratio if job_ratio > 1 else HOLDOUT_STEP_RATIO

    def fitted_points(cut: float) -> int:
        inside = xs[xs <= cut * (1 + 1e-12)]
        return int(late_window(inside, window, last=cut).sum()) if len(inside) else 0

    def usable(cut: float) -> bool:
        return fitted_points(cut) >= min_points and bool((xs > cut * (1 + 1e-12)).any())

    cut = hi / wanted
    reason = (
        f"the job's ratio (target {target:g} / last fitted {hi:g})"
        if job_ratio > 1
        else f"the target is inside the fitted range: the default ratio {HOLDOUT_STEP_RATIO:g}"
    )
    capped = not usable(cut)
    if capped:
        options = [c for c in xs if usable(c)]
        if not options:
            return {"cut": None, "ratio": None, "job_ratio": job_ratio, "capped": True, "reason": reason}
        # A cap lowers the ratio: the nearest usable cut after the wanted one; an earlier cut (a larger ratio
        # than the job's) only when no later one is usable.
        later = [c for c in options if c >= cut]
        cut = float(min(later or options, key=lambda c: abs(np.log(c * wanted / hi))))
        reason = (
            f"capped: {wanted:.3g}x would leave fewer than {min_points} checkpoints to fit "
            f"(window {'none' if window is None else f'last / {window:g}'}); the nearest the data allow"
        )
    return {
        "cut": float(cut),
        "ratio": float(hi / cut),
        "job_ratio": job_ratio,
        "capped": capped,
        "reason": reason,
    }


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
    fit_points = in_range.loc[in_range["run"].isin(runs), variable].to_numpy(dtype=float)
    holdout = holdout_cut(fit_points, hi, config.target, config.step_window)
    checks["holdout"] = holdout
    cut = holdout["cut"] if holdout["cut"] is not None else hi / HOLDOUT_STEP_RATIO
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
            pred = _step_predictions(laws, late, variable, targets)
            checks["step"] = {
                "what": f"step laws fitted on {variable}s {start:g}:{cut:g}, predicting "
                f"{cut:g} < {variable} <= {hi:g} at every size ({hi / cut:.2f}x)",
                "ratio": hi / cut,
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
            pred = _step_predictions(step_laws, beyond, variable, targets)
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
            f"joint law fitted on {variable}s <= {cut:g}, predicting the later checkpoints ({hi / cut:.2f}x)",
        )
        checks["step"]["ratio"] = hi / cut
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


def job_ratio_check(checks: dict[str, Any], predicted: np.ndarray, variable: str) -> dict[str, Any]:
    """The check that leads checks.json and summary.md: the step check at the job's own ratio (`holdout`),
    its error in loss units at the target, and whether that error is larger than the gaps between the
    candidate mixtures' predicted losses (`predicted`: the weighted totals at the target, (n,)).

    error_at_target = mean relative error of the step check x mean predicted total at the target (nats);
    gaps: the median pairwise gap and the gap between the two best candidates (nats)."""
    holdout, step = checks.get("holdout", {}), checks.get("step", {})
    out: dict[str, Any] = {
        "stage": "step",
        "variable": variable,
        "ratio": holdout.get("ratio"),
        "job_ratio": holdout.get("job_ratio"),
        "capped": holdout.get("capped"),
        "reason": holdout.get("reason"),
    }
    if "mean_rel" not in step:
        out["skipped"] = step.get("skipped", "no step check")
        return out
    predicted = np.sort(np.asarray(predicted, dtype=float))
    pairs = np.abs(predicted[:, None] - predicted[None, :])[np.triu_indices(len(predicted), 1)]
    error = float(step["mean_rel"] * predicted.mean())
    gap_median = float(np.median(pairs)) if len(pairs) else None
    gap_best = float(predicted[1] - predicted[0]) if len(predicted) > 1 else None
    out.update(
        {
            "mean_rel": step["mean_rel"],
            "bias_rel": step["bias_rel"],
            "n": step["n"],
            "error_at_target": error,
            "gap_median": gap_median,
            "gap_best_two": gap_best,
            "larger_than_gaps": bool(gap_median is not None and error > gap_median),
            "larger_than_best_gap": bool(gap_best is not None and error > gap_best),
        }
    )
    if out["larger_than_gaps"]:
        out["warning"] = (
            f"the step check's error at {out['ratio']:.2f}x ({error:.4f} nats at the target) is larger than the "
            f"median gap between the candidates' predicted losses ({gap_median:.4f}): the absolute predictions "
            "cannot rank the mixtures by themselves"
        )
    elif out["larger_than_best_gap"]:
        out["warning"] = (
            f"the step check's error at {out['ratio']:.2f}x ({error:.4f} nats at the target) is larger than the "
            f"gap between the two best candidates ({gap_best:.4f})"
        )
    return out


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


def _step_predictions(
    laws: CurveLaws, truth: pd.DataFrame, variable: str, targets: list[str]
) -> pd.DataFrame:
    """The step laws' predictions at every step/tokens value of `truth`, wide: (model, run, variable, targets)."""
    points = np.sort(truth[variable].unique()).astype(float)[:, None]
    long = predict_curves(laws, points).assign(**{variable: lambda d: points[d["_point"].to_numpy(), 0]})
    return wide_predictions(long, ["model", "run", variable], targets)
