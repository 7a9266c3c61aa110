"""Bootstrap intervals: nominal coverage of synthetic truth, JSON round trip, CLI, optimum intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mixlaw.fitted import FittedLaw, fit_law, prepare
from mixlaw.runs import RunsTable, validate_runs
from mixlaw.uncertainty import Ensemble, attach, bootstrap_law, optimum_uncertainty
from tests.conftest import DOMAINS, exp_law_loss, make_runs

C = np.array([2.0, 1.5, 3.0])
T = np.array([[-2.0, 0.2, 0.1], [0.3, -1.5, 0.0], [0.1, 0.2, -1.0]])


def seeded_runs(rng: np.random.Generator, n_mixtures: int, noise: float, seeds: int = 2) -> pd.DataFrame:
    X = rng.dirichlet(np.ones(3), size=n_mixtures)
    rows = []
    for s in range(seeds):
        Y = exp_law_loss(X, C, T) + rng.normal(0, noise, (n_mixtures, 3))
        for r in range(n_mixtures):
            for i, d in enumerate(DOMAINS):
                rows.append(
                    {
                        "run": f"r{r}s{s}",
                        "model": "m",
                        "step": 1000,
                        "seed": s,
                        **{f"p_{x}": X[r, j] for j, x in enumerate(DOMAINS)},
                        "valid_domain": d,
                        "loss": Y[r, i],
                    }
                )
    return pd.DataFrame(rows)


def test_intervals_cover_synthetic_truth_at_nominal_rate():
    rng = np.random.default_rng(7)
    noise, hits = 0.01, []
    for _ in range(4):
        table = RunsTable(validate_runs(seeded_runs(rng, 16, noise)), "sim")
        data = prepare(table, model="m", step=1000)
        ens = bootstrap_law(data, "dml", {"restarts": 4}, n_bootstrap=20, seed=1)
        assert ens.info["noise"]["source"] == "seeds"
        assert abs(ens.noise_sd["a"] - noise) < 0.006
        X = rng.dirichlet(np.ones(3), size=40)
        Y = exp_law_loss(X, C, T) + rng.normal(0, noise, (40, 3))
        iv = ens.interval(X, 0.9)
        for i, d in enumerate(DOMAINS):
            hits += list((iv[d]["lo"] <= Y[:, i]) & (Y[:, i] <= iv[d]["hi"]))
    coverage = float(np.mean(hits))
    assert 0.8 <= coverage <= 0.98, coverage


def test_raw_interval_is_widened_when_the_law_is_wrong():
    # a law with no cross-domain terms on curved data: the bootstrap alone under-covers, calibration widens
    rng = np.random.default_rng(3)
    table = RunsTable(validate_runs(seeded_runs(rng, 20, 0.002, seeds=1)), "sim")
    data = prepare(table, model="m", step=1000)
    ens = bootstrap_law(data, "ridge-rlogr", n_bootstrap=20, seed=0)
    raw = ens.interval(data.X[:5], 0.9, "none")["total"]
    widened = ens.interval(data.X[:5], 0.9, "widen")["total"]
    assert np.all(widened["hi"] - widened["lo"] >= raw["hi"] - raw["lo"] - 1e-12)
    assert ens.calibration("total", 0.9, "widen")["factor"] >= 1.0


def test_ensemble_round_trips_through_law_json(tmp_path):
    table = RunsTable(
        validate_runs(make_runs(n_mixtures=16, steps=(800, 900, 1000, 1100, 1200, 1300))), "sim"
    )
    data = prepare(table, model="m1", step=1000)
    ens = bootstrap_law(data, "dml", {"restarts": 4}, n_bootstrap=12, seed=0, table=table)
    assert ens.info["noise"]["source"] == "checkpoints"
    assert ens.info["n_members"] == 12
    path = tmp_path / "law.json"
    attach(ens.fitted, ens).save(path)
    again = Ensemble.from_fitted(FittedLaw.load(path))
    X = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    a, b = ens.interval(X, 0.8), again.interval(X, 0.8)
    for name in a:
        np.testing.assert_allclose(a[name]["lo"], b[name]["lo"], rtol=1e-10)
        assert np.all(a[name]["lo"] <= a[name]["pred"]) and np.all(a[name]["pred"] <= a[name]["hi"])


def test_bootstrap_is_deterministic_for_a_seed():
    table = RunsTable(validate_runs(make_runs(n_mixtures=14)), "sim")
    data = prepare(table, model="m1", step=1000)
    X = np.array([[0.3, 0.3, 0.4]])
    one = bootstrap_law(data, "dml", {"restarts": 4}, n_bootstrap=10, seed=5).interval(X, 0.9)
    two = bootstrap_law(data, "dml", {"restarts": 4}, n_bootstrap=10, seed=5).interval(X, 0.9)
    assert one["total"]["lo"][0] == two["total"]["lo"][0]


def test_optimum_uncertainty_and_probability_of_beating_baseline():
    table = RunsTable(validate_runs(make_runs(n_mixtures=16)), "sim")
    data = prepare(table, model="m1", step=1000)
    fitted = fit_law(data, "dml", {"restarts": 4})
    ens = bootstrap_law(data, "dml", {"restarts": 4}, n_bootstrap=12, seed=0, fitted=fitted)
    from mixlaw.uncertainty import reoptimize

    x = reoptimize(fitted)
    bad = np.array([0.0, 0.0, 1.0])
    out = optimum_uncertainty(ens, dict(zip(DOMAINS, x)), bad, level=0.9, caps={"a": 0.9})
    assert out["p_beats_baseline"] == 1.0
    assert out["improvement"]["value"] > 0
    for d in DOMAINS:
        m = out["mixture"][d]
        assert 0.0 <= m["lo"] <= m["hi"] <= 1.0
    assert out["mixture"]["a"]["hi"] <= 0.9 + 1e-9
    p = out["predicted"]["total"]
    assert p["lo"] <= p["value"] <= p["hi"]


def test_cli_fit_bootstrap_and_predict_interval(tmp_path, cli, runs_csv):
    law = tmp_path / "law.json"
    code, _, err = cli(
        "fit",
        runs_csv,
        "--law",
        "dml",
        "--model",
        "m1",
        "--step",
        "1000",
        "--param",
        "restarts=4",
        "--bootstrap",
        "12",
        "--out",
        law,
    )
    assert code == 0, err
    mixtures = tmp_path / "mix.csv"
    pd.DataFrame({"p_a": [0.2, 0.5], "p_b": [0.3, 0.25], "p_c": [0.5, 0.25]}).to_csv(mixtures, index=False)
    out = tmp_path / "pred.csv"
    code, _, err = cli("predict", law, mixtures, "--interval", "0.9", "--out", out)
    assert code == 0, err
    frame = pd.read_csv(out)
    for name in ("a", "b", "c", "total"):
        assert (frame[f"pred_{name}_lo"] <= frame[f"pred_{name}"]).all()
        assert (frame[f"pred_{name}"] <= frame[f"pred_{name}_hi"]).all()


def test_cli_predict_interval_without_ensemble(tmp_path, cli, runs_csv):
    law = tmp_path / "law.json"
    assert cli("fit", runs_csv, "--law", "dml", "--model", "m1", "--step", "1000", "--out", law)[0] == 0
    mixtures = tmp_path / "mix.csv"
    pd.DataFrame({"p_a": [0.2], "p_b": [0.3], "p_c": [0.5]}).to_csv(mixtures, index=False)
    code, _, err = cli("predict", law, mixtures, "--interval", "0.9")
    assert code == 2 and "--bootstrap" in err
    code, out, err = cli(
        "predict", law, mixtures, "--interval", "0.9", "--runs", runs_csv, "--bootstrap", "10"
    )
    assert code == 0, err
    assert "pred_total_hi" in out
