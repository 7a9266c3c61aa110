"""`mixlaw run` end to end on a tiny config, resume after SIGKILL, config errors and the measurement helpers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("torch")

from mixlaw.cli.main import main  # noqa: E402
from mixlaw.errors import MixlawInputError  # noqa: E402
from mixlaw.job import equivalent_steps, load_run_config, verdict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# A --quick-like job, much smaller: byte tokens, 9 mixtures x 3 tiny sizes, a target 2 layers wide 32.
TINY = {
    "corpus": {
        "demo": {"max_bytes": 40_000, "math_tokens": 15_000, "tokenizer": "bytes", "valid_fraction": 0.2}
    },
    "training": {
        "batch_size": 4,
        "seq_len": 32,
        "lr": 0.003,
        "warmup_steps": 2,
        "eval_points": 4,
        "eval_tokens": 512,
        "checkpoint_every": 5,
    },
    "proxies": {
        "models": ["L1-D16", "L1-D24", "L1-D32"],
        "steps": 40,
        "design": {"method": "dirichlet", "n": 8, "seed": 0},
    },
    "target": {"model": "L2-D32", "steps": 40},
    "pipeline": {"law": "dml", "cv": 3},
    "validate": {"seeds": [0, 1, 2], "baseline_steps": 1.5, "eval_fractions": [0.5, 1.0, 1.25, 1.5]},
    "workers": 2,
}


def _write(tmp: Path, cfg: dict, name: str = "run.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _env(cache: Path) -> dict:
    return dict(
        os.environ,
        MIXLAW_CACHE=str(cache),
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mixlaw-cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """One uninterrupted tiny job (the end-to-end test and the reference of the resume test)."""
    tmp = tmp_path_factory.mktemp("run-ref")
    cfg = _write(tmp, TINY)
    out = tmp / "out"
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "mixlaw", "run", str(cfg), "--out", str(out)],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out, proc, time.time() - t0


@pytest.mark.slow
def test_run_end_to_end_writes_the_results_folder(reference):
    out, proc, seconds = reference
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "runs.csv",
        "law.json",
        "optimum.json",
        "predictions.csv",
        "step_laws.json",
        "size_laws.json",
        "checks.json",
        "summary.md",
        "validation.json",
        "validation.csv",
        "config.yaml",
        "run.json",
        "mixtures.csv",
        "report.html",
        "validation/runs.csv",
        "proxies/runs.csv",
    ):
        assert (out / name).is_file(), name
    res = json.loads((out / "validation.json").read_text())
    for arm in ("optimum", "baseline"):
        a = res["arms"][arm]
        assert a["measured"]["n"] == 3 and a["measured"]["std"] >= 0
        assert np.isfinite(a["predicted"]) and np.isfinite(a["rel_error"])
    assert res["arms"]["baseline"]["steps"] == 60  # 1.5 x the target steps
    assert res["verdict"]["result"] in ("win", "loss", "within noise")
    if res["verdict"]["result"] == "within noise":
        assert "within noise" in res["verdict"]["text"]
    assert res["equivalent_steps"]["measured"]["method"]
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# mixlaw run: validation at the target scale") and "Verdict" in summary
    assert "# mixlaw pipeline summary" in summary  # the pipeline's own summary follows
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["model"]) == {"L1-D16", "L1-D24", "L1-D32"}
    assert "baseline" in set(runs["run"])  # the baseline mixture is a proxy mixture, same id at every size
    assert runs.groupby("run")["model"].nunique().eq(3).all()
    val = pd.read_csv(out / "validation.csv")
    assert sorted(val["arm"].value_counts().tolist()) == [3, 3]
    assert "verdict:" in proc.stdout
    # the results folder is what `mixlaw report DIR` reads
    from mixlaw.reporting import load_results_dir

    data = load_results_dir(out)
    assert data.law is not None and data.optimum is not None and data.runs is not None
    assert data.step_law is not None and data.size_law is not None and data.summary_md


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_results(tmp_path, cache, reference):
    ref_out, ref_proc, seconds = reference
    print(f"reference tiny run: {seconds:.1f} s")
    assert ref_proc.returncode == 0
    cfg = _write(tmp_path, TINY)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mixlaw", "run", str(cfg), "--out", str(out), "-q", "--no-report"]
    proc = subprocess.Popen(cmd, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    # kill once some proxies are finished and others are not (mid-sweep)
    while time.time() < deadline:
        done = (
            list((out / "proxies" / "runs").glob("*/result.csv"))
            if (out / "proxies" / "runs").is_dir()
            else []
        )
        if len(done) >= 4 or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the job finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in (out / "proxies" / "runs").glob("*/result.csv")}
    assert 4 <= len(finished) < 15
    assert not (out / "validation.json").exists()
    time.sleep(1.0)  # orphaned pool workers exit on their parent's death
    proc = subprocess.run(cmd, env=_env(cache), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rid, mtime in finished.items():  # finished runs were not trained again
        assert (out / "proxies" / "runs" / rid / "result.csv").stat().st_mtime_ns == mtime
    ref = json.loads((ref_out / "validation.json").read_text())
    got = json.loads((out / "validation.json").read_text())
    # the same proxies table, bit for bit, hence the same laws and optimum (up to the fit's float noise)
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs.csv"), pd.read_csv(ref_out / "runs.csv"))
    ref_mix, got_mix = ref["arms"]["optimum"]["mixture"], got["arms"]["optimum"]["mixture"]
    assert got_mix == pytest.approx(ref_mix, abs=1e-3)
    if got_mix == ref_mix:  # same validation runs (content-hashed) -> the same measurements
        for arm in ("optimum", "baseline"):
            assert got["arms"][arm]["measured"]["mean"] == pytest.approx(
                ref["arms"][arm]["measured"]["mean"], abs=1e-6
            )
    # a third invocation reuses everything, pipeline included
    again = subprocess.run(cmd[:-2], env=_env(cache), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "reusing law.json" in again.stderr


def test_quick_config_and_default_config_parse():
    default, quick = load_run_config(None), load_run_config(None, quick=True)
    assert len(default.sweep.models) >= 3 and len(default.seeds) >= 3
    assert quick.target_steps < default.target_steps
    large = load_run_config(REPO / "configs" / "cpu-large.yaml")
    assert len(large.sweep.models) == 3 and len(large.seeds) >= 3
    from mixlaw.job import non_embedding_params

    largest = max(large.sweep.models, key=lambda m: m.width * m.layers)
    proxy_params = non_embedding_params(largest.layers, largest.width, largest.heads, 257, 64)
    target_params = non_embedding_params(large.target_layers, large.target_width, large.target_heads, 257, 64)
    assert target_params >= 4 * proxy_params
    assert large.target_steps >= 3 * max(large.sweep.steps)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"surprise": 1}, "unknown key(s) ['surprise']"),
        ({"validate": {"seeds": [0, 1]}}, "at least 3 distinct"),
        ({"target": {"model": "big", "steps": 10}}, "not a label like"),
        ({"target": {"model": "L2-D32"}}, "needs model"),
        ({"proxies": {"models": ["L1-D16"], "steps": 10, "mixtures": [{"code": 1.0}]}}, "at least 2 sizes"),
        ({"optimize": {"bounds": {"nope": [0, 1]}}}, "unknown domain 'nope'"),
        ({"validate": {"baseline_steps": 0.5}}, "must be >= 1"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, change, message, capsys):
    cfg = {**TINY, **change}
    path = _write(tmp_path, cfg)
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize(
    "block, change, message",
    [
        ("optimize", {"bounds": {"code": [0.6, 0.2]}}, "optimize.bounds.code"),
        ("optimize", {"bounds": {"code": [0, 1.5]}}, "0 <= lower <= upper <= 1"),
        ("optimize", {"fixed": {"code": 1.5}}, "optimize.fixed.code"),
        ("optimize", {"fixed": {"code": 0.6, "docs": 0.6}}, "sum to more than 1"),
        ("optimize", {"max_epochs": -1}, "optimize.max_epochs"),
        ("optimize", {"bootstrap": -3}, "optimize.bootstrap"),
        ("optimize", {"bootstrap": "many"}, "optimize.bootstrap"),
        ("optimize", {"bootstrap": 4}, "at least 10 refits"),
        ("optimize", {"baseline": "best"}, "optimize.baseline"),
        ("optimize", {"objective": {"code": -1}}, "optimize.objective.code"),
        ("optimize", {"max_distance": float("nan")}, "optimize.max_distance"),
        ("optimize", {"surprise": 1}, "optimize: unknown key(s) ['surprise']"),
        ("pipeline", {"cv": -2}, "pipeline.cv"),
        ("pipeline", {"min_sizes": "3"}, "pipeline.min_sizes"),
        ("pipeline", {"step_share": "some"}, "pipeline.step_share"),
        ("pipeline", {"size_share": 1}, "pipeline.size_share"),
        ("pipeline", {"scale_law": "both"}, "pipeline.scale_law"),
        ("pipeline", {"huber_delta": -0.1}, "pipeline.huber_delta"),
        ("pipeline", {"step_exponent": [1.5, 0.3]}, "pipeline.step_exponent"),
        ("pipeline", {"size_exponent": "0.1:1"}, "pipeline.size_exponent"),
        ("pipeline", {"law": "nope"}, "unknown law 'nope'"),
        ("pipeline", {"valid_weights": "missing.csv"}, "pipeline.valid_weights"),
        ("pipeline", {"group": "category"}, "pipeline.group"),
        ("pipeline", {"delta": 0.1}, "pipeline: unknown key(s) ['delta']"),
        ("validate", {"baseline_steps": "long"}, "validate.baseline_steps"),
        ("validate", {"eval_fractions": [0.5, -1]}, "validate.eval_fractions"),
        ("target", {"model": "L2-D32", "steps": 40, "lr": -1}, "target.lr"),
        ("target", {"model": "L2-D32", "steps": 0}, "target.steps"),
        ("target", {"model": {"layers": 2, "width": 30, "heads": 4}, "steps": 40}, "target.model.heads"),
        ("proxies", {**TINY["proxies"], "include_baseline": "yes"}, "proxies.include_baseline"),
    ],
)
def test_the_whole_config_is_checked_before_any_training(tmp_path, block, change, message, capsys):
    """Every block, value and referenced file is checked when the config is read (docs/run.md: "an unknown
    key or bad value stops the job before any training")."""
    cfg = {**TINY, block: change if block in ("target", "proxies") else {**TINY.get(block, {}), **change}}
    path = _write(tmp_path, cfg)
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err, err
    assert not (tmp_path / "o").exists()  # refused before the corpus or any run


def test_a_valid_weights_file_is_checked_when_the_config_is_read(tmp_path, capsys):
    weights = tmp_path / "w.csv"
    weights.write_text("valid_domain,valid_weight\ncode,-1\n")
    path = _write(tmp_path, {**TINY, "pipeline": {**TINY["pipeline"], "valid_weights": "w.csv"}})
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "negative weight" in capsys.readouterr().err
    weights.write_text("valid_domain,valid_weight\ncode,1\ndocs,2\n")
    cfg = load_run_config(path)
    assert cfg.valid_weights == str(weights) and cfg.pipeline_config.law == "dml"


def test_quick_flag_needs_a_quick_block(tmp_path, capsys):
    path = _write(tmp_path, TINY)
    assert main(["run", str(path), "--quick", "--out", str(tmp_path / "o")]) == 2
    assert "quick:" in capsys.readouterr().err
    with pytest.raises(MixlawInputError):
        load_run_config(tmp_path / "missing.yaml")


def test_equivalent_steps_interpolates_then_extrapolates():
    steps = np.array([100.0, 200.0, 300.0, 400.0])
    curve = 2.0 + 4.0 * (steps / 100.0) ** -0.5
    hit = equivalent_steps(steps, curve, float(curve[1] - 0.5 * (curve[1] - curve[2])), 200.0)
    assert 200 < hit["steps"] < 300 and hit["method"].startswith("interpolated")
    beyond = equivalent_steps(steps, curve, 2.0 + 4.0 * 6.0**-0.5, 200.0)
    assert beyond["method"].startswith("extrapolated") and beyond["ratio"] == pytest.approx(3.0, rel=0.05)
    never = equivalent_steps(steps, curve, 1.5, 200.0)
    assert never["ratio"] is None and "never reaches" in never["reason"]
    worse = equivalent_steps(steps, curve, float(curve[0] + 1), 200.0)
    assert worse["ratio"] is None


def test_verdict_claims_a_win_only_beyond_two_sigma():
    assert verdict(0.05, 0.01, "natural")[0] == "win"
    assert verdict(0.015, 0.01, "natural")[0] == "within noise"
    assert "within noise" in verdict(0.015, 0.01, "natural")[1]
    assert verdict(-0.05, 0.01, "natural")[0] == "loss"
    assert verdict(0.0, 0.0, "natural")[0] == "within noise"


def _ddp_spec(tmp_path, cache):
    from mixlaw.train.sweep import parse_sweep_config, prepare_sweep

    cfg = {
        "corpus": TINY["corpus"],
        "mixtures": [{"code": 0.4, "docs": 0.3, "math-prose": 0.2, "math": 0.1}],
        "models": ["L1-D32"],
        "steps": 12,
        "training": {**TINY["training"], "eval_points": 2, "checkpoint_every": 4},
    }
    os.environ["MIXLAW_CACHE"] = str(cache)
    try:
        _, specs = prepare_sweep(parse_sweep_config(cfg, "ddp test"))
    finally:
        del os.environ["MIXLAW_CACHE"]
    return specs[0]


def _spec_dir(tmp: Path, spec) -> Path:
    d = tmp / spec.run_id
    d.mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps(spec.to_dict()))
    return d


@pytest.mark.slow
def test_ddp_entry_matches_the_single_process_trainer(tmp_path, cache):
    from mixlaw.train.trainer import train_run

    spec = _ddp_spec(tmp_path, cache)
    ref = train_run(spec, tmp_path / "ref")
    env = _env(cache)
    # world size 1, no torchrun: the same numbers as the plain trainer
    one = _spec_dir(tmp_path / "one", spec)
    proc = subprocess.run(
        [sys.executable, "-m", "mixlaw.train.ddp", str(one)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = pd.read_csv(one / "result.csv")
    assert list(got.columns) == list(ref.columns)
    np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5)
    # torchrun with 2 CPU processes (gloo): each rank takes half of every batch; DDP averages the gradients
    two = _spec_dir(tmp_path / "two", spec)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "mixlaw.train.ddp",
            str(two),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got2 = pd.read_csv(two / "result.csv")
    np.testing.assert_allclose(got2["loss"], ref["loss"], rtol=2e-3)
    assert not (two / "checkpoint.safetensors").exists()
    assert json.loads((two / "progress.json").read_text())["world_size"] == 2  # written by rank 0 only


@pytest.mark.slow
def test_torchrun_executor_trains_a_sweep_run(tmp_path, cache, monkeypatch):
    from mixlaw.train.ddp import TorchrunExecutor
    from mixlaw.train.sweep import run_sweep

    spec = _ddp_spec(tmp_path, cache)
    for k, v in _env(cache).items():
        monkeypatch.setenv(k, v)
    executor = TorchrunExecutor(nproc=1)
    try:
        table = run_sweep([spec], tmp_path / "sweep", executor=executor, progress=False)
    finally:
        executor.shutdown()
    assert set(table["run"]) == {spec.run_id} and (tmp_path / "sweep" / "runs.csv").is_file()


def test_validation_to_dict_is_validation_json():
    from mixlaw.job import Validation

    parts = {k: {"x": 1} for k in ("target", "objective", "arms", "gain", "verdict", "equivalent_steps")}
    v = Validation(**parts, per_seed=[{"arm": "optimum"}])
    keys = ["target", "objective", "arms", "gain", "verdict", "equivalent_steps", "per_seed"]
    assert list(v.to_dict()) == keys
    v.proxies, v.timings = {"runs": 3}, {"total": 1.0}
    assert list(v.to_dict()) == keys + ["proxies", "timings"]
