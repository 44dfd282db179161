"""Write small random data sets in the exact on-disk layouts of Sridhar et al. 2025.

For tests, examples and trying a configuration offline: the loaders read them exactly like the published
folders (``natural_movie/`` and ``whitenoise/``). Test responses share a per-neuron signal across repeats, so the
evaluation's explainable-variance filter keeps the neurons.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openretina.data_io.sridhar_2025.constants import (
    NM_FIXATION_FILES,
    NM_RESPONSE_FILES,
    TEST_DATA_FRAMES,
    WN_RESPONSE_FILES,
    WN_TEST_FOLDER_PREFIX,
    WN_TRAIN_FOLDER_PREFIX,
)
from openretina.data_io.sridhar_2025.dataloader_utils import sta_file_name
from openretina.data_io.sridhar_2025.noise_dataset import trial_image_path


@dataclass(frozen=True)
class SampleRecording:
    """Sizes of a sample recording (per retina): neurons, trials of ``frames_per_trial`` frames, a test sequence
    of ``test_frames`` frames shown ``test_repeats`` times, and STAs of ``sta_shape`` ``(frames, height, width)``."""

    n_neurons: int = 3
    n_trials: int = 5
    frames_per_trial: int = 70
    test_frames: int = 60
    test_repeats: int = 3
    sta_shape: tuple[int, int, int] = (4, 150, 200)


def _write_pickle(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(content, handle)


def _write_responses(path: Path, recording: SampleRecording, rng: np.random.Generator) -> None:
    n, frames, trials = recording.n_neurons, recording.frames_per_trial, recording.n_trials
    signal = rng.poisson(2.0, (n, recording.test_frames, 1)).astype(np.float64)
    noise = rng.uniform(0.0, 0.2, (n, recording.test_frames, recording.test_repeats))
    content = {
        "train_responses": rng.poisson(1.0, (n, frames, trials)).astype(np.float64),
        "test_responses": signal + noise,
    }
    _write_pickle(path, content)


def _write_stas(folder: Path, retina: str, recording: SampleRecording, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for cell in range(recording.n_neurons):
        np.save(folder / sta_file_name(cell, retina), rng.normal(0.0, 1.0, recording.sta_shape).astype(np.float32))


def write_sample_natural_movie(
    root: str | Path,
    sessions: Sequence[str] = ("01", "02"),
    recording: SampleRecording | None = None,
    *,
    n_images: int = 4,
    full_img_w: int = 350,
    full_img_h: int = 300,
    img_w: int = 200,
    img_h: int = 150,
    padding: int = 50,
    img_dir_name: str = "stimuli_padded_4",
    seed: int = 0,
) -> Path:
    """A ``natural_movie`` folder under ``root``: response pickles, fixation files (the first
    :data:`TEST_DATA_FRAMES` lines are the test sequence), images ``<img_dir_name>/sample_img_<k>.npy``
    ``(full_img_w, full_img_h)`` with values 0..255, and STAs. Fixations keep every window inside its image.
    Returns the folder."""
    recording = recording or SampleRecording()
    rng = np.random.default_rng(seed)
    folder = Path(root) / "natural_movie"
    (folder / img_dir_name).mkdir(parents=True, exist_ok=True)
    for k in range(n_images):
        np.save(
            folder / img_dir_name / f"sample_img_{k:04d}.npy",
            rng.integers(0, 256, (full_img_w, full_img_h), dtype=np.uint8),
        )
    n_lines = TEST_DATA_FRAMES + recording.n_trials * recording.frames_per_trial
    x_range = (img_w // 2 - padding, full_img_w - img_w // 2 - padding + 1)
    y_range = (img_h // 2 - padding, full_img_h - img_h // 2 - padding + 1)
    for retina in sessions:
        _write_responses(folder / NM_RESPONSE_FILES[retina], recording, rng)
        _write_stas(folder / "stas", retina, recording, rng)
    for relative in {NM_FIXATION_FILES[retina] for retina in sessions}:
        lines = [
            f"{image}.0 0 0 {x} {y} {flip}\n"
            for image, x, y, flip in zip(
                rng.integers(0, n_images, n_lines), rng.integers(*x_range, n_lines), rng.integers(*y_range, n_lines),
                rng.integers(0, 2, n_lines), strict=True,
            )
        ]  # fmt: skip
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text("".join(lines))
    return folder


def write_sample_white_noise(
    root: str | Path,
    sessions: Sequence[str] = ("01", "02"),
    recording: SampleRecording | None = None,
    *,
    height: int = 120,
    width: int = 130,
    stimulus_set: int = 1,
    seed: int = 0,
) -> Path:
    """A ``whitenoise`` folder under ``root``: response pickles, binary (+-1, int8) noise
    ``non_repeating_stimuli_<set>/trial_<NNN>/all_images.npy`` ``(height, width, frames_per_trial)`` and
    ``repeating_stimuli_<set>/all_images.npy`` ``(height, width, test_frames)``, and STAs. Returns the folder."""
    recording = recording or SampleRecording()
    rng = np.random.default_rng(seed)
    folder = Path(root) / "whitenoise"

    def noise(frames: int) -> np.ndarray:
        return (2 * rng.integers(0, 2, (height, width, frames)) - 1).astype(np.int8)

    train_folder = folder / f"{WN_TRAIN_FOLDER_PREFIX}_{stimulus_set}"
    for trial in range(recording.n_trials):
        path = trial_image_path(train_folder, trial)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, noise(recording.frames_per_trial))
    test_path = trial_image_path(folder / f"{WN_TEST_FOLDER_PREFIX}_{stimulus_set}", None)
    test_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(test_path, noise(recording.test_frames))
    for retina in sessions:
        _write_responses(folder / WN_RESPONSE_FILES[retina], recording, rng)
        _write_stas(folder / "stas", retina, recording, rng)
    return folder
