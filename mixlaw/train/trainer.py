"""The training loop of one proxy run: AdamW, gradient clipping, checkpoints, per-domain validation loss.

Learning-rate schedules (the `schedule` setting):

- `constant` (default): linear warmup, then a constant LR. A checkpoint at step s is then exactly the end of a
  run trained for s steps, so the loss-vs-steps curve of one run is a set of valid endpoints for step laws.
- `wsd` (warmup-stable-decay): the main branch runs at constant LR; for each evaluated length s a short
  cooldown branch forks at step s - c (c = cooldown_fraction x s), decays the LR linearly to zero over c steps on
  the same data a run of length s would see, is evaluated at s, and is discarded. Each row is then the loss of a
  WSD run trained to s steps, at the extra cost of the cooldown steps.

A cosine schedule is deliberately not offered: its intermediate checkpoints are not the losses of runs trained to
those lengths, so step laws fitted on them disagree with real runs.

Checkpoints (model, optimizer, completed rows) are single safetensors files written atomically; training is
deterministic for a seed on CPU, so a resumed run gives the same numbers as an uninterrupted one.

The same loop trains with DDP when a torch.distributed process group is initialized (`mixlaw.train.ddp` sets
one up under torchrun): each rank takes its share of the rows of the same deterministic global batch, the
validation windows are split across ranks and their summed losses all-reduced, and only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import atomic_write, replacing
from mixlaw.train.corpus import Corpus, column_name
from mixlaw.train.loader import MixtureLoader
from mixlaw.train.spec import (
    MODEL_FILE,
    RunSpec,
    TrainSettings,
    _safetensors_metadata,
    cooldown_start,
    resolve_eval_steps,
    stage_plan,
)

CKPT = "checkpoint.safetensors"
RESULT = "result.csv"
PROGRESS = "progress.json"
LN2 = math.log(2.0)


def lr_at(spec: RunSpec, step: int) -> float:
    """Main-branch learning rate for the update that takes the model from `step` to `step + 1`."""
    s = spec.settings
    if s.warmup_steps and step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    return s.lr


def resolve_device(name: str) -> str:
    """The torch device of a single-process run for the `device` setting (`auto`: one GPU per pool worker)."""
    import torch

    if name == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        # one GPU per pool worker: worker k (1-based) of a process pool takes GPU (k - 1) mod count
        import multiprocessing

        ident = getattr(multiprocessing.current_process(), "_identity", ()) or (1,)
        return f"cuda:{(ident[0] - 1) % torch.cuda.device_count()}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MixlawInputError(f"training.device: {name!r} requested but CUDA is not available")
    return name


def ddp_device(name: str, local_rank: int) -> str:
    """The device of a DDP rank: its local GPU unless CUDA is unavailable or `device` is `cpu`."""
    import torch

    return f"cuda:{local_rank}" if torch.cuda.is_available() and name != "cpu" else "cpu"


class _Eval:
    """Fixed validation windows of one domain: inputs/targets (N, T) and the text bytes of the targets."""

    def __init__(self, tokens: np.ndarray, seq_len: int, max_tokens: int, token_bytes: np.ndarray) -> None:
        n = len(tokens)
        if n < 2:
            self.x = self.y = None
            self.bytes = 0
            return
        T = min(seq_len, n - 1)
        windows = max(1, min(max_tokens // T, (n - 1) // T))
        idx = np.arange(windows)[:, None] * T + np.arange(T + 1)[None, :]
        w = np.asarray(tokens[: windows * T + 1], dtype=np.int64)[idx]
        self.x, self.y = w[:, :-1], w[:, 1:]
        self.bytes = int(token_bytes[self.y].sum())


def _state_tensors(model, opt) -> dict:
    import torch

    out = {
        f"model.{k}": v.detach().contiguous().clone()
        for k, v in model.state_dict().items()
        if k != "lm_head.weight"
    }
    for idx, st in opt.state_dict()["state"].items():
        for key, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            out[f"opt.{idx}.{key}"] = t.detach().contiguous().clone()
    out["rng.torch"] = torch.get_rng_state()
    return out


def _save_checkpoint(path: Path, model, opt, step: int, rows: list[dict], elapsed: float) -> None:
    from safetensors.torch import save_file

    meta = {
        "step": str(step),
        "rows": json.dumps(rows),
        "elapsed": str(elapsed),
        "param_groups": json.dumps(opt.state_dict()["param_groups"]),
    }
    with replacing(path) as tmp:
        save_file(_state_tensors(model, opt), str(tmp), metadata=meta)


def _load_checkpoint(path: Path, model, opt) -> tuple[int, list[dict], float]:
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=False)
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, key = k.split(".", 2)
            state.setdefault(int(idx), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"]), json.loads(meta["rows"]), float(meta["elapsed"])


def train_run(
    spec: RunSpec,
    run_dir: str | Path,
    on_progress: Callable[[dict], None] | None = None,
    stop_after: int | None = None,
) -> pd.DataFrame:
    """Train one proxy run (resuming from `run_dir/checkpoint.safetensors` if present) and return its rows.

    Writes `result.csv` (the run's rows of the runs table) atomically when done and removes the checkpoint.
    `stop_after` (steps) stops early after a checkpoint, for tests and benchmarks. Under an initialized
    torch.distributed process group every rank calls this and gets the rows; only rank 0 writes files."""
    import torch
    import torch.distributed as dist

    from mixlaw.train.model import GPT, GPTConfig

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    s = spec.settings
    ddp = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    master = rank == 0  # writes checkpoint, progress and result
    if s.batch_size % world:
        raise MixlawInputError(f"ddp: batch_size {s.batch_size} is not divisible by the world size {world}")
    torch.set_num_threads(s.threads)
    device = ddp_device(s.device, local_rank) if ddp else resolve_device(s.device)
    corpus = Corpus(spec.corpus_dir)
    if spec.corpus_id and corpus.id != spec.corpus_id:
        raise MixlawInputError(
            f"{spec.corpus_dir}: corpus id {corpus.id} differs from the run's {spec.corpus_id}"
        )
    tok = corpus.tokenizer
    props = spec.proportions
    loader = MixtureLoader(
        {d: corpus.tokens(d, "train") for d, p in props.items() if p > 0},
        props,
        s.batch_size,
        s.seq_len,
        spec.seed,
        stages=stage_plan(spec) if spec.stages else None,
    )
    token_bytes = tok.token_bytes()
    valid_domains = list(spec.valid_domains) or corpus.domains
    evals = {
        d: _Eval(corpus.tokens(d, "valid"), s.seq_len, s.eval_tokens, token_bytes) for d in valid_domains
    }

    torch.manual_seed(spec.seed)
    cfg = GPTConfig(
        n_layer=spec.layers,
        n_embd=spec.width,
        vocab_size=tok.vocab_size,
        block_size=s.seq_len,
        n_head=spec.heads,
    )
    raw = GPT(cfg).to(device)
    init_meta = _load_init(spec, raw, tok.id) if spec.init_from else {}
    opt = raw.configure_optimizer(s.lr, s.weight_decay, (s.beta1, s.beta2))
    params, params_total = raw.num_params(True), raw.num_params(False)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else None

    eval_steps = resolve_eval_steps(s, spec.steps)
    branch_at: dict[int, list[int]] = {}
    if s.schedule == "wsd":
        for e in eval_steps:
            branch_at.setdefault(cooldown_start(s, e), []).append(e)
        main_end = max(branch_at)
    else:
        main_end = spec.steps
    planned = main_end + sum(e - b for b, es in branch_at.items() for e in es)

    ckpt = run_dir / CKPT
    step, rows, elapsed0 = 0, [], 0.0
    if ckpt.is_file():
        step, rows, elapsed0 = _load_checkpoint(ckpt, raw, opt)
    model = raw  # trained through `model` (DDP-wrapped under a group); state, eval and files use `raw`
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(raw, device_ids=[local_rank] if device.startswith("cuda") else None)
    loader.skip_to(step)
    lo, hi = (
        rank * (s.batch_size // world),
        (rank + 1) * (s.batch_size // world),
    )  # this rank's rows of a batch
    done_steps = {r["step"] for r in rows}
    work_done = step + sum(e - b for b, es in branch_at.items() for e in es if e in done_steps)
    tokens_per_step = s.batch_size * s.seq_len
    t_start = time.time()
    last_ckpt = time.time()
    last_progress = 0.0

    def train_step(lr: float) -> float:
        batch = torch.from_numpy(loader.next_batch()[lo:hi]).to(device)  # (B / world, T + 1)
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

    extra_columns: dict = {}  # only for staged or initialized runs, so other runs tables keep their columns
    if spec.stages:
        extra_columns["n_stages"] = len(spec.stages)
        for k, (share, mix) in enumerate(spec.stages, start=1):
            extra_columns[f"stage{k}_share"] = float(share)
            extra_columns.update({f"stage{k}_p_{column_name(d)}": float(v) for d, v in mix})
    if spec.init_id:
        extra_columns["init_id"] = spec.init_id
        extra_columns["init_run"] = init_meta.get("run", "")

    @torch.no_grad()
    def evaluate(at_step: int) -> list[dict]:
        raw.eval()
        out = []
        epochs = loader.epochs()
        for d in valid_domains:
            ev = evals[d]
            if ev.x is None:
                continue
            summed = torch.zeros((), dtype=torch.float64, device=device)
            for i in range(rank * 32, len(ev.x), world * 32):  # this rank's batches of 32 windows
                x = torch.from_numpy(ev.x[i : i + 32]).to(device)
                y = torch.from_numpy(ev.y[i : i + 32]).to(device)
                if autocast is not None:
                    with autocast:
                        _, loss = raw(x, y, reduction="sum")
                else:
                    _, loss = raw(x, y, reduction="sum")
                summed += loss.double()
            if ddp:
                dist.all_reduce(summed)
            total = float(summed)
            n = ev.y.size
            row = {
                "run": spec.run_id,
                "model": spec.model_label,
                "params": params,
                "params_total": params_total,
                "step": at_step,
                "tokens": at_step * tokens_per_step,
                "seed": spec.seed,
                **{f"p_{column_name(k)}": float(v) for k, v in spec.mixture},
                "valid_domain": d,
                "loss": total / n,
                "bits_per_byte": total / (LN2 * ev.bytes) if ev.bytes else float("nan"),
                "schedule": s.schedule,
                "lr": s.lr,
                "batch_size": s.batch_size,
                "seq_len": s.seq_len,
                "tokenizer": tok.id,
                "corpus": corpus.id,
                "flops": raw.flops_per_token(s.seq_len) * at_step * tokens_per_step,
                **{f"epochs_{column_name(k)}": round(epochs.get(k, 0.0), 6) for k, _ in spec.mixture},
                **extra_columns,
            }
            out.append(row)
        raw.train()
        return out

    def report(status: str, train_loss: float | None = None) -> None:
        if not master:
            return
        el = elapsed0 + time.time() - t_start
        info = {
            "run": spec.run_id,
            "status": status,
            "step": step,
            "steps": spec.steps,
            "work_done": work_done,
            "work_planned": planned,
            "tokens_per_step": tokens_per_step,
            "elapsed": round(el, 3),
            "train_loss": train_loss,
            "pid": os.getpid(),
            **({"world_size": world} if ddp else {}),
        }
        atomic_write(run_dir / PROGRESS, json.dumps(info))
        if on_progress:
            on_progress(info)

    model.train()
    train_loss = None
    while True:
        for e in branch_at.get(step, []):
            if e in done_steps:
                continue
            # Cooldown branch: fork, decay linearly to zero over e - step updates, evaluate, restore.
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
            raise RuntimeError(
                f"run {spec.run_id}: training diverged at step {step} (loss {train_loss}); lower lr"
            )
        step += 1
        work_done += 1
        if s.schedule == "constant" and step in eval_steps and step not in done_steps:
            rows.extend(evaluate(step))
            done_steps.add(step)
        now = time.time()
        if step < main_end and _checkpoint_due(s, step, now - last_ckpt, device if ddp else None):
            if master:
                _save_checkpoint(ckpt, raw, opt, step, rows, elapsed0 + now - t_start)
            last_ckpt = now
            if stop_after is not None and step >= stop_after:
                report("stopped", train_loss)
                if ddp:
                    dist.barrier()
                return pd.DataFrame(rows)
        if now - last_progress >= 1.0:
            report("running", train_loss)
            last_progress = now

    frame = pd.DataFrame(rows).sort_values(["step", "valid_domain"], kind="stable").reset_index(drop=True)
    if master:
        if s.save_model:
            _save_model(run_dir / MODEL_FILE, raw, spec, tok.id, corpus.id, cfg)
        atomic_write(run_dir / RESULT, frame.to_csv(index=False, float_format="%.8g"))
        report("done", train_loss)
        if ckpt.exists():
            ckpt.unlink()
    if ddp:
        dist.barrier()
    return frame


def _checkpoint_due(s: TrainSettings, step: int, since_last: float, ddp_on: str | None) -> bool:
    """Whether to checkpoint after `step`: every `checkpoint_every` steps or `checkpoint_seconds` after the last.

    Under DDP (`ddp_on`: the rank's device) every rank must decide alike, so rank 0's clock is broadcast."""
    if s.checkpoint_every and step % s.checkpoint_every == 0:
        return True
    due = since_last >= s.checkpoint_seconds
    if ddp_on is not None:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([int(due)], device=ddp_on)
        dist.broadcast(flag, 0)
        due = bool(flag.item())
    return due


def _save_model(path: Path, model, spec: RunSpec, tokenizer_id: str, corpus_id: str, cfg) -> None:
    """Final weights only (no optimizer), for `--init-from`; deterministic bytes for a deterministic run."""
    from safetensors.torch import save

    tensors = {
        f"model.{k}": v.detach().cpu().contiguous().clone()
        for k, v in model.state_dict().items()
        if k != "lm_head.weight"
    }
    meta = {
        "run": spec.run_id,
        "step": str(spec.steps),
        "tokenizer": tokenizer_id,
        "corpus": corpus_id,
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
    }
    atomic_write(path, _sorted_metadata(save(tensors, metadata=meta)))


def _sorted_metadata(blob: bytes) -> bytes:
    """A safetensors file with its metadata keys sorted: safetensors writes that map in an order that varies
    from call to call, and the content id of `--init-from` weights is the hash of the file's bytes."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # the data stays 8-byte aligned, as safetensors writes it
    return len(text).to_bytes(8, "little") + text + blob[8 + n :]


def _load_init(spec: RunSpec, model, tokenizer_id: str) -> dict:
    """Load `spec.init_from` weights into `model` (shapes and tokenizer must match). Returns the file's metadata."""
    from safetensors import safe_open

    path = spec.init_from
    if not Path(path).is_file():
        raise MixlawInputError(f"init_from: {path}: file not found")
    meta = _safetensors_metadata(path)
    if meta.get("tokenizer") and meta["tokenizer"] != tokenizer_id:
        raise MixlawInputError(
            f"init_from: {path}: tokenizer {meta['tokenizer']} differs from this corpus's {tokenizer_id}"
        )
    with safe_open(str(path), framework="pt") as fh:
        tensors = {
            k[6:] if k.startswith("model.") else k: fh.get_tensor(k)
            for k in fh.keys()
            if k.startswith("model.") or "." in k and not k.startswith(("opt.", "rng."))
        }
    own = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    missing = sorted(set(own) - set(tensors))
    if missing:
        raise MixlawInputError(f"init_from: {path}: no weights for {missing[0]} (a different model shape?)")
    for k, v in own.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise MixlawInputError(
                f"init_from: {path}: {k} has shape {tuple(tensors[k].shape)}, the model "
                f"{spec.model_label} needs {tuple(v.shape)}"
            )
    model.load_state_dict({k: tensors[k] for k in own}, strict=False)
    return meta


def _clone_opt_state(sd: dict) -> dict:
    import copy

    import torch

    return {
        "state": {
            k: {kk: (vv.clone() if torch.is_tensor(vv) else vv) for kk, vv in v.items()}
            for k, v in sd["state"].items()
        },
        "param_groups": copy.deepcopy(sd["param_groups"]),
    }
