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
from mixlaw.runs import TRAINER_FLOAT_FORMAT, write_runs
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
    should_stop: Callable[[], bool] | None = None,
) -> pd.DataFrame:
    """Train one proxy run (resuming from `run_dir/checkpoint.safetensors` if present) and return its rows.

    Writes `result.csv` (the run's rows of the runs table) atomically when done and removes the checkpoint.
    `stop_after` (steps) stops early after a checkpoint, for tests and benchmarks. `should_stop` is polled after
    every main-branch step; when it says so the run writes a checkpoint and raises KeyboardInterrupt (a sweep
    worker told to stop by SIGINT). Under an initialized torch.distributed process group every rank calls this
    and gets the rows; only rank 0 writes files."""
    return Trainer(spec, run_dir, on_progress).run(stop_after, should_stop)


class Trainer:
    """The state of one run being trained: model, optimizer, data, validation windows and the rows so far.

    `__init__` sets everything up (resuming from the run folder's checkpoint), `run` is the loop. The main
    branch is `train_step` at `lr_at`; a constant-LR run is evaluated on the main branch, a WSD run in its
    `cooldown` branches; `checkpoint` writes the resumable state and `finish` the result."""

    def __init__(
        self, spec: RunSpec, run_dir: str | Path, on_progress: Callable[[dict], None] | None = None
    ) -> None:
        self.spec, self.s = spec, spec.settings
        self.run_dir = Path(run_dir)
        self.on_progress = on_progress
        self.setup()

    # ----------------------------------------------------------------------------------------- setup

    def setup(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._setup_process()
        self._setup_data()
        self._setup_model()
        self._plan()
        self._resume()

    def _setup_process(self) -> None:
        """Distributed rank and world, torch threads and the device."""
        import torch
        import torch.distributed as dist

        s = self.s
        self.ddp = dist.is_available() and dist.is_initialized()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if self.ddp else (0, 1)
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.master = self.rank == 0  # writes checkpoint, progress and result
        if s.batch_size % self.world:
            raise MixlawInputError(
                f"ddp: batch_size {s.batch_size} is not divisible by the world size {self.world}"
            )
        torch.set_num_threads(s.threads)
        self.device = ddp_device(s.device, self.local_rank) if self.ddp else resolve_device(s.device)

    def _setup_data(self) -> None:
        """The corpus, the mixture loader and the validation windows of each validation domain."""
        spec, s = self.spec, self.s
        self.corpus = corpus = Corpus(spec.corpus_dir)
        if spec.corpus_id and corpus.id != spec.corpus_id:
            raise MixlawInputError(
                f"{spec.corpus_dir}: corpus id {corpus.id} differs from the run's {spec.corpus_id}"
            )
        self.tok = corpus.tokenizer
        props = spec.proportions
        self.loader = MixtureLoader(
            {d: corpus.tokens(d, "train") for d, p in props.items() if p > 0},
            props,
            s.batch_size,
            s.seq_len,
            spec.seed,
            stages=stage_plan(spec) if spec.stages else None,
        )
        token_bytes = self.tok.token_bytes()
        self.valid_domains = list(spec.valid_domains) or corpus.domains
        self.evals = {
            d: _Eval(corpus.tokens(d, "valid"), s.seq_len, s.eval_tokens, token_bytes)
            for d in self.valid_domains
        }

    def _setup_model(self) -> None:
        """The seeded model (from `init_from` weights if given), its optimizer and autocast."""
        import torch

        from mixlaw.train.model import GPT, GPTConfig

        spec, s = self.spec, self.s
        torch.manual_seed(spec.seed)
        self.cfg = GPTConfig(
            n_layer=spec.layers,
            n_embd=spec.width,
            vocab_size=self.tok.vocab_size,
            block_size=s.seq_len,
            n_head=spec.heads,
        )
        self.raw = GPT(self.cfg).to(self.device)  # state, eval and files use `raw`
        self.init_meta = _load_init(spec, self.raw, self.tok.id) if spec.init_from else {}
        self.opt = self.raw.configure_optimizer(s.lr, s.weight_decay, (s.beta1, s.beta2))
        self.params, self.params_total = self.raw.num_params(True), self.raw.num_params(False)
        cuda = self.device.startswith("cuda")
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else None
        self.extra_columns = _extra_columns(spec, self.init_meta)

    def _plan(self) -> None:
        """Evaluated lengths, the cooldown branches of a WSD run ({fork step: [lengths]}) and the work planned."""
        s = self.s
        self.eval_steps = resolve_eval_steps(s, self.spec.steps)
        self.branch_at: dict[int, list[int]] = {}
        if s.schedule == "wsd":
            for e in self.eval_steps:
                self.branch_at.setdefault(cooldown_start(s, e), []).append(e)
            self.main_end = max(self.branch_at)
        else:
            self.main_end = self.spec.steps
        self.planned = self.main_end + self._branch_work(lambda e: True)
        self.tokens_per_step = s.batch_size * s.seq_len

    def _branch_work(self, include: Callable[[int], bool]) -> int:
        """Updates of the cooldown branches whose evaluated length passes `include`."""
        return sum(e - b for b, es in self.branch_at.items() for e in es if include(e))

    def _resume(self) -> None:
        """Load the checkpoint if there is one, wrap the model for DDP, and position the loader."""
        self.ckpt = self.run_dir / CKPT
        self.step, self.rows, self.elapsed0 = 0, [], 0.0
        if self.ckpt.is_file():
            self.step, self.rows, self.elapsed0 = _load_checkpoint(self.ckpt, self.raw, self.opt)
        self.model = self.raw  # trained through `model` (DDP-wrapped under a group)
        if self.ddp:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.local_rank] if self.device.startswith("cuda") else None
            self.model = DistributedDataParallel(self.raw, device_ids=ids)
        self.loader.skip_to(self.step)
        share = self.s.batch_size // self.world
        self.lo, self.hi = self.rank * share, (self.rank + 1) * share  # this rank's rows of a batch
        self.done_steps = {r["step"] for r in self.rows}
        self.work_done = self.step + self._branch_work(lambda e: e in self.done_steps)
        self.train_loss: float | None = None
        self.t_start = self.last_ckpt = time.time()
        self.last_progress = 0.0

    # ----------------------------------------------------------------------------------------- the loop

    def run(
        self, stop_after: int | None = None, should_stop: Callable[[], bool] | None = None
    ) -> pd.DataFrame:
        """Train to the end, or to the first checkpoint at or after `stop_after` steps; return the rows."""
        self.model.train()
        while True:
            for length in self.branch_at.get(self.step, []):
                if length not in self.done_steps:
                    self.cooldown(length)
            if self.step >= self.main_end:
                return self.finish()
            self.main_step()
            now = time.time()
            if should_stop is not None and self.step < self.main_end and should_stop():
                self.checkpoint(now)
                self.report("stopped")
                raise KeyboardInterrupt(f"run {self.spec.run_id} stopped at step {self.step}")
            if self.step < self.main_end and self.checkpoint_due(now):
                self.checkpoint(now)
                if stop_after is not None and self.step >= stop_after:
                    return self.stop()
            if now - self.last_progress >= 1.0:
                self.report("running")
                self.last_progress = now

    def main_step(self) -> None:
        """One update of the main branch; a constant-LR run is evaluated at its evaluated lengths."""
        loss = self.train_step(lr_at(self.spec, self.step))
        if not math.isfinite(loss):
            raise RuntimeError(
                f"run {self.spec.run_id}: training diverged at step {self.step} (loss {loss}); lower lr"
            )
        self.train_loss = loss
        self.step += 1
        if (
            self.s.schedule == "constant"
            and self.step in self.eval_steps
            and self.step not in self.done_steps
        ):
            self.rows.extend(self.evaluate(self.step))
            self.done_steps.add(self.step)

    def train_step(self, lr: float) -> float:
        """One optimizer update at learning rate `lr` on the next batch; returns the training loss."""
        import torch

        batch = torch.from_numpy(self.loader.next_batch()[self.lo : self.hi]).to(
            self.device
        )  # (B/world, T+1)
        x, y = batch[:, :-1].contiguous(), batch[:, 1:].contiguous()
        for g in self.opt.param_groups:
            g["lr"] = lr
        _, loss = self._forward(self.model, x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.s.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), self.s.grad_clip)
        self.opt.step()
        self.work_done += 1
        return float(loss.detach())

    def _forward(self, model, x, y, **kw):
        if self.autocast is None:
            return model(x, y, **kw)
        with self.autocast:
            return model(x, y, **kw)

    def cooldown(self, length: int) -> None:
        """WSD: fork at this step, decay the LR linearly to zero over `length - step` updates, evaluate at
        `length`, and restore the main branch (model, optimizer and loader)."""
        saved_model = {k: v.clone() for k, v in self.raw.state_dict().items()}
        saved_opt = _clone_opt_state(self.opt.state_dict())
        saved_loader = (self.loader.counts.copy(), self.loader.step)
        c = length - self.step
        for j in range(c):
            self.train_step(lr_at(self.spec, self.step + j) * (c - j) / c)
        self.rows.extend(self.evaluate(length))
        self.done_steps.add(length)
        self.raw.load_state_dict(saved_model)
        self.opt.load_state_dict(saved_opt)
        self.loader.counts, self.loader.step = saved_loader

    # ----------------------------------------------------------------------------------------- evaluation

    def evaluate(self, at_step: int) -> list[dict]:
        """The runs-table rows of the model after `at_step` steps: one per validation domain with windows."""
        import torch

        self.raw.eval()
        with torch.no_grad():
            epochs = self.loader.epochs()
            out = [
                self._row(d, at_step, self._summed_loss(self.evals[d]), epochs)
                for d in self.valid_domains
                if self.evals[d].x is not None
            ]
        self.raw.train()
        return out

    def _summed_loss(self, ev: _Eval) -> float:
        """Summed cross-entropy (nats) over the domain's windows, in batches of 32, all-reduced over ranks."""
        import torch
        import torch.distributed as dist

        summed = torch.zeros((), dtype=torch.float64, device=self.device)
        for i in range(self.rank * 32, len(ev.x), self.world * 32):  # this rank's batches of 32 windows
            x = torch.from_numpy(ev.x[i : i + 32]).to(self.device)
            y = torch.from_numpy(ev.y[i : i + 32]).to(self.device)
            _, loss = self._forward(self.raw, x, y, reduction="sum")
            summed += loss.double()
        if self.ddp:
            dist.all_reduce(summed)
        return float(summed)

    def _row(self, domain: str, at_step: int, total: float, epochs: dict[str, float]) -> dict:
        spec, s, ev = self.spec, self.s, self.evals[domain]
        return {
            "run": spec.run_id,
            "model": spec.model_label,
            "params": self.params,
            "params_total": self.params_total,
            "step": at_step,
            "tokens": at_step * self.tokens_per_step,
            "seed": spec.seed,
            **{f"p_{column_name(k)}": float(v) for k, v in spec.mixture},
            "valid_domain": domain,
            "loss": total / ev.y.size,
            "bits_per_byte": total / (LN2 * ev.bytes) if ev.bytes else float("nan"),
            "schedule": s.schedule,
            "lr": s.lr,
            "batch_size": s.batch_size,
            "seq_len": s.seq_len,
            "tokenizer": self.tok.id,
            "corpus": self.corpus.id,
            "flops": self.raw.flops_per_token(s.seq_len) * at_step * self.tokens_per_step,
            **{f"epochs_{column_name(k)}": round(epochs.get(k, 0.0), 6) for k, _ in spec.mixture},
            **self.extra_columns,
        }

    # ----------------------------------------------------------------------------------------- files

    def checkpoint_due(self, now: float) -> bool:
        return _checkpoint_due(self.s, self.step, now - self.last_ckpt, self.device if self.ddp else None)

    def checkpoint(self, now: float) -> None:
        """Write the resumable state (rank 0) after `self.step` main-branch steps."""
        if self.master:
            _save_checkpoint(
                self.ckpt, self.raw, self.opt, self.step, self.rows, self.elapsed0 + now - self.t_start
            )
        self.last_ckpt = now

    def report(self, status: str) -> None:
        """Write `progress.json` (rank 0) and pass the same record to `on_progress`."""
        if not self.master:
            return
        info = {
            "run": self.spec.run_id,
            "status": status,
            "step": self.step,
            "steps": self.spec.steps,
            "work_done": self.work_done,
            "work_planned": self.planned,
            "tokens_per_step": self.tokens_per_step,
            "elapsed": round(self.elapsed0 + time.time() - self.t_start, 3),
            "train_loss": self.train_loss,
            "pid": os.getpid(),
            **({"world_size": self.world} if self.ddp else {}),
        }
        atomic_write(self.run_dir / PROGRESS, json.dumps(info))
        if self.on_progress:
            self.on_progress(info)

    def stop(self) -> pd.DataFrame:
        """End early after a checkpoint (`stop_after`): the rows so far, unsorted; no result file."""
        self.report("stopped")
        self._barrier()
        return pd.DataFrame(self.rows)

    def finish(self) -> pd.DataFrame:
        """Write the final weights (if asked), `result.csv` and the last progress; remove the checkpoint."""
        frame = (
            pd.DataFrame(self.rows)
            .sort_values(["step", "valid_domain"], kind="stable")
            .reset_index(drop=True)
        )
        if self.master:
            if self.s.save_model:
                _save_model(
                    self.run_dir / MODEL_FILE, self.raw, self.spec, self.tok.id, self.corpus.id, self.cfg
                )
            write_runs(frame, self.run_dir / RESULT, TRAINER_FLOAT_FORMAT)
            self.report("done")
            if self.ckpt.exists():
                self.ckpt.unlink()
        self._barrier()
        return frame

    def _barrier(self) -> None:
        if self.ddp:
            import torch.distributed as dist

            dist.barrier()


def _extra_columns(spec: RunSpec, init_meta: dict) -> dict:
    """Columns only for staged or initialized runs, so other runs tables keep their columns."""
    out: dict = {}
    if spec.stages:
        out["n_stages"] = len(spec.stages)
        for k, (share, mix) in enumerate(spec.stages, start=1):
            out[f"stage{k}_share"] = float(share)
            out.update({f"stage{k}_p_{column_name(d)}": float(v) for d, v in mix})
    if spec.init_id:
        out["init_id"] = spec.init_id
        out["init_run"] = init_meta.get("run", "")
    return out


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
