"""Trial-wise chunking shared by the Sridhar et al. 2025 datasets (natural movie and white noise).

A recording is a set of trials of ``T_trial`` frames (training/validation) or one repeated test sequence. Each trial
is cut into ``K`` chunks: chunk ``p`` shows frames ``[p * time_chunk_size, p * time_chunk_size + L)`` with
``L = time_chunk_size + frame_overhead``, and its targets are the ``time_chunk_size`` responses that a stack of valid
temporal convolutions can predict from them (frames ``[start + frame_overhead + extra_frame, start + L +
extra_frame)``). Consecutive chunks therefore overlap by ``frame_overhead`` frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from openretina.data_io._arrays import check_finite
from openretina.data_io.base_dataloader import DataPoint
from openretina.errors import DataFormatError, DataShapeError, InsufficientFramesError

Crop = int | Sequence[int]


def crop_margins(crop: Crop) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` pixels to remove; one int crops every side by the same amount."""
    margins = (int(crop),) * 4 if isinstance(crop, int | np.integer) else tuple(int(c) for c in crop)
    if len(margins) != 4 or min(margins) < 0:
        raise DataFormatError(f"crop must be one int or 4 non-negative ints (top, bottom, left, right), got {crop!r}.")
    return margins[0], margins[1], margins[2], margins[3]


def hidden_layer_frames(
    num_of_frames: int | Sequence[int], num_of_hidden_frames: int | Sequence[int], num_of_layers: int
) -> tuple[int, list[int]]:
    """Temporal kernel length of the first layer and of each further layer.

    ``num_of_frames`` as a list (e.g. a config's ``temporal_kernel_sizes``) gives all layers and must have
    ``num_of_layers`` entries; as an int it is the first layer's, and ``num_of_hidden_frames`` (int or list) the
    others'.
    """
    if not isinstance(num_of_frames, int | np.integer):
        kernels = [int(k) for k in num_of_frames]
        if len(kernels) != num_of_layers:
            raise DataFormatError(
                f"num_of_frames {kernels} lists {len(kernels)} layers but num_of_layers is {num_of_layers}."
            )
        return kernels[0], kernels[1:]
    if isinstance(num_of_hidden_frames, int | np.integer):
        return int(num_of_frames), [int(num_of_hidden_frames)] * (num_of_layers - 1)
    hidden = [int(k) for k in num_of_hidden_frames]
    if len(hidden) != num_of_layers - 1:
        raise DataFormatError(
            f"num_of_hidden_frames {hidden} must have num_of_layers - 1 = {num_of_layers - 1} entries."
        )
    return int(num_of_frames), hidden


def frame_overhead(
    num_of_frames: int | Sequence[int],
    num_of_hidden_frames: int | Sequence[int] = 15,
    num_of_layers: int = 1,
    temporal_dilation: int = 1,
    hidden_temporal_dilation: int | Sequence[int] = 1,
) -> int:
    """Frames a stack of valid temporal convolutions consumes before its first output:
    ``(k_0 - 1) * temporal_dilation + sum_i (k_i - 1) * hidden_dilation_i``."""
    first, hidden = hidden_layer_frames(num_of_frames, num_of_hidden_frames, num_of_layers)
    if isinstance(hidden_temporal_dilation, int | np.integer):
        dilations = [int(hidden_temporal_dilation)] * len(hidden)
    else:
        dilations = [int(d) for d in hidden_temporal_dilation]
        if len(dilations) != len(hidden):
            raise DataFormatError(f"hidden_temporal_dilation {dilations} must have {len(hidden)} entries.")
    return (first - 1) * int(temporal_dilation) + sum((k - 1) * d for k, d in zip(hidden, dilations, strict=True))


def _float_array(responses: Mapping[str, Any], key: str, ndim: int, session: str) -> np.ndarray:
    if key not in responses:
        raise DataFormatError(f"{session}: responses lack the key {key!r}; found {sorted(responses)}.")
    array = np.asarray(responses[key], dtype=np.float32)
    if array.ndim != ndim:
        raise DataShapeError(f"{session}: responses[{key!r}] must have {ndim} dimensions, got shape {array.shape}.")
    check_finite(array, f"{session}: responses[{key!r}]")
    return array


def _kept_neurons(n_neurons: int, excluded_cells: Sequence[int] | None) -> np.ndarray:
    return np.setdiff1d(np.arange(n_neurons), np.asarray(excluded_cells or [], dtype=np.int64))


class TrialChunkDataset(Dataset):
    """Chunks of trials with pre-trimmed targets; subclasses render the stimulus frames (:meth:`_render`).

    ``responses`` is one session's entry of :func:`~openretina.data_io.sridhar_2025.responses.load_responses`:
    ``train_responses (N, T_trial, n_trials)``, ``test_responses (N, T_test)``, ``test_responses_by_trial
    (N, T_test, R)`` or None. Items: ``DataPoint(inputs float32 (1, L, h, w), targets float32 (time_chunk_size,
    N))``; a batch from :meth:`__getitems__` adds a leading batch axis. Test datasets also accept a slice, which
    selects frames of the whole test movie: ``DataPoint((1, T_sel, h, w), (T_sel, N))``.
    """

    def __init__(
        self,
        responses: Mapping[str, Any],
        indices: Sequence[int] | np.ndarray | None,
        *,
        test: bool,
        time_chunk_size: int,
        overhead: int,
        extra_frame: int = 0,
        excluded_cells: Sequence[int] | None = None,
        locations: np.ndarray | None = None,
        data_keys: Sequence[str] = (),
        name: str = "session",
    ) -> None:
        if data_keys and tuple(data_keys) != DataPoint._fields:
            raise DataFormatError(f"{name}: data_keys {tuple(data_keys)} are not supported; items are DataPoint"
                                  f"{DataPoint._fields}.")  # fmt: skip
        if time_chunk_size < 1 or overhead < 0 or extra_frame < 0:
            raise DataFormatError(
                f"{name}: need time_chunk_size >= 1, frame overhead >= 0 and extra_frame >= 0, got "
                f"{time_chunk_size}, {overhead}, {extra_frame}."
            )
        self.name, self.test = name, test
        self.time_chunk_size, self.frame_overhead, self.extra_frame = time_chunk_size, overhead, extra_frame
        self._by_trial: np.ndarray | None = None
        if test:
            self._load_test(responses, excluded_cells)
        else:
            self._load_train(responses, excluded_cells, indices)
        self.trial_length = self._targets.shape[1]
        self.chunks_per_trial = (self.trial_length - overhead - extra_frame) // time_chunk_size
        if self.chunks_per_trial < 1:
            raise InsufficientFramesError(
                f"{name}: trials of {self.trial_length} frames are shorter than one chunk of {time_chunk_size} frames "
                f"plus the {overhead} frames of temporal context (+{extra_frame}); use a smaller time_chunk_size."
            )
        self.locations = None if locations is None else np.asarray(locations)
        if self.locations is not None and len(self.locations) != self.n_neurons:
            raise DataShapeError(f"{name}: {len(self.locations)} locations for {self.n_neurons} neurons.")

    def _load_test(self, responses: Mapping[str, Any], excluded_cells: Sequence[int] | None) -> None:
        """The trial-averaged test sequence as the only "trial" ``(1, T_test, N)``; repeats as ``(R, N, T_test)``."""
        average = _float_array(responses, "test_responses", 2, self.name)
        keep = _kept_neurons(average.shape[0], excluded_cells)
        self._targets = np.ascontiguousarray(average[keep].T)[None]
        self.trial_ids = np.zeros(1, dtype=np.int64)
        if responses.get("test_responses_by_trial") is not None:
            by_trial = _float_array(responses, "test_responses_by_trial", 3, self.name)
            if by_trial.shape[:2] != average.shape:
                raise DataShapeError(
                    f"{self.name}: responses['test_responses_by_trial'] {by_trial.shape} must be (N, T_test, R) with "
                    f"(N, T_test) = {average.shape} of responses['test_responses']."
                )
            self._by_trial = by_trial[keep].transpose(2, 0, 1)

    def _load_train(
        self,
        responses: Mapping[str, Any],
        excluded_cells: Sequence[int] | None,
        indices: Sequence[int] | np.ndarray | None,
    ) -> None:
        """All recorded trials as ``(n_trials, T_trial, N)`` and the ids of the trials this dataset serves."""
        train = _float_array(responses, "train_responses", 3, self.name)
        keep = _kept_neurons(train.shape[0], excluded_cells)
        self._targets = np.ascontiguousarray(train[keep].transpose(2, 1, 0))
        self.trial_ids = np.asarray([] if indices is None else indices, dtype=np.int64)
        bad = self.trial_ids[(self.trial_ids < 0) | (self.trial_ids >= len(self._targets))]
        if bad.size:
            raise DataFormatError(f"{self.name}: trial indices {bad.tolist()} outside the {len(self._targets)} trials.")

    # ------------------------------------------------------------------ geometry
    @property
    def chunk_size(self) -> int:
        """Input frames per item: ``L = time_chunk_size + frame_overhead``."""
        return self.time_chunk_size + self.frame_overhead

    @property
    def chunk_starts(self) -> list[int]:
        """Start frame of each chunk within its trial (the same for every trial)."""
        return [p * self.time_chunk_size for p in range(self.chunks_per_trial)]

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the served frames."""
        raise NotImplementedError

    @property
    def n_neurons(self) -> int:
        """Number of neurons ``N``."""
        return int(self._targets.shape[2])

    def __len__(self) -> int:
        return len(self.trial_ids) * self.chunks_per_trial

    def _locate(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Trial ids and start frames of item numbers."""
        if items.size and (items.min() < 0 or items.max() >= len(self)):
            raise IndexError(f"{self.name}: items {items.tolist()} outside [0, {len(self)}).")
        return self.trial_ids[items // self.chunks_per_trial], (items % self.chunks_per_trial) * self.time_chunk_size

    # ------------------------------------------------------------------ items
    def _render(self, trials: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        """Stimulus frames ``[start, start + length)`` of each trial: ``(B, length, h, w)``, any float dtype."""
        raise NotImplementedError

    def __getitems__(self, items: Sequence[int]) -> DataPoint:
        """A batch: ``DataPoint(inputs (B, 1, L, h, w), targets (B, time_chunk_size, N))``, float32."""
        trials, starts = self._locate(np.asarray(items, dtype=np.int64))
        inputs = self._render(trials, starts, self.chunk_size)[:, None]
        offsets = starts[:, None] + self.frame_overhead + self.extra_frame + np.arange(self.time_chunk_size)
        targets = self._targets[trials[:, None], offsets]
        # torch converts float16 -> float32 several times faster than numpy.
        return DataPoint(torch.from_numpy(np.ascontiguousarray(inputs)).float(), torch.from_numpy(targets))

    def __getitem__(self, idx: int | slice) -> DataPoint:
        """Item number ``idx`` (``(1, L, h, w)``, ``(time_chunk_size, N)``) or, for test data, a slice of frames."""
        if isinstance(idx, slice):
            if not self.test:
                raise IndexError(f"{self.name}: slices select frames of the test movie; index training data by item.")
            return DataPoint(self.movies[:, idx], self.responses[idx])
        batch = self.__getitems__([int(idx)])
        return DataPoint(batch.inputs[0], batch.targets[0])

    # ------------------------------------------------------------------ test extras
    def _require_test(self, what: str) -> None:
        if not self.test:
            raise AttributeError(f"{self.name}: {what} exists only for the test dataset (test=True).")

    @property
    def responses(self) -> torch.Tensor:
        """Trial-averaged test responses, float32 ``(T_test, N)`` (test datasets only)."""
        self._require_test("responses")
        return torch.from_numpy(self._targets[0])

    @cached_property
    def test_responses_by_trial(self) -> torch.Tensor | None:
        """Per-repeat test responses, float32 ``(R, N, T_test)`` (the project's one per-trial layout), or None."""
        return None if self._by_trial is None else torch.from_numpy(np.ascontiguousarray(self._by_trial))

    @cached_property
    def movies(self) -> torch.Tensor:
        """The whole test movie, float32 ``(1, T_test, h, w)``, rendered once (test datasets only)."""
        self._require_test("movies")
        whole = self._render(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), self.trial_length)
        return torch.from_numpy(whole).float()

    # ------------------------------------------------------------------ receptive fields
    def get_locations(self, cell: int) -> np.ndarray:
        """Receptive-field centre ``(row, col)`` of neuron ``cell`` (in cropped stimulus pixels)."""
        return self.get_all_locations()[cell]

    def get_all_locations(self) -> np.ndarray:
        """Receptive-field centres of all neurons, ``(N, 2)``."""
        if self.locations is None:
            raise DataFormatError(f"{self.name}: no receptive-field locations were given (get_locations=False?).")
        return self.locations
