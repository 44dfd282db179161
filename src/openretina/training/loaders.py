"""Wrap the per-session dataloaders of :func:`multiple_movies_dataloaders` for a Lightning ``Trainer``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, IterableDataset

from openretina.data_io.cyclers import LongCycler, ShortCycler
from openretina.errors import DataFormatError

TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"


# Per-session samplers are put at epoch `epoch * SAMPLER_EPOCH_STRIDE` at the start of each training epoch; a
# session's loader is re-iterated fewer times than this within one epoch, so epochs never share random shifts.
SAMPLER_EPOCH_STRIDE = 1000


class EpochCycler(IterableDataset):
    """A :class:`LongCycler` whose batches are a function of the epoch number alone, resumable mid-epoch.

    ``position`` (set by :class:`~openretina.training.callbacks.EpochData` during fit) returns the current epoch
    and how many of its batches were already trained. At the start of each iteration the session order and every
    session sampler's random shifts are set from the epoch (not from how many times the loaders were iterated
    before, which a resumed process does not know), and the batches already trained are skipped. Without a
    ``position`` it behaves like the wrapped cycler. Output: ``(session, DataPoint)`` batches.
    """

    def __init__(self, cycler: LongCycler) -> None:
        self.cycler = cycler
        self.position: Callable[[], tuple[int, int]] | None = None

    def start_epoch(self, epoch: int) -> None:
        """Make the next iteration yield the batches of ``epoch``."""
        self.cycler.set_epoch(epoch)
        for loader in self.cycler.loaders.values():
            set_epoch = getattr(loader.sampler, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch * SAMPLER_EPOCH_STRIDE)

    def __len__(self) -> int:
        return len(self.cycler)

    def __iter__(self) -> Iterator[Any]:
        epoch, done = self.position() if self.position is not None else (None, 0)
        if epoch is not None:
            self.start_epoch(epoch)
        batches = iter(self.cycler)
        for _ in range(done):  # drawn but not trained on again: keeps every session's stream in step
            next(batches)
        return batches


@dataclass(frozen=True)
class CycledLoaders:
    """What ``Trainer.fit`` / ``Trainer.test`` consume.

    Attributes:
        train: one stream of ``(session, DataPoint)`` batches per epoch, all sessions interleaved (an
            :class:`EpochCycler`; :class:`~openretina.training.callbacks.EpochData` drives it during fit).
        validation: every validation batch of every session once.
        test: test stimulus name -> every batch of that stimulus, session by session.
    """

    train: DataLoader
    validation: ShortCycler
    test: dict[str, ShortCycler]


def cycle_session_loaders(dataloaders: Mapping[str, Mapping[str, DataLoader]], seed: int = 42) -> CycledLoaders:
    """Interleave sessions: a seeded :class:`LongCycler` for training, :class:`ShortCycler` s for the rest.

    ``dataloaders`` is the dict returned by ``multiple_movies_dataloaders``: ``"train"``, ``"validation"`` and one
    key per test stimulus, each mapping session -> DataLoader.
    """
    missing = [split for split in (TRAIN_SPLIT, VALIDATION_SPLIT) if split not in dataloaders]
    if missing:
        raise DataFormatError(
            f"dataloaders lack the split(s) {missing}; got keys {sorted(dataloaders)}. "
            "Build them with openretina.data_io.base_dataloader.multiple_movies_dataloaders."
        )
    train = DataLoader(EpochCycler(LongCycler(dataloaders[TRAIN_SPLIT], shuffle=True, seed=seed)), batch_size=None)
    tests = {
        name: ShortCycler(loaders)
        for name, loaders in dataloaders.items()
        if name not in (TRAIN_SPLIT, VALIDATION_SPLIT)
    }
    return CycledLoaders(train=train, validation=ShortCycler(dataloaders[VALIDATION_SPLIT]), test=tests)
