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
    sanity = result.checks.get("proxy_sanity") or {}
    if sanity.get("messages"):
        lines += ["", "Proxy sanity (observed weighted total loss):", ""]
        lines += [f"- WARNING: {m}" if "rises" in m else f"- {m}" for m in sanity["messages"]]
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


def validation_markdown(result: Any, n_seeds: int, command: str | None) -> str:
    """The validation section that opens `mixlaw run`'s summary.md (`result`: a `mixlaw.job.Validation`)."""
    t, arms, g = result.target, result.arms, result.gain
    eq, verdict = result.equivalent_steps, result.verdict
    lines = ["# mixlaw run: validation at the target scale", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"Target: {t['model']} ({t['params']:,} non-embedding parameters), {t['steps']} steps "
        f"({t['tokens']:,} tokens); {n_seeds} seeds per mixture.",
        "",
        f"**Verdict: {verdict['result']}.** {verdict['text']}",
        "",
        "| mixture | predicted | measured (mean ± seed std) | rel. error | seeds |",
        "|---|---|---|---|---|",
    ]
    for arm in ("optimum", "baseline"):
        a = arms[arm]
        m = a["measured"]
        name = arm if arm == "optimum" else f"baseline ({a['name']})"
        lines.append(
            f"| {name} | {a['predicted']:.4f} | {m['mean']:.4f} ± {m['std']:.4f} | "
            f"{100 * a['rel_error']:+.2f}% | {m['n']} |"
        )
    lines += [
        "",
        f"Gain (baseline − optimum, objective, nats): measured {g['measured']:+.4f}, predicted "
        f"{g['predicted']:+.4f}; pooled seed std {g['sigma_pooled']:.4f}; paired by seed "
        f"{g['paired']['mean']:+.4f} ± {g['paired']['std']:.4f}.",
        "",
    ]
    m = eq["measured"]
    if m.get("ratio") is not None:
        lines.append(
            f"Equivalent training steps (measured): the baseline needs {m['steps']:.0f} steps "
            f"({m['ratio']:.2f}x the target) to reach the optimum's loss; {m['method']}."
        )
    else:
        lines.append(f"Equivalent training steps (measured): not available ({m.get('reason')}).")
    pe = eq.get("predicted")
    lines.append(
        "Equivalent training steps (predicted by the pipeline): "
        + (f"{pe:.2f}x." if pe is not None else f"not available ({eq.get('predicted_reason')}).")
    )
    if verdict["result"] == "within noise":
        lines.append("The difference is within noise, so the equivalent-steps figure is not a claimed gain.")
    elif verdict["result"] == "loss":
        lines.append(
            "The chosen mixture lost to the baseline: a ratio below 1 says how many of the target steps "
            "the baseline needed to match it."
        )
    lines += ["", "| domain | optimum | baseline |", "|---|---|---|"]
    for k, v in arms["optimum"]["mixture"].items():
        lines.append(f"| {k} | {v:.4f} | {arms['baseline']['mixture'][k]:.4f} |")
    lines += [
        "",
        "Per target at the target steps (predicted / measured mean ± std):",
        "",
        "| target | optimum | baseline |",
        "|---|---|---|",
    ]
    for tname in arms["optimum"]["per_target"]:
        cells = []
        for arm in ("optimum", "baseline"):
            pt = arms[arm]["per_target"][tname]
            pred = f"{pt['predicted']:.4f}" if pt["predicted"] is not None else "n/a"
            cells.append(f"{pred} / {pt['measured']['mean']:.4f} ± {pt['measured']['std']:.4f}")
        lines.append(f"| {tname} | {cells[0]} | {cells[1]} |")
    tm = result.timings or {}
    if tm:
        lines += [
            "",
            "Stage times of this invocation (s; a resumed job skips finished work, earlier invocations "
            "are listed in run.json): " + ", ".join(f"{k} {v:.0f}" for k, v in tm.items()),
        ]
    lines += [
        "",
        "Files: runs.csv (proxies), law.json, optimum.json, predictions.csv, step_laws.json, "
        "size_laws.json, checks.json, validation.json, validation.csv, validation/runs.csv, report.html",
        "",
    ]
    return "\n".join(lines)
