"""Benchmark: the confirmation-rung rule (issue 15 item 2) on observed runs, and the choice of its fraction f.

    python benchmarks/confirmation_rule.py [--data ../shared/data/mixinglaws] [--out benchmarks/results]

Cases (Ye et al. 2024 loss data, weighted total over the 22 Pile validation domains): the pipeline
(`mixlaw.pipeline.run_pipeline`, chain scale laws, the paper's `dml` mixing law) is fitted on small sizes and
short steps of one family and predicts a pseudo-target (a larger size at a longer step) that the data hold.
Per case:
- candidate: the observed mixture the pipeline's mixing law predicts best at the pseudo-target (the `rank` column also
  scores the 2nd and 3rd best, which widens the set of decisions; rank 1 is the rule's real use);
- baseline: the family's reference mixture (the observed mixture nearest to its default: RedPajama run 999,
  5Mix the Pile-like mixture of 1B run 999, as in extrapolation_backtest.py); and, as a second set, the
  observed mixture at the median of the law's ranking (`baseline_kind` median): the 5Mix reference is
  among the best mixtures, so against it alone almost nothing wins and f cannot be told apart;
- rungs, observed checkpoints: (i) the largest fitted size x the target step, (ii) the target size x the
  largest fitted step (when the target size has no checkpoint there: the largest observed size in between);
- predicted gain at a rung: the pipeline's scale laws at that scale (`mixlaw.confirm.scale_predictor`: the
  Extrapolator with that target size, the mixing law refitted there);
- sigma: one run per mixture (no seeds), so sqrt(2) x the checkpoint-noise estimate at the rung
  (`mixlaw.confirm.rung_noise`, i.e. `mixlaw.uncertainty.estimate_noise`);
- the decision is correct iff claim <=> the measured gain at the pseudo-target (baseline - candidate) > 0.

f is CHOSEN on the 5Mix cases (both baselines, ranks 1-3; highest accuracy; ties: fewest false claims, then
the smaller f) and SCORED on the RedPajama cases, which it never saw. Also reported: the same without rungs (claim iff the predicted gain >
0: what the pipeline alone would do) and rung (i) or (ii) alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extrapolation_backtest import load_trainer_family  # noqa: E402

from mixlaw.confirm import SIGMAS, Rung, anchor_target, judge, rung_noise, rung_sd, scale_predictor
from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json
from mixlaw.pipeline import run_pipeline
from mixlaw.runs import RunsTable, Weights, aggregate, load_weights, read_runs
from mixlaw.settings import PipelineConfig

FILES = {"5Mix": "5mix.csv", "RedPajama": "redpajama.csv"}
TRAINER = "Trainer"
FAMILIES = (*FILES, TRAINER)
DEFAULT_MIXTURE = {  # the family's default mixture (as in benchmarks/extrapolation_backtest.py)
    "RedPajama": [0.66796875, 0.1484375, 0.046875, 0.04296875, 0.04296875, 0.02734375, 0.0234375],
    "5Mix": [0.29296875, 0.125, 0.046875, 0.13671875, 0.3984375],
    TRAINER: [0.25, 0.25, 0.25, 0.25],
}
CHOOSE_ON, SCORE_ON = "5Mix", ("RedPajama", "Trainer")
FRACTIONS = tuple(np.round(np.arange(0.0, 1.01, 0.05), 2))
RANKS = 3
RESIDUALS = tuple(np.round(np.arange(0.0, 0.0301, 0.001), 4))  # ANCHOR_RESIDUAL's grid
# (fit sizes, largest fitted step, target size, target step)
# (fit sizes, largest fitted step, target size, target step): the size law needs 3 fitted sizes, so the fits
# use 70M-305M and the pseudo-target is 410M; steps ratios 2-3.3x.
FIT = ["70M", "160M", "305M"]
CASES = {
    "5Mix": [
        (FIT, fit, "410M", step)
        for fit, step in [
            (6000, 18000),
            (6000, 24000),
            (9000, 27000),
            (9000, 30000),
            (10000, 20000),
            (10000, 24000),
            (10000, 30000),
            (12000, 24000),
            (12000, 30000),
            (14000, 30000),
        ]
    ],  # fmt: skip
    "RedPajama": [
        (FIT, fit, "410M", step)
        for fit, step in [
            (13000, 27000),
            (13000, 30000),
            (14000, 30000),
            (14000, 27000),
            (16000, 30000),
            (16000, 27000),
        ]
    ],  # fmt: skip
    # the built-in trainer's family (benchmarks/data/trainer_scale): 3 proxy sizes, 12k-56k params, constant
    # learning rate after warmup, so a checkpoint at step s is a run of s steps; L3-D64 (2.66x) at 300 steps
    TRAINER: [(["L1-D32", "L2-D32", "L2-D48"], fit, "L3-D64", 300) for fit in (60, 80, 100, 130)],
}

log = logging.getLogger("confirmation")


@dataclass
class Family:
    name: str
    table: RunsTable
    weights: Weights
    wide: pd.DataFrame
    params: dict[str, float]


def load_family(data: Path, name: str) -> Family:
    if name == TRAINER:
        fam = load_trainer_family()
        return Family(name, fam.table, fam.weights, fam.wide, fam.params)
    table = read_runs(data / FILES[name], renormalize=True)
    weights = load_weights(str(data / "valid_weights.csv"), table.valid_domains, "pile_category")
    wide = aggregate(table, weights)
    wide = wide[wide["run"].astype(str).str.isdigit() & (wide["run"].astype(str).astype(int) < 900)]
    params = wide.drop_duplicates("model").set_index("model")["params"].astype(float).to_dict()
    return Family(name, table, weights, wide, params)


def observed(fam: Family, model: str, step: float) -> pd.Series:
    """Observed total per run at (model, step)."""
    at = fam.wide[(fam.wide["model"] == model) & (fam.wide["step"] == step)]
    return at.groupby("run")["total"].mean()


def rung_ii(fam: Family, fit_sizes: list[str], fit_step: float, target: str) -> str | None:
    """The target size when it has a checkpoint at the fitted step, else the largest observed size between."""
    sizes = sorted(fam.params, key=fam.params.get)
    larger = [m for m in sizes if fam.params[fit_sizes[-1]] < fam.params[m] <= fam.params[target]]
    for m in reversed(larger):
        if len(observed(fam, m, fit_step)):
            return m
    return None


def run_case(fam: Family, fit_sizes: list[str], fit_step: float, target: str, step: float) -> list[dict]:
    """One pseudo-target: the pipeline, its rung predictions and the observed rung and target gains for the
    candidates of rank 1..RANKS against the reference mixture."""
    frame = fam.table.frame
    sub = frame[frame["model"].isin(fit_sizes) & (frame["step"] <= fit_step)]
    table = RunsTable(sub.reset_index(drop=True), fam.table.source)
    config = PipelineConfig(
        target_params=fam.params[target], target_step=float(step), law="dml", min_sizes=len(fit_sizes), cv=3
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_pipeline(table, fam.weights, config)
    largest = fit_sizes[-1]
    second = rung_ii(fam, fit_sizes, fit_step, target)
    rungs = [Rung("i", largest, fam.params[largest], float(step))]
    rungs.append(Rung("proxy", largest, fam.params[largest], float(fit_step)))
    if second is not None:
        rungs.append(Rung("ii", second, fam.params[second], float(fit_step)))
    truth = {"target": observed(fam, target, step)}
    for r in rungs:
        truth[r.name] = observed(fam, r.model, r.steps)
    pred = result.predictions.set_index(result.predictions["run"].astype(str))
    common = set(pred.index)
    for series in truth.values():
        common &= set(series.index.astype(str))
    common = sorted(common)
    if len(common) < RANKS + 1:
        return []
    columns = result.law.domain_columns
    X = pred.loc[common, columns].to_numpy(float)
    predict = scale_predictor(result, fam.weights.group_weight)
    # the law at the pseudo-target and at each rung, for every mixture with observed truth
    at_target = np.asarray(predict(fam.params[target], float(step), X), float)
    at_rung = {r.name: np.asarray(predict(r.params, r.steps, X), float) for r in rungs}
    noise = {r.name: rung_noise(fam.table, fam.weights, r) for r in rungs}
    baselines = {"reference": int(np.argmin(np.abs(X - np.array(DEFAULT_MIXTURE[fam.name])).sum(axis=1)))}
    ranked = list(np.argsort(at_target))
    baselines.setdefault("median", int(ranked[len(ranked) // 2]))
    out = []
    for base_kind, b in baselines.items():
        base_run = common[b]
        # candidates ranked by the mixing law at the pseudo-target (as the optimizer ranks mixtures)
        cands = [i for i in ranked if i != b][:RANKS]
        for k, c in enumerate(cands, start=1):
            run = common[c]
            row: dict[str, Any] = {
                "family": fam.name,
                "fit_sizes": fit_sizes,
                "fit_step": fit_step,
                "target": target,
                "target_step": step,
                "steps_ratio": step / fit_step,
                "size_ratio": fam.params[target] / fam.params[largest],
                "baseline_kind": base_kind,
                "rank": k,
                "candidate": run,
                "baseline": base_run,
                "predicted_target_gain": float(at_target[b] - at_target[c]),
                "target_gain": float(truth["target"][base_run] - truth["target"][run]),
                "predicted_target_loss": [float(at_target[b]), float(at_target[c])],
                "target_loss": [float(truth["target"][base_run]), float(truth["target"][run])],
                "rungs": [],
            }
            for r in rungs:
                measured = float(truth[r.name][base_run] - truth[r.name][run])
                row["rungs"].append(
                    {
                        "rung": r.name,
                        "model": r.model,
                        "steps": r.steps,
                        "predicted_gain": float(at_rung[r.name][b] - at_rung[r.name][c]),
                        "measured_gain": measured,
                        "noise_sd": noise[r.name],
                        "sd": rung_sd([measured], noise[r.name]),
                        "cost": fam.params[r.model] * r.steps / (fam.params[target] * step),
                        "predicted_loss": [float(at_rung[r.name][b]), float(at_rung[r.name][c])],
                        "measured_loss": [float(truth[r.name][base_run]), float(truth[r.name][run])],
                    }
                )
            out.append(row)
    return out


def claims(
    case: dict, fraction: float, which: tuple[str, ...] = ("i", "ii"), target_prediction: bool = False
) -> bool:
    """The rule on a case's rungs; `target_prediction`: the target-scale predicted gain at every rung (what
    `mixlaw confirm` uses without the scale laws) instead of the rung's own."""
    rungs = [r for r in case["rungs"] if r["rung"] in which]
    return bool(rungs) and all(
        judge(
            r["measured_gain"],
            r["sd"],
            case["predicted_target_gain"] if target_prediction else r["predicted_gain"],
            fraction,
            SIGMAS,
        )
        for r in rungs
    )


def anchored(case: dict, residual: float) -> dict | None:
    """`mixlaw.confirm.anchor_target` on a case's rungs (one run per mixture: one seed, one validation seed)."""
    recs = [
        {
            **r,
            "seeds": [0],
            "baseline_loss": r["measured_loss"][0],
            "arm_loss": r["measured_loss"][1],
            "predicted_baseline_loss": r["predicted_loss"][0],
            "predicted_arm_loss": r["predicted_loss"][1],
        }
        for r in case["rungs"]
    ]
    base, cand = case["predicted_target_loss"]
    return anchor_target(recs, case["predicted_target_gain"], cand, base, 1, residual)


def anchor_scores(cases: list[dict], residual: float) -> dict[str, Any]:
    """The anchored target gain and loss against the measured target: errors, 90% coverage of the measured
    interval, and the law alone for comparison (cases with rungs i, ii and proxy)."""
    got = [(c, anchored(c, residual)) for c in cases]
    got = [(c, a) for c, a in got if a is not None and "proxy" in a["terms"]]
    if not got:
        return {"n": 0}
    t = np.array([c["target_gain"] for c, _ in got])
    law = np.array([c["predicted_target_gain"] for c, _ in got])
    a = np.array([x["gain"]["value"] for _, x in got])
    lo, hi = np.array([x["measured"]["lo"] for _, x in got]), np.array([x["measured"]["hi"] for _, x in got])
    loss_t = np.array([c["target_loss"][1] for c, _ in got])
    loss_law = np.array([c["predicted_target_loss"][1] for c, _ in got])
    loss_a = np.array([x["loss"]["arm"] for _, x in got])
    return {
        "n": len(got),
        "gain_mae_law": float(np.abs(law - t).mean()),
        "gain_mae_anchored": float(np.abs(a - t).mean()),
        "gain_sign_law": float(np.mean((law > 0) == (t > 0))),
        "gain_sign_anchored": float(np.mean((a > 0) == (t > 0))),
        "coverage90": float(np.mean((lo <= t) & (t <= hi))),
        "loss_mre_law": float(np.mean(np.abs(loss_law / loss_t - 1))),
        "loss_mre_anchored": float(np.mean(np.abs(loss_a / loss_t - 1))),
        "loss_within_5pct_anchored": float(np.mean(np.abs(loss_a / loss_t - 1) <= 0.05)),
        "loss_within_5pct_law": float(np.mean(np.abs(loss_law / loss_t - 1) <= 0.05)),
    }


VARIANTS = {"law alone": (), "i + ii (the anchor)": ("i", "ii"), "i only": ("i",), "ii only": ("ii",)}


def anchor_variants(cases: list[dict]) -> dict[str, dict[str, float]]:
    """Which rungs to anchor on: target loss MRE (both arms) and gain MAE of the law corrected by the rungs
    named (each with the proxy rung's correction taken off), and how often rung (ii)'s larger model is worse
    than the proxy rung at the same steps (the size-regime guard of `anchor_target`)."""
    cases = [c for c in cases if {"i", "ii", "proxy"} <= {r["rung"] for r in c["rungs"]}]
    out: dict[str, dict[str, float]] = {}
    for name, rungs in VARIANTS.items():
        loss_err, gain_err = [], []
        for c in cases:
            r = {x["rung"]: x for x in c["rungs"]}
            extra = [*rungs, "proxy"] if rungs else []
            sign = {"i": 1.0, "ii": 1.0, "proxy": -1.0}
            for arm in (0, 1):
                ln = np.log(c["predicted_target_loss"][arm]) + sum(
                    sign[n] * np.log(r[n]["measured_loss"][arm] / r[n]["predicted_loss"][arm]) for n in extra
                )
                loss_err.append(abs(np.exp(ln) / c["target_loss"][arm] - 1))
            gain = c["predicted_target_gain"] + sum(
                sign[n] * (r[n]["measured_gain"] - r[n]["predicted_gain"]) for n in extra
            )
            gain_err.append(abs(gain - c["target_gain"]))
        out[name] = {
            "n": len(cases),
            "loss_mre": float(np.mean(loss_err)),
            "gain_mae": float(np.mean(gain_err)),
        }
    worse = [
        any(r["ii"]["measured_loss"][a] >= r["proxy"]["measured_loss"][a] for a in (0, 1))
        for r in ({x["rung"]: x for x in c["rungs"]} for c in cases)
    ]
    out["size_regime_guard"] = {"n": len(cases), "fired": float(np.mean(worse)) if worse else 0.0}
    return out


def choose_residual(cases: list[dict]) -> tuple[float, list[dict]]:
    """The smallest residual whose measured intervals cover >= 90% of the chosen-on family's target gains."""
    grid = [{"residual": float(k), **anchor_scores(cases, k)} for k in RESIDUALS]
    ok = [g for g in grid if g.get("coverage90", 0) >= 0.9]
    return (ok[0]["residual"] if ok else grid[-1]["residual"]), grid


def claims_anchored(case: dict, fraction: float, residual: float) -> bool:
    """The rungs' rule and the anchored target gain's recommendation rule (what `mixlaw run` claims on)."""
    a = anchored(case, residual)
    return claims(case, fraction) and a is not None and a["verdict"] == "recommend"


def score(cases: list[dict], decide) -> dict[str, Any]:
    """Accuracy of a claim rule (claim <=> target gain > 0) and its error kinds."""
    claim = np.array([decide(c) for c in cases], bool)
    won = np.array([c["target_gain"] > 0 for c in cases], bool)
    return {
        "n": int(len(cases)),
        "accuracy": float((claim == won).mean()) if len(cases) else None,
        "claims": int(claim.sum()),
        "false_claims": int((claim & ~won).sum()),
        "missed_wins": int((~claim & won).sum()),
        "wins": int(won.sum()),
    }


def choose_fraction(cases: list[dict]) -> tuple[float, list[dict]]:
    grid = [{"fraction": float(f), **score(cases, lambda c, f=f: claims(c, f))} for f in FRACTIONS]
    best = max(grid, key=lambda g: (g["accuracy"], -g["false_claims"], -g["fraction"]))
    return best["fraction"], grid


def run(data: Path) -> dict[str, Any]:
    started = time.perf_counter()
    cases: dict[str, list[dict]] = {}
    for name in FAMILIES:
        fam = load_family(data, name)
        cases[name] = []
        for fit_sizes, fit_step, target, step in CASES[name]:
            t0 = time.perf_counter()
            try:
                got = run_case(fam, fit_sizes, fit_step, target, step)
            except MixlawInputError as exc:  # a fit range the family's checkpoints cannot support
                log.info("%s <=%g -> %s@%g skipped: %s", name, fit_step, target, step, exc)
                continue
            cases[name].extend(got)
            log.info("%s %s <=%g -> %s@%g: %d cases (%.1f s)", name, fit_sizes, fit_step, target, step,
                     len(got), time.perf_counter() - t0)  # fmt: skip
    fraction, grid = choose_fraction(cases[CHOOSE_ON])
    residual, residual_grid = choose_residual(cases[CHOOSE_ON])
    anchor = {
        name: {
            "role": "chosen on" if name == CHOOSE_ON else "scored on",
            **anchor_scores(fc, residual),
            "variants": anchor_variants(fc),
        }
        for name, fc in cases.items()
    }
    rules = {
        "rungs + anchored target": lambda c: claims_anchored(c, fraction, residual),
        "rungs": lambda c: claims(c, fraction),
        "rungs, target-scale prediction": lambda c: claims(c, fraction, target_prediction=True),
        "rungs, f = 0 (2 sd only)": lambda c: claims(c, 0.0),
        "rungs, f = 0.5 (prototype)": lambda c: claims(c, 0.5),
        "rung_i_only": lambda c: claims(c, fraction, ("i",)),
        "rung_ii_only": lambda c: claims(c, fraction, ("ii",)),
        "no_rungs (predicted gain > 0)": lambda c: c["predicted_target_gain"] > 0,
        "always_claim": lambda c: True,
    }
    scores = []
    for fam_name, fam_cases in cases.items():
        subsets = {
            "reference, rank 1": [
                c for c in fam_cases if c["rank"] == 1 and c["baseline_kind"] == "reference"
            ],
            "reference, ranks 1-3": [c for c in fam_cases if c["baseline_kind"] == "reference"],
            "median, ranks 1-3": [c for c in fam_cases if c["baseline_kind"] == "median"],
            "all": fam_cases,
        }
        for subset, chosen in subsets.items():
            for rule_name, rule in rules.items():
                scores.append(
                    {
                        "family": fam_name,
                        "role": "chosen on" if fam_name == CHOOSE_ON else "scored on",
                        "cases": subset,
                        "rule": rule_name,
                        **score(chosen, rule),
                    }
                )
    for fam_cases in cases.values():
        for c in fam_cases:
            a = anchored(c, residual)
            c["anchored_gain"] = None if a is None else a["gain"]
            c["claim_rungs_only"] = claims(c, fraction)
            c["claim"] = claims_anchored(c, fraction, residual)
            c["correct"] = c["claim"] == (c["target_gain"] > 0)
    cost = [sum(r["cost"] for r in c["rungs"]) for fc in cases.values() for c in fc]
    return {
        "fraction": fraction,
        "sigmas": SIGMAS,
        "chosen_on": CHOOSE_ON,
        "scored_on": list(SCORE_ON),
        "selection": "highest accuracy over all cases (both baselines, ranks 1-3) of the chosen-on family; ties: fewest "
        "false claims, then the smaller fraction",
        "grid": grid,
        "anchor_residual": residual,
        "anchor_selection": "the smallest residual whose 90% measured intervals cover >= 90% of the chosen-on "
        "family's target gains (cases with rungs i, ii and proxy)",
        "anchor_grid": residual_grid,
        "anchor": anchor,
        "scores": scores,
        "rung_cost_per_arm": {
            "median": float(np.median(cost)),
            "max": float(np.max(cost)),
            "unit": "sum over rungs of params x steps, per target run of the same arm",
        },
        "cases": cases,
        "data": str(Path("..") / "shared" / "data" / "mixinglaws")
        if data.name == "mixinglaws"
        else data.name,
        "seconds": time.perf_counter() - started,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"fraction f = {result['fraction']:g}, anchor residual {result['anchor_residual']:g} (chosen on "
        f"{result['chosen_on']}, scored on {', '.join(result['scored_on'])})"
    )
    print(f"{'family':<10} {'role':<10} {'n':>3} {'gain MAE law':>12} {'anchored':>8} {'sign law':>8} "
          f"{'anchored':>8} {'cover90':>7} {'loss MRE law':>12} {'anchored':>8}")  # fmt: skip
    for name, a in result["anchor"].items():
        if not a.get("n"):
            continue
        print(
            f"{name:<10} {a['role']:<10} {a['n']:>3} {a['gain_mae_law']:>12.4f} {a['gain_mae_anchored']:>8.4f} "
            f"{a['gain_sign_law']:>8.2f} {a['gain_sign_anchored']:>8.2f} {a['coverage90']:>7.2f} "
            f"{a['loss_mre_law']:>12.2%} {a['loss_mre_anchored']:>8.2%}"
        )
    print("\nwhich rungs to anchor on (target loss MRE / gain MAE):")
    for name, a in result["anchor"].items():
        v = a.get("variants") or {}
        parts = [f"{k} {x['loss_mre']:.2%} / {x['gain_mae']:.4f}" for k, x in v.items() if "loss_mre" in x]
        guard = v.get("size_regime_guard", {}).get("fired", 0.0)
        print(f"  {name:<10} " + "; ".join(parts) + f"; size-regime guard fires on {guard:.0%}")
    print()
    print(f"{'family':<10} {'role':<10} {'cases':<21} {'rule':<32} {'n':>3} {'acc':>5} {'claim':>5} "
          f"{'false':>5} {'missed':>6} {'wins':>4}")  # fmt: skip
    for s in result["scores"]:
        acc = "-" if s["accuracy"] is None else f"{s['accuracy']:.2f}"
        print(
            f"{s['family']:<10} {s['role']:<10} {s['cases']:<21} {s['rule']:<32} {s['n']:>3} {acc:>5} "
            f"{s['claims']:>5} {s['false_claims']:>5} {s['missed_wins']:>6} {s['wins']:>4}"
        )
    print("\nrank-1 cases against the reference mixture:")
    for fam_cases in result["cases"].values():
        for c in fam_cases:
            if c["rank"] != 1 or c["baseline_kind"] != "reference":
                continue
            rungs = ", ".join(
                f"{r['rung']} {r['model']}@{r['steps']:g} pred {r['predicted_gain']:+.4f} meas "
                f"{r['measured_gain']:+.4f} (sd {r['sd'] or 0:.4f})"
                for r in c["rungs"]
            )
            print(
                f"  {c['family']:<9} {'+'.join(c['fit_sizes'])}<={c['fit_step']:g} -> {c['target']}@"
                f"{c['target_step']:g}: {'claim' if c['claim'] else 'no claim':<8} target gain "
                f"{c['target_gain']:+.4f} (pred {c['predicted_target_gain']:+.4f}) "
                f"{'ok' if c['correct'] else 'WRONG'}; {rungs}"
            )
    cost = result["rung_cost_per_arm"]
    print(f"\nrung cost per arm: median {cost['median']:.2f}, max {cost['max']:.2f} target runs")


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data" / "mixinglaws")
    parser.add_argument("--out", type=Path, default=here / "results")
    args = parser.parse_args(argv)
    if not (args.data / FILES["5Mix"]).is_file():
        print(
            f"confirmation_rule: {args.data}: the shared loss data are not there (see --data)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("mixlaw").setLevel(logging.ERROR)
    result = run(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    dump_json(result, args.out / "confirmation_rule.json")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
