"""Array helpers shared by the data containers and dataloaders.

Stimuli and responses may be numpy arrays, ``np.memmap``s (e.g. ``np.load(path, mmap_mode="r")``), torch tensors or
h5py datasets. The helpers below only ever read bounded chunks, so a memory-mapped array of several GB is checked
without being copied into RAM.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from openretina.errors import NonFiniteDataError, OpenRetinaError

# Arrays accepted by the containers: np.ndarray (incl. np.memmap), torch.Tensor, or anything sliceable with `.shape`
# and `.dtype` (h5py.Dataset). Typed as Any because h5py has no type stubs.
ArrayLike = Any

# Bytes read per step by the chunked checks: large enough to amortise Python overhead, small enough for any RAM.
CHUNK_BYTES = 16 * 1024**2


def shape_of(array: ArrayLike) -> tuple[int, ...]:
    """Shape of any supported array as a tuple of ints."""
    return tuple(int(s) for s in array.shape)


def _is_integer_dtype(array: ArrayLike) -> bool:
    if isinstance(array, torch.Tensor):
        return not (array.is_floating_point() or array.is_complex())
    return bool(np.issubdtype(np.dtype(array.dtype), np.integer) or np.dtype(array.dtype) == np.bool_)


def _itemsize(array: ArrayLike) -> int:
    if isinstance(array, torch.Tensor):
        return array.element_size()
    return np.dtype(array.dtype).itemsize


def iter_chunks(array: ArrayLike) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """Yield ``(offset, chunk)`` pairs covering ``array``; ``offset`` is the index of ``chunk``'s first element.

    Chunks keep every dimension and hold at most ~16 MB (or one row of the last axis), so memory-mapped and HDF5
    arrays are streamed rather than loaded: the split happens on the first axis whose trailing block is small
    enough, e.g. per channel and per group of frames for a movie ``(C, T, H, W)``.
    """
    shape = shape_of(array)
    if len(shape) == 0 or 0 in shape:
        yield (0,) * len(shape), np.asarray(array[()] if len(shape) == 0 else array).reshape(shape)
        return
    itemsize = _itemsize(array)
    split_axis = len(shape) - 1
    for axis in range(len(shape)):
        if int(np.prod(shape[axis:], dtype=np.int64)) * itemsize <= CHUNK_BYTES:
            split_axis = max(0, axis - 1)
            break
    block = int(np.prod(shape[split_axis + 1 :], dtype=np.int64)) * itemsize
    step = max(1, CHUNK_BYTES // max(block, 1))
    for lead in itertools.product(*(range(n) for n in shape[:split_axis])):
        for start in range(0, shape[split_axis], step):
            index = (*(slice(i, i + 1) for i in lead), slice(start, min(start + step, shape[split_axis])))
            chunk = array[index]
            if isinstance(chunk, torch.Tensor):
                chunk = chunk.detach().cpu().numpy()
            yield (*lead, start, *(0,) * (len(shape) - split_axis - 1)), np.asarray(chunk)


def check_finite(array: ArrayLike, name: str) -> None:
    """Raise :class:`NonFiniteDataError` if ``array`` holds NaN or infinite values.

    The message states how many NaN / +inf / -inf values there are and the index of the first one, so the
    offending frame or neuron can be found. Integer arrays are skipped (always finite).
    """
    if _is_integer_dtype(array):
        return
    n_nan = n_posinf = n_neginf = 0
    first: tuple[int, ...] | None = None
    shape = shape_of(array)
    for offset, chunk in iter_chunks(array):
        finite = np.isfinite(chunk)
        if finite.all():
            continue
        bad = ~finite
        n_nan += int(np.isnan(chunk).sum())
        n_posinf += int(np.isposinf(chunk).sum())
        n_neginf += int(np.isneginf(chunk).sum())
        if first is None:
            local = np.unravel_index(int(np.argmax(bad)), chunk.shape)
            first = tuple(int(o) + int(i) for o, i in zip(offset, local))
    if first is None:
        return
    total = int(np.prod(shape, dtype=np.int64)) if shape else 1
    raise NonFiniteDataError(
        f"{name} contains {n_nan + n_posinf + n_neginf} non-finite values out of {total} "
        f"({n_nan} NaN, {n_posinf} +inf, {n_neginf} -inf); first at index {first} of shape {shape}. "
        "openretina never drops or imputes such values silently: remove or interpolate the affected "
        "neurons/frames before building the container."
    )


def mean_over_axis(array: ArrayLike, axis: int) -> np.ndarray:
    """Mean of ``array`` over ``axis`` in float64, computed chunk-wise (no full copy)."""
    shape = shape_of(array)
    total = np.zeros(shape[:axis] + shape[axis + 1 :], dtype=np.float64)
    for offset, chunk in iter_chunks(array):
        target = tuple(slice(o, o + n) for ax, (o, n) in enumerate(zip(offset, chunk.shape)) if ax != axis)
        total[target] += chunk.sum(axis=axis, dtype=np.float64)
    return total / max(shape[axis], 1)


def is_memory_mapped(array: ArrayLike) -> bool:
    """True for ``np.memmap`` arrays and numpy views of them (e.g. ``np.load(path, mmap_mode="r")[:, :10]``)."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap):
            return True
        array = array.base
    return False


def as_tensor_no_copy(array: ArrayLike) -> torch.Tensor | None:
    """Return a tensor sharing memory with ``array`` (numpy, memmap or tensor), or None when that needs a copy."""
    if isinstance(array, torch.Tensor):
        return array
    if isinstance(array, np.ndarray):
        with warnings.catch_warnings():
            # torch warns about read-only buffers (np.load(..., mmap_mode="r")); we never write through them.
            warnings.simplefilter("ignore", UserWarning)
            try:
                return torch.from_numpy(array)
            except TypeError:  # dtype torch cannot share (e.g. non-native byte order)
                return None
    return None


@contextlib.contextmanager
def error_context(prefix: str) -> Iterator[None]:
    """Prefix the message of any openretina error raised inside the block, e.g. with ``"session 'a'"``.

    Example::

        with error_context(f"session {name!r}"):
            movies = MoviesTrainTestSplit(train=..., test=...)
    """
    try:
        yield
    except OpenRetinaError as error:
        raise type(error)(f"{prefix}: {error}") from error
