"""Stimulus optimisation: most exciting inputs (MEIs) and most discriminative stimuli (MDS).

Objectives and reducers live in :mod:`.objective`, stopping rules in :mod:`.optimization_stopper`,
regularisers and postprocessors in :mod:`.regularizer` and the optimisation loop in :mod:`.optimizer`;
everything is re-exported here.
"""

from openretina.insilico.stimulus_optimization.objective import (
    AbstractObjective,
    ContrastiveNeuronObjective,
    IncreaseObjective,
    InnerNeuronVisualizationObjective,
    JitteredObjective,
    MeanReducer,
    PerStimulusObjective,
    ResponseReducer,
    ResponseWindowWarning,
    SliceMeanReducer,
)
from openretina.insilico.stimulus_optimization.optimization_stopper import EarlyStopper, OptimizationStopper
from openretina.insilico.stimulus_optimization.optimizer import (
    OptimizationResult,
    StimulusOptimizationError,
    frozen_model,
    optimize_stimulus,
    random_stimulus,
)
from openretina.insilico.stimulus_optimization.regularizer import (
    ChangeNormJointlyClipRangeSeparately,
    ClipStimulus,
    RangeRegularizationLoss,
    SpatialGaussianLowPassFilterProcessor,
    StimulusPostprocessor,
    StimulusRegularizationLoss,
    TemporalFourierLowPassProcessor,
    TemporalGaussianLowPassFilterProcessor,
    TotalVariationRegularizer,
)

__all__ = [
    "AbstractObjective",
    "ChangeNormJointlyClipRangeSeparately",
    "ClipStimulus",
    "ContrastiveNeuronObjective",
    "EarlyStopper",
    "IncreaseObjective",
    "InnerNeuronVisualizationObjective",
    "JitteredObjective",
    "MeanReducer",
    "OptimizationResult",
    "OptimizationStopper",
    "PerStimulusObjective",
    "RangeRegularizationLoss",
    "ResponseReducer",
    "ResponseWindowWarning",
    "SliceMeanReducer",
    "SpatialGaussianLowPassFilterProcessor",
    "StimulusOptimizationError",
    "StimulusPostprocessor",
    "StimulusRegularizationLoss",
    "TemporalFourierLowPassProcessor",
    "TemporalGaussianLowPassFilterProcessor",
    "TotalVariationRegularizer",
    "frozen_model",
    "optimize_stimulus",
    "random_stimulus",
]
