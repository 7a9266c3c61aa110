"""A weighted average of fitted laws: what `--law auto` uses when cross-validation says two laws are close.

    Blend(members="dml-log,ridge-rlogr", weights="0.75,0.25").fit(X, Y)   # L = 0.75 L_dml-log + 0.25 L_ridge

Each member is fitted on the same data and context with its own defaults (plus `seed` and `domain_map` where it
takes them: `law_hyper`); the prediction is the weighted mean of the members' predictions, per target. On 20-30 mixtures the choice
between two laws of similar cross-validated error is a coin flip that costs 10-20% when it lands wrong; a
blend with the weight chosen by the same cross-validation is never worse than the weighted mean of its members'
errors (|w a + (1 - w) b| <= w |a| + (1 - w) |b| for every prediction) and often better than both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.laws.base import FitContext, MixingLaw
from mixlaw.laws.registry import LAWS, get_law, law_from_dict, law_hyper


def _names(value: Any) -> list[str]:
    return [
        v.strip()
        for v in (value.split(",") if isinstance(value, str) else list(value or []))
        if str(v).strip()
    ]


class Blend(MixingLaw):
    name = "blend"
    description = (
        "weighted average of laws (members=dml-log,ridge-rlogr weights=0.5,0.5); `--law auto` blends "
        "its two best candidates when cross-validation prefers that"
    )
    defaults = {"members": "dml-log,ridge-rlogr", "weights": None, "seed": 0, "domain_map": None}
    seeded = True
    blendable = False

    def _members(self) -> tuple[list[str], np.ndarray]:
        names = _names(self.hyper["members"])
        unknown = [n for n in names if n not in LAWS or n == self.name]
        if len(names) < 2 or unknown:
            raise MixlawInputError(
                f"law blend: members must name two or more laws, got {self.hyper['members']!r}"
            )
        raw = self.hyper["weights"]
        weights = (
            np.full(len(names), 1.0 / len(names))
            if raw is None
            else np.array([float(w) for w in _names(raw) if w], dtype=float)
        )
        if len(weights) != len(names) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise MixlawInputError(
                f"law blend: weights {raw!r} must be {len(names)} non-negative numbers summing to 1"
            )
        return names, weights

    def _member(self, name: str) -> MixingLaw:
        law_class = get_law(name)
        if not law_class.blendable:
            raise MixlawInputError(f"law blend: {name} cannot be a member (it fits a different target)")
        return law_class(**law_hyper(name, int(self.hyper["seed"]), self.hyper["domain_map"]))

    def n_parameters(self, n_domains: int) -> int:
        return max(self._member(name).n_parameters(n_domains) for name in self._members()[0])

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        names, weights = self._members()
        members = [self._member(name).fit(X, Y, context).to_dict() for name in names]
        return {"members": members, "weights": weights.tolist()}

    def _load(self) -> None:
        self.members_ = [law_from_dict(member) for member in self.params_["members"]]

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return sum(w * m.predict(X) for w, m in zip(self.params_["weights"], self.members_))
