"""``openretina train [--config-name NAME] [overrides]``: train a model from a Hydra config.

Default config: ``synthetic_core_readout`` (the embedded synthetic retina, so it runs with no data). Examples::

    openretina train trainer.max_epochs=5 model.hidden_channels=[8,8]
    openretina train --config-name hdf5_core_readout paths.data_dir=my_data +trainer.limit_train_batches=10
    openretina train -m model.learning_rate=0.01,0.003        # a sweep, one run per value
    openretina train ckpt_path=last hydra.run.dir=<run dir>   # resume an interrupted run
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from openretina.cli.hydra_app import run_hydra_task
from openretina.training.train import train_model

__all__ = ["main", "train_task"]

log = logging.getLogger(__name__)


def _sweep_direction(cfg: DictConfig) -> str | None:
    """``objective_direction``, else the sweeper's ``direction`` (the reference only read the former)."""
    direction = cfg.get("objective_direction")
    if direction is None and HydraConfig.initialized():
        direction = HydraConfig.get().sweeper.get("direction")
    return str(direction) if direction is not None else None


def train_task(cfg: DictConfig) -> float | None:
    """Hydra task: train, and return the ``objective_target`` metric (best value if checkpointed) for sweepers.

    In a multirun, a failed job scores -inf (maximize) or +inf (minimize) so the sweep goes on; a single run
    re-raises the error.
    """
    try:
        metrics = train_model(cfg)
    except Exception:
        direction = _sweep_direction(cfg)
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if multirun and direction in ("maximize", "minimize"):
            log.exception("training failed; scoring this job as the worst possible value")
            return -math.inf if direction == "maximize" else math.inf
        raise
    target = cfg.get("objective_target")
    if target is None:
        return None
    return metrics.get(f"best_{target}", metrics.get(str(target)))


def main(argv: Sequence[str]) -> int:
    """Entry point of ``openretina train``."""
    return run_hydra_task(argv, train_task, prog="openretina train")
