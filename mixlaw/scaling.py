"""Scale laws over training steps (or tokens), model size, and both at once.

- step law   L(S)    = E + B (S / S_ref)^-beta                      per (mixture, model size, target)
- size law   L(N)    = E + A (N / N_ref)^-alpha                     per (mixture, target)
- joint law  L(N, D) = E + A (N / N_ref)^-alpha + B (D / D_ref)^-beta per (mixture, target)   (Chinchilla form
  with mixture-dependent coefficients, in the spirit of Shukor et al. 2025's joint law)

`share` says which curves use one exponent: "none" (each curve its own), "mixture" (the curves of one mixture,
at one model size for the step law) or "all" (every curve; per model size for the step law).

Fitting is a profile (variable-projection) search plus a polish with the engine:
1. For fixed exponents every law is linear in its non-negative coefficients (E, A, B), which are solved exactly
   per curve (non-negative least squares by enumerating active sets, Huber by reweighting), vectorised over
   all curves and candidate exponents.
2. Exponents: a grid over the allowed range (`STEP_EXPONENT`, `SIZE_EXPONENT`), then zoomed grids around each
   share group's best, so shared exponents are found globally, not by a local search from one start.
3. `fitting.fit_multistart` polishes each share group jointly (log coefficients, exponents) from the profile
   solution when the group is small; the result is kept only if it lowers the cost and stays in range.

Exponents are bounded: a power law fitted on a narrow range can pick a tiny exponent with a huge coefficient
(or the reverse) that fits equally well and extrapolates badly; the bounds keep it to physical values.

Also here: `late_window` (the validated fit window, STEP_WINDOW), `step_regime` (are the proxies in the regime
of the laws they fit: exponents at a bound, end curvature in log-log, tokens per parameter) and the
schedule-aware `AnnealingLaw` L = L0 + A S1^-alpha - C S2 over learning-rate areas (`lr_areas`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.fitting import fit_multistart, huber

SHARE_OPTIONS = ("none", "mixture", "all")
# Allowed beta of the step law (and of the token term of the joint law). The lower end is Chinchilla's data
# exponent (0.28), rounded: on a 3x range of steps, E, B and beta trade off, and a fitted beta below it comes
# from that degeneracy (or from a learning-rate decay at the end of short runs) and over-extrapolates the drop.
# Validated by benchmarks/extrapolation_backtest.py (chosen on 5Mix <= 10k -> 30k, scored on the rest): with
# STEP_WINDOW and STEP_SHARE_VALIDATED the wide range STEP_EXPONENT_WIDE ties on 5Mix and is worse on
# RedPajama (70M-160M <= 14k -> 410M at 30k: 5.5% vs 3.2%), so the range stays.
STEP_EXPONENT = (0.3, 1.5)
STEP_EXPONENT_WIDE = (0.05, 3.0)  # the range the backtest compared it with
# Fit window of the step law: only checkpoints >= (last fitted step) / STEP_WINDOW. The first checkpoints of a
# run fall faster than the later power law (warmup transient: on 5Mix the exponent fitted on 3k-10k is 1.4 at
# 70M, on 10k-30k 0.54), so fits that include them flatten too soon and under-predict the later drop. On the
# backtest (same selection) it cut the error of 5Mix 30k -> 90k/100k from 2.2% to 0.44% (with
# STEP_SHARE_VALIDATED). None = every checkpoint (the old behaviour, still the pipeline's default).
STEP_WINDOW = 3.0
# Exponent sharing chosen on the same backtest: one beta per model size over every mixture and target ("all");
# per mixture ("mixture", the pipeline's default today) fits noise in short windows.
STEP_SHARE_VALIDATED = "all"
SIZE_EXPONENT = (0.05, 1.5)  # allowed alpha of the size law (and of the parameter term of the joint law)
DEFAULT_DELTA = 0.02  # Huber delta, in loss units (nats)
POLISH_MAX_PARAMS = 64


# --------------------------------------------------------------------------------------------- profile fitting


def _basis(logx: np.ndarray, exps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Basis [1, exp(-e_1 logx_1), ...] for exponents exps (K, k) at points logx (n, k) (normalized logs).

    Returns Phi (K, n, 1 + k) and dPhi/de (K, n, k) (derivative of column 1 + j w.r.t. exponent j).
    """
    z = np.exp(-exps[:, None, :] * logx[None, :, :])  # (K, n, k)
    phi = np.concatenate([np.ones(z.shape[:2] + (1,)), z], axis=2)
    return phi, -logx[None, :, :] * z


_SUBSETS: dict[int, list[tuple[int, ...]]] = {}


def _subsets(q: int) -> list[tuple[int, ...]]:
    if q not in _SUBSETS:
        _SUBSETS[q] = [s for r in range(1, q + 1) for s in itertools.combinations(range(q), r)]
    return _SUBSETS[q]


def nonneg_lstsq(phi: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least squares with non-negative coefficients, batched and exact for small q.

    phi (K, n, q), y (K, n) (zeros where w = 0), w (K, n) -> coef (K, q). Enumerates active sets: the optimum
    is the best unconstrained solution on a support whose coefficients are all >= 0.
    """
    K, n, q = phi.shape
    best_sse = np.full(K, np.inf)
    best = np.zeros((K, q))
    pw = phi * w[:, :, None]
    gram = pw.transpose(0, 2, 1) @ phi  # (K, q, q)
    rhs = (pw.transpose(0, 2, 1) @ y[:, :, None])[:, :, 0]
    yy = (w * y * y).sum(axis=1)
    for subset in _subsets(q):
        idx = np.array(subset)
        G = gram[:, idx[:, None], idx[None, :]]
        G = G + 1e-12 * (np.einsum("kii->k", G)[:, None, None] + 1e-30) * np.eye(len(idx))
        b = rhs[:, idx]
        try:
            c = np.linalg.solve(G, b[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            c = np.stack([np.linalg.lstsq(g, bb, rcond=None)[0] for g, bb in zip(G, b)])
        sse = yy - 2 * (c * b).sum(axis=1) + np.einsum("ki,kij,kj->k", c, G, c)
        ok = (c >= 0).all(axis=1) & np.isfinite(sse) & (sse < best_sse)
        best_sse[ok] = sse[ok]
        full = np.zeros((K, q))
        full[:, idx] = c
        best[ok] = full[ok]
    return best


def _profile_cost(
    logx: np.ndarray, Y: np.ndarray, mask: np.ndarray, exps: np.ndarray, delta: float | None, irls: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Best non-negative coefficients and Huber cost of each curve at given exponents.

    Y (K, n) with mask (K, n); exps (K, k). Returns coef (K, 1 + k), cost (K,).
    """
    phi, _ = _basis(logx, exps)
    y0 = np.where(mask, Y, 0.0)
    w = mask.astype(float)
    for _ in range(irls if delta is not None else 1):
        coef = nonneg_lstsq(phi, y0, w)
        r = np.where(mask, (phi @ coef[:, :, None])[:, :, 0] - y0, 0.0)
        if delta is None:
            break
        w = np.where(mask, np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300)), 0.0)
    cost = huber(r, delta).sum(axis=1)
    return coef, cost


def _group_sum(cost: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(m, C) per-curve costs -> (m, n_groups) summed over each share group."""
    out = np.zeros((cost.shape[0], n_groups))
    np.add.at(out.T, groups, cost.T)
    return out


def profile_fit(
    logx: np.ndarray,
    Y: np.ndarray,
    groups: np.ndarray,
    bounds: list[tuple[float, float]],
    delta: float | None = DEFAULT_DELTA,
    grid: int | None = None,
    rounds: int = 5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit  y = c_0 + sum_j c_j exp(-e_j logx_j)  (c >= 0) to every curve, exponents e shared within `groups`.

    logx (n, k) log of the normalized variables; Y (C, n) with NaN = missing; groups (C,) share-group ids
    (0..G-1); bounds: k (lo, hi) exponent ranges. Returns exps (C, k), coef (C, 1 + k), cost (C,).
    """
    C, n = Y.shape
    k = logx.shape[1]
    mask = ~np.isnan(Y)
    G = int(groups.max()) + 1
    lo = np.log([b[0] for b in bounds])
    hi = np.log([b[1] for b in bounds])
    m = grid or (28 if k == 1 else 12)
    axes = [np.linspace(lo[j], hi[j], m) for j in range(k)]
    cand = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, k)  # (m^k, k) log exponents
    costs = []
    for chunk in np.array_split(cand, max(1, len(cand) * C * n // 2_000_000)):
        e = np.repeat(np.exp(chunk), C, axis=0)
        _, cost = _profile_cost(logx, np.tile(Y, (len(chunk), 1)), np.tile(mask, (len(chunk), 1)), e, delta)
        costs.append(_group_sum(cost.reshape(len(chunk), C), groups, G))
    total = np.concatenate(costs)  # (m^k, G)
    best_u = cand[np.argmin(total, axis=0)]  # (G, k)
    best_cost = total.min(axis=0)
    h = (hi - lo) / (m - 1)
    offsets_1d = np.linspace(-1.0, 1.0, 7 if k == 1 else 5)
    offsets = np.stack(np.meshgrid(*[offsets_1d] * k, indexing="ij"), axis=-1).reshape(-1, k)
    for _ in range(rounds):
        trial = np.clip(best_u[None] + offsets[:, None, :] * h, lo, hi)  # (o, G, k)
        e = np.exp(trial[:, groups, :]).reshape(-1, k)  # (o * C, k)
        _, cost = _profile_cost(
            logx, np.tile(Y, (len(offsets), 1)), np.tile(mask, (len(offsets), 1)), e, delta
        )
        total = _group_sum(cost.reshape(len(offsets), C), groups, G)
        pick = np.argmin(total, axis=0)
        better = total[pick, np.arange(G)] <= best_cost
        best_u[better] = trial[pick, np.arange(G)][better]
        best_cost = np.minimum(best_cost, total[pick, np.arange(G)])
        h = h / 3.0
    exps = np.exp(best_u[groups])
    coef, cost = _profile_cost(logx, Y, mask, exps, delta)
    return exps, coef, cost


def _polish(
    logx: np.ndarray,
    Y: np.ndarray,
    groups: np.ndarray,
    exps: np.ndarray,
    coef: np.ndarray,
    cost: np.ndarray,
    bounds: list[tuple[float, float]],
    delta: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint refinement of each share group (log coefficients + exponents) with `fit_multistart`."""
    C, n = Y.shape
    k = logx.shape[1]
    q = 1 + k
    G = int(groups.max()) + 1
    members = [np.flatnonzero(groups == g) for g in range(G)]
    width = max(len(mm) for mm in members)
    P = width * q + k
    if P > POLISH_MAX_PARAMS:
        return exps, coef, cost
    # Problem g: its curves padded to `width` (padding = all-NaN data), y flattened curve-major.
    slot = np.full((G, width), -1)
    for g, mm in enumerate(members):
        slot[g, : len(mm)] = mm
    y = np.full((G, width, n), np.nan)
    valid = slot >= 0
    y[valid] = Y[slot[valid]]
    start = np.zeros((G, P))
    c0 = np.ones((G, width, q)) * 1e-3
    c0[valid] = np.maximum(coef[slot[valid]], 1e-10)
    start[:, : width * q] = np.log(c0).reshape(G, -1)
    start[:, width * q :] = np.log([exps[mm[0]] for mm in members])

    def model(theta: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Kt = len(theta)
        c = np.exp(theta[:, : width * q]).reshape(Kt, width, q)
        e = np.exp(theta[:, width * q :])
        phi, dphi = _basis(logx, e)  # (Kt, n, q), (Kt, n, k)
        pred = np.einsum("knq,kwq->kwn", phi, c)
        jac = np.zeros((Kt, width, n, P))
        for w in range(width):
            jac[:, w, :, w * q : (w + 1) * q] = phi * c[:, w, None, :]
            jac[:, w, :, width * q :] = dphi * c[:, w, None, 1:] * e[:, None, :]
        return pred.reshape(Kt, width * n), jac.reshape(Kt, width * n, P)

    result = fit_multistart(model, y.reshape(G, width * n), start[:, None, :], delta=delta, polish=0)
    new_exps = np.exp(result.theta[:, width * q :])
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    old_cost = _group_sum(cost[None], groups, G)[0]
    ok = (result.cost < old_cost - 1e-12) & (new_exps >= lo).all(axis=1) & (new_exps <= hi).all(axis=1)
    exps, coef, cost = exps.copy(), coef.copy(), cost.copy()
    new_coef = np.exp(result.theta[:, : width * q]).reshape(G, width, q)
    for g in np.flatnonzero(ok):
        mm = members[g]
        exps[mm] = new_exps[g]
        coef[mm] = new_coef[g, : len(mm)]
        phi, _ = _basis(logx, exps[mm])
        r = np.where(np.isnan(Y[mm]), 0.0, np.einsum("knq,kq->kn", phi, coef[mm]) - np.nan_to_num(Y[mm]))
        cost[mm] = huber(r, delta).sum(axis=1)
    return exps, coef, cost


# --------------------------------------------------------------------------------------------- fitted curve sets


@dataclass
class CurveLaws:
    """A fitted set of curves L = E + sum_j c_j (x_j / ref_j)^-e_j, one per row of `keys`.

    form "step" (variables [step or tokens]), "size" ([params]) or "joint" ([params, step or tokens]).
    coef (C, 1 + k) = [E, B] or [E, A, B]; exps (C, k) = [beta], [alpha] or [alpha, beta].
    """

    form: str
    variables: list[str]
    ref: list[float]
    share: str
    keys: list[dict[str, Any]]
    coef: np.ndarray
    exps: np.ndarray
    n_points: np.ndarray
    rmse: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Loss of each curve at points x (m, k) in raw units (steps, tokens, params) -> (C, m)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        if x.shape[1] != len(self.variables):
            x = x.reshape(-1, len(self.variables))
        coef = self.coef if rows is None else self.coef[rows]
        exps = self.exps if rows is None else self.exps[rows]
        logx = np.log(x / np.array(self.ref))
        phi, _ = _basis(logx, exps)
        return np.einsum("cmq,cq->cm", phi, coef)

    def index(self, **key: Any) -> int:
        """Row of the curve whose key matches all given fields."""
        for i, k in enumerate(self.keys):
            if all(str(k.get(f)) == str(v) for f, v in key.items()):
                return i
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        names = {
            "step": (["E", "B"], ["beta"]),
            "size": (["E", "A"], ["alpha"]),
            "joint": (["E", "A", "B"], ["alpha", "beta"]),
        }[self.form]
        curves = []
        for i, key in enumerate(self.keys):
            row = dict(key)
            row.update({n: float(v) for n, v in zip(names[0], self.coef[i])})
            row.update({n: float(v) for n, v in zip(names[1], self.exps[i])})
            row.update({"n_points": int(self.n_points[i]), "rmse": float(self.rmse[i])})
            curves.append(row)
        v, r = self.variables, self.ref
        if self.form == "step":
            formula = f"E + B * ({v[0]} / {r[0]:g})^-beta"
        elif self.form == "size":
            formula = f"E + A * (params / {r[0]:g})^-alpha"
        else:
            formula = f"E + A * (params / {r[0]:g})^-alpha + B * ({v[1]} / {r[1]:g})^-beta"
        return {
            "kind": f"{self.form}_law",
            "formula": formula,
            "variables": self.variables,
            "ref": self.ref,
            "share": self.share,
            **self.meta,
            "curves": curves,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CurveLaws:
        form = data["kind"].removesuffix("_law")
        names = {
            "step": (["E", "B"], ["beta"]),
            "size": (["E", "A"], ["alpha"]),
            "joint": (["E", "A", "B"], ["alpha", "beta"]),
        }[form]
        fixed = set(names[0]) | set(names[1]) | {"n_points", "rmse"}
        curves = data["curves"]
        meta = {
            k: v
            for k, v in data.items()
            if k not in ("kind", "formula", "variables", "ref", "share", "curves")
        }
        return cls(
            form,
            data["variables"],
            data["ref"],
            data["share"],
            [{k: v for k, v in c.items() if k not in fixed} for c in curves],
            np.array([[c[n] for n in names[0]] for c in curves], dtype=float),
            np.array([[c[n] for n in names[1]] for c in curves], dtype=float),
            np.array([c["n_points"] for c in curves]),
            np.array([c["rmse"] for c in curves], dtype=float),
            meta,
        )


def fit_curves(
    form: str,
    x: np.ndarray,
    Y: np.ndarray,
    keys: list[dict[str, Any]],
    share_groups: np.ndarray,
    share: str,
    variables: list[str],
    delta: float | None = DEFAULT_DELTA,
    bounds: list[tuple[float, float]] | None = None,
    polish: bool = True,
) -> CurveLaws:
    """Fit curves of one form on a common set of points.

    x (n, k) raw variable values (steps/tokens/params), Y (C, n) losses with NaN = not observed,
    share_groups (C,) ids of curves sharing exponents. Reference points (the x that the coefficients refer to)
    are the largest value of each variable.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[1] != len(x):
        raise ValueError(f"Y must be (C, {len(x)}), got {Y.shape}")
    if (x <= 0).any():
        raise MixlawInputError(f"{form} law: {', '.join(variables)} must be positive")
    if bounds is None:
        bounds = {"step": [STEP_EXPONENT], "size": [SIZE_EXPONENT], "joint": [SIZE_EXPONENT, STEP_EXPONENT]}[
            form
        ]
    n_points = (~np.isnan(Y)).sum(axis=1)
    # An exponent fixed by its bounds (lo == hi) is not fitted: one point fewer is enough.
    needed = {"step": 3, "size": 3, "joint": 4}[form] - sum(1 for lo, hi in bounds if lo == hi)
    if (n_points < needed).any():
        bad = keys[int(np.argmin(n_points))]
        raise MixlawInputError(
            f"{form} law: curve {bad} has {int(n_points.min())} points, needs at least {needed}"
        )
    ref = x.max(axis=0)
    logx = np.log(x / ref)
    _, groups = np.unique(share_groups, return_inverse=True)
    exps, coef, cost = profile_fit(logx, Y, groups, bounds, delta)
    if polish:
        exps, coef, cost = _polish(logx, Y, groups, exps, coef, cost, bounds, delta)
    phi, _ = _basis(logx, exps)
    residual = np.einsum("cnq,cq->cn", phi, coef) - Y
    rmse = np.sqrt(np.nanmean(residual**2, axis=1))
    return CurveLaws(
        form,
        list(variables),
        ref.tolist(),
        share,
        keys,
        coef,
        exps,
        n_points,
        rmse,
        {"delta": delta, "exponent_bounds": [list(b) for b in bounds]},
    )


def late_window(x: np.ndarray, window: float | None = STEP_WINDOW, last: float | None = None) -> np.ndarray:
    """Mask of the points inside the late fit window: x >= last / window (`last` defaults to max(x)); every
    point when `window` is None."""
    x = np.asarray(x, dtype=float)
    if window is None:
        return np.ones(x.shape, bool)
    if window < 1:
        raise MixlawInputError(f"step fit window must be >= 1 (a ratio of steps), got {window:g}")
    return x >= (x.max() if last is None else last) / window * (1 - 1e-12)


# --------------------------------------------------------------------------------------------- diagnosis


def end_shape(law: CurveLaws) -> tuple[np.ndarray, np.ndarray]:
    """Local log-log slope and curvature of each fitted step curve at its last fitted point (x = ref).

    With u = log S and L = E + B e^(-beta u): slope = d log L / du, curvature = d^2 log L / du^2. A pure power
    law (E = 0) is straight (curvature 0); an irreducible loss bends it flat (curvature > 0). Returns (C,) each.
    """
    E, B, beta = law.coef[:, 0], law.coef[:, -1], law.exps[:, -1]
    L = E + B
    d1, d2 = -beta * B, beta**2 * B
    return d1 / L, d2 / L - (d1 / L) ** 2


def step_regime(
    law: CurveLaws,
    params: dict[str, float] | None = None,
    tokens_per_step: float | None = None,
    tol: float = 1e-3,
) -> dict[str, Any]:
    """Regime of a set of step fits (issue 14 item 6): are the proxies where the laws they fit hold?

    Reports the share of curves whose exponent sits at a bound of the allowed range (the fit wanted to leave
    it: the bound, not the data, sets the extrapolation), the exponent's quantiles, the log-log slope and
    curvature at the end of the fitted curves (`end_shape`), and, when `params` maps each curve's `model` to
    its parameter count, the tokens per parameter at the last fitted point (`tokens_per_step` converts steps
    to tokens; a `tokens` variable needs none). Chinchilla-optimal training is about 20 tokens per parameter.
    """
    if law.form != "step":
        raise ValueError(f"step_regime needs step laws, got {law.form} laws")
    lo, hi = law.meta.get("exponent_bounds", [STEP_EXPONENT])[-1]
    beta = law.exps[:, -1]
    at_lo = np.isclose(beta, lo, rtol=tol)
    at_hi = np.isclose(beta, hi, rtol=tol)
    slope, curvature = end_shape(law)
    out: dict[str, Any] = {
        "n_curves": int(len(beta)),
        "exponent_bounds": [float(lo), float(hi)],
        "at_lower_bound": float(at_lo.mean()),
        "at_upper_bound": float(at_hi.mean()),
        "at_bound": float((at_lo | at_hi).mean()),
        "beta_quantiles": dict(zip(("q10", "q50", "q90"), np.quantile(beta, [0.1, 0.5, 0.9]).tolist())),
        "end_slope_median": float(np.median(slope)),
        "end_curvature_median": float(np.median(curvature)),
        "reducible_share_median": float(np.median(law.coef[:, -1] / (law.coef[:, 0] + law.coef[:, -1]))),
    }
    if params:
        last = law.ref[0] * (1.0 if law.variables[0] == "tokens" else (tokens_per_step or np.nan))
        models = sorted({str(k.get("model")) for k in law.keys if k.get("model") is not None}, key=str)
        per_model = {}
        for m in models:
            rows = np.array([str(k.get("model")) == m for k in law.keys])
            if m not in params:
                continue
            per_model[m] = {
                "tokens_per_param": float(last / params[m]) if np.isfinite(last) else None,
                "at_bound": float((at_lo | at_hi)[rows].mean()),
                "beta_median": float(np.median(beta[rows])),
                "end_curvature_median": float(np.median(curvature[rows])),
            }
        out["per_model"] = per_model
    return out


# A bad regime (flagged in summary.md): this share of step fits at an exponent bound, or fewer tokens per
# parameter than this at the last fitted point (Chinchilla-optimal training is about 20).
REGIME_MAX_AT_BOUND = 0.25
REGIME_MIN_TOKENS_PER_PARAM = 20.0


def regime_warnings(regime: dict[str, Any]) -> list[str]:
    """One line per sign that the proxies are outside the regime of their step laws (`step_regime`)."""
    out = []
    if regime.get("at_bound", 0.0) >= REGIME_MAX_AT_BOUND:
        lo, hi = regime["exponent_bounds"]
        out.append(
            f"{100 * regime['at_bound']:.0f}% of the step fits sit at an exponent bound ({lo:g} or {hi:g}): "
            "the bound, not the data, sets their extrapolation"
        )
    for model, row in (regime.get("per_model") or {}).items():
        tpp = row.get("tokens_per_param")
        if tpp is not None and tpp < REGIME_MIN_TOKENS_PER_PARAM:
            out.append(
                f"{model}: {tpp:.1f} tokens per parameter at the last fitted point (< "
                f"{REGIME_MIN_TOKENS_PER_PARAM:g}): the curves may still be in their early, faster phase"
            )
    return out


# --------------------------------------------------------------------------------------------- schedule-aware


def lr_areas(lr: np.ndarray, decay: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """Forward and annealing areas of a learning-rate sequence (Tissue et al. 2024, "Scaling law with learning
    rate annealing").

    lr (n,) the learning rate of steps 1..n relative to its peak (warmup included). S1[s] = sum_{i<=s} lr_i
    (in peak-LR steps); S2[s] = sum_{i<=s} m_i with momentum m_i = decay m_{i-1} + (lr_{i-1} - lr_i): the
    annealing area, which grows while the LR falls and keeps growing briefly after it stops. Only decreases
    count: the rise of a warmup is not negative annealing (it would make S2 < 0 for a constant-LR run and tie C
    to the warmup length). Returns (S1, S2).
    """
    lr = np.asarray(lr, dtype=float)
    drop = np.maximum(0.0, np.concatenate([[0.0], lr[:-1] - lr[1:]]))
    m = np.zeros_like(lr)
    acc = 0.0
    for i, d in enumerate(drop):
        acc = decay * acc + d
        m[i] = acc
    return np.cumsum(lr), np.cumsum(m)


DECAYING_SCHEDULES = ("wsd",)  # runs-table `schedule` values whose learning rate decays (the trainer's)


def schedule_lr(
    length: int, schedule: str, warmup_steps: int = 20, cooldown_fraction: float = 0.2
) -> np.ndarray:
    """Learning rate (relative to its peak) of the `length` updates of a run trained to `length` steps with the
    built-in trainer's schedule (mixlaw.train.trainer: linear warmup, then constant; `wsd` decays it linearly to
    zero over the last max(1, round(cooldown_fraction x length)) updates). Shape (length,)."""
    if schedule not in ("constant", *DECAYING_SCHEDULES):
        raise MixlawInputError(f"schedule {schedule!r}: the annealing law knows constant and wsd")
    i = np.arange(length, dtype=float)
    lr = np.minimum(1.0, (i + 1) / warmup_steps) if warmup_steps else np.ones(length)
    if schedule == "wsd":
        c = max(1, round(cooldown_fraction * length))
        j = i - (length - c)
        lr = np.where(j >= 0, lr * (c - j) / c, lr)
    return lr


def schedule_areas(
    lengths: np.ndarray,
    schedule: str,
    warmup_steps: int = 20,
    cooldown_fraction: float = 0.2,
    decay: float = 0.999,
) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) (m,) at the end of runs of each length (steps) under one schedule (`schedule_lr`, `lr_areas`)."""
    ends = [lr_areas(schedule_lr(int(n), schedule, warmup_steps, cooldown_fraction), decay) for n in lengths]
    return np.array([a[-1] for a, _ in ends]), np.array([b[-1] for _, b in ends])


@dataclass
class AnnealingLaw:
    """Schedule-aware step law  L = L0 + A (S1 / S1_ref)^-alpha - C (S2 / S1_ref), one per curve.

    S1, S2 from `lr_areas`. A constant-LR run has S2 = 0 and reduces to the ordinary step law; a WSD cooldown
    or a cosine tail adds the annealing drop C S2. For fixed alpha the law is linear in its non-negative
    coefficients (L0, A, C), solved exactly (`nonneg_lstsq`); alpha is searched on a grid over `bounds`
    (shared by every curve of a share group). Learned: coef_ (C, 3) = [L0, A, C], alpha_ (C,), ref_.
    """

    bounds: tuple[float, float] = STEP_EXPONENT
    grid: int = 60

    def _phi(self, s1: np.ndarray, s2: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        x1 = s1 / self.ref_
        return np.stack(
            [
                np.ones((len(alpha), len(s1))),
                x1[None] ** -alpha[:, None],
                np.broadcast_to(-s2 / self.ref_, (len(alpha), len(s1))),
            ],
            axis=2,
        )

    def fit(
        self, s1: np.ndarray, s2: np.ndarray, Y: np.ndarray, groups: np.ndarray | None = None
    ) -> AnnealingLaw:
        """s1, s2 (n,) areas of each observed point; Y (C, n) losses (NaN = missing); groups (C,) share ids."""
        s1, s2 = np.asarray(s1, float), np.asarray(s2, float)
        Y = np.atleast_2d(np.asarray(Y, float))
        C = len(Y)
        groups = np.arange(C) if groups is None else np.unique(groups, return_inverse=True)[1]
        if ((~np.isnan(Y)).sum(axis=1) < 4).any():
            raise MixlawInputError("annealing law: every curve needs at least 4 points")
        self.ref_ = float(s1.max())
        mask = ~np.isnan(Y)
        y0, w = np.where(mask, Y, 0.0), mask.astype(float)
        alphas = np.exp(np.linspace(np.log(self.bounds[0]), np.log(self.bounds[1]), self.grid))
        cost = np.empty((len(alphas), C))
        for a, alpha in enumerate(alphas):
            phi = self._phi(s1, s2, np.full(C, alpha))
            coef = nonneg_lstsq(phi, y0, w)
            cost[a] = (w * ((phi @ coef[:, :, None])[:, :, 0] - y0) ** 2).sum(axis=1)
        group_cost = np.stack([_group_sum(c[None], groups, groups.max() + 1)[0] for c in cost])
        self.alpha_ = alphas[np.argmin(group_cost, axis=0)][groups]
        phi = self._phi(s1, s2, self.alpha_)
        self.coef_ = np.stack(
            [nonneg_lstsq(phi[i : i + 1], y0[i : i + 1], w[i : i + 1])[0] for i in range(C)]
        )
        return self

    def predict(self, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """Loss of every curve at areas (s1, s2) (m,) -> (C, m)."""
        s1, s2 = np.atleast_1d(np.asarray(s1, float)), np.atleast_1d(np.asarray(s2, float))
        phi = self._phi(s1, s2, self.alpha_)
        return np.einsum("cmq,cq->cm", phi, self.coef_)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "annealing_law",
            "formula": "L0 + A * (S1 / ref)^-alpha - C * S2 / ref",
            "bounds": list(self.bounds),
            "ref": self.ref_,
            "curves": [
                {"L0": float(c[0]), "A": float(c[1]), "C": float(c[2]), "alpha": float(a)}
                for c, a in zip(self.coef_, self.alpha_)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnnealingLaw:
        law = cls(tuple(data["bounds"]))
        law.ref_ = float(data["ref"])
        law.coef_ = np.array([[c["L0"], c["A"], c["C"]] for c in data["curves"]], dtype=float)
        law.alpha_ = np.array([c["alpha"] for c in data["curves"]], dtype=float)
        return law
