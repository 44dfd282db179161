"""Vector-sum direction and orientation selectivity against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from openretina.errors import DataShapeError
from openretina.insilico.tuning_analyses import (
    direction_selectivity_index,
    orientation_selectivity_index,
    preferred_direction,
)

FOUR = [0, 90, 180, 270]


@pytest.mark.parametrize(
    ("responses", "dsi", "osi"),
    [
        ([1, 0, 0, 0], 1.0, 1.0),  # one direction only
        ([1, 0, 1, 0], 0.0, 1.0),  # both directions of one axis
        ([1, 1, 1, 1], 0.0, 0.0),  # untuned
        ([2, 1, 0, 1], 0.5, 0.0),  # vector sum (2, 0) over total 4; second harmonic 2 - 1 + 0 - 1 = 0
        ([3, 1, 1, 1], 2 / 6, 2 / 6),  # (3 - 1, 1 - 1) / 6 and (3 - 1 + 1 - 1) / 6
    ],
)
def test_indices_match_hand_computed_values(responses: list[float], dsi: float, osi: float) -> None:
    values = np.asarray(responses, dtype=float)
    assert direction_selectivity_index(FOUR, values) == pytest.approx(dsi, abs=1e-12)
    assert orientation_selectivity_index(FOUR, values) == pytest.approx(osi, abs=1e-12)


def test_indices_work_per_neuron_and_preferred_direction_is_the_vector_angle() -> None:
    responses = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # (directions, neurons)
    np.testing.assert_allclose(direction_selectivity_index(FOUR, responses), [np.sqrt(2) / 2, 1.0])
    np.testing.assert_allclose(preferred_direction(FOUR, responses), [45.0, 270.0])


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(DataShapeError, match="directions on axis 0"):
        direction_selectivity_index(FOUR, np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        orientation_selectivity_index(FOUR, np.array([1.0, -1.0, 0.0, 0.0]))
    assert np.isnan(direction_selectivity_index(FOUR, np.zeros(4)))
