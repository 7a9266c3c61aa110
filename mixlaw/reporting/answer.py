"""The answer a report, summary.md and the terminal lead with: the verdict, the mixture with its intervals, the
predicted gain with its interval and P(beats baseline), and (for `mixlaw run`) whether the prediction held.

Read from optimum.json (`recommendation` when the optimizer wrote one, else `uncertainty`) and validation.json;
pure functions of those dicts, no matplotlib.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mixlaw.mixture import Domains, strip_prefix


@dataclass
class Share:
    domain: str
    value: float
    lo: float | None = None
    hi: float | None = None
    baseline: float | None = None


@dataclass
class Interval:
    value: float
    lo: float | None = None
    hi: float | None = None

    def text(self, digits: int = 4, signed: bool = True) -> str:
        sign = "+" if signed else ""
        core = f"{self.value:{sign}.{digits}f}"
        if self.lo is None or self.hi is None:
            return core
        return f"{core} [{self.lo:{sign}.{digits}f}, {self.hi:{sign}.{digits}f}]"


@dataclass
class Answer:
    verdict: str | None  # "recommend" | "decline" | None (no recommendation in optimum.json)
    reason: str | None
    shares: list[Share]
    baseline_name: str
    gain: Interval | None  # predicted baseline - optimum objective at the target, nats/token
    gain_name: str = "total"
    p_beats_baseline: float | None = None
    level: float | None = None  # interval level, e.g. 0.9
    n_members: int | None = None
    uncertainty_reason: str | None = None
    validation: dict[str, Any] | None = None  # see `held`
    warnings: list[str] = field(default_factory=list)

    @property
    def level_text(self) -> str:
        return f"{round(100 * self.level)}%" if self.level else "90%"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _interval(raw: Any) -> Interval | None:
    if isinstance(raw, dict) and _number(raw.get("value")) is not None:
        return Interval(float(raw["value"]), _number(raw.get("lo")), _number(raw.get("hi")))
    value = _number(raw)
    return Interval(value) if value is not None else None


def _shares(optimum: dict[str, Any]) -> list[Share]:
    mixture = optimum.get("mixture") if isinstance(optimum.get("mixture"), dict) else {}
    domains = [strip_prefix(k) for k in mixture]
    known = Domains(domains)
    baseline = optimum.get("baseline") if isinstance(optimum.get("baseline"), dict) else {}
    base_mix = {known.find(k): v for k, v in (baseline.get("mixture") or {}).items()}
    spread = ((optimum.get("uncertainty") or {}).get("mixture")) or {}
    bounds = {known.find(k): v for k, v in spread.items() if isinstance(v, dict)}
    out = []
    for key, value in mixture.items():
        d = strip_prefix(key)
        b = bounds.get(d) or {}
        out.append(
            Share(d, float(value), _number(b.get("lo")), _number(b.get("hi")), _number(base_mix.get(d)))
        )
    return out


def answer_of(optimum: dict[str, Any] | None, validation: dict[str, Any] | None = None) -> Answer | None:
    """The answer in optimum.json (None without a mixture); `validation`: `mixlaw run`'s validation.json."""
    if not isinstance(optimum, dict) or not isinstance(optimum.get("mixture"), dict):
        return None
    uncertainty = optimum.get("uncertainty") if isinstance(optimum.get("uncertainty"), dict) else {}
    recommendation = optimum.get("recommendation") if isinstance(optimum.get("recommendation"), dict) else {}
    improvement = uncertainty.get("improvement") if isinstance(uncertainty.get("improvement"), dict) else {}
    gain = (
        _interval(recommendation.get("gain"))
        or _interval(improvement)
        or _interval(optimum.get("improvement"))
    )
    p_beats = _number(recommendation.get("p_beats_baseline"))
    if p_beats is None:
        p_beats = _number(uncertainty.get("p_beats_baseline"))
    verdict = (
        recommendation.get("verdict") if recommendation.get("verdict") in ("recommend", "decline") else None
    )
    baseline = optimum.get("baseline") if isinstance(optimum.get("baseline"), dict) else {}
    answer = Answer(
        verdict=verdict,
        reason=str(recommendation["reason"]) if recommendation.get("reason") else None,
        shares=_shares(optimum),
        baseline_name=str(baseline.get("name", "baseline")),
        gain=gain,
        gain_name=str(improvement.get("name", "total")),
        p_beats_baseline=p_beats,
        level=_number(uncertainty.get("level")),
        n_members=uncertainty.get("n_members"),
        uncertainty_reason=optimum.get("uncertainty_reason"),
    )
    if validation:
        answer.validation = held(validation, answer.gain)
    return answer


def held(validation: dict[str, Any], predicted_gain: Interval | None) -> dict[str, Any] | None:
    """Did the prediction hold at the target? {"held": "yes"|"direction"|"no", "sentence", "measured",
    "predicted"}: yes when the measured gain lies in the predicted gain's interval (or, without one, has the
    predicted sign and the run's verdict agrees), direction when only the sign agrees."""
    gain = validation.get("gain") if isinstance(validation.get("gain"), dict) else {}
    measured, predicted = _number(gain.get("measured")), _number(gain.get("predicted"))
    if measured is None:
        return None
    verdict = (validation.get("verdict") or {}).get("result")
    if predicted_gain is not None:  # the same number as the verdict line, with its interval
        predicted = predicted_gain.value
    lo = predicted_gain.lo if predicted_gain is not None else None
    hi = predicted_gain.hi if predicted_gain is not None else None
    same_sign = predicted is not None and (measured > 0) == (predicted > 0)
    inside = lo is not None and hi is not None and lo <= measured <= hi
    if inside or (lo is None and same_sign and verdict in ("win", "loss")):
        state = "yes"
    elif same_sign:
        state = "direction"
    else:
        state = "no"
    band = f" [{lo:+.4f}, {hi:+.4f}]" if lo is not None and hi is not None else ""
    pred_text = f"{predicted:+.4f}{band}" if predicted is not None else "not available"
    opening = {
        "yes": "The prediction held",
        "direction": "The prediction held in direction but not in size",
        "no": "The prediction did not hold",
    }[state]
    sentence = (
        f"{opening}: the recommended mixture's loss was {measured:+.4f} nats/token lower than the baseline's "
        f"(measured, seed mean; predicted {pred_text})"
        + (f"; the run's verdict: {verdict}" if verdict else "")
        + "."
    )
    arms = validation.get("arms") or {}
    errors = [_number((arms.get(a) or {}).get("rel_error")) for a in ("optimum", "baseline")]
    errors = [e for e in errors if e is not None]
    if errors and max(abs(e) for e in errors) > 0.05:
        sentence += (
            f" The absolute losses were off by up to {100 * max(abs(e) for e in errors):.1f}% "
            "(predicted − measured, relative), so read the gain, not the level."
        )
    return {"held": state, "sentence": sentence, "measured": measured, "predicted": predicted}


def answer_lines(
    optimum: dict[str, Any] | None, validation: dict[str, Any] | None = None, width: int = 8
) -> list[str]:
    """A few lines for the end of the terminal output: verdict, mixture with intervals, gain with interval."""
    answer = answer_of(optimum, validation)
    if answer is None:
        return []
    lines = []
    verdict = "decline: no confident recommendation" if answer.verdict == "decline" else answer.verdict
    head = f"Verdict: {verdict}" + (f" ({answer.reason})" if answer.reason else "")
    if answer.verdict:
        lines.append(head)
    level = answer.level_text
    shares = sorted(answer.shares, key=lambda s: -s.value)[:width]
    parts = []
    for s in shares:
        band = f" [{s.lo:.2f}, {s.hi:.2f}]" if s.lo is not None and s.hi is not None else ""
        parts.append(f"{s.domain} {s.value:.3f}{band}")
    rest = len(answer.shares) - len(shares)
    lines.append(
        f"Mixture ({level} intervals): "
        + ", ".join(parts)
        + (f", … {rest} more in optimum.json" if rest else "")
        if any(s.lo is not None for s in answer.shares)
        else "Mixture: " + ", ".join(parts) + (f", … {rest} more" if rest else "")
    )
    if answer.gain is not None:
        text = f"Predicted gain over {answer.baseline_name} ({answer.gain_name}, nats/token): {answer.gain.text()}"
        if answer.p_beats_baseline is not None:
            text += f"; P(beats baseline) {answer.p_beats_baseline:.2f}"
        lines.append(text)
    if answer.validation:
        lines.append(answer.validation["sentence"])
    return lines


def answer_lines_of_folder(folder) -> list[str]:
    """`answer_lines` from a results folder's optimum.json and validation.json (either may be missing)."""
    import json
    from pathlib import Path

    def read(name: str) -> dict[str, Any] | None:
        path = Path(folder) / name
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None

    return answer_lines(read("optimum.json"), read("validation.json"))
