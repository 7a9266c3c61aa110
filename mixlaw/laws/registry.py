"""The registry of mixing laws by name, and the hyper-parameters a law gets when it is one of several.

Kept apart from `mixlaw.laws` (which registers the built-in laws) so that a law made of other laws (`blend`)
can look them up without importing the package that imports it."""

from __future__ import annotations

from typing import Any

from mixlaw.errors import MixlawInputError
from mixlaw.laws.base import MixingLaw

LAWS: dict[str, type[MixingLaw]] = {}


def register(law_class: type[MixingLaw]) -> type[MixingLaw]:
    """Add a law class to the registry (usable as a decorator by extensions)."""
    LAWS[law_class.name] = law_class
    return law_class


def get_law(name: str) -> type[MixingLaw]:
    if name not in LAWS:
        raise MixlawInputError(f"unknown law {name!r}; available: {', '.join(LAWS)}")
    return LAWS[name]


def law_from_dict(data: dict) -> MixingLaw:
    return get_law(data["law"]).from_dict(data)


def law_hyper(
    name: str,
    seed: int = 0,
    domain_map: str | dict | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Hyper-parameters a law gets in comparisons, `auto` and blends: the caller's seed where the law is
    `seeded`, the domain map where it takes one, then `extra[name]`."""
    law_class = get_law(name)
    hyper: dict[str, Any] = {}
    if law_class.seeded:
        hyper["seed"] = seed
    if "domain_map" in law_class.defaults and domain_map is not None:
        hyper["domain_map"] = domain_map
    hyper.update((extra or {}).get(name, {}))
    return hyper
