"""Sweeps end to end: CLI runs table, resume after a real SIGKILL, one-line config errors, model and schedules."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("torch")

from mixlaw.cli.main import main  # noqa: E402
from mixlaw.train.sweep import InlineExecutor, load_sweep_config, prepare_sweep, run_sweep  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _config(
    tmp: Path, steps: int = 12, name: str = "sweep.yaml", models=("L1-D32", "L2-D64"), **training
) -> Path:
    cfg = {
        "corpus": {
            "demo": {"max_bytes": 40_000, "math_tokens": 15_000, "tokenizer": "bytes", "valid_fraction": 0.2}
        },
        "mixtures": [
            {"code": 0.5, "docs": 0.25, "math-prose": 0.125, "math": 0.125},
            {"code": 0.0, "docs": 0.3, "math-prose": 0.3, "math": 0.4},
        ],  # a zero share
        "models": list(models),
        "steps": steps,
        "seeds": [0],
        "training": {
            "batch_size": 4,
            "seq_len": 32,
            "warmup_steps": 2,
            "eval_points": 3,
            "eval_tokens": 512,
            "checkpoint_every": 5,
            **training,
        },
    }
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env(cache: Path) -> dict:
    env = dict(
        os.environ,
        MIXLAW_CACHE=str(cache),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return env


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mixlaw-cache")


@pytest.mark.slow
def test_tiny_sweep_end_to_end_writes_a_valid_runs_table(tmp_path, cache):
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "mixlaw", "sweep", str(cfg), "--out", str(out), "--workers", "2", "--parquet"],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "runs.csv", dtype={"run": str})
    assert len(table["run"].unique()) == 4
    assert set(table["model"]) == {"L1-D32", "L2-D64"}  # two sizes
    # one spelling: the p_ columns' (math_prose)
    assert set(table["valid_domain"]) == {"code", "docs", "math_prose", "math"}
    pcols = ["p_code", "p_docs", "p_math_prose", "p_math"]
    assert (table[pcols].sum(axis=1) - 1).abs().max() < 1e-9
    assert len(table) == 4 * 3 * 4  # runs x checkpoints x validation domains
    assert (table["params"] < table["params_total"]).all()
    assert (table["tokens"] == table["step"] * 4 * 32).all()
    assert table["loss"].between(0, 10).all() and table["bits_per_byte"].gt(0).all()
    assert pd.read_parquet(out / "runs.parquet").shape == table.shape
    try:  # the core's reader accepts the table when it is available
        from mixlaw.runs import read_runs
    except ImportError:
        return
    read_runs(out / "runs.csv")


@pytest.mark.slow
def test_resume_after_sigkill_loses_no_finished_run_and_gives_the_same_table(tmp_path, cache):
    cfg_path = _config(tmp_path, steps=250, models=("L1-D32", "L1-D48"))
    cfg = load_sweep_config(cfg_path)
    _, runs = prepare_sweep(cfg, cache_dir=cache)
    ref = run_sweep(runs, tmp_path / "ref", executor=InlineExecutor(), progress=False)

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "mixlaw", "sweep", str(cfg_path), "--out", str(out), "--workers", "2", "-q"]
    proc = subprocess.Popen(
        cmd, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            results = list(out.glob("runs/*/result.csv"))
            ckpts = [
                c for c in out.glob("runs/*/checkpoint.safetensors") if not (c.parent / "result.csv").exists()
            ]
            if results and ckpts:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        else:
            pytest.fail("sweep never reached a state with a finished run and a checkpoint")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finished = {p.parent.name: p.read_bytes() for p in out.glob("runs/*/result.csv")}
    assert finished
    # the workers die with the sweep process
    time.sleep(1.5)
    ps = subprocess.run(
        ["ps", "-s", str(proc.pid), "-o", "pid=,stat="], capture_output=True, text=True
    ).stdout
    stray = [
        line.split()[0] for line in ps.splitlines() if line.split() and not line.split()[1].startswith("Z")
    ]
    if stray:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not stray, f"worker processes outlived the killed sweep: {stray}"
    if (out / "runs.csv").exists():  # whatever was written is a complete, readable table
        partial = pd.read_csv(out / "runs.csv", dtype={"run": str})
        assert set(partial["run"]) <= set(finished)

    proc2 = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True, timeout=180)
    assert proc2.returncode == 0, proc2.stderr
    for rid, data in finished.items():  # finished runs were skipped, not redone
        assert (out / "runs" / rid / "result.csv").read_bytes() == data
    got = pd.read_csv(out / "runs.csv", dtype={"run": str})
    want = pd.read_csv(tmp_path / "ref" / "runs.csv", dtype={"run": str})
    pd.testing.assert_frame_equal(got, want)
    assert len(ref) == len(got)


def _session(sid: int) -> list[tuple[str, str]]:
    """(pid, command) of the live (not zombie) processes of session `sid`."""
    ps = subprocess.run(
        ["ps", "-ww", "-s", str(sid), "-o", "pid=,stat=,args="], capture_output=True, text=True
    ).stdout
    rows = [line.split(None, 2) for line in ps.splitlines() if line.strip()]
    return [(r[0], r[2] if len(r) > 2 else "") for r in rows if not r[1].startswith("Z")]


def _left_after(sid: int, seconds: float = 5.0) -> list[tuple[str, str]]:
    """The live processes of session `sid` after giving dying ones `seconds` to go."""
    deadline = time.time() + seconds
    while (live := _session(sid)) and time.time() < deadline:
        time.sleep(0.1)
    return live


def _running(progress: Path, old_pids: set[int]) -> bool:
    """Whether a run's progress file says a new worker (not one of `old_pids`) is training it."""
    try:
        info = json.loads(progress.read_text())
    except (OSError, ValueError):
        return False
    return info["status"] == "running" and info["step"] > 0 and info["pid"] not in old_pids


def _files(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_size for p in out.glob("runs/*/*") if p.is_file()}


@pytest.mark.slow
def test_sigkill_while_workers_start_leaves_no_orphan_and_no_run_without_the_lock(tmp_path, cache):
    cfg_path = _config(tmp_path, steps=250, models=("L1-D32", "L1-D48"))
    prepare_sweep(load_sweep_config(cfg_path), cache_dir=cache)  # the corpus is cached: workers start at once
    kills = orphans = written = 0
    for delay in (0.0, 0.05, 0.2, 0.5):  # after the first worker process appears
        out = tmp_path / f"kill-{delay}"
        cmd = [
            sys.executable,
            "-m",
            "mixlaw",
            "sweep",
            str(cfg_path),
            "--out",
            str(out),
            "--workers",
            "2",
            "-q",
        ]
        proc = subprocess.Popen(
            cmd, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            deadline = time.time() + 120
            while time.time() < deadline and not any("spawn_main" in c for _, c in _session(proc.pid)):
                assert proc.poll() is None, "the sweep ended before starting its workers"
                time.sleep(0.005)
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
            before = _files(out)
            time.sleep(3.0)
            stray = _session(proc.pid)
            orphans += len(stray)
            after = _files(out)
            written += len({k for k in after if after[k] != before.get(k)})
        finally:
            if _session(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)
        assert not stray, f"processes outlived the sweep killed {delay}s after its first worker: {stray}"
        assert after == before, f"files written after the kill, without the lock: {set(after) - set(before)}"
    assert (kills, orphans, written) == (4, 0, 0)


@pytest.mark.slow
def test_sigint_checkpoints_the_running_run_and_starts_no_queued_one(tmp_path, cache):
    cfg_path = _config(tmp_path, steps=20000, models=("L1-D32",), checkpoint_every=0, checkpoint_seconds=600)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mixlaw", "sweep", str(cfg_path), "--out", str(out), "--workers", "1", "-q"]
    seen: set[int] = set()  # worker pids of the earlier phase
    for target in ("group", "parent"):  # Ctrl-C in a terminal signals the group; `kill -INT` only the parent
        proc = subprocess.Popen(
            cmd, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                if any(_running(p, seen) for p in out.glob("runs/*/progress.json")):
                    break
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.05)
            (os.killpg if target == "group" else os.kill)(proc.pid, signal.SIGINT)
            t0 = time.time()
            code = proc.wait(timeout=60)
            stopped_in = time.time() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert code == 130 and stopped_in < 30, (target, code, stopped_in)
        assert not _left_after(proc.pid)
        progress = list(out.glob("runs/*/progress.json"))
        assert len(progress) == 1, "a queued run was started after SIGINT"
        run = progress[0].parent
        info = json.loads(progress[0].read_text())
        assert info["status"] == "stopped" and info["step"] > 0
        seen.add(info["pid"])
        assert (run / "checkpoint.safetensors").is_file() and not (run / "result.csv").exists()
        assert not list(out.glob("**/.*.tmp"))


def test_a_second_sweep_into_a_busy_folder_is_refused_before_the_corpus_is_built(
    tmp_path, capsys, monkeypatch
):
    from mixlaw.files import locked

    fresh = tmp_path / "cache"
    monkeypatch.setenv("MIXLAW_CACHE", str(fresh))
    out = tmp_path / "busy"
    with locked(out / ".sweep.lock"):
        code = main(["sweep", str(_config(tmp_path)), "--out", str(out), "-q"])
    assert code == 2 and "another sweep is running in this folder" in capsys.readouterr().err
    assert not fresh.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mixtures": [{"code": 0.5, "nope": 0.5}]}, "unknown domain 'nope'"),
        ({"mixtures": [{"code": 0.5, "docs": 0.4}]}, "sum to 0.9"),
        (
            {
                "corpus": {"domains": [{"name": "web", "source": "files", "paths": ["missing/*.jsonl"]}]},
                "mixtures": [{"web": 1.0}],
            },
            "no files match 'missing/*.jsonl'",
        ),
        ({"training": {"lr": "fast"}}, "training.lr"),
        ({"models": ["big"]}, "not a label like L2-D64"),
        ({"stepz": 3}, "unknown key(s) ['stepz']"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, cache, capsys, monkeypatch, change, message):
    monkeypatch.setenv("MIXLAW_CACHE", str(cache))
    raw = yaml.safe_load(_config(tmp_path).read_text())
    raw.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    code = main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("mixlaw: error:") and message in err[-1], err
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize(
    "training, message",
    [
        ({"device": "tpu"}, "training.device: 'tpu' is not a device"),
        ({"device": "cuda"}, "CUDA is not available"),
        ({"eval_steps": [4, 40]}, "training.eval_steps: 40 is beyond the longest run (12 steps)"),
        ({"warmup_steps": 13}, "training.warmup_steps: 13 is longer than the 12-step run of model L1-D32"),
        ({"eval_steps": [True]}, "training.eval_steps"),
    ],
)
def test_sweep_settings_are_checked_before_the_corpus_is_built(
    tmp_path, capsys, monkeypatch, training, message
):
    if training.get("device") == "cuda":
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    fresh = tmp_path / "cache"
    monkeypatch.setenv("MIXLAW_CACHE", str(fresh))
    code = main(["sweep", str(_config(tmp_path, **training)), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not fresh.exists() and not (tmp_path / "o").exists()  # refused before any corpus or sweep work


def test_missing_config_and_design_cli(tmp_path, cache, capsys, monkeypatch):
    monkeypatch.setenv("MIXLAW_CACHE", str(cache))
    assert main(["sweep", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "sweep config file not found" in capsys.readouterr().err
    assert main(["design", "--tokens", "a=1000,b=500,c=100", "-n", "5", "--seed", "1"]) == 0
    first = yaml.safe_load(capsys.readouterr().out)["mixtures"]
    assert main(["design", "--tokens", "a=1000,b=500,c=100", "-n", "5", "--seed", "1"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["mixtures"] == first and len(first) == 5
    assert (
        main(
            [
                "design",
                str(_config(tmp_path)),
                "--method",
                "grid",
                "--max-epochs",
                "1",
                "--out",
                str(tmp_path / "m.csv"),
            ]
        )
        == 0
    )
    grid = pd.read_csv(tmp_path / "m.csv")
    assert list(grid.columns) == ["p_code", "p_docs", "p_math_prose", "p_math"] and len(grid) > 3
    assert main(["design", "--domains", "a,b", "--caps", "a=0.2,b=0.2"]) == 2
    assert "no mixture can satisfy" in capsys.readouterr().err


@pytest.mark.slow
def test_model_parameter_counts_and_wsd_schedule(tmp_path, cache):
    import torch

    from mixlaw.train.model import GPT, GPTConfig

    model = GPT(GPTConfig(n_layer=2, n_embd=64, vocab_size=257, block_size=32))
    per_layer = 4 * 64 * 64 + 8 * 64 * 64 + 2 * 64  # attention + MLP + two LayerNorm weights
    assert model.num_params(True) == 2 * per_layer + 64
    assert model.num_params(False) == model.num_params(True) + 257 * 64 + 32 * 64
    logits, loss = model(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long))
    assert logits.shape == (2, 8, 257) and loss.item() > 0

    cfg = load_sweep_config(_config(tmp_path, steps=16, schedule="wsd", cooldown_fraction=0.25))
    cfg.mixtures = cfg.mixtures[:1]
    cfg.models = cfg.models[:1]
    _, runs = prepare_sweep(cfg, cache_dir=cache)
    table = run_sweep(runs, tmp_path / "wsd", executor=InlineExecutor(), progress=False)
    assert set(table["schedule"]) == {"wsd"} and len(table) == 3 * 4
    rid = runs[0].run_id
    stale = [
        tmp_path / "wsd" / ".runs.csv.99999.tmp",
        tmp_path / "wsd" / "runs" / rid / ".progress.json.4242.tmp",
    ]
    for path in stale:  # left by a killed sweep
        path.write_text("partial")
    again = run_sweep(runs, tmp_path / "wsd", executor=InlineExecutor(), progress=False)  # all skipped
    pd.testing.assert_frame_equal(table, again)
    assert not any(p.exists() for p in stale)  # removed on resume
