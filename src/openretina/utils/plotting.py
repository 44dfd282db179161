"""Reference import path for the plotting helpers; they live in :mod:`openretina.plotting`.

Unlike the reference module, importing this changes no matplotlib settings and loads neither matplotlib nor
any video library; they are imported when a function draws or writes.
"""

from openretina.plotting import (
    ColorMapper,
    legend_without_duplicate_labels,
    numpy_to_mp4_video,
    play_stimulus,
    plot_stimulus_composition,
    plot_vector_field_resp_iso,
    polar_plot_of_direction_of_motion_responses,
    prepare_video_for_display,
    save_figure,
    save_stimulus_to_gif,
    save_stimulus_to_mp4_video,
    stitch_videos,
    undo_video_normalization,
)

__all__ = [
    "ColorMapper",
    "legend_without_duplicate_labels",
    "numpy_to_mp4_video",
    "play_stimulus",
    "plot_stimulus_composition",
    "plot_vector_field_resp_iso",
    "polar_plot_of_direction_of_motion_responses",
    "prepare_video_for_display",
    "save_figure",
    "save_stimulus_to_gif",
    "save_stimulus_to_mp4_video",
    "stitch_videos",
    "undo_video_normalization",
]
