"""Pre-trained models: the registry, safe checkpoint reading, download/cache, and openretina's sharing format.

* :func:`list_pretrained_models` / :data:`REGISTRY`: the published models as data (:class:`PretrainedModel`).
* :func:`load_core_readout_from_remote`: name, URL or path -> model in eval mode (cached, checksummed, mirrored).
* :func:`save_pretrained` / :func:`load_pretrained`: safetensors + JSON config + model card, no pickle;
  :func:`convert_checkpoint` turns a reference ``.ckpt`` into that format.
* :func:`read_checkpoint` / :func:`load_checkpoint_model`: reference Lightning checkpoints read with a
  restricted unpickler (:mod:`openretina.hub.safe_unpickle`); nothing in the file can run code.
"""

from openretina.hub.checkpoints import load_checkpoint_model, read_checkpoint
from openretina.hub.loading import load_core_readout_from_remote, load_core_readout_model
from openretina.hub.pretrained import convert_checkpoint, load_pretrained, save_pretrained
from openretina.hub.registry import (
    REGISTRY,
    PretrainedModel,
    get_pretrained_model,
    list_pretrained_models,
    registry_override,
)
from openretina.hub.safe_unpickle import UnsafeCheckpointError

__all__ = [
    "REGISTRY",
    "PretrainedModel",
    "UnsafeCheckpointError",
    "convert_checkpoint",
    "get_pretrained_model",
    "list_pretrained_models",
    "load_checkpoint_model",
    "load_core_readout_from_remote",
    "load_core_readout_model",
    "load_pretrained",
    "read_checkpoint",
    "registry_override",
    "save_pretrained",
]
