"""Dataloaders for the Höfling et al. 2024 natural movies: one movie, many presentation orders, two eyes.

Every recording field saw the 108 training clips in one of 20 presentation orders (``random_sequences[:, s]``
lists the clip id shown at each position of order ``s``), and fields of the left eye see the movie mirrored along
its width. The reference built a full copy of the training movie for each order and eye (40 copies, ~20 GB at
72 x 64 pixels). Here there is exactly one resident movie: each order is a frame table over it
(:class:`~openretina.data_io._frame_view.FrameView`) and the mirror image is produced per batch
(:class:`MirroredFrameView`), so memory does not grow with the number of orders, eyes or sessions.

Batches are the generic ones: ``DataPoint(inputs float32 (B, 2, T_chunk, H, W), targets float32 (B, T_chunk, N))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from openretina.data_io._arrays import ArrayLike, shape_of
from openretina.data_io._frame_view import FrameView
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit, error_context
from openretina.data_io.base_dataloader import (
    NeuronDataSplit,
    _compute_test_batch_size,
    _session_seed,
    get_movie_dataloader,
)
from openretina.data_io.hoefling_2024.constants import (
    CLIP_LENGTH,
    EYE_OVERRIDES,
    NUM_CLIPS,
    READOUT_GRID_SIZE,
    ROI_MASK_READOUT_OFFSET,
    ROI_MASK_TO_READOUT_SCALE,
)
from openretina.errors import DataFormatError, DataShapeError

EYES = ("right", "left")


class MirroredFrameView(FrameView):
    """A :class:`FrameView` of a movie ``(C, T, H, W)`` whose frames are mirrored along the width (last) axis.

    The flip happens on each gathered batch, so the mirrored movie never exists as a whole in memory.
    """

    def take(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Mirrored windows, e.g. ``(B, C, L, H, W)``; arguments as for :meth:`FrameView.take` (which every other
        reading method goes through)."""
        return super().take(*args, **kwargs).flip(-1)

    def select(self, frames: np.ndarray) -> MirroredFrameView:
        """A mirrored view of the selected frames of this view."""
        return MirroredFrameView(self.source, self.time_axis, self.frames[np.asarray(frames, np.int64)])

    def shared_tensor(self) -> torch.Tensor | None:
        """Always None: the mirrored movie cannot share the source's memory."""
        return None


def _check_random_sequences(random_sequences: np.ndarray, num_clips: int) -> np.ndarray:
    sequences = np.asarray(random_sequences).astype(np.int64)
    if sequences.ndim != 2 or sequences.shape[0] != num_clips:
        raise DataShapeError(
            f"random_sequences must be (num_clips, n_sequences) = ({num_clips}, S), got shape {sequences.shape}."
        )
    expected = np.arange(num_clips)
    for s in range(sequences.shape[1]):
        if not np.array_equal(np.sort(sequences[:, s]), expected):
            raise DataFormatError(
                f"random_sequences[:, {s}] is not a permutation of the clip ids 0..{num_clips - 1}; every "
                "presentation order must show each clip exactly once."
            )
    return sequences


def _default_sequences(movie_train: ArrayLike, clip_length: int) -> np.ndarray:
    """A single presentation order showing the clips in id order (used when the movie has no ``random_sequences``)."""
    return np.arange(shape_of(movie_train)[1] // clip_length)[:, None]


def _clip_frames(clips: Sequence[int] | np.ndarray, clip_length: int) -> np.ndarray:
    return (np.asarray(clips, dtype=np.int64)[:, None] * clip_length + np.arange(clip_length)).reshape(-1)


def get_all_movie_combinations(
    train: ArrayLike,
    test: ArrayLike,
    random_sequences: np.ndarray | None,
    validation_clip_indices: Sequence[int],
    num_clips: int = NUM_CLIPS,
    clip_length: int = CLIP_LENGTH,
) -> dict[str, Any]:
    """Training, validation and test movies for both eyes and every presentation order, as views of ``train``.

    ``train``: ``(C, num_clips * clip_length, H, W)`` in clip-id order; ``test``: ``(C, T_test, H, W)``.
    Output: ``{"right": {"train": {s: view}, "validation": view, "test": view}, "left": (same, mirrored),
    "val_clip_idx": list}``. Training view ``s`` shows the clips in order ``random_sequences[:, s]`` without the
    validation clips; validation shows ``validation_clip_indices`` in the given order. No frame is copied.
    """
    sequences = _default_sequences(train, clip_length) if random_sequences is None else random_sequences
    sequences = _check_random_sequences(sequences, num_clips)
    val = [int(c) for c in validation_clip_indices]
    if len(set(val)) != len(val) or any(not 0 <= c < num_clips for c in val):
        raise DataFormatError(f"validation_clip_indices must be distinct clip ids in [0, {num_clips}), got {val}.")
    if shape_of(train)[1] < num_clips * clip_length:
        raise DataShapeError(
            f"the training movie has {shape_of(train)[1]} frames, fewer than {num_clips} clips x {clip_length}."
        )
    is_val = np.isin(sequences, val)
    combinations: dict[str, Any] = {"val_clip_idx": val}
    for eye, view in (("right", FrameView), ("left", MirroredFrameView)):
        combinations[eye] = {
            "train": {
                s: view(train, 1, _clip_frames(sequences[~is_val[:, s], s], clip_length))
                for s in range(sequences.shape[1])
            },
            "validation": view(train, 1, _clip_frames(val, clip_length)),
            "test": view(test, 1),
        }
    return combinations


def gen_start_indices(
    random_sequences: np.ndarray | None,
    val_clip_idx: Sequence[int],
    clip_length: int,
    chunk_size: int,
    num_clips: int,
) -> dict[str, Any]:
    """Chunk start frames: ``{"train": {s: [0, chunk, ...]}, "validation": [0, clip_length, ...], "test": [0]}``.

    Training starts cover the ``num_clips - len(val_clip_idx)`` training clips of every presentation order ``s``
    (a dict also for a single order, unlike the reference, whose plain list was then indexed by sequence).
    """
    n_sequences = 1 if random_sequences is None else np.asarray(random_sequences).shape[1]
    train_frames = clip_length * (num_clips - len(val_clip_idx))
    train_starts = list(range(0, train_frames, chunk_size))
    return {
        "train": {s: list(train_starts) for s in range(n_sequences)},
        "validation": list(range(0, clip_length * len(val_clip_idx), clip_length)),
        "test": [0],
    }


def roi_coords_from_mask(roi_mask: np.ndarray, roi_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Readout positions of ROIs in ``[-1, 1]``: float32 ``(N, 2)`` as ``(y, x)``.

    ``roi_mask``: ``(height, width)`` image at 2 µm per pixel whose ROI pixels hold ``-roi_id``. The mean pixel
    position of each ROI is converted to 50 µm readout pixels, shifted into the 8-pixel readout grid and scaled.
    """
    mask = np.asarray(roi_mask)
    coords = np.empty((len(roi_ids), 2), dtype=np.float32)
    for i, roi_id in enumerate(np.asarray(roi_ids).reshape(-1).tolist()):
        pixels = np.argwhere(mask == -roi_id)
        if not len(pixels):
            raise DataFormatError(f"ROI {roi_id} has no pixel in roi_mask (pixels hold -roi_id); check roi_ids.")
        position = pixels.mean(axis=0) / ROI_MASK_TO_READOUT_SCALE + ROI_MASK_READOUT_OFFSET
        coords[i] = (position / READOUT_GRID_SIZE - 0.5) * 2
    return coords


class NeuronDataSplitHoefling(NeuronDataSplit):
    """Responses of one recording field split into training and validation clips of its presentation order.

    The field's training responses ``(N, num_clips * clip_length)`` are in recorded order, i.e. clip
    ``random_sequences[p, scan_sequence_idx]`` at position ``p``. Validation takes, for each validation clip id,
    the recorded clip showing it; training keeps the other positions in recorded order (or, with
    ``use_base_sequence``, in clip-id order). Both are index views (no copies). Test responses: see
    :class:`NeuronDataSplit` (per-trial ``(R, N, T)``). ``roi_coords``: from ``roi_mask`` and ``roi_ids``, or None.
    """

    def __init__(
        self,
        neural_responses: ResponsesTrainTestSplit,
        val_clip_idx: Sequence[int],
        num_clips: int,
        clip_length: int,
        roi_mask: np.ndarray | None = None,
        roi_ids: np.ndarray | None = None,
        scan_sequence_idx: int = 0,
        random_sequences: np.ndarray | None = None,
        eye: str = "right",
        group_assignment: np.ndarray | None = None,
        key: str | None = None,
        use_base_sequence: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(neural_responses, val_clip_idx, num_clips, clip_length, key=key)
        if eye not in EYES:
            raise DataFormatError(f"eye must be one of {EYES}, got {eye!r}.")
        frames = shape_of(neural_responses.train)[1]
        if frames != num_clips * clip_length:
            raise DataShapeError(
                f"training responses have {frames} time bins, expected {num_clips} clips x {clip_length} = "
                f"{num_clips * clip_length}."
            )
        sequences = np.arange(num_clips)[:, None] if random_sequences is None else random_sequences
        sequences = _check_random_sequences(sequences, num_clips)
        if not 0 <= scan_sequence_idx < sequences.shape[1]:
            raise DataFormatError(
                f"scan_sequence_idx {scan_sequence_idx} is out of range for {sequences.shape[1]} presentation orders."
            )
        self.order = sequences[:, scan_sequence_idx]
        self.scan_sequence_idx = scan_sequence_idx
        self.eye = eye
        self.use_base_sequence = use_base_sequence
        self.roi_ids = roi_ids
        self.group_assignment = group_assignment
        self.roi_coords = None if roi_mask is None or roi_ids is None else roi_coords_from_mask(roi_mask, roi_ids)

    def split_data_train_val(self) -> tuple[FrameView, FrameView]:
        """``(train (T_train, N), validation (T_val, N))`` views in the order described in the class docstring."""
        position_of_clip = np.argsort(self.order)
        val_positions = position_of_clip[self.val_clip_idx]
        if self.use_base_sequence:
            train_positions = position_of_clip[np.setdiff1d(np.arange(self.num_clips), self.val_clip_idx)]
        else:
            train_positions = np.flatnonzero(~np.isin(self.order, self.val_clip_idx))
        return (
            self.responses_train_and_val.select(_clip_frames(train_positions, self.clip_length)),
            self.responses_train_and_val.select(_clip_frames(val_positions, self.clip_length)),
        )


def natmov_dataloaders_v2(
    neuron_data_dictionary: dict[str, ResponsesTrainTestSplit],
    movies_dictionary: MoviesTrainTestSplit,
    validation_clip_indices: Sequence[int],
    train_chunk_size: int = 50,
    batch_size: int = 32,
    num_clips: int = NUM_CLIPS,
    clip_length: int = CLIP_LENGTH,
    allow_over_boundaries: bool = True,
    *,
    seed: int | None = None,
) -> dict[str, dict[str, DataLoader]]:
    """Train, validation and test DataLoaders of every recording field, all over the one shared movie.

    ``movies_dictionary`` is the single :class:`MoviesTrainTestSplit` of :func:`..stimuli.movies_from_pickle`
    (the reference's name is kept). Each field's ``session_kwargs`` give its ``eye`` ("right" unless stated,
    overridden by ``EYE_OVERRIDES``), ``scan_sequence_idx`` (default 0), ``roi_ids``, ``roi_mask`` and
    ``group_assignment``. Returns ``{"train": {field: loader}, "validation": {...}, "test": {...}}``; training
    chunks of ``train_chunk_size`` frames, validation whole clips, test the whole 750-frame test movie. ``seed``
    (keyword-only, an addition) fixes the training shifts and order per field.
    """
    movie = movies_dictionary
    sequences = movie.random_sequences
    combinations = get_all_movie_combinations(
        movie.train, movie.test_movie, sequences, validation_clip_indices, num_clips, clip_length
    )
    val_clips = combinations["val_clip_idx"]
    starts = gen_start_indices(sequences, val_clips, clip_length, train_chunk_size, num_clips)
    test_frames = shape_of(movie.test_movie)[1]
    loaders: dict[str, dict[str, DataLoader]] = {"train": {}, "validation": {}, "test": {}}
    for session, responses in neuron_data_dictionary.items():
        with error_context(f"recording field {session!r}"):
            if responses.stim_id != "natural":
                raise DataFormatError(
                    f"responses have stim_id {responses.stim_id!r}; natural-movie loaders need 'natural'."
                )
            responses.check_matching_stimulus(movie)
            info = responses.session_kwargs
            split = NeuronDataSplitHoefling(
                responses,
                val_clips,
                num_clips,
                clip_length,
                roi_mask=info.get("roi_mask"),
                roi_ids=info.get("roi_ids"),
                scan_sequence_idx=int(info.get("scan_sequence_idx", 0)),
                random_sequences=sequences,
                eye=EYE_OVERRIDES.get(session, str(info.get("eye", "right"))),
                group_assignment=info.get("group_assignment"),
                key=session,
            )
            views = combinations[split.eye]
            common: dict[str, Any] = {
                "roi_ids": split.roi_ids,
                "roi_coords": split.roi_coords,
                "group_assignment": split.group_assignment,
                "allow_over_boundaries": allow_over_boundaries,
                "scene_length": clip_length,
            }
            loaders["train"][session] = get_movie_dataloader(
                views["train"][split.scan_sequence_idx],
                split.response_dict["train"],
                split="train",
                chunk_size=train_chunk_size,
                batch_size=batch_size,
                start_indices=starts["train"][split.scan_sequence_idx],
                seed=None if seed is None else _session_seed(seed, session),
                **common,
            )
            loaders["validation"][session] = get_movie_dataloader(
                views["validation"],
                split.response_dict["validation"],
                split="validation",
                chunk_size=clip_length,
                batch_size=batch_size,
                start_indices=starts["validation"],
                **common,
            )
            loaders["test"][session] = get_movie_dataloader(
                views["test"],
                split.response_dict["test"]["test"],
                split="test",
                chunk_size=test_frames,
                batch_size=_compute_test_batch_size(batch_size, train_chunk_size, test_frames),
                start_indices=starts["test"],
                **common,
            )
    return loaders
