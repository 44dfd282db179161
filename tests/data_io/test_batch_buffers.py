"""Tests of the batch buffer pool: memory is reused, but never while anything can still read the previous batch."""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from openretina.data_io._batch_buffers import BatchBufferPool, batch_buffers
from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.base_dataloader import multiple_movies_dataloaders

SHAPE = (4, 2, 8)


def _filled(pool: BatchBufferPool, value: float, shape: tuple[int, ...] = SHAPE) -> torch.Tensor:
    batch = pool.empty(shape, torch.float32)
    batch.fill_(value)
    return batch


def test_memory_of_a_dropped_batch_is_reused() -> None:
    pool = BatchBufferPool(min_bytes=0)
    first = _filled(pool, 1.0)
    address = first.data_ptr()
    del first
    second = _filled(pool, 2.0)
    assert second.data_ptr() == address and second.shape == SHAPE and second.is_contiguous()
    assert len(pool._buffers) == 1


def _hold_view(batch: torch.Tensor) -> object:
    return batch[1:3]


def _hold_numpy(batch: torch.Tensor) -> object:
    return batch.numpy()


def _hold_storage(batch: torch.Tensor) -> object:
    return batch.untyped_storage()


def _hold_autograd_graph(batch: torch.Tensor) -> object:
    weight = torch.ones(SHAPE, requires_grad=True)
    return (batch * weight).sum(), weight  # the product saves the batch: it becomes the weight's gradient


def _hold_dlpack(batch: torch.Tensor) -> object:
    return np.from_dlpack(batch)


def _hold_reshaped(batch: torch.Tensor) -> object:
    return batch.view(-1)[::2]


def _values_of(kept: object) -> set[float]:
    """The distinct values readable through ``kept``."""
    if isinstance(kept, torch.UntypedStorage):
        return set(torch.tensor([], dtype=torch.float32).set_(kept).tolist())
    if isinstance(kept, tuple):  # an autograd graph: the gradient is read from the saved batch
        loss, weight = kept
        loss.backward()
        return set(weight.grad.ravel().tolist())
    return set(np.asarray(kept).ravel().tolist())


@pytest.mark.parametrize(
    "hold", [_hold_view, _hold_numpy, _hold_storage, _hold_autograd_graph, _hold_dlpack, _hold_reshaped]
)
def test_memory_still_readable_through_any_reference_is_never_reused(hold: Callable[[torch.Tensor], object]) -> None:
    pool = BatchBufferPool(min_bytes=0)
    first = _filled(pool, 1.0)
    address = first.data_ptr()
    kept = hold(first)
    del first
    gc.collect()
    for value in (2.0, 3.0, 4.0):  # later batches must land elsewhere and leave the held one intact
        later = _filled(pool, value)
        assert later.data_ptr() != address
        del later
    assert _values_of(kept) == {1.0}
    del kept
    gc.collect()
    assert _filled(pool, 5.0).data_ptr() == address  # free again once the last reference is gone


def test_batch_moved_to_shared_memory_releases_the_buffer() -> None:
    pool = BatchBufferPool(min_bytes=0)
    batch = _filled(pool, 1.0)
    address = batch.data_ptr()
    batch.share_memory_()  # what a DataLoader worker does before sending the batch: a copy
    assert batch.data_ptr() != address
    reused = _filled(pool, 2.0)
    assert reused.data_ptr() == address and torch.all(batch == 1.0)


def test_short_last_batch_reuses_a_full_buffer_but_tiny_requests_do_not_pin_it() -> None:
    pool = BatchBufferPool(min_bytes=0)
    address = _filled(pool, 1.0, (8, 10)).data_ptr()
    assert _filled(pool, 2.0, (5, 10)).data_ptr() == address  # 5/8 of the buffer: reused
    assert _filled(pool, 3.0, (3, 10)).data_ptr() != address  # under half: a buffer of its own
    assert sorted(buffer.nbytes for buffer in pool._buffers) == [3 * 10 * 4, 8 * 10 * 4]


def test_limits_on_count_and_bytes_fall_back_to_fresh_memory() -> None:
    pool = BatchBufferPool(max_buffers=2, max_bytes=10_000, min_bytes=0)
    held = [_filled(pool, float(i), (100,)) for i in range(4)]  # 400 bytes each, all held
    assert len(pool._buffers) == 2 and pool.pooled_bytes == 800
    assert len({batch.data_ptr() for batch in held}) == 4
    assert [float(batch[0]) for batch in held] == [0.0, 1.0, 2.0, 3.0]
    big = _filled(pool, 9.0, (5_000,))  # 20,000 bytes: over max_bytes, never pooled
    assert pool.pooled_bytes == 800 and torch.all(big == 9.0)


def test_a_new_batch_shape_replaces_free_buffers_of_the_old_one() -> None:
    pool = BatchBufferPool(max_buffers=2, min_bytes=0)
    old = [_filled(pool, 1.0, (100,)) for _ in range(2)]
    del old
    new = _filled(pool, 2.0, (1_000,))
    assert [buffer.nbytes for buffer in pool._buffers] == [400, 4_000] and torch.all(new == 2.0)


def test_small_requests_and_dtypes_without_numpy_twin_are_not_pooled() -> None:
    pool = BatchBufferPool(min_bytes=1_000)
    small = pool.empty((10,), torch.float32)
    bfloat = pool.empty((1_000,), torch.bfloat16)
    assert small.shape == (10,) and bfloat.dtype == torch.bfloat16 and bfloat.shape == (1_000,)
    assert pool.pooled_bytes == 0


@pytest.fixture
def pool_everything(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pool even the tiny batches of the frame-coded test data; start with an empty shared pool."""
    batch_buffers.clear()
    monkeypatch.setattr(batch_buffers, "min_bytes", 0)
    yield
    batch_buffers.clear()


def _frame_coded(n_frames: int = 400) -> tuple[MoviesTrainTestSplit, ResponsesTrainTestSplit]:
    """Pixels equal the frame index; neuron n's response at frame t is 1000 * t + n."""
    frames = np.arange(n_frames, dtype=np.float32)
    movie = np.broadcast_to(frames[None, :, None, None], (2, n_frames, 3, 4)).copy()
    responses = (1000 * frames[None, :] + np.arange(3)[:, None]).astype(np.float32)
    test = np.zeros((2, 40, 3, 4), dtype=np.float32)
    return (
        MoviesTrainTestSplit(train=movie, test=test),
        ResponsesTrainTestSplit(train=responses, test=np.zeros((3, 40), dtype=np.float32)),
    )


def _check_batch(inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Every pixel of a clip carries its frame number, and the targets belong to those frames."""
    frames = inputs[:, 0, :, 0, 0]
    assert torch.all(inputs == frames[:, None, :, None, None])
    assert torch.equal(targets, 1000 * frames[:, :, None] + torch.arange(3.0))


def test_loader_batches_kept_by_the_caller_stay_intact(pool_everything: None) -> None:
    movies, responses = _frame_coded()
    loader = multiple_movies_dataloaders({"s": responses}, {"s": movies}, 20, 4, 0, 40, 2)["train"]["s"]
    kept = [(batch.inputs, batch.targets) for _ in range(3) for batch in loader]  # every batch held at once
    assert len({inputs.data_ptr() for inputs, _ in kept}) == len(kept)
    for inputs, targets in kept:
        _check_batch(inputs, targets)


def test_loader_reuses_memory_when_only_the_current_batch_is_held(pool_everything: None) -> None:
    movies, responses = _frame_coded()
    loader = multiple_movies_dataloaders({"s": responses}, {"s": movies}, 20, 4, 0, 40, 2)["train"]["s"]
    addresses = []
    for _ in range(3):
        for batch in loader:
            _check_batch(batch.inputs, batch.targets)
            addresses.append(batch.inputs.data_ptr())
    assert len(set(addresses)) <= 3 < len(addresses)


def test_loader_with_worker_processes_and_pooled_memory(pool_everything: None) -> None:
    movies, responses = _frame_coded()
    train = multiple_movies_dataloaders({"s": responses}, {"s": movies}, 20, 4, 0, 40, 2)["train"]["s"]
    loader = torch.utils.data.DataLoader(
        train.dataset, sampler=train.sampler, batch_size=4, num_workers=2, collate_fn=train.collate_fn
    )
    kept = list(loader)
    assert len(kept) == len(train)
    for batch in kept:
        _check_batch(batch.inputs, batch.targets)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_the_pool_is_locked_can_still_allocate() -> None:
    with batch_buffers._lock:  # as if another thread were inside `empty` at the moment of the fork
        pid = os.fork()
        if pid == 0:  # child: must not wait for a lock no thread of its own will release
            batch = batch_buffers.empty((1 << 20,), torch.float32)
            os._exit(0 if batch.shape == (1 << 20,) else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child deadlocked on the pool's lock")
