"""Panels for the step-law and size-law figures from the pipeline's `step_laws.json` / `size_laws.json`
(`mixlaw.scaling.CurveLaws.to_dict()`: one curve per (model, run, target) or (run, target)).

Curves are combined into the weighted total with the law's target weights. One panel per shown mixture (the
lowest, median and highest predicted total at the target), one line per model size in the step figure. Observed
checkpoints come from the runs table (runs.csv in the folder, or the table named in law.json when it exists).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.reporting.data import ReportData

log = logging.getLogger(__name__)
MAX_PANELS = 3


@dataclass
class Series:
    label: str
    curve_x: np.ndarray
    curve_y: np.ndarray
    fit_limit: float  # solid up to here, dashed (extrapolation) beyond
    fit_x: np.ndarray | None = None
    fit_y: np.ndarray | None = None
    held_x: np.ndarray | None = None
    held_y: np.ndarray | None = None
    target_y: float | None = None


@dataclass
class Panel:
    title: str
    series: list[Series] = field(default_factory=list)
    target_x: float | None = None


_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def natural_key(name: object) -> tuple:
    """Sort key for model sizes: "70M" < "160M" < "1B" (a number with a K/M/B/T suffix), else the digits in
    the name compared as numbers ("L2-D48" < "L2-D128")."""
    text = str(name).strip()
    match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([kKmMbBgGtT]?)", text)
    if match:
        return (0, float(match[1]) * _SUFFIX[match[2].lower()], "")
    parts = tuple(
        (0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", text) if t
    )
    return (1, 0.0, parts)


def model_order(frame: pd.DataFrame) -> list[str]:
    """The distinct `model` values of a runs frame, smallest first: by `params` when the frame has it, else by
    `natural_key`."""
    models = list(dict.fromkeys(frame["model"].astype(str)))
    if "params" in frame.columns:
        params = frame.assign(model=frame["model"].astype(str)).groupby("model")["params"].max()
        return sorted(models, key=lambda m: (float(params.get(m, np.inf)), natural_key(m)))
    return sorted(models, key=natural_key)


def _curve_laws(raw: dict[str, Any] | None):
    from mixlaw.scaling import CurveLaws

    if not isinstance(raw, dict) or not raw.get("curves"):
        return None
    try:
        laws = CurveLaws.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("cannot read the %s: %s", raw.get("kind", "scaling law"), exc)
        return None
    return laws if len(laws.variables) == 1 else None


def _weights(data: ReportData) -> dict[str, float] | None:
    law = data.law
    if law is None:
        return None
    if law.total_weights:
        return {t: float(w) for t, w in law.total_weights.items()}
    return {law.targets[0]: 1.0} if len(law.targets) == 1 else None


def _combine(laws, rows: dict[str, int], weights: dict[str, float], x: np.ndarray) -> np.ndarray | None:
    """Weighted total of the curves `rows` ({target: row}) at x (raw units)."""
    if set(weights) - set(rows):
        return None
    index = np.array([rows[t] for t in weights])
    values = laws.predict(np.asarray(x, dtype=float)[:, None], rows=index)
    return np.array([weights[t] for t in weights]) @ values


def shown_runs(data: ReportData, runs: list[str]) -> list[str]:
    """Up to three mixtures: lowest, median and highest predicted total (else the first ones)."""
    pred = data.target_predictions
    if pred is not None and "pred_total" in pred.columns and "run" in pred.columns:
        ordered = pred.assign(run=pred["run"].astype(str)).sort_values("pred_total")
        ordered = ordered[ordered["run"].isin(runs)]["run"].tolist()
        if ordered:
            picks = [ordered[0], ordered[len(ordered) // 2], ordered[-1]]
            return list(dict.fromkeys(picks))[:MAX_PANELS]
    return runs[:MAX_PANELS]


def _observed(data: ReportData, runs: list[str], variable: str) -> pd.DataFrame | None:
    """Observed weighted total per (run, model, checkpoint) of the shown runs."""
    if data.runs is None or data.law is None:
        return None
    from mixlaw.runs import RunsTable, Weights, aggregate

    meta = data.law.meta.get("weights") or {}
    if not meta.get("domain_weight") or not meta.get("groups"):
        return None
    frame = data.runs.frame
    frame = frame[frame["run"].astype(str).isin(runs)]
    if frame.empty or variable not in frame.columns:
        return None
    weights = Weights(meta["domain_weight"], meta["groups"], str(meta.get("spec")))
    try:
        wide = aggregate(RunsTable(frame, data.runs.source), weights)
    except Exception as exc:  # noqa: BLE001 - observed points are optional decoration
        log.debug("no observed points: %s", exc)
        return None
    wide["run"] = wide["run"].astype(str)
    return wide


def _params(data: ReportData) -> dict[str, float]:
    if data.runs is None or not {"model", "params"} <= set(data.runs.frame.columns):
        return {}
    pairs = data.runs.frame[["model", "params"]].drop_duplicates()
    return dict(zip(pairs["model"].astype(str), pairs["params"].astype(float)))


def _target_scale(data: ReportData) -> dict[str, Any]:
    return (data.law.meta.get("target_scale") or {}) if data.law is not None else {}


def step_panels(data: ReportData) -> list[Panel]:
    laws = _curve_laws(data.step_law)
    weights = _weights(data)
    if laws is None or weights is None:
        return []
    variable = laws.variables[0]
    target = _target_scale(data).get(variable)
    fit_lo, fit_hi = (data.checks.get("defaults") or {}).get("fit_steps") or (None, None)
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for i, key in enumerate(laws.keys):
        rows.setdefault((str(key.get("run")), str(key.get("model"))), {})[str(key.get("target"))] = i
    runs = list(dict.fromkeys(r for r, _ in rows))
    observed = _observed(data, shown := shown_runs(data, runs), variable)
    params = _params(data)
    panels = []
    for run in shown:
        models = sorted({m for r, m in rows if r == run}, key=lambda m: (params.get(m, 0.0), natural_key(m)))
        panel = Panel(f"mixture {run}", target_x=float(target) if target else None)
        for model in models:
            obs = None
            if observed is not None:
                obs = observed[
                    (observed["run"] == run) & (observed["model"].astype(str) == model)
                ].sort_values(variable)
            lo = float(obs[variable].min()) if obs is not None and len(obs) else float(laws.ref[0]) / 10
            hi = float(fit_hi) if fit_hi else float(laws.ref[0])
            right = max([hi] + ([float(target)] if target else []))
            grid = np.geomspace(lo, right, 150)
            curve = _combine(laws, rows[(run, model)], weights, grid)
            if curve is None:
                continue
            series = Series(model, grid, curve, hi)
            if obs is not None and len(obs):
                inside = obs[variable] <= hi + 1e-9
                if fit_lo:
                    inside &= obs[variable] >= float(fit_lo) - 1e-9
                series.fit_x, series.fit_y = (
                    obs.loc[inside, variable].to_numpy(float),
                    obs.loc[inside, "total"].to_numpy(float),
                )
                later = obs[variable] > hi + 1e-9
                series.held_x, series.held_y = (
                    obs.loc[later, variable].to_numpy(float),
                    obs.loc[later, "total"].to_numpy(float),
                )
            if target:
                series.target_y = float(
                    _combine(laws, rows[(run, model)], weights, np.array([float(target)]))[0]
                )
            panel.series.append(series)
        if panel.series:
            panels.append(panel)
    return panels


def size_panels(data: ReportData) -> list[Panel]:
    laws = _curve_laws(data.size_law)
    weights = _weights(data)
    if laws is None or weights is None:
        return []
    target = _target_scale(data).get("params")
    rows: dict[str, dict[str, int]] = {}
    for i, key in enumerate(laws.keys):
        rows.setdefault(str(key.get("run")), {})[str(key.get("target"))] = i
    shown = shown_runs(data, list(rows))
    # The points a size law was fitted on: each size's step-law prediction at the target step.
    step_laws, params = _curve_laws(data.step_law), _params(data)
    step_variable = step_laws.variables[0] if step_laws is not None else None
    step_target = _target_scale(data).get(step_variable) if step_variable else None
    step_rows: dict[tuple[str, str], dict[str, int]] = {}
    if step_laws is not None:
        for i, key in enumerate(step_laws.keys):
            step_rows.setdefault((str(key.get("run")), str(key.get("model"))), {})[str(key.get("target"))] = i
    panels = []
    for run in shown:
        points = []
        for (r, model), r_rows in step_rows.items():
            if r == run and model in params and step_target:
                value = _combine(step_laws, r_rows, weights, np.array([float(step_target)]))
                if value is not None:
                    points.append((params[model], float(value[0])))
        points.sort()
        fit_max = max((p for p, _ in points), default=float(laws.ref[0]))
        lo = min((p for p, _ in points), default=float(laws.ref[0]) / 10)
        right = max([fit_max] + ([float(target)] if target else []))
        grid = np.geomspace(lo, right, 150)
        curve = _combine(laws, rows[run], weights, grid)
        if curve is None:
            continue
        label = f"at {step_variable} {step_target:,.0f}" if step_target else "size law"
        series = Series(label, grid, curve, fit_max)
        if points:
            series.fit_x, series.fit_y = np.array([p for p, _ in points]), np.array([v for _, v in points])
        if target:
            series.target_y = float(_combine(laws, rows[run], weights, np.array([float(target)]))[0])
        panels.append(Panel(f"mixture {run}", [series], float(target) if target else None))
    return panels


def check_note(data: ReportData, names: tuple[str, ...]) -> str:
    """One line per pipeline stage check (relative error of the weighted total on held-back data)."""
    lines = []
    stages = (data.checks or {}).get("checks", data.checks or {})
    for name in names:
        check = stages.get(name)
        if not isinstance(check, dict):
            continue
        if "skipped" in check:
            lines.append(f"{name} check skipped: {check['skipped']}")
        elif "mean_rel" in check:
            lines.append(
                f"{name} check ({check.get('what', '')}): mean relative error "
                f"{100 * check['mean_rel']:.2f}%, max {100 * check['max_rel']:.2f}%, n = {check.get('n')}"
            )
    return "; ".join(lines)
