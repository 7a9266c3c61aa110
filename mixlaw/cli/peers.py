"""`mixlaw compare` (cross-validate laws on the same folds, ranked table) and `mixlaw import` (peers' files)."""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable

from mixlaw.cli.common import (
    add_output_flags,
    add_runs_flags,
    folds,
    nonnegative_float,
    positive_float,
    prepare_from_args,
    random_seed,
    status,
)
from mixlaw.cli.progress import progress_callback
from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json, to_jsonable
from mixlaw.outputs import TABLE_SUFFIXES, check_output
from mixlaw.runs import write_runs
from mixlaw.settings import law_hyper

RAW = argparse.RawDescriptionHelpFormatter

COMPARE_EXAMPLES = """examples:
  mixlaw compare 5mix.csv --model 70M --step 30000 --valid-weights valid_weights.csv --group pile_category
  mixlaw compare runs.parquet --model 1M --step 1000 --cv 10 --laws dml,regmix-lgbm,gp --json
  mixlaw compare rpj.csv --model 410M --step 30000 --domain-map map.csv --no-auto
"""

IMPORT_EXAMPLES = """examples:
  mixlaw import --from regmix train_mixtures.csv train_losses.csv --model 1M --step 1000 --renormalize --out runs.parquet
  mixlaw import --from olmix ratios.csv metrics.csv --out runs.parquet
  mixlaw import --from mixinglaws data/5Mix/70M.txt data/5Mix/160M.txt \\
      --domains academic,prose,dialogue,symbolic,internet --out 5mix.parquet
  mixlaw import --from mixinglaws data/3Mix/410M.txt --domains github,books3,pile_cc --model 410M --out 3mix.csv
  mixlaw import --from wandb history.csv --mixture-prefix mix/ --loss-prefix eval/ --loss-suffix /loss \\
      --step-col _step --model-col model --out runs.parquet
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="cross-validate every applicable law on the same folds and rank them",
        epilog=COMPARE_EXAMPLES,
        formatter_class=RAW,
        description="Cross-validate laws on the same mixture folds and print a ranked table (MAE and Spearman of the "
        "total, or of the single target; fit time per fold). Laws that do not apply are listed with the "
        "reason. The `auto` row is scored by nested cross-validation (selection redone in every fold).",
    )
    add_runs_flags(p)
    p.add_argument("--cv", type=folds, default="5", help="K (folds of mixtures, default 5) or loo")
    p.add_argument("--laws", help="comma list of laws (default: every law `auto` considers, plus olmix)")
    p.add_argument("--target", help="score: all targets (default), total, or one target")
    p.add_argument(
        "--domain-map", metavar="FILE", help="target -> training domain map for bimix (CSV or JSON)"
    )
    p.add_argument("--no-auto", action="store_true", help="skip the nested-CV row of --law auto")
    p.add_argument(
        "--inner-cv",
        default="auto",
        help="folds of the selection inside auto: K, loo or auto (default: loo up to 40 mixtures, else 5)",
    )
    p.add_argument("--seed", type=random_seed, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--out", metavar="TABLE.json", help="also write the table as JSON")
    add_output_flags(p)
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser(
        "import",
        help="convert RegMix / Olmix / Data Mixing Laws / W&B files into a runs table",
        epilog=IMPORT_EXAMPLES,
        formatter_class=RAW,
        description="Read peers' result files into mixlaw's long runs table (CSV, Parquet or JSONL by --out extension).",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--from",
        dest="fmt",
        required=True,
        choices=["regmix", "olmix", "mixinglaws", "wandb"],
        help="regmix: MIXTURES.csv LOSSES.csv; olmix: ratios.csv metrics.csv; mixinglaws: log files; "
        "wandb: EXPORT.csv [CONFIG.csv] (a history table plus its runs' config table)",
    )
    p.add_argument("--out", required=True, metavar="RUNS.parquet")
    p.add_argument(
        "--domains",
        type=lambda v: [d.strip() for d in v.split(",") if d.strip()],
        help="mixinglaws: training domain names in checkpoint-name order (required)",
    )
    p.add_argument("--model", help="model label for every row (mixinglaws: overrides the name's size prefix)")
    p.add_argument("--step", type=nonnegative_float, help="step for every row (summary files without steps)")
    p.add_argument("--tokens-per-step", type=positive_float, help="add tokens = step x this")
    p.add_argument("--mixture-prefix", help="wandb: prefix of the mixture columns (then the domain name)")
    p.add_argument("--loss-prefix", help="wandb: prefix of the loss columns (then the validation domain)")
    p.add_argument("--loss-suffix", default="", help="wandb: suffix of the loss columns after the domain")
    p.add_argument("--run-col", default="Name", help="wandb: run name column (default Name)")
    p.add_argument("--model-col", help="wandb: column with the model label")
    p.add_argument("--step-col", help="wandb: step column of a history export (e.g. _step)")
    p.add_argument("--renormalize", action="store_true", help="rescale proportions that do not sum to 1")
    add_output_flags(p)
    p.set_defaults(func=cmd_import)


def _cv(value: str, flag: str) -> int | str:
    if value in ("loo", "auto"):
        return value
    try:
        return int(value)
    except ValueError:
        raise MixlawInputError(f"{flag} {value}: expected an integer or loo") from None


def compare_laws(
    data,
    laws: list[str] | None = None,
    cv: int | str = 5,
    seed: int = 0,
    target: str | None = None,
    domain_map: str | None = None,
    auto: bool = True,
    inner_cv: int | str = "auto",
    progress: Callable[[str], Callable[[int, int], None] | None] | None = None,
) -> list[dict]:
    """Ranked rows {law, mae, mare, spearman, ..., fit_seconds} on the same folds; non-applicable laws last
    with `error`; the `auto` row (nested CV) is ranked among them. `progress(label)` makes the (done, total)
    callback of each of the two phases (the laws, then auto's outer folds)."""
    from mixlaw.selection import auto_candidates as every_auto_candidate
    from mixlaw.selection import cross_validate_law, select_law

    # Explicit --laws: auto chooses among them (olmix excepted); default: every law, auto its own defaults.
    auto_candidates = [c for c in laws if c != "olmix"] or None if laws else None
    laws = laws or [*every_auto_candidate(), "olmix"]
    n_folds = cv if cv == "loo" else min(int(cv), data.n_mixtures)
    phase = progress or (lambda label: None)
    _, table = (
        select_law(data, laws, n_folds, seed, target, domain_map, progress=phase("compare: laws"))
        if laws
        else (None, [])
    )
    if auto:
        started = time.perf_counter()
        try:
            result = cross_validate_law(
                data,
                "auto",
                law_hyper("auto", {"candidates": auto_candidates, "cv": inner_cv}, seed)
                | {"domain_map": domain_map},
                target,
                n_folds,
                seed,
                phase("compare: auto (nested), outer folds"),
            )
            key = "total" if "total" in result["metrics"] else next(iter(result["metrics"]))
            table.append(
                {
                    "law": "auto",
                    "scored_on": key,
                    **result["metrics"][key],
                    "fit_seconds": (time.perf_counter() - started) / len(_folds(data, n_folds, seed)),
                    "nested": True,
                    "choices": result.get("auto_choices", []),
                }
            )
        except MixlawInputError as exc:
            table.append({"law": "auto", "error": str(exc)})
    scored = sorted((r for r in table if "mae" in r), key=lambda r: r["mae"])
    return scored + [r for r in table if "mae" not in r]


def _folds(data, cv, seed):
    from mixlaw.crossval import mixture_folds

    return mixture_folds(data.mixture_id, cv, seed)


DIVERGED_MAE = 1.0  # a held-out MAE above 1 (nat) means the law's extrapolation blew up, not a close miss


def diverged(row: dict) -> bool:
    return not math.isfinite(row["mae"]) or row["mae"] > DIVERGED_MAE


def format_table(rows: list[dict]) -> str:
    lines = [f"{'rank':>4}  {'law':<14} {'mae':>9} {'rel.err':>8} {'spearman':>9} {'r2':>8} {'fit s':>8}"]
    for i, row in enumerate(r for r in rows if "mae" in r):
        sp = row["spearman"]
        if diverged(row):
            lines.append(
                f"{i + 1:>4}  {row['law']:<14} {row['mae']:>9.2e} diverged on held-out mixtures "
                f"(unregularized exponents extrapolate wildly); fit {row['fit_seconds']:.3f} s"
            )
            continue
        lines.append(
            f"{i + 1:>4}  {row['law']:<14} {row['mae']:>9.5f} {row['mare']:>8.4%} "
            f"{'nan' if sp is None or math.isnan(sp) else f'{sp:.4f}':>9} {row['r2']:>8.4f} "
            f"{row['fit_seconds']:>8.3f}"
        )
    for row in rows:
        if "mae" not in row:
            lines.append(f"{'-':>4}  {row['law']:<14} not applicable: {row['error']}")
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    from mixlaw.laws import LAWS

    laws = [v.strip() for v in args.laws.split(",") if v.strip()] if args.laws else None
    unknown = [v for v in laws or [] if v not in LAWS and v != "auto"]
    if unknown:
        raise MixlawInputError(f"--laws: unknown law(s) {', '.join(unknown)}; available: {', '.join(LAWS)}")
    auto = not args.no_auto and (laws is None or "auto" in laws or len(laws) > 1)
    laws = [v for v in laws if v != "auto"] if laws else None
    if args.out:
        check_output(args.out)
    cv, inner = _cv(args.cv, "--cv"), _cv(args.inner_cv, "--inner-cv")
    if cv == "auto":
        raise MixlawInputError("--cv auto: give K or loo")
    data = prepare_from_args(args)
    status(args, f"comparing laws on {data.n_mixtures} mixtures, {len(data.targets)} targets, cv {cv}")
    rows = compare_laws(
        data,
        laws,
        cv,
        args.seed,
        args.target,
        args.domain_map,
        auto,
        inner,
        progress=lambda label: progress_callback(label, args.quiet),
    )
    result = {
        "cv": cv,
        "n_mixtures": data.n_mixtures,
        "n_rows": int(len(data.X)),
        "targets": data.targets,
        "selection": data.selection,
        "ranking": rows,
    }
    if args.out:
        dump_json(result, args.out)
    if args.json:
        print(json.dumps(to_jsonable(result)))
    else:
        print(
            f"cv {cv}  mixtures {data.n_mixtures}  rows {len(data.X)}  scored on {rows[0].get('scored_on', '?')}"
        )
        print(format_table(rows))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from mixlaw.importers import import_any

    check_output(
        args.out, suffixes=TABLE_SUFFIXES
    )  # before any work: CSV only to .csv, Parquet to .parquet ...
    frame = import_any(
        args.fmt,
        args.files,
        domains=args.domains,
        model=args.model,
        step=args.step,
        tokens_per_step=args.tokens_per_step,
        mixture_prefix=args.mixture_prefix,
        loss_prefix=args.loss_prefix,
        loss_suffix=args.loss_suffix,
        run_col=args.run_col,
        model_col=args.model_col,
        step_col=args.step_col,
        renormalize=args.renormalize,
    )
    write_runs(frame, args.out)
    n_domains = sum(c.startswith("p_") for c in frame.columns)
    status(
        args,
        f"wrote {args.out}: {len(frame)} rows, {frame['run'].nunique()} runs, {n_domains} training domains, "
        f"{frame['valid_domain'].nunique()} validation domains",
    )
    return 0
