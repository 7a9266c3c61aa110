"""Shared fixtures: synthetic runs tables and an in-process CLI runner."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixlaw.cli.main import main

DOMAINS = ["a", "b", "c"]


def exp_law_loss(X: np.ndarray, c: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-target c_i + exp(T_i . r): X (n, M), c (T,), T (T, M) -> (n, T)."""
    return c[None] + np.exp(X @ T.T)


def make_runs(
    n_mixtures: int = 24, seed: int = 0, noise: float = 0.002, steps=(1000,), models=("m1",)
) -> pd.DataFrame:
    """A runs table from a known 3-domain exponential law per validation domain."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(3), size=n_mixtures).round(4)
    X[:, -1] = 1 - X[:, :-1].sum(axis=1)
    c = np.array([2.0, 1.5, 3.0])
    T = np.array([[-2.0, 0.2, 0.1], [0.3, -1.5, 0.0], [0.1, 0.2, -1.0]])
    rows = []
    for m_i, model in enumerate(models):
        for step in steps:
            shift = 0.3 * (1000 / step) ** 0.5 + 0.1 * m_i
            Y = exp_law_loss(X, c, T) + shift + rng.normal(0, noise, (n_mixtures, 3))
            for r in range(n_mixtures):
                for i, d in enumerate(DOMAINS):
                    rows.append(
                        {
                            "run": f"r{r}",
                            "model": model,
                            "params": 1000 * (m_i + 1),
                            "step": step,
                            "tokens": step * 1024,
                            **{f"p_{x}": X[r, j] for j, x in enumerate(DOMAINS)},
                            "valid_domain": d,
                            "loss": Y[r, i],
                        }
                    )
    return pd.DataFrame(rows)


@pytest.fixture
def runs_csv(tmp_path):
    path = tmp_path / "runs.csv"
    make_runs().to_csv(path, index=False)
    return path


@pytest.fixture
def cli(capsys):
    """Run `mixlaw ARGS` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err

    return run
