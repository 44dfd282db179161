"""Published constants of the Goldin et al. 2022 dataset (flashed natural images, mouse and axolotl retina)."""

from __future__ import annotations

from typing import Final, Literal

# Each image is one "frame": the generic dataloaders serve single images (clips of one frame).
CLIP_LENGTH: Final[int] = 1
# Each image is flashed for 300 ms; spike counts divided by this give firing rates in Hz.
PRESENTATION_DURATION_S: Final[float] = 0.3
STIMULUS_SIZE: Final[tuple[int, int]] = (108, 108)
PIXEL_SIZE_UM: Final[float] = 28.0

Specie = Literal["mouse", "axolotl"]
SPECIES: Final[tuple[str, ...]] = ("mouse", "axolotl")
# Session files are HDF5; only these suffixes are opened (the reference opened any entry containing the species).
SESSION_FILE_SUFFIXES: Final[tuple[str, ...]] = (".h5", ".hdf5")

DATA_URL: Final[str] = "https://huggingface.co/datasets/open-retina/open-retina/tree/main/marre_lab/goldin_2022"
ORIGINAL_SOURCE: Final[str] = "https://zenodo.org/records/6868362"
CITATION: Final[str] = (
    "Goldin M. A., Lefebvre B., Virgili S., Pham Van Cang M. K., Ecker A., Mora T., Ferrari U., Marre O. (2022). "
    "Context-dependent selectivity to natural images in the retina. Nature Communications 13, 5556."
)
