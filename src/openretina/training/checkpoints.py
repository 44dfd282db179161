"""Checkpoints that load with ``torch.load(weights_only=True)``, are written atomically, and loading them back.

Lightning stores a model's constructor arguments under ``hyper_parameters``; openretina's models keep OmegaConf
configs and numpy arrays there, which ``weights_only=True`` (torch's safe unpickler, the default since torch 2.6)
refuses. :class:`PlainHyperparameters` rewrites them as plain containers and tensors when a checkpoint is saved
and records the model class, so :func:`load_model_checkpoint` can rebuild any of our models safely.

Lightning's own writer renames a file from the system temporary directory; when that directory is on another
filesystem than the run (a tmpfs ``/tmp``, a network home) the "rename" is a copy into the final name, which a
killed process leaves half written. :class:`AtomicCheckpointIO` writes next to the target, syncs and renames.
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, ListConfig, OmegaConf

from openretina.data_io.h5_writer import atomic_path
from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.hub.checkpoints import check_config_targets
from openretina.hub.loading import load_core_readout_model

__all__ = [
    "MODEL_CLASS_KEY",
    "AtomicCheckpointIO",
    "PlainHyperparameters",
    "load_model_checkpoint",
    "load_trained_model",
    "remove_partial_checkpoints",
    "save_checkpoint_atomically",
    "to_plain",
]

MODEL_CLASS_KEY = "openretina_model_class"
_DEFAULT_MODEL_CLASS = "openretina.models.core_readout.UnifiedCoreReadout"


def to_plain(value: Any) -> Any:
    """``value`` with configs as dicts/lists, numpy arrays as tensors (or lists for non-numeric) and numpy
    scalars as Python numbers: only types that ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [to_plain(item) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy()) if value.dtype.kind in "biuf" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


class PlainHyperparameters(lightning.Callback):
    """On every checkpoint save: plain hyper-parameters and the model's class path under ``MODEL_CLASS_KEY``."""

    def on_save_checkpoint(
        self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if "hyper_parameters" in checkpoint:
            checkpoint["hyper_parameters"] = to_plain(dict(checkpoint["hyper_parameters"]))
        checkpoint[MODEL_CLASS_KEY] = f"{type(pl_module).__module__}.{type(pl_module).__qualname__}"


def save_checkpoint_atomically(checkpoint: Mapping[str, Any], path: str | Path) -> Path:
    """``torch.save`` ``checkpoint`` to ``path`` so that ``path`` is always either the old file or the complete new one.

    The bytes go to a hidden temporary file in the same directory (``.<name>.<pid>.tmp``, never ``*.ckpt``), are
    flushed to disk, and the file is renamed over ``path``; a process killed at any point leaves at most that
    temporary file behind (see :func:`remove_partial_checkpoints`).
    """
    target = Path(path)
    with atomic_path(target, overwrite=True) as temporary, open(temporary, "wb") as handle:
        torch.save(checkpoint, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return target


def remove_partial_checkpoints(directory: str | Path) -> list[Path]:
    """Delete the temporary files that killed :func:`save_checkpoint_atomically` calls left in ``directory``.

    Only call it when no other process is writing checkpoints there (e.g. before resuming). Returns the removed paths.
    """
    folder = Path(directory)
    leftovers = sorted(folder.glob(".*.ckpt.*.tmp")) if folder.is_dir() else []
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes local files with :func:`save_checkpoint_atomically`.

    Pass it as ``Trainer(plugins=[AtomicCheckpointIO()])`` (``openretina train`` does). Remote paths (``s3://``,
    ...) are left to Lightning's fsspec writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (``storage_options`` is not supported, as in Lightning)."""
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        save_checkpoint_atomically(checkpoint, Path(path))


def _model_class(path: str) -> type[lightning.LightningModule]:
    module_name, _, class_name = path.rpartition(".")
    model_class = getattr(importlib.import_module(module_name), class_name, None)
    if not isinstance(model_class, type) or not issubclass(model_class, lightning.LightningModule):
        raise DataFormatError(f"checkpoint names model class {path!r}, which is not a LightningModule.")
    return model_class


def load_model_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> lightning.LightningModule:
    """Rebuild the model saved in an openretina checkpoint, with ``weights_only=True`` loading, in eval mode.

    Checkpoints without a recorded class are assumed to hold a ``UnifiedCoreReadout``; files that need more than
    ``weights_only`` loading (reference checkpoints) go to :func:`openretina.hub.checkpoints.load_checkpoint_model`.
    """
    checkpoint_path = Path(path)
    if not checkpoint_path.is_file():
        raise DataFileNotFoundError(
            f"checkpoint {str(checkpoint_path)!r} does not exist; pass the path of a .ckpt file."
        )
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Not written by `openretina train` (e.g. a reference checkpoint with OmegaConf hyper-parameters): the
        # hub's restricted unpickler reads those.
        from openretina.hub.checkpoints import load_checkpoint_model

        return load_checkpoint_model(checkpoint_path, device)
    class_path = str(checkpoint.get(MODEL_CLASS_KEY, _DEFAULT_MODEL_CLASS))
    if not class_path.startswith("openretina."):
        raise DataFormatError(
            f"checkpoint {str(checkpoint_path)!r} names model class {class_path!r}, not openretina's."
        )
    # Building the model instantiates the `_target_`s of its stored configs: only allowed namespaces.
    check_config_targets(checkpoint.get("hyper_parameters", {}), f"checkpoint {checkpoint_path}")
    model = _model_class(class_path).load_from_checkpoint(checkpoint_path, map_location=device, weights_only=True)
    return model.eval()


def load_trained_model(
    location: str | Path, device: str | torch.device = "cpu", cache_directory: str | Path | None = None
) -> lightning.LightningModule:
    """The model at ``location``, in eval mode: what ``paths.load_model_path`` and ``evaluation.model_path`` accept.

    A local ``.ckpt`` file goes to :func:`load_model_checkpoint`; anything else (a registered model name, a URL, a
    :func:`~openretina.hub.save_pretrained` folder) to :func:`openretina.hub.load_core_readout_model`, which
    downloads into ``cache_directory`` (default ``$OPENRETINA_CACHE_DIRECTORY``).
    """
    path = Path(location).expanduser()
    if path.is_file():
        return load_model_checkpoint(path, device)
    return load_core_readout_model(str(location), device, cache_directory)
