"""Containers for one session's stimulus and responses, and helpers that summarise a multi-session dataset.

Layouts (C colour channels, T frames/time bins, H x W pixels, N neurons, R repeats):

* stimulus movies: ``(C, T, H, W)``
* responses: ``(N, T)``, aligned frame by frame with the movie
* per-trial test responses: ``(R, N, T)`` -- the one canonical layout, checked against the averaged responses.

Arrays may be numpy arrays, ``np.memmap`` (``np.load(path, mmap_mode="r")``), torch tensors or h5py datasets. The
containers never copy or cast them, so a memory-mapped movie larger than RAM stays on disk. Validation reads
memory-mapped data in bounded chunks.

Non-finite policy: NaN or infinite values in any stimulus or response array raise
:class:`~openretina.errors.NonFiniteDataError` stating the array, the NaN/inf counts and the first offending index.
Nothing is dropped or imputed silently (the reference system instead returned ``None`` dataloaders for such
sessions, which crashed training later). Wrap construction in :func:`error_context` to add the session name.
"""

from __future__ import annotations

import itertools
import math
import pickle
import warnings
from dataclasses import InitVar, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openretina.data_io._arrays import ArrayLike, check_finite, error_context, iter_chunks, mean_over_axis, shape_of
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError

__all__ = [
    "DatasetStatistics",
    "MoviesTrainTestSplit",
    "ResponsesTrainTestSplit",
    "compute_data_info",
    "error_context",
    "get_n_neurons_per_session",
    "normalize_train_test_movies",
]

# Relative tolerance for normalisation statistics that must agree across sessions (the reference accepted an
# absolute difference of up to 1.0, which lets genuinely different normalisations through).
NORM_STATS_RTOL = 1e-3


def _merge_single_test(test_dict: dict[str, Any], test: Any, container: str) -> dict[str, Any]:
    """Return a new test dict holding either ``test_dict`` or ``{"test": test}``; exactly one must be given."""
    if test is not None and test_dict:
        raise DataFormatError(
            f"{container}: got both `test` and `test_dict` (keys {sorted(test_dict)}); pass exactly one of them."
        )
    if test is None and not test_dict:
        raise DataFormatError(
            f"{container}: no test stimulus given; pass `test=<array>` or a non-empty `test_dict={{name: array}}`."
        )
    return {"test": test} if test is not None else dict(test_dict)


def _require_ndim(array: ArrayLike, ndim: int, name: str, layout: str) -> tuple[int, ...]:
    shape = shape_of(array)
    if len(shape) != ndim:
        raise DataShapeError(f"{name} must be {ndim}-D {layout}, got shape {shape} ({len(shape)}-D).")
    return shape


def _warn_if_time_looks_swapped(shape: tuple[int, ...], name: str, first: str) -> None:
    if shape[0] > shape[1]:
        warnings.warn(
            f"{name} has more {first} ({shape[0]}) than time bins ({shape[1]}); check the axis order.",
            UserWarning,
            stacklevel=4,
        )


@dataclass(frozen=True)
class MoviesTrainTestSplit:
    """Stimulus of one session: a continuous training movie and one or more named test movies.

    Movies: ``(C, T, H, W)``; all share ``C``, ``H`` and ``W``. The training movie holds training and validation
    clips back to back; validation clips are cut out later by the dataloaders. Pass either ``test`` (stored as
    ``test_dict["test"]``) or ``test_dict``. ``norm_mean``/``norm_std`` record a normalisation already applied.
    """

    train: ArrayLike
    test_dict: dict[str, ArrayLike] = field(default_factory=dict)
    test: InitVar[ArrayLike | None] = None
    stim_id: str | None = None
    random_sequences: ArrayLike | None = None
    norm_mean: float | None = None
    norm_std: float | None = None

    def __post_init__(self, test: ArrayLike | None) -> None:
        # A frozen dataclass: build the final dict and set it once instead of mutating the caller's dict.
        object.__setattr__(self, "test_dict", _merge_single_test(self.test_dict, test, "MoviesTrainTestSplit"))
        train_shape = _require_ndim(self.train, 4, "movie 'train'", "(channels, time, height, width)")
        _warn_if_time_looks_swapped(train_shape, "movie 'train'", "channels")
        test_shape = self.test_shape
        if test_shape[0] != train_shape[0]:
            raise DataShapeError(
                f"test movies have {test_shape[0]} channels but movie 'train' has {train_shape[0]} "
                f"(shapes {test_shape} vs {train_shape}); all movies must share the channel count."
            )
        if test_shape[2:] != train_shape[2:]:
            raise DataShapeError(
                f"test movies are {test_shape[2:]} pixels (H, W) but movie 'train' is {train_shape[2:]}; "
                "resize or crop so all movies share the spatial size."
            )
        check_finite(self.train, "movie 'train'")
        for name, movie in self.test_dict.items():
            check_finite(movie, f"test movie {name!r}")

    @cached_property
    def test_shape(self) -> tuple[int, int, int, int]:
        """``(C, longest T over test movies, H, W)``; raises if test movies disagree in ``(C, H, W)``."""
        if not self.test_dict:
            raise DataFormatError("MoviesTrainTestSplit has no test movies.")
        shapes = {}
        for name, movie in self.test_dict.items():
            shapes[name] = _require_ndim(movie, 4, f"test movie {name!r}", "(channels, time, height, width)")
        reference_name, reference = next(iter(shapes.items()))
        for name, shape in shapes.items():
            if (shape[0], *shape[2:]) != (reference[0], *reference[2:]):
                raise DataShapeError(
                    f"test movie {name!r} has (C, H, W) = {(shape[0], *shape[2:])} but test movie "
                    f"{reference_name!r} has {(reference[0], *reference[2:])}; all test movies must agree."
                )
        return (reference[0], max(s[1] for s in shapes.values()), reference[2], reference[3])

    @property
    def test_movie(self) -> ArrayLike:
        """The single test movie ``(C, T, H, W)``; raises if there are several."""
        if len(self.test_dict) != 1:
            raise DataFormatError(
                f"test_movie needs exactly one test movie, found {sorted(self.test_dict)}; use test_dict[name]."
            )
        return next(iter(self.test_dict.values()))

    @classmethod
    def from_pickle(cls, file_path: str | Path) -> MoviesTrainTestSplit:
        """Load a pickled dict with keys ``train``, ``test`` and optional ``random_sequences`` and
        ``movie_stats["dichromatic"]["mean"|"sd"]`` (missing statistics become NaN)."""
        path = Path(file_path)
        if not path.is_file():
            raise DataFileNotFoundError(f"movie pickle {str(path)!r} does not exist; check the data path.")
        with path.open("rb") as handle:
            content = pickle.load(handle)
        missing = [key for key in ("train", "test") if key not in content]
        if missing:
            raise DataFormatError(f"movie pickle {str(path)!r} lacks keys {missing}; found {sorted(content)}.")
        stats = content.get("movie_stats", {}).get("dichromatic", {})
        return cls(
            train=content["train"],
            test=content["test"],
            random_sequences=content.get("random_sequences"),
            norm_mean=float(np.asarray(stats["mean"]).item()) if "mean" in stats else math.nan,
            norm_std=float(np.asarray(stats["sd"]).item()) if "sd" in stats else math.nan,
        )


@dataclass
class ResponsesTrainTestSplit:
    """Responses of one session: ``train`` ``(N, T_train)`` aligned with the training movie, trial-averaged test
    responses ``(N, T_k)`` per test movie, and optional per-trial test responses ``(R, N, T_k)``.

    ``test_by_trial`` (single test movie) is stored under the only test key of ``test_by_trial_dict``. The
    per-trial layout is always ``(R, N, T)``; any other order is rejected with a hint on how to transpose.
    ``session_kwargs`` holds free per-session metadata (cell types, ROI ids, ...).
    """

    train: ArrayLike
    test_dict: dict[str, ArrayLike] = field(default_factory=dict)
    test: InitVar[ArrayLike | None] = None
    test_by_trial: ArrayLike | None = None
    test_by_trial_dict: dict[str, ArrayLike] = field(default_factory=dict)
    stim_id: str | None = None
    session_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self, test: ArrayLike | None) -> None:
        self.test_dict = _merge_single_test(self.test_dict, test, "ResponsesTrainTestSplit")
        self.test_by_trial_dict = dict(self.test_by_trial_dict)
        if self.test_by_trial is not None:
            if len(self.test_dict) != 1:
                raise DataFormatError(
                    f"`test_by_trial` is ambiguous with {len(self.test_dict)} test stimuli {sorted(self.test_dict)}; "
                    "use `test_by_trial_dict={name: (trials, neurons, time)}` instead."
                )
            self.test_by_trial_dict.setdefault(next(iter(self.test_dict)), self.test_by_trial)
        unknown = sorted(set(self.test_by_trial_dict) - set(self.test_dict))
        if unknown:
            raise DataFormatError(
                f"test_by_trial_dict keys {unknown} have no averaged responses in test_dict "
                f"(keys {sorted(self.test_dict)}); every per-trial entry needs a matching test_dict entry."
            )
        train_shape = _require_ndim(self.train, 2, "responses 'train'", "(neurons, time)")
        _warn_if_time_looks_swapped(train_shape, "responses 'train'", "neurons")
        if self.test_neurons != train_shape[0]:
            raise DataShapeError(
                f"responses 'train' has {train_shape[0]} neurons but the test responses have {self.test_neurons}; "
                "train and test must describe the same neurons in the same order."
            )
        for name, by_trial in self.test_by_trial_dict.items():
            self._check_by_trial(name, by_trial)
        check_finite(self.train, "responses 'train'")
        for name, responses in self.test_dict.items():
            check_finite(responses, f"test responses {name!r}")
        for name, by_trial in self.test_by_trial_dict.items():
            check_finite(by_trial, f"per-trial test responses {name!r}")

    def _check_by_trial(self, name: str, by_trial: ArrayLike) -> None:
        shape = shape_of(by_trial)
        expected = shape_of(self.test_dict[name])  # (N, T)
        if len(shape) == 3 and shape[1:] == expected:
            return
        hint = ""
        if len(shape) == 3:
            for order in itertools.permutations(range(3)):
                if tuple(shape[i] for i in order)[1:] == expected:
                    hint = f" It looks transposed: np.transpose(x, {order}) gives (trials, neurons, time)."
                    break
        raise DataShapeError(
            f"per-trial test responses {name!r} must be (trials, neurons, time) = (R, {expected[0]}, {expected[1]}) "
            f"to match test responses {name!r} of shape {expected}, got {shape}.{hint}"
        )

    @cached_property
    def test_neurons(self) -> int:
        """Neuron count shared by all averaged test responses (each must be 2-D ``(N, T)``)."""
        counts = {}
        for name, responses in self.test_dict.items():
            counts[name] = _require_ndim(responses, 2, f"test responses {name!r}", "(neurons, time)")[0]
        if len(set(counts.values())) != 1:
            raise DataShapeError(f"test responses disagree in neuron count: {counts}; all must have the same N.")
        return next(iter(counts.values()))

    @property
    def n_neurons(self) -> int:
        """Number of neurons ``N``."""
        return shape_of(self.train)[0]

    @property
    def test_response(self) -> ArrayLike:
        """The single trial-averaged test response ``(N, T)``; raises if there are several test stimuli."""
        if len(self.test_dict) != 1:
            raise DataFormatError(
                f"test_response needs exactly one test stimulus, found {sorted(self.test_dict)}; use test_dict[name]."
            )
        return next(iter(self.test_dict.values()))

    def get_test_by_trial(self, name: str = "test") -> ArrayLike | None:
        """Per-trial test responses ``(R, N, T)`` for test stimulus ``name``, or None if not recorded."""
        return self.test_by_trial_dict.get(name)

    def check_matching_stimulus(self, movies: MoviesTrainTestSplit, *, session: str | None = None) -> None:
        """Raise if these responses do not line up with ``movies`` (frame counts, test names, ``stim_id``)."""
        where = f"session {session!r}: " if session is not None else ""
        movie_frames, response_frames = shape_of(movies.train)[1], shape_of(self.train)[1]
        if movie_frames != response_frames:
            raise DataShapeError(
                f"{where}responses 'train' have {response_frames} time bins but movie 'train' has {movie_frames} "
                "frames (expected equal); check the trigger alignment or trim the longer one."
            )
        if set(self.test_dict) != set(movies.test_dict):
            raise DataFormatError(
                f"{where}test stimuli differ: responses have {sorted(self.test_dict)}, movies have "
                f"{sorted(movies.test_dict)}."
            )
        for name, responses in self.test_dict.items():
            frames, bins = shape_of(movies.test_dict[name])[1], shape_of(responses)[1]
            if frames != bins:
                raise DataShapeError(
                    f"{where}test responses {name!r} have {bins} time bins but test movie {name!r} has {frames} "
                    "frames (expected equal)."
                )
        if self.stim_id is not None and movies.stim_id is not None and self.stim_id != movies.stim_id:
            raise DataFormatError(f"{where}responses stim_id {self.stim_id!r} != movies stim_id {movies.stim_id!r}.")


def get_n_neurons_per_session(responses_dict: dict[str, ResponsesTrainTestSplit]) -> dict[str, int]:
    """Map each session name to its neuron count."""
    return {session: responses.n_neurons for session, responses in responses_dict.items()}


@dataclass
class DatasetStatistics:
    """Counts of unique frames and frame-to-frame transitions per split, and the number of sessions."""

    unique_train_frames: int
    unique_val_frames: int
    unique_train_val_frames: int
    unique_test_frames: dict[str, int]
    unique_train_transitions: int
    unique_val_transitions: int
    unique_test_transitions: dict[str, int]
    n_sessions: int

    @classmethod
    def empty(cls) -> DatasetStatistics:
        """All counts zero, no test stimuli."""
        return cls(0, 0, 0, {}, 0, 0, {}, 0)


def normalize_train_test_movies(train: ArrayLike, test: ArrayLike) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Z-score both movies with the scalar mean and unbiased (n-1) standard deviation of the *training* movie.

    Input: movies of any layout (usually ``(C, T, H, W)``). Output: float32 numpy copies of both movies and
    ``{"norm_mean": mean, "norm_std": std}``. Statistics are accumulated chunk-wise in float64 (more accurate than
    a float32 reduction, and a memory-mapped train movie is streamed); only the outputs are materialised.
    """
    count = 0
    total = 0.0
    for _, chunk in iter_chunks(train):
        total += float(chunk.sum(dtype=np.float64))
        count += chunk.size
    if count < 2:
        raise DataShapeError(f"movie 'train' has {count} values; at least 2 are needed to compute a std.")
    mean = total / count
    squares = 0.0
    for _, chunk in iter_chunks(train):
        squares += float(np.square(chunk.astype(np.float64) - mean).sum())
    std = math.sqrt(squares / (count - 1))
    if std == 0.0:
        raise DataShapeError("movie 'train' is constant (std 0); it cannot be z-scored.")

    def scale(movie: ArrayLike) -> np.ndarray:
        values = movie.detach().cpu().numpy() if isinstance(movie, torch.Tensor) else np.asarray(movie)
        return ((values.astype(np.float64) - mean) / std).astype(np.float32)

    return scale(train), scale(test), {"norm_mean": mean, "norm_std": std}


def _agreed_statistic(values: dict[str, float | None], name: str, default: float) -> float:
    """The common value of a per-session normalisation statistic (NaN/None = unknown)."""
    known = {session: float(v) for session, v in values.items() if v is not None and not math.isnan(float(v))}
    if not known:
        warnings.warn(f"no session records `{name}`; using {default}.", UserWarning, stacklevel=3)
        return default
    first_session, first = next(iter(known.items()))
    for session, value in known.items():
        if not math.isclose(value, first, rel_tol=NORM_STATS_RTOL, abs_tol=1e-8):
            raise DataFormatError(
                f"session {session!r} has {name}={value} but session {first_session!r} has {first} (relative "
                f"tolerance {NORM_STATS_RTOL}); sessions trained together must share one normalisation."
            )
    return first


def compute_data_info(
    neuron_data_dictionary: dict[str, ResponsesTrainTestSplit],
    movies_dictionary: dict[str, MoviesTrainTestSplit] | MoviesTrainTestSplit,
    partial_data_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Summary of a dataset that models need and checkpoints store (``hparams["data_info"]``).

    Keys: ``n_neurons_dict`` (session -> N), ``mean_activity_dict`` (session -> float32 tensor ``(N,)``, the time
    mean of ``responses.train``), ``input_shape`` ``(C, H, W)``, ``sessions_kwargs``, ``stim_mean``, ``stim_std``,
    then every entry of ``partial_data_info``. Per-session normalisation statistics must agree to a relative
    tolerance of ``NORM_STATS_RTOL`` (the reference accepted any absolute difference below 1.0).
    """
    if isinstance(movies_dictionary, MoviesTrainTestSplit):
        movies_per_session = {session: movies_dictionary for session in neuron_data_dictionary}
        stim_mean = movies_dictionary.norm_mean
        stim_std = movies_dictionary.norm_std
    else:
        missing = sorted(set(neuron_data_dictionary) - set(movies_dictionary))
        if missing:
            raise DataFormatError(
                f"sessions {missing} have responses but no movies (movie sessions: {sorted(movies_dictionary)})."
            )
        movies_per_session = {session: movies_dictionary[session] for session in neuron_data_dictionary}
        stim_mean = _agreed_statistic({s: m.norm_mean for s, m in movies_dictionary.items()}, "norm_mean", 0.0)
        stim_std = _agreed_statistic({s: m.norm_std for s, m in movies_dictionary.items()}, "norm_std", 1.0)

    input_shapes = {}
    for session, movies in movies_per_session.items():
        shape = shape_of(movies.train)
        input_shapes[session] = (shape[0], shape[2], shape[3])
    if len(set(input_shapes.values())) > 1:
        raise DataShapeError(
            f"sessions disagree in movie (C, H, W): {input_shapes}; one model needs one input shape per dataset."
        )

    data_info: dict[str, Any] = {
        "n_neurons_dict": get_n_neurons_per_session(neuron_data_dictionary),
        "mean_activity_dict": {
            session: torch.as_tensor(mean_over_axis(responses.train, axis=1), dtype=torch.float32)
            for session, responses in neuron_data_dictionary.items()
        },
        "input_shape": next(iter(input_shapes.values())) if input_shapes else None,
        "sessions_kwargs": {session: responses.session_kwargs for session, responses in neuron_data_dictionary.items()},
        "stim_mean": stim_mean,
        "stim_std": stim_std,
    }
    data_info.update(partial_data_info or {})
    return data_info
