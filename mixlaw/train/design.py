"""Mixture designs for proxy sweeps (pure numpy: no torch).

- `halving_grid`: the Data Mixing Laws paper's candidate grid. For every domain but the last, the values are
  `g * floor(cap / g) * 2**-s` (s = 0, 1, ...), values below the grid step `g` become 0; the last domain takes
  the remainder, which must lie in [0, its cap]. `n` of the candidates are then drawn at random (seeded).
- `dirichlet_design`: RegMix/Olmix-style samples around the token-count prior. The prior is the token share
  of each domain raised to `temperature` (0 = uniform, 1 = natural shares) and renormalised; each sample draws
  a strength from `n_strengths` log-spaced values in `strength_range` and samples Dirichlet(K x prior x strength)
  (K domains, so strength 1 with a uniform prior is the flat Dirichlet);
  weights below `min_weight` are zeroed; samples breaking a cap are rejected; duplicates are dropped.

Caps are maximum proportions per domain. `epoch_caps` turns token availability into caps: a domain with A
tokens in a run of D training tokens can take at most `max_epochs * A / D` of the mixture.
Every design is deterministic for its seed and returns mixtures whose proportions sum to 1.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.mixture import Mixture

Shares = dict[str, float]  # {domain: share}: a design's mixtures as plain mappings (`Mixture.as_dict()`)
log = logging.getLogger("mixlaw.design")


def check_tokens(tokens: Mapping[str, float], where: str = "design.tokens") -> None:
    """Token counts per domain must be finite numbers >= 0 (one-line error naming the domain)."""
    for domain, count in tokens.items():
        if isinstance(count, bool) or not isinstance(count, (int, float, np.integer, np.floating)):
            raise MixlawInputError(f"{where}: {domain}={count!r} must be a token count")
        if not math.isfinite(count) or count < 0:
            raise MixlawInputError(f"{where}: {domain}={count!r} must be a finite token count >= 0")


def check_domains(domains: Sequence[str], where: str = "design") -> None:
    """At least two domains, none empty or repeated."""
    if any(not str(d).strip() for d in domains):
        raise MixlawInputError(f"{where}: an empty domain name in {list(domains)}")
    repeated = sorted({d for d in domains if list(domains).count(d) > 1})
    if repeated:
        raise MixlawInputError(f"{where}: domain(s) {', '.join(map(str, repeated))} given more than once")
    if len(domains) < 2:
        raise MixlawInputError(f"{where}: a mixture design needs at least two domains, got {list(domains)}")


def epoch_caps(tokens: Mapping[str, int], train_tokens: int, max_epochs: float) -> dict[str, float]:
    """Per-domain maximum proportion so that no domain is repeated more than `max_epochs` times."""
    check_tokens(tokens)
    if not math.isfinite(train_tokens) or not math.isfinite(max_epochs):
        raise MixlawInputError(
            f"design: training tokens {train_tokens!r} and max_epochs {max_epochs!r} must be finite"
        )
    if train_tokens <= 0:
        raise MixlawInputError(f"design: training tokens per run must be positive, got {train_tokens}")
    if max_epochs <= 0:
        raise MixlawInputError(f"design.max_epochs: {max_epochs!r} must be positive")
    return {d: min(1.0, max_epochs * max(0, int(a)) / train_tokens) for d, a in tokens.items()}


def _check_caps(domains: Sequence[str], caps: Mapping[str, float] | None) -> np.ndarray:
    caps = dict(caps or {})
    unknown = set(caps) - set(domains)
    if unknown:
        raise MixlawInputError(f"design.caps: unknown domain(s) {sorted(unknown)} (domains: {list(domains)})")
    out = np.array([float(caps.get(d, 1.0)) for d in domains])
    if np.any(out < 0) or np.any(out > 1) or not np.all(np.isfinite(out)):
        raise MixlawInputError(
            f"design.caps: caps must lie in [0, 1], got {dict(zip(domains, out.tolist(), strict=True))}"
        )
    if out.sum() < 1 - 1e-9:
        raise MixlawInputError(
            f"design.caps: caps sum to {out.sum():.4g} < 1, so no mixture can satisfy them "
            "(raise max_epochs or the caps, or add data)"
        )
    return out


def halving_grid(
    domains: Sequence[str],
    caps: Mapping[str, float] | None = None,
    grid: float = 1 / 16,
    n: int | None = None,
    seed: int = 0,
) -> list[Shares]:
    """The paper's halving grid from per-domain caps; all candidates, or `n` drawn at random (seeded).

    The last domain of `domains` takes the remainder."""
    domains = list(domains)
    check_domains(domains)
    if not 0 < grid <= 0.5:
        raise MixlawInputError(f"design.grid: {grid!r} must be in (0, 0.5]")
    if abs(1 / grid - round(1 / grid)) > 1e-6:
        raise MixlawInputError(f"design.grid: {grid!r} must divide 1 (e.g. 1/16 = 0.0625, 0.1, 0.25)")
    cap = _check_caps(domains, caps)
    value_sets = []
    for c in cap[:-1]:
        top = grid * math.floor(c / grid + 1e-9)
        vals = {0.0}
        for s in range(int(round(top / grid)) + 1):
            v = top * 2.0**-s
            if v >= grid - 1e-12:
                vals.add(v)
        value_sets.append(sorted(vals))
    out: list[Shares] = []
    for combo in itertools.product(*value_sets):
        rest = 1.0 - sum(combo)
        if -1e-9 <= rest <= cap[-1] + 1e-9:
            values = [*combo, max(0.0, rest)]
            out.append(dict(zip(domains, values, strict=True)))
    if not out:
        raise MixlawInputError(
            f"design: the halving grid with caps {dict(zip(domains, cap.tolist(), strict=True))} is empty"
        )
    short = n is not None and n > len(out)
    if short or (n is None and len(out) <= len(domains)):
        capped = {d: float(c) for d, c in zip(domains, cap.tolist(), strict=True) if c < 1}
        log.warning(
            "design: the caps %s leave %d halving-grid candidate%s%s; %s",
            capped,
            len(out),
            "" if len(out) == 1 else "s",
            f", fewer than the {n} asked" if short else f" for {len(domains)} domains",
            f"the last domain ({domains[-1]}) takes the remainder, so its cap {cap[-1]:g} rules out most "
            "mixtures: list a domain without a cap last"
            if cap[-1] < 1
            else "loosen the caps, lower --grid, or use --method dirichlet",
        )
    if n is not None:
        if n < 1:
            raise MixlawInputError(f"design.n: {n!r} must be at least 1")
        if n < len(out):
            rng = np.random.default_rng(seed)
            keep = sorted(rng.choice(len(out), size=n, replace=False).tolist())
            out = [out[i] for i in keep]
    return out


def token_prior(tokens: Mapping[str, int], temperature: float = 0.5) -> dict[str, float]:
    """Token shares raised to `temperature` and renormalised (0 = uniform, 1 = natural shares)."""
    check_tokens(tokens)
    a = np.array([float(v) for v in tokens.values()], dtype=float)
    if a.sum() <= 0:
        raise MixlawInputError("design: token counts are all zero")
    if not math.isfinite(temperature) or temperature < 0:
        raise MixlawInputError(f"design.temperature: {temperature!r} must be >= 0")
    p = np.where(a > 0, (a / a.sum()) ** temperature, 0.0)
    return dict(zip(tokens.keys(), (p / p.sum()).tolist(), strict=True))


def dirichlet_design(
    tokens: Mapping[str, int],
    n: int,
    seed: int = 0,
    temperature: float = 0.5,
    caps: Mapping[str, float] | None = None,
    strength_range: tuple[float, float] = (0.1, 5.0),
    n_strengths: int = 15,
    min_weight: float = 2e-3,
    decimals: int = 4,
    max_tries: int = 100_000,
) -> list[Shares]:
    """`n` Dirichlet mixtures around the token-count prior, within caps; deterministic for `seed`."""
    domains = list(tokens)
    check_domains(domains)
    if n < 1:
        raise MixlawInputError(f"design.n: {n!r} must be at least 1")
    cap = _check_caps(domains, caps)
    prior = np.array(list(token_prior(tokens, temperature).values()))
    lo, hi = strength_range
    if not 0 < lo <= hi:
        raise MixlawInputError(f"design.strength_range: {strength_range!r} must be 0 < low <= high")
    strengths = np.geomspace(lo, hi, max(1, n_strengths))
    scale = 10**decimals
    rng = np.random.default_rng(seed)
    out: list[Shares] = []
    seen: set[tuple[int, ...]] = set()
    alpha_floor = 1e-3  # domains with no tokens in the prior can still be drawn, rarely
    for _ in range(max_tries):
        s = strengths[rng.integers(len(strengths))]
        w = rng.dirichlet(np.maximum(prior * s * len(domains), alpha_floor))
        w = np.where(w < min_weight, 0.0, w)
        if w.sum() <= 0:
            continue
        ints = _round_to_grid(w / w.sum(), scale)
        if np.any(ints > np.floor(cap * scale + 1e-9)):
            continue
        key = tuple(ints.tolist())
        if key in seen:
            continue
        seen.add(key)
        out.append(dict(zip(domains, (ints / scale).tolist(), strict=True)))
        if len(out) == n:
            return out
    raise MixlawInputError(
        f"design: found only {len(out)} of {n} Dirichlet mixtures within the caps after {max_tries} draws "
        "(loosen the caps / max_epochs or lower n)"
    )


def _round_to_grid(w: np.ndarray, scale: int) -> np.ndarray:
    """Integers summing to `scale`, nearest to w * scale (largest remainder)."""
    raw = w * scale
    ints = np.floor(raw).astype(np.int64)
    short = scale - int(ints.sum())
    order = np.argsort(-(raw - ints), kind="stable")
    ints[order[:short]] += 1
    return ints


def check_mixture(m: Mapping[str, float], domains: Sequence[str], where: str = "mixture") -> dict[str, float]:
    """Validate one mixture against the training domains (`mixlaw.mixture.Mixture`); returns it with every
    domain present, in `domains` order and spelling."""
    return Mixture.from_dict(m, domains, where, hint=None).as_dict()
