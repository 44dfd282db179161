"""Dataloaders of Sridhar et al. 2025: natural movies (:func:`frame_movie_loader`) and white noise
(:func:`white_noise_loader`).

Both return ``{"train" | "validation" | "test": {retina: DataLoader}}`` whose batches are
``DataPoint(inputs float32 (B, 1, L, h, w), targets float32 (B, time_chunk_size, N))`` with
``L = time_chunk_size + frame_overhead``: the targets are already trimmed to the frames a model with that temporal
receptive field predicts. Training and validation trials come from a trial-wise split
(:func:`~.dataloader_utils.get_trial_wise_validation_split`); the test loaders serve the repeated sequence in
order and carry ``dataset.test_responses_by_trial`` ``(R, N, T)``, ``dataset[:]`` (whole test movie and averaged
responses) and the chunk start frames that :func:`openretina.eval.chunked.predict_test_loader` aligns with.

Unlike the reference, no movie is pre-rendered or copied (see :mod:`.movie_dataset` and :mod:`.noise_dataset`),
sampling is seeded per loader and epoch without touching global random states, and when called from a config the
loaders check that they serve the same sessions, neurons and frame size as the ``data_io`` containers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.base_dataloader import DataPoint, collate_data_points
from openretina.data_io.sridhar_2025._chunking import Crop, TrialChunkDataset
from openretina.data_io.sridhar_2025.constants import WN_TEST_FOLDER_PREFIX, WN_TRAIN_FOLDER_PREFIX
from openretina.data_io.sridhar_2025.dataloader_utils import (
    filter_trials,
    get_locations_from_stas,
    get_trial_wise_validation_split,
)
from openretina.data_io.sridhar_2025.movie_dataset import MarmosetMovieDataset, fixation_table
from openretina.data_io.sridhar_2025.noise_dataset import NoiseDataset, trial_image_path
from openretina.data_io.sridhar_2025.responses import load_responses
from openretina.data_io.sridhar_2025.stimuli import load_frames
from openretina.errors import DataFileNotFoundError, DataFormatError, DataShapeError
from openretina.utils.file_utils import get_local_file_path

__all__ = [
    "ChunkedSampler",
    "MarmosetMovieDataset",
    "NoiseDataset",
    "TestChunkSampler",
    "default_image_datapoint",
    "flatten_collate_fn",
    "frame_movie_loader",
    "process_fixations",
    "receptive_field_location",
    "white_noise_loader",
]

log = logging.getLogger(__name__)

# The reference's name for the batch type; identical to DataPoint.
default_image_datapoint = DataPoint

Loaders = dict[str, dict[str, DataLoader]]


def process_fixations(
    fixations: Iterable[str], flip_imgs: bool = False, select_flip: int | None = None
) -> list[dict[str, int]]:
    """Parse fixation-file lines (one displayed frame each, whitespace separated).

    Token 0 is the image index, tokens 3 and 4 the centre x / y, and the first character of the last token the
    flip flag (inverted when ``flip_imgs``). Returns ``[{"img_index", "center_x", "center_y", "flip"}]``, keeping
    only lines whose flag equals ``select_flip`` when given.
    """
    parsed = []
    for number, line in enumerate(fixations):
        tokens = line.split()
        try:
            flip = int(tokens[-1][0])
            entry = {
                "img_index": int(float(tokens[0])),
                "center_x": int(float(tokens[3])),
                "center_y": int(float(tokens[4])),
                "flip": int(flip == 0) if flip_imgs else flip,
            }
        except (IndexError, ValueError) as error:
            raise DataFormatError(
                f"fixation line {number} {line!r} is malformed ({error}); expected whitespace-separated numbers with "
                "the image index first, centre x and y as tokens 3 and 4 and the flip flag last."
            ) from error
        if select_flip is None or entry["flip"] == select_flip:
            parsed.append(entry)
    return parsed


def _default_seed(seed: int | None) -> int:
    """``seed``, or torch's initial seed (set by ``lightning.seed_everything``); no global state is touched."""
    return int(torch.initial_seed()) if seed is None else int(seed)


class ChunkedSampler(Sampler[int]):
    """Shuffled item order for a :class:`TrialChunkDataset`, kept trial by trial.

    Each epoch the trials are visited in a random order and the chunks of each trial in a random order, so a
    trial's stimulus file is read once per epoch (``by_trial=False``: one permutation of all items). Epoch ``e``
    draws from ``numpy.random.default_rng([seed, e])``; the epoch advances on every iteration or via
    :meth:`set_epoch`. ``seed=None`` uses ``torch.initial_seed()``.
    """

    def __init__(self, dataset: TrialChunkDataset, seed: int | None = 42, *, by_trial: bool = True) -> None:
        super().__init__()
        self.n_items, self.block = len(dataset), dataset.chunks_per_trial
        self.seed, self.by_trial, self.epoch = _default_seed(seed), by_trial, 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_items

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        if not self.by_trial:
            return iter(rng.permutation(self.n_items).tolist())
        blocks = rng.permutation(self.n_items // self.block)
        return iter(np.concatenate([b * self.block + rng.permutation(self.block) for b in blocks] or [[]]).tolist())


class TestChunkSampler(Sampler[int]):
    """Serves the test chunks in order (items ``0 .. K-1``); their start frames are ``dataset.chunk_starts``, which
    :func:`openretina.eval.chunked.predict_test_loader` reads (with ``dataset.chunk_size``) to align predictions.
    """

    def __init__(self, dataset: TrialChunkDataset) -> None:
        super().__init__()
        self.n_chunks = len(dataset.chunk_starts)
        self.split = "test"

    def __len__(self) -> int:
        return self.n_chunks

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n_chunks))


def flatten_collate_fn(batch: Sequence[DataPoint] | DataPoint) -> DataPoint:
    """Stack items and merge the batch and time axes of the targets: inputs ``(B, 1, L, h, w)``, targets
    ``(B * time_chunk_size, N)``."""
    stacked = collate_data_points(batch if isinstance(batch, DataPoint) else list(batch))
    return DataPoint(stacked.inputs, stacked.targets.reshape(-1, stacked.targets.shape[-1]))


# ---------------------------------------------------------------------------------------------- shared steps
def _selected_retinas(candidates: Iterable[str], retina_index: str | None, sessions: Sequence[str] | None) -> list[str]:
    available = list(candidates)
    chosen = [retina_index] if retina_index is not None else list(sessions) if sessions is not None else available
    missing = [r for r in chosen if r not in available]
    if missing:
        raise DataFormatError(f"retinas {missing} are not configured; available: {available}.")
    return chosen


def _retina_crop(big_crops: Any, retina: str, crop: Crop, retina_specific_crops: bool) -> Crop:
    """``big_crops[retina]`` (a mapping) or ``big_crops`` itself (one crop for all) when retina-specific, else
    ``crop``."""
    if not retina_specific_crops or big_crops is None:
        return crop
    if isinstance(big_crops, Mapping):
        if retina not in big_crops:
            raise DataFormatError(f"big_crops has no entry for retina {retina!r}; keys: {sorted(big_crops)}.")
        return big_crops[retina]
    return big_crops


def _trial_split(
    train_responses: np.ndarray,
    *,
    train_frac: float,
    seed: int | None,
    final_training: bool,
    hard_coded: Any,
    num_of_trials_to_use: int | None,
    start_using_trial: int,
) -> tuple[np.ndarray, np.ndarray]:
    train_ids, val_ids = get_trial_wise_validation_split(train_responses, train_frac, seed, final_training, hard_coded)
    return filter_trials(train_responses, train_ids, val_ids, hard_coded, num_of_trials_to_use, start_using_trial)


def _loaders_for(
    datasets: Mapping[str, TrialChunkDataset], *, batch_size: int, seed: int, train_sampler: Sampler[int] | None,
    validation_sampler: Sampler[int] | None,
) -> dict[str, DataLoader]:  # fmt: skip
    samplers = {"train": train_sampler, "validation": validation_sampler, "test": TestChunkSampler(datasets["test"])}
    return {
        split: DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=samplers[split],
            collate_fn=collate_data_points,
            generator=torch.Generator().manual_seed(seed),
        )
        for split, dataset in datasets.items()
    }


def _check_against_containers(
    loaders: Loaders,
    neuron_data_dictionary: Mapping[str, ResponsesTrainTestSplit] | None,
    movies_dictionary: Mapping[str, MoviesTrainTestSplit] | None,
) -> None:
    """The data_io containers (which set the model's readouts and input shape) describe what the loaders serve."""
    served = loaders["test"]
    if neuron_data_dictionary is not None:
        if set(neuron_data_dictionary) != set(served):
            raise DataFormatError(
                f"data_io.responses has sessions {sorted(neuron_data_dictionary)} but the dataloader serves "
                f"{sorted(served)}; use the same sessions (data_io.sessions / dataloader.retina_index)."
            )
        for session, loader in served.items():
            expected, actual = neuron_data_dictionary[session].n_neurons, loader.dataset.n_neurons  # type: ignore[attr-defined]
            if expected != actual:
                raise DataShapeError(
                    f"session {session!r}: data_io.responses has {expected} neurons but the dataloader serves "
                    f"{actual}; give both the same excluded_cells and cell_index."
                )
    for session, movies in (movies_dictionary or {}).items():
        if session in served:
            expected_hw = tuple(int(s) for s in movies.train.shape[2:])
            actual_hw = served[session].dataset.frame_shape  # type: ignore[attr-defined]
            if expected_hw != actual_hw:
                raise DataShapeError(
                    f"session {session!r}: data_io declares frames of {expected_hw} (height, width) but the dataloader "
                    f"serves {actual_hw}; set data_io.stimulus_height={actual_hw[0]} "
                    f"data_io.stimulus_width={actual_hw[1]} (and model.in_shape) or change the crops."
                )


def _locations(
    root: Path, sta_dir: str, retina: str, cells: Sequence[int], crop: Crop, flip_sta: bool, enabled: bool
) -> np.ndarray | None:
    return get_locations_from_stas(root / sta_dir, retina, cells, crop, flip_sta) if enabled else None


def receptive_field_location(
    basepath: str | Path,
    retina_index: str,
    cell_index: int,
    *,
    flip_sta: bool,
    big_crops: Mapping[str, Crop] | Crop | None = None,
    crop: Crop = 0,
    retina_specific_crops: bool = True,
    sta_dir: str = "stas",
) -> list[int]:
    """``[row, col]`` of one cell's receptive-field centre in the frames its loader serves.

    The same STA search and window crop as the loaders' locations (``big_crops``/``crop``/``retina_specific_crops``
    as given to the loader; ``flip_sta`` True for natural movies, False for white noise), so a single-cell model
    can be centred on its cell from a config (the reference left that to the user). ``basepath`` may be a URL.
    """
    root = get_local_file_path(str(basepath), what="Sridhar 2025 STA files")
    retina_crop = _retina_crop(big_crops, retina_index, crop, retina_specific_crops)
    row, col = get_locations_from_stas(root / sta_dir, retina_index, [cell_index], retina_crop, flip_sta)[0]
    return [int(row), int(col)]


def _warn_unused(kwargs: Mapping[str, Any], loader: str) -> None:
    if kwargs:
        log.warning("%s: ignoring unknown arguments %s", loader, sorted(kwargs))


# ---------------------------------------------------------------------------------------------- natural movie
def frame_movie_loader(
    files: Mapping[str, str],
    fixation_files: Mapping[str, str],
    big_crops: Mapping[str, Crop] | Crop | None,
    basepath: str | Path,
    batch_size: int = 16,
    seed: int | None = None,
    train_frac: float = 0.8,
    subsample: int = 1,
    crop: Crop = 0,
    num_of_trials_to_use: int | None = None,
    start_using_trial: int = 0,
    num_of_frames: int | Sequence[int] = 30,
    temporal_dilation: int = 1,
    hidden_temporal_dilation: int | Sequence[int] = 1,
    cell_index: int | None = None,
    retina_index: str | None = None,
    device: str = "cpu",
    time_chunk_size: int = 1,
    num_of_layers: int = 1,
    excluded_cells: Mapping[str, Sequence[int]] | None = None,
    frame_file: str = "_img_",
    img_dir_name: str = "stimuli",
    full_img_w: int = 1400,
    full_img_h: int = 1200,
    img_h: int | None = None,
    img_w: int | None = None,
    final_training: bool = False,
    padding: int = 200,
    retina_specific_crops: bool = True,
    stimulus_seed: int = 0,
    hard_coded: Any = None,
    flip_imgs: bool = False,
    shuffle: bool | None = None,
    sta_dir: str = "stas",
    get_locations: bool = True,
    sessions: Sequence[str] | None = None,
    neuron_data_dictionary: Mapping[str, ResponsesTrainTestSplit] | None = None,
    movies_dictionary: Mapping[str, MoviesTrainTestSplit] | None = None,
    **kwargs: Any,
) -> Loaders:
    """Natural-movie loaders ``{"train" | "validation" | "test": {retina: DataLoader}}``.

    Reads from ``basepath`` (local folder or URL): responses ``files[retina]``, fixations
    ``fixation_files[retina]``, images ``img_dir_name/*<frame_file>*.npy`` (loaded once and shared by all
    retinas) and, with ``get_locations``, STAs in ``sta_dir`` (flipped along height, as the reference does).
    Retinas: ``retina_index``, else ``sessions``, else every key of ``fixation_files``. ``num_of_frames`` may be
    the model's list of temporal kernel sizes (one per layer). ``img_h``/``img_w`` default to the full size
    minus ``3 * padding``. The window crop is ``big_crops[retina]`` (or ``big_crops`` for every retina) when
    ``retina_specific_crops``, else ``crop``. ``shuffle`` (default: train yes, validation no). ``device`` is
    unused. ``neuron_data_dictionary``/``movies_dictionary`` (passed by the training pipeline) are checked
    against what the loaders serve. Batches: see the module docstring.
    """
    _warn_unused(kwargs, "frame_movie_loader")
    root = get_local_file_path(str(basepath), what="Sridhar 2025 natural-movie data")
    retinas = _selected_retinas(fixation_files, retina_index, sessions)
    missing = [r for r in retinas if r not in files]
    if missing:
        raise DataFormatError(f"no response file configured for retinas {missing}; files has {sorted(files)}.")
    responses = load_responses(root, {r: files[r] for r in retinas}, stimulus_seed, excluded_cells, cell_index)
    frames = load_frames(root / img_dir_name, frame_file, full_img_w, full_img_h)
    img_h = full_img_h - 3 * padding if img_h is None else img_h
    img_w = full_img_w - 3 * padding if img_w is None else img_w
    sampler_seed = _default_seed(seed)
    loaders: Loaders = {"train": {}, "validation": {}, "test": {}}
    for retina in retinas:
        data = responses[retina]
        fixation_path = root / fixation_files[retina]
        if not fixation_path.is_file():
            raise DataFileNotFoundError(f"retina {retina!r}: fixation file {str(fixation_path)!r} does not exist.")
        with fixation_path.open() as handle:
            fixations = fixation_table(process_fixations(handle, flip_imgs=flip_imgs))  # shared by the 3 splits
        train_ids, val_ids = _trial_split(
            data["train_responses"], train_frac=train_frac, seed=seed, final_training=final_training,
            hard_coded=hard_coded, num_of_trials_to_use=num_of_trials_to_use, start_using_trial=start_using_trial,
        )  # fmt: skip
        retina_crop = _retina_crop(big_crops, retina, crop, retina_specific_crops)
        common: dict[str, Any] = {
            "frames": frames, "fixations": fixations, "temporal_dilation": temporal_dilation,
            "hidden_temporal_dilation": hidden_temporal_dilation, "img_dir_name": img_dir_name,
            "frame_file": frame_file, "crop": retina_crop, "subsample": subsample, "num_of_frames": num_of_frames,
            "num_of_layers": num_of_layers, "time_chunk_size": time_chunk_size, "full_img_w": full_img_w,
            "full_img_h": full_img_h, "img_w": img_w, "img_h": img_h, "padding": padding,
            "locations": _locations(root, sta_dir, retina, data["cell_indices"], retina_crop, True, get_locations),
        }  # fmt: skip
        datasets = {
            "train": MarmosetMovieDataset(data, root, indices=train_ids, **common),
            "validation": MarmosetMovieDataset(data, root, indices=val_ids, **common),
            "test": MarmosetMovieDataset(data, root, indices=None, test=True, **common),
        }
        shuffle_train = True if shuffle is None else shuffle
        shuffle_validation = False if shuffle is None else shuffle
        session_loaders = _loaders_for(
            datasets, batch_size=batch_size, seed=sampler_seed,
            train_sampler=ChunkedSampler(datasets["train"], sampler_seed, by_trial=False) if shuffle_train else None,
            validation_sampler=ChunkedSampler(datasets["validation"], sampler_seed, by_trial=False)
            if shuffle_validation else None,
        )  # fmt: skip
        for split, loader in session_loaders.items():
            loaders[split][retina] = loader
    _check_against_containers(loaders, neuron_data_dictionary, movies_dictionary)
    return loaders


# ---------------------------------------------------------------------------------------------- white noise
def _shape_of_npy(path: Path) -> tuple[int, ...] | None:
    return tuple(np.load(path, mmap_mode="r").shape) if path.is_file() else None


def infer_noise_folders(root: Path, responses: Mapping[str, Any]) -> tuple[str, str]:
    """The ``(training, test)`` stimulus folders under ``root`` whose files fit a retina's responses.

    Candidates are the pairs ``non_repeating_stimuli_<k>`` / ``repeating_stimuli_<k>``; a pair fits when its test
    movie has exactly ``T_test`` frames, its ``trial_000`` exactly ``frames_per_trial`` frames and it has at least
    ``n_trials`` trial folders. Raises :class:`DataFormatError` unless exactly one pair fits.
    """
    _, frames_per_trial, n_trials = np.shape(responses["train_responses"])
    test_frames = np.shape(responses["test_responses"])[1]
    fitting, candidates = [], sorted(p.name for p in root.glob(f"{WN_TRAIN_FOLDER_PREFIX}*") if p.is_dir())
    for train_name in candidates:
        test_name = WN_TEST_FOLDER_PREFIX + train_name[len(WN_TRAIN_FOLDER_PREFIX) :]
        test_shape = _shape_of_npy(trial_image_path(root / test_name, None))
        trial_shape = _shape_of_npy(trial_image_path(root / train_name, 0))
        n_folders = sum(1 for p in (root / train_name).glob("trial_*") if p.is_dir())
        if test_shape and trial_shape and (test_shape[-1], trial_shape[-1]) == (test_frames, frames_per_trial):
            if n_folders >= n_trials:
                fitting.append((train_name, test_name))
    if len(fitting) != 1:
        raise DataFormatError(
            f"cannot tell which white-noise stimulus folders under {str(root)!r} belong to responses with "
            f"{n_trials} trials of {frames_per_trial} frames and a {test_frames}-frame test sequence: fitting pairs "
            f"{fitting} among {candidates}. Set train_image_path and test_image_path ({{retina: folder}})."
        )
    return fitting[0]


def white_noise_loader(
    basepath: str | Path,
    files: Mapping[str, str],
    big_crops: Mapping[str, Crop] | Crop | None,
    train_image_path: Mapping[str, str] | None,
    test_image_path: Mapping[str, str] | None,
    excluded_cells: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 10,
    seed: int | None = None,
    train_frac: float = 0.8,
    subsample: int = 1,
    crop: Crop = 20,
    use_cache: bool = True,
    cache_maxsize: int = 5,
    retina_index: str | None = None,
    num_of_trials_to_use: int | None = None,
    start_using_trial: int = 0,
    num_of_frames: int | Sequence[int] = 15,
    temporal_dilation: int = 1,
    hidden_temporal_dilation: int | Sequence[int] = 1,
    cell_index: int | None = None,
    device: str = "cpu",
    time_chunk_size: int = 1,
    num_of_layers: int = 1,
    retina_specific_crops: bool = True,
    extra_frame: int = 0,
    hard_coded: Any = None,
    chunked_sampling: bool = True,
    get_locations: bool = True,
    sta_dir: str = "stas",
    sessions: Sequence[str] | None = None,
    neuron_data_dictionary: Mapping[str, ResponsesTrainTestSplit] | None = None,
    movies_dictionary: Mapping[str, MoviesTrainTestSplit] | None = None,
    **kwargs: Any,
) -> Loaders:
    """White-noise loaders ``{"train" | "validation" | "test": {retina: DataLoader}}``.

    Reads from ``basepath`` (local folder or URL): responses ``files[retina]``, training trials
    ``train_image_path[retina]/trial_<NNN>/all_images.npy``, the test sequence
    ``test_image_path[retina]/all_images.npy`` (both folders inferred per retina by :func:`infer_noise_folders`
    when the mapping is None) and, with ``get_locations``, STAs in ``sta_dir`` (not flipped). Retinas:
    ``retina_index``, else ``sessions``, else every key of ``files``. ``cell_index`` keeps one neuron; its default
    is None (all neurons) -- the reference defaulted to 0, so its multi-cell configs trained a single cell.
    Training and validation chunks are served trial by trial by a :class:`ChunkedSampler` (``chunked_sampling``;
    else shuffled / in order). ``device`` is unused. ``neuron_data_dictionary``/``movies_dictionary`` are checked
    against what the loaders serve. Batches: see the module docstring.
    """
    _warn_unused(kwargs, "white_noise_loader")
    root = get_local_file_path(str(basepath), what="Sridhar 2025 white-noise data")
    retinas = _selected_retinas(files, retina_index, sessions)
    responses = load_responses(root, {r: files[r] for r in retinas}, 0, excluded_cells, cell_index)
    sampler_seed = _default_seed(seed)
    loaders: Loaders = {"train": {}, "validation": {}, "test": {}}
    for retina in retinas:
        data = responses[retina]
        if train_image_path is None or test_image_path is None:
            train_folder, test_folder = infer_noise_folders(root, data)
        else:
            if retina not in train_image_path or retina not in test_image_path:
                raise DataFormatError(f"train_image_path/test_image_path have no folder for retina {retina!r}.")
            train_folder, test_folder = train_image_path[retina], test_image_path[retina]
        train_ids, val_ids = _trial_split(
            data["train_responses"], train_frac=train_frac, seed=seed, final_training=False, hard_coded=hard_coded,
            num_of_trials_to_use=num_of_trials_to_use, start_using_trial=start_using_trial,
        )  # fmt: skip
        retina_crop = _retina_crop(big_crops, retina, crop, retina_specific_crops)
        common: dict[str, Any] = {
            "use_cache": use_cache, "cache_maxsize": cache_maxsize, "crop": retina_crop, "subsample": subsample,
            "num_of_frames": num_of_frames, "num_of_layers": num_of_layers, "time_chunk_size": time_chunk_size,
            "temporal_dilation": temporal_dilation, "hidden_temporal_dilation": hidden_temporal_dilation,
            "extra_frame": extra_frame,
            "locations": _locations(root, sta_dir, retina, data["cell_indices"], retina_crop, False, get_locations),
        }  # fmt: skip
        datasets = {
            "train": NoiseDataset(data, root / train_folder, indices=train_ids, **common),
            "validation": NoiseDataset(data, root / train_folder, indices=val_ids, **common),
            "test": NoiseDataset(data, root / test_folder, indices=None, test=True, **common),
        }
        session_loaders = _loaders_for(
            datasets, batch_size=batch_size, seed=sampler_seed,
            train_sampler=ChunkedSampler(datasets["train"], sampler_seed, by_trial=chunked_sampling),
            validation_sampler=ChunkedSampler(datasets["validation"], sampler_seed) if chunked_sampling else None,
        )  # fmt: skip
        for split, loader in session_loaders.items():
            loaders[split][retina] = loader
    _check_against_containers(loaders, neuron_data_dictionary, movies_dictionary)
    return loaders
