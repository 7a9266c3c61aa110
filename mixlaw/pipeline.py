"""The nested prediction pipeline: small runs -> target-scale losses -> mixing law -> optimal mixture.

Two ways to reach the target scale (`scale="chain"`, the default, or `scale="joint"`):

- chain (the paper's): a step law per (mixture, size, target) predicts each size at the target step (or
  tokens); a size law per (mixture, target) over those predictions predicts the target size.
- joint: L(N, D) = E + A N^-alpha + B D^-beta per (mixture, target), fitted on all sizes and checkpoints.

Then a mixing law (chosen by cross-validation unless named) is fitted on the extrapolated losses of every
mixture observed at enough sizes, and the mixture is optimized (`mixlaw.optimize`). The same extrapolation at
several training lengths gives a step-aware law (`step_grid` in law.json) for `equivalent_extra_steps`.

Each stage is validated by holding data back: the last checkpoints (step stage), the largest size (size
stage), both at once (chain), and cross-validation over mixtures (mixing stage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.files import dump_json
from mixlaw.fitted import FitData, FittedLaw, fit_law
from mixlaw.mixture import strip_prefix
from mixlaw.runs import RunsTable, Weights, aggregate, write_runs
from mixlaw.scaling import SHARE_OPTIONS, SIZE_EXPONENT, STEP_EXPONENT, CurveLaws, fit_curves
from mixlaw.selection import cross_validate_law, fit_law_or_auto

STEP_GRID_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
HOLDOUT_STEP_RATIO = (
    1.5  # the step check fits checkpoints up to (last fitted step) / 1.5 and predicts the rest
)


@dataclass
class PipelineConfig:
    """What to predict and how. Steps and tokens are in the units of the runs table's columns."""

    target_params: float
    target_step: float | None = None
    target_tokens: float | None = None
    fit_steps: tuple[float | None, float | None] | None = None
    fit_sizes: list[str] | None = None
    law: str | None = None  # None or "auto": chosen by cross-validation
    scale: str = "chain"
    step_share: str = "mixture"
    size_share: str = "all"
    joint_share: str = "all"
    min_sizes: int = 3
    delta: float | None = 0.02
    cv: int = 5
    seed: int = 0
    step_grid: tuple[float, ...] = STEP_GRID_FACTORS
    step_exponent: tuple[float, float] = STEP_EXPONENT
    size_exponent: tuple[float, float] = SIZE_EXPONENT

    def __post_init__(self) -> None:
        if (self.target_step is None) == (self.target_tokens is None):
            raise MixlawInputError("give exactly one of --target-step and --target-tokens")
        if self.target_params <= 0 or (self.target or 0) <= 0:
            raise MixlawInputError("--target-params and the target step/tokens must be positive")
        for name in ("step_share", "size_share", "joint_share"):
            if getattr(self, name) not in SHARE_OPTIONS:
                raise MixlawInputError(
                    f"--{name.replace('_', '-')}: expected one of {', '.join(SHARE_OPTIONS)}"
                )
        if self.scale not in ("chain", "joint"):
            raise MixlawInputError("--scale-law: expected chain or joint")
        if self.min_sizes < 2:
            raise MixlawInputError("--min-sizes must be at least 2")

    @property
    def variable(self) -> str:
        return "step" if self.target_step is not None else "tokens"

    @property
    def target(self) -> float:
        return float(self.target_step if self.target_step is not None else self.target_tokens)


@dataclass
class PipelineResult:
    config: PipelineConfig
    law: FittedLaw
    predictions: pd.DataFrame
    step_laws: CurveLaws | None
    size_laws: CurveLaws | None
    joint_law: CurveLaws | None
    checks: dict[str, Any]
    selection: list[dict[str, Any]]
    runs: list[str]
    defaults: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    extrapolate: Callable[[float], pd.DataFrame] | None = None
    template: dict[str, Any] = field(default_factory=dict)
    data: FitData | None = None  # the extrapolated losses the mixing law was fitted on

    def mixing_law_at(self, value: float) -> FittedLaw:
        """The mixing law refitted (same law) on the extrapolated losses at another step/tokens value."""
        frame = self.extrapolate(value)
        return _fit_mixing(frame, self.template, self.law.law.name, self.config.seed)


# --------------------------------------------------------------------------------------------- data shaping


def _sizes(wide: pd.DataFrame, fit_sizes: list[str] | None) -> pd.DataFrame:
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


def _curve_matrix(
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


def _share_ids(
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
    keys, xs, Y = _curve_matrix(frame, ["model", "run"], variable, targets)
    groups = _share_ids(keys, share, ["model", "run"], ["model"])
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
    keys, xs, Y = _curve_matrix(values, ["run"], "params", targets)
    groups = _share_ids(keys, share, ["run"], [])
    return fit_curves("size", xs[:, None], Y, keys, groups, share, ["params"], delta, [bounds])


def _predict_curves(law: CurveLaws, points: np.ndarray) -> pd.DataFrame:
    """Long frame of each curve's prediction at each point: key fields, point, `pred`."""
    pred = law.predict(points)
    rows = []
    for i, key in enumerate(law.keys):
        for j in range(len(points)):
            rows.append({**key, "_point": j, "pred": pred[i, j]})
    return pd.DataFrame(rows)


def _wide_predictions(long: pd.DataFrame, keys: list[str], targets: list[str]) -> pd.DataFrame:
    out = long.pivot_table(index=keys, columns="target", values="pred", aggfunc="first").reset_index()
    out.columns.name = None
    return out[keys + [t for t in targets if t in out.columns]]


def _total(frame: pd.DataFrame, weights: Weights, targets: list[str]) -> np.ndarray:
    gw = weights.group_weight
    return sum(gw[t] * frame[t].to_numpy(dtype=float) for t in targets)


def _rel_errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    rel = np.abs(pred / true - 1)
    return {
        "n": int(len(rel)),
        "mean_rel": float(rel.mean()),
        "max_rel": float(rel.max()),
        "mean_abs": float(np.abs(pred - true).mean()),
        "bias_rel": float((pred / true - 1).mean()),
    }


# --------------------------------------------------------------------------------------------- the pipeline


def _fit_mixing(frame: pd.DataFrame, template: dict[str, Any], law: str, seed: int) -> FittedLaw:
    data = _fit_data(frame, template)
    fitted = fit_law(data, law, {"seed": seed} if "seed" in _law_defaults(law) else None)
    return fitted


def _law_defaults(name: str) -> dict[str, Any]:
    from mixlaw.laws import get_law

    return get_law(name).defaults


def _fit_data(frame: pd.DataFrame, template: dict[str, Any]) -> FitData:
    return FitData.from_wide(
        frame,
        template["weights"],
        [strip_prefix(c) for c in template["columns"]],
        targets=template["targets"],
        selection=template["selection"],
        data_hash=template["data_hash"],
        source=template["source"],
    )


def run_pipeline(
    table: RunsTable, weights: Weights, config: PipelineConfig, log: Callable[[str], None] = lambda m: None
) -> PipelineResult:
    """Run every stage; see the module docstring. `log` receives one progress line per stage."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    variable = config.variable
    if variable not in table.frame.columns:
        raise MixlawInputError(f"{table.source}: no {variable} column (needed for --target-{variable})")
    wide = aggregate(table, weights)
    targets = list(weights.groups)
    sizes = _sizes(wide, config.fit_sizes)
    params = dict(zip(sizes["model"], sizes["params"].astype(float)))
    wide = wide[wide["model"].isin(params)].copy()
    columns = table.domain_columns
    # Step range: default every complete checkpoint up to the largest step observed at every size.
    largest_common = float(wide.groupby("model")[variable].max().min())
    lo, hi = config.fit_steps or (None, None)
    lo = float(wide[variable].min()) if lo is None else float(lo)
    hi = largest_common if hi is None else float(hi)
    if lo >= hi:
        raise MixlawInputError(f"--fit-steps: empty range {lo:g}:{hi:g}")
    in_range = wide[(wide[variable] >= lo) & (wide[variable] <= hi)]
    defaults = {
        "fit_steps": [lo, hi],
        "fit_sizes": list(params),
        "variable": variable,
        "largest_common": largest_common,
    }
    mixtures = wide.drop_duplicates("run").set_index("run")[columns]
    template = {
        "targets": targets,
        "columns": columns,
        "weights": weights,
        "source": table.source,
        "data_hash": table.data_hash(),
        "selection": {"pipeline": True, "target_params": config.target_params, variable: config.target},
    }
    checks: dict[str, Any] = {}
    step_laws = size_laws = joint_law = None

    # Which mixtures: observed (with >= 3 checkpoints in range) at >= min_sizes sizes.
    per_run = in_range.groupby(["run", "model"])[variable].nunique()
    sizes_per_run = (per_run >= 3).groupby("run").sum()
    runs = sorted(sizes_per_run[sizes_per_run >= min(config.min_sizes, len(params))].index, key=_natural)
    if len(runs) < 2:
        raise MixlawInputError(
            f"only {len(runs)} mixture(s) observed at {config.min_sizes} sizes with 3 checkpoints "
            f"in {lo:g}:{hi:g}; lower --min-sizes or widen --fit-steps"
        )
    log(f"{len(runs)} mixtures at >= {config.min_sizes} of {len(params)} sizes; {variable}s {lo:g}:{hi:g}")

    if config.scale == "chain":
        step_laws = fit_step_laws(
            in_range, variable, targets, config.step_share, config.delta, config.step_exponent
        )
        timings["step_laws"] = time.perf_counter() - clock
        log(
            f"step laws: {len(step_laws.keys)} curves, share beta per {config.step_share} "
            f"({timings['step_laws']:.1f} s)"
        )

        def extrapolate(value: float, _laws=(step_laws,)) -> tuple[pd.DataFrame, CurveLaws]:
            at_sizes = _wide_predictions(
                _predict_curves(_laws[0], np.array([[value]])), ["model", "run"], targets
            )
            at_sizes = at_sizes[at_sizes["run"].isin(runs)]
            laws = fit_size_laws(
                at_sizes, params, targets, config.size_share, config.delta, config.size_exponent
            )
            out = _wide_predictions(
                _predict_curves(laws, np.array([[config.target_params]])), ["run"], targets
            )
            return out, laws

        t0 = time.perf_counter()
        at_target, size_laws = extrapolate(config.target)
        timings["size_laws"] = time.perf_counter() - t0
        log(
            f"size laws: {len(size_laws.keys)} curves, share alpha per {config.size_share} "
            f"({timings['size_laws']:.1f} s)"
        )
    else:
        fit_frame = in_range[in_range["run"].isin(runs)]
        joint_law = _fit_joint(fit_frame, variable, targets, config)
        timings["joint_law"] = time.perf_counter() - clock
        log(
            f"joint law: {len(joint_law.keys)} curves, share exponents per {config.joint_share} "
            f"({timings['joint_law']:.1f} s)"
        )

        def extrapolate(value: float, _law=joint_law) -> tuple[pd.DataFrame, None]:
            point = np.array([[config.target_params, value]])
            return _wide_predictions(_predict_curves(_law, point), ["run"], targets), None

        at_target, _ = extrapolate(config.target)

    frame = at_target.merge(mixtures, left_on="run", right_index=True)
    frame = frame[["run"] + columns + targets]
    frame["total"] = _total(frame, weights, targets)

    # Mixing law on the extrapolated losses.
    t0 = time.perf_counter()
    data = _fit_data(frame, template)
    selection: list[dict[str, Any]] = []
    law_name = config.law
    if law_name in (None, "auto"):  # the one `auto` (mixlaw.selection): chosen by its CV and fitted on `data`
        fitted = fit_law_or_auto(data, "auto", {"seed": config.seed})
        law_name, selection = fitted.meta["auto"]["chosen"], fitted.meta["auto"]["table"]
    else:
        try:
            result = cross_validate_law(data, law_name, cv=min(config.cv, data.n_mixtures), seed=config.seed)
            selection = [
                {
                    "law": law_name,
                    **result["metrics"][
                        "total" if "total" in result["metrics"] else next(iter(result["metrics"]))
                    ],
                }
            ]
        except MixlawInputError as exc:
            selection = [{"law": law_name, "error": str(exc)}]
        fitted = _fit_mixing(frame, template, law_name, config.seed)
    timings["mixing_law"] = time.perf_counter() - t0
    log(f"mixing law: {law_name} ({timings['mixing_law']:.1f} s)")

    # Step-aware law: the same mixing law at several training lengths (target size).
    t0 = time.perf_counter()
    grid_values = [config.target * f for f in config.step_grid]
    grid_laws = []
    for value in grid_values:
        grid_frame, _ = extrapolate(value)
        grid_frame = grid_frame.merge(mixtures, left_on="run", right_index=True)
        grid_laws.append(
            fit_law(_fit_data(grid_frame, template), fitted.law.name, fitted.law.hyper).law.to_dict()
        )
    fitted.meta["step_grid"] = {
        "variable": variable,
        "target": config.target,
        "values": grid_values,
        "factors": list(config.step_grid),
        "laws": grid_laws,
    }
    fitted.meta["observed_mixtures"] = frame[columns].to_numpy(dtype=float).tolist()
    fitted.meta["observed_runs"] = frame["run"].astype(str).tolist()
    fitted.meta["target_scale"] = {
        "params": config.target_params,
        variable: config.target,
        "scale_law": config.scale,
    }
    timings["step_grid"] = time.perf_counter() - t0
    log(f"step-aware laws at {len(grid_values)} training lengths ({timings['step_grid']:.1f} s)")

    # Validation of each stage.
    t0 = time.perf_counter()
    checks = _checks(wide, in_range, runs, variable, targets, weights, params, config, lo, hi, step_laws)
    checks["mixing"] = {"selection": selection, "law": law_name}
    timings["checks"] = time.perf_counter() - t0
    log(f"stage checks ({timings['checks']:.1f} s)")

    predictions = frame[["run"] + columns].copy()
    for t in targets:
        predictions[f"pred_{t}"] = frame[t].to_numpy()
    predictions["pred_total"] = frame["total"].to_numpy()
    timings["total"] = time.perf_counter() - clock
    result = PipelineResult(
        config,
        fitted,
        predictions,
        step_laws,
        size_laws,
        joint_law,
        checks,
        selection,
        runs,
        defaults,
        timings,
        template=template,
        data=data,
    )

    def extrapolate_frame(value: float) -> pd.DataFrame:
        out, _ = extrapolate(value)
        return out.merge(mixtures, left_on="run", right_index=True)

    result.extrapolate = extrapolate_frame
    return result


def _natural(run: str) -> tuple:
    return (0, float(run), "") if str(run).replace(".", "", 1).isdigit() else (1, 0.0, str(run))


def _fit_joint(frame: pd.DataFrame, variable: str, targets: list[str], config: PipelineConfig) -> CurveLaws:
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
    groups = _share_ids(keys, config.joint_share, ["run"], [])
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


def _checks(
    wide: pd.DataFrame,
    in_range: pd.DataFrame,
    runs: list[str],
    variable: str,
    targets: list[str],
    weights: Weights,
    params: dict[str, float],
    config: PipelineConfig,
    lo: float,
    hi: float,
    step_laws: CurveLaws | None,
) -> dict[str, Any]:
    """Hold-out errors (relative error of the weighted total) of each stage."""
    checks: dict[str, Any] = {}
    models = list(params)
    largest = models[-1]
    cut = hi / HOLDOUT_STEP_RATIO
    early = in_range[in_range[variable] <= cut]
    late = in_range[(in_range[variable] > cut) & in_range["run"].isin(runs)]
    observed_total = lambda f: f["total"].to_numpy(dtype=float)  # noqa: E731

    def score(pred: pd.DataFrame, truth: pd.DataFrame, on: list[str]) -> dict[str, Any]:
        merged = truth.merge(pred, on=on, suffixes=("", "_pred"))
        if merged.empty:
            return {"skipped": "nothing to compare"}
        p = sum(weights.group_weight[t] * merged[f"{t}_pred"].to_numpy(dtype=float) for t in targets)
        return _rel_errors(p, observed_total(merged))

    if config.scale == "chain":
        # 1. Step stage: fit up to `cut`, predict the later checkpoints of each size.
        try:
            laws = fit_step_laws(
                early, variable, targets, config.step_share, config.delta, config.step_exponent
            )
            points = np.sort(late[variable].unique()).astype(float)[:, None]
            pred = _wide_predictions(
                _predict_curves(laws, points).assign(
                    **{variable: lambda d: points[d["_point"].to_numpy(), 0]}
                ),
                ["model", "run", variable],
                targets,
            )
            checks["step"] = {
                "what": f"step laws fitted on {variable}s {lo:g}:{cut:g}, predicting "
                f"{cut:g} < {variable} <= {hi:g} at every size",
                **score(pred, late, ["model", "run", variable]),
                "per_size": {
                    m: score(pred[pred["model"] == m], late[late["model"] == m], ["model", "run", variable])
                    for m in models
                },
            }
        except MixlawInputError as exc:
            checks["step"] = {"skipped": str(exc)}
        # 2. Beyond the fitted range: observed checkpoints after `hi`, predicted by the full step laws.
        beyond = wide[wide[variable] > hi]
        if step_laws is not None and not beyond.empty:
            points = np.sort(beyond[variable].unique()).astype(float)[:, None]
            pred = _wide_predictions(
                _predict_curves(step_laws, points).assign(
                    **{variable: lambda d: points[d["_point"].to_numpy(), 0]}
                ),
                ["model", "run", variable],
                targets,
            )
            checks["step_beyond"] = {
                "what": f"observed checkpoints beyond the fitted range ({variable} > {hi:g}), "
                "predicted by the step laws",
                **score(pred, beyond, ["model", "run", variable]),
                "cases": _cases(pred, beyond, targets, weights, ["model", "run", variable]),
            }
        # 3. Size stage: observed losses at `hi` for all sizes but the largest, predict the largest.
        at_hi = wide[(wide[variable] == hi) & wide["run"].isin(runs)]
        smaller = at_hi[at_hi["model"] != largest]
        if len(models) - 1 >= 3 and not smaller.empty:
            try:
                laws = fit_size_laws(
                    smaller[["model", "run"] + targets],
                    params,
                    targets,
                    config.size_share,
                    config.delta,
                    config.size_exponent,
                )
                pred = _wide_predictions(
                    _predict_curves(laws, np.array([[params[largest]]])), ["run"], targets
                )
                checks["size"] = {
                    "what": f"size laws fitted on observed losses at {variable} {hi:g} of "
                    f"{', '.join(models[:-1])}, predicting {largest}",
                    **score(pred, at_hi[at_hi["model"] == largest], ["run"]),
                }
            except MixlawInputError as exc:
                checks["size"] = {"skipped": str(exc)}
        else:
            checks["size"] = {"skipped": "needs at least 4 sizes (3 to fit, the largest to check)"}
        # 4. Chain: step laws up to `cut` on all but the largest size, then size laws, predict the largest later.
        if len(models) - 1 >= 3:
            try:
                laws = fit_step_laws(
                    early[early["model"] != largest],
                    variable,
                    targets,
                    config.step_share,
                    config.delta,
                    config.step_exponent,
                )
                truth = late[late["model"] == largest]
                preds = []
                for value in np.sort(truth[variable].unique()):
                    at = _wide_predictions(
                        _predict_curves(laws, np.array([[value]])), ["model", "run"], targets
                    )
                    size = fit_size_laws(
                        at[at["run"].isin(runs)],
                        params,
                        targets,
                        config.size_share,
                        config.delta,
                        config.size_exponent,
                    )
                    p = _wide_predictions(
                        _predict_curves(size, np.array([[params[largest]]])), ["run"], targets
                    )
                    preds.append(p.assign(**{variable: value}))
                checks["chain"] = {
                    "what": f"step laws on {variable}s <= {cut:g} and sizes {', '.join(models[:-1])}, "
                    f"then size laws, predicting {largest} at {variable}s {cut:g}:{hi:g}",
                    **score(pd.concat(preds), truth, ["run", variable]),
                }
            except MixlawInputError as exc:
                checks["chain"] = {"skipped": str(exc)}
        else:
            checks["chain"] = {"skipped": "needs at least 4 sizes"}
    else:
        fit_frame = in_range[in_range["run"].isin(runs)]

        def joint_score(train: pd.DataFrame, truth: pd.DataFrame, what: str) -> dict[str, Any]:
            try:
                law = _fit_joint(train, variable, targets, config)
            except MixlawInputError as exc:
                return {"skipped": str(exc)}
            pts = truth[["params", variable]].drop_duplicates().to_numpy(dtype=float)
            long = _predict_curves(law, pts)
            long["params"], long[variable] = pts[long["_point"], 0], pts[long["_point"], 1]
            pred = _wide_predictions(long, ["run", "params", variable], targets)
            return {"what": what, **score(pred, truth, ["run", "params", variable])}

        checks["step"] = joint_score(
            fit_frame[fit_frame[variable] <= cut],
            late,
            f"joint law fitted on {variable}s <= {cut:g}, predicting the later checkpoints",
        )
        at_hi = fit_frame[fit_frame[variable] == hi]
        checks["size"] = joint_score(
            fit_frame[fit_frame["model"] != largest],
            at_hi[at_hi["model"] == largest],
            f"joint law fitted without {largest}, predicting {largest} at {variable} {hi:g}",
        )
        checks["chain"] = joint_score(
            fit_frame[(fit_frame["model"] != largest) & (fit_frame[variable] <= cut)],
            late[late["model"] == largest],
            f"joint law fitted without {largest} on {variable}s <= {cut:g}, predicting {largest} later",
        )
    return checks


def _cases(
    pred: pd.DataFrame, truth: pd.DataFrame, targets: list[str], weights: Weights, on: list[str]
) -> list[dict]:
    merged = truth.merge(pred, on=on, suffixes=("", "_pred"))
    out = []
    for _, row in merged.iterrows():
        p = sum(weights.group_weight[t] * row[f"{t}_pred"] for t in targets)
        out.append(
            {
                **{k: row[k] for k in on},
                "observed": float(row["total"]),
                "predicted": float(p),
                "rel_error": float(p / row["total"] - 1),
            }
        )
    return out


# --------------------------------------------------------------------------------------------- report


def summary_markdown(
    result: PipelineResult, optimum: dict[str, Any] | None, command: str | None = None
) -> str:
    """summary.md: defaults used, stage-by-stage validation errors, the chosen law and the optimum."""
    c, d = result.config, result.defaults
    lines = ["# mixlaw pipeline summary", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"Target: {c.target_params:,.0f} parameters at {c.variable} {c.target:,.0f}; scale law: **{c.scale}**.",
        "",
        "## Settings (defaults in brackets)",
        "",
        f"- {d['variable']} range fitted: {d['fit_steps'][0]:g}:{d['fit_steps'][1]:g} "
        f"[every complete checkpoint up to the largest {d['variable']} observed at all sizes, {d['largest_common']:g}]",
        f"- sizes: {', '.join(d['fit_sizes'])} [all sizes]",
        f"- mixtures: {len(result.runs)} observed at >= {c.min_sizes} sizes [3]; every run id is treated alike",
        f"- exponent sharing: step {c.step_share} [mixture], size {c.size_share} [all], joint {c.joint_share} [all]",
        f"- mixing law: {result.checks['mixing']['law']} [auto: chosen by cross-validation on the extrapolated losses]",
        "",
        "## Stage checks (relative error of the weighted total on held-back data)",
        "",
        "| stage | what | n | mean rel. error | max rel. error | bias |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("step", "step_beyond", "size", "chain"):
        check = result.checks.get(name)
        if check is None:
            continue
        if "skipped" in check:
            lines.append(f"| {name} | skipped: {check['skipped']} | | | | |")
        else:
            lines.append(
                f"| {name} | {check['what']} | {check['n']} | {100 * check['mean_rel']:.3f}% | "
                f"{100 * check['max_rel']:.3f}% | {100 * check['bias_rel']:+.3f}% |"
            )
    lines += [
        "",
        "Mixing law cross-validation on the extrapolated losses (total):",
        "",
        "| law | MAE | mean rel. error | Spearman |",
        "|---|---|---|---|",
    ]
    for row in result.selection:
        if "mae" in row:
            lines.append(
                f"| {row['law']} | {row['mae']:.5f} | {100 * row['mare']:.3f}% | {row['spearman']:.3f} |"
            )
        else:
            lines.append(f"| {row['law']} | failed: {row.get('error', '')} | | |")
    if optimum is not None:
        lines += ["", "## Optimum", "", "| domain | optimum | baseline |", "|---|---|---|"]
        for k, v in optimum["mixture"].items():
            lines.append(f"| {k} | {v:.4f} | {optimum['baseline']['mixture'][k]:.4f} |")
        lines += [
            "",
            f"Predicted objective: optimum {optimum['predicted']['objective']:.5f}, baseline "
            f"({optimum['baseline']['name']}) {optimum['baseline']['predicted']['objective']:.5f}.",
            f"equivalent_extra_steps: {optimum['equivalent_extra_steps']}"
            + (
                f" ({optimum.get('equivalent_extra_steps_reason')})"
                if optimum["equivalent_extra_steps"] is None
                else " (steps the baseline needs to match the optimum, as a multiple of the target)"
            ),
            f"Distance to the nearest observed mixture (L1): {optimum['distance_to_observed'].get('l1')}"
            + (
                " - WARNING: beyond the spacing of the observed mixtures"
                if optimum["distance_to_observed"].get("warning")
                else ""
            ),
        ]
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()), ""]
    return "\n".join(lines)


def write_outputs(
    result: PipelineResult,
    optimum: dict[str, Any],
    out: Path,
    command: str | None = None,
    summary_name: str = "summary.md",
) -> None:
    """The pipeline's result files in `out`: predictions.csv, law.json, optimum.json, step/size (or joint) law
    JSON, checks.json and the summary (`summary_name`)."""
    write_runs(result.predictions, out / "predictions.csv")
    result.law.save(out / "law.json")
    dump_json(optimum, out / "optimum.json")
    if result.step_laws is not None:
        dump_json(result.step_laws.to_dict(), out / "step_laws.json")
        dump_json(result.size_laws.to_dict(), out / "size_laws.json")
    if result.joint_law is not None:
        dump_json(result.joint_law.to_dict(), out / "joint_law.json")
    dump_json(
        {"checks": result.checks, "defaults": result.defaults, "timings": result.timings}, out / "checks.json"
    )
    (out / summary_name).write_text(summary_markdown(result, optimum, command))
