"""Lightning callbacks used by openretina's training entry points."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal, cast

import lightning
import torch

from openretina.training.loaders import EpochCycler


class KeepBestWeights(lightning.Callback):
    """Keep an in-memory copy of the weights with the best value of ``monitor``; :meth:`restore` puts them back.

    For short runs (the demo, tests) that want the best epoch's model without writing and re-reading a checkpoint.
    """

    def __init__(self, monitor: str = "val_correlation", mode: Literal["max", "min"] = "max") -> None:
        self.monitor = monitor
        self.mode = mode
        self.best_score = -math.inf if mode == "max" else math.inf
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        improved = score > self.best_score if self.mode == "max" else score < self.best_score
        if improved:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self._state = copy.deepcopy(pl_module.state_dict())

    def restore(self, pl_module: torch.nn.Module) -> Any:
        """Load the best weights into ``pl_module`` (no-op if no validation ran)."""
        if self._state is not None:
            pl_module.load_state_dict(self._state)
        return pl_module


class ShareCyclersAcrossRanks(lightning.Callback):
    """Give training cyclers the trainer's rank and world size once the processes exist.

    Cyclers read ``torch.distributed`` when they are built, which is before ``Trainer.fit`` starts the DDP
    processes; without this every rank would train on the same batches. Pass only training cyclers: validation
    and test cyclers are left whole on every rank, so every rank computes the same monitored metrics and the
    early-stopping / checkpoint decisions (collective operations) agree.
    """

    def __init__(self, cyclers: Sequence[Any]) -> None:
        self.cyclers = list(cyclers)

    def setup(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, stage: str) -> None:
        for cycler in self.cyclers:
            cycler.rank, cycler.world_size = trainer.global_rank, trainer.world_size


class EpochData(lightning.Callback):
    """Tell an :class:`EpochCycler` the trainer's epoch and how many of its batches were already trained.

    Makes the training batches a function of the epoch number and skips the batches a mid-epoch checkpoint
    already trained on, so a resumed run sees the same batches as an uninterrupted one (without it, a resumed
    process would restart the random shifts and session order from epoch 0 and repeat the epoch's first batches).
    """

    def __init__(self, cycler: EpochCycler) -> None:
        self.cycler = cycler

    def setup(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, stage: str) -> None:
        # Read when an epoch's iteration starts: (epoch, 0), or (epoch, k) when resuming after k of its batches.
        loop = trainer.fit_loop.epoch_loop
        # `current` is a _ProcessedTracker during fit; its declared type is the base class without `processed`.
        self.cycler.position = lambda: (trainer.current_epoch, int(cast(Any, loop.batch_progress.current).processed))
