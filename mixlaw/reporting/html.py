"""One self-contained HTML page: figures inlined as base64 PNG, no scripts, no network, plus PNG/SVG files."""

from __future__ import annotations

import base64
import html
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixlaw.files import atomic_write
from mixlaw.reporting.answer import Answer, answer_of
from mixlaw.reporting.data import ReportData, mixture_vector, versions
from mixlaw.reporting.figures import FIGURES, loss_rows, pyplot
from mixlaw.reporting.scaling import check_note, model_order

log = logging.getLogger(__name__)

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a;
       margin: 0; background: #fafafa; }
main { max-width: 940px; margin: 0 auto; padding: 24px 20px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.1em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
figure { margin: 1em 0 1.5em; } figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.3em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; max-width: 100%; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f2f2f2; }
code, pre { font: 0.88em/1.45 ui-monospace, "DejaVu Sans Mono", monospace; background: #f4f4f4; }
pre { padding: 8px 10px; white-space: pre-wrap; word-break: break-all; }
.note { color: #6a4a00; background: #fff7e0; padding: 6px 10px; border-left: 3px solid #E69F00; }
.meta { color: #555; }
nav a { margin-right: 1em; }
.verdict { font-size: 1.15em; padding: 8px 12px; margin: 0.6em 0; border-left: 5px solid #888; background: #f4f4f4; }
.verdict b { font-size: 1.1em; } .verdict.recommend { border-color: #009E73; background: #e9f7f1; }
.verdict.decline { border-color: #D55E00; background: #fdeee6; } .verdict p { margin: 0.2em 0; }
.answer-grid { display: flex; gap: 18px; align-items: flex-start; }
.answer-grid table { margin-top: 0; } .answer-grid figure { margin: 0; }
#answer h2, #warnings h2 { margin-top: 0.8em; } #validation figure { margin: 0.4em 0; }
.held { font-weight: 600; } ul.warnings li { color: #6a4a00; margin: 0.2em 0; }
.markdown table { font-size: 0.88em; } .markdown h3 { font-size: 1.05em; }
table.facts td { text-align: left; } table.facts td:first-child { color: #555; padding-right: 2em; }
"""


@dataclass
class RenderedFigure:
    name: str
    title: str
    caption: str
    png: bytes | None  # None: skipped
    reason: str = ""
    files: tuple[str, ...] = ()


def render_figures(
    data: ReportData, figures_dir: Path | None, formats: tuple[str, ...] = ("png", "svg"), dpi: int = 150
) -> list[RenderedFigure]:
    """Draw every figure of FIGURES; write each as PNG/SVG into `figures_dir` (when given)."""
    plt = pyplot()
    out = []
    for spec in FIGURES:
        started = time.perf_counter()
        try:
            fig = spec.make(data)
        except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the whole report
            log.warning("figure %s failed: %s: %s", spec.name, type(exc).__name__, exc)
            log.debug("figure %s", spec.name, exc_info=True)
            out.append(
                RenderedFigure(spec.name, spec.title, spec.caption, None, f"could not be drawn ({exc})")
            )
            continue
        if fig is None:
            out.append(RenderedFigure(spec.name, spec.title, spec.caption, None, f"needs {spec.needs}"))
            continue
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
        files = []
        if figures_dir is not None:
            figures_dir.mkdir(parents=True, exist_ok=True)
            for fmt in formats:
                path = figures_dir / f"{spec.name}.{fmt}"
                if fmt == "png":
                    path.write_bytes(buffer.getvalue())
                else:
                    fig.savefig(path, format=fmt, facecolor="white")
                files.append(f"{figures_dir.name}/{path.name}")
        plt.close(fig)
        log.debug("figure %s: %.2f s", spec.name, time.perf_counter() - started)
        out.append(RenderedFigure(spec.name, spec.title, spec.caption, buffer.getvalue(), files=tuple(files)))
    return out


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list], facts: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header) if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    opening = '<table class="facts">' if facts else "<table>"
    return opening + (f"<thead><tr>{head}</tr></thead>" if head else "") + f"<tbody>{body}</tbody></table>"


def _fmt(value, digits: int = 4) -> str:
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return "–" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _figure_html(fig: RenderedFigure, dpi: int, note: str = "") -> str:
    if fig.png is None:
        return (
            f'<section id="{fig.name}"><h2>{_e(fig.title)}</h2>'
            f'<p class="note">Not shown: {_e(fig.reason)}.</p></section>'
        )
    width, height = _png_size(fig.png)
    scale = 100 / dpi  # CSS pixels: 100 per inch of figure
    encoded = base64.b64encode(fig.png).decode()
    files = " · ".join(f"<code>{_e(f)}</code>" for f in fig.files)
    return (
        f'<section id="{fig.name}"><h2>{_e(fig.title)}</h2><figure>'
        f'<img src="data:image/png;base64,{encoded}" alt="{_e(fig.title)}" data-figure="{fig.name}" '
        f'width="{round(width * scale)}" height="{round(height * scale)}">'
        f"<figcaption>{_e(fig.caption)}"
        + (f" {_e(note)}." if note else "")
        + (f" Files: {files}." if files else "")
        + "</figcaption></figure>"
        + "</section>"
    )


def _verdict_html(answer: Answer) -> str:
    """The verdict box: the recommendation's word and reason when optimum.json has one, else the gain and
    P(beats baseline) alone, with no verdict word."""
    facts = []
    if answer.gain is not None:
        band = (
            f" ({answer.level_text} interval {answer.gain.lo:+.4f} to {answer.gain.hi:+.4f})"
            if answer.gain.lo is not None and answer.gain.hi is not None
            else ""
        )
        facts.append(
            f"Predicted gain over {_e(answer.baseline_name)} at the target: <b>{answer.gain.value:+.4f}</b> "
            f"nats/token {_e(answer.gain_name)} loss{_e(band)}"
        )
    if answer.p_beats_baseline is not None:
        facts.append(f"P(beats baseline) <b>{answer.p_beats_baseline:.2f}</b>")
    line = "; ".join(facts) + "." if facts else ""
    if answer.uncertainty_reason and answer.gain is not None and answer.gain.lo is None:
        line += f" No intervals: {_e(answer.uncertainty_reason)}."
    if answer.verdict:
        word = {"recommend": "Recommend: train on this mixture", "decline": "Decline: keep the baseline"}
        head = (
            f"<p><b>{word[answer.verdict]}</b>"
            + (f" — {_e(answer.reason)}" if answer.reason else "")
            + "</p>"
        )
        return f'<div class="verdict {answer.verdict}" id="verdict">{head}<p>{line}</p></div>'
    return f'<div class="verdict" id="verdict"><p>{line or "No predicted gain in optimum.json."}</p></div>'


def _mixture_table(answer: Answer) -> str:
    has_bounds = any(s.lo is not None for s in answer.shares)
    has_base = any(s.baseline is not None for s in answer.shares)
    header = ["domain", "recommended"] + ([f"{answer.level_text} interval"] if has_bounds else [])
    header += ["baseline"] if has_base else []  # named in the verdict line and the chart's legend
    rows = []
    for s in answer.shares:
        row = [s.domain, _fmt(s.value, 3)]
        if has_bounds:
            row.append(f"{s.lo:.3f} – {s.hi:.3f}" if s.lo is not None and s.hi is not None else "–")
        if has_base:
            row.append(_fmt(s.baseline, 3) if s.baseline is not None else "–")
        rows.append(row)
    return _table(header, rows).replace("<table>", '<table id="mixture-table">', 1)


def _answer_section(data: ReportData, sections: dict[str, str], figures: dict[str, RenderedFigure], dpi: int):
    """The top of the page: verdict, mixture (table + chart), gain, and the measured validation."""
    answer = answer_of(data.optimum, data.validation)
    if answer is None:
        return "", None
    chart = figures.get("mixture")
    chart_html = (
        _bare_figure(chart, dpi, caption=False) if chart is not None and chart.png is not None else ""
    )
    parts = [
        '<section id="answer">',
        _verdict_html(answer),
        f'<div class="answer-grid"><div>{_mixture_table(answer)}</div>{chart_html}</div>',
        "</section>",
    ]
    validation = figures.get("validation")
    if validation is not None and validation.png is not None:
        sentence = (answer.validation or {}).get("sentence", "")
        parts.append(
            '<section id="validation">'
            + (f'<p class="held">{_e(sentence)}</p>' if sentence else "")
            + _bare_figure(validation, dpi)
            + "</section>"
        )
    return "".join(parts), answer


def _bare_figure(fig: RenderedFigure, dpi: int, caption: bool = True) -> str:
    """A figure without its own heading (for the answer block); without `caption` the caption is its title
    attribute (the table beside it says the same)."""
    width, height = _png_size(fig.png)
    scale = 100 / dpi
    encoded = base64.b64encode(fig.png).decode()
    return (
        f'<figure id="figure-{fig.name}"><img src="data:image/png;base64,{encoded}" alt="{_e(fig.title)}" '
        f'data-figure="{fig.name}" width="{round(width * scale)}" height="{round(height * scale)}" '
        f'title="{_e(fig.caption)}">'
        + (f"<figcaption>{_e(fig.caption)}</figcaption>" if caption else "")
        + "</figure>"
    )


def warnings_of(data: ReportData, answer: Answer | None) -> list[str]:
    """What a reader must know before trusting the answer: extrapolation distance (mixture and scale), failed
    or skipped checks, non-monotone proxies, wide or inconsistent share intervals."""
    out = []
    opt = data.optimum or {}
    distance = opt.get("distance_to_observed") if isinstance(opt.get("distance_to_observed"), dict) else {}
    if distance.get("warning"):
        out.append(
            f"The recommended mixture is an extrapolation in mixture space: L1 distance "
            f"{_fmt(distance.get('l1'), 3)} to the nearest observed mixture, beyond the spacing of the observed "
            f"mixtures ({_fmt(distance.get('threshold'), 3)})."
        )
    out += _scale_warnings(data)
    checks = (data.checks or {}).get("checks") or {}
    for name, check in checks.items():
        if not isinstance(check, dict):
            continue
        if "skipped" in check:
            out.append(f"Check {name} skipped: {check['skipped']}.")
        elif check.get("failed") or check.get("error"):
            out.append(f"Check {name} failed: {check.get('failed') or check.get('error')}.")
    sanity = checks.get("proxy_sanity") or (data.checks or {}).get("proxy_sanity")
    if isinstance(sanity, dict):
        out += [f"Proxy sanity: {text}." for text in sanity.get("messages", [])]
    if answer is not None:
        for s in answer.shares:
            if s.lo is None or s.hi is None:
                continue
            if s.hi - s.lo > 0.25:
                out.append(
                    f"The {s.domain} share is uncertain: {s.value:.3f}, {answer.level_text} interval "
                    f"{s.lo:.3f} – {s.hi:.3f}."
                )
            if not s.lo - 1e-6 <= s.value <= s.hi + 1e-6:
                out.append(
                    f"The {s.domain} share {s.value:.3f} lies outside its own bootstrap interval "
                    f"({s.lo:.3f} – {s.hi:.3f}): the refitted laws disagree with the fit."
                )
        if answer.gain is not None and answer.gain.lo is None:
            out.append(
                "No intervals on the optimum"
                + (f" ({answer.uncertainty_reason})" if answer.uncertainty_reason else "")
                + "."
            )
    return out


def _scale_warnings(data: ReportData) -> list[str]:
    """How far the target lies beyond the proxies: parameters and steps, as multiples of the largest fitted."""
    law = data.law
    scale = (law.meta.get("target_scale") or {}) if law is not None else {}
    out = []
    params = scale.get("params")
    if isinstance(params, (int, float)) and data.runs is not None and "params" in data.runs.frame.columns:
        largest = float(data.runs.frame["params"].max())
        if largest > 0 and params > largest * 1.05:
            out.append(
                f"Extrapolation in model size: the target ({params:,.0f} parameters) is {params / largest:.1f}× "
                f"the largest proxy ({largest:,.0f})."
            )
    fit_steps = ((data.checks or {}).get("defaults") or {}).get("fit_steps")
    step = scale.get("step")
    if (
        isinstance(step, (int, float))
        and isinstance(fit_steps, list)
        and len(fit_steps) == 2
        and fit_steps[1]
    ):
        if step > fit_steps[1] * 1.05:
            out.append(
                f"Extrapolation in steps: the target step {step:,.0f} is {step / fit_steps[1]:.1f}× the largest "
                f"fitted step ({fit_steps[1]:,.0f})."
            )
    return out


def markdown_html(text: str) -> str:
    """summary.md rendered as HTML (raw HTML in it is escaped; headings moved two levels down)."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        from mixlaw.errors import MixlawInputError

        raise MixlawInputError("reports need markdown-it-py: pip install 'mixlaw[report]'") from None
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 2, 6)}"
    return f'<div class="markdown">{md.renderer.render(tokens, md.options, {})}</div>'


def _cv_section(data: ReportData) -> str:
    cv = data.cv
    if cv is None:
        return ""
    rows = [
        [
            name,
            _fmt(m.get("mae")),
            _fmt(m.get("mare") * 100 if m.get("mare") is not None else np.nan, 2),
            _fmt(m.get("rmse")),
            _fmt(m.get("max")),
            _fmt(m.get("spearman"), 3),
            _fmt(m.get("r2"), 3),
        ]
        for name, m in cv.metrics.items()
    ]
    return (
        f"<p>Law <code>{_e(cv.law)}</code>, cross-validated {_e(cv.scheme)}; errors in nats/token.</p>"
        + _table(["target", "MAE", "MAPE %", "RMSE", "max |err|", "Spearman", "R²"], rows)
    )


def _optimum_section(data: ReportData) -> str:
    opt = data.optimum
    if not opt:
        return ""
    domains = data.domains
    x = mixture_vector(opt.get("mixture"), domains)
    baseline = opt.get("baseline") if isinstance(opt.get("baseline"), dict) else {}
    b = mixture_vector(baseline.get("mixture"), domains)
    parts = []
    if x is not None:
        rows = [
            [d, _fmt(x[i], 4)] + ([_fmt(b[i], 4)] if b is not None else []) for i, d in enumerate(domains)
        ]
        parts.append(
            _table(
                ["domain", "optimum"] + ([str(baseline.get("name", "baseline"))] if b is not None else []),
                rows,
            )
        )
    predicted = loss_rows(opt)
    base_pred = loss_rows(baseline)
    rows = [
        [t, _fmt(v), _fmt(base_pred.get(t, np.nan)), _fmt(v - base_pred[t]) if t in base_pred else "–"]
        for t, v in predicted.items()
    ]
    if rows:
        parts.append(_table(["predicted loss", "optimum", "baseline", "difference"], rows))
    parts.append(_equivalent_steps(opt))
    return "".join(parts)


def _equivalent_steps(opt: dict) -> str:
    """The paper's metric: how much longer the baseline must train to match the optimum (a ratio to the target)."""
    ratio = opt.get("equivalent_extra_steps")
    detail = opt.get("equivalent_extra_steps_detail") or {}
    if isinstance(ratio, (int, float)):
        variable = detail.get("variable", "step")
        steps = detail.get("equivalent_steps")
        text = (
            f"To reach the optimum's predicted loss, the baseline would need about <b>{ratio:.2f}×</b> the "
            f"target's training {_e(variable)}s"
            + (f" ({steps:,.0f})" if isinstance(steps, (int, float)) else "")
            + " (equivalent_extra_steps)."
        )
        if detail.get("note"):
            text += f" Note: {_e(detail['note'])}."
        return f"<p>{text}</p>"
    reason = opt.get("equivalent_extra_steps_reason")
    return f"<p>equivalent_extra_steps: not available ({_e(reason)}).</p>" if reason else ""


def _runs_section(data: ReportData) -> str:
    if data.runs is None:
        return '<p class="note">No runs table in the results.</p>'
    frame = data.runs.frame
    facts = [
        ["source", data.runs.source],
        ["rows", _fmt(len(frame))],
        ["runs", _fmt(frame["run"].nunique())],
        ["mixtures", _fmt(len(frame[data.runs.domain_columns].round(6).drop_duplicates()))],
        ["validation domains", _fmt(frame["valid_domain"].nunique())],
    ]
    for column, label in (("model", "models"), ("step", "steps"), ("seed", "seeds")):
        if column in frame.columns:
            values = (
                model_order(frame)
                if column == "model"
                else sorted(frame[column].unique(), key=lambda v: (str(type(v)), v))
            )
            shown = ", ".join(map(str, values[:8])) + (
                f" … ({len(values)} in all)" if len(values) > 8 else ""
            )
            facts.append([label, shown])
    shares = frame[data.runs.domain_columns].drop_duplicates()
    rows = [
        [
            c[2:],
            _fmt(shares[c].min(), 3),
            _fmt(shares[c].median(), 3),
            _fmt(shares[c].max(), 3),
            _fmt(int((shares[c] == 0).sum())),
        ]
        for c in data.runs.domain_columns
    ]
    return (
        _table(["", ""], facts, facts=True)
        + "<p>Training-domain shares over the distinct mixtures:</p>"
        + _table(["domain", "min", "median", "max", "mixtures without it"], rows)
    )


def _provenance(data: ReportData, report_command: str | None, seconds: float | None) -> str:
    commands = list(dict.fromkeys(data.commands + ([report_command] if report_command else [])))
    law = data.law
    facts = []
    if law is not None:
        facts.append(["law", f"{law.law.name} on {', '.join(law.domains)} → {', '.join(law.targets)}"])
        sel = law.meta.get("selection") or {}
        if sel:
            facts.append(["selection", ", ".join(f"{k}={v}" for k, v in sel.items())])
        source = law.meta.get("data") or {}
        if source:
            facts.append(["data", f"{source.get('source')} (sha256 {str(source.get('sha256', ''))[:12]}…)"])
    facts += [[k, v] for k, v in versions().items()]
    if seconds is not None:
        facts.append(["report generated in", f"{seconds:.1f} s"])
    block = "".join(f"<pre>{_e(c)}</pre>" for c in commands) or "<p>No command recorded.</p>"
    return block + _table(["", ""], facts, facts=True)


def render_html(
    data: ReportData,
    figures: list[RenderedFigure],
    title: str,
    dpi: int = 150,
    report_command: str | None = None,
    seconds: float | None = None,
) -> str:
    """The whole page as a string."""
    shown = [f for f in figures if f.png is not None]
    by_name = {f.name: f for f in figures}
    top = ("mixture", "validation")
    nav = " ".join(f'<a href="#{f.name}">{_e(f.title.split(":")[0])}</a>' for f in shown if f.name not in top)
    skipped = [f for f in figures if f.png is None]
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in data.notes)
    summary = (
        f'<section id="summary"><h2>Summary (summary.md)</h2>{markdown_html(data.summary_md)}</section>'
        if data.summary_md
        else ""
    )
    notes_for = {
        "step_law": check_note(data, ("step", "step_beyond")),
        "size_law": check_note(data, ("size", "chain")),
    }
    sections = {
        f.name: _figure_html(f, dpi, notes_for.get(f.name, ""))
        for f in figures
        if f.png is not None and f.name not in top
    }
    answer_html, answer = _answer_section(data, sections, by_name, dpi)
    warnings = warnings_of(data, answer)
    warnings_html = (
        '<section id="warnings"><h2>Warnings</h2><ul class="warnings">'
        + "".join(f"<li>{_e(w)}</li>" for w in warnings)
        + "</ul></section>"
        if warnings
        else ""
    )
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Source: <code>{_e(data.source)}</code>. {len(shown)} figures'
        + (f", {len(skipped)} not shown (see below)" if skipped else "")
        + ".</p>",
        answer_html,
        warnings_html,
        '<h2 id="diagnostics">Diagnostics</h2>',
        f"<nav>{nav}</nav>",
        notes,
        sections.get("cv_scatter", ""),
        _cv_section(data),
        sections.get("slices", ""),
        sections.get("ternary", ""),
        sections.get("step_law", ""),
        sections.get("size_law", ""),
        sections.get("optimum", ""),
        ("<h2>Optimum</h2>" if "optimum" not in sections and data.optimum else "") + _optimum_section(data),
        "<h2>Runs</h2>",
        _runs_section(data),
        summary,
        "".join(_figure_html(f, dpi) for f in skipped),
        "<h2>How this was made</h2>",
        _provenance(data, report_command, seconds),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        + "\n".join(b for b in body if b)
        + "</main></body></html>\n"
    )


def write_report(
    data: ReportData,
    out: str | Path,
    figures_dir: str | Path | None = None,
    formats: tuple[str, ...] = ("png", "svg"),
    title: str | None = None,
    report_command: str | None = None,
) -> tuple[Path, list[RenderedFigure]]:
    """Draw the figures, write them to `figures_dir` (default: `<out stem>_figures/` beside `out`) and the page."""
    started = time.perf_counter()
    out = Path(out)
    figures_dir = Path(figures_dir) if figures_dir is not None else out.with_name(out.stem + "_figures")
    figures = render_figures(data, figures_dir if formats else None, formats)
    title = title or "mixlaw report"
    page = render_html(
        data, figures, title, report_command=report_command, seconds=time.perf_counter() - started
    )
    atomic_write(out, page)
    return out, figures
