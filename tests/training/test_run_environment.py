"""`openretina train` and `openretina eval` prepare the process the same way (cache directory, seed)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from openretina.cli import eval as eval_cli
from openretina.cli import train as train_cli
from openretina.hub import save_pretrained
from openretina.training.checkpoints import load_model_checkpoint
from openretina.training.environment import cache_directory, prepare_run
from openretina.utils.download import CACHE_DIRECTORY_ENV

from .conftest import ONE_STEP, TINY_CORE, TINY_DATA


def test_prepare_run_exports_the_cache_directory_and_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIRECTORY_ENV, "/before")
    monkeypatch.setenv("HOME", "/home/someone")
    cfg = OmegaConf.create({"paths": {"cache_dir": "~/retina_cache"}, "seed": 7})
    prepare_run(cfg)
    assert os.environ[CACHE_DIRECTORY_ENV] == "/home/someone/retina_cache" == str(cache_directory(cfg))
    first = torch.rand(3)
    prepare_run(cfg)
    assert torch.equal(torch.rand(3), first)

    prepare_run(OmegaConf.create({"paths": {"cache_dir": None}}))  # unset: the environment is left alone
    assert os.environ[CACHE_DIRECTORY_ENV] == "/home/someone/retina_cache"


def test_train_and_eval_export_the_configured_cache_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIRECTORY_ENV, str(tmp_path / "not_this_one"))
    train_cache, eval_cache = tmp_path / "train_cache", tmp_path / "eval_cache"
    overrides = [f"paths.log_dir={tmp_path / 'train'}", f"paths.cache_dir={train_cache}", *TINY_DATA, *TINY_CORE]
    assert train_cli.main([*overrides, *ONE_STEP]) == 0
    assert os.environ[CACHE_DIRECTORY_ENV] == str(train_cache)

    (run,) = (tmp_path / "train" / "openretina_assets" / "runs" / "synthetic_core_readout").iterdir()
    best = next(p for p in (run / "checkpoints").glob("epoch=*.ckpt") if not p.stem.endswith("_final"))
    # eval takes what the hub loader takes: here the checkpoint converted to a save_pretrained folder.
    folder = save_pretrained(load_model_checkpoint(best), tmp_path / "pretrained")
    table = tmp_path / "table.csv"
    eval_overrides = [
        f"paths.log_dir={tmp_path / 'eval'}",
        f"paths.cache_dir={eval_cache}",
        *TINY_DATA,
        f"evaluation.model_path={folder}",
        f"evaluation.model_results_path={table}",
    ]
    assert eval_cli.main(eval_overrides) == 0
    assert os.environ[CACHE_DIRECTORY_ENV] == str(eval_cache)
    with open(table) as file:
        evaluated = [float(row["corr_to_average"]) for row in csv.DictReader(file)]
    with open(run / "evaluation" / "test_per_neuron.csv") as file:
        trained = [float(row["corr_to_average"]) for row in csv.DictReader(file)]
    assert evaluated == pytest.approx(trained, abs=1e-6)
