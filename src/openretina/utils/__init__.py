"""Small, domain-free helpers, and the reference's ``from openretina.utils import *`` names.

The three names below are re-exported from where their code lives (downloads in ``utils.download``, plots and
videos in ``openretina.plotting``); none of these imports pulls in matplotlib until a plot is actually drawn.
"""

from openretina.plotting.stimulus import plot_stimulus_composition
from openretina.plotting.video import save_stimulus_to_mp4_video
from openretina.utils.download import get_local_file_path

__all__ = ["get_local_file_path", "plot_stimulus_composition", "save_stimulus_to_mp4_video"]
