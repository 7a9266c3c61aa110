"""Extrapolation to the target scale: step laws, size laws (the chain) or one joint law over curves of losses.

`Extrapolator` holds the fitted laws and predicts every mixture's losses at the target size for any training
length; the pipeline stores it (a plain object, no closure) for the step-aware laws and for API users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.scaling import SIZE_EXPONENT, STEP_EXPONENT, CurveLaws, fit_curves
from mixlaw.settings import PipelineConfig


def model_sizes(wide: pd.DataFrame, fit_sizes: list[str] | None) -> pd.DataFrame:
    """One row per model size (model label, params), sorted by params, restricted to `fit_sizes`."""
    if "params" not in wide.columns:
        raise MixlawInputError("the pipeline needs a params column (model size in parameters)")
    if "model" not in wide.columns:
        wide["model"] = wide["params"].astype(str)
    sizes = wide[["model", "params"]].drop_duplicates().sort_values("params").reset_index(drop=True)
    if sizes["model"].duplicated().any():
        raise MixlawInputError("one model label has several params values")
    if fit_sizes:
        keep = []
        for item in fit_sizes:
            hit = sizes[(sizes["model"] == item) | np.isclose(sizes["params"], _number(item), rtol=1e-9)]
            if hit.empty:
                raise MixlawInputError(
                    f"--fit-sizes {item}: no such model; available: "
                    + ", ".join(f"{m} ({p:g})" for m, p in zip(sizes["model"], sizes["params"]))
                )
            keep.extend(hit.index)
        sizes = sizes.loc[sorted(set(keep))].reset_index(drop=True)
    if len(sizes) < 2:
        raise MixlawInputError(f"the pipeline needs at least 2 model sizes, got {len(sizes)}")
    return sizes


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def curve_matrix(
    frame: pd.DataFrame, keys: list[str], x: str, targets: list[str]
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Curves (one per key combination and target) over the sorted union of `x`: (keys, xs (n,), Y (C, n))."""
    xs = np.sort(frame[x].unique()).astype(float)
    grouped = frame.groupby(keys + [x], sort=True)[targets].mean()  # repeats/seeds averaged
    wide = grouped.unstack(x).reindex(columns=pd.MultiIndex.from_product([targets, xs]))
    curve_keys, rows = [], []
    for index, row in wide.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        for t in targets:
            curve_keys.append({**dict(zip(keys, index)), "target": t})
            rows.append(row[t].to_numpy(dtype=float))
    return curve_keys, xs, np.array(rows)


def share_ids(
    keys: list[dict[str, Any]], share: str, mixture_fields: list[str], all_fields: list[str]
) -> np.ndarray:
    if share == "none":
        return np.arange(len(keys))
    fields = mixture_fields if share == "mixture" else all_fields
    labels = [tuple(str(k[f]) for f in fields) for k in keys]
    return np.unique(labels, return_inverse=True, axis=0)[1].ravel() if fields else np.zeros(len(keys), int)


def fit_step_laws(
    frame: pd.DataFrame,
    variable: str,
    targets: list[str],
    share: str,
    delta: float | None,
    bounds: tuple[float, float] = STEP_EXPONENT,
) -> CurveLaws:
    """Step laws of every (model, run, target) curve with at least 3 checkpoints in `frame`."""
    counts = frame.groupby(["model", "run"])[variable].nunique()
    ok = counts[counts >= 3].index
    frame = frame.set_index(["model", "run"]).loc[ok].reset_index()
    if frame.empty:
        raise MixlawInputError("no run has 3 checkpoints in the step range (see --fit-steps)")
    keys, xs, Y = curve_matrix(frame, ["model", "run"], variable, targets)
    groups = share_ids(keys, share, ["model", "run"], ["model"])
    return fit_curves("step", xs[:, None], Y, keys, groups, share, [variable], delta, [bounds])


def fit_size_laws(
    values: pd.DataFrame,
    params: dict[str, float],
    targets: list[str],
    share: str,
    delta: float | None,
    bounds: tuple[float, float] = SIZE_EXPONENT,
) -> CurveLaws:
    """Size laws of each (run, target) over model sizes; `values` has columns model, run and the targets."""
    values = values.assign(params=values["model"].map(params))
    keys, xs, Y = curve_matrix(values, ["run"], "params", targets)
    groups = share_ids(keys, share, ["run"], [])
    return fit_curves("size", xs[:, None], Y, keys, groups, share, ["params"], delta, [bounds])


def predict_curves(law: CurveLaws, points: np.ndarray) -> pd.DataFrame:
    """Long frame of each curve's prediction at each point: key fields, point, `pred`."""
    pred = law.predict(points)
    rows = []
    for i, key in enumerate(law.keys):
        for j in range(len(points)):
            rows.append({**key, "_point": j, "pred": pred[i, j]})
    return pd.DataFrame(rows)


def wide_predictions(long: pd.DataFrame, keys: list[str], targets: list[str]) -> pd.DataFrame:
    out = long.pivot_table(index=keys, columns="target", values="pred", aggfunc="first").reset_index()
    out.columns.name = None
    return out[keys + [t for t in targets if t in out.columns]]


def rel_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    rel = np.abs(pred / true - 1)
    return {
        "n": int(len(rel)),
        "mean_rel": float(rel.mean()),
        "max_rel": float(rel.max()),
        "mean_abs": float(np.abs(pred - true).mean()),
        "bias_rel": float((pred / true - 1).mean()),
    }


def natural_order(run: str) -> tuple:
    return (0, float(run), "") if str(run).replace(".", "", 1).isdigit() else (1, 0.0, str(run))


def fit_joint(frame: pd.DataFrame, variable: str, targets: list[str], config: PipelineConfig) -> CurveLaws:
    """Joint laws E + A N^-alpha + B D^-beta per (run, target) over every (params, variable) point."""
    points = (
        frame[["params", variable]].drop_duplicates().sort_values(["params", variable]).to_numpy(dtype=float)
    )
    index = pd.MultiIndex.from_arrays([points[:, 0], points[:, 1]])
    grouped = frame.groupby(["run", "params", variable])[targets].mean()
    keys, rows = [], []
    for run, sub in grouped.groupby(level=0, sort=False):
        sub = sub.droplevel(0).reindex(index)
        for t in targets:
            keys.append({"run": run, "target": t})
            rows.append(sub[t].to_numpy(dtype=float))
    groups = share_ids(keys, config.joint_share, ["run"], [])
    return fit_curves(
        "joint",
        points,
        np.array(rows),
        keys,
        groups,
        config.joint_share,
        ["params", variable],
        config.delta,
        [config.size_exponent, config.step_exponent],
    )


@dataclass
class Extrapolator:
    """The scale laws of one pipeline run: predicts each mixture's losses at the target size for a training
    length (`value`, in the pipeline's variable), via the step laws and a size-law refit (chain) or the
    joint law."""

    config: PipelineConfig
    runs: list[str]
    targets: list[str]
    params: dict[str, float]
    mixtures: pd.DataFrame  # index run, the p_ columns
    step_laws: CurveLaws | None = None
    joint_law: CurveLaws | None = None
    # `at` per value, computed once: the pipeline's fit, its step grid and the checks ask for the same lengths.
    _cache: dict[float, tuple[pd.DataFrame, CurveLaws | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def at(self, value: float) -> tuple[pd.DataFrame, CurveLaws | None]:
        """(losses per run at the target size: columns run + targets, the size laws fitted on the way)."""
        key = float(value)
        if key not in self._cache:
            self._cache[key] = self._at(key)
        out, laws = self._cache[key]
        return out.copy(), laws

    def _at(self, value: float) -> tuple[pd.DataFrame, CurveLaws | None]:
        c = self.config
        if self.joint_law is not None:
            point = np.array([[c.target_params, value]])
            return wide_predictions(predict_curves(self.joint_law, point), ["run"], self.targets), None
        at_sizes = wide_predictions(
            predict_curves(self.step_laws, np.array([[value]])), ["model", "run"], self.targets
        )
        at_sizes = at_sizes[at_sizes["run"].isin(self.runs)]
        laws = fit_size_laws(at_sizes, self.params, self.targets, c.size_share, c.delta, c.size_exponent)
        out = wide_predictions(predict_curves(laws, np.array([[c.target_params]])), ["run"], self.targets)
        return out, laws

    def frame(self, value: float) -> pd.DataFrame:
        """Losses per run at the target size and `value`, with the runs' p_ columns."""
        out, _ = self.at(value)
        return out.merge(self.mixtures, left_on="run", right_index=True)
