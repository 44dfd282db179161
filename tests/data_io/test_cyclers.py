"""Tests of the multi-session cyclers in openretina.data_io.cyclers."""

from __future__ import annotations

import itertools
import weakref
from collections import Counter
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.base_dataloader import multiple_movies_dataloaders
from openretina.data_io.cyclers import LongCycler, ShortCycler, cycle


def _numbered_loaders(sizes: dict[str, int]) -> dict[str, DataLoader]:
    """Loaders whose batches are (session_index * 100 + batch_number), one number per batch."""
    return {
        key: DataLoader(torch.arange(n) + 100 * i, batch_size=1) for i, (key, n) in enumerate(sorted(sizes.items()))
    }


def _as_pairs(cycler) -> list[tuple[str, int]]:
    return [(key, int(batch)) for key, batch in cycler]


def test_cycle_repeats_and_reiterates() -> None:
    passes = []

    class Counting:
        def __iter__(self):
            passes.append(1)
            return iter([1, 2])

    assert list(itertools.islice(cycle(Counting()), 5)) == [1, 2, 1, 2, 1]
    assert len(passes) == 3
    with pytest.raises(ValueError, match="empty"):
        next(cycle([]))


def test_long_cycler_length_and_round_robin() -> None:
    cycler = LongCycler(_numbered_loaders({"a": 5, "b": 2, "c": 3}), shuffle=False)
    assert cycler.max_batches == 5 and len(cycler) == 15
    pairs = _as_pairs(cycler)
    assert len(pairs) == 15
    assert [key for key, _ in pairs] == ["a", "b", "c"] * 5
    assert [b for k, b in pairs if k == "a"] == [0, 1, 2, 3, 4]
    assert [b for k, b in pairs if k == "b"] == [100, 101, 100, 101, 100]  # small sessions repeat
    assert [b for k, b in pairs if k == "c"] == [200, 201, 202, 200, 201]


def test_long_cycler_seeded_shuffle_per_epoch() -> None:
    loaders = _numbered_loaders({k: 1 for k in "abcdefgh"})
    orders = [[k for k, _ in LongCycler(loaders, seed=3)] for _ in range(2)]
    assert orders[0] == orders[1]  # same seed, same first epoch
    cycler = LongCycler(loaders, seed=3)
    epoch_1, epoch_2 = [k for k, _ in cycler], [k for k, _ in cycler]
    assert epoch_1 == orders[0] and epoch_1 != epoch_2
    assert sorted(epoch_1) == list("abcdefgh")
    cycler.set_epoch(0)
    assert [k for k, _ in cycler] == epoch_1


def test_long_cycler_rank_split_is_disjoint_and_complete() -> None:
    loaders = _numbered_loaders({"a": 6, "b": 4})
    per_rank = [_as_pairs(LongCycler(loaders, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert [len(p) for p in per_rank] == [4, 4, 4]  # 6 // 3 batches per session per rank
    for step in range(4):  # all ranks work on the same session at every step
        assert len({pairs[step][0] for pairs in per_rank}) == 1
    a_batches = [b for pairs in per_rank for k, b in pairs if k == "a"]
    assert sorted(a_batches) == [0, 1, 2, 3, 4, 5]  # each of session a's batches on exactly one rank
    with pytest.raises(ValueError, match="rank=3, world_size=3"):
        LongCycler(loaders, rank=3, world_size=3)


def test_rank_split_with_real_loaders_has_no_shared_chunk() -> None:
    rng = np.random.default_rng(0)
    movies = MoviesTrainTestSplit(
        np.arange(600.0)[None, :, None, None] * np.ones((1, 1, 2, 2)), test=rng.random((1, 9, 2, 2))
    )
    responses = ResponsesTrainTestSplit(rng.random((2, 600)), test=rng.random((2, 9)))
    seen = []
    for rank in range(2):
        # Every rank builds its loaders independently with the same seed, as under DDP.
        loaders = multiple_movies_dataloaders({"s": responses}, {"s": movies}, 10, 4, 5, 30, 4)["train"]
        for _, batch in LongCycler(loaders, seed=5, rank=rank, world_size=2):
            seen.append((rank, batch.inputs[:, 0, 0, 0, 0].tolist()))
    chunks = Counter(start for _, starts in seen for start in starts)
    assert max(chunks.values()) == 1  # no chunk start served twice (a chunk's first frame identifies it)
    assert {rank for rank, _ in seen} == {0, 1}


def test_long_cycler_in_outer_dataloader() -> None:
    outer = DataLoader(LongCycler(_numbered_loaders({"a": 2, "b": 1}), shuffle=False), batch_size=None)
    assert [(k, int(b)) for k, b in outer] == [("a", 0), ("b", 100), ("a", 1), ("b", 100)]


def test_short_cycler_every_batch_once_sorted() -> None:
    pairs = _as_pairs(ShortCycler(_numbered_loaders({"b": 2, "a": 3})))
    assert pairs == [("a", 0), ("a", 1), ("a", 2), ("b", 100), ("b", 101)]
    rank_1 = _as_pairs(ShortCycler(_numbered_loaders({"b": 2, "a": 3}), rank=1, world_size=2))
    assert rank_1 == [("a", 1), ("b", 101)]


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_short_cycler_worker_partition() -> None:
    loaders = _numbered_loaders({"a": 2, "b": 1, "c": 1})
    outer = DataLoader(ShortCycler(loaders), batch_size=None, num_workers=2)
    assert sorted((k, int(b)) for k, b in outer) == [("a", 0), ("a", 1), ("b", 100), ("c", 200)]
    with pytest.raises(ValueError, match="3 workers for 2 sessions"):
        list(DataLoader(ShortCycler(_numbered_loaders({"a": 1, "b": 1})), batch_size=None, num_workers=3))


def test_cyclers_reject_missing_loaders() -> None:
    with pytest.raises(ValueError, match=r"None for sessions \['x'\]"):
        LongCycler({"x": None})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least one"):
        ShortCycler({})
    with pytest.raises(ValueError, match=r"sessions \['b'\] yield no batch"):
        LongCycler(
            {
                "a": DataLoader(torch.arange(3), batch_size=1),
                "b": DataLoader(torch.arange(1), batch_size=2, drop_last=True),
            }
        )


class _Batch:
    """A batch object that can be weakly referenced, to see who still holds it."""


class _FreshBatches:
    """A loader-like iterable making ``n`` new batches per pass; each new batch checks that no earlier one of any
    instance is still referenced (the consumer below drops every batch before asking for the next)."""

    made: ClassVar[list[weakref.ref[_Batch]]] = []

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            held = sum(ref() is not None for ref in self.made)
            assert held == 0, f"{held} earlier batches are still referenced while a new one is made"
            box = [_Batch()]
            self.made.append(weakref.ref(box[0]))
            yield box.pop()  # handed over without this generator keeping a reference


# Not LongCycler's rank 0 of 2: it holds its batch while drawing rank 1's, the price of identical draws on all ranks.
@pytest.mark.parametrize(
    "make_cycler",
    [
        lambda loaders: LongCycler(loaders, seed=0),
        lambda loaders: LongCycler(loaders, seed=0, rank=1, world_size=2),
        lambda loaders: ShortCycler(loaders),
        lambda loaders: ShortCycler(loaders, rank=0, world_size=2),
    ],
)
def test_cyclers_keep_no_batch_alive_after_yielding_it(make_cycler) -> None:
    # The loaders reuse a batch's memory once nobody references it; a cycler holding batches (one per session in
    # the round robin) would defeat that and keep them all in memory.
    _FreshBatches.made = []
    cycler = make_cycler({key: _FreshBatches(4) for key in ("a", "b", "c")})
    n_batches = 0
    for key, batch in cycler:
        assert isinstance(batch, _Batch) and key in ("a", "b", "c")
        n_batches += 1
        del batch
    assert n_batches == len(cycler) if isinstance(cycler, LongCycler) else n_batches > 0
