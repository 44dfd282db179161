"""Score a model's predictions of a session's test movie against trial-averaged and per-trial responses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.eval.metrics import correlation_numpy, crop_responses
from openretina.eval.oracles import oracle_corr_jackknife


@dataclass(frozen=True)
class TestMovieScores:
    """Per-neuron scores on one test movie.

    Attributes:
        correlation: ``(N,)`` correlation of the prediction with the trial-averaged response.
        oracle: ``(N,)`` jackknife oracle correlation of the per-trial responses over the same frames, or NaN
            when the session has no per-trial responses.
        lag: frames of history the model consumed before its first prediction.
    """

    __test__ = False  # not a pytest test class despite the name

    correlation: np.ndarray
    oracle: np.ndarray
    lag: int


@torch.no_grad()
def predict_movie(model: torch.nn.Module, movie: np.ndarray, data_key: str) -> np.ndarray:
    """Model responses to a whole movie ``(C, T, H, W)``: returns ``(T_out, N)``."""
    inputs = torch.as_tensor(np.asarray(movie), dtype=torch.float32)[None]
    device = next(model.parameters()).device
    return model(inputs.to(device), data_key=data_key)[0].cpu().numpy()


def evaluate_test_movie(
    model: torch.nn.Module,
    movies: MoviesTrainTestSplit,
    responses: ResponsesTrainTestSplit,
    data_key: str,
    test_name: str | None = None,
) -> TestMovieScores:
    """Correlation to the trial average and jackknife oracle for ``test_name`` (default: the only test movie).

    The model is run once on the whole test movie, so there is a single, unambiguous lag between stimulus and
    prediction (the reference's chunked evaluation could misalign it).
    """
    name = test_name if test_name is not None else next(iter(movies.test_dict))
    prediction = predict_movie(model, movies.test_dict[name], data_key)
    average, lag = crop_responses(np.asarray(responses.test_dict[name]), prediction)
    correlation = correlation_numpy(average.T, prediction, axis=0)
    by_trial = responses.get_test_by_trial(name)
    if by_trial is None or np.asarray(by_trial).shape[0] < 2:
        oracle = np.full(prediction.shape[1], np.nan)
    else:
        oracle = oracle_corr_jackknife(np.asarray(by_trial).transpose(2, 0, 1), cut_first_n_frames=lag)[0]
    return TestMovieScores(correlation=correlation, oracle=oracle, lag=lag)
