"""Run specifications and their content hashes (no torch import here)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace

from mixlaw.errors import MixlawInputError

TRAINER_VERSION = 1
SCHEDULES = ("constant", "wsd")
# Settings that change how a run is executed but not its result; they are left out of the run id.
OPERATIONAL = ("checkpoint_every", "checkpoint_seconds", "device", "threads")


@dataclass(frozen=True)
class TrainSettings:
    """Optimization and evaluation settings shared by the runs of a sweep.

    Units: batch_size in sequences, seq_len in tokens, steps in optimizer steps, eval_tokens per validation
    domain, checkpoint_seconds in wall-clock seconds."""

    batch_size: int = 16
    seq_len: int = 128
    lr: float = 3e-3
    warmup_steps: int = 20
    schedule: str = "constant"  # constant LR after warmup, or wsd (warmup-stable-decay with a cooldown branch)
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


@dataclass(frozen=True)
class RunSpec:
    """One proxy run: a mixture, a model shape, a length and a seed, on a prepared corpus.

    `mixture` holds (domain, proportion) for every training domain of the sweep (zeros included), in order."""

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
        return {
            "trainer": TRAINER_VERSION,
            "mixture": [[d, round(float(p), 10)] for d, p in self.mixture],
            "model": {"layers": self.layers, "width": self.width, "heads": self.heads},
            "steps": self.steps,
            "seed": self.seed,
            "settings": settings,
            "corpus": self.corpus_id,
            "valid_domains": list(self.valid_domains),
        }

    @property
    def run_id(self) -> str:
        """Content hash of `identity()` (16 hex digits): same spec, same id, on any machine."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mixture"] = [list(x) for x in self.mixture]
        d["run_id"] = self.run_id
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        d = dict(d)
        d.pop("run_id", None)
        s = dict(d.pop("settings", {}))
        s["eval_steps"] = tuple(s.get("eval_steps", ()))
        return cls(
            mixture=tuple((str(a), float(b)) for a, b in d.pop("mixture")),
            valid_domains=tuple(d.pop("valid_domains", ())),
            settings=TrainSettings(**s),
            **d,
        )

    def with_corpus(self, corpus_id: str, corpus_dir: str) -> RunSpec:
        return replace(self, corpus_id=corpus_id, corpus_dir=corpus_dir)


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
    out = {}
    for key, value in raw.items():
        default = getattr(TrainSettings(), key)
        w = f"{where}.{key}"
        if key == "eval_steps":
            if not isinstance(value, list) or not all(isinstance(x, int) and x > 0 for x in value):
                raise MixlawInputError(f"{w}: {value!r} must be a list of positive integers")
            out[key] = tuple(value)
        elif key in ("schedule", "device"):
            if not isinstance(value, str):
                raise MixlawInputError(f"{w}: {value!r} must be a string")
            if key == "schedule" and value not in SCHEDULES:
                raise MixlawInputError(f"{w}: {value!r} is not one of {list(SCHEDULES)}")
            out[key] = value
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise MixlawInputError(f"{w}: {value!r} must be a non-negative integer")
            out[key] = value
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or not math.isfinite(value):
                raise MixlawInputError(f"{w}: {value!r} must be a non-negative number")
            out[key] = float(value)
    s = TrainSettings(**out)
    for key in ("batch_size", "seq_len", "threads", "eval_tokens"):
        if getattr(s, key) < 1:
            raise MixlawInputError(f"{where}.{key}: must be at least 1")
    if s.lr <= 0:
        raise MixlawInputError(f"{where}.lr: {s.lr!r} must be positive")
    if not 0 < s.cooldown_fraction < 1:
        raise MixlawInputError(f"{where}.cooldown_fraction: {s.cooldown_fraction!r} must be between 0 and 1")
    return s
