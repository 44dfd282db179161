"""Load a pre-trained core-readout model by registered name, URL or local path (the reference's entry points).

``load_core_readout_from_remote("hoefling_2024_base_low_res", "cpu")`` looks the name up in the registry,
fetches the checkpoint into the cache (verifying its sha256 when the registry knows it; a cached file needs
no network), reads it without executing pickled code and rebuilds the model class its hyper-parameters
describe. The model is returned in eval mode on ``device`` (the reference returned it in training mode).

Accepted files: reference Lightning ``.ckpt`` checkpoints and directories written by
:func:`openretina.hub.save_pretrained` (locally, or at a URL whose last component has no file suffix, e.g.
``https://host/models/my_model``; its ``config.json`` and ``model.safetensors`` are fetched and cached).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from openretina.hub.checkpoints import load_checkpoint_model
from openretina.hub.pretrained import CONFIG_FILE, load_pretrained
from openretina.hub.registry import (
    GIN_MODEL_CHECKPOINTS_BASE_PATH,
    HUGGINGFACE_CHECKPOINTS_BASE_PATH,
    get_pretrained_model,
    model_name_to_remote_location,
)
from openretina.utils.download import get_local_file_path

__all__ = [
    "_GIN_MODEL_CHECKPOINTS_BASE_PATH",
    "_HUGGINGFACE_CHECKPOINTS_BASE_PATH",
    "_MODEL_NAME_TO_REMOTE_LOCATION",
    "load_core_readout_from_remote",
    "load_core_readout_model",
    "load_model_file",
]

# Reference names, derived from the registry (current models only, as in the reference).
_MODEL_NAME_TO_REMOTE_LOCATION: dict[str, str] = model_name_to_remote_location()
_HUGGINGFACE_CHECKPOINTS_BASE_PATH = HUGGINGFACE_CHECKPOINTS_BASE_PATH
_GIN_MODEL_CHECKPOINTS_BASE_PATH = GIN_MODEL_CHECKPOINTS_BASE_PATH


def load_model_file(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Any:
    """Load a local model: a :func:`~openretina.hub.save_pretrained` directory or a Lightning ``.ckpt`` file."""
    path = Path(path)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        return load_pretrained(path, device)
    return load_checkpoint_model(path, device)


def load_core_readout_from_remote(
    model_path: str,
    device: str | torch.device,
    cache_directory_path: str | os.PathLike[str] | None = None,
) -> Any:
    """Load a core-readout model by registered name, URL or local path; eval mode, on ``device``.

    Args:
        model_path: a name of :func:`openretina.hub.list_pretrained_models` (names of earlier releases work
            with a DeprecationWarning), a Hugging Face / GIN / https URL of a checkpoint, or a local path.
        device: where the model is placed, e.g. ``"cpu"`` or ``"cuda"``.
        cache_directory_path: cache directory; default ``$OPENRETINA_CACHE_DIRECTORY`` or ``~/openretina_cache``.

    Raises:
        RemoteFileUnavailableError: not cached and not downloadable (the message says how to fill the cache).
        ChecksumMismatchError: the download differs from the registered sha256.
        UnsafeCheckpointError: the checkpoint would execute code when read, or names a forbidden ``_target_``.
        DataFormatError: the file is not a loadable model.
    """
    entry = get_pretrained_model(model_path)
    location = entry.location if entry is not None else model_path
    if _is_remote_folder(location):
        return load_pretrained(location, device, cache_directory_path)
    what = f"pretrained model {entry.name!r}" if entry is not None else f"model {model_path!r}"
    sha256 = entry.sha256 if entry is not None else None
    return load_model_file(get_local_file_path(location, cache_directory_path, sha256=sha256, what=what), device)


def _is_remote_folder(location: str) -> bool:
    """A URL whose last path component has no suffix names a :func:`save_pretrained` folder, not a file."""
    return "://" in location and not PurePosixPath(urllib.parse.urlparse(location).path).suffix


def load_core_readout_model(
    model_path_or_name: str,
    device: str | torch.device,
    cache_directory_path: str | os.PathLike[str] | None = None,
) -> Any:
    """Same as :func:`load_core_readout_from_remote` (the reference's name for fine-tuning from a checkpoint).

    Unlike the reference, ``cache_directory_path`` is honoured for registered names too.
    """
    return load_core_readout_from_remote(model_path_or_name, device, cache_directory_path)
