"""Tests of the procedural artificial stimuli and the reference-compatible loaders."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from openretina.data_io.artificial_stimuli import (
    REFERENCE_MOVING_BAR_DIRECTIONS,
    StimulusParameterError,
    align_stimulus_to_trigger,
    colored_stimulus,
    discretize_triggers,
    generate_chirp,
    generate_flashes,
    generate_gratings,
    generate_moving_bar,
    generate_white_noise,
    load_chirp,
    load_chirp_30hz_72_64px,
    load_moving_bar,
    load_moving_bar_30hz_72_64px,
    load_moving_bar_stack,
    load_stimulus,
    normalize_stimulus,
    reference_direction_to_screen_angle,
)
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError

# Chirp segment starts at 30 Hz: 2 s dark, 3 s ON, 3 s dark, 2 s grey, 8 s chirp, 2 s grey, 8 s chirp, 2 s grey,
# 3 s dark.
CHIRP_BOUNDARIES = [0, 60, 150, 240, 300, 540, 600, 840, 900, 990]


def _zero_crossing_frequency(trace: np.ndarray, frame_rate: float) -> float:
    """Frequency (Hz) estimated from the number of sign changes of a zero-mean oscillation."""
    crossings = np.count_nonzero(np.diff(np.signbit(trace)))
    return crossings / 2 / (len(trace) / frame_rate)


def _centre_of_mass(frames: np.ndarray) -> np.ndarray:
    """(row, col) intensity centre of mass per frame of ``(T, H, W)`` non-negative frames."""
    rows, cols = np.indices(frames.shape[1:])
    total = frames.sum(axis=(1, 2))
    return np.stack([(frames * rows).sum(axis=(1, 2)) / total, (frames * cols).sum(axis=(1, 2)) / total], axis=1)


# ------------------------------------------------------------------------------------------------ chirp
def test_chirp_segments_start_at_the_right_frames() -> None:
    chirp = generate_chirp()
    assert chirp.shape == (2, 990, 18, 16) and chirp.dtype == torch.float32
    assert torch.equal(chirp[0], chirp[1])
    centre = chirp[0, :, 9, 8].numpy()
    constant = {0: -1.0, 1: 1.0, 2: -1.0, 3: 0.0, 5: 0.0, 7: 0.0, 8: -1.0}
    for segment, value in constant.items():
        start, end = CHIRP_BOUNDARIES[segment], CHIRP_BOUNDARIES[segment + 1]
        np.testing.assert_allclose(centre[start:end], value, atol=1e-6, err_msg=f"segment {segment}")
    # The frame just before each step still has the previous level.
    assert centre[59] == -1.0 and centre[60] == 1.0 and centre[149] == 1.0 and centre[150] == -1.0


def test_frequency_chirp_sweeps_zero_to_eight_hz() -> None:
    frequency_part = generate_chirp(frame_rate=60.0)[0, 600:1080, 9, 8].numpy()  # 8 s at 60 Hz
    np.testing.assert_allclose(frequency_part, np.sin(np.pi * (np.arange(480) / 60.0) ** 2), atol=1e-5)
    # Instantaneous frequency f(t) = t Hz: count oscillations in one-second windows centred on 2, 4 and 6 s.
    for centre_s in (2.0, 4.0, 6.0):
        window = frequency_part[int((centre_s - 0.5) * 60) : int((centre_s + 0.5) * 60)]
        assert _zero_crossing_frequency(window, 60.0) == pytest.approx(centre_s, abs=0.6)


def test_contrast_chirp_ramps_amplitude_at_two_hz() -> None:
    contrast_part = generate_chirp()[0, 600:840, 9, 8].numpy()
    first_second, last_second = contrast_part[:30], contrast_part[-30:]
    assert np.abs(first_second).max() < 0.13 and np.abs(last_second).max() > 0.9
    assert _zero_crossing_frequency(contrast_part[120:], 30.0) == pytest.approx(2.0, abs=0.2)


def test_chirp_spot_is_a_disc_on_a_dark_background() -> None:
    frames = load_chirp(normalize=False)
    assert frames.shape == (990, 18, 16, 2) and frames.dtype == np.float32
    assert frames.min() == 0.0 and frames.max() == 254.0
    # Corner pixel centre is sqrt(375^2 + 425^2) = 567 um from the centre, outside the 500 um radius.
    assert np.all(frames[:, 0, 0] == 0.0)
    assert np.all(frames[60:150, 9, 8] == 254.0)
    np.testing.assert_allclose(load_chirp(normalize=True), normalize_stimulus(frames))
    assert load_chirp_30hz_72_64px().shape == (990, 72, 64, 2)


def test_chirp_repetitions_are_placed_on_every_second_trigger() -> None:
    triggers = [1.0, 6.0, 40.0, 45.0]  # two repetitions, each with triggers at 0 s and 5 s
    aligned = load_chirp(normalize=False, trigger_times=triggers)
    single = load_chirp(normalize=False)
    assert aligned.shape == (1200 + 990, 18, 16, 2)
    assert np.all(aligned[:30] == 0)
    np.testing.assert_array_equal(aligned[30 : 30 + 990], single)
    np.testing.assert_array_equal(aligned[1200:], single)


# ------------------------------------------------------------------------------------------------ moving bar
@pytest.mark.parametrize(("angle", "expected_step"), [(0, (0.0, 1.0)), (90, (-1.0, 0.0)), (225, (0.707, -0.707))])
def test_moving_bar_moves_in_the_stated_screen_direction(angle: float, expected_step: tuple[float, float]) -> None:
    bars = generate_moving_bar(directions=[angle], height=32, width=32)
    assert bars.shape[:3] == (1, 2, 120)
    frames = (bars[0, 0].numpy() + 1) / 2
    visible = frames.sum(axis=(1, 2)) > 0
    centre = _centre_of_mass(frames[visible])
    # Frames where the bar is well inside the screen (its centre within 4 px of the screen centre).
    middle = np.linalg.norm(centre - 15.5, axis=1) < 4
    step = np.diff(centre[middle], axis=0).mean(axis=0)  # (d_row, d_col) per frame
    speed = 1000.0 / 50.0 / 30.0  # um/s / um/px / Hz = px per frame
    np.testing.assert_allclose(step, np.array(expected_step) * speed, atol=0.05)


def test_reference_moving_bar_follows_the_reference_geometry() -> None:
    stack = load_moving_bar_stack(normalize=False)
    assert stack.shape == (8, 123, 18, 16, 2)
    np.testing.assert_array_equal(stack.reshape(984, 18, 16, 2), load_moving_bar(normalize=False))
    # Reference label θ moves along (-sin θ, -cos θ) with y up: 0 down, 90 left, 180 up, 270 right.
    expected = {0: (1, 0), 90: (0, -1), 180: (-1, 0), 270: (0, 1)}
    for block, label in enumerate(REFERENCE_MOVING_BAR_DIRECTIONS):
        if label not in expected:
            continue
        frames = stack[block, :, :, :, 0] / 254.0
        centre = _centre_of_mass(frames[frames.sum(axis=(1, 2)) > 0])
        drift = np.sign(np.round(centre[-1] - centre[0]))
        assert tuple(drift) == expected[label], (label, centre[0], centre[-1])
    assert reference_direction_to_screen_angle(0) == 270.0
    normalised = load_moving_bar()
    assert normalised.min() == -1.0 and normalised.max() == pytest.approx(126 / 128)
    assert load_moving_bar_30hz_72_64px().shape == (984, 72, 64, 2)


def test_moving_bar_stack_rejects_uneven_split() -> None:
    with pytest.raises(DataShapeError, match="not divisible"):
        load_moving_bar_stack(number_of_moving_bars=5)


# ------------------------------------------------------------------------------------------------ gratings
def test_gratings_accept_the_model_stimulus_shape_and_stay_in_range() -> None:
    for frequency in np.linspace(0.5, 10, 5):  # as in the in-silico tuning example
        stimulus = generate_gratings(shape=(1, 2, 30, 18, 16), temporal_frequency=float(frequency))
        assert stimulus.shape == (1, 2, 30, 18, 16) and stimulus.dtype == torch.float32
        assert stimulus.abs().max() <= 1.0
    half = generate_gratings((2, 10, 8, 8), contrast=0.5)
    assert half.shape == (2, 10, 8, 8) and half.abs().max() <= 0.5 + 1e-6


@pytest.mark.parametrize("frequency", [1.0, 3.0, 7.5])
def test_grating_temporal_frequency_is_the_fft_peak(frequency: float) -> None:
    stimulus = generate_gratings((1, 60, 8, 8), temporal_frequency=frequency)  # 2 s -> 0.5 Hz resolution
    trace = stimulus[0, :, 3, 5].numpy()
    spectrum = np.abs(np.fft.rfft(trace))
    assert np.fft.rfftfreq(60, d=1 / 30)[spectrum.argmax()] == pytest.approx(frequency)


@pytest.mark.parametrize(("orientation", "peak"), [(0.0, (0, 2)), (90.0, (2, 0))])
def test_grating_orientation_sets_the_spatial_frequency_axis(orientation: float, peak: tuple[int, int]) -> None:
    frame = generate_gratings((1, 1, 16, 16), spatial_frequency=0.125, orientation=orientation)[0, 0].numpy()
    spectrum = np.abs(np.fft.fft2(frame))
    row, col = np.unravel_index(spectrum[:9, :9].argmax(), (9, 9))
    assert (row, col) == peak


def test_drifting_grating_moves_along_its_orientation_and_counterphase_stands() -> None:
    # 3.75 Hz / 0.125 cycles/px = 30 px/s = 1 px per frame at 30 Hz, rightwards for orientation 0.
    drifting = generate_gratings((1, 5, 8, 16), temporal_frequency=3.75, spatial_frequency=0.125).numpy()[0]
    np.testing.assert_allclose(drifting[1][:, 1:], drifting[0][:, :-1], atol=1e-5)
    standing = generate_gratings((1, 8, 8, 16), temporal_frequency=7.5, drifting=False).numpy()[0]
    np.testing.assert_allclose(standing[1], 0.0, atol=1e-6)  # cos(2π·7.5·1/30) = cos(π/2) = 0
    np.testing.assert_allclose(standing[2], -standing[0], atol=1e-6)


def test_grating_arguments_are_validated() -> None:
    with pytest.raises(StimulusParameterError, match="Nyquist"):
        generate_gratings((1, 10, 4, 4), temporal_frequency=15.0)
    with pytest.raises(ValueError, match="spatial_frequency"):
        generate_gratings((1, 10, 4, 4), spatial_frequency=0.7)
    with pytest.raises(DataShapeError, match=r"\(C, T, H, W\)"):
        generate_gratings((10, 4, 4))


# ------------------------------------------------------------------------------------------------ flashes, noise
def test_flashes_alternate_on_a_grey_background() -> None:
    flashes = generate_flashes(num_flashes=2, flash_duration_s=0.5, interval_s=1.0).numpy()
    assert flashes.shape == (2, 30 + 15 + 30 + 15 + 30, 18, 16)
    trace = flashes[0, :, 4, 4]
    np.testing.assert_array_equal(trace[:30], 0.0)
    np.testing.assert_array_equal(trace[30:45], 1.0)
    np.testing.assert_array_equal(trace[75:90], -1.0)
    chromatic = generate_flashes(num_flashes=1, polarity="on", channel=1).numpy()
    assert chromatic[0].max() == 0.0 and chromatic[1].max() == 1.0
    with pytest.raises(StimulusParameterError, match="channel"):
        generate_flashes(channel=2)


def test_white_noise_is_seeded_and_leaves_the_global_rng_alone() -> None:
    np.random.seed(0)  # noqa: NPY002 -- the global RNG is what this test guards
    first = generate_white_noise((2, 500, 6, 6), seed=3, contrast=0.5)
    after_call = np.random.random()  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    assert after_call == np.random.random()  # noqa: NPY002
    assert torch.equal(first, generate_white_noise((2, 500, 6, 6), seed=3, contrast=0.5))
    assert not torch.equal(first, generate_white_noise((2, 500, 6, 6), seed=4, contrast=0.5))
    assert set(first.unique().tolist()) == {-0.5, 0.5}
    assert abs(first.mean().item()) < 0.02
    gaussian = generate_white_noise((1, 2, 500, 6, 6), seed=1, distribution="gaussian")
    assert gaussian.shape == (1, 2, 500, 6, 6) and gaussian.std().item() == pytest.approx(1.0, abs=0.02)


# ------------------------------------------------------------------------------------------------ reference helpers
def test_normalize_and_discretize_triggers() -> None:
    np.testing.assert_allclose(normalize_stimulus(np.array([0, 128, 255])), [-1.0, 0.0, 127 / 128])
    # Rounding, not truncation: 1.9999 s is frame 60 at 30 Hz (truncation would give 59).
    assert discretize_triggers([0.0, 1.9999, 2.0166], frame_rate=30) == [0, 60, 60]
    with pytest.raises(DataShapeError):
        discretize_triggers(np.zeros((2, 2)))
    with pytest.raises(DataFormatError, match="NaN"):
        discretize_triggers([0.0, float("nan")])


def test_align_stimulus_pads_with_dark_frames_and_cuts_overlaps() -> None:
    stimulus = np.arange(1, 4, dtype=np.float32)[:, None]  # frames 1, 2, 3
    aligned = align_stimulus_to_trigger(stimulus, [2, 7])
    np.testing.assert_array_equal(aligned[:, 0], [0, 0, 1, 2, 3, 0, 0, 1, 2, 3])
    with pytest.warns(UserWarning, match="cut short"):
        overlapped = align_stimulus_to_trigger(stimulus, [0, 2])
    np.testing.assert_array_equal(overlapped[:, 0], [1, 2, 1, 2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        align_stimulus_to_trigger(stimulus, [0, 3])  # back to back: no warning
    with pytest.raises(DataFormatError, match="non-decreasing"):
        align_stimulus_to_trigger(stimulus, [5, 2])


def test_colored_stimulus_steps_one_channel() -> None:
    stimulus = colored_stimulus(1, 10, 18, 16, pad_front=5, pad_end=3, num_color_channels=2)
    assert stimulus.shape == (1, 2, 18, 18, 16) and stimulus.dtype == np.float32
    assert stimulus[0, 0].max() == 0.0
    np.testing.assert_array_equal(stimulus[0, 1, :, 0, 0], [0] * 5 + [1] * 10 + [0] * 3)
    with pytest.raises(StimulusParameterError, match="channel_idx"):
        colored_stimulus(2, 10, 18, 16)


def test_load_stimulus_reads_npy_and_reports_missing_files(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (20, 4, 5, 3)).astype(np.uint8)
    path = tmp_path / "stimulus.npy"
    np.save(path, frames)
    loaded = load_stimulus(
        path, normalize=False, trigger_times=None, num_triggers_per_repetition=1, downsample_t_factor=2
    )
    np.testing.assert_array_equal(loaded, frames[::2, ..., :2].astype(np.float32))
    with pytest.raises(DataFileNotFoundError, match="load_chirp"):
        load_stimulus(tmp_path / "missing.pickle", True, None, 2)
