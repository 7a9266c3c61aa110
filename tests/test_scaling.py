"""Step, size and joint scale laws: recovery of known parameters, sharing, round trips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from mixlaw.errors import MixlawInputError
from mixlaw.scaling import CurveLaws, fit_curves, nonneg_lstsq

STEPS = np.array([10, 12, 14, 16, 18, 20, 24, 27, 30], dtype=float) * 1000


def _step_curves(beta: np.ndarray, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    C = len(beta)
    E = rng.uniform(2.0, 3.0, C)
    B = rng.uniform(0.2, 0.8, C)
    Y = (
        E[:, None]
        + B[:, None] * (STEPS / 30000)[None] ** -beta[:, None]
        + rng.normal(0, noise, (C, len(STEPS)))
    )
    return E, B, Y


@pytest.mark.parametrize("share", ["none", "mixture", "all"])
def test_step_law_recovers_parameters(share):
    C = 12
    groups = {"none": np.arange(C), "mixture": np.arange(C) // 4, "all": np.zeros(C, int)}[share]
    beta = {
        "none": np.linspace(0.4, 0.9, C),
        "mixture": 0.4 + 0.2 * (np.arange(C) // 4),
        "all": np.full(C, 0.6),
    }[share]
    E, B, Y = _step_curves(beta)
    law = fit_curves("step", STEPS[:, None], Y, [{"i": i} for i in range(C)], groups, share, ["step"])
    assert np.allclose(law.exps[:, 0], beta, atol=2e-3)
    assert np.allclose(law.coef[:, 0], E, atol=5e-3)
    # Shared exponents are identical inside a share group.
    for g in np.unique(groups):
        assert np.ptp(law.exps[groups == g, 0]) == 0
    truth = E + B * (100000 / 30000) ** -beta
    assert np.abs(law.predict(np.array([[100000.0]]))[:, 0] - truth).max() < 2e-3


def test_missing_points_and_round_trip():
    E, B, Y = _step_curves(np.full(4, 0.5))
    Y[1, 3] = np.nan
    law = fit_curves(
        "step", STEPS[:, None], Y, [{"run": str(i)} for i in range(4)], np.zeros(4, int), "all", ["step"]
    )
    assert law.n_points[1] == len(STEPS) - 1
    again = CurveLaws.from_dict(law.to_dict())
    x = np.array([[5000.0], [100000.0]])
    assert np.allclose(again.predict(x), law.predict(x))
    assert again.keys[2] == {"run": "2"}


def test_size_law_shared_alpha():
    N = np.array([19e6, 85e6, 200e6, 300e6])
    rng = np.random.default_rng(1)
    C = 10
    E, A = rng.uniform(1.5, 2.5, C), rng.uniform(0.5, 1.5, C)
    Y = E[:, None] + A[:, None] * (N / N.max())[None] ** -0.3
    law = fit_curves("size", N[:, None], Y, [{}] * C, np.zeros(C, int), "all", ["params"])
    assert np.allclose(law.exps, 0.3, atol=1e-3)
    pred = law.predict(np.array([[8e8]]))[:, 0]
    assert np.abs(pred - (E + A * (8e8 / N.max()) ** -0.3)).max() < 1e-3


def test_joint_law_recovers_exponents():
    N = np.array([19e6, 85e6, 200e6, 300e6])
    pts = np.array([(n, s) for n in N for s in STEPS])
    rng = np.random.default_rng(2)
    C = 6
    E, A, B = rng.uniform(1.5, 2.5, C), rng.uniform(0.3, 1.0, C), rng.uniform(0.2, 0.6, C)
    Y = (
        E[:, None]
        + A[:, None] * (pts[:, 0] / N.max())[None] ** -0.25
        + B[:, None] * (pts[:, 1] / STEPS.max())[None] ** -0.6
    )
    law = fit_curves("joint", pts, Y, [{}] * C, np.zeros(C, int), "all", ["params", "step"])
    assert np.allclose(law.exps[0], [0.25, 0.6], atol=5e-3)
    target = np.array([[8e8, 1e5]])
    truth = E + A * (8e8 / N.max()) ** -0.25 + B * (1e5 / STEPS.max()) ** -0.6
    assert np.abs(law.predict(target)[:, 0] - truth).max() < 5e-3


def test_nonneg_lstsq_matches_scipy():
    rng = np.random.default_rng(3)
    phi = rng.normal(size=(20, 9, 3))
    y = rng.normal(size=(20, 9))
    coef = nonneg_lstsq(phi, y, np.ones((20, 9)))
    for k in range(20):
        ref, _ = nnls(phi[k], y[k])
        assert np.allclose(coef[k], ref, atol=1e-8)


def test_too_few_points():
    Y = np.full((2, len(STEPS)), np.nan)
    Y[:, :2] = 3.0
    with pytest.raises(MixlawInputError, match="needs at least 3"):
        fit_curves("step", STEPS[:, None], Y, [{"run": "a"}, {"run": "b"}], np.arange(2), "none", ["step"])
