"""The nested prediction pipeline: small runs -> target-scale losses -> mixing law -> optimal mixture.

Two ways to reach the target scale (`scale="chain"`, the default, or `scale="joint"`):

- chain (the paper's): a step law per (mixture, size, target) predicts each size at the target step (or
  tokens); a size law per (mixture, target) over those predictions predicts the target size.
- joint: L(N, D) = E + A N^-alpha + B D^-beta per (mixture, target), fitted on all sizes and checkpoints.

Then a mixing law (chosen by cross-validation unless named) is fitted on the extrapolated losses of every
mixture observed at enough sizes, and the mixture is optimized (`mixlaw.optimizer`). The same extrapolation at
several training lengths gives a step-aware law (`step_grid` in law.json) for `equivalent_extra_steps`.

Each stage is validated by holding data back (`mixlaw.checks`): the last checkpoints (step stage), the largest
size (size stage), both at once (chain), and cross-validation over mixtures (mixing stage). The scale laws live
in `mixlaw.extrapolation`; `mixlaw.solve` adds the bootstrap, the optimum and the result files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.checks import HOLDOUT_STEP_RATIO, job_ratio_check, stage_checks
from mixlaw.constraints import tokens_per_step
from mixlaw.errors import MixlawInputError
from mixlaw.extrapolation import Extrapolator, fit_joint, fit_step_laws, model_sizes, natural_order
from mixlaw.fitted import FitData, FittedLaw, fit_law
from mixlaw.mixture import strip_prefix
from mixlaw.runs import RunsTable, Weights, aggregate
from mixlaw.sanity import proxy_sanity
from mixlaw.scaling import CurveLaws, late_window, regime_warnings, step_regime
from mixlaw.selection import cross_validate_law, default_candidates, fit_law_or_auto
from mixlaw.settings import STEP_GRID_FACTORS, PipelineConfig, law_hyper

__all__ = ["HOLDOUT_STEP_RATIO", "STEP_GRID_FACTORS", "PipelineConfig", "PipelineResult", "run_pipeline"]


@dataclass
class PipelineResult:
    """Everything the pipeline found; `extrapolator` predicts at other training lengths."""

    config: PipelineConfig
    law: FittedLaw
    predictions: pd.DataFrame
    step_laws: CurveLaws | None
    size_laws: CurveLaws | None
    joint_law: CurveLaws | None
    checks: dict[str, Any]
    selection: list[dict[str, Any]]
    runs: list[str]
    defaults: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    extrapolator: Extrapolator | None = None
    template: dict[str, Any] = field(default_factory=dict)
    data: FitData | None = None  # the extrapolated losses the mixing law was fitted on
    fit_frame: pd.DataFrame | None = (
        None  # the used mixtures' checkpoints in the fitted range (before the window)
    )

    def extrapolate(self, value: float) -> pd.DataFrame:
        """Every used mixture's losses at the target size and another step/tokens value (run, p_ columns,
        targets)."""
        return self.extrapolator.frame(value)

    def mixing_law_at(self, value: float) -> FittedLaw:
        """The mixing law refitted (same law) on the extrapolated losses at another step/tokens value (the
        fitted law itself where those are the losses it was fitted on)."""
        data = _fit_data(self.extrapolate(value), self.template)
        return self.law if _same_data(data, self.data) else _refit(self.law, data)


# --------------------------------------------------------------------------------------------- the pipeline


def _total(frame: pd.DataFrame, weights: Weights, targets: list[str]) -> np.ndarray:
    gw = weights.group_weight
    return sum(gw[t] * frame[t].to_numpy(dtype=float) for t in targets)


def _fit_mixing(frame: pd.DataFrame, template: dict[str, Any], law: str, seed: int) -> FittedLaw:
    data = _fit_data(frame, template)
    fitted = fit_law(data, law, law_hyper(law, None, seed))
    return fitted


def _refit(fitted: FittedLaw, data: FitData) -> FittedLaw:
    """The same law (name and hyper-parameters, so a blend keeps its members) fitted on other data."""
    return fit_law(data, fitted.law.name, fitted.law.hyper)


def _same_data(data: FitData, other: FitData | None) -> bool:
    """Whether a fit on `data` is the fit on `other` (same rows, mixtures, losses: fits are deterministic)."""
    return (
        other is not None
        and data.targets == other.targets
        and data.domains == other.domains
        and all(
            np.array_equal(a, b) for a, b in ((data.X, other.X), (data.Y, other.Y), (data.total, other.total))
        )
        and np.array_equal(_steps(data), _steps(other))
    )


def _steps(data: FitData) -> np.ndarray:
    return data.frame["step"].to_numpy(dtype=float) if "step" in data.frame.columns else np.empty(0)


def _fit_data(frame: pd.DataFrame, template: dict[str, Any]) -> FitData:
    return FitData.from_wide(
        frame,
        template["weights"],
        [strip_prefix(c) for c in template["columns"]],
        targets=template["targets"],
        selection=template["selection"],
        data_hash=template["data_hash"],
        source=template["source"],
    )


def run_pipeline(
    table: RunsTable, weights: Weights, config: PipelineConfig, log: Callable[[str], None] = lambda m: None
) -> PipelineResult:
    """Run every stage; see the module docstring. `log` receives one progress line per stage."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    variable = config.variable
    if variable not in table.frame.columns:
        raise MixlawInputError(f"{table.source}: no {variable} column (needed for --target-{variable})")
    wide = aggregate(table, weights)
    targets = list(weights.groups)
    sizes = model_sizes(wide, config.fit_sizes)
    params = dict(zip(sizes["model"], sizes["params"].astype(float)))
    wide = wide[wide["model"].isin(params)].copy()
    columns = table.domain_columns
    # Step range: default every complete checkpoint up to the largest step observed at every size.
    largest_common = float(wide.groupby("model")[variable].max().min())
    lo, hi = config.fit_steps or (None, None)
    lo = float(wide[variable].min()) if lo is None else float(lo)
    hi = largest_common if hi is None else float(hi)
    if lo >= hi:
        raise MixlawInputError(f"--fit-steps: empty range {lo:g}:{hi:g}")
    in_range = wide[(wide[variable] >= lo) & (wide[variable] <= hi)]
    defaults = {
        "fit_steps": [lo, hi],
        "fit_sizes": list(params),
        "variable": variable,
        "largest_common": largest_common,
    }
    mixtures = wide.drop_duplicates("run").set_index("run")[columns]
    template = {
        "targets": targets,
        "columns": columns,
        "weights": weights,
        "source": table.source,
        "data_hash": table.data_hash(),
        "selection": {"pipeline": True, "target_params": config.target_params, variable: config.target},
    }
    checks: dict[str, Any] = {}
    step_laws = size_laws = joint_law = None

    # The step laws see only the late fit window (checkpoints >= hi / step_window; scaling.STEP_WINDOW); where
    # that leaves fewer than 2 mixtures with 3 checkpoints (short proxy runs), every checkpoint is used instead.
    window = config.step_window
    for attempt in (window, None) if window is not None else (None,):
        step_frame = in_range[late_window(in_range[variable], attempt, last=hi)]
        # Which mixtures: observed (with >= 3 checkpoints in the step-fit range) at >= min_sizes sizes.
        counted = step_frame if config.scale == "chain" else in_range
        per_run = counted.groupby(["run", "model"])[variable].nunique()
        sizes_per_run = (per_run >= 3).groupby("run").sum()
        runs = sorted(
            sizes_per_run[sizes_per_run >= min(config.min_sizes, len(params))].index, key=natural_order
        )
        if len(runs) >= 2 or attempt is None:
            break
        log(
            f"WARNING: the step-fit window (>= {hi / attempt:g} {variable}s) leaves {len(runs)} mixture(s) with 3 "
            "checkpoints; fitting every checkpoint instead"
        )
        defaults["step_window_fallback"] = (
            f"window {attempt:g} left {len(runs)} mixture(s); every checkpoint used"
        )
    window = attempt
    defaults["step_window"] = window
    defaults["step_fit_from"] = float(step_frame[variable].min()) if len(step_frame) else None
    if len(runs) < 2:
        raise MixlawInputError(
            f"only {len(runs)} mixture(s) observed at {config.min_sizes} sizes with 3 checkpoints "
            f"in {float(counted[variable].min()) if len(counted) else lo:g}:{hi:g}; lower --min-sizes, widen "
            "--fit-steps or --step-window"
        )
    log(f"{len(runs)} mixtures at >= {config.min_sizes} of {len(params)} sizes; {variable}s {lo:g}:{hi:g}")

    if config.scale == "chain":
        step_laws = fit_step_laws(
            step_frame, variable, targets, config.step_share, config.delta, config.step_exponent
        )
        step_laws.meta["window"] = window
        timings["step_laws"] = time.perf_counter() - clock
        log(
            f"step laws: {len(step_laws.keys)} curves on {variable}s >= {defaults['step_fit_from']:g}, "
            f"share beta per {config.step_share} "
            f"({timings['step_laws']:.1f} s)"
        )

        extrapolator = Extrapolator(config, runs, targets, params, mixtures, step_laws=step_laws)
        t0 = time.perf_counter()
        at_target, size_laws = extrapolator.at(config.target)
        timings["size_laws"] = time.perf_counter() - t0
        log(
            f"size laws: {len(size_laws.keys)} curves, share alpha per {config.size_share} "
            f"({timings['size_laws']:.1f} s)"
        )
    else:
        fit_frame = in_range[in_range["run"].isin(runs)]
        joint_law = fit_joint(fit_frame, variable, targets, config)
        timings["joint_law"] = time.perf_counter() - clock
        log(
            f"joint law: {len(joint_law.keys)} curves, share exponents per {config.joint_share} "
            f"({timings['joint_law']:.1f} s)"
        )

        extrapolator = Extrapolator(config, runs, targets, params, mixtures, joint_law=joint_law)
        at_target, _ = extrapolator.at(config.target)

    frame = at_target.merge(mixtures, left_on="run", right_index=True)
    frame = frame[["run"] + columns + targets]
    frame["total"] = _total(frame, weights, targets)

    # Mixing law on the extrapolated losses.
    t0 = time.perf_counter()
    data = _fit_data(frame, template)
    selection: list[dict[str, Any]] = []
    law_name = config.law
    if law_name in (None, "auto"):  # the one `auto` (mixlaw.selection): chosen by its CV and fitted on `data`
        n_laws = len(default_candidates(data.n_mixtures))
        log(
            f"mixing law: choosing among {n_laws} candidate laws by cross-validation on {data.n_mixtures} mixtures"
        )
        fitted = fit_law_or_auto(data, "auto", law_hyper("auto", None, config.seed))
        law_name, selection = fitted.meta["auto"]["chosen"], fitted.meta["auto"]["table"]
    else:
        try:
            result = cross_validate_law(data, law_name, cv=min(config.cv, data.n_mixtures), seed=config.seed)
            selection = [
                {
                    "law": law_name,
                    **result["metrics"][
                        "total" if "total" in result["metrics"] else next(iter(result["metrics"]))
                    ],
                }
            ]
        except MixlawInputError as exc:
            selection = [{"law": law_name, "error": str(exc)}]
        fitted = _fit_mixing(frame, template, law_name, config.seed)
    timings["mixing_law"] = time.perf_counter() - t0
    log(f"mixing law: {law_name} ({timings['mixing_law']:.1f} s)")

    # Step-aware law: the same mixing law at several training lengths (target size).
    t0 = time.perf_counter()
    grid_values = [config.target * f for f in config.step_grid]
    grid_laws = []
    for value in grid_values:
        grid_data = _fit_data(extrapolator.frame(value), template)
        # at the target itself (factor 1) the refit would be the fit just made
        grid_laws.append((fitted if _same_data(grid_data, data) else _refit(fitted, grid_data)).law.to_dict())
    fitted.meta["step_grid"] = {
        "variable": variable,
        "target": config.target,
        "values": grid_values,
        "factors": list(config.step_grid),
        "laws": grid_laws,
    }
    fitted.meta["observed_mixtures"] = frame[columns].to_numpy(dtype=float).tolist()
    fitted.meta["observed_runs"] = frame["run"].astype(str).tolist()
    fitted.meta["target_scale"] = {
        "params": config.target_params,
        variable: config.target,
        "scale_law": config.scale,
    }
    timings["step_grid"] = time.perf_counter() - t0
    log(f"step-aware laws at {len(grid_values)} training lengths ({timings['step_grid']:.1f} s)")

    # Validation of each stage.
    t0 = time.perf_counter()
    used = replace(config, step_window=window)  # the checks hold back with the window the fit used
    checks = stage_checks(wide, in_range, runs, variable, targets, weights, params, used, lo, hi, step_laws)
    # checks.json leads with the check at the job's own extrapolation ratio (issue 14 item 5).
    checks = {"at_job_ratio": job_ratio_check(checks, frame["total"].to_numpy(), variable), **checks}
    if step_laws is not None:
        regime = step_regime(
            step_laws, params, None if variable == "tokens" else tokens_per_step(table.frame)
        )
        checks["regime"] = {**regime, "warnings": regime_warnings(regime)}
    else:
        checks["regime"] = {"skipped": "the joint scale law has no separate step fits"}
    checks["mixing"] = {"selection": selection, "law": law_name}
    checks["proxy_sanity"] = proxy_sanity(wide, variable, params)  # loss falls with size and steps
    timings["checks"] = time.perf_counter() - t0
    log(f"stage checks ({timings['checks']:.1f} s)")

    predictions = frame[["run"] + columns].copy()
    for t in targets:
        predictions[f"pred_{t}"] = frame[t].to_numpy()
    predictions["pred_total"] = frame["total"].to_numpy()
    timings["total"] = time.perf_counter() - clock
    return PipelineResult(
        config,
        fitted,
        predictions,
        step_laws,
        size_laws,
        joint_law,
        checks,
        selection,
        runs,
        defaults,
        timings,
        extrapolator=extrapolator,
        template=template,
        data=data,
        fit_frame=in_range[in_range["run"].isin(runs)],
    )
