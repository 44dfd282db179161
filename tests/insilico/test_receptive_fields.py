"""Linearised receptive fields (gradient and white-noise STA) and their display maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from openretina.errors import DataShapeError, InsufficientFramesError
from openretina.insilico.receptive_fields import (
    linearised_receptive_fields,
    spatial_profile_correlation,
    spatial_receptive_fields,
    visualize_receptive_fields,
)
from openretina.modules.layers.convolutions import conv_backend

LAGS, HEIGHT, WIDTH, CHANNELS, NEURONS = 4, 6, 5, 2, 3


class LinearModel(nn.Module):
    """(batch, 2, time, 6, 5) -> (batch, time - 3, 3): one full-frame space-time kernel per neuron, no bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(CHANNELS, NEURONS, kernel_size=(LAGS, HEIGHT, WIDTH), bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=torch.Generator().manual_seed(1)))

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        return self.conv(x).flatten(start_dim=2).transpose(1, 2)

    def stimulus_shape(self, time_steps: int, num_batches: int = 1) -> tuple[int, int, int, int, int]:
        return (num_batches, CHANNELS, time_steps, HEIGHT, WIDTH)

    def number_of_cut_frames(self) -> int:
        return LAGS - 1


def expected_fields(model: LinearModel) -> np.ndarray:
    # conv3d correlates: output frame j weights input frame j + k by kernel index k, so the most recent frame
    # (lag 0) has kernel index LAGS - 1.
    return model.conv.weight.detach().flip(2).numpy()


def test_gradient_fields_equal_the_linear_kernels_in_any_batch_size() -> None:
    model = LinearModel().train()
    for batch_size in (1, 2, 64):
        fields = linearised_receptive_fields(model, None, batch_size=batch_size)
        assert fields.shape == (NEURONS, CHANNELS, LAGS, HEIGHT, WIDTH)
        np.testing.assert_allclose(fields, expected_fields(model), atol=1e-6)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_sta_fields_estimate_the_linear_kernels() -> None:
    model = LinearModel()
    fields = linearised_receptive_fields(model, None, method="sta", num_noise_stimuli=200, noise_frames=40, seed=3)
    assert fields.shape == (NEURONS, CHANNELS, LAGS, HEIGHT, WIDTH)
    correlation = spatial_profile_correlation(fields, expected_fields(model))
    assert (correlation > 0.95).all(), correlation
    # Divided by the noise variance, the STA has the kernel's scale, not contrast² times it.
    low = linearised_receptive_fields(model, None, method="sta", num_noise_stimuli=200, noise_contrast=0.5, seed=3)
    np.testing.assert_allclose(np.linalg.norm(low), np.linalg.norm(expected_fields(model)), rtol=0.1)


def test_sta_of_a_rectified_cell_sees_what_the_gradient_at_zero_misses() -> None:
    class Rectified(LinearModel):
        def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
            return torch.relu(super().forward(x) - 1.0)  # silent at the blank stimulus

    model = Rectified()
    assert np.abs(linearised_receptive_fields(model, None)).max() == 0.0
    sta = linearised_receptive_fields(model, None, method="sta", num_noise_stimuli=200, seed=0)
    assert (spatial_profile_correlation(sta, expected_fields(model)) > 0.8).all()


def test_too_few_lags_is_a_clear_error() -> None:
    with pytest.raises(InsufficientFramesError, match="at least 4"):
        linearised_receptive_fields(LinearModel(), None, time_steps=3)
    with pytest.raises(ValueError, match="method"):
        linearised_receptive_fields(LinearModel(), None, method="spikes")  # type: ignore[arg-type]


def test_spatial_profile_is_the_peak_frame_with_its_sign() -> None:
    fields = np.zeros((2, 2, 3, 4, 4), dtype=np.float32)
    fields[0, 1, 2, 1, 1] = -5.0  # OFF peak in channel 1, lag 2
    fields[0, 0, 0, 0, 0] = 1.0
    fields[1, 0, 1] = 0.5
    maps = spatial_receptive_fields(fields)
    np.testing.assert_array_equal(maps[0], fields[0, 1, 2])
    np.testing.assert_array_equal(maps[1], fields[1, 0, 1])
    with pytest.raises(DataShapeError, match="neurons, channels, lags"):
        spatial_receptive_fields(fields[0])


def test_visualize_resamples_and_normalises() -> None:
    model = LinearModel()
    native = visualize_receptive_fields(model, resolution=None, normalize=False)
    peak = spatial_receptive_fields(expected_fields(model))
    np.testing.assert_allclose(native, peak, atol=1e-6)
    maps = visualize_receptive_fields(model, resolution=(12, 10))
    assert maps.shape == (NEURONS, 12, 10) and maps.dtype == np.float32
    # Bilinear 2x upsampling keeps the pixel pattern: downsampling back by averaging 2x2 blocks is close.
    np.testing.assert_allclose(np.abs(maps).max(axis=(1, 2)), 1.0, atol=0.05)
    coarse = maps.reshape(NEURONS, 6, 2, 5, 2).mean(axis=(2, 4))
    scaled = peak / np.abs(peak).max(axis=(1, 2), keepdims=True)
    assert (spatial_profile_correlation(coarse, scaled) > 0.9).all()


def test_seed_page_call_on_the_hoefling_fixture(hoefling_model) -> None:
    # A fixed convolution path skips the per-shape timing of "auto", which dominates on small CPUs.
    with conv_backend("spatial_first"):
        check_hoefling_maps(hoefling_model)


def check_hoefling_maps(hoefling_model) -> None:
    with pytest.warns(UserWarning, match="concatenat"):
        maps = visualize_receptive_fields(hoefling_model, resolution=(64, 64))
    assert maps.shape == (96, 64, 64)
    assert np.isfinite(maps).all()
    np.testing.assert_allclose(np.abs(maps).max(axis=(1, 2)), 1.0, atol=0.05)
    # The per-session maps are the first 40 of the concatenated ones (sorted session order).
    session = visualize_receptive_fields(hoefling_model, (64, 64), data_key="session_1_synthetic_20240101")
    np.testing.assert_allclose(session, maps[:40], atol=1e-5)
