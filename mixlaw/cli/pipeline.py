"""`mixlaw pipeline` (small runs -> target-scale law -> optimum) and `mixlaw optimize` (LAW.json -> optimum)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mixlaw.cli.common import add_output_flags, add_runs_flags, command_line, load_table, status
from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json
from mixlaw.fitted import FittedLaw
from mixlaw.laws import LAWS
from mixlaw.mixture import mixtures_array, strip_prefix
from mixlaw.optimize import optimize, parse_mixture
from mixlaw.pipeline import STEP_GRID_FACTORS, PipelineConfig, run_pipeline, write_outputs
from mixlaw.runs import load_weights, read_table
from mixlaw.scaling import SHARE_OPTIONS

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
    s.add_argument("--min-sizes", type=int, default=3, help="sizes a mixture needs to be used [3]")
    s.add_argument(
        "--scale-law",
        choices=["chain", "joint"],
        default="chain",
        help="chain: step law then size law [default]; joint: E + A/N^alpha + B/D^beta per mixture/target",
    )
    s.add_argument(
        "--step-share",
        choices=SHARE_OPTIONS,
        default="mixture",
        help="curves sharing the step exponent: none, mixture (its targets, at one size) [default], "
        "all (every curve of one size)",
    )
    s.add_argument(
        "--size-share",
        choices=SHARE_OPTIONS,
        default="all",
        help="curves sharing the size exponent: none, mixture, all [default]",
    )
    s.add_argument(
        "--joint-share", choices=SHARE_OPTIONS, default="all", help="joint law exponents sharing [all]"
    )
    s.add_argument(
        "--step-exponent",
        metavar="LO:HI",
        default="0.3:1.5",
        help="allowed range of the step (token) exponent beta [0.3:1.5]",
    )
    s.add_argument(
        "--size-exponent",
        metavar="LO:HI",
        default="0.05:1.5",
        help="allowed range of the size exponent alpha [0.05:1.5]",
    )
    s.add_argument(
        "--huber-delta", type=float, default=0.02, help="Huber delta of the scale-law fits, nats [0.02]"
    )
    m = p.add_argument_group("mixing law")
    m.add_argument(
        "--law", default="auto", help=f"auto (cross-validation) [default] or one of: {', '.join(LAWS)}"
    )
    m.add_argument("--cv", type=int, default=5, help="folds for the law choice and its reported error [5]")
    _add_optimize_flags(p, pipeline=True)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0)
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
        "--max-epochs", type=float, default=1.0, help="allowed passes over each domain's tokens [1]"
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
        default=0.9,
        help="level of the intervals on the optimum when the law has a bootstrap ensemble [0.9]",
    )
    if pipeline:
        o.add_argument(
            "--bootstrap",
            type=int,
            default=30,
            help="bootstrap refits of the mixing law for intervals on the optimum (0: none) [30]",
        )


# --------------------------------------------------------------------------------------------- input files


def read_bounds(path: str) -> dict[str, tuple[float | None, float | None]]:
    frame = read_table(path, "bounds")
    if "domain" not in frame.columns:
        raise MixlawInputError(f"{path}: missing column domain (expected domain,lower,upper)")
    if "lower" not in frame.columns and "upper" not in frame.columns:
        raise MixlawInputError(f"{path}: needs a lower and/or upper column")
    out = {}
    for i, row in frame.iterrows():
        values = []
        for column in ("lower", "upper"):
            value = row.get(column)
            if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
                values.append(None)
                continue
            try:
                values.append(float(value))
            except ValueError:
                raise MixlawInputError(
                    f"{path}: line {i + 2}: column {column}: non-numeric value {value!r}"
                ) from None
        name = strip_prefix(row["domain"])
        if name in out:
            raise MixlawInputError(f"{path}: domain {name} listed twice")
        out[name] = (values[0], values[1])
    return out


def read_available(path: str) -> dict[str, float]:
    frame = read_table(path, "available tokens")
    for column in ("domain", "tokens"):
        if column not in frame.columns:
            raise MixlawInputError(f"{path}: missing column {column} (expected domain,tokens)")
    out = {}
    for i, row in frame.iterrows():
        try:
            value = float(row["tokens"])
        except (TypeError, ValueError):
            raise MixlawInputError(
                f"{path}: line {i + 2}: column tokens: non-numeric value {row['tokens']!r}"
            ) from None
        if not np.isfinite(value) or value < 0:
            raise MixlawInputError(f"{path}: line {i + 2}: column tokens: expected a non-negative number")
        out[strip_prefix(row["domain"])] = value
    return out


def read_fixed(items: list[str] | None) -> dict[str, float]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MixlawInputError(f"--fix {item!r}: expected p_domain=value")
        name, value = (s.strip() for s in item.split("=", 1))
        try:
            out[strip_prefix(name)] = float(value)
        except ValueError:
            raise MixlawInputError(f"--fix {item}: {value!r} is not a number") from None
    return out


def read_objective(spec: str) -> str | dict[str, float]:
    if Path(spec).suffix.lower() not in (".csv", ".json", ".jsonl", ".parquet"):
        return spec
    frame = read_table(spec, "objective weights")
    name = next((c for c in ("target", "domain", "group", "valid_domain") if c in frame.columns), None)
    weight = next((c for c in ("weight", "valid_weight") if c in frame.columns), None)
    if name is None or weight is None:
        raise MixlawInputError(f"{spec}: expected columns target,weight")
    try:
        return {str(k): float(v) for k, v in zip(frame[name], frame[weight])}
    except ValueError:
        raise MixlawInputError(f"{spec}: column {weight}: non-numeric weight") from None


def read_mixture_arg(spec: str | None, domains: list[str], what: str, renormalize: bool) -> np.ndarray | None:
    """A mixture given as a CSV file with one row of p_ columns, or `name=value,...` pairs."""
    if spec is None:
        return None
    if Path(spec).exists():
        X = mixtures_array(spec, domains, spec, renormalize)
        if len(X) != 1:
            raise MixlawInputError(f"{spec}: a {what} file must have exactly one data row, got {len(X)}")
        return X[0]
    if "=" not in spec:
        raise MixlawInputError(f"--{what} {spec}: not a file and not name=value pairs")
    return parse_mixture(spec, domains, f"--{what}", renormalize)


def _constraints_from_args(
    args: argparse.Namespace, law: FittedLaw, target_tokens: float | None
) -> dict[str, Any]:
    """Keyword arguments of `optimize` that define the problem (constraints and objective)."""
    available = read_available(args.available) if args.available else None
    if available is not None and target_tokens is None:
        raise MixlawInputError("--available needs --target-tokens (or a target step with a tokens column)")
    renormalize = getattr(args, "renormalize", False)
    return {
        "bounds": read_bounds(args.bounds) if args.bounds else None,
        "available": available,
        "target_tokens": target_tokens,
        "max_epochs": args.max_epochs,
        "fixed": read_fixed(args.fix),
        "objective": read_objective(args.objective),
        "prior": read_mixture_arg(args.prior, law.domains, "prior", renormalize),
        "prior_strength": args.prior_strength,
        "max_distance": args.max_distance,
        "starts": args.starts,
    }


def _optimize_from_args(
    args: argparse.Namespace, law: FittedLaw, target_tokens: float | None, ensemble=None
) -> dict[str, Any]:
    """Optimize; with a bootstrap `ensemble` (or one stored in LAW.json) add `uncertainty` intervals."""
    constraints = _constraints_from_args(args, law, target_tokens)
    result = optimize(
        law,
        **constraints,
        baseline=read_mixture_arg(
            args.baseline, law.domains, "baseline", getattr(args, "renormalize", False)
        ),
        baseline_name=args.baseline if args.baseline and not Path(args.baseline).exists() else args.baseline,
        seed=args.seed,
    )
    if ensemble is None and law.meta.get("uncertainty"):
        from mixlaw.uncertainty import Ensemble

        ensemble = Ensemble.from_fitted(law)
    if ensemble is not None:
        from mixlaw.uncertainty import optimum_uncertainty

        status(args, f"optimum intervals from {len(ensemble.members)} bootstrap refits")
        result["uncertainty"] = optimum_uncertainty(
            ensemble,
            result["mixture"],
            result["baseline"]["mixture"],
            args.interval,
            seed=args.seed,
            **{k: v for k, v in constraints.items() if k not in ("max_distance", "starts")},
        )
    else:
        result["uncertainty"] = None
        result["uncertainty_reason"] = (
            "no bootstrap ensemble: fit with --bootstrap N (or pipeline --bootstrap N)"
        )
    return result


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


# --------------------------------------------------------------------------------------------- commands


def cmd_optimize(args: argparse.Namespace) -> int:
    law = FittedLaw.load(args.law)
    result = _optimize_from_args(args, law, args.target_tokens)
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
    if args.law != "auto" and args.law not in LAWS:
        raise MixlawInputError(f"unknown law {args.law!r}; available: auto, {', '.join(LAWS)}")
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
        step_grid=STEP_GRID_FACTORS,
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
    for what in ("baseline", "prior"):  # fail before the fits
        read_mixture_arg(getattr(args, what), table.domains, what, args.renormalize)
    for name in read_fixed(args.fix):
        if name not in table.domains:
            raise MixlawInputError(
                f"--fix: unknown training domain {name!r}; known: {', '.join(table.domains)}"
            )
    weights = load_weights(args.valid_weights, table.valid_domains, args.group)
    result = run_pipeline(table, weights, config, log=lambda m: status(args, m))

    target_tokens = config.target_tokens
    if target_tokens is None and "tokens" in table.frame.columns and "step" in table.frame.columns:
        ratio = (table.frame["tokens"] / table.frame["step"].where(table.frame["step"] > 0)).dropna()
        if len(ratio) and np.allclose(ratio, ratio.iloc[0], rtol=1e-6):
            target_tokens = float(ratio.iloc[0]) * config.target
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.law.meta["command"] = command_line()
    ensemble = None
    if args.bootstrap:
        from mixlaw.uncertainty import attach, bootstrap_law

        status(args, f"bootstrapping the mixing law ({args.bootstrap} refits)")
        ensemble = bootstrap_law(
            result.data, result.law.law.name, fitted=result.law, n_bootstrap=args.bootstrap, seed=args.seed
        )
        attach(result.law, ensemble)
    optimum = _optimize_from_args(args, result.law, target_tokens, ensemble)
    write_outputs(result, optimum, out, command_line())
    status(
        args,
        f"wrote {out}/: predictions.csv, law.json, optimum.json, summary.md ({result.timings['total']:.1f} s)",
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
