"""The job ETA (`mixlaw.train.eta`) on synthetic timings: no training."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from mixlaw.train.eta import (
    MIN_EXPONENT,
    JobEta,
    PlannedRuns,
    Stage,
    _makespan,
    flops_per_step,
    format_seconds,
    plan_runs,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nothing_measured_means_no_estimate():
    eta = JobEta([Stage("proxies", (PlannedRuns("a", 1e6, 100, 3),))])
    eta.start("proxies")
    assert eta.remaining() is None
    assert eta.line().endswith("~? left")


def test_one_size_finished_and_running_runs():
    clock = Clock()
    eta = JobEta([Stage("proxies", (PlannedRuns("a", 1e6, 100, 4),))], workers=1, clock=clock)
    eta.start("proxies")
    eta.observe("r1", "a", 100, 100, 20.0, finished=True)  # 0.2 s per step
    eta.observe("r2", "a", 50, 100, 10.0)
    # r2: 50 steps left, then two queued runs of 100 steps, one slot: (50 + 200) x 0.2 s
    assert eta.remaining() == pytest.approx(50.0)
    eta2 = JobEta([Stage("proxies", (PlannedRuns("a", 1e6, 100, 4),))], workers=2, clock=clock)
    eta2.start("proxies")
    eta2.observe("r1", "a", 100, 100, 20.0, finished=True)
    eta2.observe("r2", "a", 50, 100, 10.0)
    # two slots: [10 s of r2, 0] + 20 + 20 -> slot 1 ends at 30, slot 2 at 20
    assert eta2.remaining() == pytest.approx(30.0)


def test_unseen_size_gets_the_flops_power_law_of_the_seen_sizes():
    true = lambda flops: 2e-4 * flops**0.6  # noqa: E731 - seconds per step, overhead-bound (g < 1)
    sizes = {"s": 1e5, "m": 4e5, "big": 3e6}
    eta = JobEta(
        [
            Stage("proxies", tuple(PlannedRuns(k, sizes[k], 100) for k in ("s", "m"))),
            Stage("validation", (PlannedRuns("big", sizes["big"], 200),)),
        ]
    )
    eta.start("proxies")
    for k in ("s", "m"):
        eta.observe(k, k, 100, 100, 100 * true(sizes[k]), finished=True)
    assert eta.rate_model()("big", sizes["big"]) == pytest.approx(true(sizes["big"]), rel=1e-9)
    assert eta.remaining() == pytest.approx(200 * true(sizes["big"]), rel=1e-9)


def test_one_seen_size_scales_by_the_flops_ratio_and_the_exponent_is_bounded():
    eta = JobEta([Stage("a", (PlannedRuns("x", 1e6, 10), PlannedRuns("y", 4e6, 10)))])
    eta.start("a")
    eta.observe("r", "x", 10, 10, 1.0, finished=True)
    assert eta.rate_model()("y", 4e6) == pytest.approx(0.4)  # 0.1 s per step x 4
    # measured time that falls with FLOPs (noise): the exponent is clipped at MIN_EXPONENT, not negative
    eta.observe("r2", "y", 10, 10, 0.5, finished=True)
    mx, my = (math.log(1e6) + math.log(4e6)) / 2, (math.log(0.1) + math.log(0.05)) / 2
    expected = math.exp(my + MIN_EXPONENT * (math.log(16e6) - mx))
    assert eta.rate_model()("z", 16e6) == pytest.approx(expected)
    assert eta.rate_model()("y", 4e6) == pytest.approx(0.05)  # a measured size keeps its measurement


def test_stages_add_up_and_fixed_stages_count_down():
    clock = Clock()
    stages = [
        Stage("proxies", (PlannedRuns("a", 1e6, 100, 2),)),
        Stage("pipeline", seconds=30.0),
        Stage("rungs", (PlannedRuns("b", 4e6, 100, 1),)),
        Stage("validation", (PlannedRuns("b", 4e6, 300, 2),), workers=2),
        Stage("report", seconds=10.0),
    ]
    eta = JobEta(stages, workers=1, clock=clock)
    eta.start("proxies")
    eta.observe("p1", "a", 100, 100, 10.0, finished=True)  # 0.1 s/step; b prior 0.4 s/step
    # proxies 10 + pipeline 30 + rungs 40 + validation 120 (two slots) + report 10
    assert eta.remaining() == pytest.approx(210.0)
    eta.start("pipeline")
    clock.now = 12.0
    assert eta.current_left() == pytest.approx(18.0)
    clock.now = 45.0  # the fit runs past its prior: nothing negative
    assert eta.current_left() == 0.0
    eta.start("rungs")
    eta.observe("g1", "b", 50, 100, 25.0)  # measured 0.5 s/step now replaces the prior
    assert eta.seconds_per_step()["b"] == pytest.approx(0.5)
    assert eta.remaining() == pytest.approx(25 + 150 + 10)


def test_repeated_stage_names_are_refused():
    with pytest.raises(ValueError, match="repeat"):
        JobEta([Stage("a"), Stage("a")])


def test_makespan_longest_first_on_slots():
    assert _makespan([], [5, 4, 3, 3], 2) == 8
    assert _makespan([6], [2, 2], 2) == 6
    assert _makespan([], [], 3) == 0


def _simulate(workers: int, sizes: dict[str, float], plan: list[tuple[str, list[tuple[str, int, int]]]]):
    """A synthetic job: runs take `steps x sec(size)` plus noise-free overhead; returns (the ETA's estimate of
    the total at t = 60 s, the true total)."""
    truth = lambda size: 3e-3 * (sizes[size] / 1e5) ** 0.7 + 2e-3  # noqa: E731 - seconds per step
    clock = Clock()
    stages = []
    for name, groups in plan:
        if isinstance(groups, float):
            stages.append(Stage(name, seconds=groups))
        else:
            stages.append(Stage(name, tuple(PlannedRuns(s, sizes[s], st, n) for s, st, n in groups)))
    eta = JobEta(stages, workers=workers, clock=clock)
    estimate_at_60 = None
    t = 0.0
    for name, groups in plan:
        eta.start(name)
        if isinstance(groups, float):
            while clock.now < t + groups:
                if estimate_at_60 is None and clock.now >= 60:
                    estimate_at_60 = clock.now + eta.remaining()
                clock.now += 1.0
            t += groups
            continue
        runs = [(s, st) for s, st, n in groups for _ in range(n)]
        runs.sort(key=lambda r: -r[1] * truth(r[0]))
        slots = [t] * workers  # each slot: when it is free
        starts = []
        for i, (s, st) in enumerate(runs):
            j = min(range(workers), key=lambda k: slots[k])
            starts.append((f"{name}{i}", s, st, slots[j]))
            slots[j] += st * truth(s)
        end = max(slots)
        while clock.now < end:
            for rid, s, st, t0 in starts:
                if t0 <= clock.now:
                    done = min(st, int((clock.now - t0) / truth(s)))
                    eta.observe(rid, s, done, st, done * truth(s), finished=done >= st)
            if estimate_at_60 is None and clock.now >= 60 and eta.remaining() is not None:
                estimate_at_60 = clock.now + eta.remaining()
            clock.now += 1.0
        t = end
    return estimate_at_60, t


@pytest.mark.parametrize("workers", [1, 2])
def test_synthetic_job_eta_after_a_minute_is_within_30_percent(workers):
    sizes = {"L1-D32": 1.5e5, "L2-D32": 2.5e5, "L2-D48": 4.8e5, "L2-D64": 7.9e5}
    plan = [
        ("proxies", [("L2-D48", 250, 7), ("L2-D32", 250, 7), ("L1-D32", 250, 7)]),
        ("pipeline", 12.0),
        ("validation", [("L2-D64", 750, 3), ("L2-D64", 500, 3)]),
        ("report", 10.0),
    ]
    estimate, total = _simulate(workers, sizes, plan)
    assert estimate is not None
    assert abs(estimate - total) / total < 0.3, (estimate, total)


def test_plan_runs_groups_by_size_and_length():
    settings = SimpleNamespace(seq_len=64, batch_size=16)
    spec = lambda layers, width, steps: SimpleNamespace(  # noqa: E731
        layers=layers, width=width, steps=steps, model_label=f"L{layers}-D{width}", settings=settings
    )
    plan = plan_runs([spec(1, 32, 250), spec(1, 32, 250), spec(2, 64, 500)], vocab=257)
    assert [(p.size, p.steps, p.count) for p in plan] == [("L1-D32", 250, 2), ("L2-D64", 500, 1)]
    assert plan[1].flops_per_step == flops_per_step(2, 64, 257, 64, 16)
    assert plan_runs([spec(1, 32, 250)], 257, steps_of=lambda s: 300)[0].steps == 300


def test_format_seconds():
    assert [format_seconds(s) for s in (4.4, 125, 3780)] == ["4s", "2m05s", "1h03m"]
    assert math.isfinite(flops_per_step(1, 32, 0, 64, 1))


def test_a_new_size_first_steps_do_not_override_the_prior():
    eta = JobEta([Stage("a", (PlannedRuns("x", 1e6, 100, 1), PlannedRuns("y", 4e6, 250, 1)))])
    eta.start("a")
    eta.observe("r1", "x", 100, 100, 10.0, finished=True)  # 0.1 s per step
    eta.observe("r2", "y", 5, 250, 5.0)  # start-up: 1 s per step over the first 2%
    assert eta.remaining() == pytest.approx(245 * 0.4)  # the FLOPs prior, 0.4 s per step
    eta.observe("r2", "y", 100, 250, 30.0)  # settled: its own 0.3 s per step
    assert eta.remaining() == pytest.approx(150 * 0.3)


def test_a_resumed_sweep_with_nothing_left_still_measures_the_job(tmp_path):
    import json

    import pandas as pd

    from mixlaw.train.spec import RunSpec
    from mixlaw.train.sweep import InlineExecutor, run_sweep

    spec = RunSpec(mixture=(("a", 1.0),), layers=1, width=32, steps=100)
    run_dir = tmp_path / "runs" / spec.run_id
    run_dir.mkdir(parents=True)
    row = {"run": spec.run_id, "model": "L1-D32", "step": 100, "p_a": 1.0, "valid_domain": "a", "loss": 2.0}
    pd.DataFrame([row]).to_csv(run_dir / "result.csv", index=False)
    (run_dir / "progress.json").write_text(json.dumps({"status": "done", "work_done": 100, "elapsed": 20.0}))
    eta = JobEta(
        [
            Stage("proxies", plan_runs([spec], 257)),
            Stage("validation", (PlannedRuns("L1-D32", 1.0, 300, 1),)),
        ]
    )
    eta.start("proxies")
    run_sweep([spec], tmp_path, executor=InlineExecutor(), progress=False, eta=eta)
    assert eta.seconds_per_step() == {"L1-D32": 0.2}
    assert eta.remaining() == pytest.approx(60.0)  # the validation's 300 steps at the measured rate
