"""The model shipped inside the package: registered, loads with no network, and predicts its synthetic retina."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from openretina.data_io.synthetic import make_synthetic_retina
from openretina.eval.metrics import correlation_numpy
from openretina.hub import get_pretrained_model
from openretina.models import load_core_readout_from_remote

NAME = "synthetic_retina_core_readout"


def test_bundled_model_is_registered_as_package_data() -> None:
    entry = get_pretrained_model(NAME)
    assert entry is not None and entry.package_path is not None and entry.hub_path is None
    assert entry.input_shape == (2, 18, 16)


def test_bundled_model_loads_offline_and_predicts_its_retina(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bundled model must load without network access")

    monkeypatch.setattr(socket, "create_connection", no_network)
    model = load_core_readout_from_remote(NAME, "cpu")
    assert not model.training
    assert model.readout_keys() == ["session_0", "session_1"]

    # The demo trained it on seed 0 of the default synthetic retina: its held-out test movie is predicted well.
    dataset = make_synthetic_retina(seed=0)
    movie = torch.from_numpy(np.asarray(dataset.movies["session_0"].test_dict["test"]))[None]
    with torch.no_grad():
        prediction = model(movie, data_key="session_0")[0].numpy()
    lag = movie.shape[2] - prediction.shape[0]
    average = dataset.responses["session_0"].test_dict["test"][:, lag:].T
    assert np.nanmean(correlation_numpy(average, prediction, axis=0)) > 0.8
