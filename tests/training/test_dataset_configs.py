"""The published-dataset experiment configs compose with the reference's values and train one step on tiny data.

Each config's data source is replaced by small data of the config's input shape (channels, height, width) so no
test touches the network; the real kernel sizes are kept, only batch sizes, chunk lengths and clip counts shrink.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import call, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from openretina.cli.hydra_app import CONFIG_DIR
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.sridhar_2025.sample_data import (
    SampleRecording,
    write_sample_natural_movie,
    write_sample_white_noise,
)
from openretina.training.train import fit_model, train_model

from .conftest import ONE_STEP

HF_REPO = "https://huggingface.co/datasets/open-retina/open-retina/blob/main/"
HOEFLING = [
    "hoefling_2024_core_readout_high_res",
    "hoefling_2024_core_readout_low_res",
    "hoefling_2024_core_readout_low_res_lnp",
]
GENERIC = ["karamanlis_2024_core_readout", "maheswaranathan_2023_core_readout", "maheswaranathan_2023_LNP"]
SRIDHAR_CNN = ["vystrcilova_2024_nm_cnn", "vystrcilova_2024_wn_cnn"]
# Spatial-contrast models with fixed STA filters (no core, no optimizer group): tested for their own values below.
SRIDHAR_SC = ["sridhar_2025_nm_sc_multicell", "sridhar_2025_wn_sc_multicell"]
# One cell of one retina (single-cell dataloader): the LN and spatial-contrast models of that cell.
SRIDHAR_SINGLE_CELL = ["sridhar_2025_nm_sc", "sridhar_2025_wn_sc", "vystrcilova_2024_nm_ln", "vystrcilova_2024_wn_ln"]
SRIDHAR = [*SRIDHAR_CNN, *SRIDHAR_SC, *SRIDHAR_SINGLE_CELL]
DATASET_CONFIGS = [*HOEFLING, *GENERIC, "goldin_2022_core_readout", *SRIDHAR]

# Reference architecture values per experiment (spec 8.3): (in_shape, hidden_channels, temporal, spatial kernels).
EXPECTED_ARCHITECTURE: dict[str, tuple[list[int], list[int] | None, list[int] | None, list[int] | None]] = {
    "hoefling_2024_core_readout_high_res": ([2, 150, 72, 64], [16, 16, 16, 16], [13, 11, 5, 5], [15, 15, 7, 7]),
    "hoefling_2024_core_readout_low_res": ([2, 150, 18, 16], [16, 16], [21, 11], [11, 5]),
    "hoefling_2024_core_readout_low_res_lnp": ([2, 150, 18, 16], None, None, None),
    "karamanlis_2024_core_readout": ([1, 100, 60, 80], [16, 32, 64], [11, 11, 11], [21, 15, 11]),
    "maheswaranathan_2023_core_readout": ([1, 100, 50, 50], [16, 32], [21, 11], [15, 11]),
    "maheswaranathan_2023_LNP": ([1, 100, 50, 50], None, None, None),
    "goldin_2022_core_readout": ([1, 1, 108, 108], [4], [1], [30]),
    "vystrcilova_2024_nm_cnn": ([1, 132, 80, 90], [64, 64, 64], [15, 11, 7], [21, 15, 11]),
    "vystrcilova_2024_wn_cnn": ([1, 132, 80, 90], [16, 16], [21, 11], [11, 5]),
}
EXPECTED_SCHEDULER = {"vystrcilova_2024_nm_cnn": "torch.optim.lr_scheduler.OneCycleLR"}

# Tiny data per config; the kernels stay the reference's.
SHRINK = {
    "hoefling_2024_core_readout_high_res": [
        "dataloader.batch_size=2",
        "dataloader.train_chunk_size=40",
        "dataloader.num_clips=4",
        "dataloader.clip_length=40",
        "dataloader.validation_clip_indices=[1]",
        "model.hidden_channels=[4,4,4,4]",  # the full width costs ~40 s on 2 cores; kernels stay as shipped
    ],
    "hoefling_2024_core_readout_low_res": [
        "dataloader.batch_size=2",
        "dataloader.train_chunk_size=40",
        "dataloader.num_clips=4",
        "dataloader.clip_length=40",
        "dataloader.validation_clip_indices=[1]",
    ],
    "hoefling_2024_core_readout_low_res_lnp": [
        "dataloader.batch_size=2",
        "dataloader.train_chunk_size=40",
        "dataloader.num_clips=4",
        "dataloader.clip_length=40",
        "dataloader.validation_clip_indices=[1]",
        "model.core.cut_first_n_frames=5",
    ],
    "karamanlis_2024_core_readout": [
        "dataloader.batch_size=2",
        "dataloader.train_chunk_size=40",
        "dataloader.clip_length=40",
        "dataloader.num_val_clips=1",
        "model.hidden_channels=[4,4,4]",  # the full width costs ~2 min on 2 cores; kernels stay as shipped
    ],
    "maheswaranathan_2023_core_readout": [
        "dataloader.batch_size=2",
        "dataloader.train_chunk_size=40",
        "dataloader.clip_length=40",
        "dataloader.num_val_clips=1",
    ],
    "maheswaranathan_2023_LNP": [
        "dataloader.batch_size=2",
        "dataloader.train_chunk_size=40",
        "dataloader.clip_length=40",
        "dataloader.num_val_clips=1",
        "model.core.cut_first_n_frames=5",
    ],
    "goldin_2022_core_readout": ["dataloader.batch_size=4", "dataloader.num_val_clips=4"],
    "vystrcilova_2024_nm_cnn": [
        "dataloader.batch_size=1",
        "dataloader.time_chunk_size=10",
        "model.hidden_channels=[4,4,4]",
    ],
    "vystrcilova_2024_wn_cnn": [
        "dataloader.batch_size=1",
        "dataloader.time_chunk_size=10",
        "model.hidden_channels=[4,4]",
    ],
    "sridhar_2025_nm_sc_multicell": ["dataloader.batch_size=1", "dataloader.time_chunk_size=10"],
    "sridhar_2025_wn_sc_multicell": ["dataloader.batch_size=1", "dataloader.time_chunk_size=10"],
    **{
        name: ["dataloader.batch_size=1", "dataloader.time_chunk_size=10", "dataloader.cell_index=1"]
        for name in SRIDHAR_SINGLE_CELL  # the sample recordings have 3 cells (the published defaults are 272 / 2)
    },
}


def compose_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides or [])


def fake_hoefling_movie(
    channels: int, height: int, width: int, num_clips: int, clip_length: int
) -> MoviesTrainTestSplit:
    """One shared movie in the Höfling layout: clips in clip-id order, a test movie and 20 presentation orders."""
    rng = np.random.default_rng(0)
    orders = np.stack([rng.permutation(num_clips) for _ in range(20)], axis=1).astype(np.uint8)
    return MoviesTrainTestSplit(
        train=rng.standard_normal((channels, num_clips * clip_length, height, width), dtype=np.float32),
        test=rng.standard_normal((channels, 2 * clip_length, height, width), dtype=np.float32),
        random_sequences=orders,
        stim_id="natural",
        norm_mean=0.0,
        norm_std=1.0,
    )


def fake_hoefling_responses(num_clips: int, clip_length: int, neurons: int = 3) -> dict[str, Any]:
    """Two recording fields (one per eye, different presentation orders), as ``make_final_responses`` returns."""
    rng = np.random.default_rng(1)
    fields = {}
    for index, eye in enumerate(("right", "left")):
        # Trials share a signal, so neurons pass the evaluation's explainable-variance filter.
        signal = rng.poisson(2.0, (neurons, 2 * clip_length)).astype(np.float32)
        trials = signal + rng.uniform(0.0, 0.2, (3, neurons, 2 * clip_length)).astype(np.float32)
        fields[f"session_{index}"] = ResponsesTrainTestSplit(
            train=rng.poisson(1.0, (neurons, num_clips * clip_length)).astype(np.float32),
            test=trials.mean(axis=0),
            test_by_trial=trials,
            stim_id="natural",
            session_kwargs={"eye": eye, "scan_sequence_idx": index, "roi_ids": np.arange(1, neurons + 1)},
        )
    return fields


def replace_data_source(cfg: DictConfig, name: str) -> None:
    """Point ``data_io.stimuli`` / ``responses`` at tiny data of the config's (C, H, W); nothing is downloaded."""
    if name in SRIDHAR:  # tiny files in the native layout, read by the config's own data_io and dataloader
        sessions = list(cfg.data_io.sessions)[:2]
        write = write_sample_natural_movie if "_nm_" in name else write_sample_white_noise
        # STAs as long as the spatial-contrast models' temporal filters (the CNNs only use their locations).
        sta_frames = int(cfg.model.get("temporal_crop_frames") or 4)
        recording = SampleRecording(sta_shape=(sta_frames, 150, 200))
        with open_dict(cfg):
            cfg.paths.data_dir = str(write(Path(cfg.paths.log_dir), sessions, recording))
            cfg.data_io.sessions = sessions
        return
    channels, _, height, width = cfg.model.in_shape
    if name in HOEFLING:
        size = {"num_clips": cfg.dataloader.num_clips, "clip_length": cfg.dataloader.clip_length}
        stimuli = {"_target_": f"{__name__}.fake_hoefling_movie", "channels": channels, "height": height,
                   "width": width, **size}  # fmt: skip
        responses = {"_target_": f"{__name__}.fake_hoefling_responses", **size}
    else:
        clip_length = cfg.dataloader.clip_length
        retina = {
            "num_channels": channels,
            "height": height,
            "width": width,
            "clip_length": max(clip_length, 10),
            "num_natural_clips": 3 if clip_length > 1 else 1,
            "num_white_noise_clips": 0,
            "num_test_clips": 1,
            "num_test_repeats": 3,
            "num_sessions": 2,
            "cells_per_session": 3,
        }
        stimuli = {"_target_": "openretina.training.synthetic_data.load_synthetic_stimuli", "retina": retina}
        responses = {"_target_": "openretina.training.synthetic_data.load_synthetic_responses", "retina": retina}
    with open_dict(cfg):
        cfg.data_io.stimuli = {"_convert_": "object", **stimuli}
        cfg.data_io.responses = {"_convert_": "object", **responses}


def test_every_dataset_config_is_shipped() -> None:
    shipped = {path.stem for path in CONFIG_DIR.glob("*.yaml")}
    assert set(DATASET_CONFIGS) <= shipped


@pytest.mark.parametrize("name", list(EXPECTED_ARCHITECTURE))
def test_config_has_the_reference_architecture_and_remote_data(name: str) -> None:
    cfg = compose_config(name, ["trainer.max_epochs=5", "+trainer.limit_train_batches=1"])
    in_shape, hidden, temporal, spatial = EXPECTED_ARCHITECTURE[name]
    assert list(cfg.model.in_shape) == in_shape
    if hidden is not None:
        assert list(cfg.model.hidden_channels) == hidden
        assert list(cfg.model.core.temporal_kernel_sizes) == temporal
        assert list(cfg.model.core.spatial_kernel_sizes) == spatial
    # Every config selects the groups its model interpolates (the reference's Höfling LNP config did not).
    assert cfg.model.optimizer._target_ == "torch.optim.AdamW"
    scheduler = EXPECTED_SCHEDULER.get(name, "torch.optim.lr_scheduler.ReduceLROnPlateau")
    assert cfg.model.lr_scheduler._target_ == scheduler
    assert cfg.trainer.max_epochs == 5 and cfg.trainer.precision == "32-true"
    assert cfg.seed == 42 and cfg.exp_name == name
    # Stimulus and responses come from the reference's remote locations unless a local path is given.
    data_paths = [cfg.paths.movies_path, cfg.paths.responses_path] if name in HOEFLING else [cfg.paths.data_dir]
    assert all(path.startswith(HF_REPO) for path in data_paths)


def test_hoefling_configs_read_the_quality_checks_group() -> None:
    cfg = compose_config("hoefling_2024_core_readout_low_res", ["quality_checks.d_qi=0.7"])
    filter_call = cfg.data_io.responses.data_dict
    assert filter_call._target_ == "openretina.data_io.hoefling_2024.responses.filter_responses"
    assert filter_call.d_qi == 0.7 and filter_call.chirp_qi == 0.35 and filter_call.qi_logic == "or"
    assert list(filter_call.cell_types_list) == list(range(1, 33))
    assert filter_call.all_responses.file_path.file_path.endswith("responses/rgc_natstim_2024-08-14.zip")
    assert cfg.data_io.data_info.retina_pixel_size_um == 50
    high_res = compose_config("hoefling_2024_core_readout_high_res")
    assert high_res.data_io.data_info.retina_pixel_size_um == 12.5
    assert high_res.matmul_precision.precision == "medium"


def write_native_hoefling_responses(path: Path) -> None:
    """Two recording fields in the published HDF5 layout; 123 clip triggers 5 s apart, traces at 10 Hz equal to
    ``1 + time`` so resampled values are known. Only neurons 0 and 2 of ``field_a`` pass the quality checks."""
    n_triggers = 123  # 108 training clips + 3 repeats of the 5 test clips
    trace_times = np.arange(0.0, 5.0 * n_triggers + 1.0, 0.1)
    fields = {
        # neuron: 0 kept; 1 amacrine type; 2 kept by chirp_qi alone ("or"); 3 fails both QIs; 4 unsure classifier
        "field_a": ([1, 40, 5, 10, 20], [0.7, 0.9, 0.1, 0.1, 0.9], [0.1, 0.9, 0.5, 0.1, 0.9], [0.9] * 4 + [0.2]),
        "field_b": ([33, 34], [0.9, 0.9], [0.9, 0.9], [0.9, 0.9]),  # amacrine cells only: the field is dropped
    }
    with h5py.File(path, "w") as file:
        for name, (types, d_qi, chirp_qi, confidence) in fields.items():
            group = file.create_group(name)
            n = len(types)
            group["group_assignment"] = np.asarray(types)
            group["d_qi"] = np.asarray(d_qi)
            group["chirp_qi"] = np.asarray(chirp_qi)
            group["group_confidences"] = np.asarray(confidence)[:, None] * np.eye(46)[:n]
            group["roi_ids"] = np.arange(1, n + 1)
            group["roi_mask"] = np.zeros((64, 64))
            group["natural_inferred_spikes"] = np.tile(1.0 + trace_times, (n, 1))
            group["natural_traces_times"] = np.tile(trace_times, (n, 1))
            group["natural_trigger_times"] = 5.0 * np.arange(n_triggers)[None, :]
            group.attrs["eye"] = "left"
            group.attrs["scan_sequence_idx"] = 3


def test_hoefling_responses_pipeline_of_the_config_on_a_native_file(tmp_path: Path) -> None:
    responses_file = tmp_path / "responses.h5"
    write_native_hoefling_responses(responses_file)
    cfg = compose_config("hoefling_2024_core_readout_low_res", [f"paths.responses_path={responses_file}"])
    responses = call(cfg.data_io.responses)
    assert list(responses) == ["field_a"]
    field = responses["field_a"]
    assert list(field.session_kwargs["roi_ids"]) == [1, 3]
    assert field.session_kwargs["eye"] == "left" and field.session_kwargs["scan_sequence_idx"] == 3
    train, test, trials = (np.asarray(a) for a in (field.train, field.test_dict["test"], field.get_test_by_trial()))
    assert train.shape == (2, 16200) and test.shape == (2, 750) and trials.shape == (3, 2, 750)
    # Trace = 1 + time, divided by its std: the first training frame is clip 5 (t = 25 s), the second repeat of
    # the test movie starts at clip 59 (t = 295 s).
    assert train[:, 0] / trials[1, :, 0] == pytest.approx([26.0 / 296.0] * 2, rel=1e-5)
    np.testing.assert_allclose(test, trials.mean(axis=0), rtol=1e-6)


def test_goldin_minimises_its_poisson_evaluation_loss() -> None:
    cfg = compose_config("goldin_2022_core_readout")
    assert cfg.model.evaluation_loss._target_.endswith("PoissonLoss3d") and cfg.model.evaluation_loss.avg
    assert cfg.training_callbacks.model_checkpoint.mode == cfg.lr_scheduler.mode == "min"
    assert cfg.training_callbacks.early_stopping.monitor == "val_loss"
    assert cfg.objective_direction == "minimize"


@pytest.mark.parametrize("name", DATASET_CONFIGS)
def test_config_trains_one_step_and_evaluates(name: str, tmp_path: Path) -> None:
    overrides = [f"paths.log_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", *ONE_STEP, *SHRINK[name]]
    cfg = compose_config(name, overrides)
    replace_data_source(cfg, name)
    metrics = train_model(cfg)
    assert np.isfinite(metrics["test_corr_to_avg_mean"])
    run = tmp_path / "run"
    assert (run / "csv" / "metrics.csv").is_file()
    # Core-readout models also write a *_final checkpoint after testing; the single-cell models only the best one.
    final = "" if name in SRIDHAR_SINGLE_CELL else "_final"
    assert any(path.name.endswith(f"{final}.ckpt") for path in (run / "checkpoints").glob("*.ckpt"))
    summary = json.loads((run / "evaluation" / "test_summary.json").read_text())
    # Two sessions of three neurons; the spatial-contrast configs train the cells of one retina, the single-cell
    # configs one cell.
    expected = 1 if name in SRIDHAR_SINGLE_CELL else 3 if name in SRIDHAR_SC else 6
    assert summary["n_neurons_total"] == expected


def single_cell_config(kind: str, tmp_path: Path) -> DictConfig:
    """The multi-cell spatial-contrast config of ``kind`` on sample data, with the single-cell loaders (cell 1)."""
    name = f"sridhar_2025_{kind}_sc_multicell"
    overrides = [
        f"paths.log_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
        *ONE_STEP,
        *SHRINK[name],
        f"dataloader=sridhar_2025_{kind}_single_cell",
        "dataloader.cell_index=1",  # the sample recordings have 3 cells (the published default is 272 / 2)
    ]
    cfg = compose_config(name, overrides)
    replace_data_source(cfg, name)
    return cfg


@pytest.mark.parametrize("kind", ["nm", "wn"])
def test_single_cell_dataloader_config_trains_one_cell(kind: str, tmp_path: Path) -> None:
    cfg = single_cell_config(kind, tmp_path)
    retina = "01" if kind == "nm" else "04"
    assert cfg.dataloader.retina_index == retina and cfg.dataloader.num_of_layers == 1
    run = fit_model(cfg)
    assert run.data.data_info["n_neurons_dict"] == {retina: 1}
    assert list(run.data.data_info["sessions_kwargs"][retina]["cell_indices"]) == [1]
    assert np.isfinite(run.metrics["test_corr_to_avg_mean"])
    # The targets are cell 1's recorded responses, after the 29 frames of the 30-frame temporal filter.
    train: Any = run.data.dataloaders["train"][retina].dataset
    response_file = Path(cfg.paths.data_dir) / cfg.data_io.response_files[retina]
    recorded = pickle.loads(response_file.read_bytes())["train_responses"]
    trial = int(train.trial_ids[0])
    np.testing.assert_allclose(train[0].targets.numpy(), recorded[1, 29:39, trial][:, None], rtol=1e-6)
    summary = json.loads((tmp_path / "run" / "evaluation" / "test_summary.json").read_text())
    assert summary["n_neurons_total"] == 1


@pytest.mark.parametrize("kind", ["nm", "wn"])
def test_single_cell_model_configs_build_the_cell_models(kind: str, tmp_path: Path) -> None:
    cfg = single_cell_config(kind, tmp_path)
    retina = cfg.dataloader.retina_index
    stimulus = torch.zeros(2, 1, 39, 80, 90)  # 10 predicted frames after a 30-frame temporal filter
    with open_dict(cfg):
        cfg.model = OmegaConf.load(CONFIG_DIR / "model" / "single_cell_lnp.yaml")
        cfg.model.in_shape = [1, 30, 80, 90]
        cfg.model.rf_location = [40, 3]
    lnp = instantiate(cfg.model)
    assert lnp.spat_kernel_size == (15, 15) and lnp.learning_rate == 0.005 and not lnp.normalize_weights
    assert lnp.smooth_weight_spat == lnp.smooth_weight_temp == lnp.sparse_weight == 1.0
    assert lnp.crop_input(stimulus).shape[-2:] == (15, 15) and lnp(stimulus).shape == (2, 10, 1)
    with open_dict(cfg):
        cfg.model = OmegaConf.load(CONFIG_DIR / "model" / "single_cell_sc.yaml")
        cfg.model.in_shape = [1, 39, 80, 90]
        cfg.model.sta_file_name = f"cell_data_{retina}_WN_stas_cell_1.npy"
    sc = instantiate(cfg.model)  # the STA folder of the data (paths.data_dir/stas)
    assert tuple(sc.spatial_filter.shape) == (15, 15) and tuple(sc.temporal_filter.shape) == (30,)
    initial = [float(p) for p in (sc.w, sc.nl_a, sc.nl_b, sc.nl_c)]
    assert initial == [0.0, 4.0, 1.0, -5.0] and sc.learning_rate == 0.01
    assert sc(stimulus).shape == (2, 10, 1)


@pytest.mark.parametrize(("name", "retina", "flip"), [(SRIDHAR_SC[0], "01", True), (SRIDHAR_SC[1], "04", False)])
def test_spatial_contrast_multicell_configs_have_the_reference_values(name: str, retina: str, flip: bool) -> None:
    cfg = compose_config(name, ["dataloader.retina_index='02'"])
    assert list(cfg.data_io.sessions) == ["02"]  # follows dataloader.retina_index
    cfg = compose_config(name)
    assert cfg.dataloader.retina_index == retina and list(cfg.data_io.sessions) == [retina]
    assert (
        cfg.dataloader.num_of_frames == 30 and cfg.dataloader.num_of_layers == 1 and cfg.dataloader.cell_index is None
    )
    model = cfg.model
    assert model._target_ == "openretina.models.spatial_contrast.SpatialContrastCoreReadout"
    assert list(model.in_shape) == [1, 132, 80, 90] and model.flip_sta is flip
    assert model.sta_file_pattern == "cell_data_{retina_index}_WN_stas_cell_{cell_index}.npy"
    assert model.sta_dir.file_path == f"{cfg.paths.data_dir}/stas" and cfg.paths.data_dir.startswith(HF_REPO)
    assert (model.temporal_crop_frames, model.sigma_contour, model.learning_rate) == (30, 3.0, 0.01)
    assert (model.w_init, model.a_init, model.b_init, model.c_init) == (0.0, 4.0, 1.0, -5.0)
    assert list(cfg.logger) == ["csv"] and cfg.exp_name == name
