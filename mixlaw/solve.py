"""One path from a runs table to the result files: pipeline -> bootstrap -> optimum -> intervals -> files.

Used by `mixlaw pipeline`, `mixlaw run` and `mixlaw.api.solve`; `optimize_with_intervals` is the optimum and
its intervals alone (also `mixlaw optimize`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixlaw import gains, scale_error
from mixlaw.constraints import tokens_per_step
from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FittedLaw
from mixlaw.mixture import strip_prefix
from mixlaw.optimizer import optimize
from mixlaw.pipeline import PipelineResult, run_pipeline
from mixlaw.recommendation import MIN_CONFIDENCE, recommendation
from mixlaw.reporting.markdown import summary_markdown
from mixlaw.runs import RunsTable, Weights, dump_json, write_runs
from mixlaw.settings import OptimizeConfig, PipelineConfig, check_fields, flag_label
from mixlaw.uncertainty import Ensemble, attach, bootstrap_law, optimum_uncertainty

NO_ENSEMBLE = "no bootstrap ensemble: fit with --bootstrap N (or pipeline --bootstrap N)"
# Keyword arguments of `optimize` that define the problem; all but the last two also constrain the intervals.
PROBLEM_KEYS = (
    "bounds",
    "available",
    "target_tokens",
    "max_epochs",
    "fixed",
    "objective",
    "prior",
    "prior_strength",
    "max_distance",
    "starts",
)


@dataclass
class Solution:
    """The pipeline's result and the optimum (optimum.json's content)."""

    pipeline: PipelineResult
    optimum: dict[str, Any]


def optimize_with_intervals(
    law: FittedLaw,
    problem: Mapping[str, Any],
    baseline: Any = None,
    baseline_name: str | None = None,
    seed: int = 0,
    ensemble: Ensemble | None = None,
    interval: float = 0.9,
    no_ensemble_reason: str = NO_ENSEMBLE,
    log: Callable[[str], None] = lambda m: None,
    trust_region: bool = True,
    min_confidence: float = MIN_CONFIDENCE,
) -> dict[str, Any]:
    """The optimum of `law` under `problem` (keys of PROBLEM_KEYS) with `uncertainty` intervals from
    `ensemble` (or the one stored in the law); without one, `uncertainty` is None and says why.

    `trust_region` (default on): the optimum stays within the trust radius of an observed mixture (see
    `mixlaw.optimizer.TRUST_RADIUS`; `max_distance` overrides the radius). `recommendation` says `recommend`
    or `decline` (`mixlaw.recommendation`), `alternative` names the best observed mixture."""
    unknown = sorted(set(problem) - set(PROBLEM_KEYS))
    if unknown:
        raise MixlawInputError(f"optimize: unknown problem key(s) {', '.join(unknown)}")
    check_fields(OptimizeConfig, {"interval": interval}, flag_label(OptimizeConfig))
    result = optimize(
        law, **problem, baseline=baseline, baseline_name=baseline_name, seed=seed, trust_region=trust_region
    )
    result["alternative"] = best_observed(law, result)
    if ensemble is None and law.meta.get("uncertainty"):
        ensemble = Ensemble.from_fitted(law)
    if ensemble is None:
        result["uncertainty"] = None
        result["uncertainty_reason"] = no_ensemble_reason
        result["recommendation"] = recommendation(result, min_confidence)
        return result
    scale = law.meta.get("scale_uncertainty")
    log(
        f"optimum intervals from {len(ensemble.members)} bootstrap refits"
        + (" and the scale-extrapolation error" if scale else "")
    )
    result["uncertainty"] = optimum_uncertainty(
        ensemble,
        result["mixture"],
        result["baseline"]["mixture"],
        interval,
        seed=seed,
        scale=scale,
        **{k: v for k, v in problem.items() if k not in ("max_distance", "starts")},
    )
    result["recommendation"] = recommendation(result, min_confidence)
    return result


def best_observed(law: FittedLaw, result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The observed (proxy) mixture the law predicts best on the optimizer's objective: the best-supported
    alternative when the optimum is declined (None without observed mixtures)."""
    import numpy as np

    observed = law.meta.get("observed_mixtures")
    if observed is None or not len(observed):
        return None
    X = np.asarray(observed, dtype=float)
    weights = result["objective"]["weights"]
    pred = law.predict(X)
    values = sum(w * np.asarray(pred[t], dtype=float) for t, w in weights.items())
    i = int(np.nanargmin(values))
    runs = law.meta.get("observed_runs")
    name = f"observed mixture {runs[i]}" if runs else f"observed mixture #{i}"
    return {
        "name": name,
        "mixture": {c: float(v) for c, v in zip(law.domain_columns, X[i])},
        "predicted": float(values[i]),
    }


def target_tokens_of(table: RunsTable, config: PipelineConfig) -> float | None:
    """The target's training tokens: given, or the target step times the table's constant tokens per step."""
    if config.target_tokens is not None:
        return float(config.target_tokens)
    ratio = tokens_per_step(table.frame)
    return ratio * config.target if ratio is not None else None


def solve(
    table: RunsTable,
    weights: Weights,
    config: PipelineConfig,
    out: str | Path,
    problem: Mapping[str, Any] | None = None,
    baseline: Any = None,
    baseline_name: str | None = None,
    bootstrap: int = OptimizeConfig.bootstrap,
    interval: float = OptimizeConfig.interval,
    strict_bootstrap: bool = True,
    command: str | None = None,
    summary_name: str = "summary.md",
    log: Callable[[str], None] = lambda m: None,
    anchor: RunsTable | None = None,
    trust_region: bool = True,
    min_confidence: float = MIN_CONFIDENCE,
) -> Solution:
    """Pipeline -> bootstrap (`bootstrap` refits of the mixing law, 0 = none) -> optimum -> intervals ->
    files in `out` (see `write_outputs`).

    `problem`: `optimize` keyword arguments (PROBLEM_KEYS); a missing `target_tokens` is derived from the
    table when the target is a step. A bootstrap that cannot run raises with `strict_bootstrap`, else the
    optimum has no intervals and `uncertainty_reason` says why. The seed is `config.seed`."""
    check_fields(OptimizeConfig, {"bootstrap": bootstrap, "interval": interval}, flag_label(OptimizeConfig))
    problem = dict(problem or {})
    if problem.get("target_tokens") is None:
        problem["target_tokens"] = target_tokens_of(table, config)
    if problem.get("available") is not None and problem["target_tokens"] is None:
        raise MixlawInputError("--available needs --target-tokens (or a target step with a tokens column)")
    result = run_pipeline(table, weights, config, log=log)
    result.law.meta["command"] = command
    ensemble, reason = None, NO_ENSEMBLE
    if bootstrap and result.data is not None:
        log(f"bootstrapping the mixing law ({bootstrap} refits)")
        try:
            ensemble = bootstrap_law(
                result.data, result.law.law.name, fitted=result.law, n_bootstrap=bootstrap, seed=config.seed
            )
        except MixlawInputError as exc:
            if strict_bootstrap:
                raise
            log(f"no intervals on the optimum: {exc}")
            reason = f"bootstrap not possible: {exc}"
        else:
            attach(result.law, ensemble)
    variants = gains.scale_variants(result, log)
    result.law.meta["scale_uncertainty"] = scale_uncertainty(result, variants)
    optimum = optimize_with_intervals(
        result.law,
        problem,
        baseline,
        baseline_name,
        config.seed,
        ensemble,
        interval,
        reason,
        log,
        trust_region,
        min_confidence,
    )
    add_gains(result, optimum, weights, ensemble, anchor, interval, log, variants)
    # again, now on the gain with the scale-law spread (`add_gains`) instead of the mixing-law bootstrap alone
    optimum["recommendation"] = recommendation(optimum, min_confidence)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(result, optimum, out, command, summary_name)
    return Solution(result, optimum)


def job_ratios(result: PipelineResult) -> tuple[float, float]:
    """(steps ratio, size ratio) the job extrapolates: target step (or tokens) / the largest fitted one, and
    target params / the largest fitted size's params."""
    c = result.config
    steps_ratio = float(c.target) / float(result.defaults["fit_steps"][1])
    params = result.extrapolator.params if result.extrapolator is not None else {}
    size_ratio = float(c.target_params) / max(params.values()) if params else 1.0
    return steps_ratio, size_ratio


def scale_uncertainty(
    result: PipelineResult,
    variants: Mapping[str, FittedLaw],
    model: scale_error.ScaleErrorModel = scale_error.DEFAULT_MODEL,
) -> dict[str, Any]:
    """LAW.json's `scale_uncertainty` record for a pipeline result: the job's ratios, the calibrated
    scale-error model (`mixlaw.scale_error`) and the step-law variants' measured spread of the losses."""
    steps_ratio, size_ratio = job_ratios(result)
    observed = result.predictions[result.law.domain_columns].to_numpy(dtype=float)
    spread = gains.variant_loss_sd_rel(result.law, variants, observed)
    return scale_error.scale_record(model, steps_ratio, size_ratio, spread, len(variants))


def add_gains(
    result: PipelineResult,
    optimum: dict[str, Any],
    weights: Weights,
    ensemble: Ensemble | None,
    anchor: RunsTable | None,
    interval: float,
    log: Callable[[str], None] = lambda m: None,
    variants: Mapping[str, FittedLaw] | None = None,
) -> None:
    """optimum['gain'] (the optimum's gain over the baseline, nats at the target, with intervals),
    optimum['candidate_gains'] (every observed mixture's) and, with `anchor` runs at the target scale,
    optimum['anchor'] (the common-mode correction); see `mixlaw.gains`. `variants`: the step-law variants
    (`gains.scale_variants`, computed here when None); the law's `scale_uncertainty` record adds its per-mixture
    part."""
    law, objective = result.law, optimum["objective"]["weights"]
    base = np.array(list(optimum["baseline"]["mixture"].values()), dtype=float)
    observed = result.predictions[law.domain_columns].to_numpy(dtype=float)
    X = np.vstack([np.array(list(optimum["mixture"].values()), dtype=float), observed])
    if variants is None:
        variants = gains.scale_variants(result, log)
    scale = law.meta.get("scale_uncertainty")
    log(f"gains over the baseline with {len(variants)} step-law variants")
    g = gains.gain_intervals(
        law, X, base, objective, ensemble.members if ensemble else None, variants, interval, scale
    )
    optimum["gain"] = {
        "value": float(g["value"][0]),
        "lo": float(g["lo"][0]),
        "hi": float(g["hi"][0]),
        "level": interval,
        "units": "objective loss at the target scale (baseline - mixture; > 0: better than the baseline)",
        "baseline": optimum["baseline"]["name"],
        "bootstrap": {"lo": float(g["bootstrap_lo"][0]), "hi": float(g["bootstrap_hi"][0])},
        "variant_sd": float(g["variant_sd"][0]),
        "scale_sd": float(g["scale_sd"][0]),
        "variants": {k: float(v[0]) for k, v in g["variants"].items()},
        "method": "mixing-law bootstrap quantiles and z x robust sd over the step-law variants, in quadrature"
        + (
            " with the per-mixture scale-extrapolation error (mixlaw.scale_error; the common mode cancels)"
            if scale
            else ""
        ),
    }
    optimum["candidate_gains"] = [
        {"run": run, "value": float(v), "lo": float(lo), "hi": float(hi)}
        for run, v, lo, hi in zip(
            result.predictions["run"].astype(str), g["value"][1:], g["lo"][1:], g["hi"][1:]
        )
    ]
    if anchor is not None:
        c = result.config
        observed_anchor = gains.anchor_observed(
            anchor,
            weights,
            c.target_params,
            c.variable,
            c.target,
            [strip_prefix(d) for d in law.domain_columns],
        )
        optimum["anchor"] = {
            "source": Path(anchor.source).name,
            **gains.anchor_correction(law, observed_anchor, {"optimum": X[0], "baseline": base}, objective),
        }
        log(f"anchor: common-mode correction {optimum['anchor']['correction']['objective']:+.4f} (objective)")


def write_outputs(
    result: PipelineResult,
    optimum: dict[str, Any],
    out: Path,
    command: str | None = None,
    summary_name: str = "summary.md",
) -> None:
    """The pipeline's result files in `out`: predictions.csv, law.json, optimum.json, step/size (or joint) law
    JSON, checks.json and the summary (`summary_name`)."""
    write_runs(result.predictions, out / "predictions.csv")
    result.law.save(out / "law.json")
    dump_json(optimum, out / "optimum.json")
    if result.step_laws is not None:
        dump_json(result.step_laws.to_dict(), out / "step_laws.json")
        dump_json(result.size_laws.to_dict(), out / "size_laws.json")
    if result.joint_law is not None:
        dump_json(result.joint_law.to_dict(), out / "joint_law.json")
    dump_json(
        {"checks": result.checks, "defaults": result.defaults, "timings": result.timings}, out / "checks.json"
    )
    (out / summary_name).write_text(summary_markdown(result, optimum, command))
