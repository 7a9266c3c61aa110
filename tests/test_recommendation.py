"""The recommendation that declines when unsure: the JSON keys, the decline rules, the trust-region optimizer
on synthetic data, and the decline path through the CLI (message, exit code, export refusal and --force)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mixlaw
from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FittedLaw
from mixlaw.laws import get_law
from mixlaw.optimizer import TRUST_RADIUS, optimize
from mixlaw.recommendation import recommendation, refuse_declined

KEYS = {"verdict", "reason", "p_beats_baseline", "gain"}
DOMAINS = ["web", "code", "books"]


def _optimum(l1=0.1, radius=0.5, p=0.97, gain=(0.05, 0.02, 0.08), gain_block=None) -> dict:
    out = {
        "baseline": {"name": "uniform"},
        "distance_to_observed": {"l1": l1, "trust_radius": radius},
        "uncertainty": {
            "p_beats_baseline": p,
            "improvement": {"name": "total", "value": gain[0], "lo": gain[1], "hi": gain[2]},
        },
    }
    if gain_block is not None:
        out["gain"] = gain_block
    return out


def test_recommend_has_exactly_the_keys():
    rec = recommendation(_optimum())
    assert set(rec) == KEYS and set(rec["gain"]) == {"value", "lo", "hi"}
    assert rec["verdict"] == "recommend"
    assert rec["p_beats_baseline"] == 0.97 and rec["gain"] == {"value": 0.05, "lo": 0.02, "hi": 0.08}


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"l1": 0.8}, "outside the trust radius 0.5"),
        ({"p": 0.76}, "P(beats baseline) is 0.76 < 0.9"),
        ({"gain": (0.1, -0.2, 0.3)}, "includes 0"),
        ({"p": None}, "no intervals"),
    ],
)
def test_each_rule_declines(kwargs, why):
    rec = recommendation(_optimum(**kwargs))
    assert rec["verdict"] == "decline"
    assert rec["reason"].startswith("No confident recommendation:") and why in rec["reason"]


def test_min_confidence_and_the_scale_aware_gain_block_take_precedence():
    assert recommendation(_optimum(p=0.95), min_confidence=0.99)["verdict"] == "decline"
    assert recommendation(_optimum(p=0.95), min_confidence=0.9)["verdict"] == "recommend"
    # another engineer's scale-aware `gain` block (here: its interval includes 0) overrides the bootstrap's
    rec = recommendation(
        _optimum(gain_block={"value": 0.03, "lo": -0.01, "hi": 0.07, "p_beats_baseline": 0.8})
    )
    assert rec["verdict"] == "decline" and rec["gain"]["lo"] == -0.01 and rec["p_beats_baseline"] == 0.8
    with pytest.raises(MixlawInputError, match="min-confidence"):
        recommendation(_optimum(), min_confidence=0)


def test_refuse_declined_names_the_file_and_the_reason():
    declined = {"recommendation": recommendation(_optimum(l1=2.0))}
    with pytest.raises(MixlawInputError, match=r"opt\.json: refusing .*outside the trust radius"):
        refuse_declined(declined, "opt.json")
    refuse_declined(declined, "opt.json", force=True)
    refuse_declined({"recommendation": recommendation(_optimum())}, "opt.json")
    refuse_declined({}, "old.json")  # an optimum.json from before the recommendation is not refused


def _corner_law() -> FittedLaw:
    """dml whose optimum is the `web` corner: every target falls with the web share."""
    law = get_law("dml")()
    law.n_domains_ = 3
    law.params_ = {"log_c": [0.5, 0.5], "theta": [[-3.0, 0.0, 0.0], [-2.0, 0.5, 0.0]]}
    return FittedLaw(law, DOMAINS, ["t0", "t1"], {"t0": 0.5, "t1": 0.5})


def test_trust_region_optimizer_stays_near_the_observed_mixtures():
    law = _corner_law()
    observed = np.array([[0.34, 0.33, 0.33], [0.2, 0.5, 0.3], [0.3, 0.2, 0.5]])
    free = optimize(law, observed=observed)
    assert free["mixture"]["p_web"] > 0.99 and free["distance_to_observed"]["inside_trust_region"] is False
    assert free["distance_to_observed"]["trust_region"] == "off"
    inside = optimize(law, observed=observed, trust_region=True)
    d = inside["distance_to_observed"]
    assert d["l1"] <= TRUST_RADIUS + 1e-6 and d["inside_trust_region"] and d["trust_region"] == "default"
    # the best mixture within the radius: moving web share from the nearest observed mixture (0.34 web)
    assert inside["mixture"]["p_web"] == pytest.approx(0.34 + TRUST_RADIUS / 2, abs=1e-3)
    assert inside["predicted"]["total"] > free["predicted"]["total"]
    given = optimize(law, observed=observed, trust_region=True, max_distance=0.1)
    assert given["distance_to_observed"]["l1"] <= 0.1 + 1e-6
    assert given["distance_to_observed"]["trust_region"] == "--max-distance"


def _runs(tmp_path) -> str:
    """One size and step, 12 mixtures near the centre, losses from `_corner_law`'s shape plus noise."""
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.full(3, 20.0), size=12)
    rows = []
    for r, x in enumerate(X):
        for t, theta in enumerate([[-3.0, 0.0, 0.0], [-2.0, 0.5, 0.0]]):
            loss = 1.6 + np.exp(0.5 + x @ np.array(theta)) + rng.normal(0, 2e-3)
            rows.append(
                {
                    "run": f"r{r}",
                    "model": "70M",
                    "step": 1000,
                    **{f"p_{d}": v for d, v in zip(DOMAINS, x)},
                    "valid_domain": f"t{t}",
                    "loss": loss,
                }
            )
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_decline_path_through_the_cli(cli, tmp_path):
    runs = _runs(tmp_path)
    law = tmp_path / "law.json"
    code, _, err = cli("fit", runs, "--law", "dml", "--bootstrap", "10", "--out", law, "--quiet")
    assert code == 0, err
    # default: inside the trust region, a clear gain -> recommend, export works
    code, out, _ = cli("optimize", law, "--out", tmp_path / "in.json", "--quiet")
    inside = json.loads((tmp_path / "in.json").read_text())
    assert code == 0 and set(inside["recommendation"]) == KEYS
    assert inside["distance_to_observed"]["l1"] <= TRUST_RADIUS + 1e-6
    assert inside["recommendation"]["verdict"] == "recommend", inside["recommendation"]["reason"]
    assert "Verdict: recommend" in out
    assert cli("export", tmp_path / "in.json", "--format", "json")[0] == 0
    # switched off: the corner optimum lies outside the trust region -> decline
    opt = tmp_path / "opt.json"
    code, out, _ = cli("optimize", law, "--no-trust-region", "--out", opt, "--quiet")
    result = json.loads(opt.read_text())
    rec = result["recommendation"]
    assert code == 0 and rec["verdict"] == "decline" and "outside the trust radius" in rec["reason"]
    assert result["mixture"]["p_web"] > 0.99
    assert "No confident recommendation" in out and "best-supported alternative: observed mixture" in out
    assert result["alternative"]["mixture"].keys() == result["mixture"].keys()
    code, out, err = cli("export", opt, "--format", "megatron")
    assert code == 2 and out == ""
    line = err.strip()
    assert (
        "\n" not in line and "opt.json" in line and "outside the trust radius" in line and "--force" in line
    )
    code, out, _ = cli("export", opt, "--format", "megatron", "--force")
    assert code == 0 and out
    with pytest.raises(MixlawInputError, match="refusing"):
        mixlaw.api.export(opt, "json")
    assert mixlaw.api.export(result, "json", force=True)
    # the confidence threshold is a flag; out of range is a one-line error
    code, _, err = cli("optimize", law, "--min-confidence", "1.5", "--out", opt, "--quiet")
    assert code == 2 and "--min-confidence" in err


def test_pipeline_declines_without_intervals_and_summary_says_so(cli, tmp_path):
    from tests.test_solve import _table

    runs = tmp_path / "runs.csv"
    _table().to_csv(runs, index=False)
    out = tmp_path / "out"
    code, stdout, err = cli(
        "pipeline", runs, "--target-params", "5e4", "--target-step", "80", "--law", "dml", "--cv", "3",
        "--bootstrap", "0", "--out", out, "--quiet",
    )  # fmt: skip
    assert code == 0, err
    rec = json.loads((out / "optimum.json").read_text())["recommendation"]
    assert set(rec) == KEYS and rec["verdict"] == "decline" and "no intervals" in rec["reason"]
    assert rec["p_beats_baseline"] is None
    assert "Verdict: decline: no confident recommendation" in stdout
    summary = (out / "summary.md").read_text()
    assert "## Recommendation" in summary and "**No confident recommendation.**" in summary
    assert "Best-supported alternative: observed mixture m" in summary
    code, _, err = cli("export", out / "optimum.json", "--format", "json")
    assert code == 2 and "optimum.json: refusing to export a declined optimum" in err


def test_run_verdict_never_claims_a_declined_win():
    from mixlaw.job.stages import with_recommendation

    measured = {"result": "win", "text": "The chosen mixture beat the baseline.", "rule": "2 sigma"}
    declined = {"recommendation": recommendation(_optimum(p=0.5))}
    out = with_recommendation(measured, declined)
    assert out["result"] == "win" and out["claimed"] is False and out["recommendation"] == "decline"
    assert "no confident recommendation (measured, not claimed)" in out["text"]
    assert "P(beats baseline) is 0.50 < 0.9" in out["recommendation_reason"]
    ok = with_recommendation(measured, {"recommendation": recommendation(_optimum())})
    assert ok["claimed"] is True and ok["text"] == measured["text"]
    lost = with_recommendation({**measured, "result": "loss"}, {"recommendation": recommendation(_optimum())})
    assert lost["claimed"] is False
    assert with_recommendation(measured, {}) == measured  # an optimum.json from before the recommendation
