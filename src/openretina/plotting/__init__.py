"""Plots and videos of stimuli, MEIs, receptive fields and tuning (matplotlib is imported only when drawing).

Modules: :mod:`~openretina.plotting.kernels` (rank-1 decomposition, spectra), :mod:`~openretina.plotting.colours`
(channel-to-RGB convention), :mod:`~openretina.plotting.stimulus`, :mod:`~openretina.plotting.mei`,
:mod:`~openretina.plotting.receptive_fields`, :mod:`~openretina.plotting.tuning`, :mod:`~openretina.plotting.video`,
:mod:`~openretina.plotting.vector_field` (LSTA vector fields) and :mod:`~openretina.plotting.figures`. Weight
plots of cores and readouts are methods of those modules (``core.plot_weight_visualization``,
``readout[key].plot_weight_for_neuron``).
"""

from openretina.plotting.colours import ColorMapper, stimulus_to_rgb
from openretina.plotting.figures import legend_without_duplicate_labels, save_figure
from openretina.plotting.kernels import butter_lowpass_filter, calculate_fft, decompose_kernel, weighted_main_frequency
from openretina.plotting.mei import plot_mds_panels, plot_mei
from openretina.plotting.receptive_fields import plot_receptive_field_grid
from openretina.plotting.stimulus import plot_stimulus_composition, undo_video_normalization
from openretina.plotting.tuning import (
    plot_tuning_curve,
    plot_vector_field_resp_iso,
    polar_plot_of_direction_of_motion_responses,
)
from openretina.plotting.vector_field import (
    plot_clean_vectorfield,
    plot_images_coordinate,
    plot_pc_insets,
    plot_principal_components,
    plot_untreated_vectorfield,
)
from openretina.plotting.video import (
    numpy_to_mp4_video,
    play_stimulus,
    prepare_video_for_display,
    save_stimulus_to_gif,
    save_stimulus_to_mp4_video,
    stitch_videos,
    write_frames,
)

__all__ = [
    "ColorMapper",
    "butter_lowpass_filter",
    "calculate_fft",
    "decompose_kernel",
    "legend_without_duplicate_labels",
    "numpy_to_mp4_video",
    "play_stimulus",
    "plot_clean_vectorfield",
    "plot_images_coordinate",
    "plot_mds_panels",
    "plot_mei",
    "plot_pc_insets",
    "plot_principal_components",
    "plot_receptive_field_grid",
    "plot_stimulus_composition",
    "plot_tuning_curve",
    "plot_untreated_vectorfield",
    "plot_vector_field_resp_iso",
    "polar_plot_of_direction_of_motion_responses",
    "prepare_video_for_display",
    "save_figure",
    "save_stimulus_to_gif",
    "save_stimulus_to_mp4_video",
    "stimulus_to_rgb",
    "stitch_videos",
    "undo_video_normalization",
    "weighted_main_frequency",
    "write_frames",
]
