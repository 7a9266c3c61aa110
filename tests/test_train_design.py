"""Mixture designs: caps, determinism, the paper's grid."""

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.train.design import check_mixture, dirichlet_design, epoch_caps, halving_grid, token_prior

PAPER_CAPS = [1, 1, 0.5857, 0.2588, 0.2254, 0.1779, 0.1727]


def test_halving_grid_matches_the_paper_candidate_count():
    names = [f"d{i}" for i in range(7)]
    grid = halving_grid(names, dict(zip(names, PAPER_CAPS)))
    assert len(grid) == 854
    values = sorted({m["d2"] for m in grid})
    assert values == [0.0, 0.0703125, 0.140625, 0.28125, 0.5625]
    for m in grid:
        assert sum(m.values()) == pytest.approx(1.0)
        assert all(m[n] <= c + 1e-9 for n, c in zip(names, PAPER_CAPS))


def test_halving_grid_respects_caps_and_is_deterministic():
    caps = {"a": 0.5, "b": 0.25, "c": 0.75}
    one = halving_grid(["a", "b", "c"], caps, n=5, seed=3)
    two = halving_grid(["a", "b", "c"], caps, n=5, seed=3)
    assert one == two and len(one) == 5
    assert all(m[k] <= caps[k] + 1e-12 for m in one for k in caps)
    assert halving_grid(["a", "b", "c"], caps, n=5, seed=4) != one


def test_dirichlet_respects_epoch_caps_and_is_deterministic():
    tokens = {"code": 3_000_000, "docs": 1_000_000, "math": 100_000, "prose": 400_000}
    caps = epoch_caps(tokens, train_tokens=1_000_000, max_epochs=2)
    assert caps["math"] == pytest.approx(0.2) and caps["code"] == 1.0
    a = dirichlet_design(tokens, n=20, seed=5, caps=caps)
    b = dirichlet_design(tokens, n=20, seed=5, caps=caps)
    assert a == b and len(a) == 20
    assert len({tuple(m.values()) for m in a}) == 20
    for m in a:
        assert abs(sum(m.values()) - 1) < 1e-9
        assert all(m[k] <= caps[k] + 1e-12 for k in tokens)
        assert all(v >= 0 for v in m.values())
    assert dirichlet_design(tokens, n=20, seed=6, caps=caps) != a


def test_temperature_flattens_the_prior():
    tokens = {"a": 900, "b": 100}
    assert token_prior(tokens, 1.0)["a"] == pytest.approx(0.9)
    assert token_prior(tokens, 0.0)["a"] == pytest.approx(0.5)
    assert 0.5 < token_prior(tokens, 0.5)["a"] < 0.9
    # the mean of many samples follows the prior
    ms = dirichlet_design(tokens, n=400, seed=0, temperature=1.0, decimals=6)
    assert np.mean([m["a"] for m in ms]) == pytest.approx(0.9, abs=0.05)


def test_infeasible_caps_are_one_line_errors():
    with pytest.raises(MixlawInputError, match="sum to"):
        dirichlet_design({"a": 10, "b": 10}, n=3, caps={"a": 0.3, "b": 0.3})
    with pytest.raises(MixlawInputError, match="unknown domain"):
        halving_grid(["a", "b"], {"zz": 0.5})


def test_check_mixture():
    assert check_mixture({"a": 0.75, "b": 0.25}, ["a", "b", "c"]) == {"a": 0.75, "b": 0.25, "c": 0.0}
    with pytest.raises(MixlawInputError, match="sum to 0.9"):
        check_mixture({"a": 0.5, "b": 0.4}, ["a", "b"])
    with pytest.raises(MixlawInputError, match="unknown domain 'x'"):
        check_mixture({"x": 1.0}, ["a", "b"])


def test_caps_that_leave_few_candidates_are_said_with_the_count(cli, caplog):
    # the example of `mixlaw design --help`: the capped last domain takes the remainder, one mixture is left
    code, out, err = cli(
        "design", "--domains", "web,code,books", "--method", "grid", "--caps", "code=0.25,books=0.125"
    )
    assert code == 0 and out.count("{") == 1
    assert "leave 1 halving-grid candidate for 3 domains" in caplog.text and "(books)" in caplog.text
    caplog.clear()
    code, out, err = cli(
        "design",
        "--domains",
        "books,code,web",
        "--method",
        "grid",
        "--caps",
        "code=0.25,books=0.125",
        "-n",
        "40",
    )
    assert code == 0 and out.count("{") == 12
    assert "leave 12 halving-grid candidates, fewer than the 40 asked" in caplog.text
    caplog.clear()
    code, _, err = cli("design", "--domains", "books,code,web", "--method", "grid", "-n", "5")
    assert code == 0 and "candidate" not in caplog.text


def test_design_accepts_a_run_config(cli):
    from mixlaw.job.config import default_config_path

    tokens = "code=1000000,docs=1000000,math=500000,math-prose=500000"
    code, out, err = cli("design", default_config_path(quick=True), "--tokens", tokens, "-n", "3")
    assert code == 0, err
    assert out.count("{") == 3 and "math-prose" in out and "unknown key" not in err
