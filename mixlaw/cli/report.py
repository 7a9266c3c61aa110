"""`mixlaw report` (self-contained HTML + figure files) and `mixlaw export` (framework mixture configs)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mixlaw.cli.common import (
    add_output_flags,
    add_runs_flags,
    command_line,
    folds,
    load_table,
    prepare_from_args,
    random_seed,
    status,
)
from mixlaw.errors import MixlawInputError
from mixlaw.outputs import check_output

RAW = argparse.RawDescriptionHelpFormatter

REPORT_EXAMPLES = """examples:
  mixlaw report results/                        # a `mixlaw pipeline`/`run` output folder -> results/report.html
  mixlaw report results/ --out report.html --formats png
  mixlaw report runs.csv --law dml-log --model 70M --step 30000 \\
      --valid-weights valid_weights.csv --group pile_category --out report.html

A results folder may hold law.json, optimum.json, predictions.csv, step_law.json, size_law.json, summary.md and
runs.csv; figures whose inputs are missing are skipped and the page says so. A runs table is fitted and
cross-validated (folds grouped by mixture) with --law first. The page works offline (figures inlined, no
scripts); the figures are also written as PNG and SVG into OUT_figures/.
"""

EXPORT_EXAMPLES = """examples:
  mixlaw export opt.json --format megatron --paths web=data/web_text_document code=data/code_text_document
  mixlaw export opt.json --format olmo-core --paths 'web=s3://bucket/web/*.npy' --out mix.yaml
  mixlaw export opt.json --format hf-datasets --unit documents --avg-doc-tokens doc_tokens.csv

The law's mixture is a share of training tokens. megatron, nemo, nanotron and olmo-core weigh tokens (fixed-length
samples), so they get token shares. litgpt, mosaic and hf-datasets sample examples: token shares are exact when
examples are fixed-length token blocks; for whole documents give --unit documents --avg-doc-tokens FILE (CSV with
domain,avg_doc_tokens or JSON {domain: tokens}) and the shares are converted. What was written is said on
stderr and, for YAML/Python output, in a comment header.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (figures as PNG/SVG too)",
        epilog=REPORT_EXAMPLES,
        formatter_class=RAW,
        description="Report a results folder or a runs table: cross-validated predictions, the law through the "
        "optimum, ternary map (3 domains), step and size laws, optimum against baseline, the runs, "
        "and the commands and versions that produced it.",
    )
    add_runs_flags(p)
    source = next(a for a in p._actions if a.dest == "runs")
    source.metavar = "RESULTS_DIR|RUNS"
    source.help = "a pipeline/run output folder, or a runs table (.csv, .parquet, .jsonl) to fit and report"
    law = p.add_argument_group("law (runs table only)")
    law.add_argument(
        "--law", default="dml", help="law to fit and cross-validate (default dml; see `mixlaw laws`)"
    )
    law.add_argument("--param", action="append", metavar="KEY=VALUE", help="law hyper-parameter (repeatable)")
    law.add_argument("--target", help="fit on: all targets (default), total, or one target")
    law.add_argument("--cv", type=folds, default="loo", help="K (folds of mixtures) or loo (default)")
    law.add_argument("--seed", type=random_seed, default=0, help="random seed for restarts and folds")
    out = p.add_argument_group("output")
    out.add_argument(
        "--out",
        metavar="report.html",
        help="HTML file (default: RESULTS_DIR/report.html, or report.html for a runs table)",
    )
    out.add_argument(
        "--figures-dir", metavar="DIR", help="where the figure files go (default: OUT_figures/ beside OUT)"
    )
    out.add_argument(
        "--formats", default="png,svg", help="figure files to write: png,svg (default), png, svg or none"
    )
    out.add_argument("--title", help="page title")
    add_output_flags(p)
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser(
        "export",
        help="write the optimized mixture as a training framework's config",
        epilog=EXPORT_EXAMPLES,
        formatter_class=RAW,
        description="Convert the mixture of OPT.json (from `mixlaw optimize` or `pipeline`) to a framework's "
        "mixture format, with token/document semantics made explicit.",
    )
    from mixlaw.exporters import FORMATS

    p.add_argument(
        "optimum", metavar="OPT.json", help='optimizer output with a "mixture" of p_<domain> shares'
    )
    p.add_argument(
        "--format",
        "-f",
        required=True,
        choices=FORMATS,
        metavar="FORMAT",
        help=f"one of: {', '.join(FORMATS)}",
    )
    p.add_argument(
        "--paths",
        nargs="+",
        action="extend",
        metavar="DOMAIN=PATH",
        help="data location of each domain (dataset prefix, folder, glob, URL or hub name)",
    )
    p.add_argument(
        "--unit",
        choices=("tokens", "documents"),
        help="what the written weights count (default tokens; documents needs --avg-doc-tokens)",
    )
    p.add_argument(
        "--avg-doc-tokens",
        metavar="FILE",
        help="mean tokens per document of each domain: CSV domain,avg_doc_tokens or JSON {domain: n}",
    )
    p.add_argument(
        "--renormalize", action="store_true", help="rescale a mixture whose shares do not sum to 1"
    )
    p.add_argument(
        "--seq-len", type=int, metavar="N", help="tokens per training sequence (litgpt block size = N + 1)"
    )
    p.add_argument("--out", "-o", metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--force", action="store_true", help="export an optimum whose recommendation is `decline`")
    add_output_flags(p)
    p.set_defaults(func=cmd_export)


def _progress_bar(label: str):
    """A one-line progress callback on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 28
        filled = round(width * done / max(total, 1))
        print(
            f"\rmixlaw: {label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="\n" if done >= total else "",
            file=sys.stderr,
            flush=True,
        )

    return show


def _formats(value: str) -> tuple[str, ...]:
    if value.strip().lower() in ("", "none"):
        return ()
    formats = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise MixlawInputError(f"--formats {value}: unknown format(s) {', '.join(bad)}; use png, svg or pdf")
    return formats


def cmd_report(args: argparse.Namespace) -> int:
    from mixlaw.reporting import from_runs, load_results_dir, write_report

    started = time.perf_counter()
    formats = _formats(args.formats)
    source = Path(args.runs)
    check_output(args.out or (source / "report.html" if source.is_dir() else "report.html"))
    if args.figures_dir:
        check_output(args.figures_dir, "folder", "--figures-dir")
    if source.is_dir():
        data = load_results_dir(source)
        out = Path(args.out) if args.out else source / "report.html"
    else:
        from mixlaw.cli.core import _hyper

        hyper = _hyper(args)
        table = load_table(args)
        fit_data = prepare_from_args(args, table)
        status(
            args, f"cross-validating {args.law} on {len(fit_data.X)} rows ({fit_data.n_mixtures} mixtures)"
        )
        cv = args.cv if args.cv == "loo" else _int(args.cv)
        progress = None if args.quiet else _progress_bar("cross-validation folds")
        data = from_runs(
            table,
            fit_data,
            args.law,
            hyper,
            args.target,
            cv,
            args.seed,
            command=command_line(),
            progress=progress,
        )
        out = Path(args.out) if args.out else Path("report.html")
    status(args, "drawing figures")
    path, figures = write_report(
        data, out, args.figures_dir, formats, args.title, report_command=command_line()
    )
    shown = [f.name for f in figures if f.png is not None]
    skipped = [f"{f.name} ({f.reason})" for f in figures if f.png is None]
    status(
        args,
        f"wrote {path} with {len(shown)} figures in {time.perf_counter() - started:.1f} s: {', '.join(shown)}",
    )
    for line in skipped:
        status(args, f"not shown: {line}")
    return 0


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise MixlawInputError(f"--cv {value}: expected an integer or loo") from None


def cmd_export(args: argparse.Namespace) -> int:
    from mixlaw.exporters import (
        export_mixture,
        kept_domains,
        load_doc_tokens,
        load_mixture,
        parse_paths,
        recorded_max_epochs,
    )
    from mixlaw.files import read_json
    from mixlaw.recommendation import refuse_declined

    if args.out:
        check_output(args.out)
    mixture = load_mixture(args.optimum, args.renormalize)  # optimum.json, or Olmix's result file
    data = read_json(args.optimum, "optimum")
    refuse_declined(data, args.optimum, args.force)
    domains = list(mixture.weights)
    paths = parse_paths(args.paths, domains)
    if args.unit == "documents" and not args.avg_doc_tokens:
        raise MixlawInputError(
            "--unit documents needs --avg-doc-tokens FILE (mean tokens per document per domain)"
        )
    # lengths are needed only for the domains that are written (zero shares are left out)
    doc_tokens = load_doc_tokens(args.avg_doc_tokens, kept_domains(mixture)) if args.avg_doc_tokens else None
    text, notes = export_mixture(
        mixture,
        args.format,
        paths,
        args.unit,
        doc_tokens,
        Path(args.avg_doc_tokens).name if args.avg_doc_tokens else "--avg-doc-tokens",
        max_epochs=recorded_max_epochs(data, args.optimum),
        seq_len=args.seq_len,
    )
    if args.out:
        out = Path(args.out)
        out.write_text(text)
        status(args, f"wrote {args.format} mixture to {out}")
    else:
        sys.stdout.write(text)
    for note in notes:
        status(args, note)
    return 0
