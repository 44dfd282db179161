"""Interleave the per-session DataLoaders of a multi-session dataset into one stream of ``(session, batch)``.

* :class:`LongCycler` (training): every session contributes as many batches per epoch as the largest session has,
  in round-robin over a session order shuffled each epoch; smaller sessions are cycled.
* :class:`ShortCycler` (validation/test): every batch of every session exactly once, session by session.

Both yield ``(session_key, DataPoint(inputs (B, C, T, H, W), targets (B, T, N)))``.

Distributed training: with ``world_size > 1`` (given, or read from an initialised ``torch.distributed`` group)
each rank keeps only the batches whose position in its session's stream is congruent to its rank, so no batch
is used by two ranks. This requires every rank to build its loaders with the same ``seed`` (true for
:func:`~openretina.data_io.base_dataloader.multiple_movies_dataloaders`), so that all ranks see the same stream.
Each rank still gathers the batches it skips; the ranks see the same session at the same step.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

__all__ = ["LongCycler", "ShortCycler", "cycle"]

T = TypeVar("T")


def cycle(iterable: Iterable[T]) -> Iterator[T]:
    """Repeat ``iterable`` forever, re-iterating it each time (so a DataLoader re-shuffles every pass).

    No local variable holds the item last yielded: once the consumer drops a batch, its memory can be reused.
    """
    while True:
        iterator = iter(iterable)
        try:
            yield next(iterator)
        except StopIteration:
            raise ValueError("cannot cycle an empty iterable (a DataLoader with zero batches?).") from None
        yield from iterator


def _draw_for_rank(stream: Iterator[T], rank: int, world_size: int) -> T:
    """Draw ``world_size`` items from ``stream`` and return item ``rank``: the ranks' items are disjoint. Every
    rank draws all of them, so all ranks re-iterate (and re-shuffle) their loaders at the same steps."""
    for _ in range(rank):
        next(stream)  # other ranks' items, dropped at once
    mine = next(stream)
    for _ in range(world_size - rank - 1):
        next(stream)
    return mine


def _tagged(key: str, batch: T) -> tuple[str, T]:
    return key, batch


def _rank_and_world_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values, else those of an initialised ``torch.distributed`` process group, else ``(0, 1)``."""
    if world_size is None:
        world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if rank is None:
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}.")
    return rank, world_size


def _check_loaders(loaders: Mapping[str, Any]) -> None:
    empty = sorted(key for key, loader in loaders.items() if loader is None)
    if not loaders or empty:
        raise ValueError(f"cyclers need at least one DataLoader and no None entries; None for sessions {empty}.")


class LongCycler(IterableDataset):
    """Round-robin over sessions for training; each session yields ``max_batches`` batches per epoch.

    ``loaders``: session -> DataLoader. ``len`` = ``n_sessions * max_batches`` (per rank: ``max_batches //
    world_size`` batches per session). With ``shuffle`` the sorted session order is permuted every epoch by a
    generator seeded with ``(seed, epoch)``; ``seed=None`` uses ``torch.initial_seed()``. Global RNGs are never
    touched. Use as ``DataLoader(LongCycler(loaders), batch_size=None)`` without workers: epoch counters (here and
    in the loaders' samplers) advance in the iterating process, so a worker copy would replay epoch 0 every time.
    """

    def __init__(
        self,
        loaders: Mapping[str, DataLoader],
        shuffle: bool = True,
        *,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        _check_loaders(loaders)
        self.loaders = dict(loaders)
        self.shuffle = shuffle
        self.seed = int(torch.initial_seed()) if seed is None else seed
        self.rank, self.world_size = _rank_and_world_size(rank, world_size)
        empty = sorted(key for key, loader in self.loaders.items() if len(loader) == 0)
        if empty:
            raise ValueError(
                f"training loaders of sessions {empty} yield no batch (fewer chunks than batch_size, and incomplete "
                "batches are dropped); use a smaller batch_size or fewer validation clips."
            )
        self.max_batches = max(len(loader) for loader in self.loaders.values())
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the session order of ``epoch`` on the next iteration."""
        self.epoch = epoch

    @property
    def batches_per_session(self) -> int:
        """Batches each session contributes per epoch on this rank."""
        return self.max_batches // self.world_size

    def __len__(self) -> int:
        return len(self.loaders) * self.batches_per_session

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        worker = get_worker_info()
        if worker is not None and worker.num_workers > 1:
            raise NotImplementedError(
                "LongCycler runs in one process; use num_workers=0 on the outer DataLoader (the per-session loaders "
                "may use their own workers)."
            )
        keys = sorted(self.loaders)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(keys))
            keys = [keys[i] for i in order]
        self.epoch += 1
        streams = {key: cycle(self.loaders[key]) for key in keys}
        for _ in range(self.batches_per_session):
            for key in keys:
                yield key, _draw_for_rank(streams[key], self.rank, self.world_size)


class ShortCycler(IterableDataset):
    """Every batch of every session once, sessions in sorted order, for validation and testing.

    With DataLoader workers, sessions are split into consecutive sorted groups of ``ceil(n_sessions / n_workers)``
    per worker (``ValueError`` if there are more workers than sessions). With ``world_size > 1`` each rank keeps
    the batches at positions ``rank, rank + world_size, ...`` of each session (so ranks may get unequal counts).
    """

    def __init__(
        self, loaders: Mapping[str, DataLoader], *, rank: int | None = None, world_size: int | None = None
    ) -> None:
        _check_loaders(loaders)
        self.loaders = dict(loaders)
        self.rank, self.world_size = _rank_and_world_size(rank, world_size)

    def _sessions_of_this_worker(self) -> list[str]:
        keys = sorted(self.loaders)
        worker = get_worker_info()
        if worker is None or worker.num_workers <= 1:
            return keys
        if worker.num_workers > len(keys):
            raise ValueError(
                f"ShortCycler got {worker.num_workers} workers for {len(keys)} sessions; use at most one worker "
                "per session."
            )
        per_worker = math.ceil(len(keys) / worker.num_workers)
        return keys[worker.id * per_worker : (worker.id + 1) * per_worker]

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for key in self._sessions_of_this_worker():
            # C iterators instead of a loop variable (or zip, which keeps its last tuple), so no batch stays
            # referenced here once it is yielded.
            mine = itertools.islice(self.loaders[key], self.rank, None, self.world_size)
            yield from map(functools.partial(_tagged, key), mine)
