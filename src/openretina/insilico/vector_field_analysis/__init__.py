"""LSTA vector fields (Goldin et al. 2022): how a cell's preferred stimulus changes across natural images.

Pipeline, one function per step (shapes in their docstrings):

1. :func:`prepare_movies_dataset`: one movie per image, a grey period followed by the static image.
2. :func:`compute_lsta_library`: the local spike-triggered average (LSTA) of one cell at every image, the gradient
   of its response averaged over the image frames that drive the integration window.
3. :func:`get_pc_from_pca`: the first two principal components of the LSTAs (numpy SVD, no scikit-learn).
4. :func:`get_images_coordinate` / :func:`project_onto_pcs`: images and LSTAs in the (PC1, PC2) plane.
5. :func:`bin_vector_field`, and the figures in :mod:`openretina.plotting.vector_field`.

The reference module path :mod:`openretina.insilico.vector_field_analysis.vector_field_analysis` exports the
analysis and the figures together.
"""

from openretina.insilico.vector_field_analysis.lsta import (
    CellIndexError,
    compute_lsta_library,
    driving_image_frames,
    image_onset_frame,
)
from openretina.insilico.vector_field_analysis.projection import (
    BinnedVectorField,
    bin_vector_field,
    get_images_coordinate,
    get_pc_from_pca,
    project_onto_pcs,
)
from openretina.insilico.vector_field_analysis.stimuli import (
    GREY_OUTPUT_FRAMES,
    get_model_temporal_padding,
    load_and_preprocess_images,
    normalize_movies_array,
    prepare_movies_dataset,
)

__all__ = [
    "GREY_OUTPUT_FRAMES",
    "BinnedVectorField",
    "CellIndexError",
    "bin_vector_field",
    "compute_lsta_library",
    "driving_image_frames",
    "get_images_coordinate",
    "get_model_temporal_padding",
    "get_pc_from_pca",
    "image_onset_frame",
    "load_and_preprocess_images",
    "normalize_movies_array",
    "prepare_movies_dataset",
    "project_onto_pcs",
]
