"""Time left in a sweep or a whole `mixlaw run` job, from the planned runs of every stage and measured seconds
per step. (Here, beside the sweep, so that `train.sweep` uses it for a plain sweep too; `job.stages` builds the
job's stages.)

A job is a list of stages, each either training runs (`Stage.runs`: groups of runs of one model size and length)
or other work with a prior duration (`Stage.seconds`: the pipeline fit, the report). Adding a stage means adding
its `Stage`; nothing else changes:

    eta = JobEta([Stage("proxies", plan_runs(proxy_specs, vocab)), Stage("pipeline", seconds=20.0),
                  Stage("validation", plan_runs(validation_specs, vocab))], workers=2)
    eta.start("proxies")
    eta.observe("run-id", "L2-D32", steps_done=120, steps=250, seconds=3.1)   # from the runs' progress files
    eta.remaining()                                                             # seconds left in the job, or None

Throughput is measured per model size (seconds per optimizer step, over every run of that size seen so far in
this job, finished or running, evaluation included). A size not seen yet gets a prior from the sizes seen:
seconds per step = a * FLOPs-per-step**g, fitted on log-log over the seen sizes (g in [0.3, 1]; with one seen
size g = 1, the FLOPs ratio). Small models on CPU are overhead-bound, which is why g < 1 is allowed. The runs
left in a stage are placed on `workers` slots longest first (as the sweep submits them), behind the runs still
going, and the stage lasts until the last slot is free.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Bounds of the fitted FLOPs exponent (seconds per step ~ FLOPs**g) for sizes not measured yet.
MIN_EXPONENT, MAX_EXPONENT = 0.3, 1.0
# A running run's rate is used once it has done this share of its steps (its start-up is then amortized).
SETTLED = 0.2


@dataclass(frozen=True)
class PlannedRuns:
    """`count` runs of one model size and length. flops_per_step: training FLOPs per optimizer step (only
    ratios between sizes matter); steps: optimizer steps per run (cooldown branches included)."""

    size: str
    flops_per_step: float
    steps: int
    count: int = 1


@dataclass(frozen=True)
class Stage:
    """A stage of the job: training runs, or other work lasting about `seconds` (a prior, wall seconds)."""

    name: str
    runs: tuple[PlannedRuns, ...] = ()
    seconds: float = 0.0
    workers: int | None = None  # slots of this stage's executor (default: the job's)


def flops_per_step(layers: int, width: int, vocab: int, seq_len: int, batch_size: int) -> float:
    """Training FLOPs of one optimizer step of the trainer's GPT (6 x matmul parameters + attention scores per
    token, as `GPT.flops_per_token`, with 12 L d^2 non-embedding parameters), times tokens per step."""
    matmul_params = 12 * layers * width**2 + vocab * width
    return (6.0 * matmul_params + 12.0 * layers * width * seq_len) * batch_size * seq_len


def plan_runs(
    specs: Iterable[Any], vocab: int, steps_of: Callable[[Any], int] | None = None
) -> tuple[PlannedRuns, ...]:
    """Group RunSpecs (anything with layers, width, steps, model_label, settings.batch_size/seq_len) by size and
    length. `steps_of` gives a run's optimizer steps (default `spec.steps`; the sweep passes `planned_steps`)."""
    groups: dict[tuple[str, int], list] = {}
    for s in specs:
        steps = int(steps_of(s) if steps_of else s.steps)
        key = (s.model_label, steps)
        groups.setdefault(key, [s, 0])[1] += 1
    return tuple(
        PlannedRuns(
            size,
            flops_per_step(s.layers, s.width, vocab, s.settings.seq_len, s.settings.batch_size),
            steps,
            n,
        )
        for (size, steps), (s, n) in groups.items()
    )


def loaded_seconds(cpu_seconds: float) -> float:
    """Wall seconds of `cpu_seconds` of single-threaded work on this machine now: the share of a core a process
    gets under the 1-minute load average (at least a whole core)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not every platform has a load average
        load = 0.0
    return cpu_seconds * max(1.0, load / (os.cpu_count() or 1))


@dataclass
class _Seen:
    """One run's latest measurement."""

    size: str
    steps_done: int
    steps: int
    seconds: float
    finished: bool


@dataclass
class JobEta:
    """Time left in a job of `stages` run one after the other, training on `workers` slots (see module doc)."""

    stages: Sequence[Stage]
    workers: int = 1
    clock: Callable[[], float] = time.monotonic
    _current: int = -1
    _stage_started: float = 0.0
    _seen: dict[str, _Seen] = field(default_factory=dict)  # run id -> latest measurement, this stage
    _rates: dict[str, tuple[float, float]] = field(
        default_factory=dict
    )  # size -> (seconds, steps), past stages
    _flops: dict[str, float] = field(default_factory=dict)
    started: float = 0.0  # clock() when the job started

    def __post_init__(self) -> None:
        self.started = self.started or self.clock()
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}")
        for st in self.stages:
            for p in st.runs:
                self._flops[p.size] = p.flops_per_step

    # ---------------------------------------------------------------------------------------- measurements

    def start(self, name: str) -> None:
        """Stage `name` begins (the stages before it are done)."""
        index = [s.name for s in self.stages].index(name)
        self._close_stage()
        self._current, self._stage_started = index, self.clock()

    def observe(
        self, run: str, size: str, steps_done: int, steps: int, seconds: float, finished: bool = False
    ) -> None:
        """The latest measurement of run `run` of the current stage: `steps_done` of `steps` optimizer steps in
        `seconds` of training (wall)."""
        self._seen[run] = _Seen(size, int(steps_done), int(steps), float(seconds), bool(finished))

    def _close_stage(self) -> None:
        for s in self._seen.values():
            if s.steps_done > 0 and (s.finished or s.steps_done >= SETTLED * s.steps):
                sec, steps = self._rates.get(s.size, (0.0, 0.0))
                self._rates[s.size] = (sec + s.seconds, steps + s.steps_done)
        self._seen.clear()

    def seconds_per_step(self) -> dict[str, float]:
        """Measured seconds per step of every size seen so far (past stages and the runs of this one).

        A run's first steps carry its start-up (data, evaluation at the first eval point), so a run still
        going counts once it is `SETTLED` of the way through; a size with no such run yet gets the prior, unless
        nothing at all has settled (the very start of a job)."""
        settled = self._totals(lambda s: s.finished or s.steps_done >= SETTLED * s.steps)
        totals = settled if settled else self._totals(lambda s: True)
        return {k: sec / steps for k, (sec, steps) in totals.items() if steps > 0 and sec > 0}

    def _totals(self, use: Callable[[_Seen], bool]) -> dict[str, tuple[float, float]]:
        totals = dict(self._rates)
        for s in self._seen.values():
            if s.steps_done > 0 and use(s):
                sec, steps = totals.get(s.size, (0.0, 0.0))
                totals[s.size] = (sec + s.seconds, steps + s.steps_done)
        return totals

    def rate_model(self) -> Callable[[str, float], float] | None:
        """seconds per step of a size (name, FLOPs per step): measured, else the FLOPs prior; None before any
        measurement."""
        measured = self.seconds_per_step()
        points = [(math.log(self._flops[k]), math.log(v)) for k, v in measured.items() if k in self._flops]
        if not measured:
            return None
        if len(points) >= 2 and len({x for x, _ in points}) >= 2:
            mx = sum(x for x, _ in points) / len(points)
            my = sum(y for _, y in points) / len(points)
            slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
            g = min(MAX_EXPONENT, max(MIN_EXPONENT, slope))
            intercept = my - g * mx
        elif points:
            g, intercept = 1.0, points[0][1] - points[0][0]
        else:  # measured sizes without FLOPs: their mean rate
            mean = sum(measured.values()) / len(measured)
            return lambda size, flops: measured.get(size, mean)

        def rate(size: str, flops: float) -> float:
            if size in measured:
                return measured[size]
            return math.exp(intercept + g * math.log(flops))

        return rate

    # ---------------------------------------------------------------------------------------- estimates

    def stage_left(self, index: int, rate: Callable[[str, float], float]) -> float:
        """Seconds left in stage `index` (the current one counts what is done and running)."""
        stage = self.stages[index]
        if not stage.runs:
            if index == self._current:
                return max(0.0, stage.seconds - (self.clock() - self._stage_started))
            return stage.seconds
        queued: list[PlannedRuns] = []
        left = {(p.size, p.steps): p.count for p in stage.runs}
        running: list[float] = []
        if index == self._current:
            for s in self._seen.values():
                key = (s.size, s.steps)
                if left.get(key, 0) > 0:
                    left[key] -= 1
                if not s.finished and s.steps_done < s.steps:
                    flops = self._flops.get(s.size, 0.0)
                    running.append((s.steps - s.steps_done) * rate(s.size, flops))
        for p in stage.runs:
            queued += [p] * left[(p.size, p.steps)]
        costs = sorted((p.steps * rate(p.size, p.flops_per_step) for p in queued), reverse=True)
        return _makespan(running, costs, stage.workers or self.workers)

    def remaining(self) -> float | None:
        """Seconds left in the whole job (the current stage and every later one); None before any run has
        reported a step (no throughput measured yet)."""
        rate = self.rate_model()
        if rate is None:
            return None
        first = max(self._current, 0)
        return sum(self.stage_left(i, rate) for i in range(first, len(self.stages)))

    def current_left(self) -> float | None:
        """Seconds left in the current stage; None before any measurement."""
        rate = self.rate_model()
        return None if rate is None or self._current < 0 else self.stage_left(self._current, rate)

    def line(self) -> str:
        """`job 1m02s elapsed, ~12m30s left` (`?` before any measurement)."""
        left = self.remaining()
        return (
            f"job {format_seconds(self.clock() - self.started)} elapsed, "
            f"~{'?' if left is None else format_seconds(left)} left"
        )


def _makespan(running: list[float], queued: list[float], workers: int) -> float:
    """When the last of `workers` slots is free: the running runs' remaining seconds first, then `queued` (in
    order) each on the slot free earliest."""
    slots = sorted(running)[-workers:] if len(running) > workers else list(running)
    slots += [0.0] * (max(1, workers) - len(slots))
    for cost in queued:
        slots.sort()
        slots[0] += cost
    return max(slots)


def format_seconds(sec: float) -> str:
    """4s, 2m05s, 1h03m."""
    sec = int(round(sec))
    if sec >= 3600:
        return f"{sec // 3600}h{sec % 3600 // 60:02d}m"
    return f"{sec // 60}m{sec % 60:02d}s" if sec >= 60 else f"{sec}s"
