"""Safe checkpoint round trip: plain hyper-parameters, recorded class, allowed `_target_`s only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.hub.safe_unpickle import UnsafeCheckpointError
from openretina.models.core_readout import UnifiedCoreReadout
from openretina.training.checkpoints import MODEL_CLASS_KEY, load_model_checkpoint, to_plain

CORE = {
    "_target_": "openretina.modules.core.base_core.SimpleCoreWrapper",
    "temporal_kernel_sizes": [3],
    "spatial_kernel_sizes": [3],
    "gamma_input": 0.0,
    "gamma_temporal": 0.0,
    "gamma_in_sparse": 0.0,
    "gamma_hidden": 0.0,
    "cut_first_n_frames": 0,
    "hidden_padding": True,
}
READOUT = {
    "_target_": "openretina.modules.readout.multi_readout.MultiGaussianMaskReadout",
    "scale": True,
    "bias": True,
    "gaussian_mean_scale": 6.0,
    "gaussian_var_scale": 4.0,
    "positive": True,
}


def tiny_model() -> UnifiedCoreReadout:
    torch.manual_seed(0)
    return UnifiedCoreReadout(
        in_shape=[1, 10, 6, 6], n_neurons_dict={"s": 3}, core=CORE, readout=READOUT, hidden_channels=[2]
    )


def save(model: UnifiedCoreReadout, path: Path, hyper_parameters: Any, model_class: str | None = None) -> Path:
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": hyper_parameters,
        "pytorch-lightning_version": lightning.__version__,
    }
    if model_class is not None:
        checkpoint[MODEL_CLASS_KEY] = model_class
    torch.save(checkpoint, path)
    return path


def test_to_plain_converts_configs_and_numpy() -> None:
    value = to_plain({"a": OmegaConf.create({"x": [1, 2]}), "b": np.arange(3), "c": np.float32(2.5), "d": ("t",)})
    assert value["a"] == {"x": [1, 2]} and isinstance(value["a"], dict)
    assert torch.equal(value["b"], torch.arange(3)) and value["c"] == 2.5 and value["d"] == ("t",)
    assert to_plain(np.array(["on", "off"])) == ["on", "off"]


def test_round_trip_gives_the_same_predictions(tmp_path: Path) -> None:
    model = tiny_model().eval()
    path = save(
        model, tmp_path / "m.ckpt", to_plain(dict(model.hparams)), f"{UnifiedCoreReadout.__module__}.UnifiedCoreReadout"
    )
    loaded = load_model_checkpoint(path)
    inputs = torch.randn(2, 1, 10, 6, 6)
    torch.testing.assert_close(loaded(inputs, data_key="s"), model(inputs, data_key="s"))


def test_reference_style_checkpoint_goes_to_the_hub_loader(tmp_path: Path) -> None:
    model = tiny_model().eval()
    hyper_parameters = dict(model.hparams)
    hyper_parameters["core"] = OmegaConf.create(to_plain(hyper_parameters["core"]))  # not weights_only-loadable
    loaded = load_model_checkpoint(save(model, tmp_path / "ref.ckpt", hyper_parameters))
    inputs = torch.randn(1, 1, 10, 6, 6)
    torch.testing.assert_close(loaded(inputs, data_key="s"), model(inputs, data_key="s"))


def test_unsafe_targets_and_classes_are_refused(tmp_path: Path) -> None:
    model = tiny_model()
    hyper_parameters = to_plain(dict(model.hparams))
    hyper_parameters["core"]["_target_"] = "os.system"
    with pytest.raises(UnsafeCheckpointError, match=r"os\.system"):
        load_model_checkpoint(save(model, tmp_path / "bad.ckpt", hyper_parameters))
    with pytest.raises(DataFormatError, match="not openretina's"):
        load_model_checkpoint(save(model, tmp_path / "cls.ckpt", to_plain(dict(model.hparams)), "builtins.object"))
    with pytest.raises(DataFileNotFoundError):
        load_model_checkpoint(tmp_path / "missing.ckpt")
