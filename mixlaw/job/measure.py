"""Measurement of `mixlaw run`'s validation: predicted against measured loss, seed noise, the verdict and the
steps the baseline needs to match the optimum.

The verdict: a win (or a loss) is claimed only when the seed-mean difference at the target steps exceeds two
standard deviations (NOISE_SIGMAS) of the per-seed differences (the arms are paired by seed: same
initialization and data order), or of the pooled seed spread when fewer than 2 seeds pair up; otherwise the
difference is within noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.job.config import RunConfig
from mixlaw.mixture import canonical_name
from mixlaw.runs import aggregate, load_weights, read_runs
from mixlaw.scaling import fit_curves

NOISE_SIGMAS = 2.0


@dataclass
class Validation:
    """The validation at the target scale (validation.json): the target, the objective measured, both arms
    (predicted and measured loss per seed), the gain, the verdict, the equivalent steps and one row per
    validation run; `proxies` and `timings` are added by the job."""

    target: dict[str, Any]
    objective: dict[str, Any]
    arms: dict[str, dict[str, Any]]
    gain: dict[str, Any]
    verdict: dict[str, str]
    equivalent_steps: dict[str, Any]
    per_seed: list[dict[str, Any]]
    proxies: dict[str, Any] | None = None
    timings: dict[str, float] | None = None
    recommendation: dict[str, Any] | None = None  # optimum.json's, with the rungs' `confirmation`
    recommended: dict[str, Any] | None = None  # a fallback the rungs claimed, measured at the target

    def to_dict(self) -> dict[str, Any]:
        """validation.json's content (`proxies`/`timings` only once set)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            k: v
            for k, v in out.items()
            if v is not None or k not in ("proxies", "timings", "recommendation", "recommended")
        }


def _first_crossing(steps: np.ndarray, curve: np.ndarray, level: float) -> float | None:
    """First step where the (noisy) curve falls to `level`, interpolated linearly in log(step); None if never."""
    for i in range(len(steps)):
        if curve[i] <= level:
            if i == 0:
                return float(steps[0]) if curve[0] == level else None
            a, b = curve[i - 1], curve[i]
            t = (a - level) / (a - b) if a != b else 1.0
            return float(np.exp(np.log(steps[i - 1]) + t * (np.log(steps[i]) - np.log(steps[i - 1]))))
    return None


def equivalent_steps(
    steps: np.ndarray, base_curve: np.ndarray, level: float, target: float
) -> dict[str, Any]:
    """Steps at which the baseline's seed-mean curve reaches `level` (the optimum's measured loss at `target`).

    Measured by interpolation between the baseline's checkpoints when the crossing lies inside them; otherwise
    extrapolated by a step law E + B (S/S_ref)^-beta fitted to the baseline's seed-mean curve (said so)."""
    hit = _first_crossing(steps, base_curve, level)
    out: dict[str, Any] = {
        "target_steps": target,
        "optimum_loss": float(level),
        "baseline_checkpoints": steps.tolist(),
        "baseline_curve": base_curve.tolist(),
    }
    if hit is not None:
        out.update(
            steps=hit,
            ratio=hit / target,
            method="interpolated between the baseline's measured checkpoints "
            f"(seed mean, {steps[0]:g} to {steps[-1]:g} steps)",
        )
        return out
    if level < base_curve.min():
        fit = fit_curves(
            "step",
            steps[:, None].astype(float),
            base_curve[None],
            [{"mixture": "baseline"}],
            np.zeros(1, int),
            "none",
            ["step"],
            delta=None,
        )
        E, B = fit.coef[0]
        beta, ref = float(fit.exps[0, 0]), float(fit.ref[0])
        out["baseline_step_law"] = {"E": float(E), "B": float(B), "beta": beta, "ref": ref}
        if level <= E or B <= 0:
            out.update(
                steps=None,
                ratio=None,
                method="step law fitted to the baseline's seed-mean curve",
                reason=f"the baseline's fitted curve never reaches {level:.5g} (asymptote {E:.5g})",
            )
            return out
        s = ref * ((level - E) / B) ** (-1.0 / beta)
        out.update(
            steps=float(s),
            ratio=float(s / target),
            method=f"extrapolated beyond the baseline's last checkpoint ({steps[-1]:g} steps) by a step law "
            "fitted to its seed-mean curve",
        )
        return out
    out.update(
        steps=None,
        ratio=None,
        method="interpolated",
        reason=f"the optimum's loss is above the baseline's at its first checkpoint ({steps[0]:g} steps)",
    )
    return out


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "n": int(len(values)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def verdict(gain: float, sigma: float, baseline_name: str, sd_kind: str = "seed") -> tuple[str, str]:
    """("win" | "loss" | "within noise", sentence): a side wins only beyond NOISE_SIGMAS x sigma (`sd_kind`
    names it: paired-seed or pooled seed standard deviations)."""
    threshold = NOISE_SIGMAS * sigma
    if gain > threshold:
        kind = "win"
        text = (
            f"The chosen mixture beat the {baseline_name} baseline at the target scale by {gain:.4f} nats "
            f"({gain / sigma if sigma else math.inf:.1f} {sd_kind} standard deviations; threshold "
            f"{NOISE_SIGMAS:g}, sigma {sigma:.4f})."
        )
    elif gain < -threshold:
        kind = "loss"
        text = (
            f"The {baseline_name} baseline beat the chosen mixture at the target scale by {-gain:.4f} nats "
            f"({-gain / sigma if sigma else math.inf:.1f} {sd_kind} standard deviations; threshold "
            f"{NOISE_SIGMAS:g}, sigma {sigma:.4f})."
        )
    else:
        kind = "within noise"
        text = (
            f"The difference between the chosen mixture and the {baseline_name} baseline ({gain:+.4f} nats, "
            f"positive = optimum better) is within noise: {NOISE_SIGMAS:g} {sd_kind} standard deviations are "
            f"{threshold:.4f} nats. No win is claimed."
        )
    if sigma == 0:
        text += f" (The {sd_kind} standard deviation is 0: the seeds gave identical losses.)"
    return kind, text


def measure(cfg: RunConfig, out: Path, optimum: dict, specs: list, baseline_name: str) -> Validation:
    """Predicted against measured loss of both arms, the seed noise, the verdict and the measured step gain
    (validation.json's content) from the validation runs in `out/validation`."""
    table = read_runs(out / "validation" / "runs.csv")
    w = load_weights(cfg.valid_weights, table.valid_domains, cfg.group)
    wide = aggregate(table, w)
    targets = list(w.groups)
    # the optimizer's objective (the weighted total by default) measured on the validation runs
    obj_w = {
        str(k): float(v) for k, v in (optimum.get("objective") or {}).get("weights", w.group_weight).items()
    }
    wide["objective"] = sum(wt * wide[t].to_numpy(dtype=float) for t, wt in obj_w.items())
    S = cfg.target_steps
    arms = {}
    ids = {
        "optimum": [s.run_id for s in specs[: len(cfg.seeds)]],
        "baseline": [s.run_id for s in specs[len(cfg.seeds) :]],
    }
    per_seed = []
    predicted = {"optimum": optimum["predicted"], "baseline": optimum["baseline"]["predicted"]}
    for arm, runs in ids.items():
        sub = wide[wide["run"].isin(runs)]
        at = sub[sub["step"] == S].set_index("run").reindex(runs)
        if at["total"].isna().any():
            raise MixlawInputError(f"{out}/validation: the {arm} runs have no checkpoint at step {S}")
        for run_id, row in at.iterrows():
            per_seed.append(
                {
                    "arm": arm,
                    "run": run_id,
                    "seed": int(row["seed"]),
                    "step": S,
                    "objective": row["objective"],
                    "total": row["total"],
                    **{f"loss_{t}": row[t] for t in targets},
                }
            )
        totals = at["objective"].to_numpy(dtype=float)
        pred = predicted[arm]
        per_target = {}
        for t in targets:
            st = _stats(at[t].to_numpy(dtype=float))
            pt = pred.get(t)
            per_target[t] = {
                "measured": st,
                "predicted": pt,
                "rel_error": (pt / st["mean"] - 1) if pt is not None else None,
            }
        st = _stats(totals)
        curve = sub.groupby("step")["objective"].agg(["mean", "std", "count"]).reset_index()
        arms[arm] = {
            # the written spelling of optimum.json and the runs table (math_prose, not the config's math-prose)
            "mixture": {canonical_name(d): v for d, v in specs[0 if arm == "optimum" else -1].mixture},
            "runs": runs,
            "seeds": list(cfg.seeds),
            "steps": int(sub["step"].max()),
            "measured": st,
            "predicted": pred.get("objective", pred.get("total")),
            "rel_error": pred.get("objective", pred.get("total")) / st["mean"] - 1,
            "per_target": per_target,
            "curve": {
                "step": curve["step"].tolist(),
                "mean": curve["mean"].tolist(),
                "std": curve["std"].tolist(),
            },
        }
    arms["baseline"]["name"] = baseline_name
    o, b = arms["optimum"]["measured"], arms["baseline"]["measured"]
    gain = b["mean"] - o["mean"]
    sigma = math.sqrt((o["std"] ** 2 + b["std"] ** 2) / 2)
    # paired by seed (same seed = same initialization and data order within each domain)
    po = {r["seed"]: r["objective"] for r in per_seed if r["arm"] == "optimum"}
    pb = {r["seed"]: r["objective"] for r in per_seed if r["arm"] == "baseline"}
    diffs = np.array([pb[s] - po[s] for s in cfg.seeds if s in po and s in pb])
    paired_sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0
    # paired by seed when >= 2 seeds pair up (a seed effect shared by both arms cancels), else pooled
    rule_sd, sd_kind = (paired_sd, "paired-seed") if len(diffs) > 1 else (sigma, "pooled seed")
    threshold = NOISE_SIGMAS * rule_sd
    kind, text = verdict(gain, rule_sd, baseline_name, sd_kind)
    bcurve = arms["baseline"]["curve"]
    eq = equivalent_steps(
        np.array(bcurve["step"], dtype=float), np.array(bcurve["mean"], dtype=float), o["mean"], S
    )
    pred_gain = optimum["baseline"]["predicted"]["objective"] - optimum["predicted"]["objective"]
    return Validation(
        target={
            "model": cfg.target_label,
            "steps": S,
            "baseline_steps": cfg.baseline_len,
            "params": int(table.frame["params"].iloc[0]),
            "tokens": int(S * cfg.sweep.settings.batch_size * cfg.sweep.settings.seq_len),
        },
        objective={
            "weights": obj_w,
            "note": "the optimizer's objective: weighted sum of per-target losses (nats/token)",
        },
        arms=arms,
        gain={
            "measured": gain,
            "predicted": pred_gain,
            "sigma_pooled": sigma,
            "sigma_rule": rule_sd,
            "sd_kind": sd_kind,
            "threshold": threshold,
            "sigmas": gain / rule_sd if rule_sd > 0 else None,
            "paired": {
                "mean": float(diffs.mean()),
                "std": paired_sd,
                "n": int(len(diffs)),
            },
        },
        verdict={
            "result": kind,
            "text": text,
            "rule": f"win or loss only beyond {NOISE_SIGMAS:g} {sd_kind} standard deviations of the "
            "objective's difference at the target steps",
        },
        equivalent_steps={
            "measured": eq,
            "predicted": optimum.get("equivalent_extra_steps"),
            "predicted_reason": optimum.get("equivalent_extra_steps_reason"),
        },
        per_seed=per_seed,
    )
