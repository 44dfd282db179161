"""Tuning analyses of trained models: tuning curves, selectivity indices and chromatic response gradients."""

from openretina.insilico.tuning_analyses.model_runs import frame_rate_of, frozen_eval, model_responses
from openretina.insilico.tuning_analyses.response_gradient import (
    MeiAcrossContrasts,
    equalize_channels,
    get_gradient_grid,
    trainer_fn,
)
from openretina.insilico.tuning_analyses.selectivity import (
    direction_selectivity_index,
    orientation_selectivity_index,
    preferred_direction,
)
from openretina.insilico.tuning_analyses.tuning_curves import (
    ResponseTrace,
    TuningCurve,
    chirp_response,
    flash_response,
    grating_tuning,
    moving_bar_tuning,
)

__all__ = [
    "MeiAcrossContrasts",
    "ResponseTrace",
    "TuningCurve",
    "chirp_response",
    "direction_selectivity_index",
    "equalize_channels",
    "flash_response",
    "frame_rate_of",
    "frozen_eval",
    "get_gradient_grid",
    "grating_tuning",
    "model_responses",
    "moving_bar_tuning",
    "orientation_selectivity_index",
    "preferred_direction",
    "trainer_fn",
]
