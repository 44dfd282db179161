"""The one optimizer / learning-rate-scheduler set-up shared by every Lightning model in openretina.

The reference repeats the same AdamW + ReduceLROnPlateau block four times, and one copy monitors a metric
its model never logs. Here there is a single function: models pass the metric they actually log and whether
higher values of it are better.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, cast

import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities.types import LRSchedulerConfigType, OptimizerLRSchedulerConfig
from omegaconf import DictConfig, OmegaConf

from openretina.modules.losses import CorrelationLoss3d

# Defaults of the reference zoo configs (configs/lr_scheduler/reduce_lr_on_plateau.yaml).
PLATEAU_FACTOR = 0.3
PLATEAU_PATIENCE = 5
PLATEAU_THRESHOLD = 0.0005
# Number of LR reductions the plateau scheduler may make before hitting its floor.
PLATEAU_MAX_REDUCTIONS = 3

# Keys of a scheduler config that belong to Lightning, not to the scheduler's constructor.
_LIGHTNING_SCHEDULER_KEYS = ("monitor", "interval", "frequency")


def default_plateau_scheduler(
    optimizer: torch.optim.Optimizer, learning_rate: float, mode: Literal["min", "max"]
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """ReduceLROnPlateau with the reference zoo settings; the floor is three reductions below the start LR."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=mode,
        factor=PLATEAU_FACTOR,
        patience=PLATEAU_PATIENCE,
        threshold=PLATEAU_THRESHOLD,
        threshold_mode="abs",
        min_lr=learning_rate * PLATEAU_FACTOR**PLATEAU_MAX_REDUCTIONS,
    )


def _as_plain_dict(config: Mapping[str, Any] | DictConfig) -> dict[str, Any]:
    """A resolved, detached ``dict`` copy of a config (interpolations resolved, no parent links)."""
    if isinstance(config, DictConfig):
        container = cast(dict[Any, Any], OmegaConf.to_container(config, resolve=True))
        return {str(k): v for k, v in container.items()}
    return dict(config)


def configure_optimizer_and_scheduler(
    parameters: Iterable[torch.nn.Parameter],
    learning_rate: float,
    monitor: str,
    mode: Literal["min", "max"],
    optimizer_config: Mapping[str, Any] | DictConfig | None = None,
    lr_scheduler_config: Mapping[str, Any] | DictConfig | None = None,
    estimate_stepping_batches: Callable[[], int | float] | None = None,
) -> OptimizerLRSchedulerConfig:
    """Build the optimizer and LR scheduler in the dictionary form Lightning's ``configure_optimizers`` returns.

    Args:
        parameters: the parameters to optimise.
        learning_rate: base learning rate (used by the defaults and to derive ``min_lr``).
        monitor: metric the default scheduler watches; it must be one the model logs.
        mode: ``"max"`` if higher values of ``monitor`` are better, else ``"min"``.
        optimizer_config: Hydra config with ``_target_`` (instantiated with ``params=...``); default
            ``AdamW(lr=learning_rate)`` with torch's defaults.
        lr_scheduler_config: Hydra config with ``_target_``, optionally holding the Lightning keys ``monitor``,
            ``interval`` and ``frequency``. Default: ReduceLROnPlateau on ``monitor`` (see
            :func:`default_plateau_scheduler`). A ``ReduceLROnPlateau`` config without ``min_lr`` gets
            ``learning_rate * factor**3``; a ``OneCycleLR`` config without ``total_steps`` gets
            ``estimate_stepping_batches()``.
        estimate_stepping_batches: returns the trainer's estimate of optimizer steps (only called when needed);
            None when no trainer is attached.
    """
    params = list(parameters)
    if optimizer_config is None:
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(params, lr=learning_rate)
    else:
        optimizer = instantiate(_as_plain_dict(optimizer_config), params=params)

    if lr_scheduler_config is None:
        scheduler: Any = default_plateau_scheduler(optimizer, learning_rate, mode)
        settings: dict[str, Any] = {}
    else:
        config = _as_plain_dict(lr_scheduler_config)
        settings = {key: config.pop(key) for key in _LIGHTNING_SCHEDULER_KEYS if config.get(key) is not None}
        target = str(config.get("_target_", ""))
        if target.endswith("ReduceLROnPlateau") and config.get("min_lr") is None:
            config["min_lr"] = learning_rate * config.get("factor", PLATEAU_FACTOR) ** PLATEAU_MAX_REDUCTIONS
        if target.endswith("OneCycleLR") and "total_steps" not in config and "steps_per_epoch" not in config:
            if estimate_stepping_batches is None:
                raise ValueError(
                    "lr_scheduler OneCycleLR needs 'total_steps' (or 'epochs' and 'steps_per_epoch'); none was "
                    "given and no trainer is attached to estimate it. Add total_steps to the scheduler config."
                )
            config["total_steps"] = int(estimate_stepping_batches())
        for key in _LIGHTNING_SCHEDULER_KEYS:
            config.pop(key, None)
        scheduler = instantiate(config, optimizer=optimizer)
    schedule: LRSchedulerConfigType = {
        "scheduler": scheduler,
        "monitor": settings.get("monitor", monitor),
        "interval": settings.get("interval", "epoch"),
        "frequency": settings.get("frequency", 1),
    }
    return {"optimizer": optimizer, "lr_scheduler": schedule}


def metric_mode(metric: object) -> Literal["min", "max"]:
    """``"max"`` when higher values of ``metric`` are better, else ``"min"``.

    A metric may say so with a ``higher_is_better`` attribute (torchmetrics' convention); otherwise a
    correlation reported un-negated (``negate=False``) counts as higher-is-better and anything else as a loss.
    """
    higher_is_better = getattr(metric, "higher_is_better", None)
    if higher_is_better is None:
        higher_is_better = isinstance(metric, CorrelationLoss3d) and not getattr(metric, "negate", True)
    return "max" if higher_is_better else "min"
