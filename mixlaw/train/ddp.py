"""One run trained with PyTorch DDP across processes (torchrun): for a single large validation run.

    torchrun --standalone --nproc_per_node=8 -m mixlaw.train.ddp DIR/validation/runs/<run_id>
    python -m mixlaw.train.ddp RUN_DIR            # world size 1 (no torchrun needed)

RUN_DIR must hold the run's `spec.json` (every sweep and `mixlaw run` writes one per run before training).
The global batch of the spec (`batch_size` sequences) is split evenly across the ranks: each rank takes
its share of the rows of the same deterministic mixture batch, and DDP averages the gradients, so the update is
the single-process update up to floating-point reduction order. Validation windows are split across ranks and
the summed losses all-reduced. Rank 0 writes the checkpoint, `progress.json` and finally `result.csv` in exactly
the format of `mixlaw.train.trainer.train_run`, so sweeps and `mixlaw run` see the run as finished; a killed
job resumes from the checkpoint. Backend: nccl on GPUs, gloo on CPU (`--backend` overrides). The training loop
is `train_run`'s own (it runs DDP under an initialized process group); this module sets the group up.

`TorchrunExecutor(nproc)` plugs this into the sweep executor interface: each submitted run becomes one torchrun
job (one at a time), e.g. `mixlaw run CONFIG --ddp 8`.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.train.spec import RunSpec
from mixlaw.train.trainer import RESULT, ddp_device, train_run


def _dist_env() -> tuple[int, int, int]:
    """(RANK, WORLD_SIZE, LOCAL_RANK) from the torchrun environment; (0, 1, 0) without torchrun."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def train_run_ddp(
    spec: RunSpec, run_dir: str | Path, backend: str | None = None, stop_after: int | None = None
) -> pd.DataFrame | None:
    """Train `spec` into `run_dir` with DDP over the torchrun process group; returns the rows on rank 0.

    Sets up the process group (unless one exists), runs the shared loop `trainer.train_run`, and tears it down."""
    import torch
    import torch.distributed as dist

    rank, world, local_rank = _dist_env()
    device = ddp_device(spec.settings.device, local_rank)
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    own_group = not dist.is_initialized()
    if own_group:
        if "MASTER_PORT" not in os.environ:  # plain `python -m mixlaw.train.ddp`: a private group of one
            import socket

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                os.environ["MASTER_PORT"] = str(sock.getsockname()[1])
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        dist.init_process_group(
            backend or ("nccl" if device.startswith("cuda") else "gloo"), rank=rank, world_size=world
        )
    try:
        frame = train_run(spec, run_dir, stop_after=stop_after)
        return frame if rank == 0 else None
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


def load_spec(run_dir: str | Path) -> RunSpec:
    path = Path(run_dir) / "spec.json"
    if not path.is_file():
        raise MixlawInputError(
            f"{run_dir}: no spec.json (give a run folder written by a sweep or `mixlaw run`)"
        )
    return RunSpec.from_dict(json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mixlaw.train.ddp",
        description="Train one run (RUN_DIR/spec.json) with DDP; launch with torchrun.",
    )
    p.add_argument("run_dir", help="run folder holding spec.json (e.g. DIR/validation/runs/<run_id>)")
    p.add_argument(
        "--backend", choices=["gloo", "nccl"], default=None, help="default: nccl on GPU, gloo on CPU"
    )
    p.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        spec = load_spec(args.run_dir)
        if (Path(args.run_dir) / RESULT).is_file():
            print(f"ddp: {args.run_dir} is already finished", file=sys.stderr)
            return 0
        t0 = time.time()
        frame = train_run_ddp(spec, args.run_dir, args.backend, args.stop_after)
        if frame is not None:
            print(
                f"ddp: run {spec.run_id} ({spec.model_label}, {spec.steps} steps, world size {_dist_env()[1]}) "
                f"finished in {time.time() - t0:.1f}s",
                file=sys.stderr,
            )
    except MixlawInputError as exc:
        print(f"mixlaw: error: {exc}", file=sys.stderr)
        return 2
    return 0


def execute_run_ddp(spec: dict, run_dir: str, nproc: int, torchrun: str | None = None) -> dict:
    """Train one run with `torchrun --standalone --nproc_per_node=nproc -m mixlaw.train.ddp run_dir`."""
    t0 = time.time()
    rd = Path(run_dir)
    rd.mkdir(parents=True, exist_ok=True)
    if not (rd / "spec.json").is_file():
        atomic = rd / "spec.json"
        atomic.write_text(json.dumps(spec, indent=1))
    cmd = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]) + [
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "mixlaw.train.ddp",
        str(rd),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(spec.get("settings", {}).get("threads", 1)))
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not (rd / RESULT).is_file():
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        raise RuntimeError(f"torchrun exited with {proc.returncode}: {' | '.join(tail)}")
    frame = pd.read_csv(rd / RESULT)
    return {"run": spec.get("run_id"), "rows": len(frame), "seconds": time.time() - t0}


class TorchrunExecutor:
    """Sweep executor that trains each run with torchrun over `nproc` processes, one run at a time."""

    workers = 1

    def __init__(self, nproc: int, torchrun: str | None = None) -> None:
        self.nproc = nproc
        self.torchrun = torchrun
        self._pool = cf.ThreadPoolExecutor(max_workers=1)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        spec, run_dir = args[0], args[1]
        return self._pool.submit(execute_run_ddp, spec, run_dir, self.nproc, self.torchrun)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


if __name__ == "__main__":
    sys.exit(main())
