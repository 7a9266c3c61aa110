"""Benchmark: scale extrapolation at the ratios a real job needs, on pseudo-targets in the shared data.

    python benchmarks/extrapolation_backtest.py [--data ../shared/data/mixinglaws] [--out benchmarks/results]

Pseudo-targets (Ye et al. 2024 loss data, weighted total over the 22 Pile validation domains):
- steps_continued: 5Mix 70M runs 17, 21, 22, 23, 24, 30 and 160M runs 22, 24, fitted on checkpoints <= 30k,
  predicted at their 90k and 100k checkpoints (3-3.3x); RedPajama run 999 at 70M and 160M, <= 30k -> 100k.
- steps_3x: 5Mix, every mixture and size, fitted on <= 10k, predicted at 30k (3x). RedPajama has one checkpoint
  <= 10k, so it has no such scenario.
- size: fitted on 70M-160M at 30k, predicting 305M and 410M (non-embedding ratios 2.4x and 3.6x of 160M).
- both: step laws on 70M-160M at <= 10k (RedPajama: <= 14k, its first 4 checkpoints; 2.1x), then size laws,
  predicting 410M at 30k.
- Trainer (the built-in trainer's own sweep, checked in: benchmarks/data/trainer_scale, uniform weights over its
  4 validation domains; S = 300 steps): steps_continued (L1-D32, L2-D48 <= S -> 3S), steps_3x (every size,
  <= S/3 -> S), size (L1-D32..L2-D48 at S -> L3-D64, 2.66x), both (proxies <= S/3 -> L3-D64 at S); its size
  exponent comes from its own proxies at S/3 (`trainer_size_exponents`).

Predictions use the product's own functions: `mixlaw.pipeline.fit_step_laws` / `fit_size_laws` (which call
`mixlaw.scaling.fit_curves` and return `CurveLaws`), and the mixing law (`mixlaw.fitted.fit_law`) with its
bootstrap (`mixlaw.uncertainty.bootstrap_law`) for today's intervals. Two sizes cannot identify a size exponent,
so the size law's alpha is fixed to the one fitted (shared across all curves) on the OTHER family's four sizes at
30k (leave-one-family-out: nothing is taken from the scored family's large models).

Step-law settings (item 4 of issue 14): exponent bounds x sharing x fit window. The setting is CHOSEN on the
steps_3x scenario only (lowest mean relative error) and SCORED on every other scenario; the steps_3x row of the
chosen setting is therefore in-sample and flagged `tuned_here` (and `calibrated_here` where a row's interval
width was calibrated on its own scenario).

Metrics per scenario (weighted total): mre, bias (signed mean relative error, fractions), pairwise_accuracy over
mixture pairs in the same (size, step) whose observed gap exceeds twice the noise estimate (checkpoint scatter of
the observed curves around a quadratic in log step), regret (observed loss of the predicted-best mixture minus
the observed best, nats, mean over (size, step) groups), coverage90 (the wired 90% interval
of `mixlaw pipeline`: the mixing-law bootstrap `Ensemble.interval(..., scale=record)` widened by the
scale-error model `mixlaw.scale_error` in quadrature, centred on the mixing law fitted on the extrapolated losses),
gain_* for the gain over the reference mixture (the family's default: RedPajama run 999, 5Mix the Pile-like
mixture of 1B run 999; the nearest observed mixture in each group; the wired `mixlaw.gains.gain_intervals` with
the bootstrap members, the mixing law refitted on the losses of each step-law variant `mixlaw pipeline` uses, and
the record's per-mixture part). The scale-error model that scores a scenario is fitted (`scale_error.fit_model`)
on the step groups of 5Mix <= 10k -> 30k and the other family's size scenario (`calibrated_on`; the 5Mix 3x step
rows are in-sample: `scale_calibrated_here`); the shipped constants on 5Mix/steps_3x and both size scenarios.
Also: `scale_model_*` (the scale-error model alone around the step/size-law prediction; defined also where a
group is too small for a mixing law), `bootstrap_*` (the mixing-law bootstrap alone, the interval before this
version), and the older experimental `scale_*` variant (k sqrt(s^2 + noise^2), s the robust spread over
scale-law variants and checkpoint bootstraps, k calibrated per kind: `scale_calibrated_on`).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixlaw import gains as product_gains
from mixlaw import scale_error
from mixlaw.errors import MixlawInputError
from mixlaw.extrapolation import fit_size_laws, fit_step_laws
from mixlaw.files import dump_json
from mixlaw.pipeline import _fit_data, _refit
from mixlaw.runs import RunsTable, Weights, aggregate, load_weights, read_runs
from mixlaw.scaling import STEP_EXPONENT, STEP_SHARE_VALIDATED, STEP_WINDOW, late_window, step_regime
from mixlaw.uncertainty import bootstrap_law, conformal_rank, robust_sd

FILES = {"5Mix": "5mix.csv", "RedPajama": "redpajama.csv"}
DEFAULT_MIXTURE = {  # the family's "default" mixture, the reference of the gains (see the module docstring)
    "RedPajama": [0.66796875, 0.1484375, 0.046875, 0.04296875, 0.04296875, 0.02734375, 0.0234375],
    "5Mix": [0.29296875, 0.125, 0.046875, 0.13671875, 0.3984375],
}
CONTINUED = {"5Mix": {"70M": ["17", "21", "22", "23", "24", "30"], "160M": ["22", "24"]}, "RedPajama": {}}
CONTINUED["RedPajama"] = {"70M": ["999"], "160M": ["999"]}
TRAINER = "Trainer"  # the built-in trainer's family, checked in (benchmarks/data/trainer_scale/README.md)
TRAINER_DATA = Path(__file__).resolve().parent / "data" / "trainer_scale"
DEFAULT_MIXTURE[TRAINER] = [0.25, 0.25, 0.25, 0.25]  # p_code, p_docs, p_math_prose, p_math
CONTINUED[TRAINER] = {}
DELTA = 0.02
LEVEL = 0.9
Z90 = 1.6448536269514722
MIXING_LAW = "dml"  # the paper's law; `auto` would cross-validate ~10 laws per group (minutes each)
N_BOOTSTRAP = 10
SELECTION_SCENARIO = "5Mix/steps_3x"

log = logging.getLogger("backtest")


# --------------------------------------------------------------------------------------------- metrics


def relative_errors(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """mre = mean |pred/obs - 1|, bias = mean (pred/obs - 1) (fractions)."""
    rel = np.asarray(pred, float) / np.asarray(obs, float) - 1
    return {"mre": float(np.abs(rel).mean()), "bias": float(rel.mean())}


def pairwise_accuracy(
    pred: np.ndarray, obs: np.ndarray, groups: np.ndarray, min_gap: float
) -> dict[str, Any]:
    """Share of mixture pairs (same group) ordered correctly, over pairs whose observed gap exceeds `min_gap`."""
    right = total = 0
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                gap = obs[i] - obs[j]
                if abs(gap) <= min_gap:
                    continue
                total += 1
                right += int(np.sign(pred[i] - pred[j]) == np.sign(gap))
    return {"pairwise_accuracy": right / total if total else None, "n_pairs": total}


def regret(pred: np.ndarray, obs: np.ndarray, groups: np.ndarray) -> float | None:
    """Mean over groups (with >= 2 mixtures) of obs[argmin pred] - min obs, in loss units."""
    values = [
        obs[idx[np.argmin(pred[idx])]] - obs[idx].min()
        for g in np.unique(groups)
        if len(idx := np.flatnonzero(groups == g)) >= 2
    ]
    return float(np.mean(values)) if values else None


def coverage(obs: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None) -> float | None:
    if lo is None or hi is None:
        return None
    return float(((obs >= lo) & (obs <= hi)).mean())


def gains(values: np.ndarray, groups: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """values minus the reference row of the same group (reference: bool mask, one True per group); NaN for
    the reference rows themselves and for groups without one. values (n,) or (B, n)."""
    values = np.asarray(values, float)
    out = np.full(values.shape, np.nan)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        ref = idx[reference[idx]]
        if len(ref) != 1:
            continue
        others = idx[idx != ref[0]]
        out[..., others] = values[..., others] - values[..., ref[:1]]
    return out


def scenario_metrics(
    pred: np.ndarray,
    obs: np.ndarray,
    groups: np.ndarray,
    reference: np.ndarray,
    noise: float,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    gain_lo: np.ndarray | None = None,
    gain_hi: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of one scenario from predictions, observations and (optional) 90% intervals."""
    out: dict[str, Any] = {"n": int(len(obs)), **relative_errors(pred, obs)}
    out.update(pairwise_accuracy(pred, obs, groups, 2 * noise))
    out["regret"] = regret(pred, obs, groups)
    out["coverage90"] = coverage(obs, lo, hi)
    g_pred, g_obs = gains(pred, groups, reference), gains(obs, groups, reference)
    has = np.isfinite(g_obs)
    out["n_gains"] = int(has.sum())
    out["gain_mae"] = float(np.abs(g_pred - g_obs)[has].mean()) if has.any() else None
    out["mae"] = float(np.abs(pred - obs).mean())
    out["gain_coverage90"] = (
        coverage(g_obs[has], gain_lo[has], gain_hi[has]) if has.any() and gain_lo is not None else None
    )
    out["noise"] = float(noise)
    return out


def curve_noise(wide: pd.DataFrame, at: list[tuple[str, float]], window: int = 6) -> float:
    """Checkpoint scatter of the total: pooled residual sd of every curve of the given (model, step) points
    around a quadratic in log(step) over its `window` checkpoints nearest the step."""
    ss, dof = 0.0, 0
    for (model, step), _ in pd.Series(0, index=pd.MultiIndex.from_tuples(at)).groupby(level=[0, 1]):
        for _, curve in wide[wide["model"] == model].groupby("run"):
            x = np.log(curve["step"].to_numpy(float)) - np.log(step)
            order = np.argsort(np.abs(x), kind="stable")[:window]
            if len(order) < 5:
                continue
            basis = np.stack([np.ones(len(order)), x[order], x[order] ** 2], axis=1)
            y = curve["total"].to_numpy(float)[order]
            coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
            ss += float(((y - basis @ coef) ** 2).sum())
            dof += len(order) - 3
    return float(np.sqrt(ss / dof)) if dof else 0.0


# --------------------------------------------------------------------------------------------- data


@dataclass
class Family:
    name: str
    table: RunsTable
    weights: Weights
    wide: pd.DataFrame
    targets: list[str]
    columns: list[str]
    params: dict[str, float]

    def total(self, frame: pd.DataFrame) -> np.ndarray:
        return sum(self.weights.group_weight[t] * frame[t].to_numpy(float) for t in self.targets)


def load_family(data: Path, name: str) -> Family:
    if name == TRAINER:
        return load_trainer_family(data)
    table = read_runs(data / FILES[name], renormalize=True)
    weights = load_weights(str(data / "valid_weights.csv"), table.valid_domains, "pile_category")
    wide = aggregate(table, weights)
    params = wide.drop_duplicates("model").set_index("model")["params"].astype(float).to_dict()
    return Family(name, table, weights, wide, list(weights.groups), table.domain_columns, params)


def load_trainer_family(data: Path = TRAINER_DATA) -> Family:
    """The built-in trainer's family (benchmarks/data/trainer_scale/runs.csv, the sweep's table unchanged): runs
    are renamed to mixture ids (`m01`, ... in table order, `uniform` for the reference), the same at every size;
    targets are the 4 validation domains with uniform weights."""
    table = read_runs(data / "runs.csv")
    frame = table.frame.copy()
    mix = frame[table.domain_columns].round(6).apply(tuple, axis=1)
    ids: dict[tuple, str] = {}
    for m in mix:
        if m not in ids:
            uniform = np.allclose(m, DEFAULT_MIXTURE[TRAINER], atol=1e-6)
            ids[m] = "uniform" if uniform else f"m{sum(v != 'uniform' for v in ids.values()) + 1:02d}"
    frame["run"] = mix.map(ids)
    table = RunsTable(frame, f"benchmarks/data/{data.name}/runs.csv", file_hash=table.file_hash)
    weights = load_weights("uniform", table.valid_domains)
    wide = aggregate(table, weights)
    params = wide.drop_duplicates("model").set_index("model")["params"].astype(float).to_dict()
    return Family(TRAINER, table, weights, wide, list(weights.groups), table.domain_columns, params)


def trainer_scenarios(fam: Family) -> list[Scenario]:
    """The trainer family's pseudo-targets. S = the held-back (largest) size's length (300 steps); proxies are
    the other sizes. steps_continued: proxies continued past S, fitted on <= S, predicted at >= 3S;
    steps_3x: every size, <= S/3 -> S; size: proxies at S -> the held-back size at S; both: proxies at <= S/3
    -> the held-back size at S."""
    wide = fam.wide
    target = max(fam.params, key=fam.params.get)
    proxies = sorted((m for m in fam.params if m != target), key=fam.params.get)
    S = float(wide.loc[wide["model"] == target, "step"].max())
    longest = wide.groupby("model")["step"].max()
    continued = [m for m in proxies if longest[m] >= 3 * S]
    out = []
    truth = wide[wide["model"].isin(continued) & (wide["step"] >= 3 * S)]
    out.append(Scenario("steps_continued", fam.name, "steps", continued, S, truth))
    out.append(Scenario("steps_3x", fam.name, "steps", sorted(fam.params), S / 3, wide[wide["step"] == S]))
    at_s = wide[wide["step"] == S]
    common = sorted(set.intersection(*[set(at_s[at_s["model"] == m]["run"]) for m in fam.params]))
    truth = at_s[(at_s["model"] == target) & at_s["run"].isin(common)]
    out.append(Scenario("size", fam.name, "size", proxies, S, truth, common, S))
    out.append(Scenario("both", fam.name, "both", proxies, S / 3, truth, common, S))
    return out


def trainer_size_exponents(fam: Family) -> tuple[float, list[float]]:
    """Size exponent of the trainer family from its own proxies at S/3 (inside every scenario's fit data; the
    held-back size is not used): shared by all curves, and the 10%/90% of the per-mixture exponents."""
    sc = next(x for x in trainer_scenarios(fam) if x.name == "both")
    at = fam.wide[fam.wide["model"].isin(sc.fit_sizes) & (fam.wide["step"] == sc.fit_max_step)]
    values = at[at["run"].isin(sc.fit_runs)][["model", "run"] + fam.targets]
    shared = fit_size_laws(values, fam.params, fam.targets, "all", DELTA)
    each = fit_size_laws(values, fam.params, fam.targets, "mixture", DELTA)
    return float(shared.exps[0, 0]), np.quantile(np.unique(each.exps[:, 0]), [0.1, 0.9]).tolist()


@dataclass(frozen=True)
class StepSetting:
    """One way of fitting the step laws: exponent bounds, sharing, fit window (checkpoints >= hi / window)."""

    bounds: tuple[float, float] = STEP_EXPONENT
    share: str = "mixture"
    window: float | None = None

    @property
    def name(self) -> str:
        w = "all" if self.window is None else f"last{self.window:g}x"
        return f"beta{self.bounds[0]:g}-{self.bounds[1]:g}/{self.share}/{w}"


CURRENT = StepSetting()
PIPELINE = StepSetting(STEP_EXPONENT, STEP_SHARE_VALIDATED, STEP_WINDOW)  # `mixlaw pipeline`'s default
SETTINGS = [
    StepSetting(b, s, w)
    for b in [STEP_EXPONENT, (0.05, 3.0)]
    for s in ["none", "mixture", "all"]
    for w in [None, 3.0, 2.0]
]


@dataclass
class Scenario:
    name: str
    family: str
    kind: str  # steps, size, both
    fit_sizes: list[str]
    fit_max_step: float
    truth: pd.DataFrame  # rows of the family's wide table to predict (model, run, step, targets, total)
    fit_runs: list[str] | None = None  # None: every run
    target_step: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.family}/{self.name}"


def scenarios(fam: Family) -> list[Scenario]:
    if fam.name == TRAINER:
        return trainer_scenarios(fam)
    wide, out = fam.wide, []
    # 1. continued runs, <= 30k -> their 90k and 100k checkpoints
    rows = [
        wide[(wide["model"] == m) & (wide["run"].isin(runs)) & (wide["step"].isin([90000, 100000]))]
        for m, runs in CONTINUED[fam.name].items()
    ]
    truth = pd.concat(rows)
    if not truth.empty:
        out.append(Scenario("steps_continued", fam.name, "steps", list(CONTINUED[fam.name]), 30000, truth))
    # 2. <= 10k -> 30k, every mixture and size (needs >= 3 checkpoints <= 10k)
    early = wide[wide["step"] <= 10000].groupby(["model", "run"])["step"].nunique()
    if (early >= 3).any():
        ok = early[early >= 3].index
        truth = wide[wide["step"] == 30000].set_index(["model", "run"])
        truth = truth.loc[truth.index.intersection(ok)].reset_index()
        out.append(Scenario("steps_3x", fam.name, "steps", sorted(fam.params), 10000, truth))
    # 3. size: 70M-160M at 30k -> 305M, 410M at 30k (grid runs observed at every size)
    at30 = wide[wide["step"] == 30000]
    common = sorted(set.intersection(*[set(at30[at30["model"] == m]["run"]) for m in fam.params]))
    truth = at30[at30["model"].isin(["305M", "410M"]) & at30["run"].isin(common)]
    out.append(Scenario("size", fam.name, "size", ["70M", "160M"], 30000, truth, common, 30000))
    # 4. both: 70M-160M at <= 10k (RedPajama <= 14k) -> 410M at 30k
    cut = 10000 if fam.name == "5Mix" else 14000
    truth = at30[(at30["model"] == "410M") & at30["run"].isin(common)]
    sc = Scenario("both", fam.name, "both", ["70M", "160M"], cut, truth, common, 30000)
    if cut != 10000:
        sc.notes.append(f"fitted on <= {cut:g} steps: only one RedPajama checkpoint is <= 10k")
    out.append(sc)
    return out


def fit_frame(fam: Family, sc: Scenario, setting: StepSetting) -> pd.DataFrame:
    f = fam.wide[fam.wide["model"].isin(sc.fit_sizes) & (fam.wide["step"] <= sc.fit_max_step)]
    if sc.fit_runs is not None:
        f = f[f["run"].isin(sc.fit_runs)]
    return f[late_window(f["step"].to_numpy(float), setting.window, last=sc.fit_max_step)]


def size_exponent(other: Family, share: str = "all") -> np.ndarray:
    """alpha of the size laws of the other family (4 sizes, observed at 30k): one value shared by every curve
    (`share="all"`), or one per mixture (`"mixture"`, for the spread of plausible exponents)."""
    at30 = other.wide[other.wide["step"] == 30000]
    runs = set.intersection(*[set(at30[at30["model"] == m]["run"]) for m in other.params])
    values = at30[at30["run"].isin(runs)][["model", "run"] + other.targets]
    law = fit_size_laws(values, other.params, other.targets, share, DELTA)
    return np.unique(law.exps[:, 0])


# --------------------------------------------------------------------------------------------- predictions


def _at(law, points: np.ndarray, fields: list[str], targets: list[str], value_name: str) -> pd.DataFrame:
    """Wide predictions of a CurveLaws at points (m,): one row per curve key (without target) and point."""
    pred = law.predict(points[:, None])
    rows: dict[tuple, dict[str, float]] = {}
    for i, key in enumerate(law.keys):
        for j, p in enumerate(points):
            row = rows.setdefault(tuple(key[f] for f in fields) + (p,), {})
            row[key["target"]] = pred[i, j]
    out = pd.DataFrame([{**dict(zip(fields + [value_name], k)), **v} for k, v in rows.items()])
    return out[fields + [value_name] + [t for t in targets if t in out.columns]]


def predict_losses(
    fam: Family, sc: Scenario, setting: StepSetting, alpha: float, frame: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Predicted target losses of every mixture at the scenario's target points: columns model, run, step,
    targets. `frame` overrides the fitted checkpoints (the bootstrap)."""
    targets = fam.targets
    if sc.kind in ("steps", "both"):
        frame = fit_frame(fam, sc, setting) if frame is None else frame
        step_laws = fit_step_laws(frame, "step", targets, setting.share, DELTA, setting.bounds)
    if sc.kind == "steps":
        points = np.sort(sc.truth["step"].unique()).astype(float)
        return _at(step_laws, points, ["model", "run"], targets, "step")
    if sc.kind == "both":
        at_sizes = _at(step_laws, np.array([sc.target_step]), ["model", "run"], targets, "step")
    else:
        f = fam.wide[(fam.wide["step"] == sc.target_step) & fam.wide["model"].isin(sc.fit_sizes)]
        at_sizes = f[f["run"].isin(sc.fit_runs)][["model", "run"] + targets]
    at_sizes = at_sizes[at_sizes["run"].isin(sc.fit_runs)]
    complete = at_sizes.groupby("run")["model"].nunique() == len(sc.fit_sizes)
    at_sizes = at_sizes[at_sizes["run"].isin(complete[complete].index)]  # runs with a curve at every size
    size_laws = fit_size_laws(
        at_sizes[["model", "run"] + targets], fam.params, targets, "all", DELTA, (alpha, alpha)
    )
    models = sorted(sc.truth["model"].unique(), key=fam.params.get)
    out = []
    for m in models:
        p = _at(size_laws, np.array([fam.params[m]]), ["run"], targets, "params")
        out.append(p.assign(model=m, step=sc.target_step).drop(columns="params"))
    return pd.concat(out)[["model", "run", "step"] + targets]


def with_total(fam: Family, pred: pd.DataFrame) -> pd.DataFrame:
    return pred.assign(total=fam.total(pred))


def truth_vector(fam: Family, sc: Scenario, pred: pd.DataFrame) -> pd.DataFrame:
    """Truth rows merged with the predicted total (`pred_total`), sorted; group ids and reference flags."""
    merged = sc.truth[["model", "run", "step", "total"] + fam.columns].merge(
        pred[["model", "run", "step", "total"]].rename(columns={"total": "pred_total"}),
        on=["model", "run", "step"],
    )
    merged = merged.sort_values(["model", "step", "run"]).reset_index(drop=True)
    merged["group"] = merged["model"].astype(str) + "@" + merged["step"].astype(int).astype(str)
    default = np.array(DEFAULT_MIXTURE[fam.name])
    merged["reference"] = False
    for _, idx in merged.groupby("group").groups.items():
        x = merged.loc[idx, fam.columns].to_numpy(float)
        merged.loc[idx[np.argmin(np.abs(x - default).sum(axis=1))], "reference"] = True
    return merged


# --------------------------------------------------------------------------------------------- intervals


def mixing_intervals(
    fam: Family,
    pred: pd.DataFrame,
    merged: pd.DataFrame,
    seed: int = 0,
    scale_of=None,
    variant_preds: dict[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Today's interval: the mixing law fitted on the extrapolated losses of every mixture in each (size, step)
    group, bootstrapped over mixtures (`bootstrap_law`, noise from nothing: extrapolated losses have no
    checkpoints), predicted at the pseudo-target mixtures. Also its point prediction and gain intervals.

    With `scale_of(model, step, variant_sd_rel, n_variants) -> scale_uncertainty record`, also the wired
    interval of `mixlaw pipeline` (`wired_*`): the same ensemble's `interval(..., scale=record)` and
    `mixlaw.gains.gain_intervals` with the members, the mixing law refitted on each step-law variant's losses
    (`variant_preds`, as `mixlaw.gains.scale_variants` does) and the record."""
    n = len(merged)
    keys = (
        "lo",
        "hi",
        "pred",
        "gain_lo",
        "gain_hi",
        "wired_lo",
        "wired_hi",
        "wired_gain_lo",
        "wired_gain_hi",
    )
    out = {k: np.full(n, np.nan) for k in keys}
    out["records"] = {}
    mixtures = fam.wide.drop_duplicates("run").set_index("run")[fam.columns]
    for (model, step), sub in pred.groupby(["model", "step"]):
        rows = np.flatnonzero((merged["model"] == model).to_numpy() & (merged["step"] == step).to_numpy())
        if len(rows) == 0:
            continue
        template = {
            "targets": fam.targets,
            "columns": fam.columns,
            "weights": fam.weights,
            "source": fam.table.source,
            "data_hash": "backtest",
            "selection": {"pipeline": True, "model": model, "step": float(step)},
        }

        def group_data(losses: pd.DataFrame, template=template):
            frame = losses.merge(mixtures, left_on="run", right_index=True)
            frame = frame[["run"] + fam.columns + fam.targets].assign(total=lambda d: fam.total(d))
            return _fit_data(frame.reset_index(drop=True), template)

        data = group_data(sub)
        try:
            ens = bootstrap_law(data, MIXING_LAW, n_bootstrap=N_BOOTSTRAP, seed=seed, restarts=4)
        except MixlawInputError as exc:
            log.info("no mixing-law interval for %s@%s: %s", model, step, exc)
            continue
        X = merged.loc[rows, fam.columns].to_numpy(float)
        iv = ens.interval(X, LEVEL)["total"]
        out["lo"][rows], out["hi"][rows], out["pred"][rows] = iv["lo"], iv["hi"], iv["pred"]
        members = ens.member_predictions(X)["total"]  # (B, r)
        ref = merged.loc[rows, "reference"].to_numpy()
        if ref.sum() == 1:
            g = members - members[:, ref]
            center = iv["pred"] - iv["pred"][ref]
            half = iv["factor"] * Z90 * ens.spread_factor * robust_sd(g)
            keep = ~ref
            out["gain_lo"][rows[keep]] = (center - half)[keep]
            out["gain_hi"][rows[keep]] = (center + half)[keep]
        if scale_of is None:
            continue
        variants = {}
        for label, v in (variant_preds or {}).items():
            vsub = v[(v["model"] == model) & (v["step"] == step)]
            try:
                variants[label] = _refit(ens.fitted, group_data(vsub))
            except MixlawInputError:
                continue
        spread = product_gains.variant_loss_sd_rel(ens.fitted, variants, X)
        record = scale_of(model, step, spread, len(variants))
        out["records"][f"{model}@{int(step)}"] = record
        wired = ens.interval(X, LEVEL, scale=record)["total"]
        out["wired_lo"][rows], out["wired_hi"][rows] = wired["lo"], wired["hi"]
        if ref.sum() == 1:
            g = product_gains.gain_intervals(
                ens.fitted, X, X[ref][0], fam.weights.group_weight, ens.members, variants, LEVEL, record
            )
            # gain_intervals: baseline - x (> 0 better); the backtest's gains are x - reference
            keep = ~ref
            out["wired_gain_lo"][rows[keep]] = -g["hi"][keep]
            out["wired_gain_hi"][rows[keep]] = -g["lo"][keep]
    return out


def product_variants(setting: StepSetting) -> list[StepSetting]:
    """The step-law variants `mixlaw.gains.scale_variants` uses (gains.STEP_VARIANTS), with the setting's
    exponent bounds, the setting itself left out."""
    return [
        StepSetting(setting.bounds, share, window)
        for window, share in product_gains.STEP_VARIANTS
        if (window, share) != (setting.window, setting.share)
    ]


def group_errors(
    fam: Family,
    sc: Scenario,
    merged: pd.DataFrame,
    variant_totals: np.ndarray,
    noise: float,
) -> list[scale_error.GroupErrors]:
    """The scale-error calibration data of one scenario (`mixlaw.scale_error.fit_model`): per (size, step)
    group, the step/size-law prediction's relative errors, the product's step-law variants' relative spread
    of each loss and gain (`variant_totals`: (V, n) totals of the variants at the merged rows), the relative
    gain errors over the reference and the relative checkpoint noise."""
    obs, pred = merged["total"].to_numpy(float), merged["pred_total"].to_numpy(float)
    groups, ref = merged["group"].to_numpy(), merged["reference"].to_numpy()
    stack = np.vstack([pred[None], variant_totals]) if len(variant_totals) else pred[None]
    loss_spread = scale_error.variant_spread(stack) / pred
    gain_stack = gains(stack, groups, ref)
    gain_spread = scale_error.variant_spread(gain_stack) / pred
    gain_error = (gains(pred, groups, ref) - gains(obs, groups, ref)) / pred
    out = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        model, step = merged.loc[idx[0], "model"], float(merged.loc[idx[0], "step"])
        out.append(
            scale_error.GroupErrors(
                steps_ratio=ratios(fam, sc, model, step)[0],
                size_ratio=ratios(fam, sc, model, step)[1],
                rel_error=pred[idx] / obs[idx] - 1,
                variant_sd_rel=loss_spread[idx],
                gain_error_rel=gain_error[idx],
                gain_variant_sd_rel=gain_spread[idx],
                noise_rel=noise / float(np.mean(obs[idx])),
                label=f"{sc.key}:{g}",
            )
        )
    return out


def scale_error_sources(sc: Scenario) -> list[str]:
    """The scenarios whose groups calibrate the scale-error model that scores `sc`: the step coefficients
    on the selection scenario (5Mix <= 10k -> 30k), the size coefficients on the other family's size scenario
    (step scenarios leave the size coefficients at 0 and size scenarios the step ones, so both fit at once)."""
    return [SELECTION_SCENARIO, f"{'RedPajama' if sc.family == '5Mix' else '5Mix'}/size"]


def ratios(fam: Family, sc: Scenario, model: str, step: float) -> tuple[float, float]:
    """(steps ratio, size ratio) of one predicted point, as `mixlaw.solve.job_ratios` computes a job's."""
    steps = step / sc.fit_max_step if sc.kind != "size" else 1.0
    size = fam.params[model] / max(fam.params[m] for m in sc.fit_sizes) if sc.kind != "steps" else 1.0
    return float(steps), float(size)


def scale_members(
    fam: Family,
    sc: Scenario,
    chosen: StepSetting,
    alpha: float,
    variants: list[StepSetting],
    n_boot: int,
    alpha_range: list[float],
) -> list[pd.DataFrame]:
    """Predictions of the scale-law variants (sharing x fit window, chosen bounds), of `n_boot` checkpoint
    bootstraps of the chosen setting (checkpoint steps resampled, the same steps for every curve) and, with a
    size law, of the size exponents at the ends of `alpha_range` (10-90% of the other family's per-mixture
    exponents)."""
    members = []
    if sc.kind in ("size", "both"):
        for a in alpha_range:
            members.append(with_total(fam, predict_losses(fam, sc, chosen, a)))
    for v in variants:
        try:
            members.append(with_total(fam, predict_losses(fam, sc, v, alpha)))
        except MixlawInputError:
            continue
    if sc.kind in ("steps", "both"):
        base = fit_frame(fam, sc, chosen)
        steps = np.sort(base["step"].unique())
        rng = np.random.default_rng(0)
        for _ in range(n_boot):
            pick = np.unique(rng.choice(steps, size=len(steps), replace=True))
            if len(pick) < 3:
                continue
            try:
                members.append(
                    with_total(fam, predict_losses(fam, sc, chosen, alpha, base[base["step"].isin(pick)]))
                )
            except MixlawInputError:
                continue
    return members


def member_matrix(members: list[pd.DataFrame], merged: pd.DataFrame) -> np.ndarray:
    keys = merged[["model", "run", "step"]]
    out = []
    for m in members:
        v = keys.merge(m[["model", "run", "step", "total"]], on=["model", "run", "step"], how="left")
        out.append(v["total"].to_numpy(float))
    return np.array(out)


def scale_scores(obs: np.ndarray, center: np.ndarray, spread: np.ndarray, noise: float) -> np.ndarray:
    """Standardized errors |obs - center| / sqrt(spread^2 + noise^2)."""
    return np.abs(obs - center) / np.sqrt(spread**2 + noise**2)


def calibrate_factor(z: np.ndarray, level: float = LEVEL) -> float:
    """Width factor k: the conformal quantile of standardized errors z, so that center +- k * scale covers
    `level` of them."""
    z = np.sort(z[np.isfinite(z)])
    if len(z) == 0:
        return Z90
    return float(z[min(conformal_rank(len(z), level), len(z)) - 1])


# --------------------------------------------------------------------------------------------- mechanism


def mechanism(fam: Family, three_x: pd.DataFrame | None) -> dict[str, Any]:
    """Evidence on why step extrapolation fails (issue 14 item 4), from the data alone.

    - anneal_to_planned_length: bias of the <= 10k -> 30k prediction (current setting) for the runs that
      continue past 30k vs the runs that stop there. Had each run decayed its LR to its own planned length,
      the stopping runs' 30k losses would sit lower (larger positive bias) than the continuing runs'.
    - kink_at_30k: d loss / d log step of the continued runs just before and just after 30k (a schedule
      ending at 30k would bend the curve there).
    - early_vs_late_beta: median exponent of unshared step laws fitted on the early checkpoints (<= 10k) and
      on the late ones (10k-30k): a curve that steepens early (warmup transient) gives a large early beta,
      whose extrapolation flattens too soon.
    """
    out: dict[str, Any] = {}
    continued = {(m, r) for m, runs in CONTINUED[fam.name].items() for r in runs}
    if three_x is not None:
        m = three_x.assign(
            rel=three_x["pred_total"] / three_x["total"] - 1,
            continues=[(a, b) in continued for a, b in zip(three_x["model"], three_x["run"])],
        )
        out["anneal_to_planned_length"] = {
            f"{model}/{'continues' if c else 'stops_at_30k'}": {"bias": float(g["rel"].mean()), "n": len(g)}
            for (model, c), g in m.groupby(["model", "continues"])
        }
    kinks = []
    for model, run in sorted(continued):
        c = fam.wide[(fam.wide["model"] == model) & (fam.wide["run"] == run)].set_index("step")["total"]
        if {27000, 30000, 40000} <= set(c.index):
            before = (c[30000] - c[27000]) / np.log(30000 / 27000)
            after = (c[40000] - c[30000]) / np.log(40000 / 30000)
            kinks.append(
                {"model": model, "run": run, "slope_27k_30k": float(before), "slope_30k_40k": float(after)}
            )
    out["kink_at_30k"] = kinks
    betas = {}
    for name, (lo, hi) in {"early_3k_10k": (0, 10000), "late_10k_30k": (10000, 30000)}.items():
        f = fam.wide[(fam.wide["step"] >= lo) & (fam.wide["step"] <= hi)]
        try:
            law = fit_step_laws(f, "step", fam.targets, "none", DELTA, (0.05, 3.0))
        except MixlawInputError:
            continue
        betas[name] = {
            m: float(np.median(law.exps[[k["model"] == m for k in law.keys], 0]))
            for m in sorted({k["model"] for k in law.keys}, key=fam.params.get)
        }
    out["early_vs_late_beta"] = betas
    return out


def calibration_source(sc: Scenario) -> str:
    """Where the scale-aware interval's width factor of a scenario is calibrated: step scenarios on the
    selection scenario (5Mix <= 10k -> 30k); size and both on the other family's scenario of the same kind
    (leave-one-family-out), since no step scenario exercises the size law."""
    if sc.kind == "steps":
        return SELECTION_SCENARIO
    return f"{'RedPajama' if sc.family == '5Mix' else '5Mix'}/{sc.name}"


# --------------------------------------------------------------------------------------------- the run


def run(data: Path, settings: list[StepSetting] = SETTINGS, n_boot: int = 8) -> dict[str, Any]:
    """Every scenario under every step setting, then full metrics for the current and the chosen setting."""
    started = time.perf_counter()
    fams = {name: load_family(data, name) for name in FILES}
    other = {"5Mix": "RedPajama", "RedPajama": "5Mix"}
    alphas = {f: float(size_exponent(fams[o])[0]) for f, o in other.items()}
    alpha_range = {
        f: np.quantile(size_exponent(fams[o], "mixture"), [0.1, 0.9]).tolist() for f, o in other.items()
    }
    fams[TRAINER] = load_trainer_family()
    alphas[TRAINER], alpha_range[TRAINER] = trainer_size_exponents(fams[TRAINER])
    log.info("size exponents (from the other family): %s", alphas)
    all_sc = [sc for fam in fams.values() for sc in scenarios(fam)]

    # 1. Every step setting on every scenario (point predictions only; cheap).
    table: dict[str, dict[str, dict[str, float]]] = {}
    preds: dict[tuple[str, str], pd.DataFrame] = {}
    for sc in all_sc:
        fam = fams[sc.family]
        for s in settings if sc.kind != "size" else [CURRENT]:
            try:
                p = with_total(fam, predict_losses(fam, sc, s, alphas[sc.family]))
            except MixlawInputError as exc:
                log.info("%s %s: %s", sc.key, s.name, exc)
                continue
            preds[(sc.key, s.name)] = p
            m = truth_vector(fam, sc, p)
            table.setdefault(sc.key, {})[s.name] = relative_errors(m["pred_total"], m["total"])
        log.info(
            "%s: %d settings (%.0f s)", sc.key, len(table.get(sc.key, {})), time.perf_counter() - started
        )
    by_name = {s.name: s for s in settings}

    def changes(s: StepSetting) -> int:  # ties (to 1e-4) go to the setting closest to the current default
        return (s.bounds != CURRENT.bounds) + (s.share != CURRENT.share) + (s.window != CURRENT.window)

    ranked = sorted(
        table[SELECTION_SCENARIO].items(), key=lambda kv: (round(kv[1]["mre"], 4), changes(by_name[kv[0]]))
    )
    chosen = by_name[ranked[0][0]]
    log.info("chosen on %s: %s (mre %.4f)", SELECTION_SCENARIO, chosen.name, ranked[0][1]["mre"])
    variants = [
        StepSetting(chosen.bounds, s, w) for s in ["none", "mixture", "all"] for w in [None, 3.0, 2.0]
    ]

    # 2. Full metrics for the current default and the chosen setting, with both kinds of interval.
    rows, calib_z = [], {}
    pending = []
    labels = [("current", CURRENT)] + ([("chosen", chosen)] if chosen != CURRENT else [])
    if PIPELINE not in [s for _, s in labels]:
        labels.append(("pipeline", PIPELINE))
    calib: dict[tuple[str, str], list[scale_error.GroupErrors]] = {}
    for label, setting in labels:
        for sc in all_sc:
            fam = fams[sc.family]
            s = setting if sc.kind != "size" else CURRENT
            p = preds.get((sc.key, s.name))
            if p is None:
                continue
            merged = truth_vector(fam, sc, p)
            obs, pred = merged["total"].to_numpy(float), merged["pred_total"].to_numpy(float)
            groups, ref = merged["group"].to_numpy(), merged["reference"].to_numpy()
            noise = curve_noise(fam.wide, list(merged[["model", "step"]].drop_duplicates().itertuples(False)))
            members = member_matrix(
                scale_members(fam, sc, s, alphas[sc.family], variants, n_boot, alpha_range[sc.family]), merged
            )
            spread = robust_sd(members) if len(members) >= 3 else np.zeros(len(obs))
            g_members = gains(members, groups, ref)
            g_spread = robust_sd(g_members) if len(members) >= 3 else np.zeros(len(obs))
            if len(members) >= 3:
                calib_z[(label, sc.key)] = (
                    scale_scores(obs, pred, spread, noise),
                    scale_scores(gains(obs, groups, ref), gains(pred, groups, ref), g_spread, noise * 2**0.5),
                )
            # the product's step-law variants (mixlaw.gains.scale_variants) for the wired interval
            variant_preds = {}
            if sc.kind != "size":
                for v in product_variants(s):
                    try:
                        variant_preds[v.name] = with_total(fam, predict_losses(fam, sc, v, alphas[sc.family]))
                    except MixlawInputError:
                        continue
            variant_totals = member_matrix(list(variant_preds.values()), merged)
            calib.setdefault((label, sc.key), []).extend(group_errors(fam, sc, merged, variant_totals, noise))
            pending.append(
                (label, s, sc, fam, p, merged, obs, pred, groups, ref, noise, spread, g_spread, variant_preds)
            )
    # The scale-error model (`scale_error_sources`): step coefficients from the selection scenario, size
    # coefficients from the other family's size scenario; the shipped constants from the selection scenario and
    # both size scenarios.
    scale_models = {}
    for label, _ in labels:
        for sc in all_sc:
            sources = scale_error_sources(sc)
            scale_models[(label, sc.key)] = scale_error.fit_model(
                [g for key in sources for g in calib.get((label, key), [])], " + ".join(sources)
            )
    pipeline_label = next(label for label, s in labels if s == PIPELINE)
    shipped_sources = [SELECTION_SCENARIO] + [f"{f}/size" for f in fams]
    shipped = scale_error.fit_model(
        [g for key in shipped_sources for g in calib.get((pipeline_label, key), [])],
        " + ".join(shipped_sources) + " (benchmarks/extrapolation_backtest.py, pipeline step setting)",
    )
    for (
        label,
        s,
        sc,
        fam,
        p,
        merged,
        obs,
        pred,
        groups,
        ref,
        noise,
        spread,
        g_spread,
        variant_preds,
    ) in pending:
        model_lofo = scale_models[(label, sc.key)]

        def scale_of(model, step, spread_rel, n_variants, fam=fam, sc=sc, model_lofo=model_lofo):
            return scale_error.scale_record(model_lofo, *ratios(fam, sc, model, step), spread_rel, n_variants)

        iv = mixing_intervals(fam, p, merged, 0, scale_of, variant_preds)
        # The scale part alone around the step/size-law prediction (no mixing law: also where a group has too
        # few mixtures for one), with the same functions and the calibration data's variant spread.
        variant_totals = member_matrix(list(variant_preds.values()), merged)
        stack = np.vstack([pred[None], variant_totals]) if len(variant_totals) else pred[None]
        loss_spread_rel = scale_error.variant_spread(stack) / pred
        gain_spread = scale_error.variant_spread(gains(stack, groups, ref))
        m_lo, m_hi = np.full(len(obs), np.nan), np.full(len(obs), np.nan)
        mg_lo, mg_hi = np.full(len(obs), np.nan), np.full(len(obs), np.nan)
        g_pred = gains(pred, groups, ref)
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            model, step = merged.loc[idx[0], "model"], float(merged.loc[idx[0], "step"])
            record = scale_of(
                model, step, {"total": float(np.median(loss_spread_rel[idx]))}, len(variant_totals)
            )
            sd = np.sqrt(scale_error.loss_sd(record, pred[idx]) ** 2 + noise**2)
            m_lo[idx], m_hi[idx] = scale_error.widen(pred[idx], pred[idx], pred[idx], sd, LEVEL)
            r = idx[ref[idx]]
            if len(r) == 1:
                gsd = np.sqrt(
                    scale_error.gain_sd(record, pred[idx], pred[r[0]], gain_spread[idx]) ** 2 + 2 * noise**2
                )
                mg_lo[idx], mg_hi[idx] = scale_error.widen(g_pred[idx], g_pred[idx], g_pred[idx], gsd, LEVEL)
        source = calibration_source(sc)
        z_loss, z_gain = calib_z.get((label, source), (np.empty(0), np.empty(0)))
        k_loss, k_gain = calibrate_factor(z_loss), calibrate_factor(z_gain)
        half = k_loss * np.sqrt(spread**2 + noise**2)
        g_half = k_gain * np.sqrt(g_spread**2 + 2 * noise**2)
        g_obs = gains(obs, groups, ref)
        has_gain = np.isfinite(g_pred) & np.isfinite(g_obs)

        def median_half(lo, hi, mask=None):
            w = (hi - lo) / 2
            w = w[np.isfinite(w) & (True if mask is None else mask)]
            return float(np.median(w)) if len(w) else None

        def cover(values, lo, hi, mask):
            mask = mask & np.isfinite(lo) & np.isfinite(hi)
            return coverage(values[mask], lo[mask], hi[mask]) if mask.any() else None

        metrics = scenario_metrics(pred, obs, groups, ref, noise)
        metrics["coverage90"] = cover(obs, iv["wired_lo"], iv["wired_hi"], np.isfinite(obs))
        metrics["gain_coverage90"] = cover(g_obs, iv["wired_gain_lo"], iv["wired_gain_hi"], has_gain)
        row = {
            "name": f"{sc.name}/{label}",
            "family": sc.family,
            "scenario": sc.name,
            "setting": label,
            "step_setting": s.name if sc.kind != "size" else None,
            "pipeline_setting": s == PIPELINE or sc.kind == "size",
            "steps_ratio": float(merged["step"].min() / sc.fit_max_step),
            "size_ratio": 1.0
            if sc.kind == "steps"
            else float(
                max(fam.params[m] for m in merged["model"]) / max(fam.params[m] for m in sc.fit_sizes)
            ),
            "steps_ratio_max": float(merged["step"].max() / sc.fit_max_step),
            **metrics,
            "interval": "wired: mixlaw pipeline's (Ensemble.interval / gains.gain_intervals with the "
            "scale_uncertainty record), centred on the mixing law",
            "halfwidth90_median": median_half(iv["wired_lo"], iv["wired_hi"]),
            "gain_halfwidth90_median": median_half(iv["wired_gain_lo"], iv["wired_gain_hi"], has_gain),
            "n_covered": int(np.isfinite(iv["wired_lo"]).sum()),
            "calibrated_on": model_lofo.calibrated_on,
            "scale_calibrated_here": sc.key in scale_error_sources(sc),
            "scale_error": model_lofo.to_dict(),
            "scale_model_coverage90": cover(obs, m_lo, m_hi, np.isfinite(obs)),
            "scale_model_gain_coverage90": cover(g_obs, mg_lo, mg_hi, has_gain),
            "scale_model_halfwidth90_median": median_half(m_lo, m_hi),
            "scale_model_gain_halfwidth90_median": median_half(mg_lo, mg_hi, has_gain),
            "bootstrap_coverage90": cover(obs, iv["lo"], iv["hi"], np.isfinite(obs)),
            "bootstrap_gain_coverage90": cover(g_obs, iv["gain_lo"], iv["gain_hi"], has_gain),
            "bootstrap_halfwidth90_median": median_half(iv["lo"], iv["hi"]),
            "bootstrap_gain_halfwidth90_median": median_half(iv["gain_lo"], iv["gain_hi"], has_gain),
            "scale_coverage90": coverage(obs, pred - half, pred + half),
            "scale_gain_coverage90": coverage(
                g_obs[np.isfinite(g_pred)],
                (g_pred - g_half)[np.isfinite(g_pred)],
                (g_pred + g_half)[np.isfinite(g_pred)],
            ),
            "scale_width_factor": [k_loss, k_gain],
            "scale_halfwidth90_median": float(np.median(half)),
            "scale_gain_halfwidth90_median": float(np.nanmedian(g_half[np.isfinite(g_pred)]))
            if np.isfinite(g_pred).any()
            else None,
            "scale_calibrated_on": source,
            "calibrated_here": sc.key == source,
            "mixing_law_mre": relative_errors(
                iv["pred"][np.isfinite(iv["pred"])], obs[np.isfinite(iv["pred"])]
            )["mre"]
            if np.isfinite(iv["pred"]).any()
            else None,
            "tuned_here": sc.key == SELECTION_SCENARIO and label == "chosen",
            "size_alpha": alphas[sc.family] if sc.kind != "steps" else None,
            "size_alpha_range": alpha_range[sc.family] if sc.kind != "steps" else None,
            "notes": sc.notes,
        }
        if sc.kind != "size":
            fitted = fit_step_laws(fit_frame(fam, sc, s), "step", fam.targets, s.share, DELTA, s.bounds)
            f0 = fam.table.frame.iloc[0]
            tps = float(f0["tokens"] / f0["step"]) if sc.family == TRAINER else 2**20  # paper data: 1M/step
            row["regime"] = step_regime(fitted, params=fam.params, tokens_per_step=tps)
        rows.append(row)
    mech = {}
    for name, fam in fams.items():
        key = f"{name}/steps_3x"
        p = preds.get((key, CURRENT.name))
        sc = next((x for x in all_sc if x.key == key), None)
        mech[name] = mechanism(fam, truth_vector(fam, sc, p) if p is not None else None)
    result = {
        "scenarios": rows,
        "mechanism": mech,
        "selection": {
            "chosen_on": SELECTION_SCENARIO,
            "chosen": chosen.name,
            "current": CURRENT.name,
            "ranking": [{"setting": k, **v} for k, v in ranked],
        },
        "step_settings": table,
        "scale_error": {
            "shipped": shipped.to_dict(),
            "per_scenario": {f"{label}/{key}": m.to_dict() for (label, key), m in scale_models.items()},
            "method": "mixlaw.scale_error.fit_model on every (size, step) group of the calibration scenarios: "
            "the step coefficients from the selection scenario (5Mix <= 10k -> 30k), the size coefficients from "
            "the other family's size scenario; the selection scenario's own rows are in-sample "
            "(scale_calibrated_here). The shipped constants (mixlaw.scale_error.DEFAULT_MODEL): the selection "
            "scenario and both size scenarios, pipeline step setting",
            "groups": {
                f"{label}/{key}": [
                    {
                        "label": g.label,
                        "steps_ratio": g.steps_ratio,
                        "size_ratio": g.size_ratio,
                        "n": len(g.rel_error),
                        "mean_rel_error": float(np.mean(g.rel_error)),
                        "sd_rel_error": float(np.std(g.rel_error, ddof=1)) if len(g.rel_error) > 1 else None,
                        "variant_sd_rel": float(np.mean(g.variant_sd_rel)),
                        "noise_rel": g.noise_rel,
                    }
                    for g in v
                ]
                for (label, key), v in calib.items()
            },
        },
        "mixing_law": MIXING_LAW,
        "n_bootstrap": N_BOOTSTRAP,
        "seconds": time.perf_counter() - started,
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    def pct(v):
        return "   -  " if v is None else f"{100 * v:6.2f}"

    def num(v, f="{:.3f}"):
        return "  -  " if v is None else f.format(v)

    print(
        f"{'family':9} {'scenario':26} {'steps':>5} {'size':>5} {'n':>4} {'MRE%':>6} {'bias%':>6} "
        f"{'pair':>5} {'regret':>7} {'cov90':>5} {'hw':>6} {'gMAE':>7} {'gcov':>5} {'ghw':>6} "
        f"{'mcov':>5} {'mgcov':>5} {'bcov':>5} {'bhw':>6}"
    )
    for r in result["scenarios"]:
        print(
            f"{r['family']:9} {r['name']:26} {r['steps_ratio']:5.2f} {r['size_ratio']:5.2f} {r['n']:4d} "
            f"{pct(r['mre'])} {pct(r['bias'])} {num(r['pairwise_accuracy'], '{:5.2f}')} "
            f"{num(r['regret'], '{:7.4f}')} {num(r['coverage90'], '{:5.2f}')} "
            f"{num(r['halfwidth90_median'], '{:6.3f}')} {num(r['gain_mae'], '{:7.4f}')} "
            f"{num(r['gain_coverage90'], '{:5.2f}')} {num(r['gain_halfwidth90_median'], '{:6.3f}')} "
            f"{num(r['scale_model_coverage90'], '{:5.2f}')} {num(r['scale_model_gain_coverage90'], '{:5.2f}')} "
            f"{num(r['bootstrap_coverage90'], '{:5.2f}')} {num(r['bootstrap_halfwidth90_median'], '{:6.3f}')}"
        )
    print(
        "(MRE, bias in %; regret, gMAE (gain MAE), hw/ghw (median half-widths) in nats; cov/gcov: the wired 90% "
        "interval of `mixlaw pipeline` (mixing-law bootstrap + scale-error model calibrated as in `calibrated_on`), "
        "mcov/mgcov: the scale-error model alone around the step/size-law prediction, bcov/bhw: the "
        "mixing-law bootstrap alone)"
    )
    shipped = result["scale_error"]["shipped"]
    print(
        "\nscale-error model shipped (mixlaw.scale_error.DEFAULT_MODEL): "
        + ", ".join(f"{k} {shipped[k]:.4g}" for k in scale_error.COEFFICIENTS)
    )
    sel = result["selection"]
    print(f"\nstep setting chosen on {sel['chosen_on']}: {sel['chosen']} (current default {sel['current']})")
    print("\nstep settings, MRE% per scenario:")
    keys = list(result["step_settings"])
    print(f"{'setting':32} " + " ".join(f"{k[:22]:>22}" for k in keys))
    for s in SETTINGS:
        if not any(s.name in result["step_settings"][k] for k in keys):
            continue
        cells = [result["step_settings"][k].get(s.name) for k in keys]
        if all(c is None for c in cells):
            continue
        print(f"{s.name:32} " + " ".join(f"{pct(c['mre'] if c else None):>22}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data" / "mixinglaws")
    parser.add_argument("--out", type=Path, default=here / "results")
    parser.add_argument("--quick", action="store_true", help="3 step settings, 2 bootstraps (a smoke run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mixlaw").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    if not (args.data / "5mix.csv").exists():
        print(f"error: {args.data}: no 5mix.csv (give --data DIR)", file=sys.stderr)
        return 2
    if args.quick:
        result = run(args.data, [CURRENT, PIPELINE, SETTINGS[12]], n_boot=2)
    else:
        result = run(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    dump_json(result, args.out / "extrapolation_backtest.json")
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
