"""``train_model(cfg)``: the whole training run of a composed config, one configured object per step."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import lightning
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import CheckpointIO
from omegaconf import DictConfig, OmegaConf

from openretina.training.builders import build_callbacks, build_loggers, build_model
from openretina.training.callbacks import EpochData, ShareCyclersAcrossRanks
from openretina.training.checkpoints import AtomicCheckpointIO, load_model_checkpoint, remove_partial_checkpoints
from openretina.training.data import TrainingData, load_data
from openretina.training.environment import prepare_run
from openretina.training.evaluate import evaluate_split
from openretina.training.loaders import EpochCycler

__all__ = ["TrainingRun", "fit_model", "train_model"]

log = logging.getLogger(__name__)


def _resume_path(cfg: DictConfig, trainer: lightning.Trainer) -> str | None:
    """``ckpt_path``: None, a path, or ``last`` (the run's ``last.ckpt``, if it exists; else train from scratch).

    Resuming a run directory first deletes the temporary files a killed writer left in its checkpoint folder.
    """
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path != "last":
        return ckpt_path
    callback = trainer.checkpoint_callback
    dirpath = getattr(callback, "dirpath", None)
    if not dirpath:
        return None
    if trainer.is_global_zero:
        remove_partial_checkpoints(dirpath)
    last = Path(dirpath) / "last.ckpt"
    return str(last) if last.is_file() else None


def _plugins(trainer_cfg: DictConfig) -> list[Any]:
    """The configured ``trainer.plugins`` plus :class:`AtomicCheckpointIO` unless one of them is a CheckpointIO."""
    configured = trainer_cfg.get("plugins")
    plugins = list(instantiate(configured)) if configured else []
    if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins


def _strategy_for(strategy: Any, num_sessions: int) -> Any:
    """``ddp`` with several sessions becomes ``ddp_find_unused_parameters_true``.

    Each batch comes from one session, so the other sessions' readouts get no gradient in that step, which plain
    DDP rejects ("parameters that were not used in producing the loss").
    """
    if strategy == "ddp" and num_sessions > 1:
        log.info("strategy=ddp with %d sessions: using ddp_find_unused_parameters_true", num_sessions)
        return "ddp_find_unused_parameters_true"
    return strategy


def _scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{name}": float(value) for name, value in metrics.items() if torch.as_tensor(value).numel() == 1}


@dataclass(frozen=True)
class TrainingRun:
    """Everything a finished run produced.

    Attributes:
        model: the model with the best checkpoint's weights (the last weights when nothing was checkpointed).
        data: the containers and loaders it was trained on.
        metrics: see :func:`train_model`.
        best_model_path: the best checkpoint's path, or "" when none was written.
    """

    model: lightning.LightningModule
    data: TrainingData
    metrics: dict[str, float]
    best_model_path: str


def train_model(cfg: DictConfig) -> dict[str, float]:
    """Fit the model of ``cfg`` on its data, test the best checkpoint, evaluate every test stimulus.

    Steps: seed everything (before data loading, unlike the reference, so the whole run is reproducible), load
    data, build the model, loggers, callbacks and trainer, fit (resuming from ``ckpt_path`` if set), reload the
    best checkpoint, ``trainer.test`` on validation and test splits, and write per-neuron tables and summaries to
    ``<paths.output_dir>/evaluation``. Returns the last logged scalars, ``best_<monitor>``, the test metrics
    (``test/<split>/<name>``) and each test split's ``<split>_corr_to_avg_mean``.
    """
    return fit_model(cfg).metrics


def fit_model(cfg: DictConfig) -> TrainingRun:
    """:func:`train_model`, returning the trained model and its data along with the metrics."""
    prepare_run(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    data = load_data(cfg)
    model = build_model(cfg, data.data_info)
    if cfg.get("only_train_readout", False):
        # Frozen entirely: no gradients, and eval mode so batch-norm statistics stay as trained (the reference's
        # froze only the gradients). Lightning keeps a submodule's mode across its validation loops.
        core = cast(torch.nn.Module, model.core)
        core.requires_grad_(False).eval()
    train_cycler = cast(EpochCycler, data.loaders.train.dataset)
    trainer: lightning.Trainer = instantiate(
        cfg.trainer,
        strategy=_strategy_for(cfg.trainer.get("strategy", "auto"), len(data.responses)),
        plugins=_plugins(cfg.trainer),
        logger=build_loggers(cfg.get("logger")),
        callbacks=[
            *build_callbacks(cfg.get("training_callbacks")),
            ShareCyclersAcrossRanks([train_cycler.cycler]),
            EpochData(train_cycler),
        ],
    )
    trainer.fit(model, data.loaders.train, data.loaders.validation, ckpt_path=_resume_path(cfg, trainer))
    metrics = _scalar_metrics(dict(trainer.callback_metrics))

    checkpoint = trainer.checkpoint_callback
    if not isinstance(checkpoint, ModelCheckpoint):
        checkpoint = None
    best_path = checkpoint.best_model_path if checkpoint is not None else ""
    if checkpoint is not None and best_path and checkpoint.best_model_score is not None:
        metrics[f"best_{checkpoint.monitor}"] = float(checkpoint.best_model_score)
        model.load_state_dict(load_model_checkpoint(best_path).state_dict())
    splits = {"validation": data.loaders.validation, **data.loaders.test}
    results = trainer.test(model, dataloaders=list(splits.values()), verbose=False)
    for name, result in zip(splits, results, strict=True):
        metrics.update(_scalar_metrics(dict(result), prefix=f"test/{name}/"))
    if trainer.is_global_zero:  # the evaluation below is complete on every rank: write it once
        for name in data.loaders.test:
            summary = evaluate_split(model, data, cfg, name, output_dir, model_path=best_path)
            metrics[f"{name}_corr_to_avg_mean"] = summary.corr_to_avg_mean
    return TrainingRun(model=model, data=data, metrics=metrics, best_model_path=best_path)
