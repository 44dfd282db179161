"""Fine-tuning with `paths.load_model_path`: the trained core carries over and new sessions get readouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from openretina.cli import train as train_cli
from openretina.cli.hydra_app import CONFIG_DIR
from openretina.hub import save_pretrained
from openretina.training.builders import build_model
from openretina.training.checkpoints import load_model_checkpoint
from openretina.training.data import load_data

from .conftest import ONE_STEP, TINY_CORE, TINY_DATA

THREE_SESSIONS = "data_io.retina.num_sessions=3"  # the tiny data has session_0 and session_1; session_2 is new


def best_checkpoint(log_dir: Path) -> Path:
    (run,) = sorted((log_dir / "openretina_assets" / "runs" / "synthetic_core_readout").iterdir())
    return next(p for p in (run / "checkpoints").glob("epoch=*.ckpt") if not p.stem.endswith("_final"))


def config(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "synthetic_core_readout",
            overrides=[*TINY_DATA, *TINY_CORE, f"paths.output_dir={tmp_path / 'compose'}", *overrides],
        )


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def assert_same(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=0, msg=name)


@pytest.fixture(scope="module")
def model_a(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model A: trained on the two sessions of the tiny synthetic retina (2 epochs of 2 steps)."""
    log_dir = tmp_path_factory.mktemp("model_a")
    overrides = [f"paths.log_dir={log_dir}", *ONE_STEP, *TINY_DATA, *TINY_CORE, "trainer.limit_train_batches=2"]
    assert train_cli.main([*overrides, "trainer.max_epochs=2"]) == 0
    return best_checkpoint(log_dir)


def test_model_built_for_fine_tuning_starts_from_the_checkpoint(model_a: Path, tmp_path: Path) -> None:
    trained = load_model_checkpoint(model_a)
    assert trained.readout_keys() == ["session_0", "session_1"]
    cfg = config(tmp_path, THREE_SESSIONS, f"paths.load_model_path='{model_a}'")
    data = load_data(cfg)
    model = build_model(cfg, data.data_info)

    # Step 0 of model B: A's core and A's readouts of the known sessions, plus a readout for the new session.
    assert model.training, "a fine-tuned model must train in training mode"
    assert model.readout_keys() == ["session_0", "session_1", "session_2"]
    assert_same(state(model.core), state(trained.core))
    for session in ("session_0", "session_1"):
        assert_same(state(model.readout[session]), state(trained.readout[session]))
    assert model.hparams["n_neurons_dict"] == {"session_0": 4, "session_1": 4, "session_2": 4}
    stimulus = torch.randn(model.stimulus_shape(time_steps=20, num_batches=2))
    assert model.eval()(stimulus, data_key="session_2").shape == (2, 20 - model.number_of_cut_frames(), 4)

    # Without load_model_path the same config builds a fresh core, which differs from A's trained one.
    fresh = build_model(config(tmp_path, THREE_SESSIONS), data.data_info)
    differences = [
        name for name, tensor in state(trained.core).items() if not torch.equal(tensor, state(fresh.core)[name])
    ]
    assert differences, "model A's core should differ from a fresh initialisation"


def test_fine_tuning_run_trains_the_new_session_and_its_checkpoint_reloads(model_a: Path, tmp_path: Path) -> None:
    trained = load_model_checkpoint(model_a)
    overrides = [f"paths.log_dir={tmp_path}", *ONE_STEP, *TINY_DATA, *TINY_CORE, THREE_SESSIONS]
    assert train_cli.main([*overrides, f"paths.load_model_path={model_a}"]) == 0

    fine_tuned = load_model_checkpoint(best_checkpoint(tmp_path))
    assert fine_tuned.readout_keys() == ["session_0", "session_1", "session_2"]
    assert fine_tuned.data_info["n_neurons_dict"] == {"session_0": 4, "session_1": 4, "session_2": 4}
    assert set(fine_tuned.data_info["mean_activity_dict"]) == {"session_0", "session_1", "session_2"}
    # One optimisation step moved the core away from A's weights (it was trained, not frozen or replaced).
    assert any(not torch.equal(t, state(fine_tuned.core)[n]) for n, t in state(trained.core).items())


def test_only_train_readout_keeps_the_core_of_the_checkpoint(model_a: Path, tmp_path: Path) -> None:
    trained = load_model_checkpoint(model_a)
    overrides = [f"paths.log_dir={tmp_path}", *ONE_STEP, *TINY_DATA, *TINY_CORE, THREE_SESSIONS]
    assert train_cli.main([*overrides, f"paths.load_model_path={model_a}", "+only_train_readout=true"]) == 0
    fine_tuned = load_model_checkpoint(best_checkpoint(tmp_path))
    assert_same(state(fine_tuned.core), state(trained.core))
    assert fine_tuned.readout_keys() == ["session_0", "session_1", "session_2"]


def test_fine_tuning_from_a_saved_pretrained_folder(model_a: Path, tmp_path: Path) -> None:
    """`load_model_path` also takes what the hub loader takes: here a `save_pretrained` folder."""
    trained = load_model_checkpoint(model_a)
    folder = save_pretrained(trained, tmp_path / "pretrained")
    cfg = config(tmp_path, THREE_SESSIONS, f"paths.load_model_path={folder}")
    model = build_model(cfg, load_data(cfg).data_info)
    assert model.readout_keys() == ["session_0", "session_1", "session_2"]
    assert_same(state(model.core), state(trained.core))
