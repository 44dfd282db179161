"""Direction and orientation selectivity from responses to stimuli moving in several directions.

Vector-sum indices (e.g. Mazurek et al. 2014), for directions ``θ_k`` (degrees) and non-negative
responses ``r_k``:

* direction selectivity index ``DSI = |Σ_k r_k·exp(iθ_k)| / Σ_k r_k``,
* orientation selectivity index ``OSI = |Σ_k r_k·exp(2iθ_k)| / Σ_k r_k``,
* preferred direction ``arg(Σ_k r_k·exp(iθ_k))`` in ``[0, 360)`` degrees.

Both indices lie in ``[0, 1]``: 1 for a response to a single direction, 0 for equal responses in equally
spaced directions. Unlike the "(pref − null)/(pref + null)" ratio they use every direction, so they do not
depend on which sample happens to be the peak. Directions should be equally spaced over 360°.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openretina.errors import DataShapeError

__all__ = ["direction_selectivity_index", "orientation_selectivity_index", "preferred_direction"]


def _vector_sum(
    directions_deg: Sequence[float] | np.ndarray, responses: np.ndarray, harmonic: int
) -> tuple[np.ndarray, np.ndarray]:
    angles = np.deg2rad(np.asarray(directions_deg, dtype=np.float64))
    values = np.asarray(responses, dtype=np.float64)
    if angles.ndim != 1 or values.shape[:1] != angles.shape:
        raise DataShapeError(
            f"responses must have the directions on axis 0: {angles.shape[0] if angles.ndim else 0} directions, "
            f"responses of shape {values.shape}."
        )
    if (values < 0).any():
        raise ValueError(
            "selectivity indices need non-negative responses (rates), but some are negative; "
            "shift or rectify them first (e.g. subtract the baseline and clip at 0)."
        )
    phasors = np.exp(1j * harmonic * angles).reshape(-1, *([1] * (values.ndim - 1)))
    return (phasors * values).sum(axis=0), values.sum(axis=0)


def _index(directions_deg: Sequence[float] | np.ndarray, responses: np.ndarray, harmonic: int) -> np.ndarray:
    vector, total = _vector_sum(directions_deg, responses, harmonic)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.abs(vector) / total, np.nan)


def direction_selectivity_index(directions_deg: Sequence[float] | np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Vector-sum DSI (module docs). Input: responses ``(directions, ...)``. Output: ``(...)``; NaN if all zero."""
    return _index(directions_deg, responses, harmonic=1)


def orientation_selectivity_index(directions_deg: Sequence[float] | np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Vector-sum OSI (module docs). Input: responses ``(directions, ...)``. Output: ``(...)``; NaN if all zero."""
    return _index(directions_deg, responses, harmonic=2)


def preferred_direction(directions_deg: Sequence[float] | np.ndarray, responses: np.ndarray) -> np.ndarray:
    """Angle of the response vector sum in ``[0, 360)`` degrees. Input: ``(directions, ...)``. Output: ``(...)``."""
    vector, _ = _vector_sum(directions_deg, responses, harmonic=1)
    angle = np.mod(np.rad2deg(np.angle(vector)), 360.0)
    return np.where(angle >= 360.0, 0.0, angle)  # mod of a tiny negative angle rounds to 360.0
