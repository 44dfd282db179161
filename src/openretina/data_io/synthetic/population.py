"""A population of synthetic ganglion cells that turns any stimulus movie into firing rates and noisy responses.

Every cell is a sum of *units*. A unit is a space-time separable linear filter (spatial map ``(C, H, W)`` times
the cell's temporal filter); linear cells have one unit (their difference-of-Gaussians receptive field), subunit
cells have many small Gaussian subunits whose outputs are half-wave rectified before being pooled. The pooled
drive is standardised with statistics measured once on a calibration movie, then passed through the cell's
output nonlinearity and scaled so that the mean rate on the calibration movie equals the cell's target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch

from openretina.data_io.synthetic.cells import (
    CellType,
    SyntheticConfigError,
    apply_nonlinearity,
    chromatic_weights,
    difference_of_gaussians,
    gaussian_spot,
    mosaic_centres,
    subunit_centres,
    temporal_filter,
)
from openretina.errors import DataFormatError, DataShapeError, NonFiniteDataError

__all__ = ["CellPopulation", "NoiseModel", "PopulationParameters", "make_cell_population"]

NoiseModel = Literal["poisson", "calcium"]

# Output nonlinearity applied to the standardised drive z: rate ∝ f(gain · z + bias). Chosen for sparse but not
# silent responses to naturalistic movies.
_AMPLITUDE_ITERATIONS = 8
_NONLINEARITY_GAIN_BIAS = {"softplus": (3.0, -2.0), "exponential": (1.5, 0.0), "threshold_power": (1.5, -0.3)}


@dataclass(frozen=True)
class PopulationParameters:
    """Knobs of :func:`make_cell_population` beyond the cell types (all have realistic defaults).

    Attributes:
        temporal_filter_length: frames per temporal filter (20 = 0.67 s at 30 Hz).
        surround_sigma_factor: surround Gaussian width relative to the centre's.
        off_channel_weight: weight of the non-preferred channels of colour-preferring cells (preferred = 1).
        mosaic_jitter: std of the receptive-field displacement from the regular mosaic, in grid spacings.
        parameter_jitter: relative std of per-cell jitter of RF sizes, filter time scales and rates.
        subunit_sigma_px: width of one subunit of a nonlinear cell.
        subunit_spacing_px: lattice spacing of the subunits; they cover twice the centre sigma.
        subunit_threshold: rectification threshold of subunits in units of their drive's std.
        noise_model: "poisson" spike counts per frame, or "calcium": spikes convolved with an exponential
            indicator kernel plus Gaussian measurement noise (can be negative, like detrended traces).
        calcium_decay_s: decay time constant of the calcium kernel (peak amplitude 1 per spike).
        calcium_noise_std: std of the additive measurement noise of calcium traces.
    """

    temporal_filter_length: int = 20
    surround_sigma_factor: float = 2.5
    off_channel_weight: float = 0.3
    mosaic_jitter: float = 0.12
    parameter_jitter: float = 0.1
    subunit_sigma_px: float = 0.5
    subunit_spacing_px: float = 1.0
    subunit_threshold: float = 1.0
    noise_model: NoiseModel = "poisson"
    calcium_decay_s: float = 0.4
    calcium_noise_std: float = 0.3

    def validate(self) -> None:
        """Raise :class:`SyntheticConfigError` naming every out-of-range field."""
        problems = []
        if self.temporal_filter_length < 2:
            problems.append(f"temporal_filter_length must be >= 2, got {self.temporal_filter_length}")
        for name in ("surround_sigma_factor", "subunit_sigma_px", "subunit_spacing_px", "calcium_decay_s"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("off_channel_weight", "mosaic_jitter", "parameter_jitter", "calcium_noise_std"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.noise_model not in ("poisson", "calcium"):
            problems.append(f"noise_model must be 'poisson' or 'calcium', got {self.noise_model!r}")
        if problems:
            raise SyntheticConfigError("population parameters: " + "; ".join(problems) + ".")


@dataclass(frozen=True)
class CellPopulation:
    """Synthetic ganglion cells of one session with their ground truth; :meth:`rates` works on any stimulus.

    Stimuli must be in the units the population was calibrated on (the z-scored movies of the synthetic
    dataset: mean 0, std 1 over the training movie). Shapes (N cells, S units, L filter taps):

    Attributes:
        cell_types: the types; ``cell_type_ids`` indexes into it.
        cell_type_ids: ``(N,)`` int type index per cell.
        rf_centres: ``(N, 2)`` receptive-field centres ``(row, col)`` in pixels.
        spatial_rfs: ``(N, C, H, W)`` ground-truth linear spatial receptive fields (sign = polarity; for
            subunit cells the sum of their subunits, which is what a spike-triggered average recovers).
        temporal_filters: ``(N, L)`` causal filters, index 0 = lag 0, first lobe positive.
        unit_filters: ``(S, C, H, W)`` spatial maps of the units; ``unit_cell`` ``(S,)`` owner cell;
            ``unit_weight`` ``(S,)`` pooling weights; ``unit_threshold`` ``(S,)`` rectification thresholds
            (NaN for linear units).
        drive_mean, drive_std: ``(N,)`` statistics of the pooled drive on the calibration movie.
        nl_gain, nl_bias, amplitude: ``(N,)`` unsaturated rate ``u = amplitude · f(nl_gain · z + nl_bias)``.
        max_rate: ``(N,)`` saturation (spikes per frame): rate = ``max_rate · (1 - exp(-u / max_rate))``.
        frame_rate: Hz; rates are expected spike counts per frame.
        noise_model, calcium_decay_s, calcium_noise_std: how :meth:`sample` adds noise.
    """

    cell_types: tuple[CellType, ...]
    cell_type_ids: np.ndarray
    rf_centres: np.ndarray
    spatial_rfs: np.ndarray
    temporal_filters: np.ndarray
    unit_filters: np.ndarray
    unit_cell: np.ndarray
    unit_weight: np.ndarray
    unit_threshold: np.ndarray
    drive_mean: np.ndarray
    drive_std: np.ndarray
    nl_gain: np.ndarray
    nl_bias: np.ndarray
    amplitude: np.ndarray
    max_rate: np.ndarray
    frame_rate: float
    noise_model: NoiseModel = "poisson"
    calcium_decay_s: float = 0.4
    calcium_noise_std: float = 0.3

    @property
    def num_cells(self) -> int:
        """Number of cells N."""
        return len(self.cell_type_ids)

    @property
    def cell_type_names(self) -> list[str]:
        """Type name of every cell, ``N`` entries."""
        return [self.cell_types[index].name for index in self.cell_type_ids]

    def unit_responses(self, stimulus: np.ndarray) -> np.ndarray:
        """Linear unit outputs ``(S, T)`` before rectification. Input: stimulus ``(C, T, H, W)``."""
        movie = torch.from_numpy(_check_stimulus(stimulus, self.unit_filters.shape[1:]))
        num_frames = movie.shape[1]
        # Spatial projection as one matrix product (T, C·H·W) @ (C·H·W, S), then a causal depthwise temporal
        # convolution (conv1d cross-correlates, hence the flipped filters and the left padding).
        frames = movie.permute(1, 0, 2, 3).reshape(num_frames, -1)
        projected = frames @ torch.from_numpy(self.unit_filters.reshape(len(self.unit_cell), -1)).T
        filters = torch.from_numpy(self.temporal_filters[self.unit_cell]).flip(-1)[:, None]  # (S, 1, L)
        padded = torch.nn.functional.pad(projected.T[None], (filters.shape[-1] - 1, 0))
        return torch.nn.functional.conv1d(padded, filters, groups=len(self.unit_cell))[0].numpy()

    def pool(self, units: np.ndarray) -> np.ndarray:
        """Rectify subunit outputs and sum units into each cell's generator signal: ``(S, T)`` -> ``(N, T)``."""
        units = units.copy()
        rectified = ~np.isnan(self.unit_threshold)
        units[rectified] = np.maximum(units[rectified] - self.unit_threshold[rectified, None], 0.0)
        pooling = np.zeros((self.num_cells, len(self.unit_cell)), dtype=np.float32)
        pooling[self.unit_cell, np.arange(len(self.unit_cell))] = self.unit_weight
        return pooling @ units

    def drive(self, stimulus: np.ndarray) -> np.ndarray:
        """Pooled generator signal ``(N, T)`` (unstandardised). Input: stimulus ``(C, T, H, W)``."""
        return self.pool(self.unit_responses(stimulus))

    def rates(self, stimulus: np.ndarray) -> np.ndarray:
        """Noise-free expected spike counts per frame ``(N, T)`` float32. Input: stimulus ``(C, T, H, W)``."""
        standardised = (self.drive(stimulus) - self.drive_mean[:, None]) / self.drive_std[:, None]
        return _output_rates(self, standardised)

    def expected_response(self, rates: np.ndarray) -> np.ndarray:
        """Noise-free mean of :meth:`sample` for given rates ``(..., N, T)``: the rates themselves for Poisson
        noise, the rates convolved with the calcium kernel for calcium noise."""
        if self.noise_model == "poisson":
            return np.asarray(rates, dtype=np.float32)
        return _causal_filter(np.asarray(rates, dtype=np.float32), self._calcium_kernel(rates.shape[-1]))

    def sample(self, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy responses with the layout of ``rates`` ``(..., N, T)``, float32.

        Poisson: spike counts per frame. Calcium: Poisson spikes convolved with a unit-peak exponential kernel
        (``calcium_decay_s``) plus Gaussian noise (``calcium_noise_std``).
        """
        rates = np.asarray(rates)
        if not np.all(np.isfinite(rates)):
            raise NonFiniteDataError(f"rates passed to sample() contain {int(np.sum(~np.isfinite(rates)))} NaN/inf.")
        if np.any(rates < 0):
            raise DataFormatError(
                f"rates passed to sample() must be >= 0 (expected spikes per frame), minimum is {rates.min()}."
            )
        spikes = rng.poisson(rates).astype(np.float32)
        if self.noise_model == "poisson":
            return spikes
        trace = _causal_filter(spikes, self._calcium_kernel(rates.shape[-1]))
        return trace + rng.normal(0.0, self.calcium_noise_std, trace.shape).astype(np.float32)

    def _calcium_kernel(self, num_frames: int) -> np.ndarray:
        """Unit-peak exponential indicator kernel, truncated after 5 decay constants."""
        length = min(num_frames, max(1, int(np.ceil(5 * self.calcium_decay_s * self.frame_rate))))
        return np.exp(-np.arange(length) / (self.calcium_decay_s * self.frame_rate)).astype(np.float32)


def _check_stimulus(stimulus: np.ndarray, spatial_shape: tuple[int, ...] | None) -> np.ndarray:
    """Return the stimulus as float32 ``(C, T, H, W)``, checking ``(C, H, W)`` against ``spatial_shape`` if given."""
    movie = np.asarray(stimulus, dtype=np.float32)
    if movie.ndim != 4:
        raise DataShapeError(f"stimulus must be (C, T, H, W), got {movie.ndim} dimensions {movie.shape}.")
    if spatial_shape is not None and (movie.shape[0], *movie.shape[2:]) != tuple(spatial_shape):
        expected_c, expected_h, expected_w = spatial_shape
        raise DataShapeError(
            f"stimulus has shape {movie.shape}, expected (C={expected_c}, T, H={expected_h}, W={expected_w}) "
            "to match the population's receptive fields."
        )
    if not np.all(np.isfinite(movie)):
        raise NonFiniteDataError(f"stimulus contains {int(np.sum(~np.isfinite(movie)))} NaN/inf values.")
    return movie


def _causal_filter(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Causal convolution along the last axis: ``out[t] = Σ_k kernel[k] · signal[t - k]``."""
    length = signal.shape[-1]
    size = 1 << int(np.ceil(np.log2(length + len(kernel))))
    spectrum = np.fft.rfft(signal, size, axis=-1) * np.fft.rfft(kernel, size)
    return np.fft.irfft(spectrum, size, axis=-1)[..., :length].astype(np.float32)


def _output_rates(population: CellPopulation, standardised: np.ndarray) -> np.ndarray:
    """Apply each cell's nonlinearity to its standardised drive ``(N, T)``; returns spikes per frame."""
    rates = np.empty_like(standardised, dtype=np.float32)
    kinds = np.array([population.cell_types[index].nonlinearity for index in population.cell_type_ids])
    for kind in np.unique(kinds):
        cells = kinds == kind
        shaped = population.nl_gain[cells, None] * standardised[cells] + population.nl_bias[cells, None]
        rates[cells] = population.amplitude[cells, None] * apply_nonlinearity(str(kind), shaped)
    # Soft saturation: linear for small rates, never above max_rate (refractoriness).
    return population.max_rate[:, None] * -np.expm1(-rates / population.max_rate[:, None])


def _cells_per_type(cell_types: tuple[CellType, ...], num_cells: int) -> np.ndarray:
    """Split ``num_cells`` over the types in proportion to their abundance (largest remainders)."""
    share = np.array([cell_type.abundance for cell_type in cell_types], dtype=np.float64)
    exact = share / share.sum() * num_cells
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: num_cells - counts.sum()]] += 1
    return counts


def make_cell_population(
    cell_types: tuple[CellType, ...],
    num_cells: int,
    calibration_stimulus: np.ndarray,
    rng: np.random.Generator,
    frame_rate: float = 30.0,
    parameters: PopulationParameters | None = None,
) -> CellPopulation:
    """Draw a population of ``num_cells`` cells (mosaic per type) and calibrate it on a stimulus.

    Input: ``calibration_stimulus (C, T, H, W)`` in model units (z-scored); its channel count and size fix the
    population's. Each cell's mean rate on this movie equals its type's ``mean_rate_hz`` (± jitter).
    """
    parameters = parameters or PopulationParameters()
    parameters.validate()
    if num_cells < 1:
        raise SyntheticConfigError(f"num_cells must be >= 1, got {num_cells}.")
    if not cell_types:
        raise SyntheticConfigError("cell_types is empty; pass at least one CellType.")
    calibration = _check_stimulus(calibration_stimulus, None)
    num_channels, _, height, width = calibration.shape
    for cell_type in cell_types:
        cell_type.validate(num_channels)
    jitter = parameters.parameter_jitter

    def jittered(value: float, size: int) -> np.ndarray:
        return value * np.exp(rng.normal(0.0, jitter, size))

    type_ids: list[int] = []
    centres: list[np.ndarray] = []
    rfs: list[np.ndarray] = []
    filters: list[np.ndarray] = []
    target_rates: list[np.ndarray] = []
    max_rates: list[np.ndarray] = []
    unit_maps: list[np.ndarray] = []
    unit_cell: list[int] = []
    unit_weight: list[float] = []
    unit_rectified: list[bool] = []
    for type_index, (cell_type, count) in enumerate(zip(cell_types, _cells_per_type(cell_types, num_cells))):
        if count == 0:
            continue
        first_cell = len(type_ids)
        type_ids += [type_index] * count
        type_centres = mosaic_centres(int(count), height, width, parameters.mosaic_jitter, rng)
        centres.append(type_centres)
        sign = 1.0 if cell_type.polarity == "on" else -1.0
        colour = sign * chromatic_weights(cell_type.preferred_channel, num_channels, parameters.off_channel_weight)
        sigma = jittered(cell_type.centre_sigma_px, count)
        filters += [
            temporal_filter(cell_type.kinetics, parameters.temporal_filter_length, frame_rate, scale)
            for scale in jittered(1.0, count)
        ]
        target_rates.append(jittered(cell_type.mean_rate_hz, count) / frame_rate)
        max_rates.append(np.full(count, cell_type.max_rate_hz / frame_rate))
        if not cell_type.rectified_subunits:
            dog = difference_of_gaussians(
                type_centres,
                sigma,
                sigma * parameters.surround_sigma_factor,
                np.full(count, cell_type.surround_strength),
                height,
                width,
            )
            maps = colour[None, :, None, None] * dog[:, None]
            rfs.append(maps)
            unit_maps.append(maps)
            unit_cell += list(range(first_cell, first_cell + count))
            unit_weight += [1.0] * count
            unit_rectified += [False] * count
            continue
        for offset, (centre, centre_sigma) in enumerate(zip(type_centres, sigma)):
            positions = subunit_centres(centre, 2 * centre_sigma, parameters.subunit_spacing_px)
            envelope = np.exp(-np.sum((positions - centre) ** 2, axis=1) / (2 * centre_sigma**2))
            weights = envelope / envelope.sum()
            spots = gaussian_spot(positions, np.full(len(positions), parameters.subunit_sigma_px), height, width)
            maps = colour[None, :, None, None] * spots[:, None]
            rfs.append(np.tensordot(weights, maps, axes=1)[None])
            unit_maps.append(maps)
            unit_cell += [first_cell + offset] * len(positions)
            unit_weight += list(weights)
            unit_rectified += [True] * len(positions)

    draft = CellPopulation(
        cell_types=tuple(cell_types),
        cell_type_ids=np.array(type_ids, dtype=np.int64),
        rf_centres=np.concatenate(centres).astype(np.float32),
        spatial_rfs=np.concatenate(rfs).astype(np.float32),
        temporal_filters=np.stack(filters).astype(np.float32),
        unit_filters=np.concatenate(unit_maps).astype(np.float32),
        unit_cell=np.array(unit_cell, dtype=np.int64),
        unit_weight=np.array(unit_weight, dtype=np.float32),
        unit_threshold=np.full(len(unit_cell), np.nan, dtype=np.float32),
        drive_mean=np.zeros(len(type_ids), dtype=np.float32),
        drive_std=np.ones(len(type_ids), dtype=np.float32),
        nl_gain=np.ones(len(type_ids), dtype=np.float32),
        nl_bias=np.zeros(len(type_ids), dtype=np.float32),
        amplitude=np.ones(len(type_ids), dtype=np.float32),
        max_rate=np.concatenate(max_rates).astype(np.float32),
        frame_rate=frame_rate,
        noise_model=parameters.noise_model,
        calcium_decay_s=parameters.calcium_decay_s,
        calcium_noise_std=parameters.calcium_noise_std,
    )
    return _calibrate(draft, calibration, np.array(unit_rectified), np.concatenate(target_rates), parameters)


def _calibrate(
    draft: CellPopulation,
    stimulus: np.ndarray,
    rectified: np.ndarray,
    target_rates: np.ndarray,
    parameters: PopulationParameters,
) -> CellPopulation:
    """Fix thresholds, drive statistics and rate amplitudes from the responses to ``stimulus``."""
    units = draft.unit_responses(stimulus)
    thresholds = np.where(rectified, parameters.subunit_threshold * units.std(axis=1), np.nan).astype(np.float32)
    with_thresholds = replace(draft, unit_threshold=thresholds)
    drive = with_thresholds.pool(units)
    drive_std = drive.std(axis=1)
    if np.any(drive_std <= 0):
        silent = np.flatnonzero(drive_std <= 0).tolist()
        raise SyntheticConfigError(
            f"cells {silent} get no drive from the calibration stimulus (constant generator signal); "
            "use a longer or higher-contrast calibration movie."
        )
    gains_biases = np.array(
        [_NONLINEARITY_GAIN_BIAS[draft.cell_types[index].nonlinearity] for index in draft.cell_type_ids]
    )
    shaped = replace(
        with_thresholds,
        drive_mean=drive.mean(axis=1).astype(np.float32),
        drive_std=drive_std.astype(np.float32),
        nl_gain=gains_biases[:, 0].astype(np.float32),
        nl_bias=gains_biases[:, 1].astype(np.float32),
    )
    standardised = (drive - shaped.drive_mean[:, None]) / shaped.drive_std[:, None]
    # The saturation makes the mean rate sublinear in the amplitude; a few proportional updates converge.
    for _ in range(_AMPLITUDE_ITERATIONS):
        mean_rates = _output_rates(shaped, standardised).mean(axis=1)
        amplitude = shaped.amplitude * target_rates / np.maximum(mean_rates, 1e-12)
        shaped = replace(shaped, amplitude=amplitude.astype(np.float32))
    return shaped
