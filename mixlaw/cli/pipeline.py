"""`mixlaw pipeline` (small runs -> target-scale law -> optimum) and `mixlaw optimize` (LAW.json -> optimum)."""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any

from mixlaw import api
from mixlaw.cli.common import add_output_flags, add_runs_flags, command_line, load_table, status
from mixlaw.constraints import read_available, read_bounds, read_fixed, read_mixture, read_objective
from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json
from mixlaw.laws import LAWS
from mixlaw.optimize import optimize
from mixlaw.runs import load_weights
from mixlaw.scaling import SHARE_OPTIONS
from mixlaw.settings import PipelineConfig, defaults

PIPELINE = defaults(PipelineConfig)
MAX_EPOCHS = inspect.signature(optimize).parameters["max_epochs"].default
SOLVE = {k: v.default for k, v in inspect.signature(api.solve).parameters.items()}

RAW = argparse.RawDescriptionHelpFormatter

PIPELINE_EXAMPLES = """defaults:
  step range   every complete checkpoint up to the largest step (or token count) observed at all sizes
  sizes        all sizes in the table
  mixtures     every run observed at >= --min-sizes (3) sizes; every run id is treated alike
  scale law    chain: step law per (mixture, size, target), beta shared per mixture; then size law per
               (mixture, target), alpha shared by all curves
  mixing law   chosen by 5-fold cross-validation on the extrapolated losses (--law auto)
  baseline     natural token-proportional mixture when --available is given, else uniform

examples:
  mixlaw pipeline redpajama.csv --target-params 805736448 --target-step 100000 \\
      --valid-weights valid_weights.csv --group pile_category --renormalize --out rp-1b
  mixlaw pipeline runs.csv --target-params 1e9 --target-tokens 1e11 --available tokens.csv --max-epochs 4 \\
      --bounds bounds.csv --baseline "web=0.6,code=0.2,books=0.2" --out out/

outputs in DIR: predictions.csv, law.json (usable with `mixlaw predict` and `mixlaw optimize`), optimum.json,
step_laws.json + size_laws.json (or joint_law.json), checks.json, summary.md
"""

OPTIMIZE_EXAMPLES = """examples:
  mixlaw optimize law.json --out opt.json
  mixlaw optimize law.json --bounds bounds.csv --available tokens.csv --target-tokens 1e11 --max-epochs 2 \\
      --fix p_code=0.1 --objective academic --baseline "web=0.5,code=0.25,books=0.25" --out opt.json

files: bounds CSV `domain,lower,upper` (blank = 0 or 1; domain with or without p_), tokens CSV `domain,tokens`,
objective weights CSV `target,weight` (weights normalized to sum 1). A MIXTURE is a CSV with one row of
p_<domain> columns or `name=value,...` pairs; it must sum to 1 (or pass --renormalize).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pipeline",
        help="extrapolate small runs to a target scale, fit the mixing law there and optimize",
        formatter_class=RAW,
        epilog=PIPELINE_EXAMPLES,
        description="Step laws -> size laws (or one joint law) -> mixing law at the target scale -> optimal "
        "mixture, with a hold-out check of each stage.",
    )
    add_runs_flags(p, checkpoint=False)
    t = p.add_argument_group("target")
    t.add_argument(
        "--target-params",
        type=float,
        required=True,
        metavar="N",
        help="target model size (same parameter count convention as the params column)",
    )
    target = t.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-step", type=float, metavar="S", help="target training length in steps")
    target.add_argument("--target-tokens", type=float, metavar="T", help="target training length in tokens")
    s = p.add_argument_group("scale laws")
    s.add_argument(
        "--fit-steps",
        metavar="A:B",
        help="step (or token) range to fit, either end may be empty "
        "[default: every checkpoint up to the largest one observed at all sizes]",
    )
    s.add_argument("--fit-sizes", metavar="LIST", help="comma list of model labels or params [default: all]")
    s.add_argument(
        "--min-sizes",
        type=int,
        default=PIPELINE["min_sizes"],
        help=f"sizes a mixture needs to be used [{PIPELINE['min_sizes']}]",
    )
    s.add_argument(
        "--scale-law",
        choices=["chain", "joint"],
        default=PIPELINE["scale"],
        help="chain: step law then size law [default]; joint: E + A/N^alpha + B/D^beta per mixture/target",
    )
    s.add_argument(
        "--step-share",
        choices=SHARE_OPTIONS,
        default=PIPELINE["step_share"],
        help="curves sharing the step exponent: none, mixture (its targets, at one size) [default], "
        "all (every curve of one size)",
    )
    s.add_argument(
        "--size-share",
        choices=SHARE_OPTIONS,
        default=PIPELINE["size_share"],
        help="curves sharing the size exponent: none, mixture, all [default]",
    )
    s.add_argument(
        "--joint-share",
        choices=SHARE_OPTIONS,
        default=PIPELINE["joint_share"],
        help="joint law exponents sharing [all]",
    )
    s.add_argument(
        "--step-exponent",
        metavar="LO:HI",
        default="{:g}:{:g}".format(*PIPELINE["step_exponent"]),
        help="allowed range of the step (token) exponent beta [{:g}:{:g}]".format(*PIPELINE["step_exponent"]),
    )
    s.add_argument(
        "--size-exponent",
        metavar="LO:HI",
        default="{:g}:{:g}".format(*PIPELINE["size_exponent"]),
        help="allowed range of the size exponent alpha [{:g}:{:g}]".format(*PIPELINE["size_exponent"]),
    )
    s.add_argument(
        "--huber-delta",
        type=float,
        default=PIPELINE["delta"],
        help=f"Huber delta of the scale-law fits, nats [{PIPELINE['delta']:g}]",
    )
    m = p.add_argument_group("mixing law")
    m.add_argument(
        "--law", default="auto", help=f"auto (cross-validation) [default] or one of: {', '.join(LAWS)}"
    )
    m.add_argument(
        "--cv",
        type=int,
        default=PIPELINE["cv"],
        help=f"folds for the law choice and its reported error [{PIPELINE['cv']}]",
    )
    _add_optimize_flags(p, pipeline=True)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=PIPELINE["seed"])
    add_output_flags(p)
    p.set_defaults(func=cmd_pipeline)

    p = subparsers.add_parser(
        "optimize",
        help="optimal mixture of a fitted law under constraints",
        formatter_class=RAW,
        epilog=OPTIMIZE_EXAMPLES,
        description="Continuous constrained minimization of the predicted loss over the simplex (exact for the "
        "convex exponential laws, multi-start otherwise).",
    )
    p.add_argument("law", metavar="LAW.json")
    p.add_argument(
        "--target-tokens", type=float, metavar="T", help="training tokens of the target run (availability)"
    )
    p.add_argument(
        "--renormalize", action="store_true", help="rescale --baseline/--prior mixtures that do not sum to 1"
    )
    _add_optimize_flags(p, pipeline=False)
    p.add_argument("--out", required=True, metavar="OPT.json")
    p.add_argument("--seed", type=int, default=0)
    add_output_flags(p)
    p.set_defaults(func=cmd_optimize)


def _add_optimize_flags(p: argparse.ArgumentParser, pipeline: bool) -> None:
    o = p.add_argument_group("optimization")
    o.add_argument("--bounds", metavar="FILE", help="CSV domain,lower,upper")
    o.add_argument("--available", metavar="TOKENS.csv", help="CSV domain,tokens: tokens available per domain")
    o.add_argument(
        "--max-epochs",
        type=float,
        default=MAX_EPOCHS,
        help=f"allowed passes over each domain's tokens [{MAX_EPOCHS:g}]",
    )
    o.add_argument("--fix", action="append", metavar="p_x=V", help="fix a domain's share (repeatable)")
    o.add_argument(
        "--objective",
        default="total",
        metavar="total|TARGET|WEIGHTS.csv",
        help="what to minimize: the total [default], one target (domain or group), or weights per target",
    )
    o.add_argument(
        "--baseline",
        metavar="MIXTURE",
        help="mixture to compare with [natural token-proportional with --available, else uniform]",
    )
    o.add_argument("--prior", metavar="MIXTURE", help="pull the optimum toward this mixture ...")
    o.add_argument(
        "--prior-strength", type=float, default=0.0, help="... adding STRENGTH x ||r - prior||^2 [0]"
    )
    o.add_argument(
        "--max-distance",
        type=float,
        metavar="D",
        help="keep the optimum within L1 distance D of an observed mixture",
    )
    o.add_argument("--starts", type=int, help="optimizer starts [2 for convex laws, up to 12 otherwise]")
    o.add_argument(
        "--interval",
        type=float,
        default=SOLVE["interval"],
        help="level of the intervals on the optimum when the law has a bootstrap ensemble [0.9]",
    )
    if pipeline:
        o.add_argument(
            "--bootstrap",
            type=int,
            default=SOLVE["bootstrap"],
            help="bootstrap refits of the mixing law for intervals on the optimum (0: none) [30]",
        )


# --------------------------------------------------------------------------------------------- input files


def _problem_from_args(args: argparse.Namespace, domains: list[str], target_tokens: float | None) -> dict:
    """Keyword arguments of `optimize` that define the problem (constraints and objective)."""
    return {
        "bounds": read_bounds(args.bounds) if args.bounds else None,
        "available": read_available(args.available) if args.available else None,
        "target_tokens": target_tokens,
        "max_epochs": args.max_epochs,
        "fixed": read_fixed(args.fix),
        "objective": read_objective(args.objective),
        "prior": read_mixture(args.prior, domains, "prior", getattr(args, "renormalize", False)),
        "prior_strength": args.prior_strength,
        "max_distance": args.max_distance,
        "starts": args.starts,
    }


def _baseline_from_args(args: argparse.Namespace, domains: list[str]) -> tuple[Any, str | None]:
    """(baseline mixture or None, its name) from --baseline."""
    return read_mixture(
        args.baseline, domains, "baseline", getattr(args, "renormalize", False)
    ), args.baseline


def _print_optimum(result: dict[str, Any]) -> None:
    print("domain              optimum  baseline")
    for k, v in result["mixture"].items():
        print(f"{k:<18} {v:>8.4f} {result['baseline']['mixture'][k]:>9.4f}")
    print(
        f"predicted objective: optimum {result['predicted']['objective']:.5f}, "
        f"baseline ({result['baseline']['name']}) {result['baseline']['predicted']['objective']:.5f}"
    )
    eq = result["equivalent_extra_steps"]
    print(
        f"equivalent_extra_steps: {eq:.4g}"
        if eq is not None
        else f"equivalent_extra_steps: null ({result.get('equivalent_extra_steps_reason')})"
    )
    distance = result["distance_to_observed"]
    if distance.get("l1") is not None:
        print(
            f"L1 distance to the nearest observed mixture: {distance['l1']:.4f}"
            + (" (WARNING: beyond the observed spacing)" if distance["warning"] else "")
        )
    from mixlaw.report.answer import answer_lines

    print("\n".join(["", *answer_lines(result)]))  # the answer last: verdict, mixture and gain with intervals


# --------------------------------------------------------------------------------------------- commands


def cmd_optimize(args: argparse.Namespace) -> int:
    law = api.load_law(args.law)
    problem = _problem_from_args(args, law.domains, args.target_tokens)
    if problem["available"] is not None and args.target_tokens is None:
        raise MixlawInputError("--available needs --target-tokens (or a target step with a tokens column)")
    baseline, name = _baseline_from_args(args, law.domains)
    result = api.optimize_with_intervals(
        law, problem, baseline, name, args.seed, interval=args.interval, log=lambda m: status(args, m)
    )
    dump_json(result, args.out)
    status(args, f"wrote {args.out}")
    _print_optimum(result)
    return 0


def _parse_range(text: str | None) -> tuple[float | None, float | None] | None:
    if text is None:
        return None
    if ":" not in text:
        raise MixlawInputError(f"--fit-steps {text}: expected A:B (either end may be empty)")
    a, b = text.split(":", 1)
    try:
        return (float(a) if a.strip() else None, float(b) if b.strip() else None)
    except ValueError:
        raise MixlawInputError(f"--fit-steps {text}: expected numbers A:B") from None


def _parse_bounds(text: str, flag: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise MixlawInputError(f"{flag} {text}: expected LO:HI") from None
    if not 0 < lo < hi:
        raise MixlawInputError(f"{flag} {text}: expected 0 < LO < HI")
    return lo, hi


def cmd_pipeline(args: argparse.Namespace) -> int:
    if args.model is not None or args.params is not None:
        raise MixlawInputError(
            "the pipeline uses several sizes: choose them with --fit-sizes, not --model/--params"
        )
    config = PipelineConfig(
        target_params=args.target_params,
        target_step=args.target_step,
        target_tokens=args.target_tokens,
        fit_steps=_parse_range(args.fit_steps),
        fit_sizes=[s.strip() for s in args.fit_sizes.split(",") if s.strip()] if args.fit_sizes else None,
        law=args.law,
        scale=args.scale_law,
        step_share=args.step_share,
        size_share=args.size_share,
        joint_share=args.joint_share,
        min_sizes=args.min_sizes,
        delta=args.huber_delta,
        cv=args.cv,
        seed=args.seed,
        step_exponent=_parse_bounds(args.step_exponent, "--step-exponent"),
        size_exponent=_parse_bounds(args.size_exponent, "--size-exponent"),
    )
    # Cheap checks of the optimization inputs before the fits.
    for reader, value in ((read_bounds, args.bounds), (read_available, args.available)):
        if value:
            reader(value)
    table = load_table(args)
    table = table.select(
        train_domains=args.train_domains, valid_domains=args.valid_domains, metric=args.metric
    )
    problem = _problem_from_args(args, table.domains, config.target_tokens)
    baseline, name = _baseline_from_args(args, table.domains)
    for domain in problem["fixed"]:
        if domain not in table.domains:
            raise MixlawInputError(
                f"--fix: unknown training domain {domain!r}; known: {', '.join(table.domains)}"
            )
    weights = load_weights(args.valid_weights, table.valid_domains, args.group)
    solution = api.solve(
        table,
        weights,
        config,
        args.out,
        problem,
        baseline,
        name,
        bootstrap=args.bootstrap,
        interval=args.interval,
        command=command_line(),
        log=lambda m: status(args, m),
    )
    result, optimum = solution.pipeline, solution.optimum
    status(
        args,
        f"wrote {args.out}/: predictions.csv, law.json, optimum.json, summary.md ({result.timings['total']:.1f} s)",
    )
    for name in ("step", "step_beyond", "size", "chain"):
        check = result.checks.get(name)
        if check and "mean_rel" in check:
            print(
                f"check {name:<12} mean rel. error {100 * check['mean_rel']:.3f}%  max {100 * check['max_rel']:.3f}%"
                f"  (n={check['n']})"
            )
    _print_optimum(optimum)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
