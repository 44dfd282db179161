"""Read reference Lightning checkpoints (``.ckpt``) safely and rebuild the model they describe.

The model class is chosen from the stored hyper-parameters, never from the file name:

* ``core`` and ``readout`` are configs with a ``_target_`` -> :class:`~openretina.models.UnifiedCoreReadout`
  (all current zoo models);
* flat arguments (``hidden_channels``, ``temporal_kernel_sizes``, ``spatial_kernel_sizes``, ...) with pickled
  module objects or none -> :class:`~openretina.models.ExampleCoreReadout` (older checkpoints).

Nothing is retried with another class: an error names the file and what did not fit (the reference retried
with ``ExampleCoreReadout`` inside a bare ``except`` and reported only the second, unrelated error).

Safety: the file is read with :mod:`openretina.hub.safe_unpickle`, and every ``_target_`` in the stored
configs must lie in an allowed namespace before Hydra instantiates it, because instantiating a config calls
the named function (a crafted config could otherwise name ``os.system``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig

from openretina.errors import DataFormatError
from openretina.hub.safe_unpickle import UnsafeCheckpointError, safe_torch_load

__all__ = [
    "ALLOWED_TARGET_PREFIXES",
    "CheckpointContents",
    "check_config_targets",
    "load_checkpoint_model",
    "model_class_for",
    "read_checkpoint",
]

# Namespaces whose classes a stored Hydra config may instantiate (cores, readouts, losses, optimizers).
ALLOWED_TARGET_PREFIXES = ("openretina.modules.", "openretina.models.", "torch.optim.")
_EXAMPLE_CORE_READOUT_KEYS = frozenset({"hidden_channels", "temporal_kernel_sizes", "spatial_kernel_sizes"})


@dataclass(frozen=True)
class CheckpointContents:
    """What a model needs from a Lightning checkpoint: its constructor arguments and its weights."""

    path: Path
    hyper_parameters: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


def read_checkpoint(path: str | os.PathLike[str]) -> CheckpointContents:
    """Read ``hyper_parameters`` and ``state_dict`` from a Lightning ``.ckpt`` with the restricted unpickler.

    Raises:
        UnsafeCheckpointError: the file names a function or class outside the allow-list.
        DataFormatError: the file is not a torch checkpoint or lacks one of the two keys.
    """
    path = Path(path)
    try:
        checkpoint = safe_torch_load(path, map_location="cpu")
    except UnsafeCheckpointError:
        raise
    except Exception as error:  # a damaged pickle can fail in many ways; all mean "not a readable checkpoint"
        raise DataFormatError(
            f"checkpoint {path}: cannot be read as a torch checkpoint ({type(error).__name__}: {error}). Is the "
            "file complete? Delete it from the cache to download it again."
        ) from error
    missing = [
        key
        for key in ("hyper_parameters", "state_dict")
        if not isinstance(checkpoint, Mapping) or key not in checkpoint
    ]
    if missing:
        found = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise DataFormatError(
            f"checkpoint {path}: missing {missing} (found {found}); expected a Lightning checkpoint of a "
            "core-readout model, as written by Trainer.save_checkpoint."
        )
    return CheckpointContents(path, dict(checkpoint["hyper_parameters"]), dict(checkpoint["state_dict"]))


def check_config_targets(value: Any, source: str, key_path: str = "hyper_parameters") -> None:
    """Raise :class:`UnsafeCheckpointError` if any ``_target_`` inside ``value`` is outside the allowed namespaces.

    ``source`` names the file in the message, ``key_path`` the position of ``value`` inside it.
    """
    if isinstance(value, (Mapping, DictConfig)):
        items = value.items_ex(resolve=False) if isinstance(value, DictConfig) else value.items()
        for key, item in items:
            item_path = f"{key_path}.{key!s}"
            if key == "_target_" and not (isinstance(item, str) and item.startswith(ALLOWED_TARGET_PREFIXES)):
                raise UnsafeCheckpointError(
                    f"{source}: {item_path} is {item!r}, outside the namespaces a stored config may instantiate "
                    f"{list(ALLOWED_TARGET_PREFIXES)}; instantiating it could run arbitrary code, so the model was "
                    "not built."
                )
            check_config_targets(item, source, item_path)
    elif isinstance(value, (list, tuple, ListConfig)):
        for index, item in enumerate(value):
            check_config_targets(item, source, f"{key_path}[{index}]")


def model_class_for(hyper_parameters: Mapping[str, Any], source: str) -> type[Any]:
    """The model class described by checkpoint hyper-parameters (see the module docstring).

    Raises:
        DataFormatError: neither form matches; the message lists the keys found.
    """
    from openretina.models.core_readout import ExampleCoreReadout, UnifiedCoreReadout

    core, readout = hyper_parameters.get("core"), hyper_parameters.get("readout")
    if all(isinstance(part, (Mapping, DictConfig)) and "_target_" in part for part in (core, readout)):
        return UnifiedCoreReadout
    if _EXAMPLE_CORE_READOUT_KEYS <= set(hyper_parameters):
        return ExampleCoreReadout
    raise DataFormatError(
        f"{source}: the hyper-parameters match no known model: expected 'core' and 'readout' configs with a "
        f"'_target_' (UnifiedCoreReadout) or the flat arguments {sorted(_EXAMPLE_CORE_READOUT_KEYS)} "
        f"(ExampleCoreReadout); found keys {sorted(hyper_parameters)}."
    )


def _constructor_arguments(model_class: type[Any], hyper_parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The hyper-parameters the class's constructor accepts (others, e.g. pickled modules, are dropped)."""
    accepted = inspect.signature(model_class.__init__).parameters
    return {key: value for key, value in hyper_parameters.items() if key in accepted}


def build_model(
    model_class: type[Any],
    hyper_parameters: Mapping[str, Any],
    state_dict: dict[str, torch.Tensor],
    source: str,
    device: str | torch.device = "cpu",
) -> Any:
    """Construct ``model_class`` from ``hyper_parameters``, load ``state_dict`` strictly, move to ``device``, eval.

    Raises:
        UnsafeCheckpointError: a stored config names a ``_target_`` outside the allowed namespaces.
        DataFormatError: the weights do not fit the architecture (missing, unexpected or mis-shaped keys).
    """
    arguments = _constructor_arguments(model_class, hyper_parameters)
    check_config_targets(arguments, source)
    model = model_class(**arguments)
    checkpoint = {"state_dict": dict(state_dict), "hyper_parameters": dict(hyper_parameters)}
    model.on_load_checkpoint(checkpoint)  # e.g. ExampleCoreReadout renames legacy '*.bias_param' keys
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise DataFormatError(
            f"{source}: the stored weights do not fit the {model_class.__name__} built from its hyper-parameters: "
            f"{' '.join(str(error).split())}"
        ) from None
    return model.to(device).eval()


def load_checkpoint_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Any:
    """Rebuild the model stored in a reference Lightning ``.ckpt``; returned on ``device`` in eval mode."""
    contents = read_checkpoint(path)
    source = f"checkpoint {contents.path}"
    model_class = model_class_for(contents.hyper_parameters, source)
    return build_model(model_class, contents.hyper_parameters, contents.state_dict, source, device)
