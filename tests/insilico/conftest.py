"""Fixtures for the stimulus-optimisation tests: a tiny model with dropout and the fixture's Höfling model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from openretina.models import UnifiedCoreReadout

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference_fixture"


class TinyModel(nn.Module):
    """(batch, 2, time, 6, 5) -> (batch, time - 3, neurons): linear space-time filters, dropout, softplus.

    The dropout makes train mode visible: in train mode two identical calls differ.
    """

    lag = 3

    def __init__(self, neurons: int = 50) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        # One (channels, height, width, lag + 1) filter per neuron; einsum is far cheaper than a tiny conv3d.
        self.filters = nn.Parameter(torch.randn((neurons, 2, 6, 5, self.lag + 1), generator=generator) * 0.3)
        self.scale = nn.Parameter(torch.ones(()))  # a second parameter, to test mixed requires_grad flags
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        windows = x.unfold(2, self.lag + 1, 1)  # (batch, channels, time - lag, height, width, lag + 1)
        drive = torch.einsum("bcthwk,nchwk->btn", windows, self.filters) * self.scale
        return nn.functional.softplus(self.dropout(drive))

    def stimulus_shape(self, time_steps: int, num_batches: int = 1) -> tuple[int, int, int, int, int]:
        return (num_batches, 2, time_steps, 6, 5)


@pytest.fixture
def tiny_model() -> Iterator[TinyModel]:
    """A fresh TinyModel in train mode (as a model comes out of training), run on one thread.

    Its tensors are so small that waking a second thread costs more than the work, by 10x on a busy machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield TinyModel().train()
    finally:
        torch.set_num_threads(threads)


def load_hoefling_fixture_model(name: str = "trained_final") -> UnifiedCoreReadout:
    """The Höfling low-res core-readout model of the project's reference fixture (2 sessions, 40 + 56 neurons)."""
    hparams = json.loads((FIXTURE_DIR / f"{name}.hparams.json").read_text())
    hparams.pop("__dropped__")
    model = UnifiedCoreReadout(**hparams)
    model.load_state_dict(load_file(str(FIXTURE_DIR / f"{name}.safetensors")), strict=True)
    return model


@pytest.fixture(scope="module")
def hoefling_model() -> UnifiedCoreReadout:
    """The fixture's trained Höfling low-res model (shared within a test module; tests must not modify it)."""
    return load_hoefling_fixture_model()
