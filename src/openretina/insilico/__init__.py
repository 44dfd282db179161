"""In-silico experiments on trained models: stimulus optimisation, tuning analyses, receptive fields.

``from openretina.insilico import *`` gives the reference's six names plus :class:`EarlyStopper`; everything
else is importable from :mod:`openretina.insilico.stimulus_optimization`. ``visualize_receptive_fields`` (from
:mod:`openretina.insilico.receptive_fields`, as the published documentation imports it) is loaded on first use.
"""

from typing import Any

from openretina.insilico.stimulus_optimization import (
    ContrastiveNeuronObjective,
    EarlyStopper,
    IncreaseObjective,
    MeanReducer,
    OptimizationStopper,
    SliceMeanReducer,
    optimize_stimulus,
)

__all__ = [
    "ContrastiveNeuronObjective",
    "EarlyStopper",
    "IncreaseObjective",
    "MeanReducer",
    "OptimizationStopper",
    "SliceMeanReducer",
    "optimize_stimulus",
]


def __getattr__(name: str) -> Any:
    if name == "visualize_receptive_fields":  # lazy: the analyses behind it are not needed for optimisation
        from openretina.insilico.receptive_fields import visualize_receptive_fields

        return visualize_receptive_fields
    raise AttributeError(f"module 'openretina.insilico' has no attribute {name!r}")
