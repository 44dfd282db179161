"""Tests of the generic movie dataloaders in openretina.data_io.base_dataloader."""

from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.base_dataloader import (
    DataPoint,
    FrameView,
    MovieDataSet,
    MovieSampler,
    NeuronDataSplit,
    _compute_test_batch_size,
    gen_shifts_with_boundaries,
    generate_movie_splits,
    get_movie_dataloader,
    multiple_movies_dataloaders,
)
from openretina.data_io.cyclers import LongCycler, ShortCycler
from openretina.errors import DataFormatError, DataShapeError, NonFiniteDataError

# --- synthetic data whose values encode their frame index, so alignment can be checked exactly ---------------------


def _frame_coded_session(
    n_frames: int, n_test: int = 30, n_neurons: int = 3, channels: int = 1, size: tuple[int, int] = (2, 3)
) -> tuple[MoviesTrainTestSplit, ResponsesTrainTestSplit]:
    """Movie pixel values equal the frame index; response of neuron n at frame t is 1000 * t + n."""
    frames = np.arange(n_frames, dtype=np.float64)
    movie = np.broadcast_to(frames[None, :, None, None], (channels, n_frames, *size)).copy()
    responses = 1000 * frames[None, :] + np.arange(n_neurons)[:, None]
    test_frames = np.arange(n_test, dtype=np.float64) + 0.5
    test_movie = np.broadcast_to(test_frames[None, :, None, None], (channels, n_test, *size)).copy()
    test_responses = 1000 * test_frames[None, :] + np.arange(n_neurons)[:, None]
    by_trial = np.stack([test_responses + r for r in range(4)])  # (R, N, T)
    return (
        MoviesTrainTestSplit(train=movie, test=test_movie),
        ResponsesTrainTestSplit(train=responses, test=test_responses, test_by_trial=by_trial),
    )


def _assert_aligned(batch: DataPoint) -> np.ndarray:
    """Check targets belong to the inputs' frames; return the source frame numbers ``(B, T)``."""
    frames = batch.inputs[:, 0, :, 0, 0].numpy()
    np.testing.assert_array_equal(batch.targets[:, :, 0].numpy(), 1000 * frames)
    np.testing.assert_array_equal(batch.targets[:, :, 1].numpy(), 1000 * frames + 1)
    return frames


class _FixedShifts:
    """Stands in for a numpy Generator: `integers` returns preset values."""

    def __init__(self, shifts: list[int]) -> None:
        self.shifts = np.asarray(shifts)

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        assert size == len(self.shifts) and (self.shifts >= low).all() and (self.shifts < high).all()
        return self.shifts


# --- seed-page snippets -----------------------------------------------------------------------------------------


def test_seed_page_single_session_snippet() -> None:
    random_stimulus = np.random.rand(1, 300, 50, 50)  # noqa: NPY002 (verbatim seed-page snippet)
    random_responses = np.random.rand(300, 42)  # noqa: NPY002

    single_dataloader = get_movie_dataloader(
        movie=random_stimulus,
        responses=random_responses,
        split="train",
        scene_length=300,
        chunk_size=50,
        batch_size=1,
    )
    batches = list(single_dataloader)
    assert len(batches) == len(single_dataloader) == 6
    assert isinstance(batches[0], DataPoint)
    assert batches[0].inputs.shape == (1, 1, 50, 50, 50) and batches[0].inputs.dtype == torch.float32
    assert batches[0].targets.shape == (1, 50, 42) and batches[0].targets.dtype == torch.float32


def test_seed_page_multiple_movies_snippet() -> None:
    movies_dictionary, responses_dictionary = {}, {}
    for index, session in enumerate(["session_a", "session_b", "session_c"]):
        movies_dictionary[session], responses_dictionary[session] = _frame_coded_session(
            52 * 90 + 7, n_neurons=3 + index
        )

    dataloaders = multiple_movies_dataloaders(
        neuron_data_dictionary=responses_dictionary,
        movies_dictionary=movies_dictionary,
        train_chunk_size=50,
        batch_size=64,
        seed=42,
        clip_length=90,
        num_val_clips=50,
        allow_over_boundaries=True,
    )

    assert list(dataloaders) == ["train", "validation", "test"]
    for split in dataloaders.values():
        assert list(split) == ["session_a", "session_b", "session_c"]
        assert all(isinstance(loader, torch.utils.data.DataLoader) for loader in split.values())
    # 52 clips, 50 for validation: 2 training clips = 180 frames -> 4 chunks of 50 < batch 64 -> dropped.
    assert len(dataloaders["train"]["session_a"]) == 0
    validation = list(dataloaders["validation"]["session_c"])
    assert [b.inputs.shape[0] for b in validation] == [50]
    assert validation[0].inputs.shape == (50, 1, 90, 2, 3) and validation[0].targets.shape == (50, 90, 5)
    test = list(dataloaders["test"]["session_b"])
    assert len(test) == 1 and test[0].inputs.shape == (1, 1, 30, 2, 3) and test[0].targets.shape == (1, 30, 4)


# --- splits -----------------------------------------------------------------------------------------------------


def test_generate_movie_splits_matches_concatenation(rng: np.random.Generator) -> None:
    movie = rng.random((2, 10 * 7 + 3, 2, 2))
    test = {"a": rng.random((2, 5, 2, 2))}
    train, val, tests = generate_movie_splits(movie, test, val_clip_idc=[6, 2], num_clips=10, clip_length=7)
    clip = lambda i: movie[:, 7 * i : 7 * (i + 1)]  # noqa: E731
    np.testing.assert_allclose(val.to_tensor().numpy(), np.concatenate([clip(6), clip(2)], axis=1), rtol=1e-6)
    expected_train = np.concatenate([clip(i) for i in range(10) if i not in (6, 2)], axis=1)
    assert train.shape == (2, 56, 2, 2)
    np.testing.assert_allclose(train.to_tensor().numpy(), expected_train, rtol=1e-6)
    assert tests["a"].to_tensor().data_ptr() == torch.from_numpy(test["a"]).data_ptr()  # shared, not copied


def test_generate_movie_splits_rejects_bad_clips(rng: np.random.Generator) -> None:
    movie = rng.random((1, 50, 2, 2))
    with pytest.raises(DataFormatError, match=r"distinct and in \[0, 5\)"):
        generate_movie_splits(movie, {}, [5], num_clips=5, clip_length=10)
    with pytest.raises(DataFormatError, match="distinct"):
        generate_movie_splits(movie, {}, [1, 1], num_clips=5, clip_length=10)
    with pytest.raises(DataShapeError, match="6 clips of 10 frames need 60 frames, the movie has 50"):
        generate_movie_splits(movie, {}, [1], num_clips=6, clip_length=10)


def test_neuron_data_split_views(rng: np.random.Generator) -> None:
    _, responses = _frame_coded_session(43)
    split = NeuronDataSplit(responses, val_clip_idx=[3, 0], num_clips=4, clip_length=10)
    train, val = split.split_data_train_val()
    # Remainder frames 40..42 are dropped from training (kept aligned with the movie, unlike the reference).
    assert train.shape == (20, 3) and val.shape == (20, 3)  # (time, neurons) views
    np.testing.assert_array_equal(train.to_tensor()[:, 0].numpy(), 1000 * np.arange(10, 30))
    np.testing.assert_array_equal(val.to_tensor()[:, 2].numpy(), 1000 * np.r_[30:40, 0:10] + 2)
    test = split.response_dict["test"]["test"]
    assert test["avg"].shape == (30, 3) and test["by_trial"].shape == (4, 3, 30)
    assert split.response_dict is split.response_dict  # built once


def test_worked_example_numbers() -> None:
    movies, responses = _frame_coded_session(5250 + 5325)
    loaders = multiple_movies_dataloaders(
        {"s": responses}, {"s": movies}, train_chunk_size=50, batch_size=4, clip_length=75, num_val_clips=20
    )
    train_loader = loaders["train"]["s"]
    sampler = train_loader.sampler
    assert isinstance(sampler, MovieSampler)
    assert sampler.indices == list(range(0, 9051, 50)) and len(sampler) == 182
    assert train_loader.dataset.n_frames == 9075
    assert loaders["validation"]["s"].dataset.n_frames == 1500
    for _ in range(3):
        assert max(sampler) <= 9025


def test_train_chunks_avoid_validation_frames_and_stay_aligned() -> None:
    movies, responses = _frame_coded_session(20 * 30)
    loaders = multiple_movies_dataloaders(
        {"s": responses}, {"s": movies}, train_chunk_size=12, batch_size=5, clip_length=30, num_val_clips=4, seed=3
    )
    val_clips = np.random.RandomState(3).choice(20, 4, replace=False)
    val_frames = set((val_clips[:, None] * 30 + np.arange(30)).ravel().tolist())
    seen: set[int] = set()
    for batch in loaders["train"]["s"]:
        assert batch.inputs.shape == (5, 1, 12, 2, 3)
        frames = _assert_aligned(batch).astype(int)
        seen.update(frames.ravel().tolist())
    assert not seen & val_frames
    validation_frames = np.concatenate([_assert_aligned(b).ravel() for b in loaders["validation"]["s"]])
    np.testing.assert_array_equal(validation_frames, (val_clips[:, None] * 30 + np.arange(30)).ravel())


def test_test_loader_holds_whole_movie_and_trials() -> None:
    movies, responses = _frame_coded_session(400, n_test=37)
    loader = multiple_movies_dataloaders({"s": responses}, {"s": movies}, clip_length=50, num_val_clips=2)["test"]["s"]
    (batch,) = list(loader)
    assert batch.inputs.shape == (1, 1, 37, 2, 3) and batch.targets.shape == (1, 37, 3)
    np.testing.assert_array_equal(batch.targets[0, :, 0].numpy(), 1000 * (np.arange(37) + 0.5))
    assert loader.dataset.test_responses_by_trial.shape == (4, 3, 37)
    assert loader.dataset.movies.shape == (1, 37, 2, 3)


def test_test_loader_without_over_boundaries_batches_every_chunk() -> None:
    movies, responses = _frame_coded_session(400, n_test=37)
    loader = multiple_movies_dataloaders(
        {"s": responses},
        {"s": movies},
        train_chunk_size=10,
        clip_length=10,
        num_val_clips=2,
        allow_over_boundaries=False,
        batch_size=3,
    )["test"]["s"]
    starts = [b.inputs[:, 0, 0, 0, 0].tolist() for b in loader]
    # 37 frames in chunks of 10: the last chunk is moved to end at frame 37 (overlapping) so all chunks batch.
    assert starts == [[0.5, 10.5, 20.5], [27.5]]


def test_compute_test_batch_size() -> None:
    assert _compute_test_batch_size(32, 50, 50) == 32
    assert _compute_test_batch_size(32, 50, 10) == 32
    assert _compute_test_batch_size(32, 50, 750) == 2  # 1600 // 750
    assert _compute_test_batch_size(4, 50, 5000) == 1


# --- shifts and sampling ----------------------------------------------------------------------------------------


def test_gen_shifts_with_boundaries_hand_computed() -> None:
    shifted = gen_shifts_with_boundaries([0, 100, 200], [0, 50, 60, 150], 50, rng=_FixedShifts([10, 5, 20, 0]))
    assert shifted == [10, 50, 50, 150]
    last_clamped = gen_shifts_with_boundaries([0, 100, 200], [0, 180], 50, rng=_FixedShifts([0, 0]))
    assert last_clamped == [0, 150]


def test_shifts_without_crossing_boundaries_stay_in_scene() -> None:
    sampler = MovieSampler(range(0, 300, 20), "train", 20, 300, 60, allow_over_boundaries=False, seed=1)
    for _ in range(5):
        for start in sampler:
            assert start // 60 == (start + 20 - 1) // 60  # chunk inside one scene


def test_over_boundary_shifts_are_clamped_and_within_chunk() -> None:
    starts = list(range(0, 1000, 50))
    sampler = MovieSampler(starts, "train", 50, 1000, 200, allow_over_boundaries=True, seed=0)
    drawn = sorted(sampler)
    assert len(drawn) == 20 and max(drawn) <= 950
    assert all(s <= d < s + 50 for s, d in zip(starts, drawn))


def test_sampler_seeded_reproducible_and_changes_per_epoch() -> None:
    make = lambda seed: MovieSampler(range(0, 500, 10), "train", 10, 500, 100, True, seed=seed)  # noqa: E731
    first, second = make(7), make(7)
    epochs_a = [list(first) for _ in range(3)]
    assert epochs_a == [list(second) for _ in range(3)]
    assert epochs_a[0] != epochs_a[1]
    assert list(make(8)) != epochs_a[0]
    first.set_epoch(1)
    assert list(first) == epochs_a[1]


def test_training_order_shuffled_when_chunk_equals_scene() -> None:
    sampler = MovieSampler(range(0, 200, 10), "train", 10, 200, 10, seed=5)
    epoch_1, epoch_2 = list(sampler), list(sampler)
    assert sorted(epoch_1) == list(range(0, 200, 10))  # no shifts
    assert epoch_1 != sorted(epoch_1) and epoch_1 != epoch_2


def test_validation_and_test_order_unchanged() -> None:
    for split in ("validation", "val", "test"):
        assert list(MovieSampler([30, 0, 10], split, 10, 40, 10, seed=1)) == [30, 0, 10]


def test_global_rng_state_untouched() -> None:
    movies, responses = _frame_coded_session(600)
    np_state, torch_state, py_state = np.random.get_state(), torch.get_rng_state(), random.getstate()  # noqa: NPY002
    loaders = multiple_movies_dataloaders({"s": responses}, {"s": movies}, 20, 4, clip_length=30, num_val_clips=3)
    for _ in LongCycler(loaders["train"], seed=0):
        pass
    for _ in ShortCycler(loaders["validation"]):
        pass
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state


def test_same_seed_same_batches_different_seed_differs() -> None:
    movies, responses = _frame_coded_session(600)
    run = lambda seed: [  # noqa: E731
        _assert_aligned(b)[:, 0].tolist()
        for b in multiple_movies_dataloaders({"s": responses}, {"s": movies}, 20, 4, seed, 30, 3)["train"]["s"]
    ]
    assert run(1) == run(1)
    assert run(1) != run(2)


# --- dataset and single-loader behaviour ------------------------------------------------------------------------


def test_movie_dataset_items(rng: np.random.Generator) -> None:
    movie, responses = rng.random((2, 25, 3, 3)), rng.random((25, 4))
    dataset = MovieDataSet(movie, responses, None, None, None, "train", chunk_size=10)
    assert len(dataset) == 3
    item = dataset[20]  # a short chunk near the end
    assert item.inputs.shape == (2, 5, 3, 3) and item.targets.shape == (5, 4)
    np.testing.assert_allclose(item.inputs.numpy(), movie[:, 20:25], rtol=1e-6)
    sliced = dataset[3:8]
    np.testing.assert_allclose(sliced.targets.numpy(), responses[3:8], rtol=1e-6)
    batch = dataset.__getitems__([4, 0])
    np.testing.assert_allclose(batch.inputs.numpy(), np.stack([movie[:, 4:14], movie[:, 0:10]]), rtol=1e-6)
    np.testing.assert_allclose(dataset.mean_response.numpy(), responses.mean(axis=0), rtol=1e-6)
    assert "4 neurons" in str(dataset)
    with pytest.raises(DataShapeError, match=r"unequal lengths \[10, 5\]"):
        dataset.__getitems__([0, 20])
    with pytest.raises(IndexError, match="outside"):
        dataset[25]


def test_get_movie_dataloader_bad_inputs(rng: np.random.Generator) -> None:
    movie = rng.random((1, 40, 2, 2))
    responses = rng.random((40, 3))
    responses[5, 1] = np.nan
    common = {"split": "train", "scene_length": 20, "chunk_size": 10, "batch_size": 2}
    with pytest.raises(NonFiniteDataError, match=r"train responses contains 1 non-finite .* index \(5, 1\)"):
        get_movie_dataloader(movie, responses, **common)
    with pytest.raises(DataShapeError, match="movie has 40 frames but responses have 3 time bins"):
        get_movie_dataloader(movie, rng.random((3, 40)), **common)
    with pytest.raises(DataFormatError, match="chunk_size 30 exceeds scene_length 20"):
        get_movie_dataloader(movie, rng.random((40, 3)), **{**common, "chunk_size": 30}, allow_over_boundaries=False)
    with pytest.raises(NotImplementedError, match="'training'"):
        get_movie_dataloader(movie, rng.random((40, 3)), **{**common, "split": "training"})


def test_multiple_movies_dataloaders_bad_inputs() -> None:
    movies, responses = _frame_coded_session(300)
    with pytest.raises(DataFormatError, match=r"only in responses \['b'\]"):
        multiple_movies_dataloaders({"a": responses, "b": responses}, {"a": movies})
    with pytest.raises(DataFormatError, match=r"session 'a': num_val_clips=10 must be in \[0, 3\)"):
        multiple_movies_dataloaders({"a": responses}, {"a": movies}, clip_length=100, num_val_clips=10)
    named_train = MoviesTrainTestSplit(movies.train, {"train": movies.test_movie})
    named_responses = ResponsesTrainTestSplit(responses.train, {"train": responses.test_response})
    with pytest.raises(DataFormatError, match=r"session 'a': test stimuli may not be named \['train'\]"):
        multiple_movies_dataloaders({"a": named_responses}, {"a": named_train}, clip_length=50, num_val_clips=1)
    short_responses = ResponsesTrainTestSplit(responses.train[:, :299], test=responses.test_response)
    with pytest.raises(DataShapeError, match="session 'a'"):
        multiple_movies_dataloaders({"a": short_responses}, {"a": movies}, clip_length=50, num_val_clips=1)


def test_hdf5_and_memmap_sources_match_numpy(tmp_path: Path) -> None:
    movies, responses = _frame_coded_session(300)
    np.save(tmp_path / "movie.npy", movies.train)
    with h5py.File(tmp_path / "data.h5", "w") as handle:
        handle["movie"] = movies.train
        handle["responses"] = responses.train
    with h5py.File(tmp_path / "data.h5", "r") as handle:
        sources = {
            "numpy": (movies.train, responses.train),
            "memmap": (np.load(tmp_path / "movie.npy", mmap_mode="r"), responses.train),
            "h5py": (handle["movie"], handle["responses"]),
        }
        results = {}
        for name, (movie, response) in sources.items():
            split = MoviesTrainTestSplit(movie, test=movies.test_movie)
            resp = ResponsesTrainTestSplit(response, test=responses.test_response)
            loaders = multiple_movies_dataloaders({"s": resp}, {"s": split}, 20, 4, 11, 30, 3, [8, 1, 5])
            results[name] = [torch.cat([b.inputs.flatten(), b.targets.flatten()]) for b in loaders["train"]["s"]]
            results[name] += [torch.cat([b.inputs.flatten(), b.targets.flatten()]) for b in loaders["validation"]["s"]]
    for name in ("memmap", "h5py"):
        assert len(results[name]) == len(results["numpy"])
        for ours, expected in zip(results[name], results["numpy"]):
            assert torch.equal(ours, expected)


def test_loader_with_worker_process() -> None:
    movies, responses = _frame_coded_session(300)
    splits = multiple_movies_dataloaders({"s": responses}, {"s": movies}, 20, 4, 0, 30, 3)
    dataset, sampler = splits["train"]["s"].dataset, splits["train"]["s"].sampler
    loader = torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=4,
        drop_last=True,
        num_workers=1,
        collate_fn=splits["train"]["s"].collate_fn,
    )
    batches = list(loader)
    assert len(batches) == len(splits["train"]["s"])
    for batch in batches:
        _assert_aligned(batch)


def test_docs_page_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the memmap example writes to tempfile.mkdtemp()
    page = Path(__file__).resolve().parents[2] / "docs" / "data_io.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 8
    namespace: dict[str, object] = {}
    for block in blocks:  # blocks build on each other, as a reader would run them
        exec(compile(block, str(page), "exec"), namespace)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int16])
def test_frame_view_take_keeps_values_for_dtypes_with_and_without_a_numpy_twin(dtype: torch.dtype) -> None:
    source = torch.arange(2 * 30 * 3).reshape(2, 30, 3).to(dtype)  # small integers: exact in every dtype
    view = FrameView(source, time_axis=1, frames=np.r_[0:10, 20:30])
    taken = view.take([0, 5, 8], 6, dtype)
    expected = torch.stack([source[:, np.r_[0:10, 20:30][s : s + 6]] for s in (0, 5, 8)])
    assert taken.dtype == dtype and torch.equal(taken, expected)


@pytest.mark.parametrize("kind", ["numpy", "torch", "h5py"])
def test_frame_view_take_matches_fancy_indexing(kind: str, tmp_path: Path, rng: np.random.Generator) -> None:
    source = rng.random((3, 40, 2))  # time axis 1
    frames = np.r_[30:40, 0:10, 15:25, 15:25]  # gaps, a backwards jump and repeated frames
    with h5py.File(tmp_path / "x.h5", "w") as handle:
        handle["x"] = source
    with h5py.File(tmp_path / "x.h5", "r") as handle:
        wrapped = {"numpy": source, "torch": torch.from_numpy(source), "h5py": handle["x"]}[kind]
        view = FrameView(wrapped, time_axis=1, frames=frames)
        assert view.shape == (3, 40, 2) and len(view) == 40
        starts = [0, 5, 8, 25, 28]
        expected = np.stack([source[:, frames[s : s + 12]] for s in starts])
        np.testing.assert_allclose(view.take(starts, 12, torch.float64).numpy(), expected)
        np.testing.assert_allclose(
            view.take_time_first(starts, 12, torch.float64).numpy(), expected.transpose(0, 2, 1, 3)
        )
        np.testing.assert_allclose(view.mean_over_time(), source[:, frames].mean(axis=1))
        with pytest.raises(IndexError, match="exceed"):
            view.take([30], 12)


@pytest.mark.parametrize("kind", ["numpy", "h5py"])
def test_frame_view_windows_longer_than_the_source(kind: str, tmp_path: Path, rng: np.random.Generator) -> None:
    # A view that repeats the source's frames is longer than the source; its long windows all span runs.
    source = rng.random((2, 10, 3))
    frames = np.r_[0:10, 0:10, 5:10]
    with h5py.File(tmp_path / "x.h5", "w") as handle:
        handle["x"] = source
    with h5py.File(tmp_path / "x.h5", "r") as handle:
        view = FrameView(source if kind == "numpy" else handle["x"], time_axis=1, frames=frames)
        starts = [0, 3, 10]
        expected = np.stack([source[:, frames[s : s + 15]] for s in starts])
        np.testing.assert_array_equal(view.take(starts, 15, torch.float64).numpy(), expected)


def test_frame_view_of_a_sliced_tensor_reads_the_slice(rng: np.random.Generator) -> None:
    # The windows are a strided view of the source: its storage offset and strides must be honoured.
    whole = torch.from_numpy(rng.random((3, 60, 4)))
    source = whole[1:, 5:45, 1:3]  # offset and non-contiguous
    frames = np.r_[0:10, 20:40]
    view = FrameView(source, time_axis=1, frames=frames)
    starts = [0, 4, 12, 18]
    expected = torch.stack([source[:, frames[s : s + 8]] for s in starts])
    assert torch.equal(view.take(starts, 8, torch.float64), expected)
