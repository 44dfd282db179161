"""Wrap the per-session dataloaders of :func:`multiple_movies_dataloaders` for a Lightning ``Trainer``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch.utils.data import DataLoader

from openretina.data_io.cyclers import LongCycler, ShortCycler
from openretina.errors import DataFormatError

TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"


@dataclass(frozen=True)
class CycledLoaders:
    """What ``Trainer.fit`` / ``Trainer.test`` consume.

    Attributes:
        train: one stream of ``(session, DataPoint)`` batches per epoch, all sessions interleaved.
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
    train = DataLoader(LongCycler(dataloaders[TRAIN_SPLIT], shuffle=True, seed=seed), batch_size=None)
    tests = {
        name: ShortCycler(loaders)
        for name, loaders in dataloaders.items()
        if name not in (TRAIN_SPLIT, VALIDATION_SPLIT)
    }
    return CycledLoaders(train=train, validation=ShortCycler(dataloaders[VALIDATION_SPLIT]), test=tests)
