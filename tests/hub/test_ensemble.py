"""Legacy ensemble loader: seeds -> members -> EnsembleModel, safe reading, GIN mirror and cache, Center."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.hub import UnsafeCheckpointError
from openretina.hub.ensemble import (
    DEFAULT_ENSEMBLE_MODEL_PATH,
    LEGACY_MODEL_BUILDERS,
    Center,
    load_ensemble_model_from_remote,
    load_ensemble_retina_model_from_directory,
)
from openretina.modules.layers.ensemble import EnsembleModel
from openretina.utils import download

from .conftest import StaticServer

SESSION = "2_ventral2_20201016"
NEURONS = 4
CONFIG = """model_fn: nnfabrik_euler.models.models.ToyLegacyModel
model_config:
  kernel: !!python/tuple [3, 3]
  hidden: 2
"""


class ToyLegacyModel(nn.Module):
    """Stand-in member: a per-neuron linear map of the mean frame, with Gaussian-mask-like mean parameters.

    Input: (batch, channels, time, height, width). Output: (batch, time, neurons).
    """

    def __init__(self, seed: int, data_info: dict[str, Any], kernel: tuple[int, int], hidden: int) -> None:
        super().__init__()
        assert isinstance(kernel, tuple)  # the YAML tuple tag must survive
        neurons = data_info[SESSION]["output_dimension"]
        self.readout = nn.ModuleDict({SESSION: nn.Module()})
        self.readout[SESSION].mask_mean = nn.Parameter(torch.zeros(neurons, 2))
        self.weights = nn.Parameter(torch.zeros(neurons))
        self.seed = seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 3, 4))[..., None] * self.weights


def _write_member(folder: Path, seed: int, weight: float) -> None:
    tag = f"{seed:05d}"
    (folder / f"config_{tag}.yaml").write_text(CONFIG)
    data_info = {
        SESSION: {
            "input_dimensions": (1, 2, 50, 18, 16),
            "input_channels": 2,
            "output_dimension": NEURONS,
            "mean_response": np.full(NEURONS, 0.5),
            "roi_coords": np.zeros((NEURONS, 2)),
        }
    }
    (folder / f"data_info_{tag}.pkl").write_bytes(pickle.dumps(data_info, protocol=2))
    state = {
        "weights": torch.full((NEURONS,), weight),
        f"readout.{SESSION}.mask_mean": torch.full((NEURONS, 2), weight),
    }
    torch.save(state, folder / f"state_dict_{tag}.pth.tar")


@pytest.fixture
def legacy_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(LEGACY_MODEL_BUILDERS, "ToyLegacyModel", ToyLegacyModel)
    folder = tmp_path / "ensemble"
    folder.mkdir()
    for seed, weight in ((0, 1.0), (1000, 3.0)):
        _write_member(folder, seed, weight)
    return folder


def test_directory_loader_averages_the_seed_members(legacy_folder: Path) -> None:
    data_info, model = load_ensemble_retina_model_from_directory(legacy_folder, device="cpu")
    assert isinstance(model, EnsembleModel) and not model.training
    assert [member.seed for member in model.members] == [0, 1000]
    assert data_info[SESSION]["output_dimension"] == NEURONS
    np.testing.assert_array_equal(data_info[SESSION]["mean_response"], np.full(NEURONS, 0.5))
    x = torch.randn(1, 2, 10, 18, 16)
    expected = x.mean(dim=(1, 3, 4))[..., None] * 2.0  # mean of the members' weights 1 and 3
    torch.testing.assert_close(model(x), expected.expand(1, 10, NEURONS))


def test_center_moves_every_mask_mean(legacy_folder: Path) -> None:
    _, model = load_ensemble_retina_model_from_directory(legacy_folder, "cpu", center_readout=Center([0.25, -0.5]))
    for member in model.members:
        expected = torch.tensor([[0.25, -0.5]]).expand(NEURONS, 2)
        torch.testing.assert_close(member.readout[SESSION].mask_mean.data, expected)
    with pytest.raises(DataFormatError, match="no_such_key"):
        Center(0.0, mean_key="no_such_key")(model)


def test_unknown_builders_and_foreign_repositories_are_refused(legacy_folder: Path, monkeypatch: Any) -> None:
    (legacy_folder / "config_01000.yaml").write_text(CONFIG.replace("nnfabrik_euler", "somebody_else"))
    with pytest.raises(DataFormatError, match="somebody_else"):
        load_ensemble_retina_model_from_directory(legacy_folder, "cpu")
    monkeypatch.delitem(LEGACY_MODEL_BUILDERS, "ToyLegacyModel")
    with pytest.raises(DataFormatError, match="no builder is registered for model type 'ToyLegacyModel'"):
        load_ensemble_retina_model_from_directory(legacy_folder, "cpu")


def test_malicious_data_info_is_refused(legacy_folder: Path) -> None:
    marker = legacy_folder / "pwned"

    class RunsCode:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, (f"touch '{marker}'",)

    (legacy_folder / "data_info_00000.pkl").write_bytes(pickle.dumps({SESSION: RunsCode()}))
    with pytest.raises(UnsafeCheckpointError, match=r"data_info_00000\.pkl"):
        load_ensemble_retina_model_from_directory(legacy_folder, "cpu")
    assert not marker.exists()


def test_empty_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match=r"config_<seed>\.yaml"):
        load_ensemble_retina_model_from_directory(tmp_path, "cpu")


def test_remote_loader_uses_the_gin_mirror_and_then_the_cache(
    legacy_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "gin"
    (served / DEFAULT_ENSEMBLE_MODEL_PATH).parent.mkdir(parents=True)
    legacy_folder.rename(served / DEFAULT_ENSEMBLE_MODEL_PATH)
    server = StaticServer(served)
    monkeypatch.setenv(download.GIN_MIRROR_ENV, server.url)
    monkeypatch.setenv(download.CACHE_DIRECTORY_ENV, str(tmp_path / "cache"))
    try:
        _, model = load_ensemble_model_from_remote(seeds=(0, 1000))
    finally:
        server.stop()
    assert len(server.requests) == 6 and len(model.members) == 2
    cached = tmp_path / "cache" / "gin" / DEFAULT_ENSEMBLE_MODEL_PATH
    assert sorted(p.name for p in cached.iterdir())[:2] == ["config_00000.yaml", "config_01000.yaml"]
    _, again = load_ensemble_model_from_remote(seeds=(0, 1000))  # server stopped: served from the cache
    x = torch.randn(1, 2, 5, 18, 16)
    torch.testing.assert_close(again(x), model(x))


def test_reference_import_path() -> None:
    from openretina.utils import nnfabrik_model_loading

    assert nnfabrik_model_loading.load_ensemble_model_from_remote is load_ensemble_model_from_remote
    assert nnfabrik_model_loading.Center is Center
