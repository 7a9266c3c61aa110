"""Mixture loader: per-batch proportions, determinism, resume, epochs."""

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.train.loader import MixtureLoader


def _tokens(sizes):
    return {f"d{i}": np.arange(n, dtype=np.uint16) % 1000 + 1000 * i for i, n in enumerate(sizes)}


def _domain_of(batch):
    return batch[:, 0] // 1000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_batch_counts_close_to_proportions(seed):
    rng = np.random.default_rng(seed)
    k = 5
    p = rng.dirichlet(np.ones(k))
    p = p / p.sum()
    props = {f"d{i}": float(p[i]) for i in range(k)}
    batch_size = 24
    loader = MixtureLoader(_tokens([5000] * k), props, batch_size=batch_size, seq_len=16, seed=seed)
    totals = np.zeros(k)
    for step in range(1, 60):
        counts = np.bincount(_domain_of(loader.next_batch()), minlength=k)
        assert counts.sum() == batch_size
        assert np.all(np.abs(counts - p * batch_size) < 2), (counts, p * batch_size)
        totals += counts
        assert np.all(np.abs(totals - p * batch_size * step) < 1)


def test_deterministic_for_a_seed_and_differs_across_seeds():
    props = {"d0": 0.5, "d1": 0.3, "d2": 0.2}
    a = MixtureLoader(_tokens([3000, 2000, 800]), props, 8, 32, seed=7)
    b = MixtureLoader(_tokens([3000, 2000, 800]), props, 8, 32, seed=7)
    c = MixtureLoader(_tokens([3000, 2000, 800]), props, 8, 32, seed=8)
    batches_a = [a.next_batch() for _ in range(20)]
    batches_b = [b.next_batch() for _ in range(20)]
    batches_c = [c.next_batch() for _ in range(20)]
    assert all(np.array_equal(x, y) for x, y in zip(batches_a, batches_b))
    assert not all(np.array_equal(x, y) for x, y in zip(batches_a, batches_c))


def test_skip_to_restores_the_exact_stream():
    props = {"d0": 0.25, "d1": 0.75}
    full = MixtureLoader(_tokens([700, 900]), props, 6, 16, seed=3)
    ref = [full.next_batch() for _ in range(40)]
    resumed = MixtureLoader(_tokens([700, 900]), props, 6, 16, seed=3)
    resumed.skip_to(25)
    assert all(np.array_equal(resumed.next_batch(), ref[i]) for i in range(25, 40))


def test_epochs_and_repetition_are_tracked():
    props = {"d0": 0.5, "d1": 0.5}
    loader = MixtureLoader(_tokens([161, 100_000]), props, 4, 16, seed=0)  # d0 holds 10 windows
    for _ in range(20):  # 40 windows of d0: 4 epochs
        loader.next_batch()
    ep = loader.epochs()
    assert ep["d0"] == pytest.approx(40 * 16 / 161)
    assert ep["d0"] > 3.5 and ep["d1"] < 0.01
    assert loader.tokens_consumed() == {"d0": 640, "d1": 640}


def test_windows_within_an_epoch_do_not_repeat():
    loader = MixtureLoader(_tokens([16 * 50 + 1]), {"d0": 1.0}, 5, 16, seed=1)
    starts = np.concatenate([loader.next_batch()[:, 0] for _ in range(10)])
    assert len(set(starts.tolist())) == 50


def test_zero_share_domain_is_never_read_and_may_be_tiny():
    loader = MixtureLoader(_tokens([1000, 3]), {"d0": 1.0, "d1": 0.0}, 4, 16, seed=0)
    assert set(_domain_of(loader.next_batch()).tolist()) == {0}
    only = MixtureLoader(
        {"d0": _tokens([1000])["d0"]}, {"d0": 1.0, "d1": 0.0}, 4, 16, seed=0
    )  # d1 not loaded
    assert only.epochs() == {"d0": 0.0}


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(MixlawInputError, match="sum to 1"):
        MixtureLoader(_tokens([1000, 1000]), {"d0": 0.5, "d1": 0.4}, 4, 16, seed=0)
    with pytest.raises(MixlawInputError, match="does not have"):
        MixtureLoader(_tokens([1000]), {"d0": 0.5, "zz": 0.5}, 4, 16, seed=0)
    with pytest.raises(MixlawInputError, match="fewer than seq_len"):
        MixtureLoader(_tokens([10, 1000]), {"d0": 0.5, "d1": 0.5}, 4, 16, seed=0)
