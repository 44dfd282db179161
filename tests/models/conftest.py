"""Fixtures for the model tests: the project's copy of the reference core-readout fixture and tiny batches."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference_fixture"

# A two-layer core small enough for many quick tests (temporal kernels 5 and 3: consumes 6 frames).
TINY_SIMPLE_CORE: dict[str, Any] = {
    "_target_": "openretina.modules.core.base_core.SimpleCoreWrapper",
    "temporal_kernel_sizes": [5, 3],
    "spatial_kernel_sizes": [3, 3],
    "gamma_input": 0.1,
    "gamma_hidden": 0.1,
    "gamma_in_sparse": 0.1,
    "gamma_temporal": 1.0,
    "input_padding": 0,
    "hidden_padding": [0, 1, 1],
    "cut_first_n_frames": 0,
}


@pytest.fixture(scope="session")
def reference_hparams() -> Callable[[str], dict[str, Any]]:
    """``load(name)``: UnifiedCoreReadout constructor arguments stored in reference checkpoint ``name``."""

    def load(name: str) -> dict[str, Any]:
        hparams = json.loads((FIXTURE_DIR / f"{name}.hparams.json").read_text())
        hparams.pop("__dropped__")
        return hparams

    return load


@pytest.fixture(scope="session")
def reference_state_dict() -> Callable[[str], dict[str, torch.Tensor]]:
    """``load(name)``: the state_dict of reference checkpoint ``name``."""
    return lambda name: load_file(str(FIXTURE_DIR / f"{name}.safetensors"))


@pytest.fixture(scope="session")
def reference_io() -> dict[str, torch.Tensor]:
    """``input`` (3, 2, 60, 18, 16) and the reference outputs ``<checkpoint>__<session>``."""
    return load_file(str(FIXTURE_DIR / "io.safetensors"))
