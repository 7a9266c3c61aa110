"""Registry of mixing laws by name (`mixlaw laws` lists them)."""

from __future__ import annotations

from mixlaw.errors import MixlawInputError
from mixlaw.laws.base import MixingLaw, parse_hyper
from mixlaw.laws.blend import Blend
from mixlaw.laws.dml import DML, DML2, DMLImplicit, DMLLog
from mixlaw.laws.peers import PEER_LAWS
from mixlaw.laws.regression import RidgeRLogR

LAWS: dict[str, type[MixingLaw]] = {}


def register(law_class: type[MixingLaw]) -> type[MixingLaw]:
    """Add a law class to the registry (usable as a decorator by extensions)."""
    LAWS[law_class.name] = law_class
    return law_class


for _law in (DML2, DML, DMLLog, DMLImplicit, RidgeRLogR, *PEER_LAWS, Blend):
    register(_law)


def get_law(name: str) -> type[MixingLaw]:
    if name not in LAWS:
        raise MixlawInputError(f"unknown law {name!r}; available: {', '.join(LAWS)}")
    return LAWS[name]


def law_from_dict(data: dict) -> MixingLaw:
    return get_law(data["law"]).from_dict(data)


__all__ = ["LAWS", "MixingLaw", "get_law", "law_from_dict", "parse_hyper", "register"]
