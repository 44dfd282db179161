"""Load the data a config describes: containers, per-session dataloaders, cycled loaders and ``data_info``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.utils import call, instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit, compute_data_info
from openretina.training.loaders import CycledLoaders, cycle_session_loaders

__all__ = ["TrainingData", "load_data"]


@dataclass(frozen=True)
class TrainingData:
    """Everything :func:`load_data` builds.

    Attributes:
        movies, responses: session -> containers, as returned by ``data_io.stimuli`` / ``data_io.responses``.
        dataloaders: ``{"train" | "validation" | <test name>: {session: DataLoader}}`` from ``cfg.dataloader``.
        loaders: the Lightning-ready cycled loaders.
        data_info: dataset summary stored in model checkpoints (:func:`compute_data_info`).
    """

    movies: dict[str, MoviesTrainTestSplit]
    responses: dict[str, ResponsesTrainTestSplit]
    dataloaders: dict[str, dict[str, DataLoader]]
    loaders: CycledLoaders
    data_info: dict[str, Any]


def load_data(cfg: DictConfig) -> TrainingData:
    """Call ``cfg.data_io.stimuli`` / ``responses``, check them, instantiate ``cfg.dataloader`` and cycle sessions.

    ``cfg.data_io.data_info`` (rates, species, ...) is merged into ``data_info``. With
    ``check_stimuli_responses_match`` every session's responses are checked against its movies first.
    """
    movies = call(cfg.data_io.stimuli)
    responses = call(cfg.data_io.responses)
    if cfg.get("check_stimuli_responses_match", False):
        for session, session_responses in responses.items():
            # Höfling-style loaders return one movie object shared by every session.
            movie = movies if isinstance(movies, MoviesTrainTestSplit) else movies[session]
            session_responses.check_matching_stimulus(movie, session=session)
    # A partial, called with the containers: passing them through `instantiate` would turn them into configs.
    make_dataloaders = instantiate(cfg.dataloader, _partial_=True)
    dataloaders = make_dataloaders(neuron_data_dictionary=responses, movies_dictionary=movies)
    partial = cfg.data_io.get("data_info")
    partial_info = OmegaConf.to_container(partial, resolve=True) if partial is not None else None
    data_info = compute_data_info(responses, movies, partial_data_info=partial_info)  # type: ignore[arg-type]
    seed = cfg.get("seed")
    loaders = cycle_session_loaders(dataloaders, seed=42 if seed is None else int(seed))
    return TrainingData(movies, responses, dataloaders, loaders, data_info)
