"""`openretina train` / `eval` on tiny data: every shipped config trains one step and evaluates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from openretina.cli import eval as eval_cli
from openretina.cli import train as train_cli
from openretina.cli.create_data import main as create_data_main
from openretina.cli.hydra_app import CONFIG_DIR
from openretina.training.builders import MissingLoggerDependencyError, build_loggers
from openretina.training.checkpoints import MODEL_CLASS_KEY

from .conftest import ONE_STEP, TINY_CORE, TINY_DATA
from .test_dataset_configs import DATASET_CONFIGS

# Per config: overrides that shrink it (its data source replaced by tiny data of the right shapes).
TINY_OVERRIDES = {
    "synthetic_core_readout": TINY_DATA + TINY_CORE,
    "synthetic_lnp": [*TINY_DATA, "model.core.temporal_kernel_size=6"],
    "hdf5_core_readout": [
        "data_io.color_channels=2",
        "dataloader.train_chunk_size=10",
        "dataloader.batch_size=4",
        "dataloader.clip_length=10",
        "dataloader.num_val_clips=2",
        *TINY_CORE,
        "model.hidden_channels=[4,4]",
        "model.core.hidden_padding=true",
    ],
}
# The published-dataset configs are trained in test_dataset_configs.py (their downloads replaced by tiny data).
TOP_LEVEL_CONFIGS = sorted(TINY_OVERRIDES)


def run_dirs(log_dir: Path, exp_name: str) -> list[Path]:
    return sorted((log_dir / "openretina_assets" / "runs" / exp_name).iterdir())


@pytest.fixture(scope="module")
def hdf5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("h5") / "data"
    assert create_data_main([str(directory), "--num-colors", "2", "--num-stimuli", "2", "--clip-length", "10"]) == 0
    return directory


# The reference's names of its Optuna searches: an experiment config plus its search (test_hyperparameter_search.py).
SEARCH_CONFIGS = {
    "goldin_2022_core_readout_hparams_search": "goldin_2022_core_readout",
    "hoefling_2024_core_readout_low_res_hyperparams_search": "hoefling_2024_core_readout_low_res",
}


def test_every_top_level_config_is_covered() -> None:
    shipped = {path.stem for path in CONFIG_DIR.glob("*.yaml")}
    assert shipped == set(TINY_OVERRIDES) | set(DATASET_CONFIGS) | set(SEARCH_CONFIGS)


@pytest.mark.parametrize("config_name", TOP_LEVEL_CONFIGS)
def test_config_composes_with_reference_overrides(config_name: str) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=["trainer.max_epochs=5", "+trainer.limit_train_batches=1"])
    assert cfg.trainer.max_epochs == 5 and cfg.trainer.limit_train_batches == 1
    assert set(cfg.training_callbacks) == {"early_stopping", "lr_monitor", "model_checkpoint"}
    assert "csv" in cfg.logger and cfg.evaluation.data_split == "test"
    # The scheduler and the callbacks monitor a metric the models log.
    assert cfg.lr_scheduler.monitor == cfg.training_callbacks.model_checkpoint.monitor == "val_evaluation_loss"
    assert len(cfg.model.in_shape) == 4


@pytest.mark.parametrize("config_name", TOP_LEVEL_CONFIGS)
def test_config_trains_one_step_and_evaluates(config_name: str, tmp_path: Path, hdf5_dir: Path) -> None:
    overrides = [f"paths.log_dir={tmp_path}", *ONE_STEP, *TINY_OVERRIDES[config_name]]
    if config_name.startswith("hdf5"):
        overrides.append(f"paths.data_dir={hdf5_dir}")
    assert train_cli.main(["--config-name", config_name, *overrides]) == 0
    exp_name = OmegaConf.load(CONFIG_DIR / f"{config_name}.yaml").exp_name
    (run,) = run_dirs(tmp_path, exp_name)
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "config_resolved.yaml").is_file()
    assert (run / "csv" / "metrics.csv").is_file()
    checkpoints = sorted((run / "checkpoints").glob("*.ckpt"))
    assert any(path.name == "last.ckpt" for path in checkpoints)
    assert any(path.name.endswith("_final.ckpt") for path in checkpoints)
    best = next(p for p in checkpoints if p.name.startswith("epoch=") and not p.name.endswith("_final.ckpt"))
    checkpoint = torch.load(best, weights_only=True)  # loads safely: plain hyper-parameters
    assert checkpoint[MODEL_CLASS_KEY].endswith("UnifiedCoreReadout")
    test_name = "random_noise_0" if config_name.startswith("hdf5") else "test"
    with open(run / "evaluation" / f"{test_name}_per_neuron.csv") as file:
        rows = list(csv.DictReader(file))
    assert rows and {"session", "neuron_relative_idx", "corr_to_average", "feve", "jackknife", "corr_0"} <= set(rows[0])
    summary = json.loads((run / "evaluation" / f"{test_name}_summary.json").read_text())
    assert summary["n_neurons_total"] == len(rows) and "fev_mean" in summary


def test_eval_cli_on_a_trained_checkpoint(tmp_path: Path) -> None:
    overrides = [f"paths.log_dir={tmp_path / 'train'}", *ONE_STEP, *TINY_DATA, *TINY_CORE]
    assert train_cli.main(overrides) == 0
    (run,) = run_dirs(tmp_path / "train", "synthetic_core_readout")
    best = next(p for p in (run / "checkpoints").glob("epoch=*.ckpt") if not p.stem.endswith("_final"))
    results = tmp_path / "table.csv"
    eval_overrides = [
        f"paths.log_dir={tmp_path / 'eval'}",
        *TINY_DATA,
        f"evaluation.model_path={best}",
        f"evaluation.model_results_path={results}",
        "evaluation.var_ratio_cutoff=0.0",
    ]
    assert eval_cli.main(eval_overrides) == 0
    with open(results) as file:
        evaluated = list(csv.DictReader(file))
    with open(run / "evaluation" / "test_per_neuron.csv") as file:
        trained = list(csv.DictReader(file))
    # The same checkpoint and data give the same per-neuron scores in train's and eval's tables.
    assert [float(r["corr_to_average"]) for r in evaluated] == pytest.approx(
        [float(r["corr_to_average"]) for r in trained], abs=1e-6
    )
    (eval_run,) = run_dirs(tmp_path / "eval", "synthetic_core_readout")
    assert json.loads((eval_run / "evaluation" / "test_summary.json").read_text())["model_path"] == str(best)


def test_eval_without_model_path_fails_with_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert eval_cli.main([f"paths.log_dir={tmp_path}", *TINY_DATA]) == 1
    assert "evaluation.model_path" in capsys.readouterr().err


def test_multirun_sweep_runs_one_job_per_value(tmp_path: Path) -> None:
    overrides = [f"paths.log_dir={tmp_path}", *ONE_STEP, *TINY_DATA, *TINY_CORE]
    assert train_cli.main(["-m", "model.learning_rate=0.01,0.001", *overrides]) == 0
    (sweep,) = sorted((tmp_path / "openretina_assets" / "multiruns" / "synthetic_core_readout").iterdir())
    learning_rates = sorted(OmegaConf.load(sweep / job / ".hydra" / "config.yaml").model.learning_rate for job in "01")
    assert learning_rates == [0.001, 0.01]


def test_missing_config_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train_cli.main(["--config-path", str(tmp_path / "nowhere")])


def test_logger_without_its_package_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a)
    )
    cfg = OmegaConf.create({"wandb": {"_target_": "lightning.pytorch.loggers.WandbLogger", "project": "p"}})
    with pytest.raises(MissingLoggerDependencyError, match=r"pip install 'openretina\[wandb\]'"):
        build_loggers(cfg)


def test_len_resolver_is_registered_by_the_package() -> None:
    import openretina.training  # noqa: F401

    assert OmegaConf.create({"a": [1, 2, 3], "n": "${len:${a}}"}).n == 3
