"""Lightning callbacks used by openretina's training entry points."""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import lightning
import torch


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
