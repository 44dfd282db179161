"""Batched tuning curves on a toy motion-energy model with known preferences, and on the Höfling fixture."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from openretina.data_io.artificial_stimuli import chirp_intensity, generate_gratings
from openretina.errors import DataFormatError, DataShapeError, InsufficientFramesError
from openretina.insilico.tuning_analyses import (
    chirp_response,
    direction_selectivity_index,
    flash_response,
    grating_tuning,
    moving_bar_tuning,
    preferred_direction,
)
from openretina.modules.layers.convolutions import conv_backend

RATE, LAGS, SIZE = 20.0, 10, 16
PREFERRED_DIRECTIONS = (0.0, 90.0, 180.0, 270.0)
PREFERRED_SF, PREFERRED_TF = 0.125, 4.0


class MotionEnergyModel(nn.Module):
    """(batch, 2, time, 16, 16) -> (batch, time - 9, 4): quadrature-pair grating filters in channel 0 only.

    Neuron k's filters are drifting gratings in direction ``PREFERRED_DIRECTIONS[k]`` at the preferred spatial and
    temporal frequency; its response is the squared quadrature sum (phase invariant), so it peaks for gratings
    that match that direction and those frequencies.
    """

    def __init__(self) -> None:
        super().__init__()
        kernels = []
        for direction in PREFERRED_DIRECTIONS:
            for phase in (0.0, 90.0):
                shape = (1, LAGS, SIZE, SIZE)
                grating = generate_gratings(shape, PREFERRED_TF, PREFERRED_SF, direction, phase=phase, frame_rate=RATE)
                # conv3d correlates kernel index k with input frame j + k: the same drift direction.
                kernels.append(torch.cat([grating, torch.zeros_like(grating)]))
        self.conv = nn.Conv3d(2, 2 * len(PREFERRED_DIRECTIONS), (LAGS, SIZE, SIZE), bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.stack(kernels) / (LAGS * SIZE * SIZE))
        self.data_info = {"input_shape": (2, SIZE, SIZE), "frame_rate_hz": RATE}

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        pairs = self.conv(x).flatten(start_dim=2).reshape(x.shape[0], -1, 2, x.shape[2] - LAGS + 1)
        return (pairs**2).sum(dim=2).transpose(1, 2)

    def stimulus_shape(self, time_steps: int, num_batches: int = 1) -> tuple[int, int, int, int, int]:
        return (num_batches, 2, time_steps, SIZE, SIZE)

    def number_of_cut_frames(self) -> int:
        return LAGS - 1


@pytest.fixture(scope="module")
def energy_model() -> MotionEnergyModel:
    return MotionEnergyModel()


def test_direction_tuning_recovers_preferred_directions(energy_model) -> None:
    directions = np.arange(0, 360, 45.0)
    curve = grating_tuning(
        energy_model,
        "direction",
        directions,
        spatial_frequency=PREFERRED_SF,
        temporal_frequency=PREFERRED_TF,
        batch_size=3,  # batches that do not divide the conditions
    )
    assert curve.responses.shape == (8, 4)
    np.testing.assert_array_equal(curve.preferred_value(), PREFERRED_DIRECTIONS)
    angle_error = preferred_direction(directions, curve.responses) - np.asarray(PREFERRED_DIRECTIONS)
    np.testing.assert_allclose((angle_error + 180.0) % 360.0 - 180.0, 0.0, atol=1.0)
    assert (direction_selectivity_index(directions, curve.responses) > 0.5).all()


def test_frequency_tuning_recovers_preferred_frequencies(energy_model) -> None:
    spatial = grating_tuning(energy_model, "spatial_frequency", [0.0625, 0.125, 0.25], temporal_frequency=PREFERRED_TF)
    assert (spatial.preferred_value()[0] == PREFERRED_SF).all()
    temporal = grating_tuning(energy_model, "temporal_frequency", [1.0, 2.0, 4.0, 8.0], spatial_frequency=PREFERRED_SF)
    assert temporal.preferred_value()[0] == PREFERRED_TF


def test_contrast_and_colour_tuning_follow_the_squared_linear_filter(energy_model) -> None:
    fixed = {"spatial_frequency": PREFERRED_SF, "temporal_frequency": PREFERRED_TF}
    contrast = grating_tuning(energy_model, "contrast", [0.25, 0.5, 1.0], **fixed)
    np.testing.assert_allclose(contrast.responses[:, 0] / contrast.responses[-1, 0], [1 / 16, 1 / 4, 1.0], rtol=1e-4)
    colour = grating_tuning(energy_model, "colour", [[1.0, 0.0], [0.0, 1.0], [0.5, 3.0]], **fixed)
    np.testing.assert_allclose(colour.responses[1], 0.0, atol=1e-9)  # channel 1 is invisible to the model
    np.testing.assert_allclose(colour.responses[2], colour.responses[0] / 4, rtol=1e-4)
    np.testing.assert_array_equal(colour.preferred_value()[0], [1.0, 0.0])


def test_responses_are_the_model_outputs_of_the_rendered_gratings(energy_model) -> None:
    curve = grating_tuning(energy_model, "direction", [30.0], time_steps=15, amplitude=2.0, statistic="max")
    stimulus = 2.0 * generate_gratings((1, 2, 15, SIZE, SIZE), orientation=30.0, frame_rate=RATE)
    with torch.no_grad():
        expected = energy_model(stimulus).amax(dim=1).numpy()
    np.testing.assert_allclose(curve.responses, expected, rtol=1e-5)


def test_bad_tuning_requests_are_explained(energy_model) -> None:
    with pytest.raises(InsufficientFramesError, match="at least 10"):
        grating_tuning(energy_model, "direction", [0.0], time_steps=9)
    with pytest.raises(DataShapeError, match=r"\(conditions, 2\)"):
        grating_tuning(energy_model, "colour", [1.0, 0.0])
    with pytest.raises(ValueError, match="parameter must be one of"):
        grating_tuning(energy_model, "speed", [1.0])  # type: ignore[arg-type]
    model = MotionEnergyModel()
    model.data_info = {"input_shape": (2, SIZE, SIZE)}
    with pytest.raises(DataFormatError, match="frame_rate="):
        grating_tuning(model, "direction", [0.0])


class CurrentFrameMean(nn.Module):
    """Output frame j = spatial mean of input frame j + 3 in channel 0 (a model with 3 cut frames)."""

    data_info: ClassVar[dict[str, object]] = {"input_shape": (2, 18, 16), "frame_rate_hz": 30.0}

    def forward(self, x: torch.Tensor, data_key: str | None = None) -> torch.Tensor:
        return x[:, 0, 3:].mean(dim=(2, 3))[..., None]

    def stimulus_shape(self, time_steps: int, num_batches: int = 1) -> tuple[int, int, int, int, int]:
        return (num_batches, 2, time_steps, 18, 16)

    def number_of_cut_frames(self) -> int:
        return 3


def test_chirp_and_flash_responses_are_aligned_to_the_stimulus() -> None:
    trace = chirp_response(CurrentFrameMean(), spot_diameter_um=1e5)  # spot covers the screen: full field
    assert trace.responses.shape == (990, 1)
    np.testing.assert_allclose(trace.times, np.arange(990) / 30.0)
    expected = (chirp_intensity(trace.times) - 127.0) / 127.0
    np.testing.assert_allclose(trace.responses[:, 0], expected, atol=1e-5)
    flashes = flash_response(CurrentFrameMean(), num_flashes=2, flash_duration_s=0.1, interval_s=0.2, channel=1)
    np.testing.assert_allclose(flashes.responses, 0.0)  # a UV flash is invisible to a channel-0 model
    on_off = flash_response(CurrentFrameMean(), num_flashes=2, flash_duration_s=0.1, interval_s=0.2, amplitude=0.5)
    np.testing.assert_allclose(on_off.responses[:, 0], [0] * 6 + [0.5] * 3 + [0] * 6 + [-0.5] * 3 + [0] * 6)


def test_moving_bar_on_the_hoefling_fixture(hoefling_model) -> None:
    with conv_backend("dense"):  # no gradients: the plain path, no per-shape timing
        curve = moving_bar_tuning(
            hoefling_model, (0, 90, 180, 270), data_key="session_1_synthetic_20240101", frame_rate=30.0
        )
    assert curve.responses.shape == (4, 40)
    assert np.isfinite(curve.responses).all() and (curve.responses >= 0).all()
    dsi = direction_selectivity_index(curve.values, curve.responses)
    assert ((dsi >= 0) & (dsi <= 1)).all()
    assert hoefling_model.training  # the fixture comes out of training; left as it was


@pytest.mark.parametrize(
    ("data_info", "expected"),
    [({"frame_rate_hz": 30}, 30.0), ({"stimulus_rate_hz": "85Hz"}, 85.0), ({"stimulus_rate_hz": " 7.5 hz"}, 7.5)],
)
def test_frame_rate_is_read_from_data_info_numbers_and_texts(data_info: dict, expected: float) -> None:
    from torch import nn

    from openretina.insilico.tuning_analyses import frame_rate_of

    model = nn.Identity()
    model.data_info = data_info  # type: ignore[assignment]
    assert frame_rate_of(model) == expected


def test_unreadable_frame_rate_text_is_an_error_not_a_guess() -> None:
    from torch import nn

    from openretina.errors import DataFormatError
    from openretina.insilico.tuning_analyses import frame_rate_of

    model = nn.Identity()
    model.data_info = {"stimulus_rate_hz": "fast"}  # type: ignore[assignment]
    with pytest.raises(DataFormatError, match="frame rate is unknown"):
        frame_rate_of(model)
