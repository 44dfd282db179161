"""White-noise ("WN") dataset of Sridhar et al. 2025: one ``all_images.npy`` per trial, read lazily.

Trial ``t`` is ``dir/<trial_prefix>_<t:03d>/all_images.npy`` and the test sequence ``dir/all_images.npy``, each
``(height, width, frames)``. A trial is memory-mapped, cropped, subsampled and turned time-first ``(frames, h, w)``
float32 once, then kept in a least-recently-used cache of ``cache_maxsize`` trials (the reference evicted the most
recently *inserted* trial); :class:`~openretina.data_io.sridhar_2025.dataloaders.ChunkedSampler` serves the chunks
trial by trial so each file is read once per epoch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openretina.data_io._arrays import check_finite
from openretina.data_io.sridhar_2025._chunking import Crop, TrialChunkDataset, crop_margins, frame_overhead
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError

IMAGE_FILE = "all_images.npy"


def trial_image_path(folder: str | Path, trial: int | None, trial_prefix: str = "trial") -> Path:
    """``folder/<trial_prefix>_<trial:03d>/all_images.npy``, or ``folder/all_images.npy`` for ``trial=None``."""
    return Path(folder) / IMAGE_FILE if trial is None else Path(folder) / f"{trial_prefix}_{trial:03d}" / IMAGE_FILE


class NoiseDataset(TrialChunkDataset):
    """Chunks of the white-noise trials (or of the repeated test sequence) with the responses to them.

    Args:
        responses: one session of :func:`~openretina.data_io.sridhar_2025.responses.load_responses`.
        dir: folder of the trial sub-folders (training/validation) or of the test ``all_images.npy``.
        data_keys: accepted for compatibility; must be empty or ``("inputs", "targets")``.
        indices: training/validation trial ids (ignored for ``test=True``).
        use_cache, cache_maxsize: keep up to ``cache_maxsize`` prepared trials in memory (LRU); without the cache
            each item reads its frames from the memory-mapped file.
        crop: ``(top, bottom, left, right)`` pixels removed (one int: every side); ``subsample``: pixel stride.
        extra_frame: additional delay, in frames, of the targets after the input window.
        device: unused (batches stay on the CPU; Lightning moves them).
        The remaining arguments set the chunk geometry (see :mod:`._chunking`).

    Items: ``DataPoint(inputs float32 (1, L, h, w), targets float32 (time_chunk_size, N))``, stimulus values as
    stored (no scaling); test datasets add ``responses (T_test, N)``, ``movies (1, T_test, h, w)`` and
    ``test_responses_by_trial (R, N, T_test)``.
    """

    def __init__(
        self,
        responses: Mapping[str, Any],
        dir: str | Path,
        *data_keys: str,
        indices: Sequence[int] | np.ndarray | None,
        use_cache: bool = True,
        trial_prefix: str = "trial",
        test: bool = False,
        cache_maxsize: int = 5,
        crop: Crop = 20,
        subsample: int = 1,
        num_of_frames: int | Sequence[int] = 15,
        num_of_layers: int = 1,
        device: str = "cpu",
        time_chunk_size: int = 1,
        temporal_dilation: int = 1,
        hidden_temporal_dilation: int | Sequence[int] = 1,
        num_of_hidden_frames: int | Sequence[int] = 15,
        extra_frame: int = 0,
        locations: np.ndarray | None = None,
        excluded_cells: Sequence[int] | None = None,
    ) -> None:
        overhead = frame_overhead(
            num_of_frames, num_of_hidden_frames, num_of_layers, temporal_dilation, hidden_temporal_dilation
        )
        name = f"white-noise {'test' if test else 'training'} data in {str(dir)!r}"
        super().__init__(
            responses, indices, test=test, time_chunk_size=time_chunk_size, overhead=overhead, extra_frame=extra_frame,
            excluded_cells=excluded_cells, locations=locations, data_keys=data_keys, name=name,
        )  # fmt: skip
        if subsample < 1:
            raise DataFormatError(f"{name}: subsample must be >= 1, got {subsample}.")
        self.dir, self.trial_prefix = Path(dir), trial_prefix
        self.use_cache, self.cache_maxsize = use_cache, max(1, cache_maxsize)
        self._margins, self._subsample = crop_margins(crop), subsample
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        for trial in [None] if test else sorted(set(self.trial_ids.tolist())):
            self._open(trial)  # fail now, naming the file, rather than in the middle of an epoch

    def _open(self, trial: int | None) -> np.ndarray:
        """The trial's cropped, subsampled frames as a (memory-mapped) ``(h, w, T)`` view."""
        path = trial_image_path(self.dir, trial, self.trial_prefix)
        if not path.is_file():
            raise DataFileNotFoundError(f"{self.name}: stimulus file {str(path)!r} does not exist.")
        images = np.load(path, mmap_mode="r")
        if images.ndim != 3 or images.shape[2] < self.trial_length:
            raise DataShapeError(
                f"{self.name}: {str(path)!r} must be (height, width, frames) with at least {self.trial_length} frames "
                f"(the responses' trial length), got shape {images.shape}."
            )
        top, bottom, left, right = self._margins
        step = self._subsample
        cropped = images[top : images.shape[0] - bottom : step, left : images.shape[1] - right : step]
        if not (cropped.shape[0] and cropped.shape[1]):
            raise DataFormatError(f"{self.name}: crop {self._margins} leaves nothing of {str(path)!r} {images.shape}.")
        return cropped

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the served frames after cropping and subsampling."""
        view = self._open(None if self.test else int(self.trial_ids[0]))
        return int(view.shape[0]), int(view.shape[1])

    def _trial_frames(self, trial: int) -> np.ndarray:
        """Time-first float32 ``(T, h, w)`` frames of a trial, through the LRU cache."""
        if trial in self._cache:
            self._cache.move_to_end(trial)
            return self._cache[trial]
        frames = np.ascontiguousarray(self._open(None if self.test else trial).transpose(2, 0, 1), dtype=np.float32)
        check_finite(frames, f"{self.name}: {str(trial_image_path(self.dir, None if self.test else trial))!r}")
        if self.use_cache:
            self._cache[trial] = frames
            if len(self._cache) > self.cache_maxsize:
                self._cache.popitem(last=False)
        return frames

    def _render(self, trials: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        if self.use_cache:
            chunks = [self._trial_frames(int(t))[s : s + length] for t, s in zip(trials, starts, strict=True)]
        else:  # read only the needed frames from the memory map
            chunks = [
                self._open(None if self.test else int(t))[..., s : s + length].transpose(2, 0, 1).astype(np.float32)
                for t, s in zip(trials, starts, strict=True)
            ]
        return np.stack(chunks)
