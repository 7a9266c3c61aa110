"""Sweeps: a list of content-hashed runs executed behind a small executor interface, resumable at any time.

Layout of a sweep folder:

    DIR/runs.csv              the runs table of every finished run (rewritten atomically as runs finish)
    DIR/sweep.json            the run specs of the last invocation
    DIR/runs/<run_id>/        spec.json, checkpoint.safetensors (while running), progress.json, result.csv

A run is finished iff its `result.csv` exists (written atomically, last). Rerunning a sweep skips finished
runs and resumes the others from their last checkpoint, so killing the process at any moment (SIGKILL included)
loses at most the work since the last checkpoint. `DIR/.sweep.lock` keeps two sweeps from writing the same
folder; pool workers are tied to the sweep process from their start (`mixlaw.train.worker`: PR_SET_PDEATHSIG on
Linux, plus a parent watchdog), check before each run that the sweep is alive and holds the lock, and on SIGINT
checkpoint the running run and take no other. Temporary files of a killed sweep are removed on resume.

Executors: anything with `submit(fn, *args) -> concurrent.futures.Future` and `shutdown(wait, cancel_futures)`.
`LocalExecutor` (a spawn-context process pool, one single-threaded run per core) and `InlineExecutor` (in this
process, for debugging) are built in; a Ray or submitit backend only has to wrap its handles in Futures.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import atomic_write, locked, read_yaml
from mixlaw.runs import TRAINER_FLOAT_FORMAT, write_runs
from mixlaw.train import design as design_mod
from mixlaw.train import worker
from mixlaw.train.corpus import (
    Corpus,
    CorpusConfig,
    column_name,
    demo_corpus_config,
    parse_corpus_config,
    prepare_corpus,
)
from mixlaw.train.eta import JobEta, Stage, format_seconds, plan_runs
from mixlaw.train.spec import (
    RunSpec,
    TrainSettings,
    check_device,
    cooldown_start,
    parse_settings,
    resolve_eval_steps,
    resolve_init,
    schedule_mixture,
)

log = logging.getLogger(__name__)

RESULT = "result.csv"
PROGRESS = "progress.json"
CKPT = "checkpoint.safetensors"
LOCK = ".sweep.lock"
TABLE_DTYPES = {
    "run": str,
    "model": str,
    "valid_domain": str,
    "schedule": str,
    "tokenizer": str,
    "corpus": str,
}


class SweepError(RuntimeError):
    """Some runs of a sweep failed (the others' results are kept)."""


# --------------------------------------------------------------------------------------------- executors


@runtime_checkable
class Executor(Protocol):
    """What the sweep needs from a backend: submit a picklable call, get a Future; shut down."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


class LocalExecutor:
    """A process pool on this machine (spawn context): `workers` runs at once, `threads` torch threads each."""

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.threads = threads
        self._pool: cf.ProcessPoolExecutor | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=worker.init,  # a light module: tied to this process before heavy imports
                initargs=(os.getpid(), self.threads),
            )
        return self._pool.submit(fn, *args)

    def interrupt(self) -> None:
        """Ask the workers to stop: each checkpoints its run and takes no other (SIGINT, see `worker`)."""
        procs = getattr(self._pool, "_processes", None) or {}  # the pool's {pid: process}; no public API
        for pid in list(procs):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
            self._pool = None


class InlineExecutor:
    """Runs each call at once in this process (serial; handy for debugging and tests)."""

    workers = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future like a pool would
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


def execute_run(spec: dict, run_dir: str) -> dict:
    """The unit of work sent to executors: train (or resume) one run. Returns a small summary.

    In a pool worker it first checks that the sweep is alive and holds the folder's lock, and stops at a
    checkpoint when told to (SIGINT)."""
    worker.check_may_train(Path(run_dir).parent.parent / LOCK)
    from mixlaw.train.trainer import train_run

    t0 = time.time()
    frame = train_run(RunSpec.from_dict(spec), run_dir, should_stop=worker.stop_requested)
    return {"run": spec.get("run_id"), "rows": len(frame), "seconds": time.time() - t0}


# --------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ModelSpec:
    layers: int
    width: int
    heads: int = 0
    steps: int | None = None
    lr: float | None = None

    @property
    def label(self) -> str:
        return f"L{self.layers}-D{self.width}"


@dataclass
class SweepConfig:
    """A parsed sweep config file (see docs/training.md for the format)."""

    corpus: CorpusConfig
    models: list[ModelSpec]
    steps: list[int]
    seeds: list[int]
    settings: TrainSettings
    mixtures: list[dict[str, float]] = field(default_factory=list)
    design: dict | None = None
    train_domains: list[str] = field(default_factory=list)
    valid_domains: list[str] = field(default_factory=list)
    path: str = ""
    schedules: list[list[tuple[float, dict[str, float]]]] = field(default_factory=list)
    init_from: str = ""


_SWEEP_KEYS = {
    "corpus",
    "models",
    "steps",
    "seeds",
    "seed",
    "training",
    "mixtures",
    "design",
    "train_domains",
    "valid_domains",
    "schedules",
    "init_from",
}
_DESIGN_KEYS = {
    "method",
    "n",
    "seed",
    "temperature",
    "max_epochs",
    "caps",
    "grid",
    "strength_range",
    "min_weight",
    "include",
}


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep YAML file; every error is one line naming the file, key and value."""
    path = Path(path)
    return parse_sweep_config(read_yaml(path, "sweep config"), str(path), base_dir=path.parent)


def parse_sweep_config(raw: object, where: str = "config", base_dir: str | Path = ".") -> SweepConfig:
    """Validate a sweep config mapping into a SweepConfig: every key and value, the run lengths against the
    training settings, and that the device exists here. Errors are one line naming `where`, the key and value."""
    raw = _check_keys(raw, where)
    corpus = _parse_corpus(raw.get("corpus", "demo"), where, base_dir)
    names = corpus.domain_names
    train_domains = _domain_list(raw.get("train_domains"), "train_domains", names, where)
    valid_domains = _domain_list(raw.get("valid_domains"), "valid_domains", names, where)
    settings = parse_settings(raw.get("training"), f"{where}: training")
    models = _parse_models(raw.get("models"), where)
    steps = _parse_steps(raw.get("steps"), models, where)
    seeds = _parse_seeds(raw.get("seeds", raw.get("seed", [0])), where)
    mixtures = _parse_mixtures(raw.get("mixtures") or [], train_domains, where)
    dsg = _parse_design(raw.get("design"), where)
    schedules = _parse_schedules(raw.get("schedules"), train_domains, where)
    if not mixtures and dsg is None and not schedules:
        raise MixlawInputError(f"{where}: give `mixtures:` (a list), `schedules:` or a `design:` block")
    init_from = _parse_init_from(raw.get("init_from") or "", base_dir, where)
    _check_lengths(models, steps, settings, where)
    check_device(settings.device, f"{where}: training.device")
    return SweepConfig(
        corpus=corpus,
        models=models,
        steps=steps,
        seeds=seeds,
        settings=settings,
        mixtures=mixtures,
        design=dsg,
        train_domains=train_domains,
        valid_domains=valid_domains,
        path=where,
        schedules=schedules,
        init_from=init_from,
    )


def _check_keys(raw: object, where: str) -> dict:
    if not isinstance(raw, dict):
        raise MixlawInputError(f"{where}: expected a mapping with corpus, models, steps and mixtures")
    unknown = set(raw) - _SWEEP_KEYS
    if unknown:
        raise MixlawInputError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(_SWEEP_KEYS)})")
    return raw


def _parse_corpus(raw: object, where: str, base_dir: str | Path) -> CorpusConfig:
    """`corpus:` is `demo`, `{demo: {options}}` or a corpus mapping (see `parse_corpus_config`)."""
    if raw == "demo":
        return demo_corpus_config()
    if isinstance(raw, dict) and "demo" in raw:
        opts = raw["demo"] or {}
        allowed = {"max_bytes", "math_tokens", "tokenizer", "valid_fraction", "vocab_size"}
        if not isinstance(opts, dict) or set(opts) - allowed:
            raise MixlawInputError(f"{where}: corpus.demo: allowed keys are {sorted(allowed)}")
        return demo_corpus_config(**opts)
    return parse_corpus_config(raw, f"{where}: corpus", base_dir=base_dir)


def _domain_list(raw: object, key: str, names: list[str], where: str) -> list[str]:
    """`train_domains:` / `valid_domains:`: a non-empty list of corpus domains; all of them when absent."""
    if raw is None:
        return list(names)
    if not isinstance(raw, list) or not raw:
        raise MixlawInputError(f"{where}: {key}: expected a non-empty list of domain names")
    for d in raw:
        if d not in names:
            raise MixlawInputError(f"{where}: {key}: unknown domain {d!r} (corpus domains: {names})")
    return list(raw)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_steps(raw: object, models: list[ModelSpec], where: str) -> list[int]:
    """`steps:` an integer or a list of them; may be left out when every model gives its own `steps`."""
    steps = [raw] if isinstance(raw, int) else raw
    if raw is None and all(m.steps for m in models):
        steps = [0]
    if not isinstance(steps, list) or not steps or not all(_is_int(s) and s >= 0 for s in steps):
        raise MixlawInputError(f"{where}: steps: {raw!r} must be a positive integer or a list of them")
    return steps


def _parse_seeds(raw: object, where: str) -> list[int]:
    seeds = [raw] if isinstance(raw, int) else raw
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) for s in seeds):
        raise MixlawInputError(f"{where}: seeds: {raw!r} must be an integer or a list of integers")
    return seeds


def _parse_mixtures(raw: object, train_domains: list[str], where: str) -> list[dict[str, float]]:
    if not isinstance(raw, list):
        raise MixlawInputError(f"{where}: mixtures: expected a list of mappings domain -> proportion")
    return [design_mod.check_mixture(m, train_domains, f"{where}: mixtures[{i}]") for i, m in enumerate(raw)]


def _parse_design(raw: object, where: str) -> dict | None:
    """`design:` a mapping of `_DESIGN_KEYS` with method grid or dirichlet (its values are read by
    `design_mixtures`)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MixlawInputError(f"{where}: design: expected a mapping (method: grid | dirichlet, n: ...)")
    bad = set(raw) - _DESIGN_KEYS
    if bad:
        raise MixlawInputError(
            f"{where}: design: unknown key(s) {sorted(bad)} (allowed: {sorted(_DESIGN_KEYS)})"
        )
    if raw.get("method", "dirichlet") not in ("grid", "dirichlet"):
        raise MixlawInputError(f"{where}: design.method: {raw.get('method')!r} is not grid or dirichlet")
    return raw


def _parse_init_from(raw: object, base_dir: str | Path, where: str) -> str:
    """`init_from:` a weights path, relative to the config's folder."""
    if not raw:
        return ""
    if not isinstance(raw, str):
        raise MixlawInputError(f"{where}: init_from: {raw!r} must be a path")
    return str(Path(base_dir) / Path(raw).expanduser())


def _check_lengths(models: list[ModelSpec], steps: list[int], settings: TrainSettings, where: str) -> None:
    """Every run has at least one step and a warmup no longer than itself; explicit `eval_steps` lie within
    the longest run (points beyond a shorter run are left out of that run, as documented)."""
    lengths = []
    for m in models:
        for st in [m.steps] if m.steps else steps:
            if st < 1:
                raise MixlawInputError(f"{where}: steps: model {m.label} has {st} steps; give steps >= 1")
            if settings.warmup_steps > st:
                raise MixlawInputError(
                    f"{where}: training.warmup_steps: {settings.warmup_steps} is longer than the {st}-step run "
                    f"of model {m.label}"
                )
            lengths.append(st)
    beyond = [e for e in settings.eval_steps if e > max(lengths)]
    if beyond:
        raise MixlawInputError(
            f"{where}: training.eval_steps: {beyond[0]} is beyond the longest run ({max(lengths)} steps)"
        )


def _parse_schedules(
    raw: object, train_domains: list[str], where: str
) -> list[list[tuple[float, dict[str, float]]]]:
    """`schedules:` = a list of schedules, each a list of stages {share: s, mixture: {domain: p}}; shares sum to 1."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MixlawInputError(
            f"{where}: schedules: expected a list of schedules (lists of {{share, mixture}} stages)"
        )
    out = []
    for i, sched in enumerate(raw):
        w = f"{where}: schedules[{i}]"
        if not isinstance(sched, list) or not sched:
            raise MixlawInputError(
                f"{w}: expected a non-empty list of stages {{share: 0.8, mixture: {{...}}}}"
            )
        stages = []
        for j, st in enumerate(sched):
            if not isinstance(st, dict) or set(st) != {"share", "mixture"}:
                raise MixlawInputError(
                    f"{w}[{j}]: a stage is {{share: FRACTION, mixture: {{domain: proportion}}}}"
                )
            share = st["share"]
            if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 < share <= 1:
                raise MixlawInputError(f"{w}[{j}].share: {share!r} must be in (0, 1]")
            mix = design_mod.check_mixture(st["mixture"], train_domains, f"{w}[{j}].mixture")
            stages.append((float(share), {d: float(mix[d]) for d in train_domains}))
        total = sum(sh for sh, _ in stages)
        if abs(total - 1) > 1e-6:
            raise MixlawInputError(f"{w}: stage shares sum to {total:.6g}, not 1")
        out.append(stages)
    return out


def _parse_models(raw: object, where: str) -> list[ModelSpec]:
    if not isinstance(raw, list) or not raw:
        raise MixlawInputError(f"{where}: models: expected a list like [{{layers: 2, width: 64}}, L4-D128]")
    out = []
    for i, m in enumerate(raw):
        w = f"{where}: models[{i}]"
        if isinstance(m, str):
            import re

            mt = re.fullmatch(r"L(\d+)-D(\d+)", m.strip())
            if not mt:
                raise MixlawInputError(f"{w}: {m!r} is not a label like L2-D64")
            m = {"layers": int(mt.group(1)), "width": int(mt.group(2))}
        if not isinstance(m, dict):
            raise MixlawInputError(f"{w}: expected {{layers: N, width: N}} or a label like L2-D64")
        bad = set(m) - {"layers", "width", "heads", "steps", "lr"}
        if bad:
            raise MixlawInputError(f"{w}: unknown key(s) {sorted(bad)}")
        for key in ("layers", "width"):
            if not isinstance(m.get(key), int) or m[key] < 1:
                raise MixlawInputError(f"{w}.{key}: {m.get(key)!r} must be a positive integer")
        heads = m.get("heads", 0)
        eff_heads = heads or max(1, m["width"] // 32)
        if not isinstance(heads, int) or heads < 0 or m["width"] % eff_heads:
            raise MixlawInputError(f"{w}.heads: width {m['width']} is not divisible by {eff_heads} heads")
        if "steps" in m and (not isinstance(m["steps"], int) or m["steps"] < 1):
            raise MixlawInputError(f"{w}.steps: {m['steps']!r} must be a positive integer")
        if "lr" in m and (not isinstance(m["lr"], (int, float)) or m["lr"] <= 0):
            raise MixlawInputError(f"{w}.lr: {m['lr']!r} must be a positive number")
        out.append(
            ModelSpec(m["layers"], m["width"], heads, m.get("steps"), float(m["lr"]) if "lr" in m else None)
        )
    return out


def run_tokens(cfg: SweepConfig) -> int:
    """Training tokens of the longest run of the sweep (used for epoch caps)."""
    longest = max(m.steps or max(cfg.steps) for m in cfg.models)
    return longest * cfg.settings.batch_size * cfg.settings.seq_len


def design_mixtures(
    cfg: SweepConfig, token_counts: dict[str, int], overrides: dict | None = None
) -> list[dict[str, float]]:
    """The mixtures of the config's `design:` block (with CLI overrides) for the training domains."""
    d = {**(cfg.design or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    method = d.get("method", "dirichlet")
    n = d.get("n", None if method == "grid" else 8)
    seed = d.get("seed", 0)
    counts = {k: int(token_counts[k]) for k in cfg.train_domains}
    caps = dict(d.get("caps") or {})
    if d.get("max_epochs") is not None:
        ec = design_mod.epoch_caps(counts, run_tokens(cfg), float(d["max_epochs"]))
        caps = {k: min(caps.get(k, 1.0), v) for k, v in ec.items()}
    if method == "grid":
        return design_mod.halving_grid(
            cfg.train_domains, caps, grid=float(d.get("grid", 1 / 16)), n=n, seed=seed
        )
    kwargs = {}
    if "strength_range" in d:
        kwargs["strength_range"] = tuple(d["strength_range"])
    if "min_weight" in d:
        kwargs["min_weight"] = float(d["min_weight"])
    return design_mod.dirichlet_design(
        counts, n=n, seed=seed, temperature=float(d.get("temperature", 0.5)), caps=caps, **kwargs
    )


def build_runs(cfg: SweepConfig, corpus: Corpus) -> list[RunSpec]:
    """Expand a config into run specs: mixtures x models x steps x seeds (explicit mixtures first)."""
    mixtures = list(cfg.mixtures)
    if cfg.design is not None:
        mixtures += design_mixtures(cfg, corpus.token_counts("train"))
    init_file, init_id, init_meta = resolve_init(cfg.init_from) if cfg.init_from else ("", "", {})
    plans: list[dict[str, float] | list[tuple[float, dict[str, float]]]] = [*mixtures, *cfg.schedules]
    runs = []
    for plan in plans:
        for m in cfg.models:
            settings = cfg.settings if m.lr is None else replace(cfg.settings, lr=m.lr)
            if init_meta.get("config"):
                shape = json.loads(init_meta["config"])
                if (shape.get("n_layer"), shape.get("n_embd")) != (m.layers, m.width):
                    raise MixlawInputError(
                        f"init_from {init_file}: weights of L{shape.get('n_layer')}-D{shape.get('n_embd')}"
                        f" do not fit model {m.label}"
                    )
            for st in [m.steps] if m.steps else cfg.steps:
                if isinstance(plan, dict):
                    mixture, stages = tuple((d, float(plan[d])) for d in cfg.train_domains), ()
                else:
                    mixture = schedule_mixture(plan, st, cfg.train_domains)
                    stages = tuple(
                        (share, tuple((d, mix[d]) for d in cfg.train_domains)) for share, mix in plan
                    )
                for seed in cfg.seeds:
                    runs.append(
                        RunSpec(
                            mixture=mixture,
                            layers=m.layers,
                            width=m.width,
                            heads=m.heads,
                            steps=st,
                            seed=seed,
                            settings=settings,
                            corpus_id=corpus.id,
                            valid_domains=tuple(cfg.valid_domains),
                            corpus_dir=str(corpus.path),
                            stages=stages,
                            init_id=init_id,
                            init_from=init_file,
                        )
                    )
    return runs


def planned_steps(spec: RunSpec) -> int:
    """Optimizer steps a run performs, cooldown branches included."""
    s = spec.settings
    if s.schedule != "wsd":
        return spec.steps
    evs = resolve_eval_steps(s, spec.steps)
    return max(cooldown_start(s, e) for e in evs) + sum(e - cooldown_start(s, e) for e in evs)


def repetition_report(runs: Sequence[RunSpec], corpus: Corpus) -> list[str]:
    """One line per (run, domain) that repeats training data (more than one epoch)."""
    avail = corpus.token_counts("train")
    lines = []
    for r in runs:
        toks = r.steps * r.settings.batch_size * r.settings.seq_len
        for d, p in r.mixture:
            if p > 0 and avail.get(d, 0) and p * toks / avail[d] > 1.0:
                lines.append(
                    f"run {r.run_id} ({r.model_label}, {r.steps} steps): {p * toks / avail[d]:.2f} epochs of {d}"
                )
    return lines


# --------------------------------------------------------------------------------------------- driver


def read_results(runs: Sequence[RunSpec], out_dir: str | Path) -> pd.DataFrame:
    """The runs table of the finished runs among `runs`, in run order. Validation domains are written in the
    canonical spelling of the `p_` columns (`math_prose`, not the corpus's `math-prose`): one spelling per
    domain in every table, law and optimum made from a sweep."""
    out = Path(out_dir)
    frames = []
    for r in runs:
        f = out / "runs" / r.run_id / RESULT
        if f.is_file():
            frames.append(pd.read_csv(f, dtype=TABLE_DTYPES))
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    if "valid_domain" in frame.columns:
        frame["valid_domain"] = frame["valid_domain"].map(column_name)
    return frame


class _Progress:
    """Polls the runs' progress files; prints runs done, tokens/s and time left on stderr.

    Time left comes from a `JobEta` (`mixlaw.train.eta`): seconds per step measured per model size, a FLOPs
    prior for sizes not seen yet, the runs placed on the executor's slots. Given a job's `eta` (whose current
    stage is this sweep), the line also says the whole job's time left."""

    def __init__(
        self,
        runs: Sequence[RunSpec],
        out: Path,
        done: set[str],
        enabled: bool,
        workers: int = 1,
        eta: JobEta | None = None,
    ) -> None:
        self.runs = {r.run_id: r for r in runs}
        self.out = out
        self.done = set(done)
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.t0 = time.time()
        self.job = eta
        if eta is None:
            eta = JobEta([Stage("sweep", plan_runs(runs, _vocab(runs), planned_steps))], workers=workers)
            eta.start("sweep")
        self.eta = eta
        self.base = self._work()
        self._stop = threading.Event()
        self._last_plain = time.time()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _work(self) -> tuple[int, int]:
        """(tokens done, tokens planned) over all runs, counting finished runs in full; each run's progress is
        passed to the ETA."""
        done = planned = 0
        for rid, r in self.runs.items():
            per = r.settings.batch_size * r.settings.seq_len
            steps = planned_steps(r)
            planned += steps * per
            try:
                info = json.loads((self.out / "runs" / rid / PROGRESS).read_text())
                work = min(int(info.get("work_done", 0)), steps)
                self.eta.observe(
                    rid, r.model_label, work, steps, float(info.get("elapsed", 0.0)), rid in self.done
                )
            except (OSError, ValueError, TypeError):
                work = 0
            done += steps * per if rid in self.done else work * per
        return done, planned

    def line(self) -> str:
        done, planned = self._work()
        el = max(1e-6, time.time() - self.t0)
        rate = max(0, done - self.base[0]) / el
        left = self.eta.current_left()
        eta = "?" if left is None else _fmt_time(left)
        text = (
            f"sweep: {len(self.done)}/{len(self.runs)} runs done | {rate / 1e3:,.1f}k tok/s | "
            f"{done / 1e6:,.2f}M/{planned / 1e6:,.2f}M tokens | {_fmt_time(el)} elapsed, ~{eta} left"
        )
        return text + (f" | {self.job.line()}" if self.job is not None else "")

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.emit(force=False)

    def emit(self, force: bool) -> None:
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + self.line())
            sys.stderr.flush()
        elif force or time.time() - self._last_plain >= 30:
            print(self.line(), file=sys.stderr, flush=True)
            self._last_plain = time.time()

    def run_done(self, rid: str, message: str) -> None:
        self.done.add(rid)
        if self.enabled:
            if self.tty:
                sys.stderr.write("\r\x1b[2K")
            print(message, file=sys.stderr, flush=True)
            self.emit(force=True)

    def __enter__(self) -> _Progress:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.enabled and self.tty:
            sys.stderr.write("\n")


_fmt_time = format_seconds


def _vocab(runs: Sequence[RunSpec]) -> int:
    """The tokenizer's vocabulary size from the runs' corpus manifest (0 when it cannot be read here: the FLOPs
    prior then leaves out the embedding term)."""
    try:
        manifest = json.loads((Path(runs[0].corpus_dir) / "manifest.json").read_text())
        return int(manifest["tokenizer"]["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return 0


def run_sweep(
    runs: Sequence[RunSpec],
    out_dir: str | Path,
    executor: Executor | None = None,
    progress: bool = True,
    table: str = "runs.csv",
    parquet: bool = False,
    eta: JobEta | None = None,
) -> pd.DataFrame:
    """Run (or resume) `runs` into `out_dir` and return the runs table of all of them.

    `eta`: the job's time-left estimate, its current stage this sweep (`mixlaw run`); the progress lines then
    say the whole job's time left too.

    Finished runs are skipped, interrupted runs resume from their last checkpoint; `DIR/runs.csv` is rewritten
    atomically after each run finishes. Raises SweepError after all runs are tried if some failed. On
    KeyboardInterrupt an executor with `interrupt()` is told to stop its workers at a checkpoint."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unique: dict[str, RunSpec] = {}
    for r in runs:
        unique.setdefault(r.run_id, r)
    runs = list(unique.values())
    if not runs:
        raise MixlawInputError("sweep: no runs to do")
    with locked(out / LOCK, busy=_busy(out)):
        _remove_stale_tmp(out)
        atomic_write(out / "sweep.json", json.dumps({"runs": [r.to_dict() for r in runs]}, indent=1).encode())
        for r in runs:
            rd = out / "runs" / r.run_id
            rd.mkdir(parents=True, exist_ok=True)
            if not (rd / "spec.json").is_file():
                atomic_write(rd / "spec.json", json.dumps(r.to_dict(), indent=1).encode())
        finished = {r.run_id for r in runs if (out / "runs" / r.run_id / RESULT).is_file()}
        todo = [r for r in runs if r.run_id not in finished]
        if finished:
            log.info("sweep: %d of %d runs already finished; skipping them", len(finished), len(runs))

        def save_table() -> pd.DataFrame:
            frame = read_results(runs, out)
            if not frame.empty:
                write_runs(frame, out / table, TRAINER_FLOAT_FORMAT)
                if parquet:
                    write_runs(frame, (out / table).with_suffix(".parquet"))
            return frame

        frame = save_table()
        failures: list[tuple[RunSpec, BaseException]] = []
        if todo:
            own = executor is None
            if executor is None:
                executor = LocalExecutor(workers=min(len(todo), os.cpu_count() or 1))
            slots = int(getattr(executor, "workers", 1) or 1)
            with _Progress(runs, out, finished, progress, slots, eta) as prog:
                try:
                    failures = _execute(todo, executor, out, prog, save_table)
                except KeyboardInterrupt:
                    if hasattr(executor, "interrupt"):
                        executor.interrupt()
                    raise
                finally:
                    if own:
                        executor.shutdown(wait=True, cancel_futures=True)
            frame = read_results(runs, out)
        elif eta is not None:  # nothing left to train: the finished runs still measure the job's throughput
            _Progress(runs, out, finished, False, 1, eta)
        if failures:
            _raise_failures(failures, len(runs), out)
        return frame


def _execute(
    todo: list[RunSpec],
    executor: Executor,
    out: Path,
    prog: _Progress,
    save_table: Callable[[], pd.DataFrame],
) -> list[tuple[RunSpec, BaseException]]:
    """Submit every run, rewrite the table as each finishes; the failures, each with an `error.txt`."""
    failures: list[tuple[RunSpec, BaseException]] = []
    futures = {executor.submit(execute_run, r.to_dict(), str(out / "runs" / r.run_id)): r for r in todo}
    for fut in cf.as_completed(futures):
        r = futures[fut]
        try:
            res = fut.result()
            save_table()
            prog.run_done(
                r.run_id,
                f"sweep: run {r.run_id} {r.model_label} {r.steps} steps finished in {res['seconds']:.1f}s",
            )
        except Exception as exc:  # noqa: BLE001 - keep going; report at the end
            failures.append((r, exc))
            atomic_write(out / "runs" / r.run_id / "error.txt", f"{type(exc).__name__}: {exc}\n".encode())
            prog.run_done(r.run_id, f"sweep: run {r.run_id} FAILED: {type(exc).__name__}: {exc}")
    return failures


def _raise_failures(failures: list[tuple[RunSpec, BaseException]], n_runs: int, out: Path) -> None:
    r, exc = failures[0]
    if all(isinstance(e, MixlawInputError) for _, e in failures):
        raise MixlawInputError(f"{len(failures)} of {n_runs} runs failed; first ({r.run_id}): {exc}")
    raise SweepError(
        f"{len(failures)} of {n_runs} runs failed; first ({r.run_id}): "
        f"{type(exc).__name__}: {exc} (see {out}/runs/<id>/error.txt; rerun to retry)"
    )


def _busy(out: Path) -> str:
    return f"{out}: another sweep is running in this folder"


def check_folder_free(out_dir: str | Path) -> None:
    """Refuse a folder that another sweep is writing, before any work (`run_sweep` holds the lock itself)."""
    lock = Path(out_dir) / LOCK
    if lock.is_file():
        with locked(lock, busy=_busy(Path(out_dir))):
            pass


_TMP = re.compile(r"\..+\.\d+\.tmp")  # `files.replacing`'s temporary files: .NAME.PID.tmp


def _remove_stale_tmp(out: Path) -> None:
    """Temporary files of a killed sweep (under the lock, no one else writes them)."""
    for path in [*out.glob(".*.tmp"), *out.glob("runs/*/.*.tmp")]:
        if _TMP.fullmatch(path.name):
            path.unlink(missing_ok=True)


def prepare_sweep(
    cfg: SweepConfig, cache_dir: str | Path | None = None, rebuild: bool = False
) -> tuple[Corpus, list[RunSpec]]:
    """Build (or reuse) the corpus of a config and expand its runs."""
    corpus = prepare_corpus(cfg.corpus, cache_dir=cache_dir, rebuild=rebuild)
    for r in cfg.train_domains:
        info = corpus.domain_info(r)
        if info["tokens"]["train"] < cfg.settings.seq_len + 1:
            raise MixlawInputError(
                f"{cfg.path}: domain {r!r} has only {info['tokens']['train']} training tokens "
                f"(needs more than seq_len = {cfg.settings.seq_len}); add data or raise its budget"
            )
    for d in cfg.valid_domains:
        if corpus.domain_info(d)["tokens"]["valid"] < 2:
            raise MixlawInputError(
                f"{cfg.path}: domain {d!r} has no validation tokens; raise valid_fraction or its budget, "
                "or leave it out of valid_domains"
            )
    return corpus, build_runs(cfg, corpus)
