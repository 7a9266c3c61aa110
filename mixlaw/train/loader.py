"""Mixture data loader: every batch holds sequences from each domain in the given proportions.

Allocation is deterministic and per sequence slot: slot s goes to the domain that is furthest behind its
target share (`p_k * (s + 1) - n_k` largest, ties to the first domain). The cumulative count of each domain
therefore stays within one sequence of `p_k * s`, so each batch's counts are within ~1 of `p_k * B` (not only in
expectation). Inside a domain, training tokens are cut into non-overlapping windows of `seq_len + 1` tokens
visited in a seeded random order; when a domain is used up, a new epoch starts with a fresh order and offset.
Repetition is allowed and reported through `epochs()`.

Everything is a pure function of (seed, step), so `skip_to(step)` restores the exact state after a resume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mixlaw.errors import MixlawInputError


class _DomainStream:
    """Windows of one domain's token array, epoch by epoch."""

    def __init__(self, tokens: np.ndarray, seq_len: int, seed: int, index: int, name: str) -> None:
        if len(tokens) < seq_len + 1:
            raise MixlawInputError(
                f"domain {name!r} has only {len(tokens)} training tokens, fewer than seq_len + 1 = {seq_len + 1}"
            )
        self.tokens = tokens
        self.seq_len = seq_len
        self.seed = seed
        self.index = index
        self.n_windows = (len(tokens) - 1) // seq_len
        self._epoch = -1
        self._perm: np.ndarray = np.empty(0, dtype=np.int64)
        self._offset = 0

    def _load_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, self.index, epoch])
        slack = len(self.tokens) - 1 - self.n_windows * self.seq_len  # 0 .. seq_len - 1
        self._offset = int(rng.integers(0, slack + 1))
        self._perm = rng.permutation(self.n_windows)
        self._epoch = epoch

    def window(self, m: int) -> np.ndarray:
        """The m-th window drawn from this domain (m = 0, 1, ...), shape (seq_len + 1,)."""
        epoch, pos = divmod(m, self.n_windows)
        if epoch != self._epoch:
            self._load_epoch(epoch)
        start = self._offset + int(self._perm[pos]) * self.seq_len
        return np.asarray(self.tokens[start : start + self.seq_len + 1], dtype=np.int64)


class MixtureLoader:
    """Batches of (B, seq_len + 1) token windows drawn from domains in fixed proportions.

    Args:
        tokens: domain name -> 1-D array of training token ids (documents joined by end-of-text).
        proportions: domain name -> share of sequences (summing to 1); zero-share domains are never read.
        batch_size: sequences per batch (B).
        seq_len: tokens per training sequence (T); windows hold T + 1 tokens (inputs and shifted targets).
        seed: seed of the window order.
        stages: optional multi-stage schedule, a list of (end step, proportions); `proportions` is then the
            overall mixture (its positive domains are the ones read). Within stage s the cumulative count of each
            domain tracks the piecewise-linear target sum_s p_s x (slots of stage s so far) and only the stage's
            positive domains are drawn. Domain streams continue across stages, so data repeated across stages
            counts against the domain's epochs once.
    """

    def __init__(
        self,
        tokens: Mapping[str, np.ndarray],
        proportions: Mapping[str, float],
        batch_size: int,
        seq_len: int,
        seed: int,
        stages: Sequence[tuple[int, Mapping[str, float]]] | None = None,
    ) -> None:
        missing = [d for d, p in proportions.items() if p > 0 and d not in tokens]
        if missing:
            raise MixlawInputError(f"mixture names domain(s) {missing} that the corpus does not have")
        total = float(sum(proportions.values()))
        if abs(total - 1.0) > 1e-6 or any(p < 0 for p in proportions.values()):
            raise MixlawInputError(f"mixture proportions must be >= 0 and sum to 1, got sum {total:.6g}")
        self.names = [d for d, p in proportions.items() if p > 0]
        self.p = np.array([proportions[d] for d in self.names], dtype=np.float64)
        self.p /= self.p.sum()
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.streams = [
            _DomainStream(np.asarray(tokens[d]), seq_len, seed, i, d) for i, d in enumerate(self.names)
        ]
        self.available = np.array([len(tokens[d]) for d in self.names], dtype=np.int64)
        self.counts = np.zeros(len(self.names), dtype=np.int64)  # sequences drawn per domain
        self.step = 0
        self._stage_end: list[int] = []
        self._stage_p = np.zeros((0, len(self.names)))
        if stages:
            extra = [d for _, m in stages for d, p in m.items() if p > 0 and d not in self.names]
            if extra:
                raise MixlawInputError(
                    f"stage mixture uses domain(s) {sorted(set(extra))} absent from the overall mixture"
                )
            for i, (_, m) in enumerate(stages):
                if abs(sum(m.values()) - 1.0) > 1e-6 or any(p < 0 for p in m.values()):
                    raise MixlawInputError(f"stage {i + 1}: proportions must be >= 0 and sum to 1")
            self._stage_end = [int(e) for e, _ in stages]
            self._stage_p = np.array([[float(m.get(d, 0.0)) for d in self.names] for _, m in stages])

    def _target(self, slot: int) -> np.ndarray:
        """Staged runs: cumulative target count of each domain after `slot` sequence slots."""
        target = np.zeros(len(self.names))
        prev = 0
        last = len(self._stage_end) - 1
        for s, (end, p) in enumerate(zip(self._stage_end, self._stage_p)):
            lo, hi = (
                prev * self.batch_size,
                (end * self.batch_size if s < last else max(slot, end * self.batch_size)),
            )
            if slot <= lo:
                break
            target += p * (min(slot, hi) - lo)
            prev = end
        return target

    def _allocate_staged(self) -> np.ndarray:
        stage = next(
            (s for s, end in enumerate(self._stage_end) if self.step < end), len(self._stage_end) - 1
        )
        inactive = self._stage_p[stage] <= 0
        out = np.empty(self.batch_size, dtype=np.int64)
        slot = int(self.counts.sum())
        for i in range(self.batch_size):
            slot += 1
            deficit = self._target(slot) - self.counts
            deficit[inactive] = -np.inf
            k = int(np.argmax(deficit))
            out[i] = k
            self.counts[k] += 1
        return out

    def _allocate(self) -> np.ndarray:
        """Domain index of each slot of the next batch, shape (B,)."""
        if self._stage_end:
            return self._allocate_staged()
        out = np.empty(self.batch_size, dtype=np.int64)
        slot = int(self.counts.sum())
        for i in range(self.batch_size):
            slot += 1
            k = int(np.argmax(self.p * slot - self.counts))
            out[i] = k
            self.counts[k] += 1
        return out

    def next_batch(self) -> np.ndarray:
        """The next batch as an int64 array of shape (B, seq_len + 1)."""
        before = self.counts.copy()
        ks = self._allocate()
        seen = before.copy()
        rows = []
        for k in ks:
            rows.append(self.streams[k].window(int(seen[k])))
            seen[k] += 1
        self.step += 1
        return np.stack(rows)

    def skip_to(self, step: int) -> None:
        """Advance to `step` without building batches (restores state after a resume)."""
        while self.step < step:
            self._allocate()
            self.step += 1

    def batch_counts(self) -> dict[str, int]:
        """Sequences per domain drawn so far."""
        return dict(zip(self.names, self.counts.tolist(), strict=True))

    def tokens_consumed(self) -> dict[str, int]:
        """Training tokens (targets) consumed per domain so far."""
        return {d: int(c) * self.seq_len for d, c in zip(self.names, self.counts, strict=True)}

    def epochs(self) -> dict[str, float]:
        """Passes over each domain's training tokens so far (> 1 means data was repeated)."""
        return {
            d: float(c * self.seq_len / a)
            for d, c, a in zip(self.names, self.counts, self.available, strict=True)
        }
