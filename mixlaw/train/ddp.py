"""One run trained with PyTorch DDP across processes (torchrun): for a single large validation run.

    torchrun --standalone --nproc_per_node=8 -m mixlaw.train.ddp DIR/validation/runs/<run_id>
    python -m mixlaw.train.ddp RUN_DIR            # world size 1 (no torchrun needed)

RUN_DIR must hold the run's `spec.json` (every sweep and `mixlaw run` writes one per run before training).
The global batch of the spec (`batch_size` sequences) is split evenly across the ranks: each rank takes
its share of the rows of the same deterministic mixture batch, and DDP averages the gradients, so the update is
the single-process update up to floating-point reduction order. Validation windows are split across ranks and
the summed losses all-reduced. Rank 0 writes the checkpoint, `progress.json` and finally `result.csv` in exactly
the format of `mixlaw.train.trainer.train_run`, so sweeps and `mixlaw run` see the run as finished; a killed
job resumes from the checkpoint. Backend: nccl on GPUs, gloo on CPU (`--backend` overrides).

`TorchrunExecutor(nproc)` plugs this into the sweep executor interface: each submitted run becomes one torchrun
job (one at a time), e.g. `mixlaw run CONFIG --ddp 8`.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import atomic_write
from mixlaw.train.spec import RunSpec, cooldown_start, resolve_eval_steps

CKPT = "checkpoint.safetensors"
RESULT = "result.csv"
PROGRESS = "progress.json"


def _dist_env() -> tuple[int, int, int]:
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def train_run_ddp(spec: RunSpec, run_dir: str | Path, backend: str | None = None,
                  stop_after: int | None = None) -> pd.DataFrame | None:
    """Train `spec` into `run_dir` with DDP over the torchrun process group; returns the rows on rank 0."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from mixlaw.train.corpus import Corpus, column_name
    from mixlaw.train.loader import MixtureLoader
    from mixlaw.train.model import GPT, GPTConfig
    from mixlaw.train.trainer import (
        LN2,
        _clone_opt_state,
        _Eval,
        _load_checkpoint,
        _save_checkpoint,
        lr_at,
    )

    rank, world, local_rank = _dist_env()
    run_dir = Path(run_dir)
    s = spec.settings
    if s.batch_size % world:
        raise MixlawInputError(f"ddp: batch_size {s.batch_size} is not divisible by the world size {world}")
    cuda = torch.cuda.is_available() and s.device != "cpu"
    backend = backend or ("nccl" if cuda else "gloo")
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)
    torch.set_num_threads(s.threads)
    own_group = not dist.is_initialized()
    if own_group:
        if "MASTER_PORT" not in os.environ:  # plain `python -m mixlaw.train.ddp`: a private group of one
            import socket

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                os.environ["MASTER_PORT"] = str(sock.getsockname()[1])
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        corpus = Corpus(spec.corpus_dir)
        if spec.corpus_id and corpus.id != spec.corpus_id:
            raise MixlawInputError(f"{spec.corpus_dir}: corpus id {corpus.id} differs from the run's {spec.corpus_id}")
        tok = corpus.tokenizer
        props = spec.proportions
        loader = MixtureLoader({d: corpus.tokens(d, "train") for d, p in props.items() if p > 0},
                               props, s.batch_size, s.seq_len, spec.seed)
        token_bytes = tok.token_bytes()
        valid_domains = list(spec.valid_domains) or corpus.domains
        evals = {d: _Eval(corpus.tokens(d, "valid"), s.seq_len, s.eval_tokens, token_bytes) for d in valid_domains}
        torch.manual_seed(spec.seed)
        cfg = GPTConfig(n_layer=spec.layers, n_embd=spec.width, vocab_size=tok.vocab_size, block_size=s.seq_len,
                        n_head=spec.heads)
        raw = GPT(cfg).to(device)
        opt = raw.configure_optimizer(s.lr, s.weight_decay, (s.beta1, s.beta2))
        params, params_total = raw.num_params(True), raw.num_params(False)
        ckpt = run_dir / CKPT
        step, rows, elapsed0 = 0, [], 0.0
        if ckpt.is_file():
            step, rows, elapsed0 = _load_checkpoint(ckpt, raw, opt)
        model = DDP(raw, device_ids=[local_rank] if cuda else None)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else None
        loader.skip_to(step)
        per_rank = s.batch_size // world
        lo, hi = rank * per_rank, (rank + 1) * per_rank
        eval_steps = resolve_eval_steps(s, spec.steps)
        branch_at: dict[int, list[int]] = {}
        if s.schedule == "wsd":
            for e in eval_steps:
                branch_at.setdefault(cooldown_start(s, e), []).append(e)
            main_end = max(branch_at)
        else:
            main_end = spec.steps
        planned = main_end + sum(e - b for b, es in branch_at.items() for e in es)
        done_steps = {r["step"] for r in rows}
        work_done = step + sum(e - b for b, es in branch_at.items() for e in es if e in done_steps)
        tokens_per_step = s.batch_size * s.seq_len
        t_start = last_ckpt = time.time()
        last_progress = 0.0

        def train_step(lr: float) -> float:
            batch = torch.from_numpy(loader.next_batch()[lo:hi]).to(device)
            x, y = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()
            for g in opt.param_groups:
                g["lr"] = lr
            if autocast is not None:
                with autocast:
                    _, loss = model(x, y)
            else:
                _, loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(raw.parameters(), s.grad_clip)
            opt.step()
            return float(loss.detach())

        @torch.no_grad()
        def evaluate(at_step: int) -> list[dict]:
            raw.eval()
            out = []
            epochs = loader.epochs()
            for d in valid_domains:
                ev = evals[d]
                if ev.x is None:
                    continue
                total = torch.zeros((), dtype=torch.float64, device=device)
                for i in range(rank * 32, len(ev.x), world * 32):
                    x = torch.from_numpy(ev.x[i : i + 32]).to(device)
                    y = torch.from_numpy(ev.y[i : i + 32]).to(device)
                    if autocast is not None:
                        with autocast:
                            _, loss = raw(x, y, reduction="sum")
                    else:
                        _, loss = raw(x, y, reduction="sum")
                    total += loss.double()
                dist.all_reduce(total)
                total_f = float(total)
                out.append({
                    "run": spec.run_id, "model": spec.model_label, "params": params, "params_total": params_total,
                    "step": at_step, "tokens": at_step * tokens_per_step, "seed": spec.seed,
                    **{f"p_{column_name(k)}": float(v) for k, v in spec.mixture},
                    "valid_domain": d, "loss": total_f / ev.y.size,
                    "bits_per_byte": total_f / (LN2 * ev.bytes) if ev.bytes else float("nan"),
                    "schedule": s.schedule, "lr": s.lr, "batch_size": s.batch_size, "seq_len": s.seq_len,
                    "tokenizer": tok.id, "corpus": corpus.id,
                    "flops": raw.flops_per_token(s.seq_len) * at_step * tokens_per_step,
                    **{f"epochs_{column_name(k)}": round(epochs.get(k, 0.0), 6) for k, _ in spec.mixture},
                })
            raw.train()
            return out

        def report(status: str, train_loss: float | None = None) -> None:
            if rank:
                return
            info = {"run": spec.run_id, "status": status, "step": step, "steps": spec.steps, "work_done": work_done,
                    "work_planned": planned, "tokens_per_step": tokens_per_step,
                    "elapsed": round(elapsed0 + time.time() - t_start, 3), "train_loss": train_loss,
                    "pid": os.getpid(), "world_size": world}
            atomic_write(run_dir / PROGRESS, json.dumps(info))

        model.train()
        train_loss = None
        while True:
            for e in branch_at.get(step, []):
                if e in done_steps:
                    continue
                saved_model = {k: v.clone() for k, v in raw.state_dict().items()}
                saved_opt = _clone_opt_state(opt.state_dict())
                saved_loader = (loader.counts.copy(), loader.step)
                c = e - step
                for j in range(c):
                    train_step(lr_at(spec, step + j) * (c - j) / c)
                    work_done += 1
                rows.extend(evaluate(e))
                done_steps.add(e)
                raw.load_state_dict(saved_model)
                opt.load_state_dict(saved_opt)
                loader.counts, loader.step = saved_loader
            if step >= main_end:
                break
            train_loss = train_step(lr_at(spec, step))
            if not math.isfinite(train_loss):
                raise RuntimeError(f"run {spec.run_id}: training diverged at step {step} (loss {train_loss}); lower lr")
            step += 1
            work_done += 1
            if s.schedule == "constant" and step in eval_steps and step not in done_steps:
                rows.extend(evaluate(step))
                done_steps.add(step)
            now = time.time()
            # every rank takes the same decision (step-based, or rank 0's clock broadcast)
            due = bool(s.checkpoint_every and step % s.checkpoint_every == 0)
            if not due and s.checkpoint_seconds:
                flag = torch.tensor([1 if now - last_ckpt >= s.checkpoint_seconds else 0], device=device)
                dist.broadcast(flag, 0)
                due = bool(flag.item())
            if step < main_end and due:
                if rank == 0:
                    _save_checkpoint(ckpt, raw, opt, step, rows, elapsed0 + now - t_start)
                last_ckpt = now
                if stop_after is not None and step >= stop_after:
                    report("stopped", train_loss)
                    dist.barrier()
                    return pd.DataFrame(rows) if rank == 0 else None
            if now - last_progress >= 1.0:
                report("running", train_loss)
                last_progress = now
        frame = pd.DataFrame(rows).sort_values(["step", "valid_domain"], kind="stable").reset_index(drop=True)
        if rank == 0:
            atomic_write(run_dir / RESULT, frame.to_csv(index=False, float_format="%.8g"))
            report("done", train_loss)
            if ckpt.exists():
                ckpt.unlink()
        dist.barrier()
        return frame if rank == 0 else None
    finally:
        if own_group and dist.is_initialized():
            dist.destroy_process_group()


def load_spec(run_dir: str | Path) -> RunSpec:
    path = Path(run_dir) / "spec.json"
    if not path.is_file():
        raise MixlawInputError(f"{run_dir}: no spec.json (give a run folder written by a sweep or `mixlaw run`)")
    return RunSpec.from_dict(json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mixlaw.train.ddp",
                                description="Train one run (RUN_DIR/spec.json) with DDP; launch with torchrun.")
    p.add_argument("run_dir", help="run folder holding spec.json (e.g. DIR/validation/runs/<run_id>)")
    p.add_argument("--backend", choices=["gloo", "nccl"], default=None, help="default: nccl on GPU, gloo on CPU")
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
            print(f"ddp: run {spec.run_id} ({spec.model_label}, {spec.steps} steps, world size {_dist_env()[1]}) "
                  f"finished in {time.time() - t0:.1f}s", file=sys.stderr)
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
        "--standalone", f"--nproc_per_node={nproc}", "-m", "mixlaw.train.ddp", str(rd)]
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
