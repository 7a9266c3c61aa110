"""Continual pretraining: the critical proportion of original data and the forgetting/gain trade-off.

Setting (Ye et al. 2024, section 4 of docs/paper-spec.md): a base model trained on original data is continued
on mixtures of original and new data; r is the share of original data. The law is the two-domain mixing law
in r, fitted separately to the original-domain loss (a weighted total over the original validation domains)
and to the new-domain loss:

    L_orig(r) = c + exp(b + k r),       L_new(r) = c' + exp(b' + k' r)

The critical proportion r* is the smallest r in [0, 1] whose predicted original loss does not exceed the base
model's (plus `tolerance`): r* = (ln(L_base + tol - c) - b) / k when the law decreases in r.

Interval (with four to a handful of mixtures, no resampling of runs is meaningful): a parametric bootstrap.
Each draw adds Gaussian noise of size sigma to the fitted values at the observed shares and refits; sigma is
the larger of (a) the fit's residual sd, sqrt(SSR / (n - 3)), and (b) the checkpoint noise: the scatter of each
run's original loss around a quadratic in log(step) over the checkpoints nearest the fitted one. The interval
therefore says how far r* moves under noise of the size seen in the data; it does not cover a wrong law form,
and the base loss is taken as exact (it is the reference the user compares against).

    result = continual_analysis(read_runs("ct.csv"), base_run="base", original="all", new=["python"],
                                valid_weights="valid_weights.csv", holdout_runs=["9"])
    result["critical"]["share"], result["critical"]["interval"], result["holdout"]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from mixlaw.errors import MixlawInputError
from mixlaw.fitting import fit_multistart
from mixlaw.laws.dml import DML2, exp_model, linearized_starts
from mixlaw.mixture import Domains, column, prefixed_columns, strip_prefix
from mixlaw.recommendation import MIN_CONFIDENCE, recommendation
from mixlaw.runs import RunsTable, load_weights, read_table

log = logging.getLogger(__name__)

ALL = ("all", "*")


# --------------------------------------------------------------------------------------------- data


@dataclass
class ContinualData:
    """Per-run original share r, original and new losses at the chosen step, plus the base model's losses."""

    runs: list[str]
    r: np.ndarray
    original: np.ndarray
    new: np.ndarray
    base_original: float
    base_new: float
    step: float | None
    original_domains: list[str]
    new_domains: list[str]
    original_weights: dict[str, float]
    new_weights: dict[str, float]
    original_train: list[str]
    curves: pd.DataFrame  # run, step, original, new at every complete checkpoint (for checkpoint noise)


def _weights_for(spec: str | None, domains: list[str], what: str) -> dict[str, float]:
    """Weights over `domains` from a weights file (renormalized); uniform when the file does not cover them."""
    if spec is None or spec == "uniform":
        return {d: 1.0 / len(domains) for d in domains}
    listed = set(read_table(spec, "valid-weights").get("valid_domain", pd.Series(dtype=str)).astype(str))
    if not set(domains) & listed:
        if what == "original":
            raise MixlawInputError(f"{spec}: none of the original domains has a weight")
        return {d: 1.0 / len(domains) for d in domains}
    weights = load_weights(spec, domains)
    covered = [d for d in domains if d in weights.domain_weight]
    if len(covered) < len(domains):
        if not covered or what == "new":
            return {d: 1.0 / len(domains) for d in domains}
        missing = [d for d in domains if d not in weights.domain_weight]
        raise MixlawInputError(f"{spec}: no weight for {what} domain(s) {', '.join(missing[:5])}")
    return dict(weights.domain_weight)


def _weighted(frame: pd.DataFrame, keys: list[str], weights: dict[str, float]) -> pd.Series:
    """Weighted loss per checkpoint over `weights`' domains; checkpoints missing a domain are dropped."""
    part = frame[frame["valid_domain"].isin(list(weights))]
    wide = part.pivot_table(index=keys, columns="valid_domain", values="loss", aggfunc="first")
    wide = wide.reindex(columns=list(weights)).dropna()
    w = np.array([weights[d] for d in weights])
    return pd.Series(wide.to_numpy(float) @ (w / w.sum()), index=wide.index)


def prepare_continual(
    table: RunsTable,
    base_run: str | None,
    original: list[str] | str,
    new: list[str],
    valid_weights: str | None = None,
    step: float | None = None,
    base_step: float | None = None,
    original_train: list[str] | None = None,
    model: str | None = None,
    exclude_runs: list[str] | None = None,
) -> ContinualData:
    """Select the base run and the continual runs and compute original/new losses per run."""
    frame = table.select(model=model).frame if model is not None else table.frame
    source = table.source
    if "model" in frame.columns and frame["model"].nunique() > 1:
        raise MixlawInputError(
            f"{source}: several models ({', '.join(sorted(frame['model'].unique()))}); choose one with --model"
        )
    runs_all = sorted(frame["run"].unique())
    if base_run is None:
        inferred = frame["init_run"].dropna().unique() if "init_run" in frame.columns else []
        inferred = [r for r in inferred if r in runs_all]
        if len(inferred) != 1:
            raise MixlawInputError(f"{source}: give --base-run (runs: {', '.join(runs_all[:20])})")
        base_run = str(inferred[0])
    if base_run not in runs_all:
        raise MixlawInputError(
            f"{source}: no run {base_run!r} for --base-run; runs: {', '.join(runs_all[:20])}"
        )
    valid = sorted(frame["valid_domain"].unique())
    unknown = [d for d in new if d not in valid]
    if unknown:
        raise MixlawInputError(
            f"{source}: --new: no validation domain {unknown[0]!r}; available: {', '.join(valid[:30])}"
        )
    if isinstance(original, str) and original in ALL or list(original) in ([a] for a in ALL):
        original = [d for d in valid if d not in new]
    original = list(original)
    unknown = [d for d in original if d not in valid]
    if unknown:
        raise MixlawInputError(
            f"{source}: --original: no validation domain {unknown[0]!r}; available: {', '.join(valid[:30])}"
        )
    if set(original) & set(new):
        raise MixlawInputError(
            f"--original and --new share domain(s) {', '.join(sorted(set(original) & set(new)))}"
        )
    if not original or not new:
        raise MixlawInputError("--original and --new must each name at least one validation domain")
    w_orig = _weights_for(valid_weights, original, "original")
    w_new = _weights_for(valid_weights, new, "new")

    pcols = prefixed_columns(frame.columns)
    base = frame[frame["run"] == base_run]
    if original_train is None:
        shares = base[pcols].iloc[0]
        original_train = [c for c in pcols if shares[c] > 0]
        if len(original_train) == len(pcols):
            raise MixlawInputError(
                f"run {base_run}: the base run uses every training domain; name the original "
                "ones with --original-train"
            )
    else:
        known = Domains(strip_prefix(c) for c in pcols)
        original_train = [column(known.resolve(c, "--original-train")) for c in original_train]

    has_step = "step" in frame.columns
    if has_step:
        b_step = float(base["step"].max()) if base_step is None else float(base_step)
        base = base[np.isclose(base["step"].astype(float), b_step)]
        if base.empty:
            raise MixlawInputError(f"run {base_run}: no checkpoint at --base-step {base_step:g}")
    base_keys = ["run"] + (["step"] if has_step else [])
    base_orig = _weighted(base, base_keys, w_orig)
    base_new = _weighted(base, base_keys, w_new)
    if base_orig.empty or base_new.empty:
        raise MixlawInputError(
            f"run {base_run}: the base checkpoint lacks some original or new validation domains"
        )

    rest = frame[(frame["run"] != base_run) & ~frame["run"].isin(exclude_runs or [])]
    if rest.empty:
        raise MixlawInputError(f"{source}: no continual runs besides the base run {base_run!r}")
    keys = ["run"] + (["step"] if has_step else []) + (["seed"] if "seed" in rest.columns else [])
    orig_all, new_all = _weighted(rest, keys, w_orig), _weighted(rest, keys, w_new)
    curves = pd.concat([orig_all.rename("original"), new_all.rename("new")], axis=1).dropna().reset_index()
    if has_step:
        if step is None:
            per_run = curves.groupby("run")["step"].agg(lambda s: set(s.tolist()))
            common = set.intersection(*per_run.tolist())
            if not common:
                raise MixlawInputError(
                    f"{source}: no step common to all continual runs; choose one with --step"
                )
            step = float(max(common))
        at = curves[np.isclose(curves["step"].astype(float), float(step))]
        if at.empty:
            raise MixlawInputError(
                f"{source}: no continual checkpoint at step {step:g}; steps: "
                f"{', '.join(map(str, sorted(curves['step'].unique())[:20]))}"
            )
    else:
        at = curves
    r_of = rest.drop_duplicates("run").set_index("run")[original_train].sum(axis=1)
    at = at.assign(r=at["run"].map(r_of)).sort_values(["r", "run"]).reset_index(drop=True)
    return ContinualData(
        runs=at["run"].astype(str).tolist(),
        r=at["r"].to_numpy(float),
        original=at["original"].to_numpy(float),
        new=at["new"].to_numpy(float),
        base_original=float(base_orig.iloc[0]),
        base_new=float(base_new.iloc[0]),
        step=step,
        original_domains=original,
        new_domains=new,
        original_weights=w_orig,
        new_weights=w_new,
        original_train=[strip_prefix(c) for c in original_train],
        curves=curves.assign(r=curves["run"].map(r_of)),
    )


# --------------------------------------------------------------------------------------------- law


def fit_curve(
    r: np.ndarray,
    y: np.ndarray,
    c_init: str = "correlation",
    restarts: int = 32,
    seed: int = 0,
    delta: float = 0.02,
) -> dict:
    """Fit L(r) = c + exp(b + k r); returns {c, b, k}.

    `correlation` (the paper's two-stage fit, as `dml2 --param c_init=correlation`): c in linspace(0, min y)
    maximizing |corr(r, log(y - c))| (vectorized here), then Huber least squares for b, k at that c.
    `joint`: c, b, k together (the `dml2` law)."""
    if c_init == "joint":
        law = DML2(c_init="joint", restarts=restarts, seed=seed).fit(np.stack([r, 1 - r], axis=1), y[:, None])
        p = law.params_
        return {"c": float(p["c"][0]), "b": float(p["log_k"][0]), "k": float(p["t"][0])}
    if c_init != "correlation":
        raise MixlawInputError(f"c_init must be correlation or joint, got {c_init!r}")
    c = _correlation_c(r, y)
    F = np.stack([np.ones(len(r)), r], axis=1)
    z = y - c
    rng = np.random.default_rng(seed)
    starts = linearized_starts(F, z, restarts, rng, fit_c=False)
    result = fit_multistart(
        exp_model(F, fit_c=False, c_fixed=np.zeros(1)), z[None], starts[None], delta=delta
    )
    b, k = result.theta[0]
    return {"c": float(c), "b": float(b), "k": float(k)}


def _correlation_c(r: np.ndarray, y: np.ndarray, n_grid: int = 1000) -> float:
    """c in linspace(0, min y, n_grid)[:-1] maximizing |corr(r, log(y - c))| (first maximum, like the paper)."""
    cs = np.linspace(0.0, y.min(), n_grid)[:-1]
    Z = np.log(y[None, :] - cs[:, None])
    Zc = Z - Z.mean(axis=1, keepdims=True)
    rc = r - r.mean()
    denom = np.sqrt((Zc**2).sum(axis=1) * (rc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.abs(Zc @ rc) / denom
    corr = np.where(np.isfinite(corr), corr, -1.0)
    return float(cs[int(np.argmax(corr))])


def curve_value(params: dict, r: np.ndarray | float) -> np.ndarray:
    return params["c"] + np.exp(params["b"] + params["k"] * np.asarray(r, float))


def critical_share(params: dict, target: float) -> tuple[float | None, str]:
    """Smallest r in [0, 1] with c + exp(b + k r) <= target: (r*, status) with status `reached`, `always`
    (already at r = 0) or `never` (not even at r = 1)."""
    if curve_value(params, 0.0) <= target:
        return 0.0, "always"
    if curve_value(params, 1.0) > target:
        return None, "never"
    # here k < 0 and c < target
    return float((np.log(target - params["c"]) - params["b"]) / params["k"]), "reached"


def checkpoint_sd(
    curves: pd.DataFrame, column: str, step: float | None, window: int = 6
) -> dict[str, Any] | None:
    """Pooled scatter of each run's curve around a quadratic in log(step) over the `window` checkpoints nearest
    `step` (the noise of one checkpoint's loss); None without enough checkpoints."""
    if step is None or "step" not in curves.columns:
        return None
    ss, dof = 0.0, 0
    for _, g in curves.groupby("run"):
        g = g[g["step"] > 0]
        if len(g) < 4:
            continue
        g = g.assign(_d=(np.log(g["step"].astype(float)) - np.log(step)).abs()).nsmallest(window, "_d")
        x = np.log(g["step"].to_numpy(float))
        y = g[column].to_numpy(float)
        coef = np.polyfit(x, y, 2)
        ss += float(((y - np.polyval(coef, x)) ** 2).sum())
        dof += len(g) - 3
    if dof < 1:
        return None
    return {"sd": float(np.sqrt(ss / dof)), "dof": dof, "window": window}


def continual_analysis(
    data: ContinualData,
    tolerance: float = 0.0,
    holdout_runs: list[str] | None = None,
    n_bootstrap: int = 400,
    level: float = 0.9,
    seed: int = 0,
    c_init: str = "correlation",
    grid: np.ndarray | None = None,
) -> dict[str, Any]:
    """Fit the laws (without `holdout_runs`), the critical share with a parametric-bootstrap interval, the
    trade-off curve, and predictions for the held-out runs."""
    if not 0 < level < 1:
        raise MixlawInputError(f"--level {level}: must be between 0 and 1")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise MixlawInputError(f"--tolerance {tolerance}: must be a finite loss rise >= 0 (nats)")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise MixlawInputError(f"--bootstrap {n_bootstrap!r}: must be a whole number of draws >= 0")
    held = set(holdout_runs or [])
    unknown = held - set(data.runs)
    if unknown:
        raise MixlawInputError(
            f"--holdout-runs: no continual run {sorted(unknown)[0]!r} at this step; runs: {', '.join(data.runs)}"
        )
    fit_rows = np.array([run not in held for run in data.runs])
    r, yo, yn = data.r[fit_rows], data.original[fit_rows], data.new[fit_rows]
    if len(np.unique(np.round(r, 6))) < 3:
        raise MixlawInputError(
            f"need at least 3 distinct original shares to fit the law, got {len(np.unique(np.round(r, 6)))}"
        )
    p_orig = fit_curve(r, yo, c_init, seed=seed)
    p_new = fit_curve(r, yn, c_init, seed=seed)
    target = data.base_original + tolerance
    r_star, status = critical_share(p_orig, target)

    # noise: residual sd (n - 3 dof) and checkpoint scatter; the larger drives the parametric bootstrap
    noise: dict[str, Any] = {}
    for name, y, p in (("original", yo, p_orig), ("new", yn, p_new)):
        dof = len(y) - 3
        resid = float(np.sqrt(((y - curve_value(p, r)) ** 2).sum() / dof)) if dof > 0 else None
        ck = checkpoint_sd(
            data.curves[data.curves["run"].isin(np.array(data.runs)[fit_rows])], name, data.step
        )
        candidates = [v for v in (resid, ck["sd"] if ck else None) if v is not None]
        noise[name] = {
            "residual_sd": resid,
            "residual_dof": max(dof, 0),
            "checkpoint": ck,
            "sd": max(candidates) if candidates else 0.0,
        }
    if noise["original"]["sd"] == 0.0:
        log.warning("no noise estimate (too few runs and checkpoints): the interval on r* is a point")

    grid = (
        np.unique(np.concatenate([np.linspace(0, 1, 101), data.r, [r_star] if r_star is not None else []]))
        if grid is None
        else np.asarray(grid, float)
    )
    rng = np.random.default_rng(seed)
    stars, curves_o, curves_n = [], [], []
    fo, fn = curve_value(p_orig, r), curve_value(p_new, r)
    for _ in range(n_bootstrap):
        bo = fit_curve(r, fo + rng.normal(0, noise["original"]["sd"], len(r)), c_init, restarts=8, seed=seed)
        bn = fit_curve(r, fn + rng.normal(0, noise["new"]["sd"], len(r)), c_init, restarts=8, seed=seed)
        s, _ = critical_share(bo, target)
        stars.append(np.nan if s is None else s)
        curves_o.append(curve_value(bo, grid))
        curves_n.append(curve_value(bn, grid))
    alpha = (1 - level) / 2
    stars_arr = np.array(stars)
    interval, share_never = None, None
    if n_bootstrap:
        share_never = float(np.isnan(stars_arr).mean())
        filled = np.where(np.isnan(stars_arr), np.inf, stars_arr)  # "never" = beyond 1
        lo, hi = np.quantile(filled, [alpha, 1 - alpha])
        interval = [float(lo), float(hi) if np.isfinite(hi) else None]

    def band(samples: list[np.ndarray], sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not samples:
            return (np.full(len(grid), np.nan),) * 4
        s = np.array(samples)
        lo, hi = np.quantile(s, [alpha, 1 - alpha], axis=0)
        z = float(np.sqrt(2) * _erfinv(level))
        spread = (hi - lo) / 2
        half = np.sqrt(spread**2 + (z * sd) ** 2)
        mid = (hi + lo) / 2
        return lo, hi, mid - half, mid + half

    o_lo, o_hi, o_plo, o_phi = band(curves_o, noise["original"]["sd"])
    n_lo, n_hi, n_plo, n_phi = band(curves_n, noise["new"]["sd"])
    pred_o, pred_n = curve_value(p_orig, grid), curve_value(p_new, grid)
    curve = pd.DataFrame(
        {
            "original_share": grid,
            "pred_original": pred_o,
            "pred_original_lo": o_lo,
            "pred_original_hi": o_hi,
            "forgetting": pred_o - data.base_original,
            "pred_new": pred_n,
            "pred_new_lo": n_lo,
            "pred_new_hi": n_hi,
            "new_gain": data.base_new - pred_n,
            "no_forgetting": pred_o <= target,
        }
    )

    observed = [
        {
            "run": run,
            "original_share": float(x),
            "original": float(a),
            "new": float(b),
            "used_in_fit": run not in held,
        }
        for run, x, a, b in zip(data.runs, data.r, data.original, data.new)
    ]
    holdout = []
    for i, run in enumerate(data.runs):
        if run not in held:
            continue
        x = data.r[i]
        j = int(np.argmin(np.abs(grid - x)))  # the grid holds every run's share
        po, lo_hi = [float(curve_value(p_orig, x))], (float(o_plo[j]), float(o_phi[j]))
        measured_ok = bool(data.original[i] <= target)
        predicted_ok = None if r_star is None else bool(x >= r_star)
        p_right = None
        if n_bootstrap:
            ok = np.where(np.isnan(stars_arr), False, x >= np.nan_to_num(stars_arr, nan=np.inf))
            p_right = float(ok.mean() if measured_ok else 1 - ok.mean())
        holdout.append(
            {
                "run": run,
                "original_share": float(x),
                "original": {
                    "measured": float(data.original[i]),
                    "predicted": po[0],
                    "error": po[0] - float(data.original[i]),
                    "interval": list(lo_hi),
                },
                "new": {
                    "measured": float(data.new[i]),
                    "predicted": float(curve_value(p_new, x)),
                    "error": float(curve_value(p_new, x)) - float(data.new[i]),
                },
                "measured_no_forgetting": measured_ok,
                "measured_margin": float(data.original[i] - target),
                "predicted_no_forgetting": predicted_ok,
                "critical_share_on_right_side": None if predicted_ok is None else predicted_ok == measured_ok,
                "inside_interval": None
                if interval is None
                else bool(interval[0] <= x <= (1.0 if interval[1] is None else interval[1])),
                "bootstrap_share_on_right_side": p_right,
            }
        )
    gain_at_star = None if r_star is None else float(data.base_new - curve_value(p_new, r_star))
    upper = None if interval is None else interval[1]
    conservative = {"share": upper, "p_no_forgetting": None, "new_gain": None}
    if upper is not None:
        conservative["p_no_forgetting"] = float(
            np.mean(np.nan_to_num(stars_arr, nan=np.inf) <= upper + 1e-12)
        )
        pred_new = float(curve_value(p_new, upper))
        conservative["new_gain"] = {
            "value": data.base_new - pred_new,
            "lo": data.base_new - float(np.interp(upper, grid, n_phi)),
            "hi": data.base_new - float(np.interp(upper, grid, n_plo)),
        }
    return {
        "step": data.step,
        "base": {"original": data.base_original, "new": data.base_new},
        "tolerance": tolerance,
        "original_domains": data.original_domains,
        "new_domains": data.new_domains,
        "original_train": data.original_train,
        "law": {
            "original": p_orig,
            "new": p_new,
            "form": "c + exp(b + k r), r = share of original data",
            "c_init": c_init,
        },
        "critical": {
            "share": r_star,
            "status": status,
            "level": level,
            "interval": interval,
            "bootstrap_never": share_never,
            "n_bootstrap": n_bootstrap,
            "new_gain_at_share": gain_at_star,
            "holds_for_step": data.step,
            "conservative": conservative,
            "method": "parametric bootstrap: fitted values + N(0, sd^2) at the observed shares, refit",
        },
        "noise": noise,
        "observed": observed,
        "holdout": holdout,
        "curve": curve,
    }


# --------------------------------------------------------------------------------------------- length


def data_at_step(data: ContinualData, step: float) -> ContinualData:
    """The same runs and base model at another continual checkpoint (from `data.curves`)."""
    at = data.curves[np.isclose(data.curves["step"].astype(float), float(step))]
    at = at.sort_values(["r", "run"]).reset_index(drop=True)
    return replace(
        data,
        runs=at["run"].astype(str).tolist(),
        r=at["r"].to_numpy(float),
        original=at["original"].to_numpy(float),
        new=at["new"].to_numpy(float),
        step=float(step),
    )


def observed_lengths(
    data: ContinualData,
    exclude_runs: list[str] | None = None,
    late_fraction: float = 0.5,
    max_lengths: int = 8,
) -> list[float]:
    """Checkpoint steps every fit run has, in the late part of training (step >= `late_fraction` x the largest;
    early checkpoints are still in the warm-up transient), at most `max_lengths` of them spread in log(step)."""
    if "step" not in data.curves.columns:
        return []
    fit = data.curves[~data.curves["run"].isin(exclude_runs or [])]
    per_run = fit.groupby("run")["step"].agg(lambda s: set(float(x) for x in s if x > 0))
    common = sorted(set.intersection(*per_run.tolist())) if len(per_run) else []
    if not common:
        return []
    steps = [x for x in common if x >= late_fraction * common[-1]]
    if len(steps) > max_lengths:
        pick = np.unique(np.round(np.linspace(0, len(steps) - 1, max_lengths)).astype(int))
        steps = [steps[i] for i in pick]
    return steps


def length_trend(steps: np.ndarray, shares: np.ndarray, sds: np.ndarray) -> dict[str, Any] | None:
    """Weighted least squares r*(S) = a + b ln S over the observed lengths (weights 1/sd^2 from each length's
    bootstrap); the covariance is scaled up by the reduced chi^2 when the points scatter more than their sds.
    None with fewer than two lengths."""
    if len(steps) < 2:
        return None
    X = np.stack([np.ones(len(steps)), np.log(steps)], axis=1)
    w = 1.0 / np.maximum(sds, 1e-6) ** 2
    inv = np.linalg.inv(X.T @ (X * w[:, None]))
    beta = inv @ (X.T @ (w * shares))
    chi2 = float((w * (shares - X @ beta) ** 2).sum())
    dof = len(steps) - 2
    scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
    return {
        "form": "r* = a + b ln(step)",
        "a": float(beta[0]),
        "b": float(beta[1]),
        "per_doubling": float(beta[1] * np.log(2)),
        "cov": (inv * scale).tolist(),
        "chi2": chi2,
        "dof": dof,
        "steps": [float(x) for x in steps],
    }


def _trend_at(trend: dict[str, Any], step: float) -> tuple[float, float]:
    """(value, sd) of the trend at `step`."""
    x = np.array([1.0, np.log(step)])
    return float(trend["a"] + trend["b"] * x[1]), float(np.sqrt(x @ np.array(trend["cov"]) @ x))


def critical_share_by_length(
    data: ContinualData,
    headline: dict[str, Any],
    target_step: float | None = None,
    tolerance: float = 0.0,
    holdout_runs: list[str] | None = None,
    n_bootstrap: int = 200,
    level: float = 0.9,
    seed: int = 0,
    c_init: str = "correlation",
    lengths: list[float] | None = None,
) -> dict[str, Any]:
    """The critical share at every observed length (each with its own bootstrap interval, which holds for that
    length only), its drift with length, and the share at `target_step` (default: the headline's step).

    At an observed length the answer is that length's analysis. Between observed lengths the neighbours are
    interpolated in ln(step); beyond them the trend is extrapolated and the interval is widened to hold both the
    trend's prediction (with its uncertainty and the nearest length's noise) and the nearest length's interval
    (the drift may stop). `requested.recommended_share` is the upper end of that interval: the share that keeps
    the original loss at the base model's (+ tolerance) with probability `p_no_forgetting`."""
    held = list(holdout_runs or [])
    if data.step is None:  # one checkpoint per run: a single, unnamed length
        if target_step is not None:
            raise MixlawInputError("--target-step needs a step column in the runs table")
        crit = headline["critical"]
        requested = {
            "step": None,
            "observed_range": [None, None],
            "basis": "observed",
            "share": crit["share"],
            "interval": crit["interval"],
            "recommended_share": crit["conservative"]["share"],
            "p_no_forgetting": crit["conservative"]["p_no_forgetting"],
            "new_gain": crit["conservative"]["new_gain"],
            "new_gain_step": None,
            "holdout": [],
        }
        return {"lengths": [], "trend": None, "requested": requested, "level": level}
    if target_step is not None and not (np.isfinite(target_step) and target_step > 0):
        raise MixlawInputError(f"--target-step {target_step}: must be a finite number of steps > 0")
    steps = sorted(
        set(lengths if lengths is not None else observed_lengths(data, held)) | {data.step} - {None}
    )
    z = float(np.sqrt(2) * _erfinv(level))
    observed = []
    for step in steps:
        if np.isclose(step, data.step):
            res = headline
        else:
            at = data_at_step(data, step)
            present = [r for r in held if r in at.runs]
            res = continual_analysis(
                at, tolerance, present, min(n_bootstrap, 200), level, seed, c_init, grid=None
            )
        crit = res["critical"]
        iv = crit["interval"]
        observed.append(
            {
                "step": float(step),
                "share": crit["share"],
                "status": crit["status"],
                "interval": iv,
                "n_bootstrap": crit["n_bootstrap"],
                "sd": None if iv is None or iv[1] is None else (iv[1] - iv[0]) / (2 * z),
                "conservative": crit["conservative"],
                "holdout": [
                    {
                        "run": h["run"],
                        "original_share": h["original_share"],
                        "measured_no_forgetting": h["measured_no_forgetting"],
                        "inside_interval": h["inside_interval"],
                        "critical_share_on_right_side": h["critical_share_on_right_side"],
                    }
                    for h in res["holdout"]
                ],
            }
        )
    usable = [o for o in observed if o["status"] == "reached" and o["sd"] is not None]
    trend = length_trend(
        np.array([o["step"] for o in usable]),
        np.array([o["share"] for o in usable]),
        np.array([o["sd"] for o in usable]),
    )
    requested = _requested(observed, trend, data.step if target_step is None else float(target_step), z)
    return {"lengths": observed, "trend": trend, "requested": requested, "level": level}


def _requested(observed: list[dict], trend: dict | None, step: float, z: float) -> dict[str, Any]:
    """The critical share, interval and recommended share at `step` (see `critical_share_by_length`)."""
    from scipy.stats import norm

    steps = np.array([o["step"] for o in observed])
    out: dict[str, Any] = {"step": step, "observed_range": [float(steps.min()), float(steps.max())]}
    hit = np.flatnonzero(np.isclose(steps, step))
    if len(hit):
        o = observed[int(hit[0])]
        cons = o["conservative"]
        return {
            **out,
            "basis": "observed",
            "share": o["share"],
            "interval": o["interval"],
            "recommended_share": cons["share"],
            "p_no_forgetting": cons["p_no_forgetting"],
            "new_gain": cons["new_gain"],
            "new_gain_step": step,
            "holdout": o["holdout"],
        }
    inside = steps.min() < step < steps.max()
    nearest = observed[int(np.argmin(np.abs(np.log(steps) - np.log(step))))]
    out.update(
        {
            "basis": "interpolated" if inside else "extrapolated",
            "length_ratio": float(step / nearest["step"]),
            "nearest_step": nearest["step"],
            "new_gain": nearest["conservative"]["new_gain"],
            "new_gain_step": nearest["step"],
            "holdout": [],
        }
    )
    usable = [o for o in observed if o["sd"] is not None and o["status"] == "reached"]
    if trend is None or nearest["sd"] is None:
        reason = "only one observed length" if trend is None else "no interval at the nearest length"
        return {
            **out,
            "share": None,
            "interval": None,
            "recommended_share": None,
            "p_no_forgetting": None,
            "reason": reason,
        }
    trend_value, trend_sd = _trend_at(trend, step)
    if inside:
        xs = np.log([o["step"] for o in usable])
        x0 = np.log(step)
        value = float(np.interp(x0, xs, [o["share"] for o in usable]))
        noise_sd = float(np.interp(x0, xs, [o["sd"] for o in usable]))
        hull = (
            float(np.interp(x0, xs, [o["interval"][0] for o in usable])),
            float(np.interp(x0, xs, [o["interval"][1] for o in usable])),
        )
    else:
        value, noise_sd, hull = trend_value, nearest["sd"], tuple(nearest["interval"])
    sd = float(np.hypot(trend_sd, noise_sd))
    lo = max(0.0, min(value - z * sd, hull[0]))
    hi = max(value + z * sd, hull[1])
    upper = None if hi > 1 else hi
    return {
        **out,
        "share": min(max(value, 0.0), 1.0),
        "interval": [lo, upper],
        "sd": sd,
        "trend_value": trend_value,
        "recommended_share": upper,
        "p_no_forgetting": float(norm.cdf((hi - value) / sd)) if upper is not None else None,
    }


def continual_recommendation(
    result: dict[str, Any], min_confidence: float = MIN_CONFIDENCE
) -> dict[str, Any]:
    """`recommend` or `decline` the requested length's recommended share (`mixlaw.recommendation`'s rule with
    the length as the support): declined beyond the observed lengths, when no share up to 1 is safe, when
    P(no forgetting) < `min_confidence`, when the new-domain gain's interval includes 0, or when a held-out
    run at or above the recommended share forgot."""
    by = result["by_length"]
    req, trend = by["requested"], by["trend"]
    lo_step, hi_step = req["observed_range"]
    support = []
    if req["basis"] == "extrapolated":
        drift = (
            "" if trend is None else f"; the critical share drifts {trend['per_doubling']:+.3f} per doubling"
        )
        support.append(
            f"the requested length {req['step']:g} steps is outside the observed lengths "
            f"{lo_step:g}-{hi_step:g}{drift}"
        )
    elif req["share"] is None:
        support.append(f"the drift with length is unknown ({req.get('reason')})")
    rec_share = req["recommended_share"]
    for h in req["holdout"]:
        if rec_share is not None and h["original_share"] >= rec_share and not h["measured_no_forgetting"]:
            support.append(
                f"held-out run {h['run']} at r = {h['original_share']:.4f} >= the recommended share forgot"
            )
    gain = None
    if rec_share is not None and req["new_gain"] is not None and req["p_no_forgetting"] is not None:
        gain = {**req["new_gain"], "p_beats_baseline": req["p_no_forgetting"]}
    why = (
        "no bootstrap draws (--bootstrap 0)"
        if result["critical"]["n_bootstrap"] == 0
        else "no share up to 1 keeps the original loss at the base model's at the interval's upper end"
    )
    view = {"gain": gain, "baseline": {"name": "base-model"}, "uncertainty_reason": why}
    rec = recommendation(view, min_confidence, support=support)
    rec["share"] = rec_share
    rec["step"] = req["step"]
    return rec


def _erfinv(level: float) -> float:
    from scipy.special import erfinv

    return float(erfinv(level))
