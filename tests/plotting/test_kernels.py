"""Rank-1 kernel decomposition and spectra against constructed signals."""

from __future__ import annotations

import numpy as np
import pytest

from openretina.errors import DataShapeError
from openretina.utils.video_analysis import (
    butter_lowpass_filter,
    calculate_fft,
    decompose_kernel,
    weighted_main_frequency,
)


def test_decompose_recovers_a_rank_one_kernel_with_positive_centre() -> None:
    temporal = np.sin(np.linspace(0, 3, 20))
    spatial = np.zeros((9, 8))
    spatial[3:6, 3:6] = -2.0  # an OFF centre: the decomposition flips it positive and the trace negative
    spatial[0, 0] = 1.0
    found_temporal, found_spatial, second = decompose_kernel(np.einsum("t,hw->thw", temporal, spatial), 1.0)
    np.testing.assert_allclose(found_spatial, -spatial / 2.0, atol=1e-12)
    np.testing.assert_allclose(found_temporal, -2.0 * temporal, atol=1e-12)
    assert second == pytest.approx(0.0, abs=1e-9)
    scaled, _, _ = decompose_kernel(np.einsum("t,hw->thw", temporal, spatial), 3.0)
    np.testing.assert_allclose(scaled, 3 * found_temporal)


def test_decompose_works_on_tiny_images_and_single_frames() -> None:
    kernel = np.arange(1.0, 5.0).reshape(1, 2, 2)
    temporal, spatial, second = decompose_kernel(kernel)
    np.testing.assert_allclose(np.outer(temporal, spatial.ravel()).reshape(kernel.shape), kernel)
    assert second == 0.0
    with pytest.raises(DataShapeError, match="time, height, width"):
        decompose_kernel(np.ones((2, 3)))


def test_fft_finds_the_frequency_of_a_sine_and_short_traces_work() -> None:
    rate = 30.0
    trace = np.sin(2 * np.pi * 3.0 * np.arange(60) / rate)
    freqs, magnitude = calculate_fft(trace, rate, lowpass_cutoff=10.0)
    assert len(freqs) == 30 and freqs[np.argmax(magnitude)] == pytest.approx(3.0)
    short_freqs, short_magnitude = calculate_fft(trace[:10], rate, 10.0)  # the reference failed below 19 frames
    assert len(short_freqs) == 5 and np.isfinite(short_magnitude).all()
    np.testing.assert_array_equal(butter_lowpass_filter(trace, 20.0, rate), trace)  # above Nyquist: unchanged
    smoothed = butter_lowpass_filter(trace + np.sin(2 * np.pi * 12.0 * np.arange(60) / rate), 6.0, rate)
    assert np.abs(smoothed - trace)[10:-10].max() < 0.2


def test_weighted_main_frequency_is_the_weighted_mean() -> None:
    assert weighted_main_frequency(np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0])) == pytest.approx(11 / 4)
    assert np.isnan(weighted_main_frequency(np.array([1.0]), np.array([0.0])))
    with pytest.raises(DataShapeError):
        weighted_main_frequency(np.ones(2), np.ones(3))
