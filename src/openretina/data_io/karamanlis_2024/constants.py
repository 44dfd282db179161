"""Published constants of the Karamanlis et al. 2024 dataset (mouse and marmoset retina, multi-electrode array)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

Specie = Literal["mouse", "marmoset"]
SPECIES: Final[tuple[str, ...]] = ("mouse", "marmoset")
StimType = Literal["fixationmovie", "frozencheckerflicker", "gratingflicker", "imagesequence"]
STIM_TYPES: Final[tuple[str, ...]] = ("fixationmovie", "frozencheckerflicker", "gratingflicker", "imagesequence")

# Stimulus frame rate (= response bin rate) per species.
FRAME_RATE_HZ: Final[Mapping[str, float]] = MappingProxyType({"mouse": 75.0, "marmoset": 85.0})
# The monitor (rows, columns) on which the images are translated, and the default size movies are resized to.
SCREEN_SIZE: Final[tuple[int, int]] = (600, 800)
DOWNSAMPLED_SIZE: Final[tuple[int, int]] = (60, 80)
# Pixel size on the retina as used by the reference configuration's data_info.
PIXEL_SIZE_UM: Final[float] = 7.5
# Generic-dataloader settings of the reference configuration: 1 s clips (mouse), 20 validation clips.
CLIP_LENGTH: Final[int] = 75
NUM_VAL_CLIPS: Final[int] = 20

DATA_URL: Final[str] = (
    "https://huggingface.co/datasets/open-retina/open-retina/tree/main/gollisch_lab/karamanlis_2024/sessions"
)
ORIGINAL_SOURCE: Final[str] = "https://doi.org/10.12751/g-node.ejk8kx"
CITATION: Final[str] = (
    "Karamanlis D., Khani M. H., Schreyer H. M., Zapp S. J., Mietsch M., Gollisch T. (2024). Nonlinear receptive "
    "fields evoke redundant retinal coding of natural scenes. Nature 637, 394-401."
)
