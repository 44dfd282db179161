"""Published constants of the Maheswaranathan et al. 2023 dataset (salamander retina, multi-electrode array)."""

from __future__ import annotations

from typing import Final, Literal

# Stimulus frames and response bins are both at 100 Hz (10 ms per frame).
FRAME_RATE_HZ: Final[float] = 100.0
# Frames per clip used to cut validation clips out of the continuous training movie (0.9 s).
CLIP_LENGTH: Final[int] = 90
# Each stimulus frame is (height, width) = 50 x 50 pixels of 50 µm on the retina.
STIMULUS_SIZE: Final[tuple[int, int]] = (50, 50)
PIXEL_SIZE_UM: Final[float] = 50.0

StimType = Literal["naturalscene", "whitenoise"]
ResponseType = Literal["firing_rate_5ms", "firing_rate_10ms", "firing_rate_20ms"]
STIM_TYPES: Final[tuple[str, ...]] = ("naturalscene", "whitenoise")
RESPONSE_TYPES: Final[tuple[str, ...]] = ("firing_rate_5ms", "firing_rate_10ms", "firing_rate_20ms")

# Sub-folder of the unzipped archive that holds one folder per session (e.g. "15-10-07").
SESSIONS_FOLDER: Final[str] = "ganglion_cell_data"
DATA_URL: Final[str] = (
    "https://huggingface.co/datasets/open-retina/open-retina/resolve/main/baccus_lab/maheswaranathan_2023/"
    "neural_code_data.zip"
)
ORIGINAL_SOURCE: Final[str] = "https://doi.org/10.25740/rk663dm5577"
CITATION: Final[str] = (
    "Maheswaranathan N., McIntosh L. T., Tanaka H., Grant S., Kastner D. B., Melander J. B., Nayebi A., "
    "Brezovec L. E., Wang J. H., Ganguli S., Baccus S. A. (2023). Interpreting the retinal neural code for natural "
    "scenes: from computations to neurons. Neuron 111(17), 2742-2755."
)
