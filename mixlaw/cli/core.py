"""`mixlaw fit`, `predict`, `evaluate`, `laws` and `demo`."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from mixlaw.cli.common import (
    add_output_flags,
    add_runs_flags,
    api,
    command_line,
    folds,
    load_table,
    nonnegative_int,
    positive_int,
    prepare_from_args,
    random_seed,
    share,
    status,
)
from mixlaw.cli.progress import progress_callback
from mixlaw.errors import MixlawInputError
from mixlaw.files import to_jsonable
from mixlaw.fitted import FittedLaw, read_mixtures
from mixlaw.laws import LAWS, get_law, parse_hyper
from mixlaw.outputs import TABLE_SUFFIXES, check_output
from mixlaw.runs import write_runs
from mixlaw.settings import law_hyper

RAW = argparse.RawDescriptionHelpFormatter

FIT_EXAMPLES = """examples:
  mixlaw fit 5mix.csv --law dml --model 70M --step 30000 \\
      --valid-weights valid_weights.csv --group pile_category --out law.json
  mixlaw fit 2mix.csv --law dml2 --model 70M --step 10000 --valid-domains Github \\
      --param c_init=correlation --out github.json
  mixlaw fit runs.parquet --law dml-implicit --param K=3 --target total --out law.json
  mixlaw fit 5mix.csv --law dml-log --model 70M --step 30000 --bootstrap 50 --out law.json   # + intervals
"""

PREDICT_EXAMPLES = """examples:
  mixlaw predict law.json mixtures.csv --out predictions.csv
  mixlaw predict law.json candidates.parquet            # CSV on stdout
  mixlaw predict law.json mixtures.csv --interval 0.9   # + pred_<t>_lo/_hi (needs fit --bootstrap)
  mixlaw predict law.json mixtures.csv --interval 0.9 --runs 5mix.csv --bootstrap 50   # bootstrap now
"""

EVALUATE_EXAMPLES = """examples:
  mixlaw evaluate 5mix.csv --law dml-log --model 70M --step 30000 \\
      --valid-weights valid_weights.csv --group pile_category --cv loo
  mixlaw evaluate 5mix.csv --law dml-log --model 70M --step 30000 --holdout-runs 0,4,8,12,21,22 --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit",
        help="fit a mixing law on a runs table",
        epilog=FIT_EXAMPLES,
        formatter_class=RAW,
        description="Fit a mixing law at one model size and checkpoint and write LAW.json.",
    )
    add_runs_flags(p)
    _add_law_flags(p)
    p.add_argument("--out", required=True, metavar="LAW.json", help="where to write the fitted law")
    p.add_argument(
        "--bootstrap",
        type=nonnegative_int,
        metavar="N",
        help="also store N bootstrap refits (by mixture) and the noise level, for prediction intervals",
    )
    add_output_flags(p)
    p.set_defaults(func=cmd_fit)

    p = subparsers.add_parser(
        "predict",
        help="predict losses of mixtures with a fitted law",
        epilog=PREDICT_EXAMPLES,
        formatter_class=RAW,
        description="Add pred_<target> and pred_total columns to a file of p_<domain> mixtures.",
    )
    p.add_argument("law", metavar="LAW.json")
    p.add_argument("mixtures", metavar="MIXTURES", help="CSV/Parquet/JSONL with p_<domain> columns")
    p.add_argument("--renormalize", action="store_true", help="rescale proportions that do not sum to 1")
    p.add_argument("--out", metavar="PRED.csv", help="output file (default: CSV on stdout)")
    p.add_argument(
        "--interval",
        type=share,
        metavar="LEVEL",
        help="add pred_<target>_lo/_hi prediction intervals at this level (e.g. 0.9)",
    )
    p.add_argument(
        "--calibrate",
        choices=["both", "widen", "none"],
        default="both",
        help="out-of-bag calibration of the interval scale (default both: widen or narrow)",
    )
    p.add_argument(
        "--runs", metavar="RUNS", help="runs table to bootstrap from when LAW.json has no ensemble"
    )
    p.add_argument(
        "--bootstrap", type=positive_int, default=50, metavar="N", help="refits with --runs (default 50)"
    )
    add_output_flags(p)
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser(
        "evaluate",
        help="cross-validate a law (folds grouped by mixture)",
        epilog=EVALUATE_EXAMPLES,
        formatter_class=RAW,
        description="Held-out error of a law: K-fold or leave-one-mixture-out CV, or named runs.",
    )
    add_runs_flags(p)
    _add_law_flags(p)
    p.add_argument("--cv", type=folds, default="loo", help="K (folds of mixtures) or loo (default)")
    p.add_argument("--holdout-runs", help="comma list of runs: fit on the rest, score these instead of CV")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_output_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "laws",
        help="list the available laws",
        description="One line per law: name<TAB>description.",
        formatter_class=RAW,
        epilog="examples:\n  mixlaw laws\n  mixlaw laws --json\n",
    )
    p.add_argument("--json", action="store_true")
    add_output_flags(p)
    p.set_defaults(func=cmd_laws)

    p = subparsers.add_parser(
        "demo",
        help="fit, evaluate and optimize on synthetic runs the project generates (no data needed)",
        formatter_class=RAW,
        description="Generate proxy runs from a known ground-truth law with noise, fit and cross-validate laws, "
        "optimize the mixture and compare with the truth.",
        epilog="example:\n  mixlaw demo --out demo-out\n",
    )
    p.add_argument("--out", default="mixlaw-demo", help="output folder (default mixlaw-demo)")
    p.add_argument("--seed", type=random_seed, default=0)
    add_output_flags(p)
    p.set_defaults(func=cmd_demo)


def _add_law_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--law",
        required=True,
        help=f"law name: {', '.join(LAWS)}; or auto (best by cross-validation on the fitting data)",
    )
    p.add_argument(
        "--candidates",
        help="auto: comma list of laws to choose from (default: mixlaw.selection.default_candidates)",
    )
    p.add_argument(
        "--auto-cv",
        default="auto",
        help="auto: folds of the selection: K, loo, or auto (default: loo up to 40 mixtures, else 5)",
    )
    p.add_argument(
        "--domain-map", metavar="FILE", help="target -> training domain map for bimix (CSV or JSON)"
    )
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="law hyper-parameter (repeatable)")
    p.add_argument(
        "--target", help="fit on: all targets (default, explicit aggregation), total, or one target"
    )
    p.add_argument("--seed", type=random_seed, default=0, help="random seed for restarts and folds")


def _hyper(args: argparse.Namespace) -> dict:
    if args.law == "auto":
        if args.param:
            raise MixlawInputError("--param does not apply to --law auto (each candidate uses its defaults)")
        candidates = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else None
        for name in candidates or []:
            get_law(name)
        auto = {
            "candidates": candidates,
            "cv": args.auto_cv if args.auto_cv in ("loo", "auto") else _int(args.auto_cv, "--auto-cv"),
        }
        return law_hyper("auto", auto, args.seed) | {"domain_map": args.domain_map}
    law_class = get_law(args.law)
    hyper = parse_hyper(law_class, args.param)
    if "domain_map" in law_class.defaults and args.domain_map and "domain_map" not in hyper:
        hyper["domain_map"] = args.domain_map
    return law_hyper(args.law, hyper, args.seed)


def cmd_fit(args: argparse.Namespace) -> int:
    check_output(args.out)
    hyper = _hyper(args)
    table = load_table(args)
    data = prepare_from_args(args, table)
    status(
        args,
        f"fitting {args.law} on {len(data.X)} rows ({data.n_mixtures} mixtures, {len(data.targets)} targets)",
    )
    fitted = api.fit(data, args.law, target=args.target, hyper=hyper, seed=args.seed, command=command_line())
    if args.bootstrap:
        from mixlaw.uncertainty import attach, bootstrap_law

        status(args, f"bootstrapping {args.bootstrap} refits over mixtures")
        ensemble = bootstrap_law(
            data,
            fitted.law.name,
            fitted.law.hyper,
            args.target,
            n_bootstrap=args.bootstrap,
            seed=args.seed,
            table=table,
            fitted=fitted,
        )
        attach(fitted, ensemble)
        status(
            args,
            f"noise from {ensemble.info['noise']['source']}; {ensemble.info['n_members']} refits "
            f"({ensemble.info['scheme']})",
        )
    fitted.save(args.out)
    if "auto" in fitted.meta:
        status(
            args,
            f"auto chose {fitted.meta['auto']['chosen']} (cross-validation on the fitting data): "
            + ", ".join(f"{r['law']}={r['mae']:.4g}" for r in fitted.meta["auto"]["table"] if "mae" in r),
        )
    summary = fitted.law.summary_
    status(
        args,
        f"wrote {args.out}: training RMSE per target "
        + ", ".join(f"{t}={v:.4g}" for t, v in zip(fitted.targets, summary["rmse"])),
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    if args.out:
        check_output(args.out, suffixes=TABLE_SUFFIXES)
    fitted = api.load_law(args.law)
    mixtures = read_mixtures(args.mixtures, fitted.domains, args.renormalize)
    out = fitted.predict_frame(mixtures, args.mixtures, args.renormalize)
    if args.interval is not None:
        out = _add_intervals(args, fitted, out)
    if args.out:
        write_runs(out, args.out)
        status(args, f"wrote {len(out)} predictions to {args.out}")
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def _add_intervals(args: argparse.Namespace, fitted: FittedLaw, out):
    from mixlaw.runs import read_runs
    from mixlaw.uncertainty import Ensemble, bootstrap_law, data_for_law

    if not 0 < args.interval < 1:
        raise MixlawInputError(f"--interval {args.interval}: must be a level in (0, 1), e.g. 0.9")
    if "uncertainty" in fitted.meta:
        ensemble = Ensemble.from_fitted(fitted)
    elif args.runs:
        table = read_runs(args.runs, renormalize=args.renormalize)
        data = data_for_law(fitted, table)
        status(
            args, f"bootstrapping {args.bootstrap} refits of {fitted.law.name} on {data.n_mixtures} mixtures"
        )
        ensemble = bootstrap_law(
            data,
            fitted.law.name,
            fitted.law.hyper,
            fitted.meta.get("fit_target"),
            n_bootstrap=args.bootstrap,
            seed=int(fitted.law.hyper.get("seed") or 0),
            table=table,
            fitted=fitted,
        )
    else:
        raise MixlawInputError(
            f"{args.law}: no bootstrap ensemble in this law file; refit with "
            "`mixlaw fit ... --bootstrap 50`, or pass --runs RUNS to bootstrap now"
        )
    X = out[fitted.domain_columns].to_numpy(dtype=float)
    scale = fitted.meta.get("scale_uncertainty")
    if scale:
        status(
            args,
            f"the interval includes the scale-extrapolation error ({scale['steps_ratio']:.2g}x steps, "
            f"{scale['size_ratio']:.2g}x size: +-{100 * scale['common_sd_rel']:.2g}% common, "
            f"+-{100 * scale['mixture_sd_rel']:.2g}% per mixture, 1 sd)",
        )
    for name, v in ensemble.interval(X, args.interval, args.calibrate, scale).items():
        out[f"pred_{name}_lo"] = v["lo"]
        out[f"pred_{name}_hi"] = v["hi"]
    return out


def cmd_evaluate(args: argparse.Namespace) -> int:
    hyper = _hyper(args)
    data = prepare_from_args(args)
    holdout_runs = [r.strip() for r in (args.holdout_runs or "").split(",") if r.strip()]
    cv = "loo" if holdout_runs or args.cv == "loo" else _int(args.cv, "--cv")
    progress = progress_callback("evaluate: cross-validation folds", args.quiet)
    result = api.evaluate(
        data,
        args.law,
        cv=cv,
        holdout_runs=holdout_runs,
        target=args.target,
        hyper=hyper,
        seed=args.seed,
        progress=progress,
    )
    result.pop("predictions")
    if args.json:
        print(
            json.dumps(
                to_jsonable(
                    {k: result[k] for k in ("law", "cv", "n_mixtures", "metrics")}
                    | {k: v for k, v in result.items() if k not in ("law", "cv", "n_mixtures", "metrics")}
                )
            )
        )
        return 0
    if "auto_choices" in result:
        counts = {c: result["auto_choices"].count(c) for c in dict.fromkeys(result["auto_choices"])}
        print(
            "auto: nested cross-validation (selection redone inside every outer fold); chosen per fold: "
            + ", ".join(f"{c} x{n}" for c, n in counts.items())
        )
    print(
        f"law {result['law']}  cv {result['cv']}  mixtures {result['n_mixtures']}  rows {result['n_rows']}  "
        f"fit {result['fit_seconds']:.2f} s/fold"
    )
    print(f"{'target':<20} {'mae':>9} {'mare':>9} {'rmse':>9} {'max':>9} {'spearman':>9} {'r2':>8}")
    for name, m in result["metrics"].items():
        print(
            f"{name:<20} {m['mae']:>9.5f} {m['mare']:>9.5f} {m['rmse']:>9.5f} {m['max']:>9.5f} "
            f"{m['spearman']:>9.4f} {m['r2']:>8.4f}"
        )
    return 0


def _int(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise MixlawInputError(f"{flag} {value}: expected an integer or loo") from None


def cmd_laws(args: argparse.Namespace) -> int:
    if args.json:
        print(
            json.dumps(
                [{"name": n, "description": c.description, "defaults": c.defaults} for n, c in LAWS.items()]
            )
        )
    else:
        for name, law_class in LAWS.items():
            print(f"{name}\t{law_class.description}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mixlaw.demo import run_demo

    check_output(args.out, "folder")
    result = run_demo(args.out, seed=args.seed, log=lambda m: status(args, m))
    print(result["text"])
    return 0 if np.isfinite(result["regret"]) else 1
