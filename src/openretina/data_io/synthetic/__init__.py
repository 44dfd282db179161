"""A synthetic retina with known ground truth: naturalistic and white-noise stimuli, typed ganglion-cell mosaics,
noisy responses in the reference containers, and the analyses that check them (see ``docs/synthetic_retina.md``).
"""

from openretina.data_io.synthetic.analysis import (
    ln_model_prediction,
    rank_one_receptive_field,
    spike_triggered_average,
)
from openretina.data_io.synthetic.cells import CellType, SyntheticConfigError, default_cell_types
from openretina.data_io.synthetic.population import CellPopulation, PopulationParameters, make_cell_population
from openretina.data_io.synthetic.retina import (
    SessionGroundTruth,
    SyntheticRetinaConfig,
    SyntheticRetinaDataset,
    make_synthetic_retina,
)
from openretina.data_io.synthetic.stimuli import (
    power_law_image,
    saccadic_scene_movie,
    spatial_power_spectrum,
    white_noise_movie,
)

__all__ = [
    "CellPopulation",
    "CellType",
    "PopulationParameters",
    "SessionGroundTruth",
    "SyntheticConfigError",
    "SyntheticRetinaConfig",
    "SyntheticRetinaDataset",
    "default_cell_types",
    "ln_model_prediction",
    "make_cell_population",
    "make_synthetic_retina",
    "power_law_image",
    "rank_one_receptive_field",
    "saccadic_scene_movie",
    "spatial_power_spectrum",
    "spike_triggered_average",
    "white_noise_movie",
]
