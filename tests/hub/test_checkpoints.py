"""Reference checkpoints: class chosen from the stored hyper-parameters, exact outputs, clear errors, safe configs."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from openretina.errors import DataFormatError
from openretina.hub import UnsafeCheckpointError, load_checkpoint_model, read_checkpoint
from openretina.hub.checkpoints import model_class_for
from openretina.models import ExampleCoreReadout, UnifiedCoreReadout

from .conftest import FIXTURE_DIR, FIXTURE_SESSIONS

TOLERANCE = 1e-5


@pytest.mark.parametrize("name", ["init", "trained_best"])
def test_reference_checkpoints_reproduce_the_reference_outputs(
    name: str, reference_io: dict[str, torch.Tensor]
) -> None:
    model = load_checkpoint_model(FIXTURE_DIR / f"{name}.ckpt")
    assert type(model) is UnifiedCoreReadout and not model.training
    with torch.no_grad():
        for session, neurons in FIXTURE_SESSIONS.items():
            output = model(reference_io["input"], data_key=session)
            assert output.shape == (3, 30, neurons)
            assert (output - reference_io[f"{name}__{session}"]).abs().max().item() < TOLERANCE


def test_model_class_comes_from_the_hyper_parameters_not_the_name() -> None:
    unified = {"core": {"_target_": "a.B"}, "readout": OmegaConf.create({"_target_": "c.D"})}
    example = {"hidden_channels": [4], "temporal_kernel_sizes": [3], "spatial_kernel_sizes": [3], "core": None}
    assert model_class_for(unified, "x") is UnifiedCoreReadout
    assert model_class_for(example, "x") is ExampleCoreReadout
    with pytest.raises(DataFormatError, match=r"found keys \['core', 'learning_rate'\]"):
        model_class_for({"core": {"no_target": 1}, "learning_rate": 0.1}, "checkpoint y.ckpt")


def _example_core_readout() -> ExampleCoreReadout:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = ExampleCoreReadout(
            in_shape=(2, 40, 18, 16),
            hidden_channels=(4,),
            temporal_kernel_sizes=(11,),
            spatial_kernel_sizes=(5,),
            n_neurons_dict={"session_a": 3, "session_b": 5},
            cut_first_n_frames_in_core=0,
            core_hidden_padding=False,
            data_info={"input_shape": (2, 18, 16)},
        )
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def test_example_core_readout_form_with_pickled_modules_and_legacy_bias_keys(tmp_path: Path) -> None:
    """The reference's older checkpoint form, built with our classes (the reference package is not installable)."""
    model = _example_core_readout()
    hyper_parameters = dict(model.hparams)
    hyper_parameters.update(core=model.core, readout=model.readout, loss=None, evaluation_loss=None)
    state_dict = {
        (key.removesuffix(".bias") + ".bias_param" if key.startswith("readout.") and key.endswith(".bias") else key): v
        for key, v in model.state_dict().items()
    }
    assert any(key.endswith(".bias_param") for key in state_dict)
    path = tmp_path / "legacy.ckpt"
    torch.save({"state_dict": state_dict, "hyper_parameters": hyper_parameters, "epoch": 3}, path)
    assert b"openretina.modules.core.base_core" in _pickle_bytes(path)  # module objects really are pickled

    with pytest.warns(UserWarning, match="bias_param"):
        loaded = load_checkpoint_model(path)
    assert type(loaded) is ExampleCoreReadout and not loaded.training
    x = torch.randn(2, 2, 25, 18, 16)
    with torch.no_grad():
        for session in ("session_a", "session_b"):
            torch.testing.assert_close(loaded(x, data_key=session), model(x, data_key=session), rtol=0, atol=0)


def _pickle_bytes(path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))


def test_weights_that_do_not_fit_are_reported_with_the_file(tmp_path: Path) -> None:
    contents = read_checkpoint(FIXTURE_DIR / "init.ckpt")
    state_dict = dict(contents.state_dict)
    del state_dict["readout.session_1_synthetic_20240101.mask_mean"]
    path = tmp_path / "incomplete.ckpt"
    torch.save({"state_dict": state_dict, "hyper_parameters": contents.hyper_parameters}, path)
    with pytest.raises(
        DataFormatError, match=r"incomplete\.ckpt.*UnifiedCoreReadout.*session_1_synthetic_20240101\.mask_mean"
    ):
        load_checkpoint_model(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a checkpoint at all", "cannot be read"), (None, r"missing \['hyper_parameters'\]")],
)
def test_files_that_are_not_checkpoints(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "file.ckpt"
    if content is None:
        torch.save({"state_dict": {}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message):
        read_checkpoint(path)


def test_config_targets_outside_the_allowed_namespaces_are_never_instantiated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    contents = read_checkpoint(FIXTURE_DIR / "init.ckpt")
    hyper_parameters: dict[str, Any] = dict(contents.hyper_parameters)
    core = OmegaConf.to_container(hyper_parameters["core"], resolve=True)
    assert isinstance(core, dict)
    # Nested, so Hydra would build it before the core; Hydra's own blocklist does not cover shutil.
    core["gamma_input"] = {"_target_": "shutil.copyfile", "src": str(FIXTURE_DIR / "PROVENANCE.md"), "dst": str(marker)}
    hyper_parameters["core"] = OmegaConf.create(core)
    path = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": contents.state_dict, "hyper_parameters": hyper_parameters}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"crafted\.ckpt.*core\.gamma_input.*'shutil\.copyfile'"):
        load_checkpoint_model(path)
    assert not marker.exists()
    # Control: handing the same config to Hydra does run the command.
    instantiate(OmegaConf.create({"x": core["gamma_input"]}))
    assert marker.exists()
