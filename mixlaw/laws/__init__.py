"""Registry of mixing laws by name (`mixlaw laws` lists them)."""

from __future__ import annotations

from mixlaw.laws.base import COMMON_SUMMARY_KEYS, FitContext, MixingLaw, parse_hyper
from mixlaw.laws.blend import Blend
from mixlaw.laws.dml import DML, DML2, DMLImplicit, DMLLog
from mixlaw.laws.peers import PEER_LAWS
from mixlaw.laws.registry import LAWS, get_law, law_from_dict, law_hyper, register
from mixlaw.laws.regression import RidgeRLogR

for _law in (DML2, DML, DMLLog, DMLImplicit, RidgeRLogR, *PEER_LAWS, Blend):
    register(_law)


__all__ = [
    "COMMON_SUMMARY_KEYS",
    "LAWS",
    "FitContext",
    "MixingLaw",
    "get_law",
    "law_from_dict",
    "law_hyper",
    "parse_hyper",
    "register",
]
