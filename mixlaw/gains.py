"""Gain-relative prediction (issue 14 item 3): each candidate's gain over the baseline mixture, and the anchor.

Scale-extrapolation errors are largely shared by every mixture (a step law that over-predicts the drop does so
for all of them), so the difference between two mixtures' predicted losses at the target is better determined
than either loss. gain(x) = objective(baseline) - objective(x), in loss units (nats) at the target scale;
positive = x is better.

Intervals on a gain combine two spreads, in quadrature around the full-data value:
- the mixing-law bootstrap the pipeline already does (quantiles of the members' gains), and
- the scale-law spread: the gain re-predicted with the other step-law variants (fit window none / last / 3 x
  beta shared per mixture / per model size: `scale_variants`), z x their robust sd, and
- with a `scale_uncertainty` record (`mixlaw.scale_error`, calibrated on the backtest), the per-mixture part of
  the scale-extrapolation error of both mixtures; its common-mode part cancels in a gain and is left out.

Anchor: target-scale runs of one mixture (usually the baseline) remove the common-mode error: every other
mixture is predicted as anchor observed + predicted gain over the anchor (`anchor_correction`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.stats import norm

from mixlaw.errors import MixlawInputError
from mixlaw.extrapolation import Extrapolator, fit_step_laws
from mixlaw.fitted import FittedLaw
from mixlaw.pipeline import PipelineResult, _fit_data, _refit
from mixlaw.runs import RunsTable, Weights, aggregate
from mixlaw.scale_error import gain_sd, variant_spread
from mixlaw.scaling import late_window

# The step-law variants whose spread enters the gain intervals: (step_window, step_share).
STEP_VARIANTS = ((None, "mixture"), (None, "all"), (3.0, "mixture"), (3.0, "all"))


def objective_values(law: FittedLaw, X: np.ndarray, weights: Mapping[str, float]) -> np.ndarray:
    """The objective sum_t w_t L_t(x) of `law` at mixtures X (n, M) -> (n,)."""
    pred = law.predict(np.atleast_2d(X))
    return sum(w * np.asarray(pred[t], dtype=float) for t, w in weights.items())


def variant_label(window: float | None, share: str) -> str:
    return f"window {'none' if window is None else f'{window:g}'}, share {share}"


def scale_variants(
    result: PipelineResult, log: Callable[[str], None] = lambda m: None
) -> dict[str, FittedLaw]:
    """The pipeline's mixing law refitted on the target-scale losses of each other step-law variant
    (STEP_VARIANTS, the pipeline's own setting left out); {} for the joint scale law or when no fit frame."""
    c, ex = result.config, result.extrapolator
    if c.scale != "chain" or ex is None or result.fit_frame is None:
        return {}
    frame, hi = result.fit_frame, result.defaults["fit_steps"][1]
    out = {}
    for window, share in STEP_VARIANTS:
        if window == c.step_window and share == c.step_share:
            continue
        label = variant_label(window, share)
        try:
            step_frame = frame[late_window(frame[c.variable], window, last=hi)]
            laws = fit_step_laws(step_frame, c.variable, ex.targets, share, c.delta, c.step_exponent)
            variant = Extrapolator(
                replace(c, step_window=window, step_share=share),
                ex.runs,
                ex.targets,
                ex.params,
                ex.mixtures,
                step_laws=laws,
            )
            out[label] = _refit(result.law, _fit_data(variant.frame(c.target), result.template))
        except MixlawInputError as exc:
            log(f"scale variant {label} skipped: {exc}")
    return out


def gain_intervals(
    law: FittedLaw,
    X: np.ndarray,
    baseline: np.ndarray,
    weights: Mapping[str, float],
    members: list[FittedLaw] | None = None,
    variants: Mapping[str, FittedLaw] | None = None,
    level: float = 0.9,
    scale: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Gains over `baseline` (M,) of each mixture of X (n, M) with intervals: {value, lo, hi (n,),
    bootstrap_lo/hi, variant_sd (n,), scale_sd (n,), variants {label: (n,)}}. `scale`: a `scale_uncertainty`
    record whose per-mixture sd (not the common mode) is added. Without members, variants or scale, lo = hi =
    value."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    points = np.vstack([np.asarray(baseline, dtype=float)[None], X])

    def gain_of(fitted: FittedLaw) -> np.ndarray:
        with np.errstate(all="ignore"):
            v = objective_values(fitted, points, weights)
        return v[0] - v[1:]

    value = gain_of(law)
    with np.errstate(all="ignore"):
        objective = objective_values(law, points, weights)
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    boot_lo = boot_hi = value
    if members:
        g = np.array([gain_of(m) for m in members])
        g = np.where(np.isfinite(g), g, np.nan)
        boot_lo = np.minimum(value, np.nanpercentile(g, lo_q, axis=0))
        boot_hi = np.maximum(value, np.nanpercentile(g, hi_q, axis=0))
    variant_gains = {label: gain_of(v) for label, v in (variants or {}).items()}
    variant_sd = variant_spread(np.array([value, *variant_gains.values()]))
    scale_sd = gain_sd(scale, objective[1:], objective[0]) if scale is not None else np.zeros_like(value)
    z = float(norm.ppf(0.5 + level / 2))
    spread = np.sqrt(variant_sd**2 + scale_sd**2)
    lo = value - np.sqrt((value - boot_lo) ** 2 + (z * spread) ** 2)
    hi = value + np.sqrt((boot_hi - value) ** 2 + (z * spread) ** 2)
    return {
        "value": value,
        "lo": lo,
        "hi": hi,
        "bootstrap_lo": boot_lo,
        "bootstrap_hi": boot_hi,
        "variant_sd": variant_sd,
        "scale_sd": scale_sd,
        "variants": variant_gains,
    }


def variant_loss_sd_rel(law: FittedLaw, variants: Mapping[str, FittedLaw], X: np.ndarray) -> dict[str, float]:
    """Relative sd of each output's predicted loss across the scale-law variants (the pipeline's own law first),
    median over the mixtures X (n, M): {name: sd / loss}; {} without variants."""
    if not variants:
        return {}
    X = np.atleast_2d(np.asarray(X, dtype=float))
    with np.errstate(all="ignore"):
        preds = [law.predict(X), *(v.predict(X) for v in variants.values())]
    out = {}
    for name, center in preds[0].items():
        stack = np.array([p[name] for p in preds], dtype=float)
        rel = variant_spread(stack) / np.abs(np.asarray(center, dtype=float))
        rel = rel[np.isfinite(rel)]
        out[name] = float(np.median(rel)) if len(rel) else 0.0
    return out


def anchor_observed(
    anchor: RunsTable,
    weights: Weights,
    target_params: float,
    variable: str,
    target: float,
    domains: list[str],
) -> dict[str, Any]:
    """The anchor's observed losses at the target scale: one mixture's runs at `target_params` and the target
    step/tokens (seeds and repeats averaged). Returns {mixture (M,), observed {target: loss, total}, n_runs}."""
    if variable not in anchor.frame.columns:
        raise MixlawInputError(f"{anchor.source}: --anchor needs a {variable} column")
    if "params" not in anchor.frame.columns:
        raise MixlawInputError(f"{anchor.source}: --anchor needs a params column")
    missing = [d for d in domains if d not in anchor.domains]
    if missing:
        raise MixlawInputError(
            f"{anchor.source}: --anchor has no p_ column for domain(s) {', '.join(missing)}"
        )
    wide = aggregate(anchor, weights)
    at = wide[
        np.isclose(wide["params"], target_params, rtol=1e-6) & np.isclose(wide[variable], target, rtol=1e-6)
    ]
    if at.empty:
        raise MixlawInputError(
            f"{anchor.source}: --anchor has no run at params {target_params:g} and {variable} {target:g} "
            "(the target scale)"
        )
    columns = ["p_" + d for d in domains]
    mixtures = np.unique(at[columns].to_numpy(dtype=float).round(6), axis=0)
    if len(mixtures) != 1:
        raise MixlawInputError(
            f"{anchor.source}: --anchor must hold runs of one mixture at the target scale, found {len(mixtures)}"
        )
    targets = list(weights.groups)
    observed = {t: float(at[t].mean()) for t in targets}
    observed["total"] = float(at["total"].mean())
    return {
        "mixture": mixtures[0],
        "observed": observed,
        "n_runs": int(at["run"].nunique()),
        "runs": sorted(at["run"].astype(str).unique().tolist()),
    }


def anchor_correction(
    law: FittedLaw, anchor: Mapping[str, Any], points: Mapping[str, np.ndarray], weights: Mapping[str, float]
) -> dict[str, Any]:
    """Common-mode correction from the anchor: c_t = observed_t - predicted_t at the anchor's mixture; every
    other mixture x is predicted as anchor observed + predicted gain over the anchor = predicted(x) + c.

    points: {name: mixture (M,)} to report corrected (e.g. optimum, baseline). Losses in nats."""
    x = np.asarray(anchor["mixture"], dtype=float)
    predicted = {k: float(v[0]) for k, v in law.predict(x[None]).items()}
    observed = anchor["observed"]
    correction = {k: observed[k] - predicted[k] for k in predicted if k in observed}
    predicted["objective"] = float(sum(w * predicted[t] for t, w in weights.items()))
    observed_objective = float(sum(w * observed[t] for t, w in weights.items()))
    correction["objective"] = observed_objective - predicted["objective"]
    corrected = {}
    for name, mixture in points.items():
        pred = {k: float(v[0]) for k, v in law.predict(np.asarray(mixture, dtype=float)[None]).items()}
        pred["objective"] = float(sum(w * pred[t] for t, w in weights.items()))
        corrected[name] = {k: pred[k] + correction[k] for k in pred if k in correction}
    return {
        "mixture": dict(zip(law.domain_columns, x.tolist())),
        "observed": {**observed, "objective": observed_objective},
        "predicted": predicted,
        "correction": correction,
        "corrected": corrected,
        "n_runs": anchor.get("n_runs"),
        "runs": anchor.get("runs"),
    }
