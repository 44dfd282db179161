"""Build the configured objects of a training run: model, loggers and callbacks."""

from __future__ import annotations

import importlib.util
from typing import Any

import lightning
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from openretina.training.checkpoints import PlainHyperparameters, load_trained_model
from openretina.training.environment import cache_directory

__all__ = ["MissingLoggerDependencyError", "build_callbacks", "build_loggers", "build_model", "fine_tuning_model"]

# Logger class name -> (importable module names, any one suffices; pip extra of openretina).
_LOGGER_DEPENDENCIES: dict[str, tuple[tuple[str, ...], str]] = {
    "TensorBoardLogger": (("tensorboard", "tensorboardX"), "tensorboard"),
    "MLFlowLogger": (("mlflow",), "mlflow"),
    "WandbLogger": (("wandb",), "wandb"),
}


class MissingLoggerDependencyError(ImportError):
    """A configured logger needs a package that is not installed."""


def build_model(cfg: DictConfig, data_info: dict[str, Any]) -> lightning.LightningModule:
    """The model of ``cfg.model`` for ``data_info``, or the model at ``paths.load_model_path`` adapted to it.

    ``cfg.model`` without ``_target_`` builds a ``UnifiedCoreReadout(**cfg.model, data_info=...)`` (the reference's
    rule); with one, ``instantiate(cfg.model, data_info=...)``. See :func:`fine_tuning_model` for
    ``paths.load_model_path``.
    """
    load_path = cfg.get("paths", {}).get("load_model_path")
    if load_path:
        return fine_tuning_model(load_trained_model(load_path, cache_directory=cache_directory(cfg)), data_info)
    cfg.model.n_neurons_dict = data_info["n_neurons_dict"]
    if "_target_" in cfg.model:
        return instantiate(cfg.model, data_info=data_info)
    from openretina.models.core_readout import UnifiedCoreReadout

    arguments = {str(key): cfg.model[key] for key in cfg.model}
    return UnifiedCoreReadout(data_info=data_info, **arguments)


def fine_tuning_model(model: Any, data_info: dict[str, Any]) -> lightning.LightningModule:
    """``model`` (a trained core-readout model) made ready to train on the data described by ``data_info``.

    Sessions of the data that the model lacks get new readouts (initialised from their mean activity); existing
    sessions keep their trained readouts and the core keeps its weights. ``data_info`` is merged into the model's
    (per key of ``n_neurons_dict``, ``mean_activity_dict``, ...; the new data's values win), so the checkpoints of
    the fine-tuned model rebuild every session. The model keeps its own hyper-parameters (learning rate,
    optimizer, regularisation) and is put in training mode: loaders return models in eval mode, and Lightning does
    not switch a model to training mode at the start of fit, so dropout and batch-norm statistics would otherwise
    stay frozen.
    """
    known = set(model.readout.readout_keys())
    new_sessions = {s: int(n) for s, n in data_info["n_neurons_dict"].items() if s not in known}
    if new_sessions:
        mean_activity = {s: data_info["mean_activity_dict"][s] for s in new_sessions}
        model.readout.add_sessions(new_sessions, mean_activity)
    model.update_model_data_info(data_info)
    return model.train()


def _check_logger_dependency(name: str, target: str) -> None:
    modules, extra = _LOGGER_DEPENDENCIES.get(target.rpartition(".")[2], ((), ""))
    if modules and not any(importlib.util.find_spec(module) for module in modules):
        raise MissingLoggerDependencyError(
            f"logger {name!r} ({target}) needs the package {modules[0]!r}, which is not installed. Install it with "
            f"`pip install {modules[0]}` (or `pip install 'openretina[{extra}]'`), or drop the logger, e.g. "
            f"`logger=[csv]`."
        )


def build_loggers(logger_cfg: DictConfig | None) -> list[Any]:
    """Instantiate every logger of the ``logger`` group (name -> ``_target_`` config), checking dependencies first."""
    if not logger_cfg:
        return []
    for name, config in logger_cfg.items():
        _check_logger_dependency(str(name), str(config.get("_target_", "")))
    return [instantiate(config) for config in logger_cfg.values()]


def build_callbacks(callbacks_cfg: DictConfig | None) -> list[lightning.Callback]:
    """Instantiate every callback of ``training_callbacks`` (in config order) plus :class:`PlainHyperparameters`."""
    callbacks = [instantiate(config) for config in (callbacks_cfg or OmegaConf.create({})).values()]
    return [*callbacks, PlainHyperparameters()]
