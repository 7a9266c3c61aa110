"""Every markdown text mixlaw writes: the pipeline's summary.md and the validation section of `mixlaw run`."""

from __future__ import annotations

from typing import Any


def summary_markdown(result: Any, optimum: dict[str, Any] | None, command: str | None = None) -> str:
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
        f"- mixing law: {result.law.law.name} [chosen by {c.cv}-fold cross-validation on the extrapolated losses]",
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
