"""`mixlaw sweep` (train proxy runs into a runs table) and `mixlaw design` (propose sweep mixtures)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from mixlaw.cli.common import nonnegative_float, number, positive_float, positive_int, random_seed
from mixlaw.cli.design import add_design_flags, design_command, parse_pairs, token_counts
from mixlaw.errors import MixlawInputError
from mixlaw.outputs import check_output

DESIGN_SUFFIXES = (".yaml", ".yml", ".csv", ".json")

SWEEP_EPILOG = """examples:
  mixlaw sweep mixlaw/configs/demo.yaml --out out/demo          # the embedded demo corpus, 2 workers
  mixlaw sweep my.yaml --out out/s1 --workers 1                # one run at a time
  mixlaw sweep my.yaml --out out/s1 --dry-run                  # build the corpus, list the runs, train nothing
  mixlaw sweep my.yaml --out out/s1 --parquet                  # also write out/s1/runs.parquet
  mixlaw sweep mixlaw/configs/continual-demo.yaml --out out/ct --init-from out/ct-base   # continual pretraining

Rerunning the same command skips finished runs and resumes interrupted ones from their last checkpoint.
The runs table is written to DIR/runs.csv (one row per run x checkpoint x validation domain) as runs finish.
Corpora and tokenizers are cached in $MIXLAW_CACHE (default ~/.cache/mixlaw)."""

DESIGN_EPILOG = """examples:
  mixlaw design mixlaw/configs/demo.yaml -n 12                       # Dirichlet around the token-count prior
  mixlaw design mixlaw/configs/demo.yaml --method grid --max-epochs 4 # the paper's halving grid under epoch caps
  mixlaw design --tokens code=1e6,docs=4e5,math=2e5 -n 8 --temperature 0.7 --out mixtures.csv
  mixlaw design --domains web,code,books --method grid --caps code=0.25,books=0.125

Output: a YAML `mixtures:` list (paste it into a sweep config), or CSV/JSON if --out ends in .csv/.json."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="train a sweep of proxy runs and write the runs table",
        description="Train the proxy runs of a sweep config (mixtures x models x steps x seeds) into DIR/runs.csv.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="sweep config (YAML); see docs/training.md")
    p.add_argument("--out", required=True, metavar="DIR", help="sweep folder (runs.csv, runs/<id>/...)")
    p.add_argument(
        "--workers", type=positive_int, default=None, help="runs at once (default: number of cores)"
    )
    p.add_argument(
        "--executor",
        choices=["local", "inline"],
        default="local",
        help="local = process pool (default); inline = in this process, one at a time",
    )
    p.add_argument("--parquet", action="store_true", help="also write DIR/runs.parquet")
    p.add_argument(
        "--dry-run", action="store_true", help="prepare the corpus and list the runs; train nothing"
    )
    p.add_argument(
        "--cache-dir", default=None, help="corpus/tokenizer cache (default $MIXLAW_CACHE or ~/.cache/mixlaw)"
    )
    p.add_argument("--rebuild-corpus", action="store_true", help="rebuild the cached corpus")
    p.add_argument(
        "--init-from",
        metavar="CHECKPOINT",
        default=None,
        help="start every run from these weights (a model.safetensors, a run folder, or a sweep folder "
        "with one saved model; train the base with `save_model: true`); overrides init_from:",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    p.set_defaults(func=cmd_sweep)

    d = subparsers.add_parser(
        "design",
        help="propose the mixtures of a sweep (halving grid or Dirichlet)",
        description="Propose sweep mixtures: the paper's halving grid from per-domain caps, or Dirichlet samples "
        "around the token-count prior with a temperature and epoch caps (RegMix/Olmix style).",
        epilog=DESIGN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("config", nargs="?", help="sweep config (its corpus gives domains and token counts)")
    d.add_argument(
        "--method",
        choices=["dirichlet", "grid", "spacefilling", "adaptive"],
        default=None,
        help="design (default: config or dirichlet); spacefilling = maximin on the bounded simplex; "
        "adaptive = next mixtures that most reduce the optimum's uncertainty (needs --runs)",
    )
    d.add_argument(
        "-n", type=positive_int, default=None, help="number of mixtures (grid: all candidates if omitted)"
    )
    d.add_argument("--seed", type=random_seed, default=None, help="random seed (default 0)")
    d.add_argument(
        "--temperature",
        type=nonnegative_float,
        default=None,
        help="prior = token shares ** temperature (default 0.5)",
    )
    d.add_argument(
        "--max-epochs", type=positive_float, default=None, help="cap each domain at this many epochs per run"
    )
    d.add_argument("--caps", default=None, help="per-domain maximum proportions, e.g. code=0.5,math=0.25")
    d.add_argument(
        "--grid", type=number(gt=0, le=0.5), default=None, help="grid step of the halving grid (default 1/16)"
    )
    d.add_argument("--tokens", default=None, help="token counts without a config, e.g. code=1e6,docs=5e5")
    d.add_argument(
        "--domains",
        type=_domains,
        default=None,
        help="domain names without a config (uniform prior), e.g. a,b,c",
    )
    d.add_argument(
        "--train-tokens",
        type=positive_float,
        default=None,
        help="tokens per run for --max-epochs without a config",
    )
    d.add_argument("--out", default=None, help="write to this file (.yaml, .csv, .json) instead of stdout")
    d.add_argument(
        "--cache-dir", default=None, help="corpus cache (default $MIXLAW_CACHE or ~/.cache/mixlaw)"
    )
    d.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    d.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    add_design_flags(d)
    d.set_defaults(func=cmd_design)


def _domains(text: str) -> str:
    """`--domains a,b,c`: at least two names, none empty or repeated (kept as the comma list)."""
    from mixlaw.train.design import check_domains

    names = [d.strip() for d in text.split(",") if d.strip()]
    try:
        check_domains(names, "--domains")
    except MixlawInputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--domains: ")) from None
    return ",".join(names)


def _kv(text: str, flag: str) -> dict[str, float]:
    out = parse_pairs(text, flag)
    if not out:
        raise MixlawInputError(f"{flag}: empty")
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    from mixlaw.train.corpus import column_name
    from mixlaw.train.sweep import (
        InlineExecutor,
        LocalExecutor,
        check_folder_free,
        load_sweep_config,
        prepare_sweep,
        repetition_report,
        run_sweep,
    )

    cfg = load_sweep_config(args.config)
    if args.init_from:
        cfg.init_from = args.init_from
    if not args.dry_run:
        check_output(args.out, "folder")
        check_folder_free(args.out)  # a busy folder is refused before the corpus is built
    if not args.quiet:
        print(f"sweep: preparing corpus {cfg.corpus.name} ...", file=sys.stderr, flush=True)
    corpus, runs = _corpus(
        cfg.corpus,
        args,
        lambda: prepare_sweep(cfg, cache_dir=args.cache_dir, rebuild=args.rebuild_corpus),
        "sweep",
    )
    if not args.quiet:
        print(corpus.summary(), file=sys.stderr)
        for line in repetition_report(runs, corpus)[:10]:
            print(f"sweep: note: repeated data: {line}", file=sys.stderr)
    if args.dry_run:
        print("run\tmodel\tsteps\tseed\t" + "\t".join(f"p_{column_name(d)}" for d in cfg.train_domains))
        for r in runs:
            print(
                f"{r.run_id}\t{r.model_label}\t{r.steps}\t{r.seed}\t"
                + "\t".join(f"{p:.4g}" for _, p in r.mixture)
            )
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MixlawInputError(
            "mixlaw sweep needs PyTorch: pip install torch (CPU: torch==2.13.0) 'mixlaw[train]'"
        ) from None
    workers = args.workers or min(len(runs), __import__("os").cpu_count() or 1)
    executor = InlineExecutor() if args.executor == "inline" else LocalExecutor(workers=workers)
    if not args.quiet:
        print(
            f"sweep: {len(runs)} runs -> {args.out} ({args.executor}, {workers if args.executor == 'local' else 1} "
            "at a time)",
            file=sys.stderr,
            flush=True,
        )
    try:
        table = run_sweep(runs, args.out, executor=executor, progress=not args.quiet, parquet=args.parquet)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    if not args.quiet:
        print(
            f"sweep: wrote {Path(args.out) / 'runs.csv'} ({len(table)} rows, {len(runs)} runs)",
            file=sys.stderr,
        )
    return 0


def cmd_design(args: argparse.Namespace) -> int:
    from mixlaw.train import design as dm

    if args.out:
        check_output(args.out, suffixes=DESIGN_SUFFIXES)
    caps = _kv(args.caps, "--caps") if args.caps else {}
    if args.method in ("spacefilling", "adaptive"):
        _write_mixtures(design_command(args, caps), args.out)
        return 0
    if args.config:
        from mixlaw.cli.design import load_design_config
        from mixlaw.train.corpus import prepare_corpus
        from mixlaw.train.sweep import design_mixtures

        cfg = load_design_config(args.config)  # a sweep or a `mixlaw run` config
        if args.tokens:
            counts = token_counts(args.tokens)
            missing = [d for d in cfg.train_domains if d not in counts]
            if missing:
                raise MixlawInputError(f"--tokens: no count for domain {missing[0]!r}")
        else:
            counts = _corpus(cfg.corpus, args, lambda: prepare_corpus(cfg.corpus, cache_dir=args.cache_dir))
            counts = counts.token_counts("train")
        for k in caps:
            if k not in cfg.train_domains:
                raise MixlawInputError(
                    f"--caps: unknown domain {k!r} (training domains: {cfg.train_domains})"
                )
        overrides = {
            "method": args.method,
            "n": args.n,
            "seed": args.seed,
            "temperature": args.temperature,
            "max_epochs": args.max_epochs,
            "grid": args.grid,
            "caps": caps or None,
        }
        mixtures = design_mixtures(cfg, counts, overrides)
    else:
        if args.tokens:
            counts = token_counts(args.tokens)
        elif args.domains:
            counts = {k.strip(): 1 for k in args.domains.split(",") if k.strip()}
        else:
            raise MixlawInputError(
                "design: give a sweep CONFIG, or --tokens name=count,... or --domains a,b,c"
            )
        for k in caps:
            if k not in counts:
                raise MixlawInputError(f"--caps: unknown domain {k!r} (domains: {list(counts)})")
        if args.max_epochs is not None:
            if not args.train_tokens:
                raise MixlawInputError("--max-epochs without a config needs --train-tokens (tokens per run)")
            ec = dm.epoch_caps(counts, int(args.train_tokens), args.max_epochs)
            caps = {k: min(caps.get(k, 1.0), v) for k, v in ec.items()}
        seed = args.seed or 0
        if (args.method or "dirichlet") == "grid":
            mixtures = dm.halving_grid(list(counts), caps, grid=args.grid or 1 / 16, n=args.n, seed=seed)
        else:
            mixtures = dm.dirichlet_design(
                counts,
                n=args.n or 8,
                seed=seed,
                temperature=0.5 if args.temperature is None else args.temperature,
                caps=caps,
            )
    _write_mixtures(mixtures, args.out)
    return 0


def _corpus(config, args: argparse.Namespace, build, label: str = "design"):
    """`build()` (which prepares the corpus of `config`), with the corpus build's stage lines on stderr and,
    when it took more than a few seconds (built, not read from the cache), the time it took."""
    from mixlaw.cli.progress import library_lines, stage_logger

    started = time.perf_counter()
    with library_lines("mixlaw.train.corpus", label, args.quiet):
        result = build()
    seconds = time.perf_counter() - started
    if seconds >= 2:
        stage_logger(label, args.quiet)(
            f"corpus {config.name} ready in {seconds:.0f} s (cached for next time)"
        )
    return result


def _write_mixtures(mixtures: list[dict[str, float]], out: str | None) -> None:
    clean = [{k: round(float(v), 8) for k, v in m.items()} for m in mixtures]
    if out is None:
        sys.stdout.write(yaml.safe_dump({"mixtures": clean}, sort_keys=False, default_flow_style=None))
        return
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        import pandas as pd

        from mixlaw.train.corpus import column_name

        pd.DataFrame([{f"p_{column_name(k)}": v for k, v in m.items()} for m in clean]).to_csv(
            path, index=False
        )
    elif suffix == ".json":
        path.write_text(json.dumps({"mixtures": clean}, indent=1) + "\n")
    elif suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump({"mixtures": clean}, sort_keys=False, default_flow_style=None))
    else:
        raise MixlawInputError(f"--out: {out}: unsupported extension (use .yaml, .csv or .json)")
    print(f"design: wrote {len(clean)} mixtures to {path}", file=sys.stderr)
