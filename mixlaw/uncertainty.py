"""Uncertainty of a fitted law: bootstrap over mixtures, noise from seeds and checkpoints, calibrated
prediction intervals, and intervals on the optimum.

    ens = bootstrap_law(data, "dml-log", n_bootstrap=50, seed=0, table=table)   # table: noise from checkpoints
    ens.interval(X, level=0.9)        # {name: {"pred", "lo", "hi", "scale"}} for every target and the total
    optimum_uncertainty(ens, optimum, baseline, level=0.9)   # proportions, losses, P(optimum beats baseline)
    attach(fitted, ens); Ensemble.from_fitted(FittedLaw.load("law.json"))      # stored in LAW.json

Method:
1. Resampling by mixture (rows of one mixture, e.g. seeds, stay together). The ordinary bootstrap when the
   law has comfortably fewer parameters than ~0.63 n mixtures; otherwise subsampling without replacement
   (m of n, delete-d jackknife, spread rescaled by sqrt(m / d)) so that every refit stays identifiable.
   Refits use few restarts (default 8).
2. Noise: pooled within-mixture variance of repeated runs (seeds) at the fitted checkpoint when there are
   any; else the residual scatter of each run's loss curve around a quadratic in log(step) over the
   checkpoints nearest the fitted one; else 0.
3. Raw interval at x: f(x) +- z * sqrt(s(x)^2 + sigma^2), f the full-data fit, s(x) the robust spread of the
   members' predictions (half the 15.9-84.1% range).
4. Calibration on the fitting data only: every row is predicted by the members that did not see its mixture
   (out of bag), giving standardized residuals z_i = (y_i - median_oob) / sqrt(s_oob^2 + sigma^2). If the
   conformal quantile of |z_i| (rank ceil((n+1) level)) exceeds z, the scale is widened by that ratio; it is
   never narrowed. This absorbs lack of fit, which the bootstrap alone cannot see.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

from mixlaw import scale_error
from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FitData, FittedLaw, fit_law
from mixlaw.laws import get_law, law_from_dict
from mixlaw.mixture import Mixture
from mixlaw.optimizer import optimize
from mixlaw.runs import RunsTable, Weights, aggregate
from mixlaw.settings import MIN_BOOTSTRAP

log = logging.getLogger(__name__)

UNCERTAINTY_VERSION = 1
BOOTSTRAP_SHARE = 1 - math.exp(-1)
CALIBRATION_MODES = ("both", "widen", "none")
MIN_FACTOR = 0.2  # calibration never shrinks an interval below a fifth of its raw width  # expected share of distinct mixtures in a bootstrap sample


# --------------------------------------------------------------------------------------------- noise


def _truth(data: FitData, names: list[str]) -> dict[str, np.ndarray]:
    columns = {"total": data.total, **{t: data.Y[:, i] for i, t in enumerate(data.targets)}}
    return {name: columns[name] for name in names if name in columns}


def seed_noise(data: FitData, names: list[str]) -> dict[str, Any] | None:
    """Pooled within-mixture sd of repeated runs (seeds, repeats) at the fitted checkpoint, or None."""
    ids = data.mixture_id
    counts = np.bincount(ids)
    dof = int(len(ids) - len(counts))
    if dof < 1:
        return None
    sd = {}
    for name, y in _truth(data, names).items():
        means = np.bincount(ids, weights=y) / counts
        sd[name] = float(np.sqrt(((y - means[ids]) ** 2).sum() / dof))
    return {"sd": sd, "dof": dof}


def checkpoint_noise(
    data: FitData, table: RunsTable, names: list[str], window: int = 6
) -> dict[str, Any] | None:
    """Scatter of each run's loss curve around a quadratic in log(step), over the `window` checkpoints nearest
    the fitted one (pooled over runs); None without a step/tokens selection or with too few checkpoints."""
    column = "step" if "step" in data.selection else "tokens" if "tokens" in data.selection else None
    if column is None or column not in table.frame.columns:
        return None
    sel = data.selection
    quiet = logging.getLogger("mixlaw.runs")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # incomplete checkpoints far from the fitted one are expected here
    try:
        sub = table.select(
            model=sel.get("model"),
            params=sel.get("params"),
            train_domains=sel.get("train_domains"),
            valid_domains=sel.get("valid_domains"),
            metric=sel.get("metric"),
        )
        wide = aggregate(sub, data.weights)
    except MixlawInputError:
        return None
    finally:
        quiet.setLevel(level)
    wide = wide[wide["run"].isin(set(data.frame["run"].astype(str)))]
    target = math.log(float(sel[column]))
    keys = ["run"] + (["seed"] if "seed" in wide.columns else [])
    ss = {name: 0.0 for name in names}
    dof = 0
    for _, curve in wide.groupby(keys, sort=True):
        x = np.log(curve[column].to_numpy(dtype=float))
        order = np.argsort(np.abs(x - target), kind="stable")[:window]
        if len(order) < 4:
            continue
        basis = np.stack([np.ones(len(order)), x[order] - target, (x[order] - target) ** 2], axis=1)
        for name in names:
            if name not in curve.columns:
                continue
            y = curve[name].to_numpy(dtype=float)[order]
            coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
            ss[name] += float(((y - basis @ coef) ** 2).sum())
        dof += len(order) - 3
    if dof < 3:
        return None
    return {"sd": {name: math.sqrt(ss[name] / dof) for name in names}, "dof": dof, "window": window}


def estimate_noise(data: FitData, names: list[str], table: RunsTable | None = None) -> dict[str, Any]:
    """Noise sd per output: from seeds if the data repeat mixtures, else from checkpoints, else 0."""
    seeds = seed_noise(data, names)
    checkpoints = checkpoint_noise(data, table, names) if table is not None else None
    if seeds is not None:
        source, sd = "seeds", seeds["sd"]
    elif checkpoints is not None:
        source, sd = "checkpoints", checkpoints["sd"]
    else:
        source, sd = "none", {name: 0.0 for name in names}
    return {"source": source, "sd": sd, "seeds": seeds, "checkpoints": checkpoints}


# --------------------------------------------------------------------------------------------- resampling


def resample_plan(
    mixture_id: np.ndarray, n_draws: int, needed: int, seed: int = 0, scheme: str = "auto"
) -> tuple[str, int, list[np.ndarray]]:
    """Draws of mixtures (arrays of mixture ids, with repeats for the bootstrap).

    Returns (scheme, subsample size m (0 for the bootstrap), draws)."""
    unique = np.unique(mixture_id)
    n = len(unique)
    if needed > n - 1:
        raise MixlawInputError(f"cannot bootstrap: the law needs {needed} mixtures and there are only {n}")
    if scheme == "auto":
        scheme = "bootstrap" if BOOTSTRAP_SHARE * n >= needed + 2 else "subsample"
    if scheme not in ("bootstrap", "subsample"):
        raise MixlawInputError(f"resampling scheme must be auto, bootstrap or subsample, got {scheme!r}")
    rng = np.random.default_rng(seed)
    draws = []
    m = 0
    if scheme == "subsample":
        m = min(n - 1, max(needed + 1, math.ceil(BOOTSTRAP_SHARE * n)))
    for _ in range(n_draws):
        if scheme == "subsample":
            draws.append(np.sort(rng.choice(unique, size=m, replace=False)))
            continue
        for _ in range(100):
            draw = rng.choice(unique, size=n, replace=True)
            if len(np.unique(draw)) >= needed:
                break
        draws.append(np.sort(draw))
    return scheme, m, draws


# --------------------------------------------------------------------------------------------- the ensemble


def robust_sd(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half the 15.9-84.1 percentile range (the sd for a normal sample, robust to a few wild refits)."""
    lo, hi = np.nanpercentile(values, [15.865, 84.135], axis=axis)
    return 0.5 * (hi - lo)


def conformal_rank(n: int, level: float) -> int:
    """1-based rank of the finite-sample conformal quantile of n scores."""
    return math.ceil((n + 1) * level)


@dataclass
class Ensemble:
    """A full-data fit, its bootstrap refits, the noise level and the out-of-bag standardized residuals."""

    fitted: FittedLaw
    members: list[FittedLaw]
    noise_sd: dict[str, float]
    oob_z: dict[str, np.ndarray]
    spread_factor: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.oob_z)

    def member_predictions(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """{name: (B, n)} predictions of every member."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        out: dict[str, list[np.ndarray]] = {}
        with np.errstate(all="ignore"):
            for member in self.members:
                for name, values in member.predict(X).items():
                    out.setdefault(name, []).append(np.where(np.isfinite(values), values, np.nan))
        return {name: np.stack(v) for name, v in out.items()}

    def spread(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Parameter uncertainty s(x) of each output at X (n, M)."""
        return {name: self.spread_factor * robust_sd(p) for name, p in self.member_predictions(X).items()}

    def calibration(self, name: str, level: float, mode: str = "both") -> dict[str, Any]:
        """Scale factor that makes the out-of-bag coverage of the level-interval nominal: `both` widens or
        narrows, `widen` only widens (factor >= 1), `none` leaves the raw interval."""
        z = np.abs(self.oob_z.get(name, np.empty(0)))
        z = z[np.isfinite(z)]
        critical = float(norm.ppf(0.5 + level / 2))
        if len(z) == 0:
            return {"factor": 1.0, "raw_oob_coverage": None, "n": 0, "exact": False}
        rank = conformal_rank(len(z), level)
        quantile = float(np.sort(z)[min(rank, len(z)) - 1])
        factor = quantile / critical
        factor = 1.0 if mode == "none" else max(1.0, factor) if mode == "widen" else max(factor, MIN_FACTOR)
        return {
            "factor": factor,
            "raw_oob_coverage": float((z <= critical).mean()),
            "n": int(len(z)),
            "exact": rank <= len(z),
        }

    def observation_sd(self, name: str = "total") -> float:
        """Typical error of a held-out run's prediction: robust sd of the out-of-bag residuals."""
        residual = np.asarray(self.info.get("oob_residual", {}).get(name, []), dtype=float)
        residual = residual[np.isfinite(residual)]
        base = float(robust_sd(residual)) if len(residual) >= 3 else 0.0
        return max(base, self.noise_sd.get(name, 0.0), 1e-6)

    def interval(
        self,
        X: np.ndarray,
        level: float = 0.9,
        calibrate: str = "both",
        scale: Mapping[str, Any] | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Prediction interval for the loss of a new run at each mixture of X (n, M); `calibrate` as in
        `calibration` (both, widen, none). `scale`: a `scale_uncertainty` record (`mixlaw.scale_error`) whose
        scale-extrapolation sd is added in quadrature (each output gets `scale_sd`, absolute)."""
        if calibrate not in CALIBRATION_MODES:
            raise MixlawInputError(
                f"calibration must be one of {', '.join(CALIBRATION_MODES)}, got {calibrate!r}"
            )
        if not 0 < level < 1:
            raise MixlawInputError(f"interval level must be in (0, 1), got {level}")
        X = np.atleast_2d(np.asarray(X, dtype=float))
        center = self.fitted.predict(X)
        spread = self.spread(X)
        critical = float(norm.ppf(0.5 + level / 2))
        out = {}
        for name, pred in center.items():
            s = spread.get(name, np.zeros(len(X)))
            sd = np.sqrt(np.nan_to_num(s, nan=np.inf) ** 2 + self.noise_sd.get(name, 0.0) ** 2)
            factor = self.calibration(name, level, calibrate)["factor"]
            half = factor * critical * sd
            out[name] = {"pred": pred, "lo": pred - half, "hi": pred + half, "scale": sd, "factor": factor}
            if scale is not None:
                sd = scale_error.loss_sd(scale, pred, name)
                out[name]["lo"], out[name]["hi"] = scale_error.widen(
                    pred, pred - half, pred + half, sd, level
                )
                out[name]["scale_sd"] = sd
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record stored under `uncertainty` in LAW.json."""
        return {
            "kind": "mixture_bootstrap",
            "version": UNCERTAINTY_VERSION,
            **{k: v for k, v in self.info.items() if k != "oob_residual"},
            "spread_factor": self.spread_factor,
            "noise_sd": self.noise_sd,
            "oob": {
                "z": {k: v.tolist() for k, v in self.oob_z.items()},
                "residual": {k: list(v) for k, v in self.info.get("oob_residual", {}).items()},
            },
            "members": [m.law.params_ for m in self.members],
        }

    @classmethod
    def from_dict(cls, fitted: FittedLaw, data: dict[str, Any]) -> Ensemble:
        if data.get("kind") != "mixture_bootstrap":
            raise MixlawInputError("LAW.json: unknown uncertainty record")
        base = fitted.law.to_dict()
        members = [
            FittedLaw(
                law_from_dict({**base, "params": params, "summary": {}}),
                fitted.domains,
                fitted.targets,
                fitted.total_weights,
                {},
            )
            for params in data["members"]
        ]
        info = {
            k: v
            for k, v in data.items()
            if k not in ("kind", "version", "spread_factor", "noise_sd", "oob", "members")
        }
        info["oob_residual"] = {
            k: [np.nan if x is None else x for x in v] for k, v in data["oob"].get("residual", {}).items()
        }
        z = {
            k: np.array([np.nan if x is None else x for x in v], dtype=float)
            for k, v in data["oob"]["z"].items()
        }
        return cls(
            fitted,
            members,
            {k: float(v) for k, v in data["noise_sd"].items()},
            z,
            float(data.get("spread_factor", 1.0)),
            info,
        )

    @classmethod
    def from_fitted(cls, fitted: FittedLaw) -> Ensemble:
        record = fitted.meta.get("uncertainty")
        if not record:
            raise MixlawInputError(
                "this law has no bootstrap ensemble: refit with `mixlaw fit --bootstrap N` "
                "or pass --runs RUNS to bootstrap it now"
            )
        return cls.from_dict(fitted, record)


def attach(fitted: FittedLaw, ensemble: Ensemble) -> FittedLaw:
    """Store the ensemble in the fitted law's metadata (saved as `uncertainty` in LAW.json)."""
    fitted.meta["uncertainty"] = ensemble.to_dict()
    return fitted


def bootstrap_law(
    data: FitData,
    law: str,
    hyper: dict[str, Any] | None = None,
    target: str | None = None,
    n_bootstrap: int = 50,
    seed: int = 0,
    restarts: int | None = 8,
    table: RunsTable | None = None,
    fitted: FittedLaw | None = None,
    scheme: str = "auto",
    noise: dict[str, Any] | None = None,
    progress=None,
) -> Ensemble:
    """Refit `law` on mixtures resampled from `data`; noise from `table` (checkpoints) or repeats (seeds), or
    given as `noise` (an `estimate_noise` result, e.g. computed once for many ensembles)."""
    if n_bootstrap < MIN_BOOTSTRAP:
        raise MixlawInputError(f"--bootstrap {n_bootstrap}: use at least {MIN_BOOTSTRAP} refits")
    law_class = get_law(law)
    hyper = dict(hyper or {})
    fitted = fitted or fit_law(data, law, hyper, target)
    refit_hyper = dict(fitted.law.hyper)
    if restarts and "restarts" in law_class.defaults:
        refit_hyper["restarts"] = min(int(restarts), int(refit_hyper.get("restarts") or restarts))
    fit_target = fitted.meta.get("fit_target", target)
    names = list(fitted.predict(data.X[:1]))
    truth = _truth(data, names)
    noise = noise or estimate_noise(data, names, table)
    needed = law_class(**{k: v for k, v in refit_hyper.items() if k in law_class.defaults}).n_parameters(
        len(data.domains)
    )
    ids = data.mixture_id
    scheme, m, draws = resample_plan(ids, n_bootstrap, needed, seed, scheme)
    rows_of = {int(k): np.flatnonzero(ids == k) for k in np.unique(ids)}
    members, bags, failures = [], [], 0
    for i, draw in enumerate(draws):
        rows = np.concatenate([rows_of[int(k)] for k in draw])
        try:
            with np.errstate(all="ignore"):
                member = fit_law(data.subset(rows), law, refit_hyper, fit_target)
        except (MixlawInputError, np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            log.debug("bootstrap refit %d failed: %s", i, exc)
            failures += 1
            continue
        members.append(FittedLaw(member.law, fitted.domains, fitted.targets, fitted.total_weights, {}))
        bags.append(np.isin(ids, draw))
        if progress:
            progress(i + 1, len(draws))
    if len(members) < max(5, n_bootstrap // 2):
        raise MixlawInputError(f"bootstrap: only {len(members)} of {n_bootstrap} refits succeeded")
    spread_factor = math.sqrt(m / (len(np.unique(ids)) - m)) if scheme == "subsample" else 1.0
    ensemble = Ensemble(fitted, members, {k: float(v) for k, v in noise["sd"].items()}, {}, spread_factor)
    preds = ensemble.member_predictions(data.X)
    out_of_bag = ~np.stack(bags)  # (B, n)
    oob_z, oob_residual = {}, {}
    for name in names:
        p = np.where(out_of_bag, preds[name], np.nan)
        enough = np.isfinite(p).sum(axis=0) >= 3
        with np.errstate(all="ignore"), _quiet_nan_warnings():
            center = np.nanmedian(p, axis=0)
            s = spread_factor * robust_sd(p)
        residual = np.where(enough, truth[name] - center, np.nan)
        scale = np.sqrt(s**2 + noise["sd"].get(name, 0.0) ** 2)
        oob_z[name] = np.where(enough & (scale > 0), residual / np.where(scale > 0, scale, 1.0), np.nan)
        oob_residual[name] = residual.tolist()
    ensemble.oob_z = oob_z
    ensemble.info = {
        "law": law,
        "n_bootstrap": n_bootstrap,
        "n_members": len(members),
        "failed": failures,
        "seed": seed,
        "scheme": scheme,
        "subsample_size": m or None,
        "refit_restarts": refit_hyper.get("restarts"),
        "n_mixtures": int(len(np.unique(ids))),
        "noise": {"source": noise["source"], "seeds": noise["seeds"], "checkpoints": noise["checkpoints"]},
        "oob_residual": oob_residual,
    }
    return ensemble


class _quiet_nan_warnings:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


# --------------------------------------------------------------------------------------------- the optimum


def _vector(mixture, domains: list[str]) -> np.ndarray:
    return Mixture.parse(mixture, domains, "mixture").as_array(domains)


def reoptimize(fitted: FittedLaw, seed: int = 0, lower=None, caps=None, **kwargs: Any) -> np.ndarray:
    """Optimal mixture of one law (e.g. a bootstrap member) as an (M,) array.

    Uses `mixlaw.optimizer.optimize` (extra keyword arguments such as `bounds`, `available`, `target_tokens`,
    `max_epochs`, `fixed`, `objective` go to it; `lower`/`caps` become `bounds`)."""
    bounds = {k: tuple(v) for k, v in (kwargs.pop("bounds", None) or {}).items()}
    for d in fitted.domains:
        if (lower and d in lower) or (caps and d in caps):
            old = bounds.get(d, (None, None))
            bounds[d] = ((lower or {}).get(d, old[0]), (caps or {}).get(d, old[1]))
    quiet = logging.getLogger("mixlaw.optimizer")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        result = optimize(fitted, bounds=bounds or None, seed=seed, **kwargs)
    finally:
        quiet.setLevel(level)
    return _vector(result["mixture"], fitted.domains)


def optimum_uncertainty(
    ensemble: Ensemble,
    mixture,
    baseline=None,
    level: float = 0.9,
    reoptimize_members: bool = True,
    seed: int = 0,
    lower=None,
    caps=None,
    scale: Mapping[str, Any] | None = None,
    **optimize_kwargs: Any,
) -> dict[str, Any]:
    """Intervals for an optimum (for optimum.json): its proportions (re-optimizing every member), its predicted
    losses and the baseline's (prediction intervals), the improvement, and P(optimum beats baseline) = the share
    of members that predict a lower total at the optimum than at the baseline.

    `scale`: a `scale_uncertainty` record; the losses' intervals then add the whole scale-extrapolation error
    and the improvement's only the per-mixture part (the common mode cancels in a difference)."""
    domains = ensemble.fitted.domains
    x = _vector(mixture, domains)
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    out: dict[str, Any] = {"level": level, "n_members": len(ensemble.members), "method": "mixture_bootstrap"}
    if reoptimize_members:
        optima = np.array(
            [reoptimize(m, seed=seed, lower=lower, caps=caps, **optimize_kwargs) for m in ensemble.members]
        )
        q_lo, q_med, q_hi = np.percentile(optima, [lo_q, 50, hi_q], axis=0)
        out["mixture"] = {
            d: {"value": float(x[j]), "lo": float(q_lo[j]), "hi": float(q_hi[j]), "median": float(q_med[j])}
            for j, d in enumerate(domains)
        }
        out["optimum_l1_spread"] = float(np.median(np.abs(optima - x).sum(axis=1)))
    points = [x] if baseline is None else [x, _vector(baseline, domains)]
    intervals = ensemble.interval(np.array(points), level, scale=scale)
    if scale is not None:
        out["method"] = "mixture_bootstrap+scale_error"
        out["scale_uncertainty"] = {
            k: scale[k]
            for k in ("steps_ratio", "size_ratio", "common_sd_rel", "mixture_sd_rel", "calibrated_on")
        }
    out["predicted"] = {
        name: {"value": float(v["pred"][0]), "lo": float(v["lo"][0]), "hi": float(v["hi"][0])}
        for name, v in intervals.items()
    }
    if baseline is not None:
        out["baseline"] = {
            name: {"value": float(v["pred"][1]), "lo": float(v["lo"][1]), "hi": float(v["hi"][1])}
            for name, v in intervals.items()
        }
        name = "total" if "total" in intervals else next(iter(intervals))
        preds = ensemble.member_predictions(np.array(points))[name]
        diff = preds[:, 0] - preds[:, 1]
        diff = diff[np.isfinite(diff)]
        value = float(intervals[name]["pred"][1] - intervals[name]["pred"][0])
        lo, hi = float(np.percentile(-diff, lo_q)), float(np.percentile(-diff, hi_q))
        if scale is not None:
            sd = scale_error.gain_sd(scale, intervals[name]["pred"][0], intervals[name]["pred"][1])
            lo, hi = (
                float(v[0]) for v in scale_error.widen([value], [min(lo, value)], [max(hi, value)], sd, level)
            )
        out["improvement"] = {"name": name, "value": value, "lo": lo, "hi": hi}
        out["p_beats_baseline"] = float((diff < 0).mean()) if len(diff) else None
    return out


# --------------------------------------------------------------------------------------------- rebuilding data


def data_for_law(fitted: FittedLaw, table: RunsTable) -> FitData:
    """The FitData a LAW.json was fitted on, rebuilt from its recorded selection and aggregation weights."""
    sel = fitted.meta.get("selection", {})
    w = fitted.meta.get("weights")
    if w is None:
        raise MixlawInputError("LAW.json has no weights record; cannot rebuild its data")
    weights = Weights(
        {k: float(v) for k, v in w["domain_weight"].items()},
        {k: list(v) for k, v in w["groups"].items()},
        w.get("spec", "law"),
    )
    expected = fitted.meta.get("data", {}).get("sha256")
    if expected and expected != table.data_hash():
        log.warning("%s: the runs table differs from the one this law was fitted on", table.source)
    keys = ("model", "params", "step", "tokens", "step_tol", "train_domains", "valid_domains", "metric")
    data = FitData.from_table(table, weights, domains=list(fitted.domains), **{k: sel.get(k) for k in keys})
    data.selection = dict(sel)
    return data


__all__ = [
    "Ensemble",
    "attach",
    "bootstrap_law",
    "data_for_law",
    "estimate_noise",
    "optimum_uncertainty",
    "reoptimize",
]
