"""The Optuna search configs (`configs/hyperparameter_search/`) compose, and a 2-trial sweep runs end to end."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep
from omegaconf import DictConfig, OmegaConf

from openretina.cli import train as train_cli
from openretina.cli.hydra_app import CONFIG_DIR

from .conftest import ONE_STEP, TINY_CORE, TINY_DATA
from .test_train_cli import SEARCH_CONFIGS

SEARCH_DIR = CONFIG_DIR / "hyperparameter_search"
SEARCHES = sorted(path.stem for path in SEARCH_DIR.glob("*.yaml"))
HAS_OPTUNA_SWEEPER = importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None
needs_plugin = pytest.mark.skipif(
    not HAS_OPTUNA_SWEEPER, reason="hydra-optuna-sweeper is not installed (pip install 'openretina[sweeps]')"
)


def compose_config(name: str, overrides: list[str], hydra_config: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides, return_hydra_config=hydra_config)


def search_space(search: str) -> dict[str, str]:
    return dict(OmegaConf.load(SEARCH_DIR / f"{search}.yaml").hydra.sweeper.params)


def first_candidate(key: str, expression: str) -> Any:
    """A value the sampler may propose: the first choice, or the lower end of an interval."""
    sweep = OverridesParser.create().parse_override(f"{key}={expression}").value()
    if isinstance(sweep, ChoiceSweep):
        return sweep.list[0]
    assert isinstance(sweep, IntervalSweep), f"{key}: unsupported sweep {expression!r}"
    return sweep.start


def test_the_shipped_searches() -> None:
    assert SEARCHES == ["goldin_2022_core_readout", "hoefling_2024_core_readout_low_res", "synthetic_core_readout"]


@pytest.mark.parametrize("search", SEARCHES)
def test_search_space_names_existing_keys_with_valid_values(search: str) -> None:
    """Every searched key exists in the top-level config of the same name and accepts a proposed value."""
    base = compose_config(search, [])
    params = search_space(search)
    assert params
    overrides = []
    for key, expression in params.items():
        assert OmegaConf.select(base, key, default="<absent>") != "<absent>", f"{search}: {key} is not in the config"
        candidate = first_candidate(key, expression)
        overrides.append(f"{key}={candidate}")
    proposed = compose_config(search, overrides)
    for override in overrides:
        key, _, value = override.partition("=")
        assert OmegaConf.to_object(OmegaConf.create({"v": OmegaConf.select(proposed, key)}))["v"] == yaml.safe_load(
            value
        ), key


@needs_plugin
@pytest.mark.parametrize("search", SEARCHES)
def test_search_composes_with_the_optuna_sweeper(search: str) -> None:
    cfg = compose_config(search, [f"+hyperparameter_search={search}"], hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == cfg.seed == 42
    assert sweeper.direction == cfg.objective_direction and cfg.objective_target
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert dict(sweeper.params) == search_space(search)


def best_score(job: Path) -> float:
    (checkpoint,) = (job / "checkpoints").glob("epoch=*_val_evaluation_loss=*[0-9].ckpt")
    match = re.search(r"val_evaluation_loss=(-?[0-9.]+)\.ckpt$", checkpoint.name)
    assert match is not None
    return float(match.group(1))


@needs_plugin
def test_two_trial_sweep_reports_the_best_trial(tmp_path: Path) -> None:
    overrides = [
        "+hyperparameter_search=synthetic_core_readout",
        "hydra.sweeper.n_trials=2",
        f"paths.log_dir={tmp_path}",
        *ONE_STEP,
        *TINY_DATA,
        # A command-line value of a searched key would fix it (the sweeper then leaves it out of the search).
        *(override for override in TINY_CORE if not override.startswith("model.hidden_channels=")),
    ]
    assert train_cli.main(overrides) == 0
    (sweep,) = (tmp_path / "openretina_assets" / "multiruns" / "synthetic_core_readout").iterdir()
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0", "1"]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(results.best_params) == set(search_space("synthetic_core_readout"))
    # maximize: the reported best is the better of the two trials' best validation correlations (the checkpoint
    # names round to 3 decimals), and its parameters are that trial's.
    scores = {job: best_score(job) for job in jobs}
    best_job = max(scores, key=scores.__getitem__)
    assert results.best_value == pytest.approx(scores[best_job], abs=1e-3)
    best_config = OmegaConf.load(best_job / ".hydra" / "config.yaml")
    assert best_config.model.core.gamma_input == pytest.approx(results.best_params["model.core.gamma_input"])
    assert best_config.model.learning_rate == pytest.approx(results.best_params["model.learning_rate"])
    assert list(best_config.model.hidden_channels) == yaml.safe_load(results.best_params["model.hidden_channels"])


@needs_plugin
@pytest.mark.parametrize(("config_name", "search"), sorted(SEARCH_CONFIGS.items()))
def test_reference_named_search_configs_equal_experiment_plus_search(config_name: str, search: str) -> None:
    named = compose_config(config_name, [], hydra_config=True)
    composed = compose_config(search, [f"+hyperparameter_search={search}"], hydra_config=True)
    assert OmegaConf.to_container(named.hydra.sweeper) == OmegaConf.to_container(composed.hydra.sweeper)
    named_run = OmegaConf.masked_copy(named, [key for key in named if key != "hydra"])
    composed_run = OmegaConf.masked_copy(composed, [key for key in composed if key != "hydra"])
    assert OmegaConf.to_container(named_run) == OmegaConf.to_container(composed_run)
