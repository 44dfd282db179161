"""Config entry points for the embedded synthetic retina (``data_io/synthetic.yaml``).

Hydra calls the stimuli and the responses loaders separately; both return parts of one dataset, generated once
per set of settings and cached for the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from openretina.data_io.base import MoviesTrainTestSplit, ResponsesTrainTestSplit
from openretina.data_io.synthetic import SyntheticRetinaConfig, SyntheticRetinaDataset, make_synthetic_retina

__all__ = ["load_synthetic_responses", "load_synthetic_stimuli", "synthetic_retina"]


@lru_cache(maxsize=2)
def _cached_retina(settings: tuple[tuple[str, Any], ...]) -> SyntheticRetinaDataset:
    options = dict(settings)
    seed = int(options.pop("seed", 0))
    return make_synthetic_retina(SyntheticRetinaConfig(**options), seed=seed)


def synthetic_retina(retina: Mapping[str, Any]) -> SyntheticRetinaDataset:
    """The dataset for ``retina``: ``seed`` plus any :class:`SyntheticRetinaConfig` fields (scalars)."""
    return _cached_retina(tuple(sorted((str(k), v) for k, v in dict(retina).items())))


def load_synthetic_stimuli(retina: Mapping[str, Any]) -> dict[str, MoviesTrainTestSplit]:
    """Session -> stimulus movies of the synthetic retina described by ``retina``."""
    return dict(synthetic_retina(retina).movies)


def load_synthetic_responses(retina: Mapping[str, Any]) -> dict[str, ResponsesTrainTestSplit]:
    """Session -> responses of the synthetic retina described by ``retina``."""
    return dict(synthetic_retina(retina).responses)
