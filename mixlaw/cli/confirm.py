"""`mixlaw confirm`: the confirmation-rung decision for users who train with their own trainer (`mixlaw.confirm`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mixlaw.cli.common import integer, number, status
from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json, read_json
from mixlaw.outputs import check_output

EXAMPLES = """examples:
  mixlaw confirm results/ --runs rungs.csv                # results/ as written by `mixlaw pipeline`
  mixlaw confirm results/optimum.json --runs rungs.csv --fraction 0.25 --out confirm.json
  mixlaw confirm results/ --runs rungs.csv --valid-weights valid_weights.csv --group pile_category

RUNS.csv is a runs table (the columns of `mixlaw fit`'s input, with a seed column when there are several seeds)
holding the candidate (optimum.json's mixture) and the baseline (optimum.json's baseline mixture), trained with
the same seeds at the rungs: (i) your largest proxy size x the target's steps, (ii) the target size (or a size
between) x the proxies' steps. Each run's last checkpoint is its rung. A mixture is matched to the candidate,
the baseline, the shrunk candidate (half-way to the baseline, --shrink) or the best observed proxy mixture
(optimum.json's alternative) by its p_ columns. The candidate is claimed when at every rung its measured gain
(baseline - candidate, paired by seed, mean over seeds) >= max(2 sd, F x the law's predicted gain); otherwise
the fallbacks are judged in order, and the line `next:` says which runs to train to test the next one.
With a third point, the proxy rung (your largest proxy size x the proxies' steps), the target gain is also
anchored on the rungs (measured_i + measured_ii - measured_proxy with a target-scale law) and must pass the
recommendation rule (P(beats baseline) >= --min-confidence, 90% interval above 0).
The predicted gain at a rung is the target-scale law's (law.json beside optimum.json; `mixlaw run` predicts at
each rung's own scale). With one seed, sd = sqrt(2) x the runs' checkpoint noise (or --noise).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "confirm",
        help="claim the optimum only if its gain holds at intermediate scales (your own rung runs)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Decide from the candidate's and the baseline's runs at the confirmation rungs whether the "
        "pipeline's optimum may be claimed, else which fallback (shrunk candidate, best observed mixture, "
        "baseline with no claim).",
    )
    p.add_argument(
        "results", metavar="RESULTS_DIR_or_OPTIMUM", help="a `mixlaw pipeline` folder or optimum.json"
    )
    p.add_argument("--runs", required=True, metavar="RUNS.csv", help="runs of the candidate and the baseline")
    p.add_argument(
        "--fraction", type=number(ge=0, le=1), default=None, help="F of the rule (default: the backtest's)"
    )
    p.add_argument(
        "--shrink", type=number(gt=0, le=1), default=None, help="the shrunk arm's step back (default 0.5)"
    )
    p.add_argument("--noise", type=number(gt=0), default=None, help="one run's loss sd (one-seed rungs)")
    p.add_argument(
        "--min-confidence",
        type=number(gt=0, le=1),
        default=None,
        help="P(beats baseline) the anchored target gain needs (default 0.9)",
    )
    p.add_argument(
        "--validation-seeds",
        type=integer(ge=1),
        default=1,
        help="paired seeds of your target validation: the anchored `measured` interval is for them (default 1)",
    )
    p.add_argument("--valid-weights", default=None, help="valid-weights CSV (default: uniform over domains)")
    p.add_argument("--group", default=None, help="grouping column of --valid-weights")
    p.add_argument("--out", default=None, help="confirm.json (default: beside optimum.json)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run)


def _optimum_path(results: str) -> Path:
    path = Path(results)
    if path.is_dir():
        path = path / "optimum.json"
        if not path.is_file():
            raise MixlawInputError(f"{results}: no optimum.json in this folder (a `mixlaw pipeline` output?)")
    return path


def _vector(mix: Any, columns: list[str], what: str, source: Path) -> list[float]:
    if not isinstance(mix, dict) or not mix:
        raise MixlawInputError(f"{source}: {what} has no mixture")
    missing = [c for c in mix if c not in columns and float(mix[c]) > 0]
    if missing:
        raise MixlawInputError(f"{source}: {what} column(s) {', '.join(missing)} are not in the runs table")
    try:
        return [float(mix.get(c, 0.0)) for c in columns]
    except (TypeError, ValueError):
        raise MixlawInputError(f"{source}: {what}: shares must be numbers") from None


def _predicted(
    optimum: dict, path: Path, arms: dict, baseline: Any, columns: list[str], shrink: float
) -> tuple[dict[str, float], dict[str, float], str]:
    """The target-scale gain of each arm over the baseline and the losses {baseline, arm} (those known):
    law.json beside optimum.json, else optimum.json."""
    import numpy as np

    law_path = path.parent / "law.json"
    weights = optimum["objective"]["weights"]
    if law_path.is_file():
        from mixlaw.fitted import FittedLaw

        law = FittedLaw.load(law_path)
        where = [columns.index(c) if c in columns else None for c in law.domain_columns]
        names = list(arms)
        X = np.array(
            [
                [0.0 if j is None else float(v[j]) for j in where]
                for v in [baseline] + [arms[n] for n in names]
            ]
        )
        pred = law.predict(X)
        loss = sum(float(w) * np.asarray(pred[t], dtype=float) for t, w in weights.items())
        gains = {n: float(loss[0] - loss[i + 1]) for i, n in enumerate(names)}
        losses = {"baseline": float(loss[0]), **{n: float(loss[i + 1]) for i, n in enumerate(names)}}
        return gains, losses, f"{law_path.name} (target scale)"
    gain = optimum.get("gain") or {}
    base_pred = optimum["baseline"].get("predicted") or {}
    cand = gain.get("value")
    if cand is None:
        cand = base_pred.get("objective", np.nan) - (optimum.get("predicted") or {}).get("objective", np.nan)
    out = {"candidate": float(cand)}
    if "shrunk" in arms:
        out["shrunk"] = float(cand) * (1 - shrink)  # first order in the step back
    alt = optimum.get("alternative")
    if "best_observed" in arms and isinstance(alt, dict):
        out["best_observed"] = float(base_pred.get("objective", np.nan) - alt["predicted"])
    if not np.isfinite(out["candidate"]):
        raise MixlawInputError(f"{path}: no predicted gain (gain.value) and no law.json beside it")
    losses = {}
    if isinstance(base_pred.get("objective"), (int, float)):
        losses["baseline"] = float(base_pred["objective"])
        losses["candidate"] = losses["baseline"] - out["candidate"]
    return out, losses, "optimum.json (target scale; no law.json beside it)"


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from mixlaw.confirm import (
        FRACTION,
        SHRINK,
        TargetPrediction,
        decide,
        fallback_arms,
        rung_noise,
        rung_rows,
        rungs_from_rows,
        text_block,
    )
    from mixlaw.recommendation import MIN_CONFIDENCE
    from mixlaw.runs import load_weights, read_runs

    fraction = FRACTION if args.fraction is None else args.fraction
    shrink = SHRINK if args.shrink is None else args.shrink

    path = _optimum_path(args.results)
    optimum = read_json(path, "optimum")
    if not isinstance(optimum, dict) or not isinstance(optimum.get("baseline"), dict):
        raise MixlawInputError(f"{path}: not an optimum.json with a baseline (run `mixlaw pipeline`)")
    objective = (optimum.get("objective") or {}).get("weights")
    if not isinstance(objective, dict) or not objective:
        raise MixlawInputError(f"{path}: no objective weights")
    out = check_output(args.out or path.parent / "confirm.json", suffixes=(".json",))
    table = read_runs(args.runs)
    columns = table.domain_columns
    weights = load_weights(args.valid_weights, table.valid_domains, args.group)
    cand = np.array(_vector(optimum.get("mixture"), columns, "the optimum", path))
    base = np.array(_vector(optimum["baseline"].get("mixture"), columns, "the baseline", path))
    alt = optimum.get("alternative")
    alt_vec = (
        np.array(_vector(alt["mixture"], columns, "the alternative", path)) if isinstance(alt, dict) else None
    )
    arms = fallback_arms(cand, base, alt_vec, shrink)
    missing = [t for t in objective if t not in weights.groups]
    if missing:
        raise MixlawInputError(
            f"{args.runs}: the objective's target(s) {', '.join(missing)} are not among the runs' targets "
            f"({', '.join(weights.groups)}); give --valid-weights/--group as for `mixlaw pipeline`"
        )
    rows = rung_rows(table, weights, objective, {"baseline": base, **arms})
    for arm, what in (("candidate", "mixture"), ("baseline", "baseline mixture")):
        if not (rows["arm"] == arm).any():
            raise MixlawInputError(
                f"{args.runs}: no run of the {arm} (optimum.json's {what}, matched by p_ columns)"
            )
    rungs = rungs_from_rows(rows)
    gains, losses, source = _predicted(optimum, path, arms, base, columns, shrink)
    predicted = {n: [gains[n]] * len(rungs) for n in arms if n in gains}
    one_seed = rows.groupby(["arm", "params", "step"])["seed"].nunique().min() < 2
    noise = None
    if one_seed:
        noise = {r.name: args.noise or rung_noise(table, weights, r) for r in rungs}
    mixtures = {n: {c: float(v) for c, v in zip(columns, arms[n])} for n in arms}
    target = TargetPrediction(gains, losses, int(args.validation_seeds))
    min_confidence = MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    record = decide(
        rows,
        rungs,
        predicted,
        fraction,
        noise,
        list(predicted),
        mixtures,
        target=target,
        min_confidence=min_confidence,
    )
    record.update(
        predicted_source=source,
        optimum=str(path.name),
        runs=Path(args.runs).name,
        noise_sd=noise,
    )
    dump_json(record, out)
    print(text_block(record))
    if record["next"]:
        todo = ", ".join(f"{r['model']} x {r['steps']:g}" for r in record["next"]["rungs"])
        print(f"next: train the {record['next']['arm'].replace('_', ' ')} mixture at {todo} (same seeds)")
    status(args, f"wrote {out}")
    return 0
