"""The trainer and the sweep worker's guards: a stop request checkpoints and resumes exactly, final weights are
byte-deterministic, and a pool worker refuses to train without the sweep's lock."""

import os
from dataclasses import replace

import pandas as pd
import pytest

pytest.importorskip("torch")

from mixlaw.files import locked  # noqa: E402
from mixlaw.train import worker  # noqa: E402
from mixlaw.train.sweep import parse_sweep_config, prepare_sweep  # noqa: E402
from mixlaw.train.trainer import CKPT, RESULT, train_run  # noqa: E402

CONFIG = {
    "corpus": {
        "demo": {"max_bytes": 20_000, "math_tokens": 8_000, "tokenizer": "bytes", "valid_fraction": 0.2}
    },
    "mixtures": [{"code": 0.4, "docs": 0.3, "math-prose": 0.2, "math": 0.1}],
    "models": ["L1-D32"],
    "steps": 16,
    "training": {
        "batch_size": 2,
        "seq_len": 16,
        "warmup_steps": 2,
        "eval_points": 2,
        "eval_tokens": 128,
        "save_model": True,
        "device": "cpu",
    },
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    _, runs = prepare_sweep(parse_sweep_config(CONFIG, "test"), cache_dir=tmp_path_factory.mktemp("cache"))
    return runs[0]


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["constant", "wsd"])
def test_a_stop_request_checkpoints_and_the_resumed_run_is_identical(tmp_path, spec, schedule):
    spec = replace(spec, settings=replace(spec.settings, schedule=schedule))
    ref = train_run(spec, tmp_path / "ref")
    calls = []

    def stop_at_7() -> bool:
        calls.append(1)
        return len(calls) >= 7

    run_dir = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        train_run(spec, run_dir, should_stop=stop_at_7)
    assert (run_dir / CKPT).is_file() and not (run_dir / RESULT).exists()
    assert '"status": "stopped"' in (run_dir / "progress.json").read_text()
    again = train_run(spec, run_dir)
    pd.testing.assert_frame_equal(again, ref)
    assert (run_dir / RESULT).read_bytes() == (tmp_path / "ref" / RESULT).read_bytes()
    assert (run_dir / "model.safetensors").read_bytes() == (
        tmp_path / "ref" / "model.safetensors"
    ).read_bytes()


def test_a_pool_worker_trains_only_while_the_sweep_holds_the_lock(tmp_path, monkeypatch):
    lock = tmp_path / ".sweep.lock"
    worker.check_may_train(lock)  # not a pool worker (inline, Ray): no check
    monkeypatch.setattr(worker, "_parent", os.getppid())
    with pytest.raises(RuntimeError, match="does not hold this lock"):
        worker.check_may_train(lock)
    with locked(lock):
        worker.check_may_train(lock)  # held by another open file: allowed
        monkeypatch.setattr(worker._stop, "is_set", lambda: True)
        with pytest.raises(KeyboardInterrupt):
            worker.check_may_train(lock)
