"""Metric functions of benchmarks/extrapolation_backtest.py on synthetic data (no ../shared needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "extrapolation_backtest.py"


@pytest.fixture(scope="module")
def bt():
    spec = importlib.util.spec_from_file_location("extrapolation_backtest", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_relative_errors_signed_and_absolute(bt):
    obs = np.array([2.0, 4.0])
    out = bt.relative_errors(np.array([2.2, 3.6]), obs)  # +10%, -10%
    assert out["mre"] == pytest.approx(0.1)
    assert out["bias"] == pytest.approx(0.0)


def test_pairwise_accuracy_counts_only_resolved_pairs(bt):
    obs = np.array([3.00, 3.10, 3.101, 3.20, 3.30])
    groups = np.array(["a", "a", "a", "b", "b"])
    pred = np.array([3.05, 3.00, 3.20, 3.25, 3.24])  # a: (0,1) wrong, (0,2) right, (1,2) tiny gap; b wrong
    out = bt.pairwise_accuracy(pred, obs, groups, min_gap=0.02)
    assert out["n_pairs"] == 3  # (0,1), (0,2), (3,4); (1,2) is inside the noise and no pair crosses groups
    assert out["pairwise_accuracy"] == pytest.approx(1 / 3)
    assert bt.pairwise_accuracy(obs, obs, groups, 0.0)["pairwise_accuracy"] == 1.0


def test_regret_is_the_loss_of_the_predicted_best(bt):
    obs = np.array([3.0, 3.1, 3.2, 2.0, 2.5])
    groups = np.array([0, 0, 0, 1, 1])
    pred = np.array([3.2, 3.0, 3.3, 2.1, 2.2])  # group 0 picks obs 3.1 (regret 0.1); group 1 right (0)
    assert bt.regret(pred, obs, groups) == pytest.approx(0.05)
    assert bt.regret(obs, obs, groups) == 0.0


def test_gains_over_reference_and_their_coverage(bt):
    groups = np.array([0, 0, 0, 1, 1])
    reference = np.array([True, False, False, False, True])
    obs = np.array([3.0, 2.9, 3.2, 2.0, 2.5])
    g = bt.gains(obs, groups, reference)
    assert np.isnan(g[0]) and np.isnan(g[4])
    assert np.allclose(g[[1, 2, 3]], [-0.1, 0.2, -0.5])
    # A common shift of every prediction leaves the gains exact.
    pred = obs + 0.3
    m = bt.scenario_metrics(pred, obs, groups, reference, noise=0.01, gain_lo=g - 0.01, gain_hi=g + 0.01)
    assert m["gain_mae"] == pytest.approx(0.0, abs=1e-12)
    assert m["gain_coverage90"] == 1.0
    assert m["bias"] > 0.09 and m["pairwise_accuracy"] == 1.0 and m["regret"] == 0.0
    assert m["coverage90"] is None  # no loss interval given


def test_calibrated_factor_matches_the_normal_quantile(bt):
    z = np.abs(np.random.default_rng(0).normal(size=4000))
    assert bt.calibrate_factor(z, 0.9) == pytest.approx(1.645, abs=0.08)
    scores = bt.scale_scores(np.array([1.0, 2.0]), np.array([1.0, 1.0]), np.array([0.0, 3.0]), 4.0)
    assert np.allclose(scores, [0.0, 0.2])


def test_curve_noise_recovers_checkpoint_scatter(bt):
    rng = np.random.default_rng(1)
    steps = np.arange(10, 31, 2) * 1000.0
    rows = []
    for run in range(30):
        loss = 2.5 + 0.8 * (steps / 30000) ** -0.5 + rng.normal(0, 0.01, len(steps))
        rows += [{"model": "m", "run": str(run), "step": s, "total": v} for s, v in zip(steps, loss)]
    noise = bt.curve_noise(pd.DataFrame(rows), [("m", 30000.0)])
    assert noise == pytest.approx(0.01, rel=0.3)
