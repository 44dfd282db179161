"""Reusable memory for batches, handed out again only once provably nobody reads the previous batch.

A training batch of a Höfling-sized movie is ~15 MB. Fresh memory of that size costs the kernel page faults and
zeroing on every step, which in a fresh process can halve the loading speed, depending on whether glibc recycles
freed memory or returns it to the kernel. Reusing a few buffers removes that cost in every process.

Reuse must never change a batch that someone still holds (a variable, a view, a numpy array, an autograd graph
kept for gradient accumulation). The proof rests on public behaviour only: each batch is a numpy array that views
a pooled buffer and is wrapped by ``torch.from_numpy``, so every tensor or storage sharing its memory keeps that
array alive (``tensor.numpy()``, DLPack and ``set_`` keep the tensor or storage alive in turn). The pool holds
only a weak reference to the array; a buffer is handed out again only after that reference is dead. Moving a
batch to shared memory (DataLoader workers) copies it and releases the array, which is also safe.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import weakref

import numpy as np
import torch

# Below this size glibc recycles freed memory itself; pooling would add bookkeeping for nothing.
MIN_POOLED_BYTES = 1 << 20
# A training loop holds the current batch while the next is built and Lightning prefetches one more, so a few
# buffers per batch shape reach steady reuse. The limits bound the memory kept while no batch is being built.
MAX_BUFFERS = 8
MAX_POOLED_BYTES = 512 << 20


class BatchBufferPool:
    """Up to ``max_buffers`` buffers (``max_bytes`` in all) handed out as uninitialised tensors of any shape.

    Requests under ``min_bytes`` are allocated fresh. A buffer is reused for any request that fits in it and needs
    at least half of it, so a short last batch of an epoch reuses a full batch's buffer without pinning memory for
    much smaller requests. Thread-safe.
    """

    def __init__(
        self, max_buffers: int = MAX_BUFFERS, max_bytes: int = MAX_POOLED_BYTES, min_bytes: int = MIN_POOLED_BYTES
    ) -> None:
        self.min_bytes = min_bytes
        self.max_buffers = max_buffers
        self.max_bytes = max_bytes
        self._buffers: list[np.ndarray] = []  # flat uint8 arrays owning the memory
        self._handed_out: list[weakref.ref[np.ndarray] | None] = []  # the array viewing each buffer, if any
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised contiguous tensor ``shape`` of ``dtype``, in pooled memory where possible.

        dtypes without a numpy twin (e.g. bfloat16) and small tensors are allocated fresh.
        """
        numpy_dtype = _numpy_dtype(dtype)
        if numpy_dtype is None:
            return torch.empty(shape, dtype=dtype)
        nbytes = math.prod(shape) * numpy_dtype.itemsize
        if nbytes < self.min_bytes:
            return torch.from_numpy(np.empty(shape, dtype=numpy_dtype))
        with self._lock:
            index = self._free_buffer_for(nbytes)
            if index is None:
                return torch.from_numpy(np.empty(shape, dtype=numpy_dtype))
            array = self._buffers[index][:nbytes].view(numpy_dtype).reshape(shape)
            self._handed_out[index] = weakref.ref(array)
        return torch.from_numpy(array)

    def _free_buffer_for(self, nbytes: int) -> int | None:
        """Index of the smallest free buffer fitting ``nbytes``, making room for a new one if none fits; None when
        the limits leave no room (the caller then allocates fresh memory)."""
        free = [i for i, ref in enumerate(self._handed_out) if ref is None or ref() is None]
        fitting = [i for i in free if nbytes <= self._buffers[i].nbytes <= 2 * nbytes]
        if fitting:
            return min(fitting, key=lambda i: self._buffers[i].nbytes)
        # Drop free buffers of other sizes (the batch shape changed), largest first, until a new one fits the limits.
        count, pooled = len(self._buffers), self.pooled_bytes
        dropped = []
        for i in sorted(free, key=lambda i: self._buffers[i].nbytes, reverse=True):
            if count < self.max_buffers and pooled + nbytes <= self.max_bytes:
                break
            dropped.append(i)
            count, pooled = count - 1, pooled - self._buffers[i].nbytes
        if count >= self.max_buffers or pooled + nbytes > self.max_bytes:
            return None
        for i in sorted(dropped, reverse=True):
            del self._buffers[i], self._handed_out[i]
        self._buffers.append(np.empty(nbytes, dtype=np.uint8))
        self._handed_out.append(None)
        return len(self._buffers) - 1

    def renew_lock(self) -> None:
        """Replace the lock: in a forked child, the parent's lock may be held by a thread that no longer exists."""
        self._lock = threading.Lock()

    @property
    def pooled_bytes(self) -> int:
        """Bytes held by the pool, handed out or not."""
        return sum(buffer.nbytes for buffer in self._buffers)

    def clear(self) -> None:
        """Forget every buffer (memory of batches still held is freed when they are)."""
        with self._lock:
            self._buffers.clear()
            self._handed_out.clear()


@functools.cache
def _numpy_dtype(dtype: torch.dtype) -> np.dtype | None:
    """numpy's dtype for ``dtype``, or None when numpy has none (e.g. bfloat16)."""
    try:
        return torch.empty((), dtype=dtype).numpy().dtype
    except TypeError:
        return None


batch_buffers = BatchBufferPool()
# A process forked (e.g. a DataLoader worker) while another thread held the lock would wait on it forever.
os.register_at_fork(after_in_child=batch_buffers.renew_lock)
