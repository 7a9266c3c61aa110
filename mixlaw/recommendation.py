"""The recommendation in optimum.json: `recommend` or `decline` (no confident recommendation), and why.

    rec = recommendation(optimum, min_confidence=0.9)
    rec == {"verdict": "decline", "reason": "...", "p_beats_baseline": 0.76, "gain": {"value", "lo", "hi"}}

Declined when the optimum lies outside the trust region (L1 distance to the nearest observed mixture above
the trust radius), when P(optimum beats baseline) < `min_confidence`, when the gain interval includes 0, or
when there are no intervals at all. For a result that is not a static mixture (a schedule, a critical share),
`support` replaces the trust-region check with the caller's own reasons (none: supported). The gain (loss
units at the target, baseline minus optimum) is the scale-aware `gain` block of optimum.json when present,
else the bootstrap's `uncertainty.improvement`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mixlaw.errors import MixlawInputError

MIN_CONFIDENCE = 0.9
VERDICTS = ("recommend", "decline")


def _interval(block: Any) -> dict[str, float] | None:
    """{"value", "lo", "hi"} from a gain-like block (flat, or nested under `total`/`objective`)."""
    if not isinstance(block, Mapping):
        return None
    if all(isinstance(block.get(k), (int, float)) for k in ("value", "lo", "hi")):
        return {k: float(block[k]) for k in ("value", "lo", "hi")}
    for key in ("objective", "total"):
        found = _interval(block.get(key))
        if found is not None:
            return found
    return None


def gain_and_confidence(optimum: Mapping[str, Any]) -> tuple[dict[str, float] | None, float | None, str]:
    """(gain interval, P(beats baseline), source): the scale-aware `gain` block if any, else the bootstrap."""
    gain_block = optimum.get("gain")
    unc = optimum.get("uncertainty") or {}
    gain = _interval(gain_block)
    p = None
    if gain is not None:
        p = gain_block.get("p_beats_baseline") if isinstance(gain_block, Mapping) else None
        p = unc.get("p_beats_baseline") if p is None else p
        return gain, None if p is None else float(p), "gain"
    gain = _interval(unc.get("improvement"))
    p = unc.get("p_beats_baseline")
    return gain, None if p is None else float(p), "bootstrap"


def recommendation(
    optimum: Mapping[str, Any], min_confidence: float = MIN_CONFIDENCE, support: Sequence[str] | None = None
) -> dict[str, Any]:
    """optimum.json's `recommendation` for an optimizer result (see the module docstring). `support`: the
    reasons the result lies outside the law's support, in place of the trust-region check (None: that check)."""
    if not 0 < min_confidence <= 1:
        raise MixlawInputError(f"--min-confidence {min_confidence}: must be in (0, 1]")
    gain, p, _ = gain_and_confidence(optimum)
    distance = optimum.get("distance_to_observed") or {}
    radius, l1 = distance.get("trust_radius"), distance.get("l1")
    why = [] if support is None else list(support)
    if support is None and l1 is not None and radius is not None and l1 > radius + 1e-6:
        why.append(
            f"the optimum is {l1:.3g} (L1) from the nearest observed mixture, outside the trust radius {radius:.3g}"
        )
    elif support is None and l1 is None:
        why.append("the law does not list its observed mixtures, so the optimum's support is unknown")
    if gain is None or p is None:
        why.append(
            "there are no intervals on the gain ("
            + str(optimum.get("uncertainty_reason") or "no bootstrap")
            + ")"
        )
    else:
        if p < min_confidence:
            why.append(f"P(beats baseline) is {p:.2f} < {min_confidence:g}")
        if gain["lo"] <= 0 <= gain["hi"]:
            why.append(f"the gain interval [{gain['lo']:.4g}, {gain['hi']:.4g}] includes 0")
    name = (optimum.get("baseline") or {}).get("name", "baseline")
    if why:
        verdict, reason = "decline", "No confident recommendation: " + "; ".join(why) + "."
    else:
        verdict = "recommend"
        reason = (
            f"The optimum beats the {name} baseline with P = {p:.2f} >= {min_confidence:g}, gain "
            f"{gain['value']:.4g} [{gain['lo']:.4g}, {gain['hi']:.4g}]"
            + (", inside the trust region." if support is None else ".")
        )
    return {"verdict": verdict, "reason": reason, "p_beats_baseline": p, "gain": gain}


def declined(optimum: Mapping[str, Any]) -> bool:
    rec = optimum.get("recommendation")
    return isinstance(rec, Mapping) and rec.get("verdict") == "decline"


def alternative_text(optimum: Mapping[str, Any]) -> str:
    """One line naming the best-supported alternative (optimum.json's `alternative`), or ''."""
    alt = optimum.get("alternative")
    if not isinstance(alt, Mapping):
        return ""
    shares = ", ".join(f"{k.removeprefix('p_')} {v:.3f}" for k, v in alt["mixture"].items() if v > 5e-4)
    return f"best-supported alternative: {alt['name']} ({shares}; predicted {alt['predicted']:.5g})"


def refuse_declined(optimum: Mapping[str, Any] | list, source: str, force: bool = False) -> None:
    """Raise (one line, exit 2) on a declined optimum unless `force` (a mixture without a recommendation, such
    as Olmix's result list, passes)."""
    if force or not isinstance(optimum, Mapping) or not declined(optimum):
        return
    reason = optimum["recommendation"].get("reason", "declined")
    raise MixlawInputError(
        f"{source}: refusing to export a declined optimum ({reason}) Pass --force to export it anyway"
    )
