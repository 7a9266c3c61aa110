"""Scale-extrapolation error model (issue 14 item 2): how far a target-scale prediction may be off because the
step and size laws extrapolate, as a function of the job's extrapolation ratios.

    model = DEFAULT_MODEL                                   # constants below, calibrated by the backtest
    rec = scale_record(model, steps_ratio=3.3, size_ratio=2.6, variant_sd_rel={"total": 0.002})
    sd = loss_sd(rec, pred)                                 # absolute sd of each prediction's scale error
    lo, hi = widen(pred, base_half, sd, level=0.9)          # combined in quadrature with the mixing-law part

The relative error e = pred / observed - 1 of a prediction at the target has two parts:
- common mode, shared by every mixture at the target (a step law that over-predicts the drop does so for all):
  sd_common = sqrt((a ln r_steps)^2 + (b ln r_size)^2). It widens absolute losses and cancels in gains.
- per mixture: sd_mixture = sqrt((c ln r_steps)^2 + (d ln r_size)^2), independent between mixtures, so a gain
  x - baseline carries it twice (once per mixture).
On top of both, the measured spread across scale-law variants (step-law fit window x exponent sharing; the
pipeline's `mixlaw.gains.scale_variants`) enters in quadrature as `variant_sd_rel` (losses) and the variants'
spread of the gain itself (gains), and the mixing-law bootstrap (`mixlaw.uncertainty.Ensemble.interval`) as the
half-width the scale part is added to. r_steps = target step / largest fitted step, r_size = target params /
largest fitted params (both >= 1 when extrapolating; ln r = 0 inside the fitted range).

The coefficients are fitted by `fit_model` on the backtest (`benchmarks/extrapolation_backtest.py`): method of
moments on each (size, step) group's mean relative error (common) and within-group scatter (per mixture) beyond
what the variants and the checkpoint noise explain, non-negative least squares on ln^2 r, then one conformal
factor per part so that 90% of the calibration rows' errors fall inside (per mixture on the gains, common mode
on the losses). Calibration, never on the scenario scored: the step coefficients come from the 3x step
scenario (5Mix <= 10k -> 30k, the scenario the step setting is chosen on; its own rows are in-sample and
flagged), the size coefficients from the other family's size scenario. The shipped constants below: the 3x step
scenario and both families' size scenarios, the pipeline's step setting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls
from scipy.stats import norm

from mixlaw.errors import MixlawInputError

RECORD_KIND = "scale_error"
RECORD_VERSION = 1
COEFFICIENTS = ("steps_common", "size_common", "steps_mixture", "size_mixture")


@dataclass(frozen=True)
class ScaleErrorModel:
    """Relative sd per unit ln(ratio) of the common-mode (a, b) and per-mixture (c, d) extrapolation error."""

    steps_common: float = 0.0
    size_common: float = 0.0
    steps_mixture: float = 0.0
    size_mixture: float = 0.0
    calibrated_on: str = "uncalibrated"

    def common_sd(self, steps_ratio: float, size_ratio: float) -> float:
        """Relative sd of the error shared by every mixture at the target."""
        return math.hypot(self.steps_common * _log(steps_ratio), self.size_common * _log(size_ratio))

    def mixture_sd(self, steps_ratio: float, size_ratio: float) -> float:
        """Relative sd of one mixture's own error (independent between mixtures)."""
        return math.hypot(self.steps_mixture * _log(steps_ratio), self.size_mixture * _log(size_ratio))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Fitted by benchmarks/extrapolation_backtest.py (`fit_model` on 5Mix/steps_3x + 5Mix/size + RedPajama/size
# with the pipeline's step setting; benchmarks/results/extrapolation_backtest.json "scale_error.shipped").
DEFAULT_MODEL = ScaleErrorModel(
    # nearly 0 at 3x steps: the step-law variants' measured spread (1.4-2.0% of the loss) already covers the
    # common-mode errors (+1.7%, -1.3%, +0.5% per size); the size terms come from the size scenarios
    steps_common=0.00049670,
    size_common=0.00236016,
    steps_mixture=0.0,  # 4.4e-11 fitted
    size_mixture=0.00407026,
    calibrated_on="5Mix/steps_3x + 5Mix/size + RedPajama/size + Trainer/size (benchmarks/extrapolation_backtest.py, "
    "pipeline step setting)",
)


def _log(ratio: float) -> float:
    """ln of an extrapolation ratio; 0 inside the fitted range (ratio <= 1)."""
    return math.log(ratio) if ratio > 1 else 0.0


def z_value(level: float) -> float:
    return float(norm.ppf(0.5 + level / 2))


# --------------------------------------------------------------------------------------------- the record


def scale_record(
    model: ScaleErrorModel,
    steps_ratio: float,
    size_ratio: float,
    variant_sd_rel: Mapping[str, float] | None = None,
    n_variants: int = 0,
) -> dict[str, Any]:
    """The JSON-able record stored as `scale_uncertainty` in a target-scale LAW.json: the job's ratios, the
    model's coefficients and provenance, the resulting relative sds, and the measured variant spread
    (`variant_sd_rel`: {output name: relative sd of the loss across scale-law variants})."""
    return check_record(
        {
            "kind": RECORD_KIND,
            "version": RECORD_VERSION,
            "steps_ratio": float(steps_ratio),
            "size_ratio": float(size_ratio),
            "coefficients": {k: float(getattr(model, k)) for k in COEFFICIENTS},
            "calibrated_on": model.calibrated_on,
            "common_sd_rel": model.common_sd(steps_ratio, size_ratio),
            "mixture_sd_rel": model.mixture_sd(steps_ratio, size_ratio),
            "variant_sd_rel": {k: float(v) for k, v in (variant_sd_rel or {}).items()},
            "n_variants": int(n_variants),
        }
    )


def _number(value: Any, key: str, source: str, positive: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        want = "a positive number" if positive else "a finite number >= 0"
        raise MixlawInputError(f"{source}: scale_uncertainty.{key} must be {want}, got {value!r:.60}")
    return float(value)


def check_record(record: Any, source: str = "law") -> dict[str, Any]:
    """The `scale_uncertainty` record validated (types, ranges, kind); a one-line MixlawInputError naming
    `source` and the key otherwise."""
    if not isinstance(record, Mapping):
        raise MixlawInputError(f"{source}: scale_uncertainty must be an object, got {record!r:.60}")
    if record.get("kind") != RECORD_KIND:
        raise MixlawInputError(f"{source}: scale_uncertainty.kind must be {RECORD_KIND!r}")
    version = record.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > RECORD_VERSION:
        raise MixlawInputError(
            f"{source}: scale_uncertainty.version {version!r} is not one this mixlaw reads (<= {RECORD_VERSION})"
        )
    out = dict(record)
    for key in ("steps_ratio", "size_ratio"):
        out[key] = _number(record.get(key), key, source, positive=True)
    for key in ("common_sd_rel", "mixture_sd_rel"):
        out[key] = _number(record.get(key), key, source)
    coefficients = record.get("coefficients")
    if not isinstance(coefficients, Mapping):
        raise MixlawInputError(f"{source}: scale_uncertainty.coefficients must be an object")
    out["coefficients"] = {k: _number(coefficients.get(k), f"coefficients.{k}", source) for k in COEFFICIENTS}
    variants = record.get("variant_sd_rel", {})
    if not isinstance(variants, Mapping):
        raise MixlawInputError(f"{source}: scale_uncertainty.variant_sd_rel must be an object")
    out["variant_sd_rel"] = {str(k): _number(v, f"variant_sd_rel.{k}", source) for k, v in variants.items()}
    return out


# --------------------------------------------------------------------------------------------- intervals


def loss_sd(record: Mapping[str, Any], pred: np.ndarray, name: str = "total") -> np.ndarray:
    """Absolute sd of the scale error of predicted losses `pred` (n,) of output `name`: common mode, per
    mixture and the measured variant spread, in quadrature (relative sds times the prediction)."""
    pred = np.asarray(pred, dtype=float)
    variant = record.get("variant_sd_rel", {}).get(name, record.get("variant_sd_rel", {}).get("total", 0.0))
    rel = math.sqrt(record["common_sd_rel"] ** 2 + record["mixture_sd_rel"] ** 2 + variant**2)
    return np.abs(pred) * rel


def gain_sd(
    record: Mapping[str, Any], pred: np.ndarray, pred_baseline: float | np.ndarray, variant_gain_sd=0.0
) -> np.ndarray:
    """Absolute sd of the scale error of gains baseline - x: the per-mixture part of both mixtures and the
    variants' spread of the gain itself (`variant_gain_sd`, absolute); the common mode cancels."""
    s = record["mixture_sd_rel"]
    pred = np.asarray(pred, dtype=float)
    own = s * np.sqrt(pred**2 + np.asarray(pred_baseline, dtype=float) ** 2)
    return np.sqrt(own**2 + np.asarray(variant_gain_sd, dtype=float) ** 2)


def widen(
    center: np.ndarray, lo: np.ndarray, hi: np.ndarray, sd: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """An interval [lo, hi] around `center` widened by the scale sd `sd`: each side's half-width and z * sd are
    added in quadrature."""
    z = z_value(level)
    center, lo, hi, sd = (np.asarray(a, dtype=float) for a in (center, lo, hi, sd))
    return (
        center - np.sqrt((center - lo) ** 2 + (z * sd) ** 2),
        center + np.sqrt((hi - center) ** 2 + (z * sd) ** 2),
    )


def variant_spread(stack: np.ndarray) -> np.ndarray:
    """sd across scale-law variants, stack (V, n) with the pipeline's own setting first: the robust sd with >= 3
    rows, else the difference of the two over sqrt 2; zeros with one row."""
    stack = np.asarray(stack, dtype=float)
    if len(stack) >= 3:
        lo, hi = np.nanpercentile(stack, [15.865, 84.135], axis=0)
        return 0.5 * (hi - lo)
    if len(stack) == 2:
        return np.abs(stack[1] - stack[0]) / math.sqrt(2)
    return np.zeros(stack.shape[1:])


# --------------------------------------------------------------------------------------------- calibration


@dataclass
class GroupErrors:
    """One backtest group (one size at one step, every mixture): relative errors of the predictions (n,), the
    variants' relative sd of each loss (n,) and of each gain over the reference (n,, NaN for the reference),
    the relative gain errors (n,, NaN for the reference), the relative checkpoint noise, and the ratios."""

    steps_ratio: float
    size_ratio: float
    rel_error: np.ndarray
    variant_sd_rel: np.ndarray
    gain_error_rel: np.ndarray
    gain_variant_sd_rel: np.ndarray
    noise_rel: float = 0.0
    label: str = ""


def _nnls_coefficients(groups: Sequence[GroupErrors], y: np.ndarray) -> tuple[float, float]:
    A = np.array([[_log(g.steps_ratio) ** 2, _log(g.size_ratio) ** 2] for g in groups])
    if not len(A) or not A.any():
        return 0.0, 0.0
    coef, _ = nnls(A, np.maximum(y, 0.0))
    return math.sqrt(coef[0]), math.sqrt(coef[1])


def _required_factor(error: np.ndarray, part: np.ndarray, rest: np.ndarray, level: float) -> float:
    """Smallest k such that |error| <= z * sqrt((k part)^2 + rest^2) for the conformal `level` share of rows
    (error, part, rest (n,) standardized the same way); 1 without rows or where part is 0 everywhere."""
    ok = np.isfinite(error) & np.isfinite(part) & np.isfinite(rest)
    error, part, rest = error[ok], part[ok], rest[ok]
    if not len(error) or not (part > 0).any():
        return 1.0
    z = z_value(level)
    need = np.maximum((error / z) ** 2 - rest**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(need == 0, 0.0, np.sqrt(need) / np.where(part > 0, part, 0.0))
    k = np.sort(np.where(np.isfinite(k), k, np.inf))
    rank = min(math.ceil((len(k) + 1) * level), len(k))
    return float(k[rank - 1]) if np.isfinite(k[rank - 1]) else float(k[np.isfinite(k)].max(initial=1.0))


def fit_model(groups: Sequence[GroupErrors], calibrated_on: str, level: float = 0.9) -> ScaleErrorModel:
    """Coefficients from backtest groups (see the module docstring): moments -> NNLS on ln^2 r -> one conformal
    factor per part (per mixture first, on the gains; then the common mode, on the losses)."""
    groups = [g for g in groups if len(g.rel_error)]
    common_y = np.array(
        [
            np.mean(g.rel_error) ** 2 - np.mean(g.variant_sd_rel**2) - g.noise_rel**2 / len(g.rel_error)
            for g in groups
        ]
    )
    a, b = _nnls_coefficients(groups, common_y)
    within = [g for g in groups if len(g.rel_error) >= 3]
    mixture_y = np.array(
        [
            np.var(g.rel_error, ddof=1) - np.nanmean(g.gain_variant_sd_rel**2) / 2 - g.noise_rel**2
            for g in within
        ]
    )
    c, d = _nnls_coefficients(within, mixture_y)
    unit = ScaleErrorModel(a, b, c, d, calibrated_on)
    error, part, rest = [], [], []
    for g in groups:
        ok = np.isfinite(g.gain_error_rel)
        error.append(np.abs(g.gain_error_rel[ok]))
        part.append(np.full(ok.sum(), math.sqrt(2) * unit.mixture_sd(g.steps_ratio, g.size_ratio)))
        rest.append(np.sqrt(g.gain_variant_sd_rel[ok] ** 2 + 2 * g.noise_rel**2))
    if c or d:
        k = _required_factor(*(np.concatenate(v) for v in (error, part, rest)), level)
        c, d = c * k, d * k
    unit = ScaleErrorModel(a, b, c, d, calibrated_on)
    error, part, rest = [], [], []
    for g in groups:
        n = len(g.rel_error)
        error.append(np.abs(g.rel_error))
        part.append(np.full(n, unit.common_sd(g.steps_ratio, g.size_ratio)))
        s = unit.mixture_sd(g.steps_ratio, g.size_ratio)
        rest.append(np.sqrt(s**2 + g.variant_sd_rel**2 + g.noise_rel**2))
    if a or b:
        k = _required_factor(*(np.concatenate(v) for v in (error, part, rest)), level)
        a, b = a * k, b * k
    return ScaleErrorModel(a, b, c, d, calibrated_on)


__all__ = [
    "DEFAULT_MODEL",
    "GroupErrors",
    "ScaleErrorModel",
    "check_record",
    "fit_model",
    "gain_sd",
    "loss_sd",
    "scale_record",
    "variant_spread",
    "widen",
]
