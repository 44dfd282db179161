"""openretina's sharing format: save_pretrained -> load_pretrained round trip, no pickle, checks on load."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from openretina.errors import DataFormatError
from openretina.hub import (
    UnsafeCheckpointError,
    convert_checkpoint,
    load_checkpoint_model,
    load_pretrained,
    save_pretrained,
)
from openretina.hub.loading import load_core_readout_from_remote
from openretina.models import CoreReadout, ExampleCoreReadout
from openretina.utils.download import ChecksumMismatchError

from .conftest import FIXTURE_CHECKPOINT, FIXTURE_SESSIONS

FORMAT_FILES = {"model.safetensors", "config.json", "README.md"}


@pytest.fixture(scope="module")
def reference_model() -> Any:
    return load_checkpoint_model(FIXTURE_CHECKPOINT)


def _assert_same_outputs(first: Any, second: Any, x: torch.Tensor) -> None:
    with torch.no_grad():
        for session in first.readout_keys():
            torch.testing.assert_close(first(x, data_key=session), second(x, data_key=session), rtol=0, atol=0)


def _contains_pickle(path: Path) -> bool:
    data = path.read_bytes()
    return data[:1] == b"\x80" or data[:2] == b"PK" or b"data.pkl" in data


def test_round_trip_gives_identical_outputs_and_no_pickle(reference_model: Any, tmp_path: Path) -> None:
    directory = save_pretrained(reference_model, tmp_path / "saved", provenance={"name": "fixture model"})
    assert {p.name for p in directory.iterdir()} == FORMAT_FILES
    assert not any(_contains_pickle(p) for p in directory.iterdir())
    loaded = load_pretrained(directory)
    assert type(loaded) is type(reference_model) and not loaded.training
    _assert_same_outputs(loaded, reference_model, torch.randn(2, 2, 45, 18, 16))
    for key, value in reference_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    mean_activity = loaded.data_info["mean_activity_dict"]["session_1_synthetic_20240101"]
    assert isinstance(mean_activity, torch.Tensor) and mean_activity.dtype == torch.float32
    torch.testing.assert_close(
        mean_activity, reference_model.data_info["mean_activity_dict"]["session_1_synthetic_20240101"]
    )
    assert tuple(loaded.data_info["input_shape"]) == (2, 18, 16)
    via_loader = load_core_readout_from_remote(str(directory), "cpu")  # a local folder works by path too
    _assert_same_outputs(via_loader, reference_model, torch.randn(1, 2, 35, 18, 16))


def test_config_and_model_card_describe_the_model(reference_model: Any, tmp_path: Path) -> None:
    directory = convert_checkpoint(FIXTURE_CHECKPOINT, tmp_path / "converted", provenance={"name": "fixture model"})
    config = json.loads((directory / "config.json").read_text())
    assert config["format"] == "openretina-pretrained" and config["format_version"] == 1
    assert config["model_class"] == "openretina.models.core_readout.UnifiedCoreReadout"
    assert config["hyper_parameters"]["core"]["_target_"] == "openretina.modules.core.base_core.SimpleCoreWrapper"
    assert config["hyper_parameters"]["optimizer"]["lr"] == reference_model.hparams["learning_rate"]  # resolved
    card = (directory / "README.md").read_text()
    assert card.startswith("# fixture model")
    for session, neurons in FIXTURE_SESSIONS.items():
        assert f"`{session}` ({neurons} neurons)" in card
    assert "(2, 18, 16)" in card and "openretina.modules.readout.multi_readout.MultiGaussianMaskReadout" in card


def test_example_core_readout_round_trip(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = ExampleCoreReadout(
            in_shape=(1, 30, 12, 10),
            hidden_channels=(3,),
            temporal_kernel_sizes=(5,),
            spatial_kernel_sizes=(3,),
            n_neurons_dict={"s": 4},
            cut_first_n_frames_in_core=0,
            data_info={"input_shape": (1, 12, 10)},
        ).eval()
        loaded = load_pretrained(save_pretrained(model, tmp_path / "example"))
    assert type(loaded) is ExampleCoreReadout
    _assert_same_outputs(loaded, model, torch.randn(1, 1, 20, 12, 10))


def test_tampered_weights_are_refused(reference_model: Any, tmp_path: Path) -> None:
    directory = save_pretrained(reference_model, tmp_path / "saved")
    other = save_pretrained(load_checkpoint_model(FIXTURE_CHECKPOINT.with_name("init.ckpt")), tmp_path / "other")
    shutil.copyfile(other / "model.safetensors", directory / "model.safetensors")
    with pytest.raises(ChecksumMismatchError, match=r"model\.safetensors"):
        load_pretrained(directory)


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda c: c.update(model_class="os.system"), DataFormatError, "model_class 'os.system'"),
        (lambda c: c.update(format="something-else"), DataFormatError, "not an 'openretina-pretrained' config"),
        (lambda c: c.update(format_version=99), DataFormatError, "upgrade openretina"),
        (
            lambda c: c["hyper_parameters"]["readout"].update(_target_="shutil.rmtree"),
            UnsafeCheckpointError,
            "readout._target_",
        ),
    ],
)
def test_configs_that_could_run_code_or_are_foreign_are_refused(
    reference_model: Any, tmp_path: Path, edit: Any, error: type[Exception], message: str
) -> None:
    directory = save_pretrained(reference_model, tmp_path / "saved")
    config = json.loads((directory / "config.json").read_text())
    edit(config)
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(error, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_pretrained(directory)


def test_unsupported_model_classes_are_refused_when_saving(tmp_path: Path) -> None:
    model = CoreReadout(torch.nn.Identity(), torch.nn.Identity())
    with pytest.raises(DataFormatError, match="CoreReadout cannot be reloaded"):
        save_pretrained(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_load_from_a_url_and_through_the_loader(reference_model: Any, hub_mirror: Any) -> None:
    save_pretrained(reference_model, hub_mirror.root / "models" / "fixture")
    from_url = load_pretrained(f"{hub_mirror.url}/models/fixture/")
    _assert_same_outputs(from_url, reference_model, torch.randn(1, 2, 40, 18, 16))
    hub_mirror.stop()
    offline = load_core_readout_from_remote(f"{hub_mirror.url}/models/fixture", "cpu")  # cached folder files
    _assert_same_outputs(offline, reference_model, torch.randn(1, 2, 40, 18, 16))
