"""The report's figures: small functions, each taking ReportData and returning a matplotlib Figure or None.

`FIGURES` is the ordered list the report draws (pinned by tests/golden/report_figures.json). matplotlib is
imported lazily with the Agg backend, so `import mixlaw` never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixlaw.reporting.data import ReportData, mixture_vector

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY = OKABE_ITO[:6]
LOSS_UNIT = "nats/token"
WIDTH = 9.0  # inches; at 100 px/inch the page shows figures at 900 px, no sideways scrolling
MAX_PANELS = 12


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    make: Callable[[ReportData], Any]
    caption: str
    needs: str  # said when the figure is skipped


def pyplot():
    """matplotlib.pyplot on the Agg backend with the report's style (imported on first use)."""
    try:
        import matplotlib
    except ImportError:
        from mixlaw.errors import MixlawInputError

        raise MixlawInputError("reports need matplotlib: pip install 'mixlaw[report]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 10.5,
            "axes.titlesize": 11,
            "axes.labelsize": 10.5,
            "legend.fontsize": 9.5,
            "xtick.labelsize": 9.5,
            "ytick.labelsize": 9.5,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "svg.fonttype": "none",
            "axes.grid": True,
            "grid.alpha": 0.25,
        }
    )
    return plt


def _grid(n: int, columns: int = 4, height: float = 2.6, sharey: bool = False):
    plt = pyplot()
    cols = min(columns, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(WIDTH, height * rows + 0.8), squeeze=False, sharey=sharey, layout="constrained"
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _total_name(data: ReportData) -> str | None:
    law = data.law
    if law is None:
        return None
    prediction = law.predict(np.full((1, len(law.domains)), 1 / len(law.domains)))
    return "total" if "total" in prediction else next(iter(prediction))


def _optimum_x(data: ReportData) -> np.ndarray | None:
    return mixture_vector((data.optimum or {}).get("mixture"), data.domains)


def _baseline_x(data: ReportData) -> np.ndarray | None:
    baseline = (data.optimum or {}).get("baseline")
    return mixture_vector(baseline.get("mixture"), data.domains) if isinstance(baseline, dict) else None


# --------------------------------------------------------------------------------------------- figures


def cv_scatter(data: ReportData):
    """Cross-validated predicted against observed loss, one panel per target (total first), y = x dashed."""
    cv = data.cv
    if cv is None:
        return None
    names = list(cv.observed)[:MAX_PANELS]
    fig, axes = _grid(len(names), columns=4, height=2.35)
    for ax, name in zip(axes, names):
        obs, pred = cv.observed[name], cv.predicted[name]
        lo, hi = float(min(obs.min(), pred.min())), float(max(obs.max(), pred.max()))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", lw=1, color="0.45", label="y = x")
        ax.scatter(
            obs, pred, s=16, color=BLUE if name == "total" else GREEN, alpha=0.85, edgecolor="white", lw=0.4
        )
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal", adjustable="box")
        m = cv.metrics.get(name, {})
        ax.set_title(name, fontweight="bold" if name == "total" else "normal")
        ax.text(
            0.04,
            0.96,
            f"MAE {m.get('mae', np.nan):.4f}\nR² {m.get('r2', np.nan):.3f}",
            transform=ax.transAxes,
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.9, "pad": 2},
        )
        ax.locator_params(nbins=4)
    fig.supxlabel(f"{cv.observed_label} ({LOSS_UNIT})")
    fig.supylabel(f"held-out prediction ({LOSS_UNIT})")
    return fig


def slices(data: ReportData):
    """Predicted loss against each domain's share, the others kept in the optimum's proportions."""
    law, center = data.law, _optimum_x(data)
    name = _total_name(data)
    if law is None or name is None:
        return None
    domains = law.domains
    if center is None:
        center = np.full(len(domains), 1 / len(domains))
    baseline = _baseline_x(data)
    grid = np.linspace(0, 1, 201)
    fig, axes = _grid(len(domains), columns=4, height=2.5, sharey=True)
    curves, keep = [], [law.predict(center[None])[name]]
    if baseline is not None:
        keep.append(law.predict(baseline[None])[name])
    for j, (ax, domain) in enumerate(zip(axes, domains)):
        X = _slice(center, j, grid)
        curves.append(law.predict(X)[name])
        ax.plot(grid, curves[-1], color=BLUE, lw=1.8, label="fitted law")
        ax.plot([center[j]], law.predict(center[None])[name], "o", color=VERMILION, ms=6, label="optimum")
        if baseline is not None:
            ax.axvline(baseline[j], color="0.4", ls=":", lw=1.2, label="baseline share")
        if len(domains) == 2 and data.observed_total is not None and name == "total":
            ax.scatter(data.observed_X[:, j], data.observed_total, s=14, color=ORANGE, zorder=3, label="runs")
        ax.set_title(domain)
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])  # neighbouring panels' end labels must not touch
    if len(domains) == 2 and data.observed_total is not None:
        keep.append(data.observed_total)
    limits = robust_limits(np.concatenate(curves), np.concatenate([np.ravel(k) for k in keep]))
    if limits:
        axes[0].set_ylim(*limits)  # shared: one diverging slice must not flatten the others
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    fig.supxlabel("share of the domain in the training mixture (fraction of tokens)")
    fig.supylabel(f"predicted {name} loss ({LOSS_UNIT})")
    return fig


def _slice(center: np.ndarray, j: int, grid: np.ndarray) -> np.ndarray:
    """Mixtures with share `grid` for domain j and the rest in the proportions of `center`."""
    rest = center.copy()
    rest[j] = 0.0
    rest = (
        rest / rest.sum()
        if rest.sum() > 0
        else np.where(np.arange(len(center)) == j, 0.0, 1.0 / (len(center) - 1))
    )
    X = (1 - grid)[:, None] * rest[None]
    X[:, j] = grid
    return X


def ternary(data: ReportData):
    """Heat map of the predicted total over the 3-domain simplex with the runs, optimum and baseline."""
    law = data.law
    name = _total_name(data)
    if law is None or name is None or len(law.domains) != 3:
        return None
    plt = pyplot()
    import matplotlib.tri as mtri

    n = 60
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    B = np.stack([i[keep], j[keep], n - i[keep] - j[keep]], axis=1) / n
    z = law.predict(B)[name]
    fig, ax = plt.subplots(figsize=(6.6, 5.4), layout="constrained")
    x, y = _to_2d(B)
    from matplotlib.ticker import MaxNLocator

    levels = np.unique(np.quantile(z, np.linspace(0, 1, 17)))  # quantile levels resolve the flat valley
    triangulation = mtri.Triangulation(x, y)
    contour = ax.tricontourf(triangulation, z, levels=levels if len(levels) > 2 else 12, cmap="viridis")
    ax.tricontour(triangulation, z, levels=contour.levels, colors="white", linewidths=0.3, alpha=0.5)
    colorbar = fig.colorbar(contour, ax=ax, shrink=0.85, spacing="proportional")
    colorbar.locator = MaxNLocator(7)
    colorbar.update_ticks()
    colorbar.set_label(f"predicted {name} loss ({LOSS_UNIT})")
    ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], color="black", lw=1)
    if data.observed_X is not None:
        ox, oy = _to_2d(data.observed_X)
        ax.scatter(ox, oy, s=18, color="white", edgecolor="black", lw=0.7, zorder=3, label="runs")
    for vector, marker, color, label in (
        (_baseline_x(data), "s", SKY, "baseline"),
        (_optimum_x(data), "*", ORANGE, "optimum"),
    ):
        if vector is not None:
            px, py = _to_2d(vector[None])
            ax.scatter(
                px,
                py,
                s=190 if marker == "*" else 70,
                marker=marker,
                color=color,
                edgecolor="black",
                lw=0.8,
                zorder=4,
                label=label,
            )
    d = law.domains
    ax.text(0, -0.05, f"{d[0]} = 1", ha="center", va="top")
    ax.text(1, -0.05, f"{d[1]} = 1", ha="center", va="top")
    ax.text(0.5, np.sqrt(3) / 2 + 0.03, f"{d[2]} = 1", ha="center", va="bottom")
    ax.set_aspect("equal")
    ax.set_xlim(-0.08, 1.08)
    ax.set_ylim(-0.12, 0.95)
    ax.axis("off")
    ax.legend(loc="upper left", frameon=False)
    return fig


def _to_2d(B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric (n, 3) -> 2-D triangle coordinates: corners (0,0), (1,0), (1/2, sqrt(3)/2)."""
    return B[:, 1] + B[:, 2] / 2, B[:, 2] * np.sqrt(3) / 2


def step_law(data: ReportData):
    """Weighted total loss against training steps per model size, with the fitted step laws extrapolated to the
    target step; observed checkpoints beyond the fitted range (the held-out step check) are hollow."""
    from mixlaw.reporting.scaling import step_panels

    variable = (data.step_law or {}).get("variables", ["step"])[0]
    return _scaling_figure(step_panels(data), f"training {'steps' if variable == 'step' else variable}")


def size_law(data: ReportData):
    """Weighted total loss against model size: each size's step-law prediction at the target step, and the
    fitted size law extrapolated to the target size."""
    from mixlaw.reporting.scaling import size_panels

    return _scaling_figure(size_panels(data), "model parameters (non-embedding)")


def _scaling_figure(panels: list, xlabel: str):
    if not panels:
        return None
    from matplotlib.ticker import NullFormatter

    fig, axes = _grid(len(panels), columns=3, height=3.0, sharey=True)
    labels = list(dict.fromkeys(s.label for p in panels for s in p.series))
    color = {label: OKABE_ITO[i % len(OKABE_ITO)] for i, label in enumerate(labels)}
    curves = [s.curve_y for p in panels for s in p.series]
    keep = [
        np.ravel(v)
        for p in panels
        for s in p.series
        for v in (s.fit_y, s.held_y, s.target_y)
        if v is not None
    ]
    for ax, panel in zip(axes, panels):
        for series in panel.series:
            c = color[series.label]
            inside = series.curve_x <= series.fit_limit * (1 + 1e-9)
            ax.plot(series.curve_x[inside], series.curve_y[inside], color=c, lw=1.6, label=series.label)
            ax.plot(series.curve_x[~inside], series.curve_y[~inside], color=c, lw=1.4, ls="--")
            if series.fit_x is not None and len(series.fit_x):
                ax.scatter(series.fit_x, series.fit_y, s=14, color=c, zorder=3)
            if series.held_x is not None and len(series.held_x):
                ax.scatter(
                    series.held_x,
                    series.held_y,
                    s=34,
                    marker="D",
                    facecolor="white",
                    edgecolor=c,
                    lw=1.4,
                    zorder=4,
                )
            if series.target_y is not None and panel.target_x is not None:
                ax.plot(
                    [panel.target_x],
                    [series.target_y],
                    "*",
                    ms=11,
                    color=c,
                    markeredgecolor="black",
                    zorder=5,
                )
        if panel.target_x is not None:
            ax.axvline(panel.target_x, color="0.35", ls=":", lw=1.2)
            best = min((s.target_y for s in panel.series if s.target_y is not None), default=None)
            if best is not None:
                ax.annotate(
                    f"{best:.3f}",
                    (panel.target_x, best),
                    xytext=(-6, -12),
                    textcoords="offset points",
                    ha="right",
                    fontsize=9,
                )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(panel.title, fontsize=10)
    limits = robust_limits(np.concatenate(curves), np.concatenate(keep) if keep else None)
    if limits:
        axes[0].set_ylim(*limits)  # shared y: a diverging extrapolation must not flatten every panel
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color[label], lw=1.6, label=label) for label in labels]
    handles += [
        Line2D([], [], color="0.3", ls="--", label="extrapolation"),
        Line2D([], [], color="0.3", marker="o", ls="", ms=4, label="fitted on"),
    ]
    if any(s.held_x is not None and len(s.held_x) for p in panels for s in p.series):
        handles.append(
            Line2D([], [], color="0.3", marker="D", ls="", mfc="white", ms=5, label="held out (check)")
        )
    handles.append(
        Line2D([], [], color="0.3", marker="*", ls="", ms=10, mec="black", label="predicted at target")
    )
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 5), frameon=False)
    fig.supxlabel(xlabel + " (log scale; dotted line: target)")
    fig.supylabel(f"weighted total loss ({LOSS_UNIT})")
    return fig


def optimum_bars(data: ReportData):
    """The optimum's shares next to the baseline's (bars), and the predicted losses of both (points with
    intervals when the optimizer gave them)."""
    opt = _optimum_x(data)
    if opt is None:
        return None
    plt = pyplot()
    base = _baseline_x(data)
    domains = data.domains
    baseline = (data.optimum or {}).get("baseline")
    baseline = baseline if isinstance(baseline, dict) else {}
    base_name = str(baseline.get("name", "baseline"))
    predicted = loss_rows(data.optimum)
    base_predicted = loss_rows(baseline)
    targets = list(predicted)[:MAX_PANELS]
    two = bool(targets)
    fig, axes = plt.subplots(
        1,
        2 if two else 1,
        figsize=(WIDTH, max(3.4, 1.2 + 0.3 * max(len(targets), 6))),
        layout="constrained",
        squeeze=False,
        width_ratios=[1.15, 1] if two else None,
    )
    ax = axes[0, 0]
    at = np.arange(len(domains))
    width = 0.38
    if base is not None:
        ax.bar(at - width / 2, base, width, color=SKY, label=base_name, edgecolor="black", lw=0.4)
    ax.bar(
        at + (width / 2 if base is not None else 0),
        opt,
        width,
        color=ORANGE,
        label="optimum",
        edgecolor="black",
        lw=0.4,
        hatch="//",
    )
    rotate = len(domains) > 4 or max(len(d) for d in domains) > 10
    ax.set_xticks(at, domains, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylabel("share of training tokens")
    ax.set_title("mixture")
    ax.legend(frameon=False, ncols=2, loc="upper right")
    ax.set_ylim(0, max(float(opt.max()), float(base.max()) if base is not None else 0.0) * 1.25)
    if two:
        ax = axes[0, 1]
        at = np.arange(len(targets))
        values = np.array([predicted[t] for t in targets], dtype=float)
        base_values = np.array([base_predicted.get(t, np.nan) for t in targets], dtype=float)
        reference = np.where(np.isfinite(base_values), base_values, 0.0)
        change = values - reference
        colors = [GREEN if c <= 0 else VERMILION for c in change]
        ax.barh(
            at,
            change,
            0.6,
            color=colors,
            edgecolor="black",
            lw=0.4,
            xerr=_xerr(values, _intervals(data.optimum, targets), targets),
            capsize=3,
            ecolor="0.3",
        )
        ax.axvline(0, color="black", lw=0.8)
        for i, c in enumerate(change):
            ax.annotate(
                f"{c:+.4f}",
                (c, i),
                xytext=(4 if c >= 0 else -4, 0),
                textcoords="offset points",
                ha="left" if c >= 0 else "right",
                va="center",
                fontsize=9,
            )
        span = float(np.abs(change).max()) or 1e-3
        ax.set_xlim(
            -1.45 * span if (change < 0).any() else -0.2 * span,
            1.45 * span if (change > 0).any() else 0.2 * span,
        )
        ax.set_yticks(at, targets)
        ax.set_ylim(len(targets) - 0.5, -0.5)
        ax.set_xlabel(f"optimum − baseline ({LOSS_UNIT})")  # the legend names the baseline
        ax.set_title(
            "predicted loss change (< 0: optimum better)"
            + (", with intervals" if _intervals(data.optimum, targets) else "")
        )
    return fig


def robust_limits(values: np.ndarray, keep: np.ndarray | None = None, pad: float = 0.08):
    """y-limits that one diverging curve cannot blow up: the 1st-99th percentile of `values` clipped to
    3 inter-quartile ranges beyond the quartiles, widened to hold every point of `keep` (observations, the
    optimum), plus `pad` of the span; None when nothing is finite."""
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    kept = np.asarray(keep if keep is not None else [], dtype=float).ravel()
    kept = kept[np.isfinite(kept)]
    if not len(values) and not len(kept):
        return None
    if len(values):
        q1, q25, q75, q99 = np.percentile(values, [1, 25, 75, 99])
        iqr = q75 - q25
        lo, hi = max(q1, q25 - 3 * iqr), min(q99, q75 + 3 * iqr)
    else:
        lo, hi = kept.min(), kept.max()
    if len(kept):
        lo, hi = min(lo, kept.min()), max(hi, kept.max())
    span = (hi - lo) or abs(hi) * 0.05 or 1.0
    return float(lo - pad * span), float(hi + pad * span)


def mixture_shares(data: ReportData):
    """The answer: recommended shares next to the baseline's, with the bootstrap interval of each share."""
    from mixlaw.reporting.answer import answer_of

    answer = answer_of(data.optimum)
    if answer is None or not answer.shares:
        return None
    plt = pyplot()
    shares = answer.shares
    n = len(shares)
    fig, ax = plt.subplots(figsize=(4.6, max(2.2, 1.0 + 0.34 * n)), layout="constrained")
    at = np.arange(n)
    height = 0.38
    base = [s.baseline for s in shares]
    if any(b is not None for b in base):
        ax.barh(
            at + height / 2,
            [b or 0.0 for b in base],
            height,
            color=SKY,
            edgecolor="black",
            lw=0.4,
            label="baseline",
        )
    ax.barh(
        at - height / 2,
        [s.value for s in shares],
        height,
        color=ORANGE,
        edgecolor="black",
        lw=0.4,
        label="recommended",
    )
    with_bounds = [(i, s) for i, s in enumerate(shares) if s.lo is not None and s.hi is not None]
    for i, s in with_bounds:
        ax.plot([s.lo, s.hi], [i - height / 2] * 2, color="black", lw=1.3, solid_capstyle="butt")
        ax.plot([s.lo, s.hi], [i - height / 2] * 2, "|", color="black", ms=7)
    ax.set_yticks(at, [s.domain for s in shares])
    ax.set_ylim(n - 0.45, -0.6)
    top = max([s.value for s in shares] + [b or 0 for b in base] + [s.hi for _, s in with_bounds])
    ax.set_xlim(0, min(1.0, top * 1.15) if top > 0 else 1.0)
    ax.set_xlabel(
        "share of training tokens" + (f" (bars: {answer.level_text} interval)" if with_bounds else "")
    )
    ax.grid(axis="y", visible=False)
    fig.legend(frameon=False, loc="outside upper center", ncols=2, fontsize=8.5)
    return fig


def validation_curves(data: ReportData):
    """`mixlaw run`'s measurement at the target: both arms' seed-mean loss against steps with a ±1 seed-std
    band, and the predicted objective at the target step with its interval."""
    validation = data.validation
    arms = (validation or {}).get("arms") or {}
    if not all(isinstance((arms.get(a) or {}).get("curve"), dict) for a in ("optimum", "baseline")):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, 2.75), layout="constrained")
    uncertainty = (data.optimum or {}).get("uncertainty") or {}
    target = (validation.get("target") or {}).get("steps")
    keep = []
    steps = [s for a in ("optimum", "baseline") for s in arms[a]["curve"].get("step", [])]
    nudge = 0.012 * (max(steps) - min(steps)) if steps else 0.0  # the two predicted points side by side
    for arm, color, label, key, offset in (
        ("optimum", ORANGE, "recommended", "predicted", -nudge),
        ("baseline", SKY, "baseline", "baseline", nudge),
    ):
        curve = arms[arm]["curve"]
        x = np.asarray(curve.get("step", []), dtype=float)
        mean = np.asarray(curve.get("mean", []), dtype=float)
        std = np.nan_to_num(np.asarray(curve.get("std", np.zeros_like(mean)), dtype=float))
        if not len(x):
            continue
        n = (arms[arm].get("measured") or {}).get("n")
        ax.plot(
            x,
            mean,
            color=color,
            lw=2,
            marker="o",
            ms=3.5,
            label=f"{label}: measured" + (f", {n} seeds" if n else ""),
        )
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.22, lw=0)
        keep += list(mean - std) + list(mean + std)
        predicted = arms[arm].get("predicted")
        band = (uncertainty.get(key) or {}).get("objective") or (uncertainty.get(key) or {}).get("total")
        if isinstance(predicted, (int, float)) and target:
            err = None
            if isinstance(band, dict) and band.get("lo") is not None:
                err = [[max(predicted - band["lo"], 0)], [max(band["hi"] - predicted, 0)]]
                keep += [band["lo"], band["hi"]]
            ax.errorbar(
                [target + offset],
                [predicted],
                yerr=err,
                fmt="D",
                ms=7,
                color=color,
                mec="black",
                ecolor="black",
                capsize=4,
                zorder=5,
                label=f"{label}: predicted" + (" (90% interval)" if err else ""),
            )
            keep.append(predicted)
    if target:
        ax.axvline(target, color="0.35", ls=":", lw=1.1)
    limits = robust_limits(np.array(keep), np.array(keep))
    if limits:
        ax.set_ylim(*limits)
    ax.set_xlabel("training steps at the target size (dotted: target step)")
    ax.set_ylabel(f"objective ({LOSS_UNIT})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8.5)
    return fig


def loss_rows(result: dict | None) -> dict[str, float]:
    """The numeric predicted losses of an optimizer result, without an `objective` equal to the total."""
    predicted = (result or {}).get("predicted") or {}
    rows = {
        t: float(v) for t, v in predicted.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    if "objective" in rows and "total" in rows and abs(rows["objective"] - rows["total"]) < 1e-12:
        rows.pop("objective")
    return rows


def _intervals(result: dict, targets: list[str]) -> dict[str, tuple[float, float]]:
    """{target: (low, high)} from `interval`/`intervals`/`predicted_interval` fields when the optimizer gave them."""
    for key in ("interval", "intervals", "predicted_interval", "predicted_intervals"):
        raw = result.get(key) if isinstance(result, dict) else None
        if isinstance(raw, dict):
            out = {}
            for t in targets:
                value = raw.get(t)
                if isinstance(value, dict):
                    value = (value.get("low", value.get("lo")), value.get("high", value.get("hi")))
                if isinstance(value, (list, tuple)) and len(value) == 2 and None not in value:
                    out[t] = (float(value[0]), float(value[1]))
            return out
    return {}


def _xerr(values: np.ndarray, intervals: dict, targets: list[str]) -> np.ndarray | None:
    if not intervals:
        return None
    err = np.zeros((2, len(targets)))
    for i, t in enumerate(targets):
        if t in intervals:
            err[0, i] = max(values[i] - intervals[t][0], 0)
            err[1, i] = max(intervals[t][1] - values[i], 0)
    return err


FIGURES: list[FigureSpec] = [
    FigureSpec(
        "mixture",
        "Recommended mixture",
        mixture_shares,
        "Recommended shares (orange) next to the baseline's (blue); the black bar on each recommended share is "
        "its bootstrap interval (the optimum of every refitted law).",
        "an optimized mixture (optimum.json)",
    ),
    FigureSpec(
        "validation",
        "Measured at the target: did the prediction hold?",
        validation_curves,
        "Seed-mean loss of both arms trained at the target size (bands: ± one seed standard deviation) and the "
        "predicted loss at the target step (diamonds, with the bootstrap interval).",
        "a `mixlaw run` validation (validation.json)",
    ),
    FigureSpec(
        "cv_scatter",
        "Cross-validated predictions against observations",
        cv_scatter,
        "Each point is one run's loss predicted by a law fitted without that run's mixture; the dashed "
        "line is a perfect prediction.",
        "held-out predictions (predictions.csv, or a runs table)",
    ),
    FigureSpec(
        "slices",
        "Loss against each domain's share",
        slices,
        "One-dimensional slices through the optimum: one domain's share varies, the others keep their "
        "proportions at the optimum.",
        "a fitted law (law.json)",
    ),
    FigureSpec(
        "ternary",
        "Predicted loss over the three-domain simplex",
        ternary,
        "Each corner is training on one domain only.",
        "a fitted law with exactly three training domains",
    ),
    FigureSpec(
        "step_law",
        "Step law: loss against training steps",
        step_law,
        "Weighted total of the per-target step laws for three mixtures (lowest, median and highest "
        "predicted loss), one line per model size. Solid: fitted range; dashed: extrapolation to the "
        "target step (star). Hollow diamonds: observed checkpoints beyond the fitted range.",
        "step laws (step_laws.json) and a law.json",
    ),
    FigureSpec(
        "size_law",
        "Size law: loss against model size",
        size_law,
        "Points: each size's step-law prediction at the target step (what the size law is fitted on). "
        "Solid: fitted sizes; dashed: extrapolation to the target size (star).",
        "size laws (size_laws.json) and a law.json",
    ),
    FigureSpec(
        "optimum",
        "Optimum against baseline",
        optimum_bars,
        "Left: shares of training tokens; right: predicted loss of the optimum minus that of the baseline per "
        "target (the table below has both values).",
        "an optimized mixture (optimum.json)",
    ),
]
