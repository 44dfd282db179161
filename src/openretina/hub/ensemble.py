"""The legacy ensemble loader (the Höfling et al. 2024 nnfabrik models): seeds -> members -> EnsembleModel.

A legacy ensemble folder holds, per training seed ``S`` (five digits, e.g. ``00000``, ``01000``)::

    config_S.yaml       model_fn (e.g. "nnfabrik_euler.models.models.SFB3d_core_SxF3d_readout") and model_config
    state_dict_S.pth.tar  the member's weights (read with torch.load(weights_only=True))
    data_info_S.pkl     per-session metadata: input_dimensions, input_channels, output_dimension, mean_response,
                        roi_coords (read with the restricted unpickler: numpy arrays and builtins only)

Differences from the reference, which ran ``eval`` on names from the config and plain ``pickle.load`` on the
data_info file: the ``model_fn`` is looked up in a table of registered builders (:data:`LEGACY_MODEL_BUILDERS`,
extended with :func:`register_legacy_model_builder`); nothing named by the files is imported or evaluated;
downloads use the one download function (cache, checksums, ``OPENRETINA_GIN_URL`` mirror, clear offline errors).

The legacy architecture itself (``SFB3d_core_SxF3d_readout``: a factorised conv core with per-session speed
adaptation and a spatial-x-feature readout) is not part of this package yet; register its builder under the
type name to load the published ensemble.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.hub.safe_unpickle import RestrictedUnpickler, UnsafeCheckpointError
from openretina.modules.layers.ensemble import EnsembleModel
from openretina.utils.download import GIN_BASE_URL, get_local_file_path

__all__ = [
    "DEFAULT_ENSEMBLE_MODEL_PATH",
    "DEFAULT_ENSEMBLE_SEEDS",
    "LEGACY_MODEL_BUILDERS",
    "Center",
    "load_ensemble_model_from_remote",
    "load_ensemble_retina_model_from_directory",
    "register_legacy_model_builder",
]

DEFAULT_ENSEMBLE_MODEL_PATH = "eulerlab/rgc-natstim/raw/master/models/nonlinear/9d574ab9fcb85e8251639080c8d402b7"
DEFAULT_ENSEMBLE_SEEDS = (0, 1000, 2000, 3000, 4000)
_CONFIG_NAME = re.compile(r"^config_(\d{5})\.yaml$")
_ACCEPTED_MODEL_REPOSITORIES = ("nnfabrik_euler", "openretina")

LegacyModelBuilder = Callable[..., nn.Module]
"""``builder(seed=..., data_info=..., **model_config) -> nn.Module``, one ensemble member."""

LEGACY_MODEL_BUILDERS: dict[str, LegacyModelBuilder] = {}
"""Builders of legacy ensemble members, keyed by the model type name (last component of ``model_fn``)."""


def register_legacy_model_builder(type_name: str, builder: LegacyModelBuilder) -> None:
    """Make ``load_ensemble_*`` build members whose ``model_fn`` ends in ``type_name`` with ``builder``."""
    LEGACY_MODEL_BUILDERS[type_name] = builder


class Center:
    """Re-centre Gaussian readout masks: sets every state_dict entry whose key contains ``mean_key`` to ``target_mean``.

    Call it on a model (``Center([0.0, 0.0])(model)``); ``target_mean`` is broadcast to each entry's shape,
    e.g. ``(neurons, 2)`` mask means.
    """

    def __init__(self, target_mean: float | list[float] | torch.Tensor, mean_key: str = "mask_mean") -> None:
        self.target_mean = torch.as_tensor(target_mean, dtype=torch.float32)
        self.mean_key = mean_key

    def __call__(self, model: nn.Module) -> None:
        state = model.state_dict()
        centred = {
            key: self.target_mean.to(value.device, value.dtype).expand_as(value).clone()
            for key, value in state.items()
            if self.mean_key in key
        }
        if not centred:
            raise DataFormatError(
                f"Center: no state_dict entry of {type(model).__name__} contains {self.mean_key!r}; pass the key of "
                "the readout's mask means as mean_key."
            )
        model.load_state_dict(centred, strict=False)


class _TupleSafeLoader(yaml.SafeLoader):
    """YAML safe loader that also reads ``!!python/tuple`` (the legacy configs store kernel sizes as tuples)."""


_TupleSafeLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node))
)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.load(path.read_text(), Loader=_TupleSafeLoader)
    except yaml.YAMLError as error:
        raise DataFormatError(f"legacy ensemble config {path}: not readable YAML ({error}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_fn"), str):
        raise DataFormatError(f"legacy ensemble config {path}: expected a mapping with a 'model_fn' string.")
    return config


def _read_data_info(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            data_info = RestrictedUnpickler(stream).load()
    except UnsafeCheckpointError as error:
        raise UnsafeCheckpointError(f"legacy data_info {path}: {error} Nothing in it was executed.") from None
    if not isinstance(data_info, dict):
        raise DataFormatError(f"legacy data_info {path}: expected a dict per session, got {type(data_info).__name__}.")
    return data_info


def _builder_for(model_fn: str, config_path: Path) -> LegacyModelBuilder:
    repository, type_name = model_fn.split(".", 1)[0], model_fn.rsplit(".", 1)[-1]
    if repository not in _ACCEPTED_MODEL_REPOSITORIES:
        raise DataFormatError(
            f"legacy ensemble config {config_path}: model_fn {model_fn!r} comes from {repository!r}; only "
            f"{list(_ACCEPTED_MODEL_REPOSITORIES)} models can be loaded."
        )
    builder = LEGACY_MODEL_BUILDERS.get(type_name)
    if builder is None:
        raise DataFormatError(
            f"legacy ensemble config {config_path}: no builder is registered for model type {type_name!r} "
            f"(registered: {sorted(LEGACY_MODEL_BUILDERS)}). Register one with "
            "openretina.hub.ensemble.register_legacy_model_builder."
        )
    return builder


def _seeds_in(directory: Path) -> list[int]:
    seeds = sorted(int(match[1]) for p in directory.iterdir() if (match := _CONFIG_NAME.match(p.name)))
    if not seeds:
        raise DataFileNotFoundError(
            f"legacy ensemble folder {directory}: no config_<seed>.yaml files (e.g. config_00000.yaml); is this the "
            "model folder?"
        )
    return seeds


def _load_member(directory: Path, seed: int) -> tuple[dict[str, Any], nn.Module]:
    tag = f"{seed:05d}"
    config_path = directory / f"config_{tag}.yaml"
    config = _read_config(config_path)
    data_info = _read_data_info(directory / f"data_info_{tag}.pkl")
    builder = _builder_for(config["model_fn"], config_path)
    member = builder(seed=seed, data_info=data_info, **dict(config.get("model_config") or {}))
    state_dict = torch.load(directory / f"state_dict_{tag}.pth.tar", map_location="cpu", weights_only=True)
    incompatible = member.load_state_dict(state_dict, strict=False)  # the reference loads members non-strictly
    if incompatible.missing_keys or incompatible.unexpected_keys:
        warnings.warn(
            f"legacy ensemble member {tag}: missing keys {incompatible.missing_keys}, unexpected keys "
            f"{incompatible.unexpected_keys} (loaded non-strictly, as the reference does).",
            UserWarning,
            stacklevel=3,
        )
    return data_info, member


def _assemble(
    directory: Path, seeds: Sequence[int], device: str | torch.device, center_readout: Center | None
) -> tuple[dict[str, Any], EnsembleModel]:
    members = [_load_member(directory, seed) for seed in seeds]
    model = EnsembleModel(*(member for _, member in members))
    if center_readout is not None:
        center_readout(model)
    return members[0][0], model.to(device).eval()


def load_ensemble_retina_model_from_directory(
    directory_path: str | os.PathLike[str],
    device: str | torch.device = "cuda",
    center_readout: Center | None = None,
) -> tuple[dict[str, Any], EnsembleModel]:
    """Build the ensemble of all seeds in ``directory_path``; returns (first seed's data_info, model in eval mode).

    Output of the ensemble: the members' mean prediction, (batch, time, neurons) for the legacy models.
    """
    directory = Path(directory_path).expanduser()
    return _assemble(directory, _seeds_in(directory), device, center_readout)


def load_ensemble_model_from_remote(
    remote_url: str = GIN_BASE_URL,
    model_path: str = DEFAULT_ENSEMBLE_MODEL_PATH,
    device: str | torch.device = "cpu",
    center_readout: Center | None = None,
    seeds: tuple[int, ...] = DEFAULT_ENSEMBLE_SEEDS,
    cache_directory_path: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Any], EnsembleModel]:
    """Download (or find in the cache) the legacy ensemble's files, then load it like the directory loader."""
    base = f"{remote_url.rstrip('/')}/{model_path.strip('/')}"
    directory: Path | None = None
    for seed in seeds:
        for name in (f"config_{seed:05d}.yaml", f"data_info_{seed:05d}.pkl", f"state_dict_{seed:05d}.pth.tar"):
            local = get_local_file_path(f"{base}/{name}", cache_directory_path, what=f"legacy ensemble file {name!r}")
            directory = local.parent
    if directory is None:
        raise DataFormatError("load_ensemble_model_from_remote: give at least one seed.")
    return _assemble(directory, seeds, device, center_readout)  # only the requested seeds, whatever is cached
