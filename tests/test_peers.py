"""Peer laws: each recovers a synthetic truth of its own form, survives a JSON round trip, and the
consistency between mixlaw's DML fit and the peers' forms of the same model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.laws import LAWS, FitContext, get_law, law_from_dict
from mixlaw.laws.peers import BiMix, resolve_domain_map

DATA = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mixinglaws") + "/"


def simplex(n: int, M: int, seed: int = 0, alpha: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(M, alpha), size=n)


def roundtrip(law):
    return law_from_dict(json.loads(json.dumps(law.to_dict())))


def test_peers_registered():
    for name in ("regmix-lgbm", "regmix-linear", "log-linear", "olmix", "bimix", "gp", "ridge-rlogr"):
        assert name in LAWS


def test_regmix_linear_and_log_linear_recover_truth():
    X = simplex(60, 4)
    W = np.array([[3.0, 2.5, 2.8, 3.2], [2.0, 3.1, 2.2, 2.6]])
    law = get_law("regmix-linear")().fit(X, X @ W.T)
    assert np.allclose(law.params_["w"], W, atol=1e-9)
    B = np.log(W)
    law = get_law("log-linear")().fit(X, np.exp(X @ B.T))
    assert np.allclose(law.params_["b"], B, atol=1e-9)
    again = roundtrip(law)
    assert np.allclose(again.predict(X), law.predict(X))


def test_olmix_recovers_exponential_truth_and_matches_dml():
    X = simplex(40, 3, seed=1)
    t = np.array([[-1.5, 0.4, 0.8], [0.6, -2.0, 0.3]])
    c = np.array([2.0, 2.5])
    Y = c + np.exp(X @ t.T)
    olmix = get_law("olmix")(restarts=60, steps=20).fit(X, Y)
    assert np.allclose(olmix.predict(X), Y, atol=2e-3)
    dml = get_law("dml")(ridge=0.0).fit(X, Y)  # the plain fit of the same model
    # mixlaw's fit matches or beats Olmix's default fit on its own objective (Huber, delta 0.02).
    assert np.all(np.array(dml.summary_["huber_mean"]) <= np.array(olmix.summary_["huber_mean"]) + 1e-9)
    assert np.allclose(roundtrip(olmix).predict(X), olmix.predict(X))


def test_bimix_recovers_plain_form():
    X = simplex(50, 3, seed=2, alpha=2.0)
    A, alpha = np.array([3.0, 2.4]), np.array([0.12, 0.08])
    Y = A / (X[:, [0, 2]] + 0.01) ** alpha
    law = BiMix(domain_map={"a": ["d0"], "b": ["d2"]})
    law.fit(X, Y, FitContext(domains=["d0", "d1", "d2"], targets=["a", "b"]))
    assert np.allclose(law.params_["alpha"], alpha, atol=1e-5)
    assert np.allclose(np.exp(law.params_["log_A"]), A, rtol=1e-5)
    assert not law.params_["step_aware"]
    assert np.allclose(roundtrip(law).predict(X), law.predict(X))


def test_bimix_recovers_step_form():
    rng = np.random.default_rng(3)
    X = np.repeat(simplex(20, 2, seed=3, alpha=2.0), 6, axis=0)
    steps = np.tile([2000.0, 4000, 8000, 12000, 20000, 30000], 20)
    alpha, B, beta, C = 0.1, 40.0, 0.45, 2.5
    y = (B / steps**beta + C) / (X[:, 0] + 0.01) ** alpha + rng.normal(0, 1e-4, len(steps))
    law = BiMix(domain_map={"x": ["d0"]})
    law.fit(X, y, FitContext(domains=["d0", "d1"], targets=["x"], steps=steps))
    p = law.params_
    assert p["step_aware"]
    assert abs(p["alpha"][0] - alpha) < 0.01 and abs(p["beta"][0] - beta) < 0.05
    assert abs(np.exp(p["log_C"][0]) - C) < 0.1
    again = roundtrip(law)
    assert np.allclose(again.predict_at(X, steps), law.predict_at(X, steps))


def test_bimix_not_applicable_without_map():
    law = BiMix()
    with pytest.raises(MixlawInputError, match="not applicable"):
        law.fit(
            simplex(10, 2),
            np.full((10, 1), 3.0),
            FitContext(domains=["academic", "prose"], targets=["Pile-CC"]),
        )


def test_domain_map_by_name_and_file(tmp_path):
    domains = ["commoncrawl", "github", "book", "wikipedia", "pile_cc"]
    found = resolve_domain_map(["Github", "Wikipedia_en", "Pile-CC", "Books3", "ArXiv"], domains, None)
    assert found == {"Github": [1], "Wikipedia_en": [3], "Pile-CC": [4], "Books3": [2]}
    path = tmp_path / "map.csv"
    path.write_text("target,train_domain\nPile-CC,commoncrawl\nPile-CC,p_pile_cc\n")
    assert resolve_domain_map(["Pile-CC"], domains, str(path)) == {"Pile-CC": [0, 4]}
    path.write_text("target,train_domain\nPile-CC,nowhere\n")
    with pytest.raises(MixlawInputError, match="not a training domain"):
        resolve_domain_map(["Pile-CC"], domains, str(path))


def test_gp_interpolates_smooth_truth():
    X = simplex(80, 3, seed=4)
    f = lambda Z: np.stack([3 + np.sin(3 * Z[:, 0]) + Z[:, 1] ** 2, 2 + Z[:, 2]], axis=1)  # noqa: E731
    law = get_law("gp")(restarts=1).fit(X, f(X))
    test = simplex(30, 3, seed=5)
    assert np.abs(law.predict(test) - f(test)).max() < 0.02
    assert np.allclose(roundtrip(law).predict(test), law.predict(test))


def test_lightgbm_recovers_truth_and_saves_text_model():
    pytest.importorskip("lightgbm")
    X = simplex(200, 3, seed=6)
    Y = np.stack([3 + (X[:, 0] > 0.3) * 0.5, 2 + X[:, 1]], axis=1)
    law = get_law("regmix-lgbm")(rounds=300, learning_rate=0.1).fit(X, Y)
    assert np.abs(law.predict(X) - Y).mean() < 0.05
    data = law.to_dict()
    assert data["params"]["models"][0].startswith("tree")  # LightGBM's own text format, not pickle
    again = law_from_dict(json.loads(json.dumps(data)))
    assert np.allclose(again.predict(X), law.predict(X))


def five_mix_like(n: int = 26, seed: int = 0) -> np.ndarray:
    """Mixtures shaped like the paper's 5Mix swarm: 26 mixtures of 5 domains on a grid of eighths, many with
    exact zeros, plus the uniform mixture."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.dirichlet(np.full(5, 0.6), size=n - 1) * 8) / 8
    X[X.sum(axis=1) == 0, 0] = 1.0
    X = X / X.sum(axis=1, keepdims=True)
    return np.vstack([X, np.full(5, 0.2)])


# log L_i = b_i . r for 5 Pile categories, of the size log-linear fits on 5Mix 70M (losses 2-4 nats)
FIVE_MIX_B = np.array(
    [
        [0.72, 1.28, 1.22, 1.35, 1.20],
        [1.25, 0.95, 1.05, 1.30, 1.15],
        [1.20, 1.02, 0.90, 1.28, 1.12],
        [1.10, 1.32, 1.30, 0.55, 1.25],
        [1.18, 1.10, 1.08, 1.30, 1.00],
    ]
)


@pytest.mark.parametrize("noise", [0.0, 0.004])
def test_log_linear_and_dml_agree_where_same_model(noise):
    """Consistency: on data of the log-linear form (the exponential law with c = 0), shaped like 5Mix (26
    mixtures, 5 domains, exact zeros, noise of 5Mix's size), mixlaw's dml (c + exp(t.r), c fitted) and log-linear
    describe the same model, so they must agree: dml's c goes to ~0 and the predictions match, on the fitted
    mixtures and on unseen ones."""
    X = five_mix_like()
    rng = np.random.default_rng(1)
    Y = np.exp(X @ FIVE_MIX_B.T) + rng.normal(0, noise, (len(X), 5))
    loglin = get_law("log-linear")().fit(X, Y)
    dml = get_law("dml")(ridge=0.0).fit(X, Y)  # the unpenalized fit of the model that contains log-linear
    new = simplex(200, 5, seed=2)
    if noise == 0.0:
        assert np.allclose(loglin.params_["b"], FIVE_MIX_B, atol=1e-9)
        assert np.all(np.exp(dml.params_["log_c"]) < 1e-4)
        for Z in (X, new):
            assert np.abs(dml.predict(Z) - loglin.predict(Z)).max() < 1e-5
    else:
        # Both fit the noise a little differently (Huber in loss space vs least squares in log space): they agree
        # to well within the noise on the fitted mixtures, and on unseen mixtures to a fraction of the loss range.
        assert np.abs(dml.predict(X) - loglin.predict(X)).mean() < noise
        diff = np.abs(dml.predict(new) - loglin.predict(new))
        assert diff.mean() < 2 * noise and diff.max() < 0.05 * np.ptp(Y)
        truth = np.exp(new @ FIVE_MIX_B.T)
        for law in (dml, loglin):
            assert np.abs(law.predict(new) - truth).mean() < 2 * noise
    # mixlaw's default dml (ridge chosen by CV) agrees too, within the noise plus the ridge's small shrinkage.
    default = get_law("dml")().fit(X, Y)
    assert np.abs(default.predict(X) - loglin.predict(X)).mean() < noise + 1e-3


@pytest.mark.skipif(not Path(DATA).exists(), reason="shared data (../shared/data/mixinglaws) not present")
def test_log_linear_and_dml_agree_on_shared_design():
    """Benchmark-style consistency on the shared data: log-linear fitted to 5Mix 70M gives a log-linear truth on
    the real design; dml refitted to it reproduces it (same model), and on the real losses dml is never worse
    than log-linear on its own objective."""
    from mixlaw.fitted import fit_law, prepare
    from mixlaw.runs import read_runs

    data = prepare(
        read_runs(DATA + "5mix.csv"),
        model="70M",
        step=30000,
        valid_weights=DATA + "valid_weights.csv",
        group="pile_category",
    )
    loglin = get_law("log-linear")().fit(data.X, data.Y)
    pseudo = loglin.predict(data.X)
    dml = get_law("dml")(ridge=0.0).fit(data.X, pseudo)
    assert np.abs(dml.predict(data.X) - pseudo).max() < 1e-5
    assert (
        np.abs(
            dml.predict(simplex(100, data.X.shape[1], seed=3))
            - loglin.predict(simplex(100, data.X.shape[1], seed=3))
        ).max()
        < 1e-4
    )
    real_dml, real_loglin = fit_law(data, "dml", {"ridge": 0.0}), fit_law(data, "log-linear")
    assert np.all(
        np.array(real_dml.law.summary_["huber_mean"])
        <= np.array(real_loglin.law.summary_["huber_mean"]) + 1e-12
    )


@pytest.mark.skipif(not Path(DATA).exists(), reason="shared data (../shared/data/mixinglaws) not present")
def test_dml_nests_log_linear_on_shared_data():
    """Consistency: dml (c + exp(t.r)) contains log-linear (c = 0) and olmix (the same model), so on real data
    dml's training Huber cost is never worse than log-linear's, and dml and olmix agree."""
    from mixlaw.fitted import fit_law, prepare
    from mixlaw.runs import read_runs

    data = prepare(
        read_runs(DATA + "5mix.csv"),
        model="70M",
        step=30000,
        valid_weights=DATA + "valid_weights.csv",
        group="pile_category",
    )
    dml = fit_law(data, "dml", {"ridge": 0.0})  # unpenalized: exactly the model olmix fits
    olmix = fit_law(data, "olmix", {"restarts": 100, "steps": 20})
    loglin = fit_law(data, "log-linear")
    cost = lambda f: np.array(f.law.summary_["huber_mean"])  # noqa: E731
    assert np.all(cost(dml) <= cost(loglin) + 1e-12)
    assert np.all(cost(dml) <= cost(olmix) * (1 + 1e-3) + 1e-12)
    pred_dml, pred_olmix = dml.predict_total(data.X), olmix.predict_total(data.X)
    assert np.abs(pred_dml - pred_olmix).max() < 5e-3
