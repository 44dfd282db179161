"""`openretina create-data`: write a small synthetic dataset in the native HDF5 layout.

Output (``docs/hdf5_format.md``)::

    DIR/stimuli/random_noise_{i}.npy   float32 (num_colors, (70 + i) * clip_length, 16, 8), i < num_stimuli
    DIR/session_{j}.hdf5               responses_random_noise_{i} float32 (N_j, T_i), session_info/celltypes (N_j,)
                                       (+ session_info/celltype_names and attribute sampling_rate_hz: synthetic)

with ``N_j`` drawn uniformly from 10..29 as in the reference. Unlike the reference, runs are seeded
(``--seed``), stimuli are float32, and responses are non-negative (by default Poisson spike counts of the
synthetic retina, which a model can learn; ``--responses box`` keeps the reference's box receptive fields,
rectified), so the data suits a Poisson loss. Files are written atomically and never overwritten without
``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from openretina.data_io.h5_layout import RESPONSES_PREFIX, SESSION_INFO_GROUP
from openretina.data_io.h5_writer import OutputExistsError, refuse_existing, stimulus_path, write_session_file
from openretina.data_io.h5_writer import write_stimulus as write_stimulus_file
from openretina.data_io.synthetic import default_cell_types, make_cell_population

STIMULUS_HEIGHT, STIMULUS_WIDTH = 16, 8
# Stimulus i lasts (BASE_CLIPS + i) clips, as in the reference generator.
BASE_CLIPS = 70
NEURONS_RANGE = (10, 30)  # integers in [10, 29]
N_CELL_TYPES = 40


def stimulus_name(index: int) -> str:
    """Name of the ``index``-th generated stimulus: ``random_noise_<index>``."""
    return f"random_noise_{index}"


def session_name(index: int) -> str:
    """Name of the ``index``-th generated session: ``session_<index>``."""
    return f"session_{index}"


def write_data_to_directory(
    directory: str | Path,
    num_colors: int = 3,
    num_stimuli: int = 4,
    num_sessions: int = 2,
    clip_length: int = 75,
    *,
    seed: int = 0,
    responses: str = "synthetic",
    overwrite: bool = False,
) -> list[Path]:
    """Write white-noise stimuli and per-session responses to ``directory``; return the written paths.

    ``responses`` selects the response model: ``"synthetic"`` (Poisson spike counts of the synthetic retina,
    :func:`synthetic_session`) or ``"box"`` (the reference's box receptive fields made non-negative). Every
    file that would be written is checked first, so an existing dataset is left untouched unless ``overwrite``
    is set.
    """
    if responses not in RESPONSE_MODELS:
        raise ValueError(f"responses must be one of {sorted(RESPONSE_MODELS)}, got {responses!r}.")
    directory = Path(directory)
    stimulus_paths = [stimulus_path(directory, stimulus_name(i)) for i in range(num_stimuli)]
    session_paths = [directory / f"{session_name(j)}.hdf5" for j in range(num_sessions)]
    refuse_existing(stimulus_paths + session_paths, overwrite)

    # Independent streams: the stimuli do not change when the number of sessions changes, and vice versa.
    stimulus_seed, *session_seeds = np.random.SeedSequence(seed).spawn(1 + num_sessions)
    stimulus_rng = np.random.default_rng(stimulus_seed)
    stimuli = {
        stimulus_name(i): stimulus_rng.standard_normal(
            (num_colors, (BASE_CLIPS + i) * clip_length, STIMULUS_HEIGHT, STIMULUS_WIDTH), dtype=np.float32
        )
        for i in range(num_stimuli)
    }
    written = [write_stimulus_file(directory, name, movie, overwrite=overwrite) for name, movie in stimuli.items()]
    for path, session_seed in zip(session_paths, session_seeds):
        rng = np.random.default_rng(session_seed)
        n_neurons = int(rng.integers(*NEURONS_RANGE))
        session = RESPONSE_MODELS[responses](stimuli, n_neurons, rng)
        write_session_file(
            path,
            session.responses,
            session_info=session.session_info(),
            sampling_rate_hz=session.sampling_rate_hz,
            overwrite=overwrite,
        )
        written.append(path)
    return written


@dataclass(frozen=True)
class GeneratedSession:
    """Responses ``{stimulus: (neurons, time)}`` of one generated session, cell-type labels ``(neurons,)``
    (and their names where the model has them) and the frame rate the model assumes (None when it has none)."""

    responses: dict[str, np.ndarray]
    celltypes: np.ndarray
    sampling_rate_hz: float | None
    celltype_names: list[str] | None = None

    def session_info(self) -> dict[str, object]:
        """Content of the ``session_info`` group."""
        info: dict[str, object] = {"celltypes": self.celltypes}
        if self.celltype_names is not None:
            info["celltype_names"] = self.celltype_names
        return info


def synthetic_session(stimuli: dict[str, np.ndarray], n_neurons: int, rng: np.random.Generator) -> GeneratedSession:
    """Poisson spike counts of a synthetic-retina population (several ON/OFF, chromatic and subunit types).

    The population is calibrated on the first stimulus; ``celltypes`` are its true type indices and
    ``celltype_names`` their names.
    """
    first = next(iter(stimuli.values()))
    channel_names = [f"channel {c}" for c in range(first.shape[0])]
    population = make_cell_population(default_cell_types(channel_names), n_neurons, first, rng)
    responses = {name: population.sample(population.rates(movie), rng) for name, movie in stimuli.items()}
    return GeneratedSession(responses, population.cell_type_ids, population.frame_rate, population.cell_type_names)


def box_session(stimuli: dict[str, np.ndarray], n_neurons: int, rng: np.random.Generator) -> GeneratedSession:
    """Rates of the reference's box receptive-field neurons (rectified); cell types uniform in 0..39."""
    model = BoxReceptiveFieldModel.random(n_neurons, next(iter(stimuli.values())).shape[0], rng)
    responses = {name: model.rates(movie) for name, movie in stimuli.items()}
    return GeneratedSession(responses, rng.integers(0, N_CELL_TYPES, n_neurons), None)


@dataclass(frozen=True)
class BoxReceptiveFieldModel:
    """The reference's toy neurons, made non-negative: each sums one colour channel over a square receptive field,
    smooths the sum with a temporal box filter and maps it through ``softplus(gain * x + offset)``.

    All fields are ``(neurons,)`` arrays. Input of :meth:`rates`: (channels, time, height, width).
    Output: (neurons, time) non-negative rates.
    """

    gain: np.ndarray
    offset: np.ndarray
    channel: np.ndarray
    rf_size: np.ndarray  # side of the square, pixels
    rf_top: np.ndarray
    rf_left: np.ndarray
    box_width: np.ndarray  # frames

    @classmethod
    def random(cls, n_neurons: int, num_colors: int, rng: np.random.Generator) -> BoxReceptiveFieldModel:
        """Draw neuron parameters from the reference's ranges."""
        return cls(
            gain=rng.uniform(0.5, 1.5, n_neurons),
            offset=rng.uniform(0.0, 1.0, n_neurons),
            channel=rng.integers(0, num_colors, n_neurons),
            rf_size=rng.integers(2, 6, n_neurons),
            rf_top=rng.integers(0, STIMULUS_HEIGHT - 1, n_neurons),
            rf_left=rng.integers(0, STIMULUS_WIDTH - 1, n_neurons),
            box_width=rng.integers(3, 7, n_neurons),
        )

    def rates(self, movie: np.ndarray) -> np.ndarray:
        """Firing rates (neurons, time) float32 for a movie (channels, time, height, width)."""
        rates = np.empty((len(self.gain), movie.shape[1]), dtype=np.float32)
        for i in range(len(self.gain)):
            top, left, size = self.rf_top[i], self.rf_left[i], self.rf_size[i]
            drive = movie[self.channel[i], :, top : top + size, left : left + size].sum(axis=(1, 2), dtype=np.float64)
            width = int(self.box_width[i])
            smoothed = np.convolve(drive, np.full(width, 1.0 / width), mode="same")
            rates[i] = np.logaddexp(0.0, self.gain[i] * smoothed + self.offset[i])  # softplus, overflow-safe
        return rates


ResponseModel = Callable[[dict[str, np.ndarray], int, np.random.Generator], GeneratedSession]
RESPONSE_MODELS: dict[str, ResponseModel] = {"synthetic": synthetic_session, "box": box_session}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of `openretina create-data`."""
    parser = argparse.ArgumentParser(
        prog="openretina create-data",
        description=(
            "Write a synthetic dataset in the HDF5 layout read by openretina.data_io.h5_dataset_reader: "
            "DIR/stimuli/random_noise_<i>.npy (float32, colours x (70+i)*clip_length x 16 x 8) and "
            "DIR/session_<j>.hdf5 with responses_random_noise_<i> (neurons x time) and session_info/celltypes."
        ),
        epilog=(
            "Load it with openretina.data_io.h5_dataset_reader.load_stimuli(DIR, test_names=['random_noise_0'], "
            "stimulus_size=[NUM_COLORS, 16, 8]) and load_responses(DIR, test_names=['random_noise_0'])."
        ),
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="output directory (created if missing)")
    parser.add_argument("--num-colors", type=_positive_int, default=3, help="colour channels per stimulus (3)")
    parser.add_argument("--num-stimuli", type=_positive_int, default=4, help="number of stimulus movies (4)")
    parser.add_argument("--num-sessions", type=_positive_int, default=2, help="number of recording sessions (2)")
    parser.add_argument("--clip-length", type=_positive_int, default=75, help="frames per clip (75)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (0)")
    parser.add_argument(
        "--responses",
        choices=sorted(RESPONSE_MODELS),
        default="synthetic",
        help=(
            "response model: synthetic = Poisson spike counts of the synthetic retina (several ON/OFF, colour "
            "and nonlinear subunit cell types); box = the reference's box receptive fields, made non-negative "
            "(default: synthetic)"
        ),
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `openretina create-data`; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        written = write_data_to_directory(
            args.directory,
            args.num_colors,
            args.num_stimuli,
            args.num_sessions,
            args.clip_length,
            seed=args.seed,
            responses=args.responses,
            overwrite=args.overwrite,
        )
    except OutputExistsError as error:
        print(f"openretina create-data: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}  {_describe(path)}")
    return 0


def _describe(path: Path) -> str:
    """One-line summary of a written file: array shape and dtype, or the session's neuron count."""
    if path.suffix == ".npy":
        movie = np.load(path, mmap_mode="r")
        return f"{movie.dtype} {movie.shape}"
    with h5py.File(path, "r") as file:
        n_neurons = len(file[f"{SESSION_INFO_GROUP}/celltypes"])
        n_responses = sum(key.startswith(RESPONSES_PREFIX) for key in file)
    return f"{n_neurons} neurons, {n_responses} response datasets"
