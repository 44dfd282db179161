"""openretina's own format for sharing models: safetensors weights, a JSON config and a model card. No pickle.

A saved model is a directory::

    model.safetensors   the state_dict (tensors only; safetensors cannot hold code)
    config.json         format version, model class, constructor hyper-parameters, weights checksum
    README.md           model card: architecture, sessions and neurons, data_info, provenance, metrics, version

:func:`save_pretrained` writes it, :func:`load_pretrained` reads it from a directory or a URL of one (each
file is fetched with :func:`openretina.utils.download.get_local_file_path`, so caching and mirrors apply), and
:func:`convert_checkpoint` turns a reference Lightning ``.ckpt`` into it.

Tensors and arrays inside the hyper-parameters (e.g. ``data_info["mean_activity_dict"]``) are stored as tagged
JSON objects (``{"__tensor__": ..., "dtype": ...}``) so they load back as tensors / arrays; tuples become lists.
Only the model classes in :data:`LOADABLE_MODEL_CLASSES` can be named by a config, and every ``_target_`` is
checked before instantiation (see :mod:`openretina.hub.checkpoints`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from safetensors.torch import load_file, save_file

from openretina.errors import DataFormatError
from openretina.hub.checkpoints import build_model, load_checkpoint_model
from openretina.utils.download import ChecksumMismatchError, get_local_file_path, sha256_of_file

__all__ = [
    "CONFIG_FILE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LOADABLE_MODEL_CLASSES",
    "MODEL_CARD_FILE",
    "WEIGHTS_FILE",
    "convert_checkpoint",
    "load_pretrained",
    "save_pretrained",
]

FORMAT_NAME = "openretina-pretrained"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MODEL_CARD_FILE = "README.md"
LOADABLE_MODEL_CLASSES = (
    "openretina.models.core_readout.UnifiedCoreReadout",
    "openretina.models.core_readout.ExampleCoreReadout",
)


def _model_classes() -> dict[str, type[Any]]:
    from openretina.models.core_readout import ExampleCoreReadout, UnifiedCoreReadout

    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in (UnifiedCoreReadout, ExampleCoreReadout)}


def _to_json(value: Any, where: str) -> Any:
    """JSON form of a hyper-parameter value (tensors and arrays tagged so they load back as such)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return _to_json(OmegaConf.to_container(value, resolve=True), where)
    if isinstance(value, torch.Tensor):
        return {"__tensor__": value.detach().cpu().tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(key): _to_json(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise DataFormatError(
        f"save_pretrained: hyper-parameter {where} is a {type(value).__name__}, which has no JSON form; store "
        "plain values, configs, tensors or arrays in the model's hyper-parameters."
    )


def _from_json(value: Any) -> Any:
    """Inverse of :func:`_to_json`."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            return torch.tensor(value["__tensor__"], dtype=getattr(torch, value["dtype"]))
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"]))
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _model_card(model: Any, class_name: str, hyper_parameters: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
    from openretina import __version__

    data_info = model.data_info if isinstance(getattr(model, "data_info", None), Mapping) else {}
    sessions: list[str] = model.readout_keys() if hasattr(model, "readout_keys") else []
    input_shape = tuple(data_info["input_shape"]) if "input_shape" in data_info else "unknown"
    neurons = data_info.get("n_neurons_dict") or hyper_parameters.get("n_neurons_dict") or {}
    lines = [
        f"# {provenance.get('name', 'openretina model')}",
        "",
        f"Saved with openretina {__version__} in the `{FORMAT_NAME}` format (version {FORMAT_VERSION}): "
        f"`{WEIGHTS_FILE}` (weights), `{CONFIG_FILE}` (class and hyper-parameters). Load it with "
        "`openretina.hub.load_pretrained(<this folder or its URL>)`.",
        "",
        "## Architecture",
        "",
        f"- class: `{class_name}`",
        f"- stimulus (channels, height, width): {input_shape}",
        f"- parameters: {sum(p.numel() for p in model.parameters())}",
        f"- sessions ({len(sessions)}): " + ", ".join(f"`{s}` ({neurons.get(s, '?')} neurons)" for s in sessions),
    ]
    for part in ("core", "readout"):
        config = hyper_parameters.get(part)
        if isinstance(config, Mapping) and "_target_" in config:
            lines.append(f"- {part}: `{config['_target_']}`")
    lines += ["", "## Training data", ""]
    described = {k: v for k, v in provenance.items() if k != "name" and v is not None}
    keys = ("stimulus_class", "stimulus_rate_hz", "response_rate_hz", "retina_pixel_size_um", "animal_species")
    described.update({key: data_info[key] for key in keys if key in data_info})
    lines += [f"- {key}: {value}" for key, value in described.items()] or ["- not recorded"]
    lines += ["", "## Metrics", ""]
    performance = data_info.get("pretrained_performance")
    if isinstance(performance, Mapping) and performance:
        metric = data_info.get("pretrained_performance_metric", "test metric")
        for session, values in performance.items():
            mean = float(torch.as_tensor(values, dtype=torch.float64).nanmean())
            lines.append(f"- {metric}, session `{session}`: mean over neurons {mean:.4f}")
    else:
        lines.append("- none recorded")
    return "\n".join(lines) + "\n"


def save_pretrained(model: Any, directory: str | os.PathLike[str], provenance: Mapping[str, Any] | None = None) -> Path:
    """Save ``model`` (a core-readout model) as safetensors + ``config.json`` + model card in ``directory``.

    Args:
        model: a :class:`~openretina.models.UnifiedCoreReadout` or :class:`~openretina.models.ExampleCoreReadout`.
        directory: created if missing; existing files of the format are overwritten.
        provenance: extra facts for the model card, e.g. ``{"name": ..., "dataset": ..., "citation": ...}``.

    Returns:
        ``directory`` as a Path.

    Raises:
        DataFormatError: the model class cannot be reloaded, or a hyper-parameter has no JSON form.
    """
    class_name = f"{type(model).__module__}.{type(model).__qualname__}"
    if class_name not in LOADABLE_MODEL_CLASSES:
        raise DataFormatError(
            f"save_pretrained: {class_name} cannot be reloaded from this format; supported classes are "
            f"{list(LOADABLE_MODEL_CLASSES)}. Save other models with torch.save(model.state_dict(), ...)."
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hyper_parameters = dict(model.hparams)
    hyper_parameters["data_info"] = model.data_info  # the live copy (test runs add metrics to it)
    config_hparams = _to_json(hyper_parameters, "hyper_parameters")
    # Copies: safetensors refuses tensors that share memory, and the file must not depend on the device.
    weights = {key: value.detach().cpu().contiguous().clone() for key, value in model.state_dict().items()}
    save_file(weights, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
    from openretina import __version__

    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_class": class_name,
        "openretina_version": __version__,
        "weights_sha256": sha256_of_file(directory / WEIGHTS_FILE),
        "provenance": _to_json(dict(provenance or {}), "provenance"),
        "hyper_parameters": config_hparams,
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    card = _model_card(model, class_name, hyper_parameters, provenance or {})
    (directory / MODEL_CARD_FILE).write_text(card)
    return directory


def _read_config(path: Path, source: str) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{source}: {CONFIG_FILE} is not valid JSON ({error}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise DataFormatError(f"{source}: {CONFIG_FILE} is not an {FORMAT_NAME!r} config (no matching 'format').")
    if int(config.get("format_version", -1)) > FORMAT_VERSION:
        raise DataFormatError(
            f"{source}: format version {config['format_version']} is newer than this openretina supports "
            f"({FORMAT_VERSION}); upgrade openretina."
        )
    if config.get("model_class") not in LOADABLE_MODEL_CLASSES:
        raise DataFormatError(
            f"{source}: model_class {config.get('model_class')!r} is not one of {list(LOADABLE_MODEL_CLASSES)}."
        )
    return config


def load_pretrained(
    directory_or_url: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    cache_directory_path: str | os.PathLike[str] | None = None,
) -> Any:
    """Load a model saved by :func:`save_pretrained` from a directory or the URL of one (eval mode, on ``device``).

    Raises:
        DataFormatError: not this format, an unknown model class, or weights that do not fit.
        ChecksumMismatchError: the weights file differs from the checksum in ``config.json``.
        DataFileNotFoundError: a file of the directory is missing (or cannot be downloaded).
    """
    location = os.fspath(directory_or_url).rstrip("/")
    source = f"pretrained model {location}"
    config_path = get_local_file_path(f"{location}/{CONFIG_FILE}", cache_directory_path, what=source)
    config = _read_config(config_path, source)
    weights_path = get_local_file_path(
        f"{location}/{WEIGHTS_FILE}", cache_directory_path, sha256=config.get("weights_sha256"), what=source
    )
    # get_local_file_path verifies downloads and cache hits, but not files of a local folder.
    if "://" not in location and config.get("weights_sha256") not in (None, sha256_of_file(weights_path)):
        raise ChecksumMismatchError(
            f"{source}: {WEIGHTS_FILE} does not match the sha256 recorded in {CONFIG_FILE}; the folder was "
            "modified or damaged. Save the model again."
        )
    model_class = _model_classes()[config["model_class"]]
    hyper_parameters = _from_json(config["hyper_parameters"])
    return build_model(model_class, hyper_parameters, load_file(str(weights_path)), source, device)


def convert_checkpoint(
    checkpoint_path: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Convert a reference Lightning ``.ckpt`` (read safely) into this format in ``directory``."""
    return save_pretrained(load_checkpoint_model(checkpoint_path), directory, provenance)
