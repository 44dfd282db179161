"""The synthetic retina: one seeded call builds stimuli, cell populations, noisy responses and their ground truth.

dataset = make_synthetic_retina(SyntheticRetinaConfig(), seed=0)
dataset.movies["session_0"]      # MoviesTrainTestSplit, train (C, T, H, W), test_dict {"test": (C, T, H, W)}
dataset.responses["session_0"]   # ResponsesTrainTestSplit, train (N, T), test_by_trial_dict {"test": (R, N, T)}
dataset.ground_truth["session_0"].population.rates(any_movie)   # noise-free rates (N, T) for any stimulus
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.synthetic.cells import CellType, SyntheticConfigError, default_cell_types
from openretina.data_io.synthetic.population import CellPopulation, PopulationParameters, make_cell_population
from openretina.data_io.synthetic.stimuli import (
    FULL_CONTRAST,
    saccadic_scene_movie,
    to_display_intensity,
    white_noise_movie,
)

__all__ = ["SessionGroundTruth", "SyntheticRetinaConfig", "SyntheticRetinaDataset", "make_synthetic_retina"]

TEST_NAME = "test"
STIM_ID = "synthetic"


@dataclass(frozen=True)
class SyntheticRetinaConfig:
    """Size and content of a synthetic dataset. Defaults mimic the low-resolution Höfling et al. 2024 data.

    Attributes:
        num_channels, height, width: stimulus size (default 2 colour channels, 18 x 16 pixels).
        frame_rate: Hz (default 30); rates are spikes per frame.
        clip_length: frames per clip (150 = 5 s); every movie is a whole number of clips, one 1/f scene each.
        num_natural_clips: naturalistic training clips (default 80 = 12,000 frames).
        num_white_noise_clips: binary white-noise clips appended after the naturalistic ones (default 20 =
            100 s, enough for coarse receptive fields; mapping them to r >= 0.9 takes ~240 clips = 20 min).
        white_noise_contrast: white-noise amplitude as a fraction of the display range (1 = binary 0 / 254).
        num_test_clips: naturalistic clips of the repeated test movie (default 3 = 450 frames).
        num_test_repeats: trials of the test movie (default 10).
        num_sessions, cells_per_session: default 2 sessions of 50 cells, each with its own mosaics.
        cell_types: the functional types; ``None`` = :func:`default_cell_types` for ``channel_names``.
        channel_names: labels of the channels (only used in type names); ``None`` = ("green", "uv") for 2
            channels, else "channel_0", ...
        spectral_exponent: ``a`` of the 1/f^a scene power spectrum (natural images: ~2).
        channel_correlation: correlation between the channels of a scene.
        fixation_s: mean time between saccades.
        population: cell-model knobs, including the noise model (Poisson or calcium).
    """

    num_channels: int = 2
    height: int = 18
    width: int = 16
    frame_rate: float = 30.0
    clip_length: int = 150
    num_natural_clips: int = 80
    num_white_noise_clips: int = 20
    white_noise_contrast: float = 1.0
    num_test_clips: int = 3
    num_test_repeats: int = 10
    num_sessions: int = 2
    cells_per_session: int = 50
    cell_types: tuple[CellType, ...] | None = None
    channel_names: tuple[str, ...] | None = None
    spectral_exponent: float = 2.0
    channel_correlation: float = 0.8
    fixation_s: float = 1.0
    population: PopulationParameters = field(default_factory=PopulationParameters)

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= {minimum}, got {getattr(self, name)}"
            for name, minimum in (
                ("num_channels", 1),
                ("height", 1),
                ("width", 1),
                ("clip_length", 1),
                ("num_natural_clips", 1),
                ("num_white_noise_clips", 0),
                ("num_test_clips", 1),
                ("num_test_repeats", 2),
                ("num_sessions", 1),
                ("cells_per_session", 1),
            )
            if getattr(self, name) < minimum
        ]
        if not self.frame_rate > 0:
            problems.append(f"frame_rate must be > 0, got {self.frame_rate}")
        if not 0 < self.white_noise_contrast <= 1:
            problems.append(f"white_noise_contrast must lie in (0, 1], got {self.white_noise_contrast}")
        if not 0 <= self.channel_correlation <= 1:
            problems.append(f"channel_correlation must lie in [0, 1], got {self.channel_correlation}")
        if self.channel_names is not None and len(self.channel_names) != self.num_channels:
            problems.append(f"channel_names has {len(self.channel_names)} entries for {self.num_channels} channels")
        if problems:
            raise SyntheticConfigError("SyntheticRetinaConfig: " + "; ".join(problems) + ".")
        self.population.validate()
        for cell_type in self.resolved_cell_types:
            cell_type.validate(self.num_channels)

    @property
    def resolved_channel_names(self) -> tuple[str, ...]:
        """Channel labels actually used."""
        if self.channel_names is not None:
            return self.channel_names
        return ("green", "uv") if self.num_channels == 2 else tuple(f"channel_{i}" for i in range(self.num_channels))

    @property
    def resolved_cell_types(self) -> tuple[CellType, ...]:
        """Cell types actually used."""
        return self.cell_types if self.cell_types is not None else default_cell_types(self.resolved_channel_names)

    @property
    def train_segments(self) -> dict[str, slice]:
        """Frame ranges of the parts of the training movie: ``"natural"`` then ``"white_noise"``."""
        natural_end = self.num_natural_clips * self.clip_length
        end = natural_end + self.num_white_noise_clips * self.clip_length
        return {"natural": slice(0, natural_end), "white_noise": slice(natural_end, end)}


@dataclass(frozen=True)
class SessionGroundTruth:
    """What generated one session's responses.

    Attributes:
        population: the cells (receptive fields, filters, nonlinearities); ``population.rates(movie)``
            predicts noise-free rates for any movie in model units.
        train_rates: ``(N, T_train)`` noise-free expected spike counts per frame for the training movie.
        test_rates: ``{name: (N, T)}`` the same for the test movies (identical on every trial).
        train_expected, test_expected: noise-free mean of the recorded responses (equal to the rates for
            Poisson noise; rates convolved with the indicator kernel for calcium noise).
    """

    population: CellPopulation
    train_rates: np.ndarray
    test_rates: dict[str, np.ndarray]
    train_expected: np.ndarray
    test_expected: dict[str, np.ndarray]

    @property
    def spatial_rfs(self) -> np.ndarray:
        """``(N, C, H, W)`` true linear spatial receptive fields."""
        return self.population.spatial_rfs

    @property
    def temporal_filters(self) -> np.ndarray:
        """``(N, L)`` true temporal filters, index 0 = lag 0."""
        return self.population.temporal_filters

    @property
    def cell_type_ids(self) -> np.ndarray:
        """``(N,)`` index into ``population.cell_types``."""
        return self.population.cell_type_ids

    @property
    def cell_type_names(self) -> list[str]:
        """Type name of each cell."""
        return self.population.cell_type_names


@dataclass(frozen=True)
class SyntheticRetinaDataset:
    """Output of :func:`make_synthetic_retina`: reference containers per session plus ground truth.

    Attributes:
        movies: session -> :class:`MoviesTrainTestSplit` (all sessions share one stimulus object; z-scored with
            the training movie's mean and std, recorded as ``norm_mean``/``norm_std`` of the display scale).
        responses: session -> :class:`ResponsesTrainTestSplit` with ``test_by_trial_dict`` ``{name: (R, N, T)}``
            and ``session_kwargs`` (``group_assignment`` 1-based type ids, ``cell_type_names``, ``roi_coords``).
        ground_truth: session -> :class:`SessionGroundTruth`.
        config: the configuration used; ``seed`` the seed.
    """

    movies: dict[str, MoviesTrainTestSplit]
    responses: dict[str, ResponsesTrainTestSplit]
    ground_truth: dict[str, SessionGroundTruth]
    config: SyntheticRetinaConfig
    seed: int

    @property
    def train_segments(self) -> dict[str, slice]:
        """Frame ranges of the naturalistic and white-noise parts of the training movie."""
        return self.config.train_segments


def _scene_clips(config: SyntheticRetinaConfig, num_clips: int, rng: np.random.Generator) -> np.ndarray:
    """``num_clips`` naturalistic clips, each a new scene, concatenated in time: ``(C, T, H, W)`` contrast."""
    clips = [
        saccadic_scene_movie(
            config.clip_length,
            config.num_channels,
            config.height,
            config.width,
            rng,
            frame_rate=config.frame_rate,
            spectral_exponent=config.spectral_exponent,
            channel_correlation=config.channel_correlation,
            fixation_s=config.fixation_s,
        )
        for _ in range(num_clips)
    ]
    return np.concatenate(clips, axis=1)


def _session_name(index: int) -> str:
    return f"session_{index}"


def make_synthetic_retina(config: SyntheticRetinaConfig | None = None, seed: int = 0) -> SyntheticRetinaDataset:
    """Generate a complete synthetic dataset; the same ``config`` and ``seed`` give identical arrays.

    Uses only ``numpy.random.Generator`` streams derived from ``seed`` (global RNGs are untouched). Stimuli,
    and each session's cells and noise, use independent streams, so adding a session leaves the others alone.
    """
    config = config or SyntheticRetinaConfig()
    stimulus_seed, *session_seeds = np.random.SeedSequence(seed).spawn(1 + config.num_sessions)
    stimulus_rng = np.random.default_rng(stimulus_seed)
    shape = (config.num_channels, config.height, config.width)

    natural = _scene_clips(config, config.num_natural_clips, stimulus_rng)
    noise = white_noise_movie(
        config.num_white_noise_clips * config.clip_length,
        *shape,
        stimulus_rng,
        amplitude=config.white_noise_contrast * FULL_CONTRAST,
    )
    test = _scene_clips(config, config.num_test_clips, stimulus_rng)
    train_display = to_display_intensity(np.concatenate([natural, noise], axis=1))
    test_display = to_display_intensity(test)
    norm_mean = float(train_display.mean(dtype=np.float64))
    norm_std = float(train_display.std(dtype=np.float64, ddof=1))
    train_movie = ((train_display - norm_mean) / norm_std).astype(np.float32)
    test_movie = ((test_display - norm_mean) / norm_std).astype(np.float32)
    movies = MoviesTrainTestSplit(
        train_movie, test_dict={TEST_NAME: test_movie}, stim_id=STIM_ID, norm_mean=norm_mean, norm_std=norm_std
    )

    cell_types = config.resolved_cell_types
    natural_part = train_movie[:, config.train_segments["natural"]]
    responses: dict[str, ResponsesTrainTestSplit] = {}
    ground_truth: dict[str, SessionGroundTruth] = {}
    for index, session_seed in enumerate(session_seeds):
        rng = np.random.default_rng(session_seed)
        population = make_cell_population(
            cell_types, config.cells_per_session, natural_part, rng, config.frame_rate, config.population
        )
        train_rates = population.rates(train_movie)
        test_rates = population.rates(test_movie)
        trials = population.sample(np.broadcast_to(test_rates, (config.num_test_repeats, *test_rates.shape)), rng)
        name = _session_name(index)
        responses[name] = ResponsesTrainTestSplit(
            population.sample(train_rates, rng),
            test_dict={TEST_NAME: trials.mean(axis=0)},
            test_by_trial_dict={TEST_NAME: trials},
            stim_id=STIM_ID,
            session_kwargs={
                "group_assignment": population.cell_type_ids + 1,
                "cell_type_names": np.array(population.cell_type_names),
                "roi_coords": population.rf_centres,
                "frame_rate": config.frame_rate,
                "noise_model": population.noise_model,
            },
        )
        ground_truth[name] = SessionGroundTruth(
            population=population,
            train_rates=train_rates,
            test_rates={TEST_NAME: test_rates},
            train_expected=population.expected_response(train_rates),
            test_expected={TEST_NAME: population.expected_response(test_rates)},
        )
    return SyntheticRetinaDataset(
        movies={name: movies for name in responses},
        responses=responses,
        ground_truth=ground_truth,
        config=config,
        seed=seed,
    )
