"""Reference import path of the LSTA vector-field analysis: the analysis steps and their figures in one place.

The code lives in :mod:`openretina.insilico.vector_field_analysis` (``stimuli``, ``lsta``, ``projection``) and
:mod:`openretina.plotting.vector_field`; importing this module loads no plotting library until a figure is drawn.
"""

from openretina.insilico.vector_field_analysis.lsta import compute_lsta_library
from openretina.insilico.vector_field_analysis.projection import (
    bin_vector_field,
    get_images_coordinate,
    get_pc_from_pca,
    project_onto_pcs,
)
from openretina.insilico.vector_field_analysis.stimuli import (
    get_model_temporal_padding,
    load_and_preprocess_images,
    normalize_movies_array,
    prepare_movies_dataset,
)
from openretina.plotting.vector_field import plot_clean_vectorfield, plot_pc_insets, plot_untreated_vectorfield

__all__ = [
    "bin_vector_field",
    "compute_lsta_library",
    "get_images_coordinate",
    "get_model_temporal_padding",
    "get_pc_from_pca",
    "load_and_preprocess_images",
    "normalize_movies_array",
    "plot_clean_vectorfield",
    "plot_pc_insets",
    "plot_untreated_vectorfield",
    "prepare_movies_dataset",
    "project_onto_pcs",
]
