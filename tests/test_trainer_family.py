"""The built-in trainer's backtest family (benchmarks/data/trainer_scale, checked in) and the schedule helpers of
the annealing law. No training here, and no ../shared."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.scaling import STEP_EXPONENT, AnnealingLaw, fit_curves, lr_areas, schedule_areas, schedule_lr
from mixlaw.train.spec import RunSpec, TrainSettings, cooldown_start
from mixlaw.train.trainer import lr_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bt():
    path = ROOT / "benchmarks" / "extrapolation_backtest.py"
    spec = importlib.util.spec_from_file_location("extrapolation_backtest", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fam(bt):
    return bt.load_trainer_family()


def test_trainer_family_names_mixtures_across_sizes(bt, fam):
    assert fam.name == bt.TRAINER and fam.targets == ["code", "docs", "math", "math-prose"]
    assert sorted(fam.params, key=fam.params.get) == ["L1-D32", "L2-D32", "L2-D48", "L3-D64"]
    runs = fam.wide.groupby("run")["model"].nunique()
    assert len(runs) == 6 and (runs == 4).all()  # one id per mixture, the same at every size
    uniform = fam.wide[fam.wide["run"] == "uniform"][fam.columns].drop_duplicates().to_numpy()
    assert np.allclose(uniform, 0.25)
    assert np.allclose(fam.total(fam.wide), fam.wide["total"])  # uniform weights over the 4 domains
    assert "/" not in fam.table.source.replace(
        "benchmarks/data/trainer_scale/", ""
    )  # relative, no machine path


def test_trainer_scenarios_extrapolate_at_the_issue_ratios(bt, fam):
    by_name = {sc.name: sc for sc in bt.scenarios(fam)}
    assert set(by_name) == {"steps_continued", "steps_3x", "size", "both"}
    cont = by_name["steps_continued"]
    assert cont.truth["step"].min() / cont.fit_max_step >= 3 and len(cont.truth) == 12
    assert set(cont.truth["model"]) == {"L1-D32", "L2-D48"}
    assert by_name["steps_3x"].truth["step"].unique().tolist() == [3 * by_name["steps_3x"].fit_max_step]
    for name in ("size", "both"):
        sc = by_name[name]
        assert "L3-D64" not in sc.fit_sizes and set(sc.truth["model"]) == {"L3-D64"} and len(sc.truth) == 6
        assert fam.params["L3-D64"] / max(fam.params[m] for m in sc.fit_sizes) >= 2.5
    assert by_name["both"].target_step / by_name["both"].fit_max_step == 3
    # the step fits never see the held-back checkpoints
    setting = bt.StepSetting(STEP_EXPONENT, "all", 3.0)
    for sc in by_name.values():
        if sc.kind != "size":
            assert bt.fit_frame(fam, sc, setting)["step"].max() <= sc.fit_max_step


def test_trainer_scenarios_are_predicted_for_every_pseudo_target(bt, fam):
    alpha, alpha_range = bt.trainer_size_exponents(fam)
    assert 0 < alpha_range[0] <= alpha_range[1] and alpha > 0
    setting = bt.StepSetting(STEP_EXPONENT, "all", 3.0)
    for sc in bt.scenarios(fam):
        pred = bt.with_total(fam, bt.predict_losses(fam, sc, setting, alpha))
        merged = bt.truth_vector(fam, sc, pred)
        assert len(merged) == len(sc.truth) and np.isfinite(merged["pred_total"]).all()
        assert merged.groupby("group")["reference"].sum().eq(1).all()


@pytest.mark.parametrize("schedule", ["constant", "wsd"])
@pytest.mark.parametrize("length", [7, 60, 301])
def test_schedule_lr_is_the_trainers_schedule(schedule, length):
    settings = TrainSettings(schedule=schedule, warmup_steps=20, cooldown_fraction=0.2, lr=3e-3)
    spec = RunSpec(mixture=(("a", 1.0),), layers=1, width=32, steps=length, settings=settings)
    expected = np.array([lr_at(spec, i) for i in range(length)]) / settings.lr
    if schedule == "wsd":  # trainer.cooldown: fork at cooldown_start, decay linearly over c updates
        start = cooldown_start(settings, length)
        c = length - start
        expected[start:] = [lr_at(spec, start + j) / settings.lr * (c - j) / c for j in range(c)]
    assert np.allclose(schedule_lr(length, schedule, 20, 0.2), expected)
    with pytest.raises(MixlawInputError, match="cosine"):
        schedule_lr(length, "cosine")


def test_annealing_law_on_the_trainers_schedules_predicts_a_longer_wsd_run():
    """Known law over the trainer's own constant and WSD schedules: fitted on runs <= 300 steps, it recovers
    alpha and predicts a 900-step WSD run (3x); a plain power law on the WSD endpoints does not."""
    L0, A, alpha, C = 2.0, 1.2, 0.6, 0.5
    ref = 300.0

    def law(s1, s2):
        return L0 + A * (s1 / ref) ** -alpha - C * s2 / ref

    wsd_steps = np.array([60.0, 100, 150, 200, 300])
    const_steps = np.array([40.0, 60, 80, 100, 130, 170, 220, 300])
    w1, w2 = schedule_areas(wsd_steps, "wsd")
    k1, k2 = schedule_areas(const_steps, "constant")
    assert np.all(k2 == 0) and np.all(w2 > 0)
    s1, s2 = np.concatenate([w1, k1]), np.concatenate([w2, k2])
    y = law(s1, s2) + np.random.default_rng(0).normal(0, 1e-4, len(s1))
    fitted = AnnealingLaw(grid=200).fit(s1, s2, y[None])
    assert fitted.alpha_[0] == pytest.approx(alpha, abs=0.03)
    t1, t2 = schedule_areas(np.array([900.0]), "wsd")
    truth = law(t1, t2)[0]
    pred = fitted.predict(t1, t2)[0, 0]
    assert abs(pred / truth - 1) < 0.005
    plain = fit_curves(
        "step", wsd_steps[:, None], law(w1, w2)[None], [{}], np.zeros(1, int), "none", ["step"]
    )
    assert abs(plain.predict(np.array([[900.0]]))[0, 0] / truth - 1) > 2 * abs(pred / truth - 1)
    assert np.allclose(schedule_areas(np.array([300.0]), "wsd")[0], lr_areas(schedule_lr(300, "wsd"))[0][-1])
