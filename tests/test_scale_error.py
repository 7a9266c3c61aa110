"""Scale-aware intervals (issue 14 item 2): the scale-error model, its LAW.json record, and its use in
`mixlaw predict --interval`, optimum.json's intervals and the gain block. Synthetic scale data with known
laws (no ../shared)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_solve import _table

from mixlaw import scale_error
from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FittedLaw
from mixlaw.gains import gain_intervals
from mixlaw.scale_error import GroupErrors, ScaleErrorModel, fit_model, scale_record
from mixlaw.uncertainty import Ensemble, optimum_uncertainty

MODEL = ScaleErrorModel(0.01, 0.004, 0.002, 0.001, "test")
COMMON_ONLY = ScaleErrorModel(0.02, 0.01, 0.0, 0.0, "test")


def test_model_sds_grow_with_the_extrapolation_ratio_and_vanish_inside_the_fitted_range():
    assert MODEL.common_sd(1.0, 1.0) == 0 and MODEL.mixture_sd(0.5, 0.8) == 0
    assert MODEL.common_sd(3.0, 1.0) == pytest.approx(0.01 * math.log(3))
    assert MODEL.common_sd(3.0, 2.5) == pytest.approx(math.hypot(0.01 * math.log(3), 0.004 * math.log(2.5)))
    sds = [scale_error.loss_sd(scale_record(MODEL, r, r), np.array([3.0]))[0] for r in (1.0, 1.5, 3.0, 5.0)]
    assert sds[0] == 0 and all(a < b for a, b in zip(sds, sds[1:]))


def test_gain_sd_leaves_out_the_common_mode():
    record = scale_record(COMMON_ONLY, 4.0, 3.0, {"total": 0.0})
    pred = np.array([2.9, 3.1])
    assert (scale_error.loss_sd(record, pred) > 0.02).all()
    assert np.allclose(scale_error.gain_sd(record, pred, 3.0), 0.0)
    both = scale_record(MODEL, 4.0, 3.0)
    expected = both["mixture_sd_rel"] * np.sqrt(pred**2 + 3.0**2)
    assert np.allclose(scale_error.gain_sd(both, pred, 3.0), expected)


def test_fit_model_recovers_known_coefficients_from_synthetic_groups():
    rng = np.random.default_rng(0)
    a, c = 0.01, 0.003
    groups = []
    for i in range(400):
        steps, size = (3.0, 1.0) if i % 2 else (1.0, 3.0)
        common = rng.normal(0, a * math.log(3))
        own = rng.normal(0, c * math.log(3), 20)
        e = common + own
        gain_error = own - own[0]
        gain_error[0] = np.nan
        groups.append(GroupErrors(steps, size, e, np.zeros(20), gain_error, np.zeros(20)))
    model = fit_model(groups, "synthetic")
    # the NNLS moments give the sds; the conformal factor then rescales them to 90% coverage (a normal's own)
    for fitted, true in [
        (model.steps_common, a),
        (model.size_common, a),
        (model.steps_mixture, c),
        (model.size_mixture, c),
    ]:
        assert fitted == pytest.approx(true, rel=0.25)
    assert model.calibrated_on == "synthetic"


def test_widen_adds_half_widths_in_quadrature():
    lo, hi = scale_error.widen(np.array([1.0]), np.array([0.7]), np.array([1.4]), np.array([0.1]), 0.9)
    z = scale_error.z_value(0.9)
    assert lo[0] == pytest.approx(1 - math.hypot(0.3, z * 0.1))
    assert hi[0] == pytest.approx(1 + math.hypot(0.4, z * 0.1))


@pytest.mark.parametrize(
    "edit, key",
    [
        ({"common_sd_rel": -0.1}, "common_sd_rel"),
        ({"steps_ratio": "three"}, "steps_ratio"),
        ({"kind": "other"}, "kind"),
        ({"coefficients": {"steps_common": 0.1}}, "coefficients.size_common"),
        ({"variant_sd_rel": {"total": float("nan")}}, "variant_sd_rel.total"),
    ],
)
def test_check_record_names_the_bad_key(edit, key):
    record = {**scale_record(MODEL, 3.0, 2.0), **edit}
    with pytest.raises(MixlawInputError, match=f"law.json: scale_uncertainty.{key}"):
        scale_error.check_record(record, "law.json")


# --------------------------------------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory):
    """`mixlaw pipeline` once on the known-law table of test_solve: 3 sizes up to 12k params, steps <= 40;
    target 40k params at step 120 (3x steps, 3.33x size)."""
    from mixlaw.cli.main import main

    root = tmp_path_factory.mktemp("scale")
    _table().to_csv(root / "runs.csv", index=False)
    argv = ["pipeline", str(root / "runs.csv"), "--target-params", "40000", "--target-step", "120"]
    argv += ["--law", "dml", "--cv", "3", "--bootstrap", "10", "--out", str(root / "out"), "-q"]
    assert main(argv) == 0
    return root


def test_pipeline_records_the_job_ratios_and_the_scale_record(pipeline_out):
    law = json.loads((pipeline_out / "out" / "law.json").read_text())
    record = law["scale_uncertainty"]
    assert record["steps_ratio"] == pytest.approx(3.0)
    assert record["size_ratio"] == pytest.approx(40_000 / 12_000)
    model = scale_error.DEFAULT_MODEL
    assert record["common_sd_rel"] == pytest.approx(model.common_sd(3.0, 40_000 / 12_000))
    assert record["calibrated_on"] == model.calibrated_on and record["n_variants"] == 3
    assert set(record["variant_sd_rel"]) >= {"total", "code"}
    optimum = json.loads((pipeline_out / "out" / "optimum.json").read_text())
    assert optimum["uncertainty"]["scale_uncertainty"]["steps_ratio"] == pytest.approx(3.0)
    for key in ("value", "lo", "hi", "bootstrap", "variant_sd", "scale_sd", "variants"):
        assert key in optimum["gain"]
    assert optimum["recommendation"]["gain"]["lo"] == pytest.approx(optimum["gain"]["lo"])


def test_law_json_round_trip_with_and_without_the_record(pipeline_out, tmp_path):
    path = pipeline_out / "out" / "law.json"
    law = FittedLaw.load(path)
    assert law.meta["scale_uncertainty"]["kind"] == "scale_error"
    law.save(tmp_path / "again.json")
    assert FittedLaw.load(tmp_path / "again.json").meta["scale_uncertainty"] == law.meta["scale_uncertainty"]
    data = json.loads(path.read_text())
    del data["scale_uncertainty"]  # a file from before this version
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert "scale_uncertainty" not in FittedLaw.load(tmp_path / "old.json").meta


def _with_record(pipeline_out, tmp_path, name, record):
    data = json.loads((pipeline_out / "out" / "law.json").read_text())
    if record is None:
        del data["scale_uncertainty"]
    else:
        data["scale_uncertainty"] = record
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_optimum_intervals_widen_and_gains_exclude_the_common_mode(pipeline_out):
    law = FittedLaw.load(pipeline_out / "out" / "law.json")
    ensemble = Ensemble.from_fitted(law)
    optimum = json.loads((pipeline_out / "out" / "optimum.json").read_text())
    x = optimum["mixture"]
    base = optimum["baseline"]["mixture"]
    record = scale_record(COMMON_ONLY, 3.0, 40_000 / 12_000, {"total": 0.0})
    plain = optimum_uncertainty(ensemble, x, base, reoptimize_members=False)
    scaled = optimum_uncertainty(ensemble, x, base, reoptimize_members=False, scale=record)
    width = {
        k: v["predicted"]["total"]["hi"] - v["predicted"]["total"]["lo"]
        for k, v in [("p", plain), ("s", scaled)]
    }
    assert width["s"] > width["p"] + 2 * 1.64 * 0.9 * record["common_sd_rel"] * 2.5
    assert scaled["improvement"]["lo"] == pytest.approx(
        min(plain["improvement"]["lo"], plain["improvement"]["value"])
    )
    X = np.array([list(x.values())])
    b = np.array(list(base.values()))
    weights = optimum["objective"]["weights"]
    g_plain = gain_intervals(law, X, b, weights, ensemble.members)
    g_common = gain_intervals(law, X, b, weights, ensemble.members, scale=record)
    assert g_common["lo"][0] == pytest.approx(g_plain["lo"][0]) and g_common["hi"][0] == pytest.approx(
        g_plain["hi"][0]
    )
    g_own = gain_intervals(law, X, b, weights, ensemble.members, scale=scale_record(MODEL, 3.0, 3.0))
    assert g_own["hi"][0] - g_own["lo"][0] > g_plain["hi"][0] - g_plain["lo"][0]
    assert g_own["scale_sd"][0] > 0


def test_predict_interval_through_the_cli(pipeline_out, tmp_path, cli):
    mixtures = tmp_path / "mix.csv"
    cols = {"p_code": [0.4, 0.1], "p_docs": [0.3, 0.2], "p_math_prose": [0.2, 0.3], "p_math": [0.1, 0.4]}
    pd.DataFrame(cols).to_csv(mixtures, index=False)
    widths = {}
    for name, model in [
        ("none", None),
        ("small", ScaleErrorModel(0.001, 0.001, 0, 0, "t")),
        ("large", MODEL),
    ]:
        record = None if model is None else scale_record(model, 3.0, 3.3)
        law = _with_record(pipeline_out, tmp_path, f"{name}.json", record)
        code, out, err = cli("predict", law, mixtures, "--interval", "0.9", "--out", tmp_path / f"{name}.csv")
        assert code == 0, err
        assert ("includes the scale-extrapolation error" in err) == (model is not None)
        frame = pd.read_csv(tmp_path / f"{name}.csv")
        for t in ("code", "docs", "math_prose", "math", "total"):
            assert (frame[f"pred_{t}_lo"] < frame[f"pred_{t}"]).all() and (
                frame[f"pred_{t}"] < frame[f"pred_{t}_hi"]
            ).all()
        widths[name] = (frame["pred_total_hi"] - frame["pred_total_lo"]).to_numpy()
    assert (widths["none"] < widths["small"]).all() and (widths["small"] < widths["large"]).all()


def test_bad_scale_record_is_a_one_line_error(pipeline_out, tmp_path, cli):
    record = {**scale_record(MODEL, 3.0, 3.3), "mixture_sd_rel": "wide"}
    law = _with_record(pipeline_out, tmp_path, "bad.json", record)
    mixtures = tmp_path / "mix.csv"
    pd.DataFrame({"p_code": [0.4], "p_docs": [0.3], "p_math_prose": [0.2], "p_math": [0.1]}).to_csv(
        mixtures, index=False
    )
    code, out, err = cli("predict", law, mixtures, "--interval", "0.9")
    assert code == 2
    assert (
        len(err.strip().splitlines()) == 1 and "bad.json" in err and "scale_uncertainty.mixture_sd_rel" in err
    )


def test_shipped_coefficients_are_the_backtests():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "extrapolation_backtest.json"
    shipped = json.loads(path.read_text())["scale_error"]["shipped"]
    for key in scale_error.COEFFICIENTS:
        assert getattr(scale_error.DEFAULT_MODEL, key) == pytest.approx(shipped[key], rel=1e-5, abs=1e-9), key
    assert scale_error.DEFAULT_MODEL.calibrated_on == shipped["calibrated_on"]
