"""Confirmation rungs (`mixlaw.confirm`, `mixlaw confirm`): planning, the rule on stored run tables, the
fallback chain, one seed against paired seeds, the CLI's messages, exit codes and JSON keys. No training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixlaw.cli.main import main
from mixlaw.confirm import (
    Rung,
    decide,
    fallback_arms,
    judge,
    plan_rungs,
    rung_noise,
    rung_rows,
    rung_sd,
    rungs_from_rows,
    shrunk_mixture,
)
from mixlaw.errors import MixlawInputError
from mixlaw.runs import RunsTable, load_weights, validate_runs

CANDIDATE = np.array([0.7, 0.3])
BASELINE = np.array([0.5, 0.5])
BEST = np.array([0.35, 0.65])
RUNGS = [Rung("i", "small", 1000.0, 300.0), Rung("ii", "big", 4000.0, 100.0)]
STEPS = (50, 60, 70, 80, 90, 100)


def _table(gains: dict[str, dict[str, float]], seeds=(0, 1, 2), seed_effect=0.0, jitter=0.0) -> RunsTable:
    """A runs table of the arms at the rungs: loss = base(rung) - gain[arm][rung] + seed effect (shared by the
    arms of a seed) + per-run jitter, two validation domains, checkpoints up to each rung's steps."""
    mixes = {
        "baseline": BASELINE,
        "candidate": CANDIDATE,
        "shrunk": shrunk_mixture(CANDIDATE, BASELINE),
        "best": BEST,
    }
    rng = np.random.default_rng(0)
    rows = []
    for arm, per_rung in {"baseline": {"i": 0.0, "ii": 0.0}, **gains}.items():
        for rung in RUNGS:
            if rung.name not in per_rung:
                continue
            for seed in seeds:
                noise = rng.normal(0, jitter) if jitter else 0.0
                for k, f in enumerate(np.linspace(0.5, 1.0, 6)):
                    step = int(round(f * rung.steps))
                    level = 3.0 + 0.5 * (rung.steps / step) ** 0.5 - per_rung[rung.name]
                    level += seed_effect * (seed - 1) + noise + 0.002 * (-1) ** k
                    for d in ("x", "y"):
                        rows.append(
                            {
                                "run": f"{arm}-{rung.name}-{seed}",
                                "model": rung.model,
                                "params": rung.params,
                                "step": step,
                                "seed": seed,
                                "p_a": mixes[arm][0],
                                "p_b": mixes[arm][1],
                                "valid_domain": d,
                                "loss": level,
                            }
                        )
    return RunsTable(validate_runs(pd.DataFrame(rows), "rungs.csv"), "rungs.csv")


def _rows(table: RunsTable) -> pd.DataFrame:
    weights = load_weights(None, table.valid_domains)
    arms = {"baseline": BASELINE, **fallback_arms(CANDIDATE, BASELINE, BEST)}
    return rung_rows(table, weights, {"x": 0.5, "y": 0.5}, arms)


PREDICTED = {"candidate": [0.06, 0.06], "shrunk": [0.04, 0.04], "best_observed": [0.02, 0.02]}


def test_plan_rungs_largest_proxy_at_target_steps_and_target_size_at_proxy_steps():
    rungs = plan_rungs({"a": 10.0, "b": 30.0}, 500, "T", 80.0, 1500)
    assert [(r.name, r.model, r.params, r.steps) for r in rungs] == [
        ("i", "b", 30.0, 1500.0),
        ("ii", "T", 80.0, 500.0),
        ("proxy", "b", 30.0, 500.0),  # the anchor: the largest proxy as trained
    ]
    assert len(plan_rungs({"a": 10.0, "b": 30.0}, 500, "T", 80.0, 1500, anchor=False)) == 2
    between = plan_rungs({"a": 10.0, "b": 30.0}, 500, "T", 80.0, 1500, size=("M", 50.0))
    assert between[1].model == "M" and between[1].params == 50.0
    assert plan_rungs({"a": 10.0, "b": 30.0}, 500, "T", 80.0, 500) == []  # rung (ii) would be the target
    with pytest.raises(MixlawInputError, match="not larger than the largest proxy"):
        plan_rungs({"a": 10.0, "b": 30.0}, 500, "T", 80.0, 1500, size=("M", 20.0))


def test_claim_when_every_rung_holds_with_paired_seeds():
    rows = _rows(_table({"candidate": {"i": 0.05, "ii": 0.04}}, jitter=0.003))
    assert rungs_from_rows(rows)[0].params == 1000.0
    record = decide(rows, RUNGS, PREDICTED, fraction=0.5, chain=["candidate"])
    assert record["verdict"] == "claim" and record["fallback"] is None and record["arm"] == "candidate"
    for r in record["rungs"]:
        assert set(r) >= {"size", "steps", "predicted_gain", "measured_gain", "sd", "seeds", "passed"}
        assert r["seeds"] == [0, 1, 2] and r["passed"] and r["sd"] > 0
    assert record["rungs"][0]["measured_gain"] == pytest.approx(0.05, abs=0.01)
    json.dumps(record)  # JSON-able


def test_below_the_fraction_of_the_prediction_is_no_claim():
    rows = _rows(_table({"candidate": {"i": 0.05, "ii": 0.02}}))
    record = decide(rows, RUNGS, PREDICTED, fraction=0.5, chain=["candidate"])
    assert (
        record["verdict"] == "no_claim" and record["arm"] == "baseline" and record["fallback"] == "baseline"
    )
    assert [r["passed"] for r in record["rungs"]] == [True, False]  # 0.02 < 0.5 x 0.06
    assert "rung ii" in record["reason"]
    assert decide(rows, RUNGS, PREDICTED, fraction=0.25, chain=["candidate"])["verdict"] == "claim"


def test_fallback_order_shrunk_then_best_observed_then_baseline():
    gains = {
        "candidate": {"i": -0.02, "ii": 0.01},
        "shrunk": {"i": 0.03, "ii": 0.03},
        "best": {"i": 0.02, "ii": 0.02},
    }
    rows = _rows(_table(gains))
    record = decide(rows, RUNGS, PREDICTED, fraction=0.5)
    assert record["verdict"] == "claim" and record["fallback"] == "shrunk"
    assert [w["arm"] for w in record["chain"]] == ["candidate", "shrunk"]
    gains["shrunk"] = {"i": 0.0, "ii": 0.0}
    record = decide(_rows(_table(gains)), RUNGS, PREDICTED, fraction=0.5)
    assert record["fallback"] == "best_observed" and record["verdict"] == "claim"
    gains["best"] = {"i": -0.05, "ii": 0.0}
    record = decide(_rows(_table(gains)), RUNGS, PREDICTED, fraction=0.5)
    assert record["verdict"] == "no_claim" and record["fallback"] == "baseline"
    assert [w["arm"] for w in record["chain"]] == ["candidate", "shrunk", "best_observed"]
    assert "keep the baseline" in record["reason"]


def test_an_untrained_fallback_stops_the_walk_and_says_what_to_train():
    rows = _rows(_table({"candidate": {"i": -0.02, "ii": -0.01}}))
    record = decide(rows, RUNGS, PREDICTED, fraction=0.5)
    assert record["verdict"] == "no_claim" and record["next"]["arm"] == "shrunk"
    assert [(r["model"], r["steps"]) for r in record["next"]["rungs"]] == [("small", 300.0), ("big", 100.0)]


def test_paired_seeds_cancel_a_seed_effect_shared_by_the_arms():
    # a seed effect of 0.1 per seed dwarfs the 0.03 gain, but both arms share it: the paired sd is ~0
    rows = _rows(_table({"candidate": {"i": 0.03, "ii": 0.03}}, seed_effect=0.1))
    record = decide(rows, RUNGS, PREDICTED, fraction=0.25, chain=["candidate"])
    assert record["verdict"] == "claim"
    assert all(r["sd"] < 1e-6 for r in record["rungs"])
    pooled = rows[rows["arm"] == "candidate"].groupby("seed")["objective"].mean().std()
    assert pooled > 0.05  # an unpaired rule would have called this noise


def test_one_seed_uses_the_checkpoint_noise_estimate():
    table = _table({"candidate": {"i": 0.05, "ii": 0.05}}, seeds=(0,))
    rows = _rows(table)
    weights = load_weights(None, table.valid_domains)
    noise = {r.name: rung_noise(table, weights, r) for r in RUNGS}
    assert all(v is not None and 0 < v < 0.01 for v in noise.values())  # the +-0.002 checkpoint zigzag
    record = decide(rows, RUNGS, PREDICTED, fraction=0.5, noise=noise, chain=["candidate"])
    assert record["verdict"] == "claim"
    r = record["rungs"][0]
    assert r["seeds"] == [0] and r["sd"] == pytest.approx(math.sqrt(2) * noise["i"])
    assert "one seed" in r["sd_source"]
    # without a noise estimate a one-seed rung cannot pass
    assert decide(rows, RUNGS, PREDICTED, fraction=0.5, chain=["candidate"])["verdict"] == "no_claim"
    # a large noise estimate turns the same gains into no claim
    loud = {k: 0.05 for k in noise}
    assert (
        decide(rows, RUNGS, PREDICTED, fraction=0.5, noise=loud, chain=["candidate"])["verdict"] == "no_claim"
    )


def test_judge_and_sd_rules():
    assert rung_sd([0.1, 0.2, 0.3], None) == pytest.approx(0.1 / math.sqrt(3))
    assert rung_sd([0.1], 0.01) == pytest.approx(0.01 * math.sqrt(2))
    assert rung_sd([0.1], None) is None
    assert judge(0.05, 0.01, 0.06, 0.5) and not judge(0.05, 0.03, 0.06, 0.5)
    assert not judge(0.0, 0.0, -0.1, 0.5)  # a zero gain never passes
    assert not judge(0.05, None, 0.06, 0.5)
    with pytest.raises(MixlawInputError, match="fraction"):
        decide(pd.DataFrame(columns=["arm", "params", "step", "seed", "objective"]), RUNGS, PREDICTED, 2.0)


def test_fallback_arms_drop_duplicates_and_shrink_toward_the_baseline():
    arms = fallback_arms(CANDIDATE, BASELINE, BEST, 0.5)
    assert list(arms) == ["candidate", "shrunk", "best_observed"]
    assert arms["shrunk"] == pytest.approx([0.6, 0.4])
    assert list(fallback_arms(CANDIDATE, BASELINE, CANDIDATE)) == ["candidate", "shrunk"]
    assert list(fallback_arms(CANDIDATE, BASELINE, None, 1.0)) == ["candidate"]  # shrunk == baseline


# --------------------------------------------------------------------------------------------- CLI


def _results(tmp: Path, gain: float = 0.06) -> Path:
    folder = tmp / "results"
    folder.mkdir()
    optimum = {
        "mixture": {"p_a": 0.7, "p_b": 0.3},
        "predicted": {"objective": 3.0},
        "objective": {"weights": {"x": 0.5, "y": 0.5}},
        "baseline": {
            "name": "natural",
            "mixture": {"p_a": 0.5, "p_b": 0.5},
            "predicted": {"objective": 3.0 + gain},
        },
        "gain": {"value": gain, "lo": 0.01, "hi": 0.1},
        "alternative": {
            "name": "observed mixture m1",
            "mixture": {"p_a": 0.35, "p_b": 0.65},
            "predicted": 3.04,
        },
    }
    (folder / "optimum.json").write_text(json.dumps(optimum))
    return folder


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_claims_and_writes_confirm_json(tmp_path, capsys):
    folder = _results(tmp_path)
    runs = tmp_path / "rungs.csv"
    _table({"candidate": {"i": 0.05, "ii": 0.04}}, jitter=0.003).frame.to_csv(runs, index=False)
    code, out, err = _run(["confirm", str(folder), "--runs", str(runs), "--fraction", "0.5"], capsys)
    assert code == 0, err
    assert out.startswith("confirmation: CLAIM (candidate)")
    record = json.loads((folder / "confirm.json").read_text())
    assert set(record) >= {"verdict", "rungs", "fallback", "fraction", "reason", "chain", "predicted_source"}
    assert record["verdict"] == "claim" and record["fraction"] == 0.5 and len(record["rungs"]) == 2
    assert record["rungs"][0]["predicted_gain"] == pytest.approx(0.06)  # the target-scale gain (no law.json)


def test_cli_declines_and_names_the_next_runs(tmp_path, capsys):
    folder = _results(tmp_path)
    runs = tmp_path / "rungs.csv"
    _table({"candidate": {"i": -0.03, "ii": 0.0}}).frame.to_csv(runs, index=False)
    out_json = tmp_path / "c.json"
    code, out, err = _run(
        ["confirm", str(folder / "optimum.json"), "--runs", str(runs), "--out", str(out_json)], capsys
    )
    assert code == 0, err
    assert out.startswith("confirmation: NO CLAIM (baseline)")
    assert "next: train the shrunk mixture at small x 300, big x 100" in out
    assert json.loads(out_json.read_text())["next"]["arm"] == "shrunk"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f, r: ["--runs", str(f / "missing.csv")], "missing.csv"),
        (lambda f, r: ["--runs", str(r), "--fraction", "2"], "fraction"),
        (lambda f, r: ["--runs", str(r), "--out", str(f)], "is a folder"),
        (lambda f, r: ["--runs", str(f / "other.csv")], "no run of the candidate"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, change, message):
    folder = _results(tmp_path)
    runs = tmp_path / "rungs.csv"
    table = _table({"candidate": {"i": 0.05, "ii": 0.04}})
    table.frame.to_csv(runs, index=False)
    table.frame.assign(p_a=0.2, p_b=0.8).to_csv(folder / "other.csv", index=False)
    code, out, err = _run(["confirm", str(folder), *change(folder, runs)], capsys)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("mixlaw: error:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err


def test_cli_folder_without_optimum_is_exit_2(tmp_path, capsys):
    runs = tmp_path / "rungs.csv"
    _table({"candidate": {"i": 0.05, "ii": 0.04}}).frame.to_csv(runs, index=False)
    code, _, err = _run(["confirm", str(tmp_path), "--runs", str(runs)], capsys)
    assert code == 2 and "no optimum.json" in err


# --------------------------------------------------------------------------------------------- mixlaw run


def test_the_validation_claims_only_what_the_rungs_confirmed():
    from mixlaw.job.rungs import recommendation_block, with_confirmation

    win = {"result": "win", "text": "The chosen mixture beat the baseline.", "claimed": True}
    confirmed = {
        "verdict": "claim",
        "fallback": None,
        "reason": "The candidate passed every rung.",
        "arm": "candidate",
    }
    assert with_confirmation(win, confirmed)["claimed"] is True
    failed = {"verdict": "no_claim", "fallback": "baseline", "reason": "No claim: ...", "arm": "baseline"}
    out = with_confirmation(win, failed)
    assert out["claimed"] is False and out["confirmation"] == "no_claim" and "not claimed" in out["text"]
    shrunk = {**confirmed, "fallback": "shrunk", "arm": "shrunk"}
    assert with_confirmation(win, shrunk)["claimed"] is False  # the validation trained the candidate, not it
    assert with_confirmation(win, None) == win
    rec = recommendation_block(
        {"recommendation": {"verdict": "recommend", "reason": "r"}}, {**failed, "rungs": [], "fraction": 0.25}
    )
    assert rec["verdict"] == "recommend" and rec["confirmation"]["verdict"] == "no_claim"
    assert set(rec["confirmation"]) >= {"verdict", "rungs", "fallback", "fraction"}


def test_the_confirm_block_of_a_run_config():
    pytest.importorskip("torch")
    import copy

    from mixlaw.job.config import load_run_config, parse_run_config

    cfg = load_run_config(None)
    assert cfg.confirm is not None and cfg.confirm.seeds == 1
    raw = copy.deepcopy(cfg.raw)
    assert parse_run_config({**raw, "confirm": False}, "c.yaml").confirm is None
    got = parse_run_config(
        {**raw, "confirm": {"fraction": 0.4, "seeds": 2, "size": "L2-D80"}}, "c.yaml"
    ).confirm
    assert (got.fraction, got.seeds, got.size) == (0.4, 2, "L2-D80")
    for block, message in [
        ({"seeds": 9}, "more than the 3 validation seeds"),
        ({"fraction": -1}, "confirm.fraction"),
        ({"size": "L1-D8"}, "confirm.size"),
        ({"nope": 1}, "unknown key"),
    ]:
        with pytest.raises(MixlawInputError, match=message):
            parse_run_config({**raw, "confirm": block}, "c.yaml")


def test_cli_on_a_stored_run_folder_agrees_with_the_runs_own_decision(tmp_path, capsys):
    fixture = Path(__file__).parent / "fixtures" / "confirm_run"
    out_json = tmp_path / "confirm.json"
    code, out, err = _run(
        ["confirm", str(fixture), "--runs", str(fixture / "rungs.csv"), "--out", str(out_json)], capsys
    )
    assert code == 0, err
    mine, run = json.loads(out_json.read_text()), json.loads((fixture / "confirm.json").read_text())
    assert mine["verdict"] == run["verdict"] == "no_claim" and mine["fallback"] == "baseline"
    assert [w["arm"] for w in mine["chain"]] == [w["arm"] for w in run["chain"]]
    for a, b in zip(mine["chain"], run["chain"]):
        for r, s in zip(a["rungs"], b["rungs"]):
            assert (r["rung"], r["model"], r["steps"]) == (s["rung"], s["model"], s["steps"])
            assert r["measured_gain"] == pytest.approx(s["measured_gain"])
            assert r["sd"] == pytest.approx(s["sd"])
            # the CLI predicts with the target-scale law, the run at each rung's scale: close, not equal
            assert r["predicted_gain"] == pytest.approx(s["predicted_gain"], rel=0.2)
    assert mine["predicted_source"].startswith("law.json")
    assert "NO CLAIM" in out


def test_a_rung_far_below_its_prediction_is_reported_as_a_shrinking_gain():
    from mixlaw.confirm import shrinking_gain

    rungs = [
        {"rung": "i", "model": "L2-D64", "steps": 3000.0, "predicted_gain": 0.136, "measured_gain": 0.021},
        {"rung": "ii", "model": "L2-D144", "steps": 1000.0, "predicted_gain": 0.131, "measured_gain": 0.073},
        {"rung": "ii", "model": "L2-D144", "steps": 1000.0, "predicted_gain": 0.131, "measured_gain": None},
    ]
    warnings = shrinking_gain(rungs)
    assert len(warnings) == 1 and "rung i (L2-D64 x 3000)" in warnings[0] and "15%" in warnings[0]


# --------------------------------------------------------------------------------------------- the anchor


def _rec(name, predicted, measured, sd=0.01, seeds=(0,), losses=None):
    """A rung record as `arm_rungs` writes it; losses = (pred arm, pred base, meas arm, meas base)."""
    pa, pb, ma, mb = losses or (None, None, None, None)
    return {
        "rung": name,
        "judged": name != "proxy",
        "predicted_gain": predicted,
        "measured_gain": measured,
        "sd": sd,
        "seeds": list(seeds),
        "predicted_arm_loss": pa,
        "predicted_baseline_loss": pb,
        "arm_loss": ma,
        "baseline_loss": mb,
    }


def test_the_anchor_recovers_errors_additive_over_the_two_scale_moves():
    from mixlaw.confirm import anchor_target

    e_mix, e_steps, e_size, law = -0.02, -0.05, -0.04, 0.10
    recs = [
        _rec("i", law, law + e_mix + e_steps),
        _rec("ii", law, law + e_mix + e_size),
        _rec("proxy", law, law + e_mix),
    ]
    got = anchor_target(recs, law, baseline_loss=3.0, residual=0.0)
    assert got["gain"]["value"] == pytest.approx(law + e_mix + e_steps + e_size)
    assert got["gain"]["sd"] == pytest.approx(math.sqrt(3) * 0.01)
    assert got["terms"] == pytest.approx({"i": e_mix + e_steps, "ii": e_mix + e_size, "proxy": -e_mix})
    assert got["note"] is None and got["verdict"] == "decline"  # -0.01 nats: no confident gain
    assert got["measured"]["lo"] < got["gain"]["lo"]  # one more measurement at the target
    wider = anchor_target(recs, law, baseline_loss=3.0, residual=0.01)
    assert wider["gain"]["sd"] == pytest.approx(math.sqrt(3 * 0.01**2 + 0.03**2))
    without = anchor_target(recs[:2], law, baseline_loss=3.0)
    assert "counts twice" in without["note"]
    assert anchor_target(recs[1:], law) is None  # rung i missing: nothing to anchor on


def test_the_anchored_loss_moves_the_law_by_the_rungs_ratios():
    from mixlaw.confirm import anchor_target

    # the law is 10% low at rung i and 5% low at rung ii, exact at the proxy rung, for both arms
    recs = [
        _rec("i", 0.1, 0.1, losses=(2.0, 2.1, 2.2, 2.31)),
        _rec("ii", 0.1, 0.1, losses=(1.8, 1.9, 1.89, 1.995)),
        _rec("proxy", 0.1, 0.1, losses=(2.5, 2.6, 2.5, 2.6)),
    ]
    got = anchor_target(recs, 0.1, arm_loss=1.5, baseline_loss=1.6)
    assert got["loss"]["arm"] == pytest.approx(1.5 * 1.1 * 1.05)
    assert got["loss"]["baseline"] == pytest.approx(1.6 * 1.1 * 1.05)
    assert anchor_target(recs, 0.1)["loss"] is None  # no target losses given


def test_a_rung_pass_with_a_failing_anchored_target_is_no_claim():
    from mixlaw.confirm import TargetPrediction

    rows = _rows(_table({"candidate": {"i": 0.06, "ii": 0.06}}, jitter=0.004))
    kept = decide(rows, RUNGS, {"candidate": [0.06, 0.06]}, 0.0, chain=["candidate"])
    assert kept["verdict"] == "claim"
    # the law expected 0.2 at both rungs and at the target: anchored, the target gain is 0.2 - 2 x 0.14 < 0
    target = TargetPrediction({"candidate": 0.2}, {"candidate": 2.8, "baseline": 3.0})
    record = decide(rows, RUNGS, {"candidate": [0.2, 0.2]}, 0.0, chain=["candidate"], target=target)
    step = record["chain"][0]
    assert step["rungs_passed"] is True and step["passed"] is False
    assert record["verdict"] == "no_claim" and record["target"]["gain"]["value"] < 0
    assert "rung-anchored target gain" in record["reason"]
    assert set(record["target"]) >= {"gain", "p_beats_baseline", "measured", "loss", "terms", "verdict"}
    # the same rungs with the law right: the anchor holds and the claim says so
    ok = decide(rows, RUNGS, {"candidate": [0.06, 0.06]}, 0.0, chain=["candidate"], target=target)
    assert ok["verdict"] == "claim" and "anchored target gain holds" in ok["reason"]


def test_three_points_of_a_runs_table_are_the_proxy_anchor_and_the_two_rungs():
    rows = pd.DataFrame(
        [
            {"arm": "candidate", "model": m, "params": p, "step": s}
            for m, p, s in [("big", 4000.0, 100.0), ("small", 1000.0, 100.0), ("small", 1000.0, 300.0)]
        ]
    )
    names = [(r.name, r.model, r.steps) for r in rungs_from_rows(rows)]
    assert names == [("i", "small", 300.0), ("ii", "big", 100.0), ("proxy", "small", 100.0)]


def test_a_claimed_fallback_is_measured_at_the_target_and_its_result_is_the_claim():
    from types import SimpleNamespace

    from mixlaw.job.rungs import claimed_fallback, recommended_block, with_recommended

    assert claimed_fallback(None) is None
    assert claimed_fallback({"verdict": "claim", "fallback": None, "arm": "candidate"}) is None
    assert claimed_fallback({"verdict": "no_claim", "fallback": "baseline", "arm": "baseline"}) is None
    record = {"verdict": "claim", "fallback": "shrunk", "arm": "shrunk", "mixture": {"p_a": 0.6, "p_b": 0.4}}
    anchored = {
        "gain": {"value": 0.03, "lo": 0.01, "hi": 0.05},
        "p_beats_baseline": 0.99,
        "measured": {"lo": 0.0, "hi": 0.06, "seeds": 3},
        "loss": {"arm": 2.9},
    }
    record["chain"] = [{"arm": "candidate", "target": None}, {"arm": "shrunk", "target": anchored}]
    assert claimed_fallback(record) == ("shrunk", {"p_a": 0.6, "p_b": 0.4})
    lost = {"result": "loss", "text": "The baseline beat the chosen mixture."}
    measured = SimpleNamespace(
        arms={"optimum": {"mixture": {"a": 0.6}, "runs": ["r1"], "measured": {"mean": 3.0, "std": 0.01}}},
        gain={"measured": -0.02, "paired": {"mean": -0.02, "std": 0.01, "n": 3}},
        verdict=lost,
    )
    block = recommended_block("shrunk", measured, record)
    assert block["arm"] == "shrunk" and block["gain"]["anchored"]["inside"] is False
    assert block["gain"]["anchored"]["optimum_rel_error"] == pytest.approx(2.9 / 3.0 - 1)
    verdict = with_recommended({"result": "within noise", "text": "t.", "claimed": False}, block)
    assert verdict["claimed"] is False and verdict["claimed_arm"] == "shrunk" and "shrunk" in verdict["text"]
    won = with_recommended(
        {"result": "loss", "text": "t."}, {**block, "verdict": {"result": "win", "text": "w"}}
    )
    assert won["claimed"] is True


def test_rung_ii_outside_the_size_regime_is_left_out_of_the_losses_not_the_gain():
    from mixlaw.confirm import anchor_target

    # at the proxies' steps the larger model (rung ii) is worse than the largest proxy: losses rise with size
    recs = [
        _rec("i", 0.10, 0.09, losses=(2.0, 2.1, 2.02, 2.11)),
        _rec("ii", 0.10, 0.08, losses=(2.5, 2.6, 2.80, 2.88)),
        _rec("proxy", 0.10, 0.10, losses=(2.6, 2.7, 2.6, 2.7)),
    ]
    got = anchor_target(recs, 0.10, arm_loss=1.9, baseline_loss=2.0)
    assert got["loss_rungs"] == ["i", "proxy"] and "size law" in got["note"]
    assert got["loss"]["arm"] == pytest.approx(1.9 * 2.02 / 2.0)
    # the gain (a difference at one scale: the common level error cancels) keeps every rung
    assert set(got["terms"]) == {"i", "ii", "proxy"}
    assert got["gain"]["value"] == pytest.approx(0.10 - 0.01 - 0.02)
    # a larger model that is better at those steps keeps rung ii for the losses too
    ok = [recs[0], _rec("ii", 0.10, 0.08, losses=(2.5, 2.6, 2.50, 2.58)), recs[2]]
    assert anchor_target(ok, 0.10)["loss_rungs"] == ["i", "ii", "proxy"]


def test_an_anchored_confirmation_supersedes_the_pipelines_decline():
    from mixlaw.job.rungs import with_confirmation

    declined = {"result": "win", "text": "Won.", "claimed": False, "recommendation": "decline"}
    record = {"verdict": "claim", "fallback": None, "arm": "candidate", "reason": "The candidate passed."}
    assert with_confirmation(declined, record)["claimed"] is False  # rungs without an anchor: still declined
    out = with_confirmation(declined, {**record, "target": {"gain": {"value": 0.1}}})
    assert out["claimed"] is True and "rests on them" in out["text"]
    lost = {**declined, "result": "loss"}
    assert with_confirmation(lost, {**record, "target": {"gain": {"value": 0.1}}})["claimed"] is False


def test_rung_noise_counts_only_the_runs_that_end_at_the_rung():
    # rung i (300 steps) has checkpoints at 150..300; the proxy rung (same size) ends at 150: its noise must
    # come from the 150-step runs alone, not fail on the two curves that share step 150
    proxy = Rung("proxy", "small", 1000.0, 150.0)
    table = _table({"candidate": {"i": 0.05, "ii": 0.04}}, seeds=(0,))
    frame = table.frame
    short = frame[frame["run"].str.contains("-i-")].copy()
    short["step"] = (short["step"] / 2).round().astype(int)
    short["run"] = short["run"].str.replace("-i-", "-proxy-")
    # constant learning rate: the proxy run's last checkpoint equals rung i's checkpoint at that step
    at150 = frame[frame["run"].str.contains("-i-") & (frame["step"] == 150)]
    same = at150.set_index([at150["run"].str.replace("-i-", "-proxy-"), "valid_domain"])["loss"]
    last = short["step"] == 150
    short.loc[last, "loss"] = [
        same[(r, d)] for r, d in zip(short.loc[last, "run"], short.loc[last, "valid_domain"])
    ]
    both = RunsTable(validate_runs(pd.concat([frame, short], ignore_index=True), "rungs.csv"), "rungs.csv")
    weights = load_weights(None, both.valid_domains)
    sd = rung_noise(both, weights, proxy)
    assert sd is not None and sd > 0
