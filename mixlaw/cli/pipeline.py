"""`mixlaw pipeline` (small runs -> target-scale law -> optimum) and `mixlaw optimize` (LAW.json -> optimum)."""

from __future__ import annotations

import argparse
import inspect
import logging
import math
import sys
from typing import Any

from mixlaw.cli.common import (
    add_output_flags,
    add_runs_flags,
    api,
    command_line,
    load_table,
    nonnegative_float,
    positive_float,
    positive_int,
    random_seed,
    status,
)
from mixlaw.constraints import read_available, read_bounds, read_fixed, read_mixture, read_objective
from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json
from mixlaw.laws import LAWS
from mixlaw.optimizer import TRUST_RADIUS, optimize
from mixlaw.outputs import check_output
from mixlaw.recommendation import MIN_CONFIDENCE, alternative_text
from mixlaw.runs import load_weights, read_runs
from mixlaw.scaling import SHARE_OPTIONS
from mixlaw.settings import OptimizeConfig, PipelineConfig, defaults

PIPELINE = defaults(PipelineConfig)
MAX_EPOCHS = inspect.signature(optimize).parameters["max_epochs"].default


RAW = argparse.RawDescriptionHelpFormatter

PIPELINE_EXAMPLES = """defaults:
  step range   every complete checkpoint up to the largest step (or token count) observed at all sizes
  sizes        all sizes in the table
  mixtures     every run observed at >= --min-sizes (3) sizes; every run id is treated alike
  scale law    chain: step law per (mixture, size, target) on checkpoints >= last / 3, beta shared per
               model size (--step-window, --step-share); then size law per (mixture, target), alpha shared
               by all curves
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
        type=float,  # target and scale-law numbers: checked by PipelineConfig
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
        help="curves sharing the step exponent: none, mixture (its targets, at one size), "
        f"all (every curve of one size) [{PIPELINE['step_share']}, validated by the extrapolation backtest]",
    )
    s.add_argument(
        "--step-window",
        metavar="W|none",
        default=_window_text(PIPELINE["step_window"]),
        help="fit the step laws on checkpoints >= (last fitted step) / W only; none = every checkpoint "
        f"[{_window_text(PIPELINE['step_window'])}, validated by the extrapolation backtest]",
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
    p.add_argument(
        "--anchor",
        metavar="RUNS",
        help="runs table with target-scale runs (target params and step/tokens) of one mixture, e.g. the "
        "baseline: removes the common-mode extrapolation error (others = anchor observed + predicted gain); "
        "recorded in optimum.json 'anchor'",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=random_seed, default=PIPELINE["seed"])
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
        "--target-tokens",
        type=positive_float,
        metavar="T",
        help="training tokens of the target run (availability)",
    )
    p.add_argument(
        "--renormalize", action="store_true", help="rescale --baseline/--prior mixtures that do not sum to 1"
    )
    _add_optimize_flags(p, pipeline=False)
    p.add_argument("--out", required=True, metavar="OPT.json")
    p.add_argument("--seed", type=random_seed, default=0)
    add_output_flags(p)
    p.set_defaults(func=cmd_optimize)


def _add_optimize_flags(p: argparse.ArgumentParser, pipeline: bool) -> None:
    o = p.add_argument_group("optimization")
    o.add_argument("--bounds", metavar="FILE", help="CSV domain,lower,upper")
    o.add_argument("--available", metavar="TOKENS.csv", help="CSV domain,tokens: tokens available per domain")
    o.add_argument(
        "--max-epochs",
        type=positive_float,
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
        "--prior-strength",
        type=nonnegative_float,
        default=0.0,
        help="... adding STRENGTH x ||r - prior||^2 [0]",
    )
    o.add_argument(
        "--max-distance",
        type=positive_float,
        metavar="D",
        help="keep the optimum within L1 distance D of an observed mixture "
        f"[trust region: {TRUST_RADIUS:g}, chosen by benchmarks/trust_region.py]",
    )
    o.add_argument(
        "--no-trust-region",
        action="store_true",
        help="optimize over the whole simplex (the optimum may leave the region the law is supported in)",
    )
    o.add_argument(
        "--min-confidence",
        type=float,
        default=MIN_CONFIDENCE,
        metavar="P",
        help=f"recommend only when P(optimum beats baseline) >= P [{MIN_CONFIDENCE:g}]",
    )
    o.add_argument(
        "--starts", type=positive_int, help="optimizer starts [2 for convex laws, up to 12 otherwise]"
    )
    o.add_argument(
        "--interval",
        type=float,  # checked with the other solve settings (mixlaw.settings.OptimizeConfig.interval)
        default=OptimizeConfig.interval,
        help="level of the intervals on the optimum when the law has a bootstrap ensemble [0.9]",
    )
    if pipeline:
        o.add_argument(
            "--bootstrap",
            type=int,  # checked by OptimizeConfig.bootstrap
            default=OptimizeConfig.bootstrap,
            help="bootstrap refits of the mixing law for intervals on the optimum (0: none) [30]",
        )


# --------------------------------------------------------------------------------------------- input files


def _problem_from_args(args: argparse.Namespace, domains: list[str], target_tokens: float | None) -> dict:
    """Keyword arguments of `optimize` that define the problem (constraints and objective)."""
    if bool(args.prior) != bool(args.prior_strength):  # one without the other would be silently ignored
        raise MixlawInputError(
            "--prior and --prior-strength go together: give both (strength > 0) or neither"
        )
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
            + (
                f"; trust radius {distance['trust_radius']:g} ({distance['trust_region']})"
                if distance.get("trust_radius") is not None
                else ""
            )
        )
    from mixlaw.reporting.answer import answer_lines

    print("\n".join(["", *answer_lines(result)]))  # the answer last: verdict, mixture and gain with intervals
    rec = result.get("recommendation")
    if rec and rec["verdict"] == "decline" and alternative_text(result):
        print(alternative_text(result))


# --------------------------------------------------------------------------------------------- commands


def cmd_optimize(args: argparse.Namespace) -> int:
    check_output(args.out)
    law = api.load_law(args.law)
    problem = _problem_from_args(args, law.domains, args.target_tokens)
    if problem["available"] is not None and args.target_tokens is None:
        raise MixlawInputError("--available needs --target-tokens (or a target step with a tokens column)")
    baseline, name = _baseline_from_args(args, law.domains)
    _check_confidence(args)
    result = api.optimize_with_intervals(
        law,
        problem,
        baseline,
        name,
        args.seed,
        interval=args.interval,
        log=lambda m: status(args, m),
        trust_region=not args.no_trust_region,
        min_confidence=args.min_confidence,
    )
    dump_json(result, args.out)
    status(args, f"wrote {args.out}")
    _print_optimum(result)
    return 0


def variable_label(lead: dict[str, Any]) -> str:
    return f"{lead['variable']}s" + (", capped" if lead.get("capped") else "")


def _window_text(window: float | None) -> str:
    return "none" if window is None else f"{window:g}"


def _parse_window(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise MixlawInputError(f"--step-window {text}: expected a ratio >= 1 or none") from None


def _check_confidence(args: argparse.Namespace) -> None:
    if not 0 < args.min_confidence <= 1:
        raise MixlawInputError(f"--min-confidence {args.min_confidence}: must be a probability in (0, 1]")


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
    if not 0 < lo < hi or not math.isfinite(hi):
        raise MixlawInputError(f"{flag} {text}: expected finite 0 < LO < HI")
    return lo, hi


def _check_target_scale(config: PipelineConfig, table) -> None:
    """A target size below every proxy size is refused (the size law would be read backwards); a target size
    or length within the proxies' range is allowed with a warning: the answer is an interpolation."""
    frame = table.frame
    sizes = frame["params"].dropna() if "params" in frame else None
    if sizes is None or sizes.empty:
        return
    if config.target_params < sizes.min():
        raise MixlawInputError(
            f"--target-params {config.target_params:g}: the target is smaller than every proxy "
            f"({sizes.min():g} to {sizes.max():g} params); the pipeline extrapolates to larger models"
        )
    lengths = frame[config.variable].dropna() if config.variable in frame else None
    if config.target_params <= sizes.max() or (lengths is not None and config.target <= lengths.max()):
        logging.getLogger("mixlaw.pipeline").warning(
            "target %g params, %s %g is within the proxies' range (up to %g params, %s %g): "
            "not an extrapolation",
            config.target_params,
            config.variable,
            config.target,
            sizes.max(),
            config.variable,
            lengths.max() if lengths is not None and not lengths.empty else float("nan"),
        )


def cmd_pipeline(args: argparse.Namespace) -> int:
    if args.model is not None or args.params is not None:
        raise MixlawInputError(
            "the pipeline uses several sizes: choose them with --fit-sizes, not --model/--params"
        )
    check_output(args.out, "folder")
    config = PipelineConfig(
        target_params=args.target_params,
        target_step=args.target_step,
        target_tokens=args.target_tokens,
        fit_steps=_parse_range(args.fit_steps),
        fit_sizes=[s.strip() for s in args.fit_sizes.split(",") if s.strip()] if args.fit_sizes else None,
        law=args.law,
        scale=args.scale_law,
        step_share=args.step_share,
        step_window=_parse_window(args.step_window),
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
    _check_confidence(args)
    for reader, value in ((read_bounds, args.bounds), (read_available, args.available)):
        if value:
            reader(value)
    table = load_table(args)
    table = table.select(
        train_domains=args.train_domains, valid_domains=args.valid_domains, metric=args.metric
    )
    _check_target_scale(config, table)
    problem = _problem_from_args(args, table.domains, config.target_tokens)
    baseline, name = _baseline_from_args(args, table.domains)
    for domain in problem["fixed"]:
        if domain not in table.domains:
            raise MixlawInputError(
                f"--fix: unknown training domain {domain!r}; known: {', '.join(table.domains)}"
            )
    weights = load_weights(args.valid_weights, table.valid_domains, args.group)
    anchor = None
    if args.anchor:
        anchor = read_runs(args.anchor, args.renormalize).select(
            train_domains=args.train_domains, valid_domains=args.valid_domains, metric=args.metric
        )
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
        anchor=anchor,
        trust_region=not args.no_trust_region,
        min_confidence=args.min_confidence,
    )
    result, optimum = solution.pipeline, solution.optimum
    status(
        args,
        f"wrote {args.out}/: predictions.csv, law.json, optimum.json, summary.md ({result.timings['total']:.1f} s)",
    )
    lead = result.checks.get("at_job_ratio", {})
    if "mean_rel" in lead:
        print(
            f"check at {lead['ratio']:.2f}x ({variable_label(lead)}; job {lead['job_ratio']:.2f}x) mean rel. error "
            f"{100 * lead['mean_rel']:.3f}% = {lead['error_at_target']:.4f} nats at the target; median gap between "
            f"candidates {lead['gap_median']:.4f}"
            + ("  WARNING: larger than the gaps" if lead["larger_than_gaps"] else "")
        )
    for name in ("step", "step_beyond", "size", "chain"):
        check = result.checks.get(name)
        if check and "mean_rel" in check:
            print(
                f"check {name:<12} mean rel. error {100 * check['mean_rel']:.3f}%  max {100 * check['max_rel']:.3f}%"
                f"  (n={check['n']})"
            )
    _print_optimum(optimum)
    gain = optimum.get("gain")
    if gain:
        print(
            f"gain over the baseline: {gain['value']:+.5f} [{gain['lo']:+.5f}, {gain['hi']:+.5f}] "
            f"({100 * gain['level']:g}%, nats at the target)"
        )
    if "anchor" in optimum:
        a = optimum["anchor"]
        print(
            f"anchor ({a['n_runs']} run(s)): correction {a['correction']['objective']:+.5f}; optimum corrected "
            f"{a['corrected']['optimum']['objective']:.5f}, baseline corrected "
            f"{a['corrected']['baseline']['objective']:.5f}"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
