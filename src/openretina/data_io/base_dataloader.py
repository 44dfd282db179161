"""Generic movie dataloaders: chunks of a stimulus movie paired with the responses to it.

Every batch is a :class:`DataPoint` with ``inputs`` float32 ``(B, C, T_chunk, H, W)`` and ``targets`` float32
``(B, T_chunk, N)``. A session's training movie is split into clips of ``clip_length`` frames; some clips are held
out for validation, the rest are trained on in chunks of ``train_chunk_size`` frames that are randomly shifted and
shuffled every epoch. Test movies are served whole.

Differences from the reference system (same names, signatures and batch layout):

* Splits are index tables over the original arrays (:class:`~openretina.data_io._frame_view.FrameView`), not
  concatenated copies, so movies and responses may be memory-mapped ``.npy`` files or h5py datasets larger than
  RAM; only the frames of the current batch are read.
* A batch is gathered in one call (``MovieDataSet.__getitems__``: one slice per chunk, one stacking copy) instead
  of item-by-item ``__getitem__`` calls merged by ``default_collate``; in-memory responses are kept time-major.
* Randomness comes from a per-sampler ``numpy.random.Generator`` derived from ``seed`` and the epoch number: runs
  are reproducible and the global numpy/torch/python RNG states are never touched.
* Training chunks are shuffled every epoch also when ``chunk_size == scene_length``.
* Responses with NaN/inf raise :class:`~openretina.errors.NonFiniteDataError` (the reference returned ``None``).
* Frames after the last whole clip are dropped from both movie *and* responses, keeping the two aligned.
"""

from __future__ import annotations

import math
import zlib
from collections import namedtuple
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from openretina.data_io._arrays import ArrayLike, check_finite, error_context, is_memory_mapped, shape_of
from openretina.data_io._frame_view import FrameView
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.errors import DataFormatError, DataShapeError

__all__ = [
    "DataPoint",
    "FrameView",
    "MovieDataSet",
    "MovieSampler",
    "NeuronDataSplit",
    "collate_data_points",
    "gen_shifts_with_boundaries",
    "generate_movie_splits",
    "get_movie_dataloader",
    "multiple_movies_dataloaders",
]

DataPoint = namedtuple("DataPoint", ["inputs", "targets"])
DataPoint.__doc__ = "A stimulus chunk and the responses to it: inputs (C, T, H, W), targets (T, N); batched with B."

_TRAIN, _VALIDATION, _TEST = "train", "validation", "test"
_SPLITS = {"train": _TRAIN, "validation": _VALIDATION, "val": _VALIDATION, "test": _TEST}
# Keys of the `multiple_movies_dataloaders` result that a test stimulus name must not shadow.
_RESERVED_SPLIT_NAMES = frozenset({_TRAIN, _VALIDATION})


def _canonical_split(split: str) -> str:
    if split not in _SPLITS:
        raise NotImplementedError(f"split {split!r} is not supported; use one of {sorted(_SPLITS)}.")
    return _SPLITS[split]


def _default_seed() -> int:
    """Seed used when none is given: torch's initial seed, which ``lightning.seed_everything`` sets.

    Reading it leaves every global RNG state untouched.
    """
    return int(torch.initial_seed())


def collate_data_points(batch: DataPoint | list[DataPoint]) -> DataPoint:
    """Collate function of our loaders: batches built by ``MovieDataSet.__getitems__`` pass through unchanged,
    lists of single items (e.g. from a custom dataset) are stacked with ``default_collate``."""
    if isinstance(batch, DataPoint):
        return batch
    return DataPoint(*default_collate(batch))


def _as_view(array: ArrayLike | FrameView, time_axis: int) -> FrameView:
    return array if isinstance(array, FrameView) else FrameView(array, time_axis)


class MovieDataSet(Dataset):
    """Chunks of a movie and the aligned responses; an index is the *start frame* of a chunk.

    ``movies``: ``(C, T, H, W)``; ``responses``: ``(T, N)`` (time first), or for ``split="test"`` a dict
    ``{"avg": (T, N), "by_trial": (R, N, T) or None}``. Arrays may be numpy, memmap, torch, h5py or
    :class:`FrameView`. Items: ``DataPoint(inputs float32 (C, chunk, H, W), targets float32 (chunk, N))``; a chunk
    starting less than ``chunk_size`` frames before the end is shorter.
    """

    def __init__(
        self,
        movies: ArrayLike | FrameView,
        responses: ArrayLike | FrameView | dict[str, Any],
        roi_ids: ArrayLike | None,
        roi_coords: ArrayLike | None,
        group_assignment: ArrayLike | None,
        split: str,
        chunk_size: int,
    ) -> None:
        by_trial = None
        if isinstance(responses, dict):
            if split != _TEST:
                raise DataFormatError(f"responses as a dict are only accepted for split 'test', got split {split!r}.")
            by_trial = responses.get("by_trial")
            responses = responses["avg"]
        self._movies = _as_view(movies, time_axis=1)
        # Arrays are (time, neurons); views from NeuronDataSplit keep the container's (neurons, time) source.
        self._responses = _as_view(responses, time_axis=0)
        movie_shape, response_shape = self._movies.shape, self._responses.shape
        if len(movie_shape) != 4:
            raise DataShapeError(f"movie must be 4-D (channels, time, height, width), got shape {movie_shape}.")
        if len(response_shape) != 2:
            raise DataShapeError(f"responses must be 2-D (time, neurons), got shape {response_shape}.")
        if movie_shape[1] != len(self._responses):
            raise DataShapeError(
                f"movie has {movie_shape[1]} frames but responses have {len(self._responses)} time bins (shape "
                f"{response_shape}, expected (time, neurons)); pass responses time-first, e.g. responses.T."
            )
        if chunk_size < 1:
            raise DataFormatError(f"chunk_size must be >= 1, got {chunk_size}.")
        self.samples = (self._movies, self._responses)
        self.test_responses_by_trial = None if by_trial is None else torch.as_tensor(np.asarray(by_trial)).float()
        self.split = split
        self.chunk_size = chunk_size
        self.roi_ids = roi_ids
        self.roi_coords = roi_coords
        self.group_assignment = group_assignment

    @property
    def n_frames(self) -> int:
        """Number of frames ``T`` in this split."""
        return self._movies.shape[1]

    @property
    def n_neurons(self) -> int:
        """Number of neurons ``N``."""
        return self._responses.shape[1 - self._responses.time_axis]

    @cached_property
    def mean_response(self) -> torch.Tensor:
        """Per-neuron mean response over time, float32 ``(N,)``."""
        return torch.from_numpy(self._responses.mean_over_time()).float()

    @property
    def movies(self) -> torch.Tensor | FrameView:
        """The movie ``(C, T, H, W)``: a float32 tensor when the dataset covers its whole source (shared, not
        copied, if the source already is float32), else the lazy :class:`FrameView`."""
        return self._movies.to_tensor().float() if self._movies.is_identity else self._movies

    @property
    def responses(self) -> torch.Tensor | FrameView:
        """The responses ``(T, N)``: a float32 tensor or the lazy :class:`FrameView`, as for :attr:`movies`."""
        if not self._responses.is_identity:
            return self._responses
        responses = self._responses.to_tensor().float()
        return responses.T if self._responses.time_axis == 1 else responses

    def __len__(self) -> int:
        """Number of chunk start positions ``0, chunk, 2*chunk, ...`` (``ceil(T / chunk)``)."""
        return math.ceil(self.n_frames / self.chunk_size)

    def __getitem__(self, idx: int | slice) -> DataPoint:
        """A chunk starting at frame ``idx``, or the frames selected by a slice."""
        if isinstance(idx, slice):
            frames = np.arange(self.n_frames)[idx]
            movies, responses = self._movies.select(frames), self._responses.select(frames)
            return DataPoint(movies.take([0], len(frames))[0], responses.take_time_first([0], len(frames))[0])
        start = int(idx)
        if not 0 <= start < self.n_frames:
            raise IndexError(f"start frame {start} outside the movie's {self.n_frames} frames.")
        batch = self._gather(np.array([start]), min(self.chunk_size, self.n_frames - start))
        return DataPoint(batch.inputs[0], batch.targets[0])

    def __getitems__(self, indices: Sequence[int]) -> DataPoint:
        """A whole batch of chunks at once. Output: ``DataPoint(inputs (B, C, L, H, W), targets (B, L, N))``."""
        starts = np.asarray(indices, dtype=np.int64)
        if starts.size and (starts.min() < 0 or starts.max() >= self.n_frames):
            raise IndexError(f"start frames {starts.tolist()} must lie in [0, {self.n_frames}).")
        lengths = np.minimum(self.chunk_size, self.n_frames - starts)
        if lengths.size and (lengths != lengths[0]).any():
            raise DataShapeError(
                f"chunks starting at {starts.tolist()} have unequal lengths {lengths.tolist()} (movie has "
                f"{self.n_frames} frames, chunk_size {self.chunk_size}); they cannot share a batch. Use start "
                "indices at most T - chunk_size or batch_size=1."
            )
        return self._gather(starts, int(lengths[0]) if lengths.size else 0)

    def _gather(self, starts: np.ndarray, length: int) -> DataPoint:
        inputs = self._movies.take(starts, length)  # (B, C, L, H, W)
        targets = self._responses.take_time_first(starts, length)  # (B, L, N) from a (T, N) or (N, T) source
        return DataPoint(inputs, targets)

    def __str__(self) -> str:
        return f"MovieDataSet({self.split}: {self.n_neurons} neurons, movie shape {self._movies.shape})"


def gen_shifts_with_boundaries(
    clip_bounds: Sequence[int] | np.ndarray,
    start_indices: Sequence[int] | np.ndarray,
    clip_chunk_size: int = 50,
    *,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """Randomly shift chunk start frames by up to ``clip_chunk_size // 2`` frames without crossing clip boundaries.

    A start whose shifted chunk would cross the next boundary keeps its position, or is moved back to end exactly
    at the boundary if even the unshifted chunk crosses it; the final chunk ends at the last boundary at most.
    ``rng`` defaults to a fresh generator (the global numpy RNG is never used).
    """
    rng = np.random.default_rng() if rng is None else rng
    bounds = np.asarray(clip_bounds, dtype=np.int64)
    starts = np.asarray(start_indices, dtype=np.int64)
    if starts.size == 0:
        return []
    shifts = rng.integers(0, max(1, clip_chunk_size // 2), size=starts.size)
    next_bound = bounds[np.minimum(np.searchsorted(bounds, starts, side="right"), bounds.size - 1)]
    shifted = np.where(
        starts + shifts + clip_chunk_size < next_bound,
        starts + shifts,
        np.where(starts + clip_chunk_size > next_bound, next_bound - clip_chunk_size, starts),
    )
    if shifted[-1] + clip_chunk_size > bounds[-1]:
        shifted[-1] = bounds[-1] - clip_chunk_size
    return [int(s) for s in shifted]


class MovieSampler(Sampler[int]):
    """Yields chunk start frames for :class:`MovieDataSet`.

    Training (``split="train"``): every epoch each start is shifted at random (by up to ``chunk_size`` frames when
    ``allow_over_boundaries``, else within its scene via :func:`gen_shifts_with_boundaries`), clamped so the chunk
    fits in the movie, and the order is shuffled -- also when ``chunk_size == scene_length`` (then without shifts).
    Other splits yield the start frames unchanged and in order.

    Randomness: epoch ``e`` uses ``numpy.random.default_rng([seed, e])``; the epoch counter advances on each
    iteration (or is set with :meth:`set_epoch`). ``seed=None`` uses ``torch.initial_seed()``. Global RNGs are
    never touched.
    """

    def __init__(
        self,
        start_indices: Sequence[int] | np.ndarray,
        split: str,
        chunk_size: int,
        movie_length: int,
        scene_length: int,
        allow_over_boundaries: bool = False,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.indices = [int(i) for i in start_indices]
        self.split = split
        self.chunk_size = chunk_size
        self.movie_length = movie_length
        self.scene_length = scene_length
        self.allow_over_boundaries = allow_over_boundaries
        self.seed = _default_seed() if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the shifts and order of ``epoch`` (e.g. when resuming training)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        if _SPLITS.get(self.split) != _TRAIN:
            return iter(self.indices)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        starts = np.asarray(self.indices, dtype=np.int64)
        last_full_start = max(0, self.movie_length - self.chunk_size)
        if self.scene_length != self.chunk_size and self.allow_over_boundaries:
            starts = starts + rng.integers(0, self.chunk_size, size=starts.size)
        elif self.scene_length != self.chunk_size:
            bounds = np.arange(0, self.movie_length + 1, self.scene_length)
            starts = np.asarray(gen_shifts_with_boundaries(bounds, starts, self.chunk_size, rng=rng), dtype=np.int64)
        starts = np.minimum(starts, last_full_start)
        return iter(starts[rng.permutation(starts.size)].tolist())


def _default_start_indices(split: str, n_frames: int, chunk_size: int, scene_length: int, over: bool) -> list[int]:
    if split == _TRAIN:
        return list(range(0, n_frames, chunk_size))
    interval = scene_length if split == _VALIDATION or not over else n_frames
    starts = list(range(0, n_frames, max(interval, 1)))
    # A remainder shorter than a chunk would give one short chunk that cannot be batched with the others (the
    # reference then failed in collate); end the last chunk at the movie's end instead, overlapping its neighbour.
    if starts and starts[-1] + chunk_size > n_frames and len(starts) > 1:
        starts[-1] = max(0, n_frames - chunk_size)
    return starts


def get_movie_dataloader(
    movie: ArrayLike | FrameView,
    responses: ArrayLike | FrameView | dict[str, Any],
    *,
    split: str,
    scene_length: int,
    chunk_size: int,
    batch_size: int,
    start_indices: Sequence[int] | None = None,
    roi_ids: ArrayLike | None = None,
    roi_coords: ArrayLike | None = None,
    group_assignment: ArrayLike | None = None,
    drop_last: bool = True,
    allow_over_boundaries: bool = True,
    seed: int | None = None,
    **kwargs: Any,
) -> DataLoader:
    """A DataLoader over chunks of one movie and its responses.

    ``movie``: ``(C, T, H, W)``; ``responses``: ``(T, N)`` or, for ``split="test"``, ``{"avg": (T, N),
    "by_trial": (R, N, T) or None}``. Batches: ``DataPoint(inputs float32 (B, C, chunk, H, W), targets float32
    (B, chunk, N))``. Default start frames: every ``chunk_size`` frames (train), every ``scene_length`` frames
    (validation), the whole movie as one chunk (test, when ``allow_over_boundaries``) or every ``scene_length``
    frames. ``seed`` drives the training shifts/shuffle (see :class:`MovieSampler`); ``kwargs`` go to the
    ``DataLoader`` (e.g. ``num_workers``, ``pin_memory``). Responses with NaN/inf raise
    :class:`~openretina.errors.NonFiniteDataError` instead of returning ``None`` as the reference did.
    """
    canonical = _canonical_split(split)
    avg = responses["avg"] if isinstance(responses, dict) else responses
    if not isinstance(avg, FrameView):  # FrameViews come from containers that were checked on construction
        check_finite(avg, f"{canonical} responses")
    if not allow_over_boundaries and canonical == _TRAIN and chunk_size > scene_length:
        raise DataFormatError(
            f"chunk_size {chunk_size} exceeds scene_length {scene_length} while allow_over_boundaries=False; "
            "reduce the chunk size or allow chunks to cross scene boundaries."
        )
    dataset = MovieDataSet(movie, responses, roi_ids, roi_coords, group_assignment, canonical, chunk_size)
    if start_indices is None:
        start_indices = _default_start_indices(
            canonical, dataset.n_frames, chunk_size, scene_length, allow_over_boundaries
        )
    sampler = MovieSampler(
        start_indices,
        canonical,
        chunk_size,
        movie_length=dataset.n_frames,
        scene_length=scene_length,
        allow_over_boundaries=allow_over_boundaries,
        seed=seed,
    )
    kwargs.setdefault("collate_fn", collate_data_points)
    # Without its own generator a DataLoader draws its worker base seed from the global torch RNG on every epoch.
    kwargs.setdefault("generator", torch.Generator().manual_seed(sampler.seed))
    return DataLoader(
        dataset, sampler=sampler, batch_size=batch_size, drop_last=canonical == _TRAIN and drop_last, **kwargs
    )


def _clip_frames(val_clip_idx: Sequence[int], num_clips: int, clip_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame tables ``(train_frames, val_frames)``: validation clips in the given order, the remaining clips in
    increasing order; frames after the last whole clip belong to neither."""
    val = [int(c) for c in val_clip_idx]
    bad = [c for c in val if not 0 <= c < num_clips]
    if bad or len(set(val)) != len(val):
        raise DataFormatError(
            f"validation clip indices must be distinct and in [0, {num_clips}) ({num_clips} clips of {clip_length} "
            f"frames), got {val}."
        )
    offsets = np.arange(clip_length, dtype=np.int64)
    train_clips = np.setdiff1d(np.arange(num_clips), np.asarray(val, dtype=np.int64))
    as_frames = lambda clips: (np.asarray(clips, dtype=np.int64)[:, None] * clip_length + offsets).reshape(-1)  # noqa: E731
    return as_frames(train_clips), as_frames(val)


def generate_movie_splits(
    movie_train: ArrayLike,
    movie_test: dict[str, ArrayLike],
    val_clip_idc: Sequence[int],
    num_clips: int,
    clip_length: int,
) -> tuple[FrameView, FrameView, dict[str, FrameView]]:
    """Split a training movie ``(C, T, H, W)`` into training and validation clips, without copying.

    Returns ``(train, validation, test_dict)`` as :class:`FrameView` objects (shape ``(C, T_split, H, W)``;
    ``.to_tensor()`` materialises one): validation holds clips ``val_clip_idc`` in the given order, training the
    other clips ``< num_clips`` in order. The reference returned concatenated float32 copies instead.
    """
    train_frames, val_frames = _clip_frames(val_clip_idc, num_clips, clip_length)
    available = shape_of(movie_train)[1]
    if num_clips * clip_length > available:
        raise DataShapeError(
            f"{num_clips} clips of {clip_length} frames need {num_clips * clip_length} frames, the movie has "
            f"{available}."
        )
    return (
        FrameView(movie_train, 1, train_frames),
        FrameView(movie_train, 1, val_frames),
        {name: FrameView(movie, 1) for name, movie in movie_test.items()},
    )


def _time_major_view(responses: ArrayLike) -> FrameView:
    """A view of ``(N, T)`` responses for gathering ``(B, L, N)`` targets.

    In-memory arrays get one contiguous float32 ``(T, N)`` copy (responses are small next to movies, and a window
    is then one contiguous block instead of N scattered rows); memory-mapped arrays are wrapped transposed without
    copying; other arrays (h5py) are read lazily along their time axis.
    """
    if is_memory_mapped(responses):
        return FrameView(responses.T, time_axis=0)
    if isinstance(responses, torch.Tensor):
        return FrameView(responses.detach().T.to(torch.float32, memory_format=torch.contiguous_format), time_axis=0)
    if isinstance(responses, np.ndarray):
        return FrameView(np.ascontiguousarray(responses.T, dtype=np.float32), time_axis=0)
    return FrameView(responses, time_axis=1)


class NeuronDataSplit:
    """Responses of one session split into training and validation clips (index views, no copies).

    ``response_dict``: ``{"train": (T_train, N), "validation": (T_val, N), "test": {name: {"avg": float32 tensor
    (T_k, N), "by_trial": float32 tensor (R, N, T_k) or None}}}``. Train and validation are :class:`FrameView`
    objects sharing the frame tables of :func:`generate_movie_splits` (the reference built concatenated copies),
    over one time-major copy of in-memory responses or directly over memory-mapped ones. h5py responses are read
    lazily from their ``(N, T)`` layout (``time_axis=1``).
    """

    def __init__(
        self,
        responses: ResponsesTrainTestSplit,
        val_clip_idx: Sequence[int],
        num_clips: int,
        clip_length: int,
        key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.neural_responses = responses
        self.num_neurons = responses.n_neurons
        self.val_clip_idx = [int(c) for c in val_clip_idx]
        self.num_clips = num_clips
        self.clip_length = clip_length
        self.key = key
        self.responses_train_and_val = _time_major_view(responses.train)
        self.test_responses_by_trial = {name: np.asarray(v) for name, v in responses.test_by_trial_dict.items()}

    def split_data_train_val(self) -> tuple[FrameView, FrameView]:
        """``(train (T_train, N), validation (T_val, N))`` views (see the class docstring)."""
        train_frames, val_frames = _clip_frames(self.val_clip_idx, self.num_clips, self.clip_length)
        return self.responses_train_and_val.select(train_frames), self.responses_train_and_val.select(val_frames)

    @cached_property
    def response_dict_test(self) -> dict[str, dict[str, torch.Tensor | None]]:
        """Test responses per test name: ``{"avg": (T, N), "by_trial": (R, N, T) or None}`` float32 tensors."""
        return {
            name: {
                "avg": torch.as_tensor(np.asarray(avg), dtype=torch.float32).T.contiguous(),
                "by_trial": (
                    torch.as_tensor(self.test_responses_by_trial[name]).float()
                    if name in self.test_responses_by_trial
                    else None
                ),
            }
            for name, avg in self.neural_responses.test_dict.items()
        }

    @cached_property
    def response_dict(self) -> dict[str, Any]:
        """All splits (built once, unlike the reference which rebuilt tensors on every access)."""
        train, validation = self.split_data_train_val()
        return {"train": train, "validation": validation, "test": self.response_dict_test}


def _compute_test_batch_size(train_batch_size: int, train_chunk_size: int, test_chunk_size: int) -> int:
    """Test batch size keeping frames per batch about equal to training (at least 1)."""
    if test_chunk_size <= train_chunk_size:
        return train_batch_size
    return max(1, (train_batch_size * train_chunk_size) // test_chunk_size)


def _session_seed(seed: int, session: str) -> int:
    """A per-session seed that depends only on ``seed`` and the session name (stable across runs and ranks)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(session.encode())]).generate_state(1)[0])


def multiple_movies_dataloaders(
    neuron_data_dictionary: dict[str, ResponsesTrainTestSplit],
    movies_dictionary: dict[str, MoviesTrainTestSplit],
    train_chunk_size: int = 50,
    batch_size: int = 32,
    seed: int = 42,
    clip_length: int = 100,
    num_val_clips: int = 10,
    val_clip_indices: Sequence[int] | None = None,
    allow_over_boundaries: bool = True,
) -> dict[str, dict[str, DataLoader]]:
    """Train, validation and test DataLoaders for every session.

    Returns ``{"train": {session: loader}, "validation": {...}, <test name>: {...}}`` with one key per test
    stimulus (``"test"`` for a single test movie). Validation clips are ``val_clip_indices`` or ``num_val_clips``
    clips drawn with ``RandomState(seed)``: the same clips for every session with the same number of clips, on
    purpose, so a shared stimulus clip validated in one session is never trained on in another. Training shifts
    and order use a per-session seed derived from ``seed``. Batches: see :func:`get_movie_dataloader`; the test
    loaders serve whole test movies (``allow_over_boundaries``) or ``clip_length`` chunks.
    """
    if set(neuron_data_dictionary) != set(movies_dictionary):
        raise DataFormatError(
            f"sessions differ: only in responses {sorted(set(neuron_data_dictionary) - set(movies_dictionary))}, "
            f"only in movies {sorted(set(movies_dictionary) - set(neuron_data_dictionary))}."
        )
    dataloaders: dict[str, dict[str, DataLoader]] = {_TRAIN: {}, _VALIDATION: {}}
    for session, responses in neuron_data_dictionary.items():
        movies = movies_dictionary[session]
        with error_context(f"session {session!r}"):
            responses.check_matching_stimulus(movies)
            clashes = sorted(_RESERVED_SPLIT_NAMES & set(movies.test_dict))
            if clashes:
                raise DataFormatError(f"test stimuli may not be named {clashes}: those are split names.")
            num_clips = shape_of(movies.train)[1] // clip_length
            if val_clip_indices is None:
                if not 0 <= num_val_clips < num_clips:
                    raise DataFormatError(
                        f"num_val_clips={num_val_clips} must be in [0, {num_clips}): the training movie has "
                        f"{shape_of(movies.train)[1]} frames = {num_clips} clips of {clip_length}."
                    )
                val_clips = np.random.RandomState(seed).choice(num_clips, num_val_clips, replace=False).tolist()
            else:
                val_clips = list(val_clip_indices)
            movie_train, movie_val, movie_test = generate_movie_splits(
                movies.train, movies.test_dict, val_clips, num_clips, clip_length
            )
            neuron_split = NeuronDataSplit(responses, val_clips, num_clips, clip_length, key=session)
            response_dict = neuron_split.response_dict
            dataloaders[_TRAIN][session] = get_movie_dataloader(
                movie_train,
                response_dict["train"],
                split=_TRAIN,
                scene_length=clip_length,
                chunk_size=train_chunk_size,
                batch_size=batch_size,
                allow_over_boundaries=allow_over_boundaries,
                seed=_session_seed(seed, session),
            )
            dataloaders[_VALIDATION][session] = get_movie_dataloader(
                movie_val,
                response_dict["validation"],
                split=_VALIDATION,
                scene_length=clip_length,
                chunk_size=clip_length,
                batch_size=batch_size,
                allow_over_boundaries=allow_over_boundaries,
            )
            for name, movie in movie_test.items():
                test_chunk = movie.shape[1] if allow_over_boundaries else clip_length
                dataloaders.setdefault(name, {})[session] = get_movie_dataloader(
                    movie,
                    response_dict["test"][name],
                    split=_TEST,
                    scene_length=clip_length,
                    chunk_size=test_chunk,
                    batch_size=_compute_test_batch_size(batch_size, train_chunk_size, test_chunk),
                    allow_over_boundaries=allow_over_boundaries,
                )
    return dataloaders
