"""Step, size and joint scale laws: recovery of known parameters, sharing, round trips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

from mixlaw.errors import MixlawInputError
from mixlaw.scaling import (
    AnnealingLaw,
    CurveLaws,
    end_shape,
    fit_curves,
    late_window,
    lr_areas,
    nonneg_lstsq,
    step_regime,
)

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


def test_fixed_exponent_needs_one_point_fewer():
    N = np.array([19e6, 85e6])
    E, A = np.array([2.0, 2.4]), np.array([0.9, 0.5])
    Y = E[:, None] + A[:, None] * (N / N.max())[None] ** -0.3
    law = fit_curves(
        "size", N[:, None], Y, [{}] * 2, np.zeros(2, int), "all", ["params"], bounds=[(0.3, 0.3)]
    )
    assert np.allclose(law.coef, np.stack([E, A], axis=1), atol=1e-6)
    with pytest.raises(MixlawInputError, match="needs at least 3"):
        fit_curves("size", N[:, None], Y, [{}] * 2, np.zeros(2, int), "all", ["params"])


def test_step_regime_reports_bounds_curvature_and_tokens_per_param():
    beta = np.array([0.2, 0.2, 0.6, 0.6])  # the first two want an exponent below the allowed 0.3
    E, B, Y = _step_curves(beta)
    Y[2] = 0.5 * (STEPS / 30000) ** -0.6  # no irreducible loss: a straight line in log-log
    keys = [{"model": m, "run": str(i)} for i, m in enumerate(["70M", "70M", "160M", "160M"])]
    law = fit_curves("step", STEPS[:, None], Y, keys, np.arange(4), "none", ["step"], bounds=[(0.3, 1.5)])
    regime = step_regime(law, params={"70M": 1.9e7, "160M": 8.5e7}, tokens_per_step=2**20)
    assert regime["at_lower_bound"] == 0.5 and regime["at_upper_bound"] == 0.0
    assert regime["per_model"]["70M"]["at_bound"] == 1.0 and regime["per_model"]["160M"]["at_bound"] == 0.0
    assert regime["per_model"]["70M"]["tokens_per_param"] == pytest.approx(30000 * 2**20 / 1.9e7)
    slope, curvature = end_shape(law)
    assert abs(curvature[2]) < 1e-3 and slope[2] == pytest.approx(-0.6, abs=1e-2)
    E3, B3 = E[3], B[3]  # analytic log-log curvature of E + B x^-beta at x = 1
    L = E3 + B3
    assert curvature[3] == pytest.approx(0.36 * B3 / L - (0.6 * B3 / L) ** 2, rel=0.05)
    with pytest.raises(ValueError):
        step_regime(fit_curves("size", STEPS[:, None], Y, keys, np.arange(4), "none", ["params"]))


def _wsd(length: int, cooldown: float = 0.2, warmup: int = 50) -> np.ndarray:
    """LR of a warmup-stable-decay run of `length` steps (relative to the peak)."""
    steps = np.arange(1, length + 1)
    lr = np.minimum(1.0, steps / warmup)
    start = int(length * (1 - cooldown))
    tail = steps > start
    lr[tail] = 1.0 - (steps[tail] - start) / (length - start)
    return lr


def test_annealing_law_recovers_a_known_schedule_law():
    L0, A, alpha, C = 2.0, 0.8, 0.5, 0.4
    rng = np.random.default_rng(3)

    def loss(lr: np.ndarray) -> float:
        s1, s2 = lr_areas(lr)
        return L0 + A * (s1[-1] / 1000.0) ** -alpha - C * s2[-1] / 1000.0

    constant = _wsd(1000, cooldown=0.0)
    points = [(constant[:s], loss(constant[:s])) for s in (200, 300, 400, 600, 800, 1000)]
    points += [(_wsd(s), loss(_wsd(s))) for s in (400, 600, 800)]  # cooldown endpoints
    s1 = np.array([lr_areas(lr)[0][-1] for lr, _ in points])
    s2 = np.array([lr_areas(lr)[1][-1] for lr, _ in points])
    y = np.array([v for _, v in points]) + rng.normal(0, 1e-5, len(points))
    two = np.stack([y, y + 0.1])  # a second curve, shifted: same alpha, L0 + 0.1
    law = AnnealingLaw(bounds=(0.1, 1.5), grid=200).fit(s1, s2, two, groups=np.zeros(2, int))
    assert np.allclose(law.alpha_, alpha, atol=0.02)
    target = _wsd(2000)  # a 2x longer run with its own cooldown, never seen
    t1, t2 = (a[-1] for a in lr_areas(target))
    truth = L0 + A * (t1 / 1000.0) ** -alpha - C * t2 / 1000.0
    pred = law.predict(t1, t2)[:, 0]
    assert abs(pred[0] - truth) < 2e-3 and abs(pred[1] - truth - 0.1) < 2e-3
    # Ignoring the schedule (plain power law in steps on the same points) misses the cooldown drop.
    steps = np.array([len(lr) for lr, _ in points], dtype=float)
    plain = fit_curves("step", steps[:, None], y[None], [{}], np.zeros(1, int), "none", ["step"])
    assert plain.rmse[0] > 10 * np.sqrt(np.mean((law.predict(s1, s2)[0] - y) ** 2))
    again = AnnealingLaw.from_dict(law.to_dict())
    assert np.allclose(again.predict(t1, t2), pred[:, None])
    with pytest.raises(MixlawInputError):
        AnnealingLaw().fit(s1[:3], s2[:3], y[None, :3])


def test_late_window():
    x = np.array([3, 4, 6, 9, 10, 30]) * 1000.0
    assert late_window(x, 3.0).tolist() == [False, False, False, False, True, True]
    assert late_window(x, 3.0, last=10000.0).tolist() == [False, True, True, True, True, True]
    assert late_window(x, None).all()
    with pytest.raises(MixlawInputError):
        late_window(x, 0.5)


def test_regime_warnings_flag_bounds_and_few_tokens_per_parameter():
    from mixlaw.scaling import regime_warnings

    good = {"at_bound": 0.0, "exponent_bounds": [0.3, 1.5], "per_model": {"m": {"tokens_per_param": 100.0}}}
    assert regime_warnings(good) == []
    bad = {"at_bound": 0.5, "exponent_bounds": [0.3, 1.5], "per_model": {"m": {"tokens_per_param": 2.0}}}
    lines = regime_warnings(bad)
    assert len(lines) == 2 and "50% of the step fits" in lines[0] and "m: 2.0 tokens" in lines[1]
