"""`mixlaw continual` (critical proportion and trade-off of continual pretraining) and `mixlaw schedule`
(fit, predict and optimize multi-stage data schedules)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from mixlaw.cli.common import (
    _csv_list,
    add_output_flags,
    command_line,
    finite_float,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    random_seed,
    share,
    status,
)
from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json, read_yaml, to_jsonable
from mixlaw.outputs import check_output
from mixlaw.runs import RunsTable, read_table, validate_runs

RAW = argparse.RawDescriptionHelpFormatter

CONTINUAL_EXAMPLES = """examples:
  mixlaw continual ct.csv --base-run base --original all --new python \\
      --valid-weights valid_weights.csv --holdout-runs 9 --out ct.json --curve ct-curve.csv
  mixlaw continual out/ct-base/runs.csv out/ct/runs.csv --original docs,code --new math   # base run inferred
  mixlaw continual runs.csv --base-run base --original all --new python --tolerance 0.005 --step 8000

--original all = every validation domain not in --new. The original loss is the weighted total over the
original domains (weights from --valid-weights, renormalized; uniform without a file); r = the share of the
training domains the base run used (or --original-train)."""

SCHEDULE_EXAMPLES = """examples:
  mixlaw schedule fit out/schedule-demo/runs.csv --out schedule-law.json
  mixlaw schedule predict schedule-law.json schedules.yaml           # YAML/JSON: a list of schedules
  mixlaw schedule optimize schedule-law.json --stages 2 --tokens 655360 \\
      --available math_prose=62902 --max-epochs 1 --out best.json
  mixlaw schedule optimize schedule-law.json --stages 1 --tokens 655360 --available math_prose=62902   # static

A schedule is a list of stages {share: s, mixture: {domain: p}} (shares sum to 1), as in a sweep config's
`schedules:`. Availability counts a domain's tokens over all stages together (repeats across stages count once)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "continual",
        help="continual pretraining: critical share of original data and the trade-off curve",
        description="Fit c + exp(b + k r) to the original- and new-domain losses of continual-pretraining runs "
        "(r = share of original data) and report the critical share r*: the smallest r whose "
        "predicted original loss does not exceed the base model's (+ tolerance), with an interval.",
        epilog=CONTINUAL_EXAMPLES,
        formatter_class=RAW,
    )
    p.add_argument(
        "runs", metavar="RUNS", nargs="+", help="runs table(s) (.csv/.parquet/.jsonl); several are joined"
    )
    p.add_argument("--base-run", metavar="ID", help="run id of the base model (default: the runs' init_run)")
    p.add_argument(
        "--base-step", type=nonnegative_float, help="checkpoint of the base run (default: its last)"
    )
    p.add_argument(
        "--original",
        required=True,
        type=_csv_list,
        metavar="DOMAINS",
        help="comma list of original validation domains, or 'all' (every domain not in --new)",
    )
    p.add_argument(
        "--new", required=True, type=_csv_list, metavar="DOMAINS", help="comma list of new validation domains"
    )
    p.add_argument(
        "--original-train",
        type=_csv_list,
        metavar="DOMAINS",
        help="training domains that are original data (default: those the base run trained on)",
    )
    p.add_argument("--valid-weights", metavar="FILE", help="CSV valid_domain,valid_weight (default uniform)")
    p.add_argument(
        "--tolerance",
        type=nonnegative_float,
        default=0.0,
        metavar="X",
        help="allowed rise of the original loss over the base model's (default 0)",
    )
    p.add_argument(
        "--step",
        type=nonnegative_float,
        help="checkpoint of the continual runs (default: largest common step)",
    )
    p.add_argument(
        "--target-step",
        type=positive_float,
        metavar="S",
        help="the continual run length you will train (default: --step); the critical share drifts with "
        "length, so beyond the observed checkpoints the interval widens and the recommendation declines",
    )
    p.add_argument(
        "--min-confidence",
        type=share,
        default=0.9,
        metavar="P",
        help="least P(no forgetting) at the recommended share to recommend it (default 0.9)",
    )
    p.add_argument("--model", help="model label when the table has several")
    p.add_argument("--exclude-runs", type=_csv_list, default=[], metavar="IDS", help="runs to ignore")
    p.add_argument(
        "--holdout-runs",
        type=_csv_list,
        default=[],
        metavar="IDS",
        help="runs left out of the fit and predicted (error, and whether r* is on the right side)",
    )
    p.add_argument(
        "--c-init",
        choices=["correlation", "joint"],
        default="correlation",
        help="correlation = the paper's two-stage fit (default); joint = c, b, k together",
    )
    p.add_argument(
        "--bootstrap",
        type=nonnegative_int,
        default=400,
        metavar="N",
        help="parametric bootstrap draws (default 400)",
    )
    p.add_argument("--level", type=share, default=0.9, help="interval level (default 0.9)")
    p.add_argument("--seed", type=random_seed, default=0)
    p.add_argument("--renormalize", action="store_true", help="rescale proportions that do not sum to 1")
    p.add_argument("--out", metavar="RESULT.json", help="write the full result as JSON")
    p.add_argument("--curve", metavar="CURVE.csv", help="write the trade-off curve as CSV")
    p.add_argument(
        "--json", action="store_true", help="print the JSON result on stdout instead of the summary"
    )
    add_output_flags(p)
    p.set_defaults(func=cmd_continual)

    s = subparsers.add_parser(
        "schedule",
        help="multi-stage data schedules: fit, predict, optimize",
        description="A law for the loss after a multi-stage schedule (recency-weighted "
        "effective mixture) and a schedule optimizer under data availability.",
        epilog=SCHEDULE_EXAMPLES,
        formatter_class=RAW,
    )
    sub = s.add_subparsers(dest="schedule_command", metavar="ACTION")
    f = sub.add_parser(
        "fit",
        help="fit the schedule law on a runs table with staged (and static) runs",
        epilog=SCHEDULE_EXAMPLES,
        formatter_class=RAW,
    )
    f.add_argument("runs", metavar="RUNS")
    f.add_argument("--out", required=True, metavar="LAW.json")
    f.add_argument(
        "--step", type=nonnegative_float, help="checkpoint (default: the largest step common to all runs)"
    )
    f.add_argument("--model", help="model label when the table has several")
    f.add_argument("--valid-weights", metavar="FILE", help="CSV valid_domain,valid_weight (default uniform)")
    f.add_argument("--valid-domains", type=_csv_list, help="comma list of validation domains to use")
    f.add_argument(
        "--gamma", default="per-target", help="recency: per-target (default), shared, or a fixed number"
    )
    f.add_argument(
        "--loo",
        choices=["fixed-gamma", "full", "none"],
        default="fixed-gamma",
        help="leave-one-schedule-out error stored with the law for the gain intervals: fixed-gamma (default, "
        "fast: each target's gamma kept), full (gamma re-profiled, ~60x slower), none (no intervals later)",
    )
    f.add_argument("--renormalize", action="store_true")
    add_output_flags(f)
    f.set_defaults(func=cmd_schedule_fit)

    pr = sub.add_parser(
        "predict", help="predict the losses of schedules", epilog=SCHEDULE_EXAMPLES, formatter_class=RAW
    )
    pr.add_argument("law", metavar="LAW.json")
    pr.add_argument(
        "schedules", metavar="SCHEDULES", help="YAML/JSON: a list of schedules (or {schedules: [...]})"
    )
    pr.add_argument("--out", metavar="PRED.csv", help="CSV output (default stdout)")
    add_output_flags(pr)
    pr.set_defaults(func=cmd_schedule_predict)

    o = sub.add_parser(
        "optimize", help="best schedule under availability", epilog=SCHEDULE_EXAMPLES, formatter_class=RAW
    )
    o.add_argument("law", metavar="LAW.json")
    o.add_argument("--stages", type=int, default=2, help="number of stages (1 = the best static mixture)")
    o.add_argument("--shares", type=_floats, help="fixed stage shares, e.g. 0.75,0.25 (default: search)")
    o.add_argument("--tokens", type=positive_float, help="total training tokens of the schedule")
    o.add_argument(
        "--available",
        type=_kv,
        default=None,
        metavar="D=TOKENS,...",
        help="tokens available per domain (others unlimited)",
    )
    o.add_argument(
        "--max-epochs",
        type=positive_float,
        default=1.0,
        help="passes allowed over available data (default 1)",
    )
    o.add_argument("--upper", type=_kv, default=None, metavar="D=SHARE,...", help="per-stage upper bounds")
    o.add_argument(
        "--objective", type=_kv, default=None, metavar="T=W,...", help="weights of targets (default total=1)"
    )
    o.add_argument(
        "--baseline",
        type=_kv,
        default=None,
        metavar="D=SHARE,...",
        help="static baseline mixture the gain is measured against (default uniform)",
    )
    o.add_argument("--level", type=share, default=0.9, help="gain interval level (default 0.9)")
    o.add_argument(
        "--min-confidence",
        type=share,
        default=0.9,
        metavar="P",
        help="least P(beats the best static mixture, or the baseline with --stages 1) to recommend (default 0.9)",
    )
    o.add_argument("--out", metavar="RESULT.json")
    add_output_flags(o)
    o.set_defaults(func=cmd_schedule_optimize)
    s.set_defaults(func=lambda args: _schedule_help(s))


def _schedule_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _floats(text: str) -> list[float]:
    return [finite_float(v) for v in text.split(",") if v.strip()]


def _kv(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"{part!r} is not name=value")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = finite_float(v)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{k.strip()!r}: {exc}") from None
    return out


def _read_tables(paths: list[str], renormalize: bool) -> RunsTable:
    frames = [read_table(p) for p in paths]
    frame = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    source = paths[0] if len(paths) == 1 else " + ".join(paths)
    return RunsTable(validate_runs(frame, source, renormalize), source)


# --------------------------------------------------------------------------------------------- continual


def cmd_continual(args: argparse.Namespace) -> int:
    from mixlaw.continual import (
        continual_analysis,
        continual_recommendation,
        critical_share_by_length,
        prepare_continual,
    )

    for path, flag in ((args.out, "--out"), (args.curve, "--curve")):
        if path:
            check_output(path, flag=flag)
    table = _read_tables(args.runs, args.renormalize)
    original = args.original if args.original not in (["all"], ["*"]) else "all"
    data = prepare_continual(
        table,
        args.base_run,
        original,
        args.new,
        args.valid_weights,
        args.step,
        args.base_step,
        args.original_train,
        args.model,
        args.exclude_runs,
    )
    status(
        args,
        f"continual: {len(data.runs)} runs at step {data.step}, base original loss {data.base_original:.5f}; "
        f"fitting and {args.bootstrap} bootstrap draws ...",
    )
    result = continual_analysis(
        data, args.tolerance, args.holdout_runs, args.bootstrap, args.level, args.seed, args.c_init
    )
    curve = result.pop("curve")
    if data.step is not None:
        status(args, "continual: the critical share at every observed length (its drift with length) ...")
    result["by_length"] = critical_share_by_length(
        data,
        result,
        args.target_step,
        args.tolerance,
        args.holdout_runs,
        args.bootstrap,
        args.level,
        args.seed,
        args.c_init,
    )
    result["recommendation"] = continual_recommendation(result, args.min_confidence)
    result["command"] = command_line()
    if args.out:
        dump_json(result, args.out)
        status(args, f"continual: wrote {args.out}")
    if args.curve:
        curve.to_csv(args.curve, index=False, float_format="%.8g")
        status(args, f"continual: wrote {args.curve}")
    if args.json:
        print(json.dumps(to_jsonable(result), indent=2))
    else:
        print(_summary(result))
    return 0


def _iv(interval: list) -> str:
    return f"{interval[0]:.4f}, " + ("beyond 1" if interval[1] is None else f"{interval[1]:.4f}")


def _summary(res: dict) -> str:
    crit = res["critical"]
    lines = [
        f"base model: original loss {res['base']['original']:.5f}, new loss {res['base']['new']:.5f} "
        f"(step {res['step']})"
    ]
    for name in ("original", "new"):
        p = res["law"][name]
        lines.append(f"law {name}: L = {p['c']:.5f} + exp({p['b']:.4f} + {p['k']:.4f} r)")
    if crit["share"] is None:
        lines.append("critical share: none (even r = 1 is predicted to raise the original loss)")
    else:
        iv = crit["interval"]
        iv_text = (
            ""
            if iv is None
            else f", {crit['level']:.0%} interval [{iv[0]:.4f}, "
            + ("beyond 1" if iv[1] is None else f"{iv[1]:.4f}")
            + "]"
        )
        lines.append(
            f"critical share of original data: {crit['share']:.4f} ({crit['status']}{iv_text}); "
            f"new-domain gain there {crit['new_gain_at_share']:.4f}"
        )
    step_text = "" if res["step"] is None else f"{res['step']:g}-step"
    if step_text:
        lines[-1] += f" -- holds for {step_text} continual runs only"
    by = res.get("by_length") or {}
    if by.get("lengths"):
        lines.append(
            "critical share by length (each interval holds for its own length): "
            + "; ".join(
                f"{o['step']:g}: "
                + ("none" if o["share"] is None else f"{o['share']:.4f}")
                + ("" if o["interval"] is None else f" [{_iv(o['interval'])}]")
                for o in by["lengths"]
            )
        )
    trend = by.get("trend")
    if trend:
        lines.append(
            f"drift: {trend['per_doubling']:+.4f} per doubling of the length ({trend['form']}, "
            f"{len(trend['steps'])} lengths)"
        )
    req = by.get("requested")
    if req and req["step"] is not None:
        lines.append(
            f"at {req['step']:g} steps ({req['basis']}"
            + (f", {req['length_ratio']:.3g}x the nearest observed length" if "length_ratio" in req else "")
            + "): critical share "
            + ("unknown" if req["share"] is None else f"{req['share']:.4f}")
            + ("" if req["interval"] is None else f", {crit['level']:.0%} interval [{_iv(req['interval'])}]")
        )
    rec = res.get("recommendation")
    if rec:
        if rec["verdict"] == "recommend":
            lines.append(
                f"recommendation: train with at least {rec['share']:.4f} original data for "
                + ("these runs" if rec["step"] is None else f"{rec['step']:g}-step runs")
                + f". {rec['reason']}"
            )
        else:
            lines.append(f"recommendation: decline. {rec['reason']}")
    for h in res["holdout"]:
        o = h["original"]
        side = {True: "right side", False: "WRONG side", None: "n/a"}[h["critical_share_on_right_side"]]
        lines.append(
            f"held-out run {h['run']} (r = {h['original_share']:.4f}): original measured {o['measured']:.5f}, "
            f"predicted {o['predicted']:.5f} (error {o['error']:+.5f}); measured "
            f"{'no forgetting' if h['measured_no_forgetting'] else 'forgetting'} -> r* on the {side}"
            f" (bootstrap P(right side) = {h['bootstrap_share_on_right_side']})"
            + (
                f"; r = {h['original_share']:.4f} is inside the {step_text or 'fitted'} interval, so the data "
                "cannot tell the side"
                if h.get("inside_interval")
                else ""
            )
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- schedule


def cmd_schedule_fit(args: argparse.Namespace) -> int:
    from mixlaw.schedule import fit_schedule_law, prepare_schedules, schedule_noise

    check_output(args.out)
    table = _read_tables([args.runs], args.renormalize)
    data = prepare_schedules(table, args.step, args.model, args.valid_weights, args.valid_domains)
    n_staged = sum(len(s.shares) > 1 for s in data.schedules)
    status(
        args, f"schedule: fitting on {len(data.schedules)} rows ({n_staged} staged) at step {data.step} ..."
    )
    gamma = args.gamma
    fitted = fit_schedule_law(data, gamma=gamma)
    fitted.info.update({"source": table.source, "data_hash": table.data_hash(), "command": command_line()})
    if args.loo != "none":
        status(args, f"schedule: leave-one-schedule-out ({args.loo}) and seed noise ...")
    fitted.info["noise"] = schedule_noise(data, fitted, args.loo)
    dump_json(fitted.to_dict(), args.out)
    law = fitted.law
    print(
        f"gamma = {', '.join(f'{g:.3f}' for g in law.params_['gamma'])}; rmse per target "
        + ", ".join(f"{t} {e:.4f}" for t, e in zip(fitted.targets, law.summary_["rmse"]))
    )
    noise = fitted.info["noise"]
    if noise:
        print(
            f"leave-one-schedule-out error of the total ({noise['loo']['mode']}): rmse "
            f"{noise['loo']['rmse_total']:.4f}, mae {noise['loo']['mae_total']:.4f}; seed sd "
            f"{noise['seed_sd']['value']:.4f} ({noise['seed_sd']['source']})"
        )
    else:
        print(
            "no leave-one-out error (--loo none): `schedule optimize` will give no gain intervals and decline"
        )
    status(args, f"schedule: wrote {args.out}")
    return 0


def _load_fitted(path: str):
    from mixlaw.schedule import FittedSchedule

    return FittedSchedule.load(path)


def cmd_schedule_predict(args: argparse.Namespace) -> int:

    from mixlaw.schedule import Schedule

    if args.out:
        check_output(args.out)
    fitted = _load_fitted(args.law)
    path = Path(args.schedules)
    raw = read_yaml(path, "schedules")
    if isinstance(raw, dict):
        raw = raw.get("schedules")
    if not isinstance(raw, list) or not raw:
        raise MixlawInputError(
            f"{path}: expected a list of schedules (each a list of {{share, mixture}} stages)"
        )
    schedules = []
    for i, sched in enumerate(raw):
        try:
            schedules.append(Schedule.from_dict(sched, fitted.domains))
        except MixlawInputError as exc:
            raise MixlawInputError(f"{path}: schedule {i + 1}: {exc}") from None
    pred = fitted.predict(schedules)
    rows = []
    for i, s in enumerate(schedules):
        row = {"schedule": i + 1, "stages": json.dumps(s.to_dict(fitted.domains))}
        row.update({f"p_{d}": v for d, v in zip(fitted.domains, s.overall)})
        row.update({f"pred_{k}": float(v[i]) for k, v in pred.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False, float_format="%.8g")
        status(args, f"schedule: wrote {args.out}")
    else:
        frame.to_csv(sys.stdout, index=False, float_format="%.8g")
    return 0


def cmd_schedule_optimize(args: argparse.Namespace) -> int:
    from mixlaw.mixture import Mixture
    from mixlaw.recommendation import alternative_text
    from mixlaw.schedule import optimize_schedule, schedule_recommendation

    if args.out:
        check_output(args.out)
    fitted = _load_fitted(args.law)
    if args.stages < 1:
        raise MixlawInputError(f"--stages {args.stages}: must be at least 1")
    if args.max_epochs <= 0:
        raise MixlawInputError(f"--max-epochs {args.max_epochs}: must be positive")
    baseline = None
    if args.baseline is not None:
        baseline = Mixture.from_dict(args.baseline, fitted.domains, "--baseline", hint=None).as_array(
            fitted.domains
        )
    problem = (args.available, args.tokens, args.max_epochs, args.upper, args.objective)
    result = optimize_schedule(fitted, args.stages, args.shares, *problem)
    static = result if args.stages == 1 else optimize_schedule(fitted, 1, None, *problem)
    result.update(
        schedule_recommendation(
            fitted,
            result,
            static,
            baseline,
            "user" if baseline is not None else "uniform",
            args.level,
            args.min_confidence,
        )
    )
    result["command"] = command_line()
    if args.out:
        dump_json(result, args.out)
        status(args, f"schedule: wrote {args.out}")
    keys = ("schedule", "predicted", "constraints", "gain", "recommendation")
    print(json.dumps(to_jsonable({k: result[k] for k in keys}), indent=2))
    rec = result["recommendation"]
    print(f"recommendation: {rec['verdict']}. {rec['reason']}", file=sys.stderr)
    if rec["verdict"] == "decline" and alternative_text(result):
        print(alternative_text(result), file=sys.stderr)
    return 0
