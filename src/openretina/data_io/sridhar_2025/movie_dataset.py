"""Natural-movie ("NM") dataset of Sridhar et al. 2025: frames rendered on the fly from images and fixations.

Every displayed frame is a window of one image, centred on that frame's fixation point, optionally mirrored.
Nothing is pre-rendered: the images are held once (``(n_images, full_img_w, full_img_h)``, as
:func:`~openretina.data_io.sridhar_2025.stimuli.load_frames` returns them) and a batch is gathered from them with
one strided copy per frame of only the pixels that survive the crop and subsampling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openretina.data_io.sridhar_2025._chunking import Crop, TrialChunkDataset, crop_margins, frame_overhead
from openretina.data_io.sridhar_2025.constants import TEST_DATA_FRAMES
from openretina.data_io.sridhar_2025.stimuli import load_frames
from openretina.errors import DataFormatError, DataShapeError

_FIXATION_KEYS = ("img_index", "center_x", "center_y", "flip")


def fixation_table(fixations: Sequence[Mapping[str, int]] | np.ndarray) -> np.ndarray:
    """Fixations as an int64 table ``(n_lines, 4)``: image index, centre x, centre y, flip flag."""
    if isinstance(fixations, np.ndarray):
        table = fixations.astype(np.int64, copy=False)
    else:
        table = np.asarray([[f[key] for key in _FIXATION_KEYS] for f in fixations], dtype=np.int64).reshape(-1, 4)
    if table.ndim != 2 or table.shape[1] != 4:
        raise DataShapeError(f"fixations must be (n_lines, 4) = {_FIXATION_KEYS}, got shape {table.shape}.")
    return table


class MarmosetMovieDataset(TrialChunkDataset):
    """Chunks of the natural-movie trials (or of the test sequence) with the responses to them.

    Frame ``f`` of training trial ``t`` is fixation line ``test_frames + T_trial * t + f``; frame ``f`` of the test
    sequence is line ``f``. A line's window spans rows ``[cx + padding - img_w / 2, ... + img_w)`` and columns
    ``[cy + padding - img_h / 2, ... + img_h)`` of its image; columns are reversed when the flip flag is 0; the
    window is transposed to ``(img_h, img_w)``, cropped by ``crop = (top, bottom, left, right)`` and subsampled.

    Args:
        responses: one session of :func:`~openretina.data_io.sridhar_2025.responses.load_responses`.
        dir: data folder; images are read from ``dir/img_dir_name`` only when ``frames`` is None.
        data_keys: accepted for compatibility; must be empty or ``("inputs", "targets")``.
        indices: training/validation trial ids (ignored for ``test=True``).
        frames: images ``(n_images, full_img_w, full_img_h)``, values 0..1; shared, never copied.
        fixations: parsed fixation lines (:func:`~openretina.data_io.sridhar_2025.dataloaders.process_fixations`)
            or their ``(n_lines, 4)`` table.
        excluded_cells: neurons (indices into ``responses``) to drop here; loaders pass None because
            ``load_responses`` already dropped them.
        device: unused (batches stay on the CPU; Lightning moves them).
        locations: receptive-field centres ``(N, 2)``, or None.
        The remaining arguments set the chunk geometry (see :mod:`._chunking`).

    Items: ``DataPoint(inputs float32 (1, L, h, w), targets float32 (time_chunk_size, N))`` with
    ``L = time_chunk_size + frame_overhead``, ``h = (img_h - top - bottom) / subsample``, ``w = (img_w - left -
    right) / subsample``; test datasets add ``responses (T_test, N)``, ``movies (1, T_test, h, w)`` and
    ``test_responses_by_trial (R, N, T_test)`` (the reference used ``(R, T, N)`` here).
    """

    def __init__(
        self,
        responses: Mapping[str, Any],
        dir: str | Path,
        *data_keys: str,
        indices: Sequence[int] | np.ndarray | None,
        frames: np.ndarray | None,
        fixations: Sequence[Mapping[str, int]] | np.ndarray,
        temporal_dilation: int = 1,
        hidden_temporal_dilation: int | Sequence[int] = 1,
        test_frames: int = TEST_DATA_FRAMES,
        img_dir_name: str = "stimuli",
        frame_file: str = "_img_",
        test: bool = False,
        crop: Crop = 0,
        subsample: int = 1,
        num_of_frames: int | Sequence[int] = 15,
        num_of_hidden_frames: int | Sequence[int] = 15,
        num_of_layers: int = 1,
        device: str = "cpu",
        time_chunk_size: int = 1,
        full_img_w: int = 1000,
        full_img_h: int = 800,
        img_w: int = 800,
        img_h: int = 600,
        padding: int = 200,
        excluded_cells: Sequence[int] | None = None,
        locations: np.ndarray | None = None,
    ) -> None:
        overhead = frame_overhead(
            num_of_frames, num_of_hidden_frames, num_of_layers, temporal_dilation, hidden_temporal_dilation
        )
        name = f"natural-movie {'test' if test else 'training'} data in {str(dir)!r}"
        super().__init__(
            responses, indices, test=test, time_chunk_size=time_chunk_size, overhead=overhead,
            excluded_cells=excluded_cells, locations=locations, data_keys=data_keys, name=name,
        )  # fmt: skip
        if frames is None:
            frames = load_frames(Path(dir) / img_dir_name, frame_file, full_img_w, full_img_h)
        if frames.ndim != 3 or frames.shape[1:] != (full_img_w, full_img_h):
            raise DataShapeError(
                f"{name}: frames must be (n_images, full_img_w, full_img_h) = (n, {full_img_w}, {full_img_h}), got "
                f"{frames.shape}."
            )
        if subsample < 1 or img_w % 2 or img_h % 2:
            raise DataFormatError(
                f"{name}: need subsample >= 1 and even img_w/img_h, got {subsample}, {img_w}, {img_h}."
            )
        self.frames = frames
        self.test_frames = test_frames
        self.fixations = fixation_table(fixations)
        top, bottom, left, right = crop_margins(crop)
        # Kept rows / columns of the (img_h, img_w) window: top + r * subsample, left + c * subsample.
        self._frame_shape = (len(range(top, img_h - bottom, subsample)), len(range(left, img_w - right, subsample)))
        if not all(self._frame_shape):
            raise DataFormatError(f"{name}: crop {crop!r} leaves nothing of the {img_h} x {img_w} window.")
        self._top, self._left, self._subsample, self._img_h = top, left, subsample, img_h
        # Window origin in the image for each fixation line: x along image axis 0, y along axis 1.
        self._x0 = self.fixations[:, 1] + padding - img_w // 2
        self._y0 = self.fixations[:, 2] + padding - img_h // 2
        self._check_fixations(full_img_w, full_img_h, img_w, img_h)

    @property
    def num_of_imgs(self) -> int:
        """Number of images the frames are drawn from."""
        return int(self.frames.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the rendered frames after cropping and subsampling."""
        return self._frame_shape

    def _lines(self, trials: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        """Fixation line of every frame: ``(B, length)``."""
        first = starts if self.test else self.test_frames + self.trial_length * trials + starts
        return first[:, None] + np.arange(length)

    def _check_fixations(self, full_img_w: int, full_img_h: int, img_w: int, img_h: int) -> None:
        """Every line this dataset shows exists, names an existing image and keeps its window inside the image."""
        if self.test and self.trial_length > self.test_frames:
            raise DataFormatError(
                f"{self.name}: the test responses have {self.trial_length} frames but only the first "
                f"{self.test_frames} fixation lines are the test sequence."
            )
        trials = np.zeros(1, dtype=np.int64) if self.test else np.unique(self.trial_ids)
        if not trials.size:
            return
        needed = self._lines(trials, np.zeros_like(trials), self.trial_length).ravel()
        if needed.max() >= len(self.fixations):
            raise DataFormatError(
                f"{self.name}: trial {int(trials[-1])} needs fixation line {int(needed.max())} but the fixation file "
                f"has {len(self.fixations)} lines ({self.test_frames} test lines + {self.trial_length} per trial)."
            )
        x0, y0, image = self._x0[needed], self._y0[needed], self.fixations[needed, 0]
        bad = (x0 < 0) | (x0 + img_w > full_img_w) | (y0 < 0) | (y0 + img_h > full_img_h)
        bad |= (image < 0) | (image >= self.num_of_imgs)
        if bad.any():
            line = int(needed[np.argmax(bad)])
            raise DataFormatError(
                f"{self.name}: fixation line {line} {self.fixations[line].tolist()} (image, x, y, flip) puts the "
                f"{img_w} x {img_h} window at ({int(self._x0[line])}, {int(self._y0[line])}) outside image of "
                f"{full_img_w} x {full_img_h} or names a missing image ({self.num_of_imgs} images); check padding, "
                "img_w/img_h and the fixation file."
            )

    def _render(self, trials: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
        lines = self._lines(trials, starts, length).ravel()
        (h, w), step = self.frame_shape, self._subsample
        out = np.empty((lines.size, h, w), dtype=self.frames.dtype)  # cast later, in one vectorised step
        # Output row r is image column y0 + top + r * step (mirrored: y0 + img_h - 1 - top - r * step) and output
        # column c is image row x0 + left + c * step: strided slices, so each frame copies only the kept pixels.
        mirrored = self.fixations[lines, 3] == 0
        x_first = self._x0[lines] + self._left
        y_first = self._y0[lines] + np.where(mirrored, self._img_h - 1 - self._top, self._top)
        x_span, y_span = (w - 1) * step + 1, (h - 1) * step + 1
        for k, (image, x, y, flip) in enumerate(zip(self.fixations[lines, 0], x_first, y_first, mirrored, strict=True)):
            if flip:  # a reversed slice stopping at -1 would mean "up to the end" to numpy: use None instead
                columns = slice(y, y - y_span if y >= y_span else None, -step)
            else:
                columns = slice(y, y + y_span, step)
            out[k] = self.frames[image, x : x + x_span : step, columns].T
        return out.reshape(len(trials), length, h, w)
