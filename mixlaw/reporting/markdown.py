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
        f"- exponent sharing: step {c.step_share} [all], size {c.size_share} [all], joint {c.joint_share} [all]",
        "- step-law fit window: "
        + (
            "every checkpoint"
            if getattr(c, "step_window", None) is None
            else f"{d['variable']}s >= last / {c.step_window:g} (from {d.get('step_fit_from')})"
        )
        + " [last / 3; validated by benchmarks/extrapolation_backtest.py, none = every checkpoint]",
        f"- mixing law: {result.checks['mixing']['law']} [auto: chosen by cross-validation on the extrapolated losses]",
        "",
        *job_ratio_lines(result.checks),
        *gain_lines(optimum),
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
        lines += recommendation_lines(optimum)
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()), ""]
    return "\n".join(lines)


def job_ratio_lines(checks: dict[str, Any]) -> list[str]:
    """The section that leads the checks: the step check at the job's own ratio and the proxies' regime."""
    lead = checks.get("at_job_ratio")
    lines: list[str] = []
    if lead is not None:
        lines += ["## Check at the job's extrapolation ratio", ""]
        job = lead.get("job_ratio")
        if "skipped" in lead:
            lines.append(f"Not possible: {lead['skipped']} (the job extrapolates {job:.2f}x).")
        else:
            lines.append(
                f"The step check holds back {lead['ratio']:.2f}x of {lead['variable']}s (the job extrapolates "
                f"{job:.2f}x; {lead['reason']}): mean relative error {100 * lead['mean_rel']:.3f}%, bias "
                f"{100 * lead['bias_rel']:+.3f}% (n={lead['n']}), about {lead['error_at_target']:.4f} nats at "
                f"the target. Gaps between the candidates' predicted losses: median {lead['gap_median']:.4f}, "
                f"best two {lead['gap_best_two']:.4f} nats."
            )
            if lead.get("warning"):
                lines += ["", f"**WARNING: {lead['warning']}.**"]
        lines.append("")
    regime = checks.get("regime")
    if regime and "skipped" not in regime:
        q = regime["beta_quantiles"]
        tpp = [
            f"{m} {row['tokens_per_param']:.3g}"
            for m, row in (regime.get("per_model") or {}).items()
            if row.get("tokens_per_param") is not None
        ]
        lines.append(
            f"Regime of the step fits: {100 * regime['at_bound']:.0f}% at an exponent bound "
            f"{regime['exponent_bounds']}, beta q10/q50/q90 {q['q10']:.2f}/{q['q50']:.2f}/{q['q90']:.2f}, "
            f"end curvature (log-log) {regime['end_curvature_median']:.3f}"
            + (f", tokens per parameter {', '.join(tpp)}" if tpp else "")
            + "."
        )
        lines += [f"**WARNING (regime): {w}.**" for w in regime.get("warnings", [])]
        lines.append("")
    return lines


def gain_lines(optimum: dict[str, Any] | None) -> list[str]:
    """The optimum's predicted gain over the baseline (and the anchor's correction) next to the checks."""
    gain = (optimum or {}).get("gain")
    if not gain:
        return []
    lines = [
        f"Predicted gain of the optimum over the baseline ({gain['baseline']}): {gain['value']:+.4f} nats "
        f"[{gain['lo']:+.4f}, {gain['hi']:+.4f}] ({100 * gain['level']:g}%: mixing-law bootstrap and the spread "
        f"over {len(gain['variants'])} step-law variants"
        + (", and each mixture's own scale-extrapolation error" if gain.get("scale_sd") else "")
        + "); scale-extrapolation errors shared by every mixture cancel in a gain."
    ]
    scale = ((optimum or {}).get("uncertainty") or {}).get("scale_uncertainty")
    if scale:
        lines.append(
            f"Predicted losses' intervals include the scale-extrapolation error at this job's ratios "
            f"({scale['steps_ratio']:.3g}x steps, {scale['size_ratio']:.3g}x size): "
            f"{100 * scale['common_sd_rel']:.2g}% shared by every mixture and {100 * scale['mixture_sd_rel']:.2g}% "
            f"per mixture (1 sd; calibrated on {scale['calibrated_on']})."
        )
    anchor = optimum.get("anchor")
    if anchor:
        lines.append(
            f"Anchor ({anchor['source']}, {anchor['n_runs']} run(s) at the target scale): common-mode correction "
            f"{anchor['correction']['objective']:+.4f} nats; optimum corrected "
            f"{anchor['corrected']['optimum']['objective']:.4f}, baseline corrected "
            f"{anchor['corrected']['baseline']['objective']:.4f}."
        )
    return lines + [""]


def recommendation_lines(optimum: dict[str, Any]) -> list[str]:
    """The recommendation paragraph of summary.md: the verdict, why, and (declined) the best-supported
    alternative."""
    from mixlaw.recommendation import alternative_text

    rec = optimum.get("recommendation")
    if not rec:
        return []
    gain, p = rec.get("gain"), rec.get("p_beats_baseline")
    numbers = "; ".join(
        x
        for x in (
            f"P(beats baseline) {p:.2f}" if p is not None else "",
            f"gain {gain['value']:.4g} [{gain['lo']:.4g}, {gain['hi']:.4g}] (loss units at the target)"
            if gain
            else "",
        )
        if x
    )
    head = (
        "**No confident recommendation.**" if rec["verdict"] == "decline" else "**Recommendation: use it.**"
    )
    lines = ["", "## Recommendation", "", f"{head} {rec['reason']}" + (f" ({numbers})" if numbers else "")]
    if rec["verdict"] == "decline" and alternative_text(optimum):
        lines += ["", alternative_text(optimum)[0].upper() + alternative_text(optimum)[1:] + "."]
    return lines


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
        f"**Verdict: {verdict['result']}"
        + (
            " (measured; no confident recommendation: the pipeline declined)"
            if verdict.get("recommendation") == "decline"
            else ""
        )
        + f".** {verdict['text']}",
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
        f"{g['predicted']:+.4f}; pooled seed std {g['sigma_pooled']:.4f}; paired by seed (the verdict's) "
        f"{g['paired']['mean']:+.4f} ± {g['paired']['std']:.4f}.",
        "",
    ]
    rec = getattr(result, "recommended", None)
    if rec:
        rg = rec["gain"]
        lines += [
            f"**Recommended instead (the rungs claimed the {rec['arm'].replace('_', ' ')} mixture), measured at "
            f"the target:** {rec['measured']['mean']:.4f} ± {rec['measured']['std']:.4f}, gain {rg['measured']:+.4f} "
            f"(paired {rg['paired']['mean']:+.4f} ± {rg['paired']['std']:.4f}); {rec['verdict']['result']}.",
            "",
        ]
    anchored = g.get("anchored")
    if anchored:
        loss = anchored.get("optimum_predicted")
        lines += [
            f"Anchored on the confirmation rungs (predicted before this validation): gain {anchored['value']:+.4f} "
            f"[{anchored['lo']:+.4f}, {anchored['hi']:+.4f}], P(beats baseline) {anchored['p_beats_baseline']:.2f}; "
            f"a validation with these seeds should measure within [{anchored['measured_lo']:+.4f}, "
            f"{anchored['measured_hi']:+.4f}]: the measured {g['measured']:+.4f} is "
            + ("inside" if anchored["inside"] else "outside")
            + "."
            + (
                ""
                if loss is None
                else f" Optimum's loss anchored: {loss:.4f} ({100 * anchored['optimum_rel_error']:+.2f}%)."
            ),
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
