"""Run specifications and their content hashes (no torch import here)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace

from mixlaw.errors import MixlawInputError
from mixlaw.mixture import Domains, Mixture

TRAINER_VERSION = 1
SCHEDULES = ("constant", "wsd")
# Settings that change how a run is executed but not its result; they are left out of the run id.
OPERATIONAL = ("checkpoint_every", "checkpoint_seconds", "device", "threads", "save_model")
DEVICES = r"auto|cpu|mps|cuda(:\d+)?"  # the `device` values the trainer knows


def mixture_pairs(mix: dict[str, float], domains: list[str]) -> tuple[tuple[str, float], ...]:
    """RunSpec pairs of a mixture (or of weights: token counts, 1 each) over `domains`: shares proportional to the
    values, rounded to 6 decimals, summing to exactly 1 (the remainder goes to the largest share)."""
    known, weights = Domains(domains), dict.fromkeys(domains, 0.0)
    for name, value in mix.items():
        weights[known.resolve(name, "mixture")] += value
    return Mixture.from_weights(weights, "mixture").rounded().pairs()


@dataclass(frozen=True)
class TrainSettings:
    """Optimization and evaluation settings shared by the runs of a sweep.

    Units: batch_size in sequences, seq_len in tokens, steps in optimizer steps, eval_tokens per validation
    domain, checkpoint_seconds in wall-clock seconds."""

    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    warmup_steps: int = 20
    schedule: str = (
        "constant"  # constant LR after warmup, or wsd (warmup-stable-decay with a cooldown branch)
    )
    cooldown_fraction: float = 0.2  # wsd: cooldown length as a fraction of each evaluated length
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.95
    eval_steps: tuple[int, ...] = ()  # explicit checkpoints; empty = `eval_points` log-spaced ones
    eval_points: int = 6
    eval_tokens: int = 8192
    checkpoint_every: int = 200
    checkpoint_seconds: float = 30.0
    device: str = "auto"  # auto = cuda if available else cpu
    threads: int = 1
    save_model: bool = False  # also write the final weights to model.safetensors (for --init-from)


@dataclass(frozen=True)
class RunSpec:
    """One proxy run: a mixture, a model shape, a length and a seed, on a prepared corpus.

    `mixture` holds (domain, proportion) for every training domain of the sweep (zeros included), in order.
    A multi-stage schedule lists `stages` as (share of steps, mixture) pairs; `mixture` is then the schedule's
    overall (token-weighted) mixture. `init_from` is a weights file to start from (its content hash `init_id`
    is part of the run id; the path is not). Runs without stages or init have the same ids as before."""

    mixture: tuple[tuple[str, float], ...]
    layers: int
    width: int
    steps: int
    seed: int = 0
    heads: int = 0
    settings: TrainSettings = field(default_factory=TrainSettings)
    corpus_id: str = ""
    valid_domains: tuple[str, ...] = ()
    corpus_dir: str = ""  # where the prepared corpus lives on this machine; not part of the id
    stages: tuple[tuple[float, tuple[tuple[str, float], ...]], ...] = ()
    init_id: str = ""
    init_from: str = ""  # path of the initial weights on this machine; not part of the id

    @property
    def model_label(self) -> str:
        return f"L{self.layers}-D{self.width}"

    @property
    def proportions(self) -> dict[str, float]:
        return dict(self.mixture)

    def identity(self) -> dict:
        """Everything that determines the result (the content that is hashed into the run id)."""
        settings = {k: v for k, v in asdict(self.settings).items() if k not in OPERATIONAL}
        settings["eval_steps"] = list(resolve_eval_steps(self.settings, self.steps))
        ident = {
            "trainer": TRAINER_VERSION,
            "mixture": [[d, round(float(p), 10)] for d, p in self.mixture],
            "model": {"layers": self.layers, "width": self.width, "heads": self.heads},
            "steps": self.steps,
            "seed": self.seed,
            "settings": settings,
            "corpus": self.corpus_id,
            "valid_domains": list(self.valid_domains),
        }
        if self.stages:  # keys only present when used, so older run ids do not change
            ident["stages"] = [
                [round(float(share), 10), [[d, round(float(p), 10)] for d, p in mix]]
                for share, mix in self.stages
            ]
        if self.init_id:
            ident["init"] = self.init_id
        return ident

    @property
    def run_id(self) -> str:
        """Content hash of `identity()` (16 hex digits): same spec, same id, on any machine."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mixture"] = [list(x) for x in self.mixture]
        d["stages"] = [[share, [list(x) for x in mix]] for share, mix in self.stages]
        d["run_id"] = self.run_id
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        d = dict(d)
        d.pop("run_id", None)
        s = dict(d.pop("settings", {}))
        s["eval_steps"] = tuple(s.get("eval_steps", ()))
        stages = tuple(
            (float(share), Mixture.from_pairs(mix, "run spec: stage mixture").pairs())
            for share, mix in d.pop("stages", ())
        )
        return cls(
            mixture=Mixture.from_pairs(d.pop("mixture"), "run spec: mixture").pairs(),
            stages=stages,
            valid_domains=tuple(d.pop("valid_domains", ())),
            settings=TrainSettings(**s),
            **d,
        )

    def with_corpus(self, corpus_id: str, corpus_dir: str) -> RunSpec:
        return replace(self, corpus_id=corpus_id, corpus_dir=corpus_dir)


def stage_plan(spec: RunSpec) -> list[tuple[int, dict[str, float]]]:
    """(end step, proportions) of each stage; one stage (the run's mixture) for a static run.

    Stage k ends at round(cumulative share x steps); the last stage always ends at `spec.steps`."""
    if not spec.stages:
        return [(spec.steps, spec.proportions)]
    out, acc = [], 0.0
    for share, mix in spec.stages:
        acc += share
        out.append((min(spec.steps, round(acc * spec.steps)), dict(mix)))
    out[-1] = (spec.steps, out[-1][1])
    return out


def schedule_mixture(
    stages: list[tuple[float, dict[str, float]]], steps: int, domains: list[str]
) -> tuple[tuple[str, float], ...]:
    """Overall mixture of a schedule at `steps` steps: each stage weighted by its (rounded) number of steps."""
    bounds, acc, prev = [], 0.0, 0
    for share, _ in stages:
        acc += share
        bounds.append(min(steps, round(acc * steps)))
    bounds[-1] = steps
    total = {d: 0.0 for d in domains}
    for (_, mix), end in zip(stages, bounds):
        for d in domains:
            total[d] += mix.get(d, 0.0) * (end - prev)
        prev = end
    return tuple((d, total[d] / steps) for d in domains)


def resolve_eval_steps(s: TrainSettings, steps: int) -> tuple[int, ...]:
    """Evaluated lengths: explicit `eval_steps` (capped at `steps`), else `eval_points` log-spaced up to `steps`.

    The default range starts at max(2 x warmup, steps / 16) so that no point lies inside the warmup."""
    if s.eval_steps:
        pts = sorted({int(x) for x in s.eval_steps if 0 < int(x) <= steps} | {steps})
        return tuple(pts)
    lo = max(1, min(steps, max(2 * s.warmup_steps, steps // 16)))
    n = max(1, s.eval_points)
    if n == 1 or lo == steps:
        return (steps,)
    pts = {round(math.exp(math.log(lo) + (math.log(steps) - math.log(lo)) * i / (n - 1))) for i in range(n)}
    return tuple(sorted(p for p in pts if 0 < p <= steps))


def cooldown_start(s: TrainSettings, length: int) -> int:
    """wsd: the step at which the cooldown branch for an evaluated `length` starts."""
    c = max(1, round(s.cooldown_fraction * length))
    return max(0, length - c)


def parse_settings(raw: object, where: str = "training") -> TrainSettings:
    """Validate a `training:` mapping into TrainSettings; errors name the key and the value."""
    if raw is None:
        return TrainSettings()
    if not isinstance(raw, dict):
        raise MixlawInputError(f"{where}: expected a mapping of training settings")
    fields = TrainSettings.__dataclass_fields__
    unknown = set(raw) - set(fields)
    if unknown:
        raise MixlawInputError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(fields)})")
    out = {key: _setting(key, value, f"{where}.{key}") for key, value in raw.items()}
    s = TrainSettings(**out)
    for key in ("batch_size", "seq_len", "threads", "eval_tokens"):
        if getattr(s, key) < 1:
            raise MixlawInputError(f"{where}.{key}: must be at least 1")
    if s.lr <= 0:
        raise MixlawInputError(f"{where}.lr: {s.lr!r} must be positive")
    if not 0 < s.cooldown_fraction < 1:
        raise MixlawInputError(f"{where}.cooldown_fraction: {s.cooldown_fraction!r} must be between 0 and 1")
    return s


def _setting(key: str, value: object, w: str) -> object:
    """One `training:` value checked against the type of its TrainSettings default (`w` names it in errors)."""
    default = getattr(TrainSettings(), key)
    if key == "eval_steps":
        if not isinstance(value, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in value
        ):
            raise MixlawInputError(f"{w}: {value!r} must be a list of positive integers")
        return tuple(value)
    if key in ("schedule", "device"):
        if not isinstance(value, str):
            raise MixlawInputError(f"{w}: {value!r} must be a string")
        if key == "schedule" and value not in SCHEDULES:
            raise MixlawInputError(f"{w}: {value!r} is not one of {list(SCHEDULES)}")
        if key == "device" and not re.fullmatch(DEVICES, value):
            raise MixlawInputError(f"{w}: {value!r} is not a device (auto, cpu, cuda, cuda:N or mps)")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise MixlawInputError(f"{w}: {value!r} must be true or false")
        return value
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MixlawInputError(f"{w}: {value!r} must be a non-negative integer")
        return value
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or value < 0
        or not math.isfinite(value)
    ):
        raise MixlawInputError(f"{w}: {value!r} must be a non-negative number")
    return float(value)


def check_device(name: str, where: str = "training.device") -> None:
    """Refuse a `device` this machine does not have (imports torch only for cuda and mps; without torch the
    sweep itself says it needs PyTorch)."""
    if name in ("auto", "cpu"):
        return
    try:
        import torch
    except ImportError:
        return
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MixlawInputError(f"{where}: {name!r} requested but CUDA is not available on this machine")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise MixlawInputError(
                f"{where}: {name!r} but this machine has {torch.cuda.device_count()} GPU(s)"
            )
    elif name == "mps" and not torch.backends.mps.is_available():
        raise MixlawInputError(f"{where}: 'mps' requested but MPS is not available on this machine")


MODEL_FILE = "model.safetensors"


def _safetensors_metadata(path) -> dict:
    """The `__metadata__` of a safetensors file, read from its JSON header (no torch needed)."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise MixlawInputError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise MixlawInputError(f"{path}: not a safetensors file (bad header)")
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            raise MixlawInputError(f"{path}: not a safetensors file (bad header)") from None
    return dict(header.get("__metadata__") or {})


def resolve_init(path) -> tuple[str, str, dict]:
    """Find the weights of `--init-from PATH` and identify them: (file, content id, metadata).

    PATH is a safetensors file (a finished run's model.safetensors or a mid-run checkpoint.safetensors), a run
    folder holding model.safetensors, or a sweep folder with exactly one runs/<id>/model.safetensors. The id is
    the sha256 (16 hex digits) of the file's bytes, so the same weights give the same run ids anywhere."""
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir():
        if (p / MODEL_FILE).is_file():
            p = p / MODEL_FILE
        else:
            found = sorted(p.glob(f"runs/*/{MODEL_FILE}"))
            if len(found) != 1:
                what = (
                    "none" if not found else f"{len(found)} ({', '.join(f.parent.name for f in found[:5])})"
                )
                raise MixlawInputError(
                    f"--init-from {path}: expected one {MODEL_FILE} in the folder or its runs/*/, "
                    f"found {what}; pass the file itself (train the base with save_model: true)"
                )
            p = found[0]
    if not p.is_file():
        raise MixlawInputError(f"--init-from {path}: file not found")
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return str(p.resolve()), digest, _safetensors_metadata(p)
