"""UnifiedCoreReadout rebuilt from the reference checkpoints' hyper-parameters reproduces the reference outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from openretina.models import UnifiedCoreReadout

CHECKPOINT_NAMES = ("init", "trained_best", "trained_final")
SESSIONS = ("session_1_synthetic_20240101", "session_2_synthetic_20240102")
ALL_SESSIONS = "__all_sessions_concat__"
TOLERANCE = 1e-5


@pytest.fixture(scope="module", params=CHECKPOINT_NAMES)
def reference_model(request, reference_hparams, reference_state_dict) -> tuple[str, UnifiedCoreReadout]:
    name = request.param
    model = UnifiedCoreReadout(**reference_hparams(name))
    model.load_state_dict(reference_state_dict(name), strict=True)
    return name, model.eval()


@pytest.mark.parametrize("session", SESSIONS)
def test_session_outputs_match_reference(reference_model, reference_io, session: str) -> None:
    name, model = reference_model
    with torch.no_grad():
        output = model(reference_io["input"], data_key=session)
    expected = reference_io[f"{name}__{session}"]
    assert output.shape == expected.shape == (3, 30, {SESSIONS[0]: 40, SESSIONS[1]: 56}[session])
    assert (output - expected).abs().max().item() < TOLERANCE


def test_all_sessions_output_matches_reference(reference_model, reference_io) -> None:
    name, model = reference_model
    with torch.no_grad(), pytest.warns(UserWarning, match="concatenated"):
        output = model(reference_io["input"])
    expected = reference_io[f"{name}__{ALL_SESSIONS}"]
    assert output.shape == expected.shape == (3, 30, 96)
    assert (output - expected).abs().max().item() < TOLERANCE
    # Sorted session order: the first 40 neurons belong to session 1.
    with torch.no_grad():
        torch.testing.assert_close(output[..., :40], model(reference_io["input"], data_key=SESSIONS[0]))


def test_readout_in_shape_is_computed_like_the_reference(reference_hparams) -> None:
    hparams = reference_hparams("init")
    stored_in_shape = hparams["readout"]["in_shape"]
    hparams["readout"]["in_shape"] = "???"  # as in the training config before the model fills it in
    hparams["core"]["channels"] = "???"
    model = UnifiedCoreReadout(**hparams)
    # (16 channels, 150 - 20 - 10 frames, 18 - 10 rows, 16 - 10 columns), independent of the stored value.
    assert list(model.hparams["readout"]["in_shape"]) == [16, 120, 8, 6] == stored_in_shape
    assert list(model.hparams["core"]["channels"]) == [2, 16, 16]


def test_construction_leaves_batchnorm_statistics_untouched(reference_hparams) -> None:
    model = UnifiedCoreReadout(**reference_hparams("init"))
    for name, buffer in model.named_buffers():
        if name.endswith("num_batches_tracked"):
            assert buffer.item() == 0, name
        if name.endswith("running_var"):
            assert torch.equal(buffer, torch.ones_like(buffer)), name


def test_saved_hyper_parameters_rebuild_the_model(reference_hparams, reference_state_dict, reference_io) -> None:
    hparams = reference_hparams("trained_final")
    model = UnifiedCoreReadout(**copy.deepcopy(hparams))
    assert set(model.hparams) == {
        "core",
        "readout",
        "learning_rate",
        "loss",
        "evaluation_loss",
        "data_info",
        "in_shape",
        "n_neurons_dict",
        "hidden_channels",
        "optimizer",
        "lr_scheduler",
    }
    assert model.hparams["in_shape"] == (2, 150, 18, 16)
    assert model.hparams["hidden_channels"] == (16, 16)
    rebuilt = UnifiedCoreReadout(**dict(model.hparams))
    rebuilt.load_state_dict(reference_state_dict("trained_final"), strict=True)
    with torch.no_grad():
        output = rebuilt.eval()(reference_io["input"], data_key=SESSIONS[1])
    assert (output - reference_io[f"trained_final__{SESSIONS[1]}"]).abs().max().item() < TOLERANCE


def test_stimulus_shape_and_cut_frames(reference_hparams) -> None:
    model = UnifiedCoreReadout(**reference_hparams("trained_final"))
    assert model.stimulus_shape(time_steps=50) == (1, 2, 50, 18, 16)
    assert model.stimulus_shape(time_steps=40, num_batches=4) == (4, 2, 40, 18, 16)
    assert model.readout_keys() == list(SESSIONS)
    assert model.number_of_cut_frames() == 30  # stored by the reference's test run


def test_cut_frames_are_measured_when_not_stored(reference_hparams) -> None:
    model = UnifiedCoreReadout(**reference_hparams("init"))
    assert "model_cut_frames" not in model.data_info
    model.train()
    assert model.number_of_cut_frames() == 20 + 10  # temporal kernels 21 and 11
    assert model.training  # the probe restores the mode
    forwards: list[int] = []
    hook = model.core.register_forward_hook(lambda *_: forwards.append(1))
    try:
        assert model.number_of_cut_frames() == 30 and not forwards  # measured once, then remembered
    finally:
        hook.remove()


@pytest.mark.parametrize("name", ["init", "trained_best"])
def test_raw_reference_checkpoint_loads_with_lightning(name: str, reference_io) -> None:
    # Our own trusted test file; it pickles OmegaConf containers, hence weights_only=False.
    path = Path(__file__).resolve().parents[1] / "data" / "reference_fixture" / f"{name}.ckpt"
    model = UnifiedCoreReadout.load_from_checkpoint(path, map_location="cpu", weights_only=False).eval()
    with torch.no_grad():
        output = model(reference_io["input"], data_key=SESSIONS[0])
    assert (output - reference_io[f"{name}__{SESSIONS[0]}"]).abs().max().item() < TOLERANCE
    # Configs are kept resolved and without the reference's embedded training config.
    assert model.hparams["core"]._get_parent() is None
    assert model.hparams["optimizer"]["lr"] == 0.01
