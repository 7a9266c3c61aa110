"""`mixlaw run`: the end-to-end job (design, proxy sweep, pipeline, optimum, validation at the target scale)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mixlaw.cli.common import nonnegative_float, positive_float, positive_int
from mixlaw.errors import MixlawInputError
from mixlaw.outputs import check_output

EPILOG = """examples:
  mixlaw run                                   # embedded default on the demo corpus (~6 min on 2 cores)
  mixlaw run --quick                           # embedded quick config (~3 min)
  mixlaw run configs/cpu-large.yaml --out runs-large
  mixlaw run my.yaml --out results --executor ray --address auto --gpus-per-run 1
  mixlaw run my.yaml --out results --ddp 8     # validation runs with torchrun, 8 processes each

Stages: corpus -> proxy sweep (DIR/proxies) -> step/size/mixing laws and optimum -> validation of the optimum
and the baseline at the target size, >= 3 seeds each (DIR/validation) -> summary.md, validation.json, report.html.
Rerunning the same command resumes: finished runs are skipped, interrupted ones continue from their checkpoint.
A win is claimed only beyond two seed standard deviations. See docs/run.md."""

if TYPE_CHECKING:
    from mixlaw.job.measure import Validation


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="end-to-end job: proxies -> laws -> optimum -> validated at the target scale",
        description="Design proxy mixtures, train them at several sizes, extrapolate to the target scale, optimize "
        "the mixture under availability, then train the target model on the optimum and on the "
        "baseline (>= 3 seeds each) and report predicted against measured loss.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG.yaml",
        help="run config (default: the embedded mixlaw/configs/run-default.yaml)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="results folder (default: mixlaw-out/run, or mixlaw-out/run-quick with --quick)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="the embedded quick config (~3 min), or the CONFIG's `quick:` overrides",
    )
    p.add_argument(
        "--executor",
        choices=["local", "inline", "ray"],
        default="local",
        help="local = process pool on this machine [default]; inline = in this process; "
        "ray = one Ray task per run (pip install 'mixlaw[ray]')",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="local: runs at once [config `workers`, else cores]",
    )
    p.add_argument(
        "--address",
        default=None,
        help="ray: cluster address (auto, ray://host:10001) [default: start a local Ray]",
    )
    p.add_argument("--cpus-per-run", type=positive_float, default=1.0, help="ray: CPUs per run [1]")
    p.add_argument("--gpus-per-run", type=nonnegative_float, default=0.0, help="ray: GPUs per run [0]")
    p.add_argument(
        "--ddp",
        type=positive_int,
        default=None,
        metavar="N",
        help="train each validation run with torchrun over N processes (DDP), one run at a time",
    )
    p.add_argument(
        "--no-report", action="store_true", help="skip report.html (mixlaw report DIR writes it later)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    p.set_defaults(func=cmd_run)


def make_executor(args: argparse.Namespace, workers: int | None):
    """The executor chosen on the command line (None = the job's default local pool)."""
    from mixlaw.train.sweep import InlineExecutor, LocalExecutor

    if args.executor == "inline":
        return InlineExecutor()
    if args.executor == "ray":
        from mixlaw.train.ray_executor import RayExecutor, import_ray

        import_ray()
        return RayExecutor(
            address=args.address, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run
        )
    if args.address:
        raise MixlawInputError("--address is for --executor ray")
    return LocalExecutor(workers=workers or os.cpu_count() or 1)


def cmd_run(args: argparse.Namespace) -> int:
    from mixlaw.cli.common import command_line
    from mixlaw.job import load_run_config, run_job

    out = check_output(args.out or ("mixlaw-out/run-quick" if args.quick else "mixlaw-out/run"), "folder")
    cfg = load_run_config(args.config, quick=args.quick)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MixlawInputError(
            "mixlaw run needs PyTorch: pip install torch (CPU: torch==2.13.0) 'mixlaw[train]'"
        ) from None
    executor = make_executor(args, args.workers or cfg.workers)
    validation_executor = None
    if args.ddp:
        from mixlaw.train.ddp import TorchrunExecutor

        validation_executor = TorchrunExecutor(nproc=args.ddp)
    try:
        result = run_job(
            cfg,
            out,
            executor=executor,
            quiet=args.quiet,
            command=command_line(),
            report=not args.no_report,
            validation_executor=validation_executor,
        )
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        if validation_executor is not None:
            validation_executor.shutdown(wait=True, cancel_futures=True)
    _print(result, out)
    return 0


def _print(result: Validation, out: Path) -> None:
    arms, g = result.arms, result.gain
    print(
        f"target {result.target['model']} ({result.target['params']:,} params), "
        f"{result.target['steps']} steps, {arms['optimum']['measured']['n']} seeds per mixture"
    )
    print("mixture     predicted  measured (mean ± std)  rel. error")
    for arm in ("optimum", "baseline"):
        a, m = arms[arm], arms[arm]["measured"]
        print(
            f"{arm:<10} {a['predicted']:>10.4f}  {m['mean']:.4f} ± {m['std']:.4f}      {100 * a['rel_error']:+.2f}%"
        )
    print(
        f"gain: measured {g['measured']:+.4f} nats, predicted {g['predicted']:+.4f}; "
        f"pooled seed std {g['sigma_pooled']:.4f}"
    )
    eq = result.equivalent_steps["measured"]
    if eq.get("ratio") is not None:
        print(f"equivalent steps (measured): {eq['ratio']:.2f}x ({eq['method'].split(' (')[0]})")
    print(f"verdict: {result.verdict['result']}: {result.verdict['text']}")
    print(f"results in {out}/ (summary.md, validation.json, report.html)")
    from mixlaw.reporting.answer import answer_lines_of_folder

    print("\n".join(["", *answer_lines_of_folder(out)]))  # the answer last, with intervals


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
