"""Lazy, copy-free selection of frames from a stimulus or response array.

The dataloaders cut training and validation clips out of one continuous recording. Instead of concatenating those
clips into new tensors (a full copy per split, and impossible for movies larger than RAM), a :class:`FrameView`
keeps the source array and a table mapping each frame of the split to a frame of the source. Batches are gathered
from the source only when requested, with one copy per batch.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np
import torch

from openretina.data_io._arrays import CHUNK_BYTES, ArrayLike, as_tensor_no_copy, shape_of
from openretina.data_io._batch_buffers import batch_buffers


class FrameView:
    """A read-only selection of frames along the time axis of ``source``.

    ``source`` is a numpy array, ``np.memmap``, torch tensor or h5py dataset; ``frames`` (int64, optional) lists the
    source frame of every frame of the view (default: all frames in order). ``shape`` is the source shape with the
    time axis resized to ``len(frames)``.
    """

    def __init__(self, source: ArrayLike, time_axis: int, frames: np.ndarray | None = None) -> None:
        self.source = source
        self.time_axis = time_axis
        source_frames = shape_of(source)[time_axis]
        self.is_identity = frames is None
        self.frames = np.arange(source_frames, dtype=np.int64) if frames is None else np.asarray(frames, np.int64)
        if self.frames.ndim != 1 or (
            self.frames.size and (self.frames.min() < 0 or self.frames.max() >= source_frames)
        ):
            raise IndexError(f"frame table must be 1-D with values in [0, {source_frames}), got {self.frames!r}")
        # View positions where a new run of consecutive source frames begins (e.g. after a removed validation clip).
        self._run_starts = np.flatnonzero(np.diff(self.frames) != 1) + 1
        # Batches are copied with torch, about twice as fast as numpy assignment here. numpy arrays and memmaps are
        # wrapped without copying (a memmap's pages are still read lazily from the file).
        self._tensor = as_tensor_no_copy(source)
        self._prefix = (slice(None),) * time_axis

    @property
    def shape(self) -> tuple[int, ...]:
        """Source shape with the time axis replaced by the number of selected frames."""
        shape = list(shape_of(self.source))
        shape[self.time_axis] = len(self.frames)
        return tuple(shape)

    def __len__(self) -> int:
        """Number of selected frames."""
        return len(self.frames)

    def select(self, frames: np.ndarray) -> FrameView:
        """A view of this view: ``frames`` index into this view's frames."""
        return FrameView(self.source, self.time_axis, self.frames[np.asarray(frames, np.int64)])

    def _window_shape(self, length: int) -> tuple[int, ...]:
        shape = list(shape_of(self.source))
        shape[self.time_axis] = length
        return tuple(shape)

    def _windows(self, source: torch.Tensor, length: int) -> torch.Tensor:
        """Every window of ``length`` frames of ``source`` as one strided view ``(T - length + 1, *window shape)``."""
        axis = self.time_axis
        size = (source.shape[axis] - length + 1, *self._window_shape(length))
        return source.as_strided(size, (source.stride(axis), *source.stride()), source.storage_offset())

    @functools.cached_property
    def _source_dtype(self) -> torch.dtype:
        return self._tensor.dtype if self._tensor is not None else self._read(0, 1).dtype

    def take(self, starts: Sequence[int] | np.ndarray, length: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Gather windows ``[start, start + length)`` of this view's frames, one per entry of ``starts`` (``B``).

        Output: contiguous ``dtype`` tensor ``(B, *shape)`` with the time axis of length ``length``, e.g.
        ``(B, C, L, H, W)`` for a movie ``(C, T, H, W)``. Each window is one slice of the source (so only its frames
        are read from a memmap/HDF5 file), or one slice per run of consecutive source frames if it spans a gap.
        """
        starts = np.asarray(starts, dtype=np.int64)
        if starts.size == 0 or length == 0:
            return torch.empty((starts.size, *self._window_shape(length)), dtype=dtype)
        self._check_windows(starts, length)
        spanning = np.searchsorted(self._run_starts, starts, side="right") != np.searchsorted(
            self._run_starts, starts + length - 1, side="right"
        )
        # A window inside one run of consecutive source frames is one slice of the source. Spanning windows are
        # filled run by run below (their first gather reads a placeholder window at source frame 0).
        firsts = np.where(spanning, 0, self.frames[starts])
        shape = (starts.size, *self._window_shape(length))
        if self._tensor is not None and length <= self._tensor.shape[self.time_axis]:
            # One gather from a strided view of every window of the source: ~25 % faster than stacking slices.
            stacked = batch_buffers.empty(shape, self._tensor.dtype)
            torch.index_select(self._windows(self._tensor, length), 0, torch.from_numpy(firsts), out=stacked)
        else:  # h5py, read window by window so that only those frames leave the file; or windows longer than the
            # source (a view repeating frames), which all span runs
            stacked = batch_buffers.empty(shape, self._source_dtype)
            for b in np.flatnonzero(~spanning).tolist():
                stacked[b].copy_(self._read(int(firsts[b]), int(firsts[b]) + length))
        run_starts = self._run_starts
        for b in np.flatnonzero(spanning).tolist():
            start = int(starts[b])
            inner = run_starts[
                np.searchsorted(run_starts, start, "right") : np.searchsorted(run_starts, start + length)
            ]
            bounds = [start, *inner.tolist(), start + length]
            for i, j in itertools.pairwise(bounds):
                first = int(self.frames[i])
                stacked[b].narrow(self.time_axis, i - start, j - i).copy_(self._read(first, first + j - i))
        return stacked.to(dtype)

    def take_time_first(
        self, starts: Sequence[int] | np.ndarray, length: int, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Like :meth:`take` but with the time axis moved first: ``(B, L, *other axes)``, e.g. ``(B, L, N)`` for
        responses, whatever their time axis in the source."""
        starts = np.asarray(starts, dtype=np.int64)
        if self.time_axis == 0 and self._tensor is not None and self._tensor.device.type == "cpu" and starts.size:
            # Few values per frame (responses): one fancy-indexing gather is ~4x faster than a slice per window.
            self._check_windows(starts, length)
            source = self._tensor.detach().numpy()
            frames = self.frames[starts[:, None] + np.arange(length)]  # in range: windows checked above
            if not source.flags.c_contiguous:  # e.g. a transposed memmap: np.take would copy all of it first
                return torch.from_numpy(source[frames]).to(dtype)
            batch = batch_buffers.empty((starts.size, length, *source.shape[1:]), self._tensor.dtype)
            np.take(source, frames, axis=0, out=batch.numpy(), mode="clip")
            return batch.to(dtype)
        taken = self.take(starts, length, dtype)
        if self.time_axis == 0:
            return taken
        # numpy's transposing copy is far faster than torch's `.contiguous()` here (0.2 ms vs 15 ms, 50 x 6400).
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(taken.numpy(), self.time_axis + 1, 1)))

    def _check_windows(self, starts: np.ndarray, length: int) -> None:
        if starts.min() < 0 or starts.max() + length > len(self.frames):
            raise IndexError(f"windows of {length} frames at {starts.tolist()} exceed the view's {len(self.frames)}.")

    def _read(self, start: int, stop: int) -> torch.Tensor:
        """Source frames ``start:stop`` as a tensor (a view for in-memory sources and memmaps)."""
        part = (*self._prefix, slice(start, stop))
        if self._tensor is not None:
            return self._tensor[part]
        return torch.from_numpy(np.ascontiguousarray(self.source[part]))

    def shared_tensor(self) -> torch.Tensor | None:
        """The whole view as a tensor sharing the source's memory (numpy, memmap or tensor selecting every frame
        in order), or None when that is impossible without a copy."""
        return as_tensor_no_copy(self.source) if self.is_identity else None

    def to_tensor(self) -> torch.Tensor:
        """The whole view as a tensor: shared with the source when possible (see :meth:`shared_tensor`), otherwise
        a float32 copy (avoid for memory-mapped movies larger than RAM)."""
        shared = self.shared_tensor()
        return shared if shared is not None else self.take([0], len(self.frames))[0]

    def mean_over_time(self) -> np.ndarray:
        """Float64 mean over the selected frames, read in chunks of at most ~16 MB."""
        shape = list(shape_of(self.source))
        del shape[self.time_axis]
        if not len(self.frames):
            return np.full(shape, np.nan)
        chunk_frames = max(1, CHUNK_BYTES // (8 * max(1, int(np.prod(shape, dtype=np.int64)))))
        total = np.zeros(shape, dtype=np.float64)
        for start in range(0, len(self.frames), chunk_frames):
            part = self.take([start], min(chunk_frames, len(self.frames) - start), torch.float64)
            total += part[0].sum(dim=self.time_axis).numpy()
        return total / len(self.frames)

    def __repr__(self) -> str:
        return f"FrameView(shape={self.shape}, source={type(self.source).__name__})"
