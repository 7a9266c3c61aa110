"""`mixlaw design --method spacefilling|adaptive`: the flags and the command (the designs are in
`mixlaw.adaptive`)."""

from __future__ import annotations

import argparse
import logging
import math

from mixlaw.adaptive import Shares, adaptive_design, spacefilling_design
from mixlaw.cli.common import api, nonnegative_float, nonnegative_int, positive_int
from mixlaw.errors import MixlawInputError
from mixlaw.files import read_yaml
from mixlaw.train import design as dm
from mixlaw.train.corpus import prepare_corpus
from mixlaw.train.sweep import load_sweep_config

log = logging.getLogger("mixlaw.adaptive")


def add_design_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of `mixlaw design --method spacefilling|adaptive` (added to the design parser)."""
    g = parser.add_argument_group("spacefilling / adaptive")
    g.add_argument("--lower", default=None, help="per-domain minimum proportions, e.g. web=0.2")
    g.add_argument(
        "--decimals", type=nonnegative_int, default=4, help="round proposals to 10^-decimals (default 4)"
    )
    g.add_argument("--runs", default=None, help="adaptive: the runs so far (runs table)")
    g.add_argument("--law", default="dml-log", help="adaptive: law to bootstrap (default dml-log)")
    g.add_argument("--model", default=None, help="adaptive: model label of the runs to use")
    g.add_argument(
        "--step", type=nonnegative_float, default=None, help="adaptive: checkpoint step of the runs to use"
    )
    g.add_argument(
        "--valid-weights", default=None, help="adaptive: validation weights file (default uniform)"
    )
    g.add_argument("--group", default=None, help="adaptive: grouping column of the weights file")
    g.add_argument(
        "--bootstrap", type=positive_int, default=32, help="adaptive: bootstrap refits (default 32)"
    )
    g.add_argument(
        "--objective",
        default="both",
        choices=["both", "optimum", "prediction"],
        help="adaptive: reduce the optimum's uncertainty, the prediction's, or both (default)",
    )


def load_design_config(path: str):
    """The sweep config `mixlaw design CONFIG` designs for: a sweep config, or a `mixlaw run` config (a mapping
    with `proxies:`), whose proxy sweep is used."""
    raw = read_yaml(path, "config")
    if isinstance(raw, dict) and "proxies" in raw:
        from mixlaw.job.config import load_run_config

        log.info("%s: a `mixlaw run` config; designing its proxy sweep", path)
        return load_run_config(path).sweep
    return load_sweep_config(path)


def parse_pairs(text: str | None, flag: str) -> dict[str, float]:
    """`a=0.5,b=2` -> {'a': 0.5, 'b': 2.0}; one-line errors naming the flag."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise MixlawInputError(f"{flag}: {part!r} is not name=value")
        k, v = part.split("=", 1)
        k = k.strip()
        if not k:
            raise MixlawInputError(f"{flag}: {part!r} has no name before '='")
        if k in out:
            raise MixlawInputError(f"{flag}: {k!r} is given twice")
        try:
            out[k] = float(v)
        except ValueError:
            raise MixlawInputError(f"{flag}: {v!r} for {k!r} is not a number") from None
        if not math.isfinite(out[k]):
            raise MixlawInputError(f"{flag}: {v.strip()!r} for {k!r} must be a finite number")
    return out


def token_counts(text: str) -> dict[str, int]:
    """`--tokens code=1e6,docs=5e5` -> {domain: tokens}; counts finite and >= 0, at least one domain."""
    counts = parse_pairs(text, "--tokens")
    if not counts:
        raise MixlawInputError("--tokens: empty")
    dm.check_tokens(counts, "--tokens")
    return {k: int(v) for k, v in counts.items()}


def design_command(args: argparse.Namespace, caps: dict[str, float]) -> list[Shares]:
    """`mixlaw design --method spacefilling|adaptive`: mixtures from the parsed arguments."""
    seed = args.seed or 0
    lower = parse_pairs(getattr(args, "lower", None), "--lower")
    if args.method == "adaptive":
        if not getattr(args, "runs", None):
            raise MixlawInputError("design --method adaptive needs --runs RUNS (the runs so far) and --law")
        table = api.read_runs(args.runs)
        data = api.prepare_data(
            table, model=args.model, step=args.step, valid_weights=args.valid_weights, group=args.group
        )
        mixtures, info = adaptive_design(
            data,
            args.law,
            args.n or 4,
            seed=seed,
            lower=lower,
            caps=caps,
            n_bootstrap=args.bootstrap,
            decimals=args.decimals,
            objective=args.objective,
            table=table,
        )
        log.info("adaptive design: %s", {k: v for k, v in info.items() if k != "member_optima"})
        return mixtures
    if args.config:
        cfg = load_design_config(args.config)
        domains = list(cfg.train_domains)
        if args.max_epochs is not None:
            counts = prepare_corpus(cfg.corpus, cache_dir=args.cache_dir).token_counts("train")
            tokens = args.train_tokens or cfg.settings.__dict__.get("train_tokens")
            if not tokens:
                raise MixlawInputError("--max-epochs with spacefilling needs --train-tokens (tokens per run)")
            caps = {
                k: min(caps.get(k, 1.0), v)
                for k, v in dm.epoch_caps(counts, int(tokens), args.max_epochs).items()
                if k in domains
            }
    elif args.tokens or args.domains:
        counts = (
            token_counts(args.tokens)
            if args.tokens
            else {k.strip(): 1 for k in args.domains.split(",") if k.strip()}
        )
        domains = list(counts)
        if args.max_epochs is not None:
            if not args.train_tokens:
                raise MixlawInputError("--max-epochs without a config needs --train-tokens (tokens per run)")
            caps = {
                k: min(caps.get(k, 1.0), v)
                for k, v in dm.epoch_caps(counts, int(args.train_tokens), args.max_epochs).items()
            }
    else:
        raise MixlawInputError("design: give a sweep CONFIG, or --tokens name=count,... or --domains a,b,c")
    return spacefilling_design(
        domains, args.n or 8, seed=seed, lower=lower, caps=caps, decimals=args.decimals
    )
