"""The Ray executor runs a two-run sweep on a local Ray instance and writes the same table as the local pool."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")  # CI installs Ray; elsewhere the test is skipped when it is absent

from mixlaw.train.ray_executor import RayExecutor  # noqa: E402
from mixlaw.train.sweep import LocalExecutor, parse_sweep_config, prepare_sweep, run_sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

CONFIG = {
    "corpus": {
        "demo": {"max_bytes": 40_000, "math_tokens": 15_000, "tokenizer": "bytes", "valid_fraction": 0.2}
    },
    "mixtures": [
        {"code": 0.5, "docs": 0.25, "math-prose": 0.125, "math": 0.125},
        {"code": 0.1, "docs": 0.2, "math-prose": 0.3, "math": 0.4},
    ],
    "models": ["L1-D32"],
    "steps": 20,
    "training": {
        "batch_size": 4,
        "seq_len": 32,
        "warmup_steps": 2,
        "eval_points": 3,
        "eval_tokens": 512,
        "checkpoint_every": 5,
    },
}


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXLAW_CACHE", str(tmp_path / "cache"))
    # Ray workers are new processes: make sure they import this checkout of mixlaw
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    _, specs = prepare_sweep(parse_sweep_config(CONFIG, "ray test"))
    assert len(specs) == 2
    return specs


@pytest.mark.slow
def test_ray_executor_writes_the_same_table_as_the_local_pool(tmp_path, runs):
    local = LocalExecutor(workers=2)
    try:
        expected = run_sweep(runs, tmp_path / "local", executor=local, progress=False)
    finally:
        local.shutdown()
    if ray.is_initialized():
        ray.shutdown()
    executor = RayExecutor(num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
    try:
        got = run_sweep(runs, tmp_path / "ray", executor=executor, progress=False)
        assert executor.workers == 2  # one task per run, one CPU each
    finally:
        executor.shutdown()
    assert not ray.is_initialized()  # the instance it started is shut down
    pd.testing.assert_frame_equal(got, expected)
    assert (tmp_path / "ray" / "runs.csv").read_bytes() == (tmp_path / "local" / "runs.csv").read_bytes()
    for r in runs:
        assert (tmp_path / "ray" / "runs" / r.run_id / "result.csv").is_file()


@pytest.mark.slow
def test_ray_executor_resumes_finished_runs_without_resubmitting(tmp_path, runs):
    local = LocalExecutor(workers=1)
    try:
        run_sweep(runs[:1], tmp_path / "out", executor=local, progress=False)
    finally:
        local.shutdown()
    executor = RayExecutor(num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
    try:
        table = run_sweep(runs, tmp_path / "out", executor=executor, progress=False)
        assert len(executor._refs) == 1  # only the unfinished run went to Ray
    finally:
        executor.shutdown()
    assert set(table["run"]) == {r.run_id for r in runs}


def test_run_command_accepts_the_ray_executor_flags():
    from mixlaw.cli.main import build_parser

    args = build_parser().parse_args(["run", "--executor", "ray", "--address", "auto", "--gpus-per-run", "1"])
    assert args.executor == "ray" and args.address == "auto" and args.gpus_per_run == 1.0
    code = (
        "import sys, mixlaw.cli.main as m; m.build_parser(); import mixlaw.job; print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.strip() == "False", out.stderr  # Ray is imported lazily
