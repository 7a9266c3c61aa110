"""Multi-stage schedules: recency weights, the schedule law recovered on synthetic data, the optimizer's exact
availability, the staged loader, run ids, and (with torch) staged and --init-from runs end to end."""

import json

import numpy as np
import pandas as pd
import pytest

from mixlaw.cli.main import main
from mixlaw.errors import MixlawInputError
from mixlaw.schedule import (
    FittedSchedule,
    ScheduleLaw,
    check_schedule,
    effective_mixtures,
    optimize_schedule,
    repair,
    stage_weights,
)
from mixlaw.train.loader import MixtureLoader
from mixlaw.train.spec import RunSpec, TrainSettings, stage_plan

TRUE_GAMMA = 2.5
TRUE_C = np.array([1.5, 2.0])
TRUE_THETA = np.array([[-1.0, 0.5, 0.2], [0.3, -1.5, 0.1]])


def _synthetic(n: int = 24, noise: float = 0.001, seed: int = 0):
    rng = np.random.default_rng(seed)
    scheds = []
    for i in range(n):
        if i < n // 3:
            scheds.append(check_schedule(np.array([1.0]), rng.dirichlet(np.ones(3), size=1)))
        else:
            a = rng.choice([0.25, 0.5])
            scheds.append(check_schedule(np.array([1 - a, a]), rng.dirichlet(np.ones(3), size=2)))
    R = effective_mixtures(scheds, TRUE_GAMMA)
    Y = TRUE_C[None] + np.exp(R @ TRUE_THETA.T) + rng.normal(0, noise, (n, 2))
    return scheds, Y


def _fitted(gamma: float | None = None) -> FittedSchedule:
    scheds, Y = _synthetic()
    law = ScheduleLaw(**({} if gamma is None else {"gamma": gamma}), restarts=8).fit(scheds, Y)
    return FittedSchedule(law, ["a", "b", "c"], ["x", "y"], {"x": 0.5, "y": 0.5}, {})


def test_stage_weights():
    shares = np.array([0.75, 0.25])
    assert np.allclose(stage_weights(shares, 0.0), shares)
    for g in (-3.0, 1e-9, 2.0, 40.0):
        w = stage_weights(shares, g)
        assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert stage_weights(shares, 3.0)[1] > 0.25 > stage_weights(shares, -3.0)[1]  # recency vs primacy
    assert stage_weights(shares, 200.0)[1] == pytest.approx(1.0)


def test_schedule_law_recovered_on_synthetic_data():
    fitted = _fitted()
    p = fitted.law.params_
    assert p["gamma"][0] == pytest.approx(TRUE_GAMMA, abs=0.15)
    assert np.exp(p["log_c"]) == pytest.approx(TRUE_C, abs=0.03)
    assert np.array(p["theta"]) == pytest.approx(TRUE_THETA, abs=0.05)
    scheds, Y = _synthetic(n=10, noise=0.0, seed=5)  # new schedules: predicted to within the noise level
    assert np.abs(fitted.law.predict(scheds) - Y).max() < 0.01
    again = FittedSchedule.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert np.allclose(again.law.predict(scheds), fitted.law.predict(scheds))


@pytest.mark.parametrize("seed", range(6))
def test_schedules_respect_availability_exactly(seed):
    rng = np.random.default_rng(seed)
    fitted = _fitted(gamma=TRUE_GAMMA)
    avail = {"a": float(rng.uniform(20, 400)), "b": float(rng.uniform(300, 2000))}
    for stages in (1, 2, 3):
        res = optimize_schedule(
            fitted, stages, available=avail, tokens=1000.0, max_epochs=float(rng.choice([1, 2]))
        )
        X = np.array([[st["mixture"][d] for d in "abc"] for st in res["schedule"]])
        shares = np.array([st["share"] for st in res["schedule"]])
        caps = np.array([res["constraints"]["caps"][d] for d in "abc"])
        assert (X >= 0).all() and np.allclose(X.sum(axis=1), 1, atol=1e-12)
        assert (shares @ X <= caps + 1e-12).all()
    # the raw repair also lands exactly on the constraints from an infeasible start
    X = repair(np.array([0.5, 0.5]), rng.dirichlet(np.ones(3), size=2) + 0.3, np.array([0.1, 1.0, 1.0]))
    assert np.allclose(X.sum(axis=1), 1) and np.array([0.5, 0.5]) @ X[:, 0] <= 0.1 + 1e-12


def test_schedule_beats_static_only_when_recency_and_scarcity():
    fitted = _fitted(gamma=TRUE_GAMMA)
    avail = {"a": 50.0}  # scarce a, which target x needs
    static = optimize_schedule(fitted, 1, available=avail, tokens=1000.0)
    staged = optimize_schedule(fitted, 2, available=avail, tokens=1000.0)
    assert staged["predicted"]["total"] < static["predicted"]["total"] - 1e-3
    assert staged["schedule"][-1]["mixture"]["a"] > staged["schedule"][0]["mixture"]["a"]  # scarce data late
    flat = _fitted(gamma=0.0)  # no recency: a schedule is worth exactly its overall mixture
    s1 = optimize_schedule(flat, 1, available=avail, tokens=1000.0)["predicted"]["total"]
    s2 = optimize_schedule(flat, 2, available=avail, tokens=1000.0)["predicted"]["total"]
    assert s2 == pytest.approx(s1, abs=1e-6)
    with pytest.raises(MixlawInputError, match="availability too small"):
        optimize_schedule(fitted, 2, available={"a": 1, "b": 1, "c": 1}, tokens=1000.0)


def test_staged_loader_tracks_stage_targets_and_counts_epochs_once():
    tokens = {d: np.arange(10_000, dtype=np.int64) + i * 100_000 for i, d in enumerate(("a", "b"))}
    stages = [(10, {"a": 1.0, "b": 0.0}), (20, {"a": 0.25, "b": 0.75})]
    loader = MixtureLoader(tokens, {"a": 0.625, "b": 0.375}, 8, 16, seed=0, stages=stages)
    first = np.concatenate([loader.next_batch() for _ in range(10)])
    assert (first < 100_000).all()  # stage 1: only a
    assert loader.batch_counts() == {"a": 80, "b": 0}
    for _ in range(10):
        loader.next_batch()
    assert loader.batch_counts() == {"a": 100, "b": 60}
    # a's windows continue across stages: 100 distinct windows, no repeat before the epoch ends
    assert loader.epochs()["a"] == pytest.approx(100 * 16 / 10_000)
    again = MixtureLoader(tokens, {"a": 0.625, "b": 0.375}, 8, 16, seed=0, stages=stages)
    again.skip_to(15)
    loader2 = MixtureLoader(tokens, {"a": 0.625, "b": 0.375}, 8, 16, seed=0, stages=stages)
    for _ in range(15):
        loader2.next_batch()
    assert np.array_equal(again.next_batch(), loader2.next_batch())


def test_run_ids_of_static_specs_are_unchanged_and_stages_enter_the_id():
    static = RunSpec(
        mixture=(("a", 0.5), ("b", 0.5)),
        layers=2,
        width=64,
        steps=100,
        seed=1,
        settings=TrainSettings(save_model=True),
        corpus_id="x",
    )
    assert static.run_id == "8c03711fe08b6ac7"  # the id before stages/init existed
    staged = RunSpec(
        mixture=(("a", 0.5), ("b", 0.5)),
        layers=2,
        width=64,
        steps=100,
        seed=1,
        corpus_id="x",
        stages=((0.5, (("a", 1.0), ("b", 0.0))), (0.5, (("a", 0.0), ("b", 1.0)))),
    )
    assert staged.run_id != static.run_id
    assert RunSpec.from_dict(staged.to_dict()) == staged
    assert stage_plan(staged) == [(50, {"a": 1.0, "b": 0.0}), (100, {"a": 0.0, "b": 1.0})]
    init = RunSpec(
        mixture=(("a", 0.5), ("b", 0.5)),
        layers=2,
        width=64,
        steps=100,
        seed=1,
        corpus_id="x",
        init_id="abc",
        init_from="/somewhere",
    )
    assert (
        init.run_id != static.run_id
        and init.run_id == RunSpec.from_dict({**init.to_dict(), "init_from": "/x"}).run_id
    )


def test_schedule_cli_fit_predict_optimize(tmp_path, capsys):
    scheds, Y = _synthetic()
    rows = []
    for i, (s, y) in enumerate(zip(scheds, Y)):
        base = {"run": f"r{i}", "step": 100, **{f"p_{d}": v for d, v in zip("abc", s.overall)}}
        if len(s.shares) > 1:
            base["n_stages"] = len(s.shares)
            for k, (a, m) in enumerate(zip(s.shares, s.mixtures), start=1):
                base[f"stage{k}_share"] = a
                base.update({f"stage{k}_p_{d}": v for d, v in zip("abc", m)})
        for t, name in enumerate(("x", "y")):
            rows.append({**base, "valid_domain": name, "loss": y[t]})
    runs = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(runs, index=False)
    law = tmp_path / "law.json"
    assert main(["schedule", "fit", str(runs), "--out", str(law), "-q"]) == 0
    assert abs(json.loads(law.read_text())["params"]["gamma"][0] - TRUE_GAMMA) < 0.2
    sfile = tmp_path / "s.yaml"
    sfile.write_text("- [{share: 0.75, mixture: {a: 1.0}}, {share: 0.25, mixture: {b: 0.5, c: 0.5}}]\n")
    capsys.readouterr()
    assert main(["schedule", "predict", str(law), str(sfile), "-q"]) == 0
    assert "pred_total" in capsys.readouterr().out
    out = tmp_path / "opt.json"
    assert (
        main(
            [
                "schedule",
                "optimize",
                str(law),
                "--tokens",
                "1000",
                "--available",
                "a=50",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert sum(st["share"] * st["mixture"]["a"] for st in res["schedule"]) <= 0.05 + 1e-12
    capsys.readouterr()
    assert main(["schedule", "optimize", str(law), "--tokens", "1000", "--available", "zz=5", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown domain 'zz'" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_staged_and_initialized_runs_end_to_end(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import yaml

    from mixlaw.train.sweep import InlineExecutor, load_sweep_config, prepare_sweep, run_sweep

    monkeypatch.setenv("MIXLAW_CACHE", str(tmp_path / "cache"))
    common = {
        "corpus": {
            "demo": {"max_bytes": 30_000, "math_tokens": 10_000, "tokenizer": "bytes", "valid_fraction": 0.2}
        },
        "models": ["L1-D32"],
        "steps": 8,
        "training": {"batch_size": 4, "seq_len": 32, "warmup_steps": 2, "eval_points": 1, "eval_tokens": 256},
    }
    base = {
        **common,
        "mixtures": [{"code": 0.5, "docs": 0.5}],
        "training": {**common["training"], "save_model": True},
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    cont = {
        **common,
        "init_from": "b",
        "schedules": [[{"share": 0.5, "mixture": {"code": 1.0}}, {"share": 0.5, "mixture": {"math": 1.0}}]],
    }
    (tmp_path / "cont.yaml").write_text(yaml.safe_dump(cont))
    cfg = load_sweep_config(tmp_path / "base.yaml")
    _, runs = prepare_sweep(cfg)
    run_sweep(runs, tmp_path / "b", executor=InlineExecutor(), progress=False)
    assert (tmp_path / "b" / "runs" / runs[0].run_id / "model.safetensors").is_file()
    cfg2 = load_sweep_config(tmp_path / "cont.yaml")
    _, runs2 = prepare_sweep(cfg2)
    assert runs2[0].init_id and dict(runs2[0].mixture)["code"] == 0.5
    table = run_sweep(runs2, tmp_path / "c", executor=InlineExecutor(), progress=False)
    assert set(table["init_run"]) == {runs[0].run_id}
    assert table["stage2_p_math"].iloc[0] == 1.0 and table["n_stages"].iloc[0] == 2
    cfg2.init_from = str(tmp_path / "nothing")
    with pytest.raises(MixlawInputError, match="file not found"):
        prepare_sweep(cfg2)


# -- honesty: the gain interval and the decline rule ----------------------------------------------------------


def _noise(loo: float, seed: float) -> dict:
    return {"loo": {"mode": "fixed-gamma", "rmse_total": loo}, "seed_sd": {"value": seed, "source": "test"}}


def test_schedule_gain_interval_holds_loo_and_seed_noise_and_decides():
    from mixlaw.schedule import gain_interval, schedule_recommendation

    g = gain_interval(0.066, _noise(0.093, 0.162), level=0.9)
    assert g["sd"] == pytest.approx(np.sqrt(2 * 0.093**2 + 2 * 0.162**2))
    assert g["lo"] < 0 < g["hi"] and g["p_beats_baseline"] < 0.9
    assert gain_interval(0.066, None)["lo"] is None

    fitted = _fitted(gamma=TRUE_GAMMA)
    avail = {"a": 50.0}
    static = optimize_schedule(fitted, 1, available=avail, tokens=1000.0)
    staged = optimize_schedule(fitted, 2, available=avail, tokens=1000.0)
    claimed = static["objective_value"] - staged["objective_value"]
    fitted.info["noise"] = _noise(claimed / 100, claimed / 100)  # errors far below the gain: recommend
    out = schedule_recommendation(fitted, staged, static)
    assert out["recommendation"]["verdict"] == "recommend"
    assert out["gain"]["over_static"]["value"] == pytest.approx(claimed)
    assert out["gain"]["over_baseline"]["value"] > 0 and out["static_optimum"]["objective_value"] > 0
    fitted.info["noise"] = _noise(claimed, claimed)  # errors as large as the gain: decline
    rec = schedule_recommendation(fitted, staged, static)["recommendation"]
    assert rec["verdict"] == "decline" and "includes 0" in rec["reason"]
    assert set(rec) >= {"verdict", "reason", "p_beats_baseline", "gain"} and rec["p_beats_baseline"] < 0.9
    fitted.info.pop("noise")  # an old law file without an error estimate: no intervals, decline
    rec = schedule_recommendation(fitted, staged, static)["recommendation"]
    assert rec["verdict"] == "decline" and "no intervals" in rec["reason"] and rec["gain"] is None


def _runs_csv(tmp_path, noise: float, seed: int = 0):
    scheds, Y = _synthetic(noise=noise, seed=seed)
    rows = []
    for i, (s, y) in enumerate(zip(scheds, Y)):
        base = {"run": f"r{i}", "step": 100, **{f"p_{d}": v for d, v in zip("abc", s.overall)}}
        if len(s.shares) > 1:
            base["n_stages"] = len(s.shares)
            for k, (a, m) in enumerate(zip(s.shares, s.mixtures), start=1):
                base[f"stage{k}_share"] = a
                base.update({f"stage{k}_p_{d}": v for d, v in zip("abc", m)})
        for t, name in enumerate(("x", "y")):
            rows.append({**base, "valid_domain": name, "loss": y[t]})
    runs = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(runs, index=False)
    return runs


def test_schedule_cli_declines_when_the_noise_swamps_the_gain(tmp_path, capsys):
    runs = _runs_csv(tmp_path, noise=0.05)
    law = tmp_path / "law.json"
    assert main(["schedule", "fit", str(runs), "--out", str(law), "--gamma", "2.5", "-q"]) == 0
    assert "seed sd" in capsys.readouterr().out
    noise = json.loads(law.read_text())["info"]["noise"]
    assert noise["loo"]["rmse_total"] > 0.01 and noise["seed_sd"]["replicates"] is False
    assert len(noise["loo"]["errors_total"]) == 24
    out = tmp_path / "opt.json"
    args = ["schedule", "optimize", str(law), "--tokens", "1000", "--available", "a=50", "--out", str(out)]
    assert main([*args, "-q"]) == 0
    captured = capsys.readouterr()
    assert "recommendation: decline. No confident recommendation" in captured.err
    assert "best-supported alternative: the best static mixture" in captured.err
    printed = json.loads(captured.out)
    res = json.loads(out.read_text())
    assert printed["recommendation"] == res["recommendation"]
    rec = res["recommendation"]
    assert rec["verdict"] == "decline" and set(rec) >= {"verdict", "reason", "p_beats_baseline", "gain"}
    assert set(rec["gain"]) == {"value", "lo", "hi"} and rec["gain"]["lo"] < 0 < rec["gain"]["hi"]
    for key in ("over_static", "over_baseline"):
        assert set(res["gain"][key]) >= {"value", "lo", "hi", "p_beats_baseline"}
    assert res["gain"]["seed_sd_source"].startswith("estimate")
    assert {"schedule", "predicted", "constraints", "static_optimum", "baseline"} <= set(res)


def test_seed_replicates_give_the_seed_noise():
    from mixlaw.schedule import ScheduleData, seed_noise

    fitted = _fitted()
    scheds, Y = _synthetic()
    rng = np.random.default_rng(3)
    twice = scheds[:6] + scheds[:6]
    total = np.concatenate([Y[:6].mean(axis=1)] * 2) + rng.normal(0, 0.05, 12)
    data = ScheduleData(
        twice, np.concatenate([Y[:6]] * 2), total, ["x", "y"], ["a", "b", "c"], None, None, 100
    )
    noise = seed_noise(data, fitted)
    pairs = total[:6] - total[6:]
    assert noise["replicates"] and noise["dof"] == 6
    assert noise["value"] == pytest.approx(np.sqrt((pairs**2 / 2).sum() / 6))


@pytest.mark.parametrize(
    ("noise", "named"),
    [
        ("x", "info.noise must be an object"),
        ({"loo": {"rmse_total": -1}, "seed_sd": {"value": 0.1}}, "info.noise.loo.rmse_total"),
        ({"loo": {"rmse_total": "0.1"}, "seed_sd": {"value": 0.1}}, "info.noise.loo.rmse_total"),
        ({"loo": {"rmse_total": 0.1}, "seed_sd": None}, "info.noise.seed_sd"),
        ({"loo": {"rmse_total": 0.1}, "seed_sd": {"value": float("nan")}}, "info.noise.seed_sd.value"),
    ],
)
def test_hand_edited_schedule_law_is_a_one_line_error(noise, named, tmp_path, capsys):
    data = _fitted().to_dict()
    data["info"]["noise"] = noise
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MixlawInputError, match="edited.json") as info:
        FittedSchedule.load(path)
    assert named in str(info.value)
    for command in (["optimize", str(path), "--stages", "1"], ["predict", str(path), str(path)]):
        capsys.readouterr()
        assert main(["schedule", *command, "-q"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "edited.json" in err and named in err
