"""Tests of the synthetic retina: containers, ground truth, reproducibility and the three acceptance checks
(STA recovers receptive fields, 1/f^a movie spectrum, realistic noise ceiling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openretina.data_io.synthetic import (
    CellType,
    PopulationParameters,
    SyntheticConfigError,
    SyntheticRetinaConfig,
    SyntheticRetinaDataset,
    ln_model_prediction,
    make_cell_population,
    make_synthetic_retina,
    power_law_image,
    rank_one_receptive_field,
    spatial_power_spectrum,
    spike_triggered_average,
)
from openretina.data_io.synthetic.cells import difference_of_gaussians, mosaic_centres, temporal_filter
from openretina.data_io.synthetic.stimuli import DISPLAY_CONTRAST, FULL_CONTRAST, white_noise_movie
from openretina.errors import DataFormatError, DataShapeError, NonFiniteDataError
from openretina.eval.metrics import correlation_numpy
from openretina.eval.oracles import oracle_correlation

# Acceptance thresholds (also quoted in docs/synthetic_retina.md).
STA_MIN_CORRELATION = 0.9
STA_MIN_RATE_HZ = 4.0
SPECTRAL_EXPONENT_RANGE = (1.5, 2.5)
NOISE_CEILING_RANGE = (0.6, 0.9)

SMALL = SyntheticRetinaConfig(
    num_natural_clips=4, num_white_noise_clips=2, num_test_clips=1, num_test_repeats=3, cells_per_session=14
)


@pytest.fixture(scope="module")
def dataset() -> SyntheticRetinaDataset:
    return make_synthetic_retina(seed=0)


# ------------------------------------------------------------------------------------------------ containers
def test_default_dataset_has_reference_containers_and_layouts(dataset: SyntheticRetinaDataset) -> None:
    assert sorted(dataset.movies) == sorted(dataset.responses) == ["session_0", "session_1"]
    for session, responses in dataset.responses.items():
        movies = dataset.movies[session]
        assert movies.train.shape == (2, 15_000, 18, 16)
        assert movies.train.dtype == np.float32
        assert movies.test_dict["test"].shape == (2, 450, 18, 16)
        assert movies.train.shape[1] % dataset.config.clip_length == 0
        assert responses.train.shape == (50, 15_000)
        trials = responses.test_by_trial_dict["test"]
        assert trials.shape == (10, 50, 450)
        np.testing.assert_allclose(responses.test_dict["test"], trials.mean(axis=0), rtol=1e-6)
        responses.check_matching_stimulus(movies)
        # Poisson noise: non-negative whole spike counts.
        assert np.all(responses.train >= 0) and np.array_equal(responses.train, np.round(responses.train))
        kwargs = responses.session_kwargs
        assert kwargs["group_assignment"].min() == 1 and kwargs["group_assignment"].max() == 7
        assert len(kwargs["cell_type_names"]) == 50 and kwargs["roi_coords"].shape == (50, 2)


def test_movies_are_z_scored_with_recorded_statistics(dataset: SyntheticRetinaDataset) -> None:
    movies = dataset.movies["session_0"]
    train = movies.train.astype(np.float64)
    assert abs(train.mean()) < 1e-4
    assert train.std(ddof=1) == pytest.approx(1.0, abs=1e-4)
    # Undoing the normalisation gives display intensities in 0..255.
    display = train * movies.norm_std + movies.norm_mean
    assert display.min() >= -1e-3 and display.max() <= 255 + 1e-3
    # The white-noise part is binary at full contrast (0 and 254 on the display).
    noise = display[:, dataset.train_segments["white_noise"]]
    np.testing.assert_allclose(np.unique(np.round(noise)), [0.0, 254.0])


def test_ground_truth_matches_responses(dataset: SyntheticRetinaDataset) -> None:
    truth = dataset.ground_truth["session_0"]
    movies = dataset.movies["session_0"]
    assert truth.spatial_rfs.shape == (50, 2, 18, 16)
    assert truth.temporal_filters.shape == (50, 20)
    np.testing.assert_allclose(truth.population.rates(movies.test_dict["test"]), truth.test_rates["test"], rtol=1e-5)
    # Spike counts average to the rates: compare trial means with the rates over all cells and frames.
    responses = dataset.responses["session_0"]
    assert responses.test_dict["test"].mean() == pytest.approx(truth.test_rates["test"].mean(), rel=0.05)
    natural = truth.train_rates[:, dataset.train_segments["natural"]]
    mean_rate_hz = natural.mean(axis=1) * dataset.config.frame_rate
    assert np.all((mean_rate_hz > 5) & (mean_rate_hz < 30))
    assert natural.max() * dataset.config.frame_rate <= 250.0 + 1e-3
    # Calibration hits each cell type's target rate (up to the per-cell jitter of ~10 %).
    for type_index, cell_type in enumerate(truth.population.cell_types):
        of_type = truth.cell_type_ids == type_index
        assert mean_rate_hz[of_type].mean() == pytest.approx(cell_type.mean_rate_hz, rel=0.15)


def test_cell_types_cover_polarity_kinetics_colour_and_subunits(dataset: SyntheticRetinaDataset) -> None:
    truth = dataset.ground_truth["session_0"]
    types = truth.population.cell_types
    assert {t.polarity for t in types} == {"on", "off"}
    assert {t.kinetics for t in types} == {"transient", "sustained"}
    assert any(t.rectified_subunits for t in types)
    centre_sign = np.array(
        [truth.spatial_rfs[n].sum(axis=0)[round(r), round(c)] for n, (r, c) in enumerate(truth.population.rf_centres)]
    )
    is_on = np.array([types[i].polarity == "on" for i in truth.cell_type_ids])
    assert np.all(centre_sign[is_on] > 0) and np.all(centre_sign[~is_on] < 0)
    # UV-preferring cells weigh the last channel more, green-preferring ones the first.
    weight = np.abs(truth.spatial_rfs).sum(axis=(2, 3))
    uv = [types[i].name == "ON uv-preferring" for i in truth.cell_type_ids]
    green = [types[i].name == "OFF green-preferring" for i in truth.cell_type_ids]
    assert np.all(weight[uv, 1] > 2 * weight[uv, 0]) and np.all(weight[green, 0] > 2 * weight[green, 1])


# ------------------------------------------------------------------------------------------------ reproducibility
def test_same_seed_gives_identical_arrays_and_leaves_global_rngs_alone() -> None:
    np.random.seed(123)  # noqa: NPY002 -- the global RNG is what this test guards
    torch.manual_seed(123)
    first, second = make_synthetic_retina(SMALL, seed=7), make_synthetic_retina(SMALL, seed=7)
    numpy_draw, torch_draw = np.random.random(), torch.rand(1)  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    torch.manual_seed(123)
    assert numpy_draw == np.random.random()  # noqa: NPY002
    assert torch.equal(torch_draw, torch.rand(1))
    np.testing.assert_array_equal(first.movies["session_0"].train, second.movies["session_0"].train)
    for session in first.responses:
        np.testing.assert_array_equal(first.responses[session].train, second.responses[session].train)
        np.testing.assert_array_equal(
            first.responses[session].test_by_trial_dict["test"], second.responses[session].test_by_trial_dict["test"]
        )
        np.testing.assert_array_equal(first.ground_truth[session].spatial_rfs, second.ground_truth[session].spatial_rfs)
    other = make_synthetic_retina(SMALL, seed=8)
    assert not np.array_equal(first.responses["session_0"].train, other.responses["session_0"].train)


def test_sessions_have_their_own_cells_but_share_the_stimulus() -> None:
    data = make_synthetic_retina(SMALL, seed=1)
    assert data.movies["session_0"] is data.movies["session_1"]
    assert not np.allclose(data.ground_truth["session_0"].spatial_rfs, data.ground_truth["session_1"].spatial_rfs)


# ------------------------------------------------------------------------------------------------ acceptance
def test_acceptance_sta_recovers_spatial_receptive_fields() -> None:
    """(a) 20 minutes of white noise: the rank-1 STA correlates >= 0.9 with the true spatial RF of every cell
    firing >= 4 Hz during the noise (most default cells fire more)."""
    config = SyntheticRetinaConfig(num_natural_clips=20, num_white_noise_clips=240, num_sessions=1)
    data = make_synthetic_retina(config, seed=3)
    noise = data.train_segments["white_noise"]
    stimulus = data.movies["session_0"].train[:, noise]
    spikes = data.responses["session_0"].train[:, noise]
    spatial, _ = rank_one_receptive_field(spike_triggered_average(stimulus, spikes, num_lags=8))
    truth = data.ground_truth["session_0"].spatial_rfs
    correlation = correlation_numpy(spatial.reshape(len(spatial), -1), truth.reshape(len(truth), -1))
    rate_hz = spikes.mean(axis=1) * config.frame_rate
    active = rate_hz >= STA_MIN_RATE_HZ
    assert active.mean() >= 0.8
    assert correlation[active].min() >= STA_MIN_CORRELATION, np.round(correlation, 3)


def test_acceptance_naturalistic_movie_has_power_law_spectrum(dataset: SyntheticRetinaDataset) -> None:
    """(b) the spatial power spectrum of the naturalistic movie falls as 1/f^a with a in [1.5, 2.5]."""
    natural = dataset.movies["session_0"].train[:, dataset.train_segments["natural"]]
    frequencies, power = spatial_power_spectrum(natural)
    fitted = (frequencies >= 0.05) & (frequencies <= 0.45)
    exponent = -np.polyfit(np.log(frequencies[fitted]), np.log(power[fitted]), 1)[0]
    assert SPECTRAL_EXPONENT_RANGE[0] <= exponent <= SPECTRAL_EXPONENT_RANGE[1], exponent


def test_spectrum_estimate_distinguishes_exponents() -> None:
    """The spectral fit is sensitive: a 1/f image (a = 1) lands well outside the natural range."""
    rng = np.random.default_rng(0)
    image = power_law_image(1, 128, 128, exponent=1.0, channel_correlation=1.0, rng=rng)
    frequencies, power = spatial_power_spectrum(image[:, None])
    fitted = (frequencies >= 0.05) & (frequencies <= 0.45)
    exponent = -np.polyfit(np.log(frequencies[fitted]), np.log(power[fitted]), 1)[0]
    assert exponent == pytest.approx(1.0, abs=0.2)


def test_acceptance_noise_ceiling_is_realistic(dataset: SyntheticRetinaDataset) -> None:
    """(c) mean jackknife oracle correlation over cells lies in [0.6, 0.9] in every session."""
    for responses in dataset.responses.values():
        oracle = oracle_correlation(responses.test_by_trial_dict["test"])
        assert NOISE_CEILING_RANGE[0] <= oracle.mean() <= NOISE_CEILING_RANGE[1], oracle.mean()


def test_subunit_cells_are_poorly_fit_by_an_ln_model(dataset: SyntheticRetinaDataset) -> None:
    """An STA-based LN model fitted on white noise predicts the naturalistic test movie clearly worse for the
    rectified-subunit type than for any linear type."""
    truth = dataset.ground_truth["session_0"]
    movies = dataset.movies["session_0"]
    rng = np.random.default_rng(11)
    assert movies.norm_std is not None
    amplitude = FULL_CONTRAST * DISPLAY_CONTRAST / movies.norm_std  # full-contrast noise in model units
    noise = white_noise_movie(20_000, 2, 18, 16, rng, amplitude=amplitude)
    spikes = truth.population.sample(truth.population.rates(noise), rng)
    prediction = ln_model_prediction(noise, spikes, movies.test_dict["test"], num_lags=12)
    correlation = correlation_numpy(prediction, truth.test_rates["test"])
    per_type = {
        cell_type.name: correlation[truth.cell_type_ids == index].mean()
        for index, cell_type in enumerate(truth.population.cell_types)
    }
    nonlinear = [t.name for t in truth.population.cell_types if t.rectified_subunits]
    linear = [t.name for t in truth.population.cell_types if not t.rectified_subunits]
    assert min(per_type[name] for name in linear) >= 0.85, per_type
    assert max(per_type[name] for name in nonlinear) <= min(per_type[name] for name in linear) - 0.15, per_type


# ------------------------------------------------------------------------------------------------ analysis
def test_oracle_correlation_matches_explicit_leave_one_out(rng: np.random.Generator) -> None:
    trials = rng.poisson(2.0, size=(4, 3, 25)).astype(float)
    expected = []
    for neuron in range(3):
        data, others = [], []
        for trial in range(4):
            data.append(trials[trial, neuron])
            others.append(np.delete(trials[:, neuron], trial, axis=0).mean(axis=0))
        expected.append(np.corrcoef(np.concatenate(data), np.concatenate(others))[0, 1])
    np.testing.assert_allclose(oracle_correlation(trials), expected)
    identical = np.broadcast_to(trials[:1], trials.shape)
    np.testing.assert_allclose(oracle_correlation(identical), 1.0)
    with pytest.raises(DataShapeError, match="at least 2 repeats"):
        oracle_correlation(trials[:1])


def test_sta_finds_a_known_pixel_and_lag(rng: np.random.Generator) -> None:
    stimulus = rng.standard_normal((2, 4000, 5, 6)).astype(np.float32)
    responses = np.zeros((1, 4000))
    responses[0, 3:] = np.maximum(stimulus[1, :-3, 2, 4], 0)  # responds to channel 1, pixel (2, 4), 3 frames ago
    sta = spike_triggered_average(stimulus, responses, num_lags=6)
    assert sta.shape == (1, 2, 6, 5, 6)
    assert np.unravel_index(np.abs(sta[0]).argmax(), sta[0].shape) == (1, 3, 2, 4)
    spatial, temporal = rank_one_receptive_field(sta)
    assert temporal[0].argmax() == 3 and spatial[0, 1, 2, 4] > 0


# ------------------------------------------------------------------------------------------------ building blocks
def test_temporal_filters_are_causal_biphasic_and_normalised() -> None:
    transient = temporal_filter("transient", 20, 30.0)
    sustained = temporal_filter("sustained", 20, 30.0)
    for kernel in (transient, sustained):
        assert np.linalg.norm(kernel) == pytest.approx(1.0)
        assert kernel.argmax() <= 3 and kernel.min() < 0  # fast positive lobe first, then a negative one
        assert kernel.argmin() > kernel.argmax()
    # Transient = band-pass (small net integral), sustained = low-pass (large net integral).
    assert abs(transient.sum()) < 0.5 * sustained.sum()


def test_difference_of_gaussians_matches_formula() -> None:
    rf = difference_of_gaussians(np.array([[4.0, 5.0]]), np.array([1.5]), np.array([3.0]), np.array([0.5]), 10, 12)
    row, col = 6, 3
    squared = (row - 4.0) ** 2 + (col - 5.0) ** 2
    centre = np.exp(-squared / (2 * 1.5**2)) / (2 * np.pi * 1.5**2)
    surround = np.exp(-squared / (2 * 3.0**2)) / (2 * np.pi * 3.0**2)
    assert rf[0, row, col] == pytest.approx(centre - 0.5 * surround)


def test_mosaic_tiles_the_field(rng: np.random.Generator) -> None:
    centres = mosaic_centres(12, 18, 16, jitter=0.1, rng=rng)
    assert centres.shape == (12, 2)
    assert np.all(centres >= 0) and np.all(centres[:, 0] <= 17) and np.all(centres[:, 1] <= 15)
    # Tiling: every quadrant of the field holds at least one cell.
    quadrants = {(r >= 9, c >= 8) for r, c in centres}
    assert len(quadrants) == 4


def test_population_accepts_any_stimulus_and_validates_it(dataset: SyntheticRetinaDataset) -> None:
    population = dataset.ground_truth["session_0"].population
    rates = population.rates(np.zeros((2, 40, 18, 16), dtype=np.float32))
    assert rates.shape == (50, 40) and np.all(rates >= 0)
    # A constant stimulus gives a constant rate after the filters have filled up.
    np.testing.assert_allclose(rates[:, -1], rates[:, -5], rtol=1e-5)
    with pytest.raises(DataShapeError, match="C=2, T, H=18, W=16"):
        population.rates(np.zeros((2, 40, 16, 18), dtype=np.float32))
    bad = np.zeros((2, 40, 18, 16), dtype=np.float32)
    bad[0, 3, 2, 2] = np.nan
    with pytest.raises(NonFiniteDataError):
        population.rates(bad)


def test_calcium_noise_model_smooths_spikes(rng: np.random.Generator) -> None:
    stimulus = white_noise_movie(600, 1, 8, 8, rng)
    cell_types = (CellType("ON sustained", "on", "sustained"),)
    population = make_cell_population(
        cell_types, 4, stimulus, rng, parameters=PopulationParameters(noise_model="calcium", calcium_noise_std=0.0)
    )
    rates = population.rates(stimulus)
    trace = population.sample(rates, np.random.default_rng(1))
    spikes = np.random.default_rng(1).poisson(rates)
    kernel = np.exp(-np.arange(60) / (0.4 * 30.0))
    np.testing.assert_allclose(trace[0], np.convolve(spikes[0], kernel)[:600], atol=1e-3)
    expected = population.expected_response(rates)
    np.testing.assert_allclose(expected[0], np.convolve(rates[0], kernel)[:600], rtol=1e-4, atol=1e-4)


def test_invalid_configuration_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(SyntheticConfigError, match="num_test_repeats must be >= 2"):
        SyntheticRetinaConfig(num_test_repeats=1)
    with pytest.raises(ValueError, match="preferred_channel 3 does not exist"):
        SyntheticRetinaConfig(cell_types=(CellType("x", "on", "sustained", preferred_channel=3),))
    with pytest.raises(SyntheticConfigError, match="noise_model"):
        SyntheticRetinaConfig(population=PopulationParameters(noise_model="gaussian"))  # type: ignore[arg-type]


def test_channel_count_and_size_are_configurable() -> None:
    config = SyntheticRetinaConfig(
        num_channels=3, height=10, width=12, num_natural_clips=3, num_white_noise_clips=1, cells_per_session=9
    )
    data = make_synthetic_retina(config, seed=0)
    assert data.movies["session_0"].train.shape == (3, 600, 10, 12)
    assert data.ground_truth["session_0"].spatial_rfs.shape == (9, 3, 10, 12)
    assert "ON channel_2-preferring" in data.ground_truth["session_0"].cell_type_names


def test_sample_rejects_invalid_rates(dataset: SyntheticRetinaDataset) -> None:
    population = dataset.ground_truth["session_0"].population
    rng = np.random.default_rng(0)
    with pytest.raises(DataFormatError, match=">= 0"):
        population.sample(np.full((50, 3), -0.1), rng)
    with pytest.raises(NonFiniteDataError):
        population.sample(np.full((50, 3), np.inf), rng)
