"""Multi-stage data schedules: a law for the loss after a schedule, its fit, and a schedule optimizer.

A schedule is a sequence of stages, each a mixture r_s (on the simplex) trained for a share a_s of the tokens
(sum a_s = 1); a static mixture is a one-stage schedule. The law (`ScheduleLaw`, "recency-weighted mixing law"):

    L_i(schedule) = c_i + exp(theta_i . r_eff(gamma)),     r_eff = sum_s w_s(gamma) r_s,
    w_s(gamma) = (exp(gamma tau_s) - exp(gamma tau_{s-1})) / (exp(gamma) - 1),   tau_s = a_1 + ... + a_s.

Tokens seen at training time tau in [0, 1] count with weight proportional to exp(gamma tau): gamma > 0 means
recent data matter more (forgetting), gamma = 0 gives the static data mixing law of Ye et al. on the overall
mixture. With stage 1 fixed (a base model) and stage 2 the continual mixture r, r_eff is affine in r, so the
law reduces to the paper's continual-pretraining law c + k exp(t r): the schedule law is the chained
continual law with the stage-1 state summarized by its effective mixture. Per target there are M + 2
parameters (c, theta in R^M absorbing log k, gamma); gamma is fitted per target (default; `gamma=shared` shares
it, a number fixes it). `eps > 0` adds log(r_eff + eps) features (as dml-log) but overfits small sweeps.

Fitting: gamma by profile (grid, then golden-section refinement) around the batched multistart engine.

Optimization (`optimize_schedule`): stage mixtures on the simplex, fixed stage shares (or a grid over the
last stage's share), availability  sum_s a_s r_{s,d} x tokens <= available_d x max_epochs  (data repeated
across stages counts against its epochs once), per-domain bounds. For fixed shares the objective is convex in
the stage mixtures (c + exp(linear)), so SLSQP finds the global optimum; the result is repaired to satisfy the
constraints exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from mixlaw.errors import MixlawInputError
from mixlaw.files import read_json
from mixlaw.fitting import fit_multistart
from mixlaw.laws.base import FitContext, Hyper, MixingLaw
from mixlaw.laws.dml import exp_model, linearized_starts
from mixlaw.mixture import SUM_TOLERANCE, Domains, Mixture
from mixlaw.runs import PROPORTION_PREFIX, RunsTable, Weights, aggregate, load_weights

log = logging.getLogger(__name__)

GAMMA_GRID = tuple(np.round(np.linspace(-4.0, 24.0, 57), 6))
SCHEMA = "mixlaw.schedule-law/1"


# --------------------------------------------------------------------------------------------- schedules


@dataclass
class Schedule:
    """Stage shares (S,) summing to 1 and stage mixtures (S, M) whose rows sum to 1."""

    shares: np.ndarray
    mixtures: np.ndarray

    @property
    def overall(self) -> np.ndarray:
        """Token-weighted overall mixture (M,)."""
        return self.shares @ self.mixtures

    def to_dict(self, domains: list[str]) -> list[dict[str, Any]]:
        return [
            {"share": float(a), "mixture": {d: float(p) for d, p in zip(domains, row)}}
            for a, row in zip(self.shares, self.mixtures)
        ]

    @classmethod
    def from_dict(cls, stages: list[dict[str, Any]], domains: list[str]) -> Schedule:
        """From [{share, mixture: {domain: p}}, ...] (the sweep config's `schedules:` entries)."""
        if not isinstance(stages, list) or not stages:
            raise MixlawInputError("schedule: expected a non-empty list of {share, mixture} stages")
        shares, rows = [], []
        for j, st in enumerate(stages):
            if not isinstance(st, dict) or "share" not in st or "mixture" not in st:
                raise MixlawInputError(
                    f"schedule stage {j + 1}: expected {{share: s, mixture: {{domain: p}}}}"
                )
            mix = Mixture.from_dict(st["mixture"], domains, f"schedule stage {j + 1}", hint=None)
            shares.append(float(st["share"]))
            rows.append(mix.as_array(domains))
        return check_schedule(np.array(shares), np.array(rows))


def check_schedule(shares: np.ndarray, mixtures: np.ndarray, tol: float = SUM_TOLERANCE) -> Schedule:
    shares = np.asarray(shares, float)
    mixtures = np.atleast_2d(np.asarray(mixtures, float))
    if len(shares) != len(mixtures):
        raise MixlawInputError(f"schedule: {len(shares)} shares for {len(mixtures)} stage mixtures")
    if np.any(shares <= 0) or abs(shares.sum() - 1) > tol:
        raise MixlawInputError(f"schedule: stage shares must be positive and sum to 1, got {shares.tolist()}")
    if np.any(mixtures < -tol) or np.any(np.abs(mixtures.sum(axis=1) - 1) > tol):
        raise MixlawInputError("schedule: every stage mixture must be >= 0 and sum to 1")
    return Schedule(
        shares / shares.sum(),
        np.clip(mixtures, 0, None) / np.clip(mixtures, 0, None).sum(axis=1, keepdims=True),
    )


def stage_weights(shares: np.ndarray, gamma: float) -> np.ndarray:
    """Recency weights w_s(gamma) of stages with the given shares (S,) -> (S,), summing to 1."""
    tau = np.concatenate([[0.0], np.cumsum(shares)])
    tau[-1] = 1.0
    if abs(gamma) < 1e-8:
        return np.diff(tau)
    # (e^{g t_s} - e^{g t_{s-1}}) / (e^g - 1), computed stably for large |g|
    if gamma > 0:
        num = np.exp(gamma * (tau - 1.0))
        return np.diff(num) / -np.expm1(-gamma)
    num = np.exp(gamma * tau)
    return np.diff(num) / np.expm1(gamma)


def effective_mixtures(schedules: list[Schedule], gamma: float) -> np.ndarray:
    """r_eff of each schedule at recency gamma, (n, M)."""
    return np.stack([stage_weights(s.shares, gamma) @ s.mixtures for s in schedules])


# --------------------------------------------------------------------------------------------- data


@dataclass
class ScheduleData:
    """Schedules (one per row), their losses Y (n, T) per target and the weighted total (n,)."""

    schedules: list[Schedule]
    Y: np.ndarray
    total: np.ndarray
    targets: list[str]
    domains: list[str]
    weights: Weights
    frame: pd.DataFrame
    step: float | None


def schedules_of_runs(frame: pd.DataFrame, domains: list[str]) -> dict[str, Schedule]:
    """Each run's schedule: from `stage<k>_share` / `stage<k>_p_<domain>` columns (written by the trainer for
    staged runs), else the one-stage schedule of its `p_` columns."""
    out: dict[str, Schedule] = {}
    first = frame.drop_duplicates("run")
    pcols = [PROPORTION_PREFIX + d for d in domains]
    for _, row in first.iterrows():
        k, shares, rows = 1, [], []
        while f"stage{k}_share" in frame.columns and pd.notna(row.get(f"stage{k}_share")):
            cols = [f"stage{k}_p_{d}" for d in domains]
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise MixlawInputError(f"run {row['run']}: stage {k} has no column {missing[0]}")
            shares.append(float(row[f"stage{k}_share"]))
            rows.append([float(row[c]) if pd.notna(row[c]) else 0.0 for c in cols])
            k += 1
        if not shares:
            shares, rows = [1.0], [[float(row[c]) for c in pcols]]
        try:
            out[str(row["run"])] = check_schedule(np.array(shares), np.array(rows))
        except MixlawInputError as exc:
            raise MixlawInputError(f"run {row['run']}: {exc}") from None
    return out


def default_step(table: RunsTable) -> float | None:
    """The largest step that every run has (None without a step column)."""
    if "step" not in table.frame.columns:
        return None
    per_run = table.frame.groupby("run")["step"].agg(lambda s: set(s.tolist()))
    common = set.intersection(*per_run.tolist())
    if not common:
        raise MixlawInputError(f"{table.source}: no step common to all runs; choose one with --step")
    return float(max(common))


def prepare_schedules(
    table: RunsTable,
    step: float | None = None,
    model: str | None = None,
    valid_weights: str | None = None,
    valid_domains: list[str] | None = None,
) -> ScheduleData:
    """Select one model and checkpoint (default: the largest step common to all runs) and build ScheduleData."""
    selected = table.select(model=model, valid_domains=valid_domains)
    if "model" in selected.frame.columns:
        selected.require_single("model", "--model")
    step = default_step(selected) if step is None else step
    if step is not None:
        selected = selected.select(step=step)
    weights = load_weights(valid_weights, selected.valid_domains)
    wide = aggregate(selected, weights)
    sched = schedules_of_runs(selected.frame, selected.domains)
    targets = list(weights.groups)
    return ScheduleData(
        [sched[str(r)] for r in wide["run"]],
        wide[targets].to_numpy(float),
        wide["total"].to_numpy(float),
        targets,
        selected.domains,
        weights,
        wide,
        step,
    )


# --------------------------------------------------------------------------------------------- the law


class ScheduleLaw(MixingLaw):
    """L_i = c_i + exp(theta_i . r_eff(gamma)); see the module docstring. The `MixingLaw` contract with
    schedules (list[Schedule]) in place of the proportion matrix X: fit(schedules, Y), predict(schedules)."""

    name = "schedule-dml"
    description = (
        "schedule law: L_i = c_i + exp(theta_i . r_eff(gamma)), recency gamma fitted (shared or per target)"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "gamma": "per-target",
        "delta": 0.02,
        "restarts": 16,
        "seed": 0,
        "eps": 0.0,
    }
    hyper_schema: ClassVar[dict[str, Hyper]] = {"gamma": Hyper(float, words=("shared", "per-target"))}
    params_schema: ClassVar[dict[str, tuple[str, str]]] = {
        "log_c": ("vector", "number"),
        "theta": ("matrix", "number"),
        "gamma": ("vector", "number"),
    }

    def _check_params(self, params: dict[str, Any]) -> None:
        """One log_c, theta row and gamma per target."""
        T = len(params["log_c"])
        if len(params["theta"]) != T or len(params["gamma"]) != T:
            raise MixlawInputError(f"params: log_c, theta and gamma must have one entry per target ({T})")

    seeded = True
    blendable = False

    def __init__(self, **hyper: Any) -> None:
        super().__init__(**hyper)
        g = str(self.hyper["gamma"])
        if g not in ("shared", "per-target"):
            try:
                float(g)
            except ValueError:
                raise MixlawInputError(
                    f"law {self.name}: gamma must be shared, per-target or a number, got {g!r}"
                ) from None

    # -- schedules instead of an (n, M) matrix ------------------------------------------------------------
    def _inputs(self, X: Any) -> list[Schedule]:
        schedules = [X] if isinstance(X, Schedule) else list(X)
        if not schedules or not all(isinstance(s, Schedule) for s in schedules):
            raise ValueError(f"law {self.name} takes a non-empty list of Schedule objects")
        return schedules

    def _n_domains_of(self, X: list[Schedule]) -> int:
        return int(X[0].mixtures.shape[1])

    def _n_distinct(self, X: list[Schedule]) -> int:
        return len({tuple(np.round(np.concatenate([s.shares, s.mixtures.ravel()]), 6)) for s in X})

    def features(self, R: np.ndarray) -> np.ndarray:
        """r_eff, plus log(r_eff + eps) when eps > 0 (the dml-log extension for shares at or near 0)."""
        eps = float(self.hyper["eps"])
        return np.concatenate([R, np.log(R + eps)], axis=1) if eps > 0 else R

    def n_parameters(self, n_domains: int) -> int:
        n_domains *= 2 if float(self.hyper["eps"]) > 0 else 1
        return n_domains + 1 + (1 if str(self.hyper["gamma"]) in ("shared", "per-target") else 0)

    def _fit_at(
        self, schedules: list[Schedule], Y: np.ndarray, gamma: float, warm: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best (theta (T, 1 + M), cost (T,)) of c + exp(R theta) at a fixed gamma."""
        R = self.features(effective_mixtures(schedules, gamma))
        rng = np.random.default_rng(self.hyper["seed"])
        starts = np.stack(
            [linearized_starts(R, Y[:, t], self.hyper["restarts"], rng) for t in range(Y.shape[1])]
        )
        if warm is not None:
            starts[:, -1] = warm
        result = fit_multistart(exp_model(R), Y.T, starts, delta=self.hyper["delta"], polish=1)
        return result.theta, result.cost

    def _fit(self, schedules: list[Schedule], Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        M = self.features(schedules[0].mixtures[:1]).shape[1]
        mode = str(self.hyper["gamma"])
        T = Y.shape[1]
        if mode not in ("shared", "per-target"):
            gammas = np.full(T, float(mode))
            theta, cost = self._fit_at(schedules, Y, float(mode))
            profile = None
        else:
            grid = np.array(GAMMA_GRID)
            costs = np.empty((len(grid), T))
            thetas = np.empty((len(grid), T, M + 1))
            for g_i, g in enumerate(grid):
                thetas[g_i], costs[g_i] = self._fit_at(schedules, Y, g)
            profile = {"gamma": grid.tolist(), "cost": costs.tolist()}
            if mode == "shared":
                best = int(np.argmin(costs.sum(axis=1)))
                g_best = self._refine(schedules, Y, grid, best, thetas[best], None)
                gammas = np.full(T, g_best)
                theta, cost = self._fit_at(schedules, Y, g_best, warm=thetas[best])
            else:
                gammas, theta, cost = np.empty(T), np.empty((T, M + 1)), np.empty(T)
                for t in range(T):
                    best = int(np.argmin(costs[:, t]))
                    gammas[t] = self._refine(schedules, Y[:, [t]], grid, best, thetas[best, [t]], None)
                    th, c = self._fit_at(schedules, Y[:, [t]], gammas[t], warm=thetas[best, [t]])
                    theta[t], cost[t] = th[0], c[0]
        return {
            "gamma": gammas.tolist(),
            "log_c": theta[:, 0].tolist(),
            "theta": theta[:, 1:].tolist(),
            "cost": cost.tolist(),
            "gamma_profile": profile,
        }

    def _refine(self, schedules, Y, grid, best, warm, _unused) -> float:
        """Golden-section search for gamma between the grid neighbours of the best grid point."""
        lo, hi = grid[max(0, best - 1)], grid[min(len(grid) - 1, best + 1)]

        def f(g: float) -> float:
            return float(self._fit_at(schedules, Y, g, warm=warm)[1].sum())

        phi = (math.sqrt(5) - 1) / 2
        a, b = lo, hi
        c, d = b - phi * (b - a), a + phi * (b - a)
        fc, fd = f(c), f(d)
        for _ in range(14):
            if fc < fd:
                b, d, fd = d, c, fc
                c = b - phi * (b - a)
                fc = f(c)
            else:
                a, c, fc = c, d, fd
                d = a + phi * (b - a)
                fd = f(d)
        candidates = [(fc, c), (fd, d), (f(grid[best]), grid[best])]
        return float(min(candidates)[1])

    def predict_effective(self, R: np.ndarray, target: int | None = None) -> np.ndarray:
        """Losses at given effective mixtures R (n, M) for every target (n, T) (or one target, (n,))."""
        c = np.exp(np.array(self.params_["log_c"]))
        theta = np.array(self.params_["theta"])
        F = self.features(R)
        if target is not None:
            return c[target] + np.exp(F @ theta[target])
        return c[None] + np.exp(F @ theta.T)

    def _predict(self, schedules: list[Schedule]) -> np.ndarray:
        """Predicted losses (n, T)."""
        gammas = self.params_["gamma"]
        out = np.empty((len(schedules), len(gammas)))
        for t, g in enumerate(gammas):
            out[:, t] = self.predict_effective(effective_mixtures(schedules, g), t)
        return out


@dataclass
class FittedSchedule:
    """A fitted schedule law with its targets, weights and provenance (SCHEDULE_LAW.json)."""

    law: ScheduleLaw
    domains: list[str]
    targets: list[str]
    target_weights: dict[str, float]
    info: dict[str, Any]

    def predict(self, schedules: list[Schedule]) -> dict[str, np.ndarray]:
        Y = self.law.predict(schedules)
        out = {t: Y[:, i] for i, t in enumerate(self.targets)}
        out["total"] = Y @ np.array([self.target_weights[t] for t in self.targets])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "domains": self.domains,
            "targets": self.targets,
            "target_weights": self.target_weights,
            **self.law.to_dict(),
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "schedule law") -> FittedSchedule:
        """The schedule law stored by `to_dict`, validated (schema, sections, the law's hyper-parameters and
        parameters): a malformed file is a one-line MixlawInputError naming `source` and the key."""
        if not isinstance(data, dict):
            raise MixlawInputError(f"{source}: not a schedule law file (expected a JSON object)")
        schema = data.get("schema")
        prefix, _, version = str(schema).rpartition("/")
        if (
            prefix == SCHEMA.rsplit("/", 1)[0]
            and version.isdigit()
            and int(version) > int(SCHEMA.rsplit("/")[1])
        ):
            raise MixlawInputError(
                f"{source}: written by a newer mixlaw (schema {schema!r}; this one reads {SCHEMA})"
            )
        if schema != SCHEMA:
            raise MixlawInputError(
                f"{source}: not a schedule law file (schema {schema!r}, expected {SCHEMA})"
            )
        names = {}
        for key in ("domains", "targets"):
            value = data.get(key)
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise MixlawInputError(
                    f"{source}: {key} must be a non-empty list of names, got {value!r:.80}"
                )
            names[key] = list(value)
        weights = data.get("target_weights")
        if not isinstance(weights, dict) or set(weights) != set(names["targets"]):
            raise MixlawInputError(f"{source}: target_weights must map each target to a weight")
        for target, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise MixlawInputError(
                    f"{source}: target_weights.{target} must be a finite number, got {weight!r}"
                )
        info = data.get("info") or {}
        if not isinstance(info, dict):
            raise MixlawInputError(f"{source}: info must be an object")
        _check_noise(info.get("noise"), source)
        if "params" not in data:
            raise MixlawInputError(f"{source}: not a schedule law file (missing 'params')")
        try:
            law = ScheduleLaw.from_dict(data)
        except MixlawInputError as exc:
            raise MixlawInputError(f"{source}: {exc}") from None
        return cls(law, names["domains"], names["targets"], {k: float(v) for k, v in weights.items()}, info)

    @classmethod
    def load(cls, path: str | Path) -> FittedSchedule:
        return cls.from_dict(read_json(path, "schedule law"), str(path))


def _check_noise(noise: Any, source: str) -> None:
    """info.noise (written by `schedule_noise`): absent, null, or {loo: {rmse_total}, seed_sd: {value}} with
    finite numbers >= 0."""
    if noise is None:
        return
    if not isinstance(noise, dict):
        raise MixlawInputError(f"{source}: info.noise must be an object")
    for section, key in (("loo", "rmse_total"), ("seed_sd", "value")):
        block = noise.get(section)
        if not isinstance(block, dict):
            raise MixlawInputError(f"{source}: info.noise.{section} must be an object")
        value = block.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise MixlawInputError(
                f"{source}: info.noise.{section}.{key} must be a finite number >= 0, got {value!r:.40}"
            )


def fit_schedule_law(data: ScheduleData, **hyper: Any) -> FittedSchedule:
    """Fit the schedule law on every target of `data`."""
    law = ScheduleLaw(**hyper).fit(data.schedules, data.Y)
    group_weight = data.weights.group_weight
    return FittedSchedule(
        law,
        data.domains,
        data.targets,
        {t: group_weight[t] for t in data.targets},
        {"step": data.step, "n_rows": len(data.Y), "weights": data.weights.spec},
    )


# --------------------------------------------------------------------------------------------- noise

LOO_MODES = ("fixed-gamma", "full", "none")


def _schedule_keys(schedules: list[Schedule]) -> list[tuple]:
    return [tuple(np.round(np.concatenate([s.shares, s.mixtures.ravel()]), 6)) for s in schedules]


def leave_one_out(data: ScheduleData, fitted: FittedSchedule, mode: str = "fixed-gamma") -> dict[str, Any]:
    """Errors (predicted - measured) of the weighted total for each schedule left out of the fit (all its seed
    replicates together). `full` refits everything, the recency gamma included (about 60 profile fits per
    schedule); `fixed-gamma` keeps each target's gamma at the full fit's value and refits c and theta (fast, and
    somewhat optimistic: gamma has seen the left-out schedule)."""
    if mode not in LOO_MODES[:2]:
        raise MixlawInputError(f"--loo {mode!r}: must be one of {', '.join(LOO_MODES)}")
    keys = _schedule_keys(data.schedules)
    groups = list(dict.fromkeys(keys))
    if len(groups) < 3:
        raise MixlawInputError(f"leave-one-out needs at least 3 distinct schedules, got {len(groups)}")
    w = np.array([fitted.target_weights[t] for t in fitted.targets])
    law = fitted.law
    errors = np.empty(len(data.schedules))
    for key in groups:
        out = np.array([k == key for k in keys])
        train = [s for s, o in zip(data.schedules, out) if not o]
        held = [s for s, o in zip(data.schedules, out) if o]
        if mode == "full":
            pred = (
                ScheduleLaw(**{**law.hyper, "restarts": min(8, law.hyper["restarts"])})
                .fit(train, data.Y[~out])
                .predict(held)
            )
        else:
            pred = np.empty((len(held), len(fitted.targets)))
            for t, gamma in enumerate(law.params_["gamma"]):
                theta, _ = law._fit_at(train, data.Y[~out][:, [t]], float(gamma))
                F = law.features(effective_mixtures(held, float(gamma)))
                pred[:, t] = np.exp(theta[0, 0]) + np.exp(F @ theta[0, 1:])
        errors[out] = pred @ w - data.total[out]
    return {
        "mode": mode,
        "errors_total": errors.tolist(),
        "rmse_total": float(np.sqrt(np.mean(errors**2))),
        "mae_total": float(np.mean(np.abs(errors))),
        "n_schedules": len(groups),
    }


def seed_noise(data: ScheduleData, fitted: FittedSchedule) -> dict[str, Any]:
    """The seed sd of the weighted total: pooled over schedules trained with several seeds when there are any,
    else estimated (and said so) as the fit's residual sd of the total, sqrt(SSR / (n - parameters per target))."""
    keys = _schedule_keys(data.schedules)
    frame = pd.DataFrame({"key": keys, "total": data.total})
    sizes = frame.groupby("key")["total"].transform("size")
    reps = frame[sizes > 1]
    if len(reps):
        ss = float(reps.groupby("key")["total"].apply(lambda v: ((v - v.mean()) ** 2).sum()).sum())
        dof = int(len(reps) - reps["key"].nunique())
        return {
            "value": float(np.sqrt(ss / dof)),
            "source": f"seed replicates: {reps['key'].nunique()} schedules, {dof} dof",
            "replicates": True,
            "dof": dof,
        }
    pred = fitted.predict(data.schedules)["total"]
    dof = len(data.total) - fitted.law.n_parameters(len(fitted.domains))
    resid = pred - data.total
    value = float(np.sqrt((resid**2).sum() / dof)) if dof > 0 else float(np.sqrt(np.mean(resid**2)))
    return {
        "value": value,
        "source": "estimate (no seed replicates): the fit's residual sd of the total "
        f"({max(dof, 0)} dof); it also holds the law's misfit",
        "replicates": False,
        "dof": max(dof, 0),
    }


def schedule_noise(
    data: ScheduleData, fitted: FittedSchedule, loo: str = "fixed-gamma"
) -> dict[str, Any] | None:
    """info.noise of a schedule law: leave-one-out error and seed sd of the total (None with `loo` = none)."""
    if loo == "none":
        return None
    return {"loo": leave_one_out(data, fitted, loo), "seed_sd": seed_noise(data, fitted)}


# --------------------------------------------------------------------------------------------- optimizer


def availability_caps(
    domains: list[str], available: dict[str, float] | None, tokens: float | None, max_epochs: float = 1.0
) -> np.ndarray:
    """Largest overall share of each domain: available_d x max_epochs / tokens (1 without a limit)."""
    caps = np.ones(len(domains))
    if not available:
        return caps
    if not tokens or tokens <= 0:
        raise MixlawInputError("availability needs the schedule's total tokens (--tokens)")
    for name, amount in available.items():
        index = Domains(domains).index(name, "--available")
        if amount < 0:
            raise MixlawInputError(f"--available: {name}={amount} is negative")
        caps[index] = min(1.0, amount * max_epochs / tokens)
    if caps.sum() < 1 - 1e-12:
        raise MixlawInputError(
            f"availability too small: the domains can fill only {caps.sum():.3g} of the tokens "
            "(raise --max-epochs or lower --tokens)"
        )
    return caps


def usage(schedule: Schedule) -> np.ndarray:
    """Overall share of each domain over all stages (data repeated across stages counted once per use)."""
    return schedule.shares @ schedule.mixtures


def repair(
    shares: np.ndarray,
    X: np.ndarray,
    caps: np.ndarray,
    upper: np.ndarray | None = None,
    iterations: int = 100,
) -> np.ndarray:
    """Move a near-feasible stage-mixture matrix X (S, M) onto the constraints exactly: rows on the simplex,
    0 <= X <= upper, shares @ X <= caps."""
    S, M = X.shape
    upper = np.ones((S, M)) if upper is None else np.broadcast_to(upper, (S, M)).copy()
    X = np.clip(X, 0, upper)
    for _ in range(iterations):
        use = shares @ X
        over = use > caps
        if over.any():
            X[:, over] *= caps[over] / use[over]
        X = np.minimum(X, upper)
        deficit = 1 - X.sum(axis=1)
        if np.all(np.abs(deficit) <= 1e-15) and np.all(shares @ X <= caps):
            break
        for s in range(S):
            if deficit[s] < 0:  # too much mass: remove proportionally
                X[s] *= 1 / X[s].sum()
                continue
            slack_cap = np.maximum(caps - shares @ X, 0) / shares[s]
            room = np.minimum(upper[s] - X[s], slack_cap)
            room[room < 0] = 0
            if room.sum() <= 0:
                continue
            X[s] += room * min(1.0, deficit[s] / room.sum())
    use = shares @ X
    if np.any(use > caps + 1e-12) or np.any(np.abs(X.sum(axis=1) - 1) > 1e-9):
        raise MixlawInputError("no schedule satisfies the availability and bounds constraints")
    # Exact: a last proportional trim of any domain still a hair over its cap (floating point) onto the others.
    return X


def optimize_schedule(
    fitted: FittedSchedule,
    n_stages: int = 2,
    shares: list[float] | None = None,
    available: dict[str, float] | None = None,
    tokens: float | None = None,
    max_epochs: float = 1.0,
    upper: dict[str, float] | None = None,
    objective: dict[str, float] | None = None,
    last_share_grid: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5),
    seed: int = 0,
) -> dict[str, Any]:
    """Best schedule under availability (overall use of domain d <= available_d x max_epochs / tokens).

    `shares` fixes the stage shares; otherwise one stage is static and two stages search the last stage's
    share over `last_share_grid` (more stages: equal shares). `objective` weights targets (default: the
    law's total). Returns the schedule, its predictions, the constraints and how binding they are."""
    domains = fitted.domains
    M = len(domains)
    caps = availability_caps(domains, available, tokens, max_epochs)
    up = np.ones(M)
    for name, value in (upper or {}).items():
        up[Domains(domains).index(name, "--upper")] = float(value)
    weights = objective or {"total": 1.0}
    if shares is not None:
        if len(shares) != n_stages:
            raise MixlawInputError(f"--shares: {len(shares)} shares for {n_stages} stages")
        candidates = [np.array(shares, float)]
        check_schedule(candidates[0], np.full((n_stages, M), 1.0 / M))
    elif n_stages == 1:
        candidates = [np.array([1.0])]
    elif n_stages == 2:
        candidates = [np.array([1 - s, s]) for s in last_share_grid]
    else:
        candidates = [np.full(n_stages, 1.0 / n_stages)]
    best: dict[str, Any] | None = None
    tried = []
    for a in candidates:
        X, value = _solve_stages(fitted, a, caps, up, weights, seed)
        tried.append({"shares": a.tolist(), "predicted": value})
        if best is None or value < best["value"] - 1e-12:
            best = {"shares": a, "X": X, "value": value}
    sched = Schedule(best["shares"], best["X"])
    pred = {k: float(v[0]) for k, v in fitted.predict([sched]).items()}
    use = usage(sched)
    return {
        "schedule": sched.to_dict(domains),
        "overall_mixture": dict(zip(domains, use.tolist())),
        "predicted": pred,
        "objective": weights,
        "objective_value": best["value"],
        "constraints": {
            "caps": dict(zip(domains, caps.tolist())),
            "binding": [d for d, u, c in zip(domains, use, caps) if c < 1 and u >= c - 1e-9],
            "tokens": tokens,
            "max_epochs": max_epochs,
            "available": available or {},
        },
        "epochs": {
            d: float(u * tokens / available[d])
            for d, u in zip(domains, use)
            if available and d in available and tokens
        }
        if available
        else {},
        "shares_tried": tried,
    }


def _objective(fitted: FittedSchedule, weights: dict[str, float]):
    names = list(weights)
    target_index = {t: i for i, t in enumerate(fitted.targets)}
    tw = np.array([fitted.target_weights[t] for t in fitted.targets])
    coef = np.zeros(len(fitted.targets))
    for name, w in weights.items():
        if name == "total":
            coef += w * tw
        elif name in target_index:
            coef[target_index[name]] += w
        else:
            raise MixlawInputError(
                f"objective: unknown target {name!r}; known: total, {', '.join(fitted.targets)}"
            )
    del names
    c = np.exp(np.array(fitted.law.params_["log_c"]))
    theta = np.array(fitted.law.params_["theta"])
    gammas = np.array(fitted.law.params_["gamma"])
    return coef, c, theta, gammas


def _solve_stages(
    fitted: FittedSchedule,
    shares: np.ndarray,
    caps: np.ndarray,
    upper: np.ndarray,
    weights: dict[str, float],
    seed: int,
) -> tuple[np.ndarray, float]:
    """Convex problem in the stage mixtures for fixed shares: SLSQP from a few starts, then exact repair."""
    coef, c, theta, gammas = _objective(fitted, weights)
    S, M = len(shares), len(fitted.domains)
    W = np.stack([stage_weights(shares, g) for g in gammas])  # (T, S)

    def value_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        X = x.reshape(S, M)
        R = W @ X  # (T, M) effective mixture per target
        e = np.exp(np.einsum("tm,tm->t", R, theta))  # (T,)
        value = float(coef @ (c + e))
        grad = np.einsum("t,ts,tm->sm", coef * e, W, theta)
        return value, grad.ravel()

    cons = [
        {
            "type": "eq",
            "fun": (lambda x, s=s: x.reshape(S, M)[s].sum() - 1.0),
            "jac": (lambda x, s=s: np.eye(S)[s].repeat(M)),
        }
        for s in range(S)
    ]
    A = np.kron(shares[:, None], np.eye(M)).T  # (M, S*M): overall use of each domain
    cons.append({"type": "ineq", "fun": lambda x: caps - A @ x, "jac": lambda x: -A})
    bounds = [(0.0, float(upper[m])) for _ in range(S) for m in range(M)]
    rng = np.random.default_rng(seed)
    starts = [np.tile(np.minimum(caps, upper) / np.minimum(caps, upper).sum(), (S, 1))]
    starts += [rng.dirichlet(np.ones(M), size=S) for _ in range(3)]
    best_x, best_v = None, np.inf
    for x0 in starts:
        x0 = repair(shares, x0, caps, upper[None].repeat(S, 0))
        res = minimize(
            value_grad,
            x0.ravel(),
            jac=True,
            method="SLSQP",
            bounds=bounds,
            constraints=cons,
            options={"maxiter": 500, "ftol": 1e-14},
        )
        X = repair(shares, np.clip(res.x.reshape(S, M), 0, None), caps, upper[None].repeat(S, 0))
        v = value_grad(X.ravel())[0]
        if v < best_v:
            best_x, best_v = X, v
    return best_x, best_v


# --------------------------------------------------------------------------------------------- recommendation


def objective_of(predicted: dict[str, Any], weights: dict[str, float]) -> float:
    """The optimizer's objective (weights over `total` and targets) from one schedule's predictions."""
    return float(sum(w * float(np.asarray(predicted[name]).ravel()[0]) for name, w in weights.items()))


def gain_interval(value: float, noise: dict[str, Any] | None, level: float = 0.9) -> dict[str, Any]:
    """{value, lo, hi, p_beats_baseline, sd} of a predicted gain (reference minus schedule, loss units).

    sd^2 = 2 loo^2 + 2 seed^2: each of the two predictions is off by the law's leave-one-out error (which
    already holds the seed noise of single-seed fit runs), and the comparison a user trains has one seed of
    each arm on top. Without a noise estimate lo, hi and p are None."""
    from scipy.stats import norm

    if not noise:
        return {"value": value, "lo": None, "hi": None, "p_beats_baseline": None, "sd": None}
    sd = float(np.sqrt(2 * noise["loo"]["rmse_total"] ** 2 + 2 * noise["seed_sd"]["value"] ** 2))
    z = float(norm.ppf((1 + level) / 2))
    p = float(norm.cdf(value / sd)) if sd > 0 else float(value > 0)
    return {"value": value, "lo": value - z * sd, "hi": value + z * sd, "p_beats_baseline": p, "sd": sd}


def schedule_recommendation(
    fitted: FittedSchedule,
    result: dict[str, Any],
    static: dict[str, Any] | None,
    baseline: np.ndarray | None = None,
    baseline_name: str = "uniform",
    level: float = 0.9,
    min_confidence: float = 0.9,
) -> dict[str, Any]:
    """Blocks added to an `optimize_schedule` result: `baseline` (a static mixture, default uniform moved within
    the availability caps), `gain`
    (over the best static mixture `static` when the result has several stages, and over the baseline, each with
    an interval from the law's leave-one-out error and the seed noise in info.noise), `recommendation`
    (`mixlaw.recommendation`'s rule on the gain the schedule is for: over the best static mixture, else over the
    baseline) and `alternative` (the best static mixture)."""
    from mixlaw.recommendation import recommendation

    domains = fitted.domains
    weights = result["objective"]
    if baseline is None:  # uniform, moved within the availability caps the schedule obeys
        caps = np.array([result["constraints"]["caps"][d] for d in domains])
        base = repair(np.array([1.0]), np.full((1, len(domains)), 1.0 / len(domains)), caps)[0]
        if np.any(base > 1.0 / len(domains) + 1e-12) and baseline_name == "uniform":
            baseline_name = "uniform within availability"
    else:
        base = np.asarray(baseline, float)
    base_pred = {k: float(v[0]) for k, v in fitted.predict([Schedule(np.array([1.0]), base[None])]).items()}
    noise = fitted.info.get("noise")
    value = result["objective_value"]
    gains = {"over_baseline": gain_interval(objective_of(base_pred, weights) - value, noise, level)}
    staged = len(result["schedule"]) > 1 and static is not None
    if staged:
        gains["over_static"] = gain_interval(static["objective_value"] - value, noise, level)
    gains.update(
        {
            "level": level,
            "loo_rmse_total": None if not noise else noise["loo"]["rmse_total"],
            "loo_mode": None if not noise else noise["loo"]["mode"],
            "seed_sd": None if not noise else noise["seed_sd"]["value"],
            "seed_sd_source": None if not noise else noise["seed_sd"]["source"],
            "method": "value +- z sd, sd^2 = 2 loo_rmse^2 + 2 seed_sd^2 (loss units of the objective)",
        }
    )
    claim = gains["over_static"] if staged else gains["over_baseline"]
    view = {
        "gain": claim,
        "baseline": {"name": "best static mixture" if staged else baseline_name},
        "uncertainty_reason": "the law file has no leave-one-out or seed-noise estimate (info.noise); refit "
        "it with `mixlaw schedule fit`",
    }
    out: dict[str, Any] = {
        "baseline": {
            "name": baseline_name,
            "mixture": dict(zip(domains, base.tolist())),
            "predicted": base_pred,
        },
        "gain": gains,
        "recommendation": recommendation(view, min_confidence, support=[]),
    }
    if static is not None:
        out["static_optimum"] = {
            "mixture": static["overall_mixture"],
            "predicted": static["predicted"],
            "objective_value": static["objective_value"],
        }
        if staged:
            out["alternative"] = {
                "name": "the best static mixture",
                "mixture": static["overall_mixture"],
                "predicted": static["objective_value"],
            }
    return out
