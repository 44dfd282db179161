"""Lightning behaviour of the core-readout models: metric names, scheduler, test aggregation, checkpoints."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from openretina.data_io.base_dataloader import DataPoint
from openretina.errors import DataShapeError, InsufficientFramesError
from openretina.models import ExampleCoreReadout, UnifiedCoreReadout
from openretina.models.core_readout import BaseCoreReadout

from .conftest import TINY_SIMPLE_CORE

N_NEURONS = {"session_b": 5, "session_a": 3}
IN_SHAPE = (2, 20, 10, 8)
CUT = 4 + 2  # temporal kernels 5 and 3

CORE = TINY_SIMPLE_CORE
READOUT = {
    "_target_": "openretina.modules.readout.multi_readout.MultiGaussianMaskReadout",
    "scale": True,
    "bias": True,
    "gaussian_mean_scale": 6.0,
    "gaussian_var_scale": 4.0,
    "positive": True,
}
REFERENCE_METRICS = {
    "regularization_loss_core",
    "regularization_loss_readout",
    "train_total_loss",
    "train_loss",
    "train_evaluation_loss",
    "val_loss",
    "val_regularization_loss_core",
    "val_regularization_loss_readout",
    "val_total_loss",
    "val_evaluation_loss",
    "val_correlation",
}


def _model(**overrides: Any) -> UnifiedCoreReadout:
    torch.manual_seed(0)
    arguments: dict[str, Any] = {
        "in_shape": IN_SHAPE,
        "n_neurons_dict": N_NEURONS,
        "core": copy.deepcopy(CORE),
        "readout": copy.deepcopy(READOUT),
        "hidden_channels": (4, 4),
        "learning_rate": 0.01,
        "data_info": {
            "input_shape": (2, 10, 8),
            "n_neurons_dict": dict(N_NEURONS),
            "mean_activity_dict": {session: [0.5] * n for session, n in N_NEURONS.items()},
        },
    }
    arguments.update(overrides)
    return UnifiedCoreReadout(**arguments)


def _batches(session: str, batch_sizes: list[int], seed: int, frames: int = 12) -> list[tuple[str, DataPoint]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            session,
            DataPoint(
                torch.randn(b, 2, frames, 10, 8, generator=generator),
                torch.rand(b, frames, N_NEURONS[session], generator=generator) * 2,
            ),
        )
        for b in batch_sizes
    ]


def _loader(batches: list[tuple[str, DataPoint]]) -> DataLoader:
    return DataLoader(batches, batch_size=None, shuffle=False)


def _trainer(tmp_path: Path, **kwargs: Any) -> lightning.Trainer:
    settings: dict[str, Any] = {
        "max_epochs": 1,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "default_root_dir": tmp_path,
    }
    settings.update(kwargs)
    return lightning.Trainer(**settings)


@pytest.fixture(autouse=True)
def _quiet_lightning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers).*")
        warnings.filterwarnings("ignore", message=".*no data_key given.*")
        yield


@pytest.mark.parametrize("lr_scheduler", [None, "config"])
def test_two_step_fit_with_default_scheduler_logs_reference_metrics(tmp_path: Path, lr_scheduler) -> None:
    scheduler_config = {
        "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
        "mode": "max",
        "factor": 0.3,
        "patience": 5,
        "monitor": "val_evaluation_loss",
        "interval": "epoch",
        "frequency": 1,
    }
    model = _model(lr_scheduler=scheduler_config if lr_scheduler else None)
    trainer = _trainer(tmp_path)
    train = _batches("session_a", [2], seed=1) + _batches("session_b", [2], seed=2)
    trainer.fit(model, _loader(train), _loader(_batches("session_b", [2], seed=3)))
    assert trainer.global_step == 2
    assert set(trainer.callback_metrics) >= REFERENCE_METRICS
    # Gradient norms are logged while gradients exist (the reference's epoch-end hook logged nothing).
    assert trainer.callback_metrics["grad_2.0_norm_total_core"] > 0
    assert trainer.callback_metrics["grad_2.0_norm_total_readout"] > 0
    assert all(torch.isfinite(v) for v in trainer.callback_metrics.values())
    scheduler = trainer.lr_scheduler_configs[0]
    assert scheduler.monitor == "val_evaluation_loss"
    assert scheduler.scheduler.mode == "max"  # the evaluation metric is a correlation


def test_validation_loss_is_per_output_element(tmp_path: Path) -> None:
    model = _model()
    batches = _batches("session_b", [3], seed=4)
    trainer = _trainer(tmp_path)
    metrics = trainer.validate(model, _loader(batches), verbose=False)[0]
    inputs, targets = batches[0][1]
    with torch.no_grad():
        output = model.eval()(inputs, "session_b")
    aligned = targets[:, CUT:]
    poisson = (output - aligned * torch.log(output + 1e-16)).sum() / output.numel()
    assert output.shape == (3, 12 - CUT, 5)
    assert metrics["val_loss"] == pytest.approx(poisson.item(), rel=1e-5)


def _correlations(output: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Pearson correlation over time per clip and neuron, (clips, neurons)."""
    aligned = target[:, target.shape[1] - output.shape[1] :]
    return np.array(
        [
            [np.corrcoef(output[b, :, n].numpy(), aligned[b, :, n].numpy())[0, 1] for n in range(output.shape[2])]
            for b in range(output.shape[0])
        ]
    )


def test_test_performance_is_averaged_over_all_batches(tmp_path: Path) -> None:
    model = _model()
    with torch.no_grad():  # random weights, so that predictions vary over time and correlations are defined
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    sessions = {"session_a": _batches("session_a", [2, 3, 1], seed=5), "session_b": _batches("session_b", [4], seed=6)}
    trainer = _trainer(tmp_path)
    trainer.test(model, _loader(sessions["session_a"] + sessions["session_b"]), verbose=False)
    performance = model.data_info["pretrained_performance"]
    assert model.data_info["pretrained_performance_metric"] == "test CorrelationLoss3d"
    assert model.data_info["model_cut_frames"] == CUT
    model.eval()
    for session, batches in sessions.items():
        with torch.no_grad():
            per_clip = np.concatenate([_correlations(model(dp.inputs, session), dp.targets) for _, dp in batches])
        np.testing.assert_allclose(performance[session].numpy(), per_clip.mean(axis=0), rtol=1e-4, atol=1e-5)
    assert model.hparams["data_info"]["pretrained_performance"] is performance


def test_final_checkpoint_is_written_after_test(tmp_path: Path) -> None:
    model = _model()
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_evaluation_loss", mode="max")
    trainer = _trainer(tmp_path, enable_checkpointing=True, callbacks=[checkpoint])
    trainer.fit(model, _loader(_batches("session_a", [2], seed=7)), _loader(_batches("session_a", [2], seed=8)))
    trainer.test(model, _loader(_batches("session_a", [2], seed=9)), verbose=False)
    final = Path(checkpoint.best_model_path.replace(".ckpt", "_final.ckpt"))
    assert final.is_file()
    stored = torch.load(final, weights_only=False)
    assert "session_a" in stored["hyper_parameters"]["data_info"]["pretrained_performance"]
    reloaded = UnifiedCoreReadout.load_from_checkpoint(final, weights_only=False)
    stimulus = torch.randn(1, 2, 10, 10, 8)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(stimulus, "session_b"), model.eval()(stimulus, "session_b"))


def test_module_arguments_are_not_pickled_into_hyper_parameters() -> None:
    built = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Lightning warns when a module lands in the hyper-parameters
        model = BaseCoreReadout(core=built.core, readout=built.readout, learning_rate=0.1, data_info={"x": 1})
    assert set(model.hparams) == {"learning_rate", "loss", "evaluation_loss", "data_info"}
    assert set(built.hparams) >= {"core", "readout"}  # configs, not modules
    assert not any(isinstance(v, torch.nn.Module) for v in built.hparams.values())


def test_insufficient_frames_on_hoefling_low_res(reference_hparams) -> None:
    model = UnifiedCoreReadout(**reference_hparams("trained_final")).eval()
    session = model.readout_keys()[0]
    with pytest.raises(InsufficientFramesError, match="30"):
        model(torch.zeros(model.stimulus_shape(time_steps=30)), data_key=session)
    with torch.no_grad():
        output = model(torch.zeros(model.stimulus_shape(time_steps=50)), data_key=session)
    assert output.shape == (1, 20, 40)


def test_forward_rejects_a_missing_batch_axis() -> None:
    with pytest.raises(DataShapeError, match="5 dims"):
        _model()(torch.zeros(2, 12, 10, 8), data_key="session_a")


def test_regularizers_are_finite_and_differentiable() -> None:
    model = _model()
    total = model.core.regularizer() + model.readout.regularizer("session_a")
    assert torch.isfinite(total) and total.item() > 0
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.core.parameters())


def test_readout_bias_starts_at_the_mean_activity() -> None:
    torch.testing.assert_close(_model().readout["session_b"].bias, torch.full((5,), 0.5))


def test_update_model_data_info_merges_and_replaces() -> None:
    model = _model(data_info={"input_shape": (2, 10, 8), "sessions_kwargs": {"a": {"eye": "left"}}, "stim_mean": 1.0})
    model.update_model_data_info({"sessions_kwargs": {"b": {"eye": "right"}}, "stim_mean": 2.5})
    assert model.data_info["sessions_kwargs"] == {"a": {"eye": "left"}, "b": {"eye": "right"}}
    assert model.data_info["stim_mean"] == 2.5
    assert model.hparams["data_info"]["stim_mean"] == 2.5
    with pytest.raises(DataShapeError, match="input_shape"):
        model.update_model_data_info({"input_shape": (1, 10, 8)})


def test_example_core_readout_keeps_reference_semantics() -> None:
    with pytest.warns(UserWarning, match="prefer UnifiedCoreReadout"):
        example = ExampleCoreReadout(
            in_shape=IN_SHAPE,
            hidden_channels=(4, 4),
            temporal_kernel_sizes=(5, 3),
            spatial_kernel_sizes=(3, 3),
            n_neurons_dict=N_NEURONS,
            core_hidden_padding=(0, 1, 1),
            cut_first_n_frames_in_core=0,
            readout_gamma=0.4,
            readout_gamma_masks=0.0,
        )
    readout = example.readout["session_a"]
    assert (readout.mask_l1_reg, readout.feature_weights_l1_reg) == (0.4, 0.0)  # names swapped as in the reference
    assert set(example.state_dict()) == set(_model().state_dict())
    assert "core" not in example.hparams and example.hparams["readout_gamma"] == 0.4

    checkpoint = {"state_dict": {"readout.session_a.bias_param": torch.ones(3), "core.x": torch.zeros(1)}}
    with pytest.warns(UserWarning, match="bias_param"):
        example.on_load_checkpoint(checkpoint)
    assert set(checkpoint["state_dict"]) == {"readout.session_a.bias", "core.x"}


def test_save_weight_visualizations_delegates_to_core_and_readout(tmp_path: Path) -> None:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    class RecordingCore(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

        def save_weight_visualizations(self, folder_path: str, file_format: str, state_suffix: str = "") -> None:
            calls.append(("core", (folder_path, file_format), {"state_suffix": state_suffix}))

    class RecordingReadout(torch.nn.Module):
        def readout_keys(self) -> list[str]:
            return ["s"]

        def save_weight_visualizations(self, folder_path: str, file_format: str) -> None:
            calls.append(("readout", (folder_path, file_format), {}))

    model = BaseCoreReadout(core=RecordingCore(), readout=RecordingReadout(), learning_rate=0.1)
    model.save_weight_visualizations(tmp_path, "png", state_suffix="epoch3")
    assert calls == [
        ("core", (str(tmp_path / "weights_core"), "png"), {"state_suffix": "epoch3"}),
        ("readout", (str(tmp_path / "weights_readout"), "png"), {}),  # no state_suffix parameter: not passed
    ]
