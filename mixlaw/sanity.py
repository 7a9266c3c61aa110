"""Proxy sanity checks on the observed losses (checks.json `proxy_sanity`): loss must fall with model size at
every checkpoint and mixture, and with steps for every model and mixture; with exactly 3 sizes (too few for the
pipeline's held-out size check) a leave-one-size-out check of the size trend.

Pure pandas/numpy on the pipeline's wide table (one row per checkpoint: run, model, step, targets, total).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5


def _order(params: dict[str, float]) -> list[str]:
    return sorted(params, key=lambda m: params[m])


def size_violations(wide: pd.DataFrame, variable: str, params: dict[str, float], column: str = "total"):
    """Per (run, checkpoint) observed at every size: adjacent sizes (by parameters) whose larger model has the
    higher loss. Returns counts, per size pair, and the worst examples."""
    models = _order(params)
    frame = wide[wide["model"].isin(models)]
    table = frame.pivot_table(index=["run", variable], columns="model", values=column, aggfunc="mean")
    table = table.reindex(columns=models).dropna()
    pairs = {}
    bad_rows = np.zeros(len(table), dtype=bool)
    examples = []
    for small, large in zip(models[:-1], models[1:]):
        rise = (table[large] - table[small]).to_numpy()
        bad = rise > 0
        bad_rows |= bad
        pairs[f"{large} > {small}"] = int(bad.sum())
        for (run, step), value in zip(table.index[bad], rise[bad]):
            examples.append(
                {"run": str(run), variable: float(step), "pair": f"{large} > {small}", "rise": value}
            )
    examples.sort(key=lambda e: -e["rise"])
    runs = table.index.get_level_values("run")
    return {
        "checkpoints": int(len(table)),
        "violations": int(bad_rows.sum()),
        "mixtures": int(runs.nunique()),
        "mixtures_with_violations": int(pd.Series(runs[bad_rows]).nunique()),
        "pairs": pairs,
        "worst": [{**e, "rise": float(e["rise"])} for e in examples[:MAX_EXAMPLES]],
    }


def step_violations(wide: pd.DataFrame, variable: str, params: dict[str, float], column: str = "total"):
    """Per (run, model) curve: consecutive checkpoints where the loss rises with more training."""
    checked = violations = curves_bad = 0
    examples = []
    per_model: dict[str, int] = {}
    for (run, model), rows in wide[wide["model"].isin(list(params))].groupby(["run", "model"], sort=False):
        rows = rows.sort_values(variable)
        values = rows[column].to_numpy(float)
        rise = np.diff(values)
        bad = rise > 0
        checked += len(rise)
        violations += int(bad.sum())
        curves_bad += int(bad.any())
        per_model[str(model)] = per_model.get(str(model), 0) + int(bad.sum())
        steps = rows[variable].to_numpy(float)[1:]
        examples += [
            {"run": str(run), "model": str(model), variable: float(s), "rise": float(r)}
            for s, r in zip(steps[bad], rise[bad])
        ]
    examples.sort(key=lambda e: -e["rise"])
    models = _order(params)
    return {
        "intervals": checked,
        "violations": violations,
        "curves_with_violations": curves_bad,
        "per_model": {m: per_model.get(m, 0) for m in models},
        "worst": examples[:MAX_EXAMPLES],
    }


def leave_one_size_out(wide: pd.DataFrame, variable: str, params: dict[str, float], column: str = "total"):
    """With 3 sizes: predict each size's loss at the largest common checkpoint from the other two with a power
    law through them (L = A N^-alpha, log-linear in log N), per mixture; relative error (predicted - observed) /
    observed. The largest size left out is an extrapolation, like the pipeline's size check."""
    models = _order(params)
    largest_common = float(wide[wide["model"].isin(models)].groupby("model")[variable].max().min())
    at = wide[(wide[variable] == largest_common) & wide["model"].isin(models)]
    table = at.pivot_table(index="run", columns="model", values=column, aggfunc="mean").reindex(
        columns=models
    )
    table = table.dropna()
    log_n = np.log([params[m] for m in models])
    out = {"at": largest_common, "method": "power law through the other two sizes (log L linear in log N)"}
    held = {}
    for k, model in enumerate(models):
        others = [i for i in range(len(models)) if i != k]
        y = np.log(table[[models[i] for i in others]].to_numpy(float))
        slope = (y[:, 1] - y[:, 0]) / (log_n[others[1]] - log_n[others[0]])
        predicted = np.exp(y[:, 0] + slope * (log_n[k] - log_n[others[0]]))
        observed = table[model].to_numpy(float)
        rel = (predicted - observed) / observed
        held[model] = {
            "n": int(len(rel)),
            "mean_rel": float(np.mean(np.abs(rel))) if len(rel) else None,
            "max_rel": float(np.max(np.abs(rel))) if len(rel) else None,
            "bias_rel": float(np.mean(rel)) if len(rel) else None,
        }
    out["held_out"] = held
    return out


def proxy_sanity(
    wide: pd.DataFrame, variable: str, params: dict[str, float], column: str = "total"
) -> dict[str, Any]:
    """checks.json `proxy_sanity`: size and step monotonicity with counts, the leave-one-size-out check with
    3 sizes, and `messages` (one line per problem) for the summary, the terminal and the report."""
    if column not in wide.columns or len(params) < 2:
        return {"skipped": f"needs a {column!r} column and at least 2 sizes"}
    size = size_violations(wide, variable, params, column)
    step = step_violations(wide, variable, params, column)
    out: dict[str, Any] = {"loss": column, "size": size, "step": step, "messages": []}
    if size["violations"]:
        pairs = ", ".join(f"{p} in {n}" for p, n in size["pairs"].items() if n)
        out["messages"].append(
            f"loss rises with model size at {size['violations']} of {size['checkpoints']} checkpoints "
            f"({size['mixtures_with_violations']} of {size['mixtures']} mixtures; {pairs})"
        )
    if step["violations"]:
        models = ", ".join(f"{m} {n}" for m, n in step["per_model"].items() if n)
        out["messages"].append(
            f"loss rises with more {variable}s in {step['violations']} of {step['intervals']} checkpoint "
            f"intervals ({step['curves_with_violations']} curves; {models})"
        )
    if len(params) == 3:
        loso = leave_one_size_out(wide, variable, params, column)
        out["size_loso"] = loso
        largest = _order(params)[-1]
        worst = loso["held_out"][largest]
        if worst["mean_rel"] is not None:
            out["messages"].append(
                f"3 sizes: the size-law check is replaced by leave-one-size-out; {largest} predicted from the "
                f"two smaller sizes at {variable} {loso['at']:g}: mean rel. error {100 * worst['mean_rel']:.2f}%, "
                f"max {100 * worst['max_rel']:.2f}% (n={worst['n']})"
            )
    return out
