"""A self-contained demo: proxy runs simulated from a known ground truth, then fit, evaluate and optimize.

The ground truth has four training domains and four validation domains with cross-domain transfer and a
power-law response near zero share, i.e. it is *not* of the exact form of any law, so the demo shows how well
each law approximates a realistic response. The runs are noisy (checkpoint noise 0.003 nats).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mixlaw.files import dump_json
from mixlaw.fitted import fit_law, prepare
from mixlaw.mixture import Mixture
from mixlaw.runs import RunsTable, validate_runs, write_runs
from mixlaw.selection import cross_validate_law
from mixlaw.simplex import minimize_on_simplex

DOMAINS = ["web", "code", "books", "math"]
VALID_WEIGHTS = np.array([0.4, 0.25, 0.2, 0.15])
# transfer[i, j]: how much training on domain j lowers the loss on validation domain i
TRANSFER = np.array(
    [
        [1.00, 0.10, 0.45, 0.05],
        [0.20, 1.00, 0.05, 0.30],
        [0.45, 0.05, 1.00, 0.05],
        [0.15, 0.35, 0.05, 1.00],
    ]
)
FLOOR = np.array([2.9, 1.1, 3.1, 1.4])
SCALE = np.array([0.35, 0.45, 0.30, 0.50])
NOISE = 0.003


def true_loss(X: np.ndarray) -> np.ndarray:
    """Ground-truth per-domain loss, (n, 4) -> (n, 4): c_i + a_i / (0.02 + effective share)^0.3."""
    effective = X @ TRANSFER.T
    return FLOOR + SCALE / (0.02 + effective) ** 0.3


def simulate_runs(n_mixtures: int = 28, seed: int = 0) -> pd.DataFrame:
    """Runs table of proxy runs on Dirichlet mixtures (a third of them with one domain left out)."""
    rng = np.random.default_rng(seed)
    X = rng.dirichlet(np.ones(len(DOMAINS)), size=n_mixtures)
    drop = rng.integers(len(DOMAINS), size=n_mixtures)
    for i in range(0, n_mixtures, 3):
        X[i, drop[i]] = 0.0
    X = np.round(X / X.sum(axis=1, keepdims=True), 4)
    X[:, -1] = 1 - X[:, :-1].sum(axis=1)
    X = np.clip(X, 0, 1)
    loss = true_loss(X) + rng.normal(0, NOISE, size=(n_mixtures, len(DOMAINS)))
    rows = []
    for r in range(n_mixtures):
        for i, domain in enumerate(DOMAINS):
            rows.append(
                {
                    "run": f"demo-{r:02d}",
                    "model": "demo",
                    "params": 1_000_000,
                    "step": 1000,
                    **{f"p_{d}": X[r, j] for j, d in enumerate(DOMAINS)},
                    "valid_domain": domain,
                    "loss": float(loss[r, i]),
                }
            )
    return pd.DataFrame(rows)


def run_demo(out: str | Path, seed: int = 0, log: Callable[[str], None] = print) -> dict:
    out = Path(out)
    frame = simulate_runs(seed=seed)
    write_runs(frame, out / "runs.csv")
    weights_file = out / "valid_weights.csv"
    pd.DataFrame({"valid_domain": DOMAINS, "valid_weight": VALID_WEIGHTS}).to_csv(weights_file, index=False)
    log(f"simulated {frame['run'].nunique()} proxy runs on {len(DOMAINS)} domains -> {out / 'runs.csv'}")

    data = prepare(
        RunsTable(validate_runs(frame, str(out / "runs.csv")), str(out / "runs.csv")),
        valid_weights=str(weights_file),
    )
    lines = ["law            LOO MAE(total)  max err   Spearman"]
    scores = {}
    for law in ("dml", "dml-log", "ridge-rlogr"):
        result = cross_validate_law(data, law, cv="loo")
        m = result["metrics"]["total"]
        scores[law] = m
        lines.append(f"{law:<14} {m['mae']:>14.5f} {m['max']:>9.5f} {m['spearman']:>10.4f}")
        log(f"cross-validated {law}: MAE {m['mae']:.5f}")
    best_law = min(scores, key=lambda k: scores[k]["mae"])
    fitted = fit_law(data, best_law, command="mixlaw demo")
    fitted.save(out / "law.json")

    def truth_total(x: np.ndarray) -> float:
        return float(true_loss(x[None])[0] @ VALID_WEIGHTS)

    from mixlaw.optimizer import optimize

    predicted_opt = np.array(list(optimize(fitted, seed=seed)["mixture"].values()))
    true_opt = minimize_on_simplex(truth_total, len(DOMAINS), seed=seed)
    uniform = np.full(len(DOMAINS), 1 / len(DOMAINS))
    regret = truth_total(predicted_opt) - truth_total(true_opt)
    result = {
        "best_law": best_law,
        "cv": scores,
        # rounded to 4 decimals with the remainder on the largest share, so the written mixture sums to 1
        "optimum": Mixture.from_array(predicted_opt, DOMAINS, "demo optimum").rounded(4).as_dict(),
        "true_optimum": dict(zip(DOMAINS, true_opt.round(4).tolist())),
        "predicted_total_at_optimum": float(fitted.predict_total(predicted_opt[None])[0]),
        "true_total_at_optimum": truth_total(predicted_opt),
        "true_total_at_uniform": truth_total(uniform),
        "best_possible_total": truth_total(true_opt),
        "regret": regret,
    }
    dump_json(result, out / "optimum.json")
    lines += [
        "",
        f"chosen law (lowest cross-validated error): {best_law}",
        "optimal mixture (law):   " + ", ".join(f"{d}={v:.3f}" for d, v in zip(DOMAINS, predicted_opt)),
        "optimal mixture (truth): " + ", ".join(f"{d}={v:.3f}" for d, v in zip(DOMAINS, true_opt)),
        f"true total loss: law's optimum {truth_total(predicted_opt):.4f}, uniform {truth_total(uniform):.4f}, "
        f"best possible {truth_total(true_opt):.4f} (regret {regret:.5f})",
        f"wrote {out / 'law.json'} and {out / 'optimum.json'}",
    ]
    result["text"] = "\n".join(lines)
    return result
