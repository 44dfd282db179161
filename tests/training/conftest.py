"""Fixtures for config/CLI tests: tiny data and models so a run takes seconds on 2 CPU cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openretina.modules.layers.convolutions import conv_backend

# Tiny synthetic retina, dataloaders and core-readout model (overrides in the reference's syntax).
TINY_DATA = [
    "data_io.retina.height=10",
    "data_io.retina.width=8",
    "data_io.retina.clip_length=40",
    "data_io.retina.num_natural_clips=5",
    "data_io.retina.num_white_noise_clips=1",
    "data_io.retina.num_test_clips=1",
    "data_io.retina.num_test_repeats=3",
    "data_io.retina.cells_per_session=4",
    "dataloader.train_chunk_size=20",
    "dataloader.batch_size=4",
    "dataloader.clip_length=40",
    "dataloader.num_val_clips=1",
]
TINY_CORE = [
    "model.hidden_channels=[4,4]",
    "model.core.temporal_kernel_sizes=[3,3]",
    "model.core.spatial_kernel_sizes=[3,3]",
    "model.core.hidden_padding=[0,1,1]",
]
ONE_STEP = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=1",
    "+trainer.limit_val_batches=1",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]


@pytest.fixture(autouse=True)
def _fast_convolutions() -> Iterator[None]:
    """Skip the per-shape convolution autotuning: it costs more than these whole tiny runs."""
    with conv_backend("spatial_first"):
        yield
