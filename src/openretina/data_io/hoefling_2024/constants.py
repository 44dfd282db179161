"""Published constants of the Höfling et al. 2024 dataset.

Cell-type ids follow Baden et al. 2016: 1-32 ganglion-cell (RGC) types, 33-46 displaced amacrine-cell types.
The type names are kept character for character as the reference system spells them (checkpoints and plots of
that system carry them).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# Movies and upsampled responses share a 30 Hz time base.
FRAME_RATE_MODEL: Final[float] = 30.0
# The training movie is 108 clips of 150 frames (5 s) each; 15 of them are held out for validation by default.
SCENE_LENGTH: Final[int] = 150
CLIP_LENGTH: Final[int] = 150
NUM_CLIPS: Final[int] = 108
NUM_VAL_CLIPS: Final[int] = 15
# Validation clips of the reference configuration (`dataloader/hoefling_2024.yaml`).
VALIDATION_CLIP_INDICES: Final[tuple[int, ...]] = (0, 4, 10, 11, 18, 30, 45, 62, 67, 77, 79, 80, 81, 83, 95)

# A natural-movie recording shows 123 clips: three repeats of the 5 test clips at clip positions 0, 59 and 118,
# with half of the 108 training clips (in the order of one presentation sequence) between consecutive repeats.
NUM_TEST_CLIPS: Final[int] = 5
NUM_TEST_REPEATS: Final[int] = 3
TEST_CLIP_POSITIONS: Final[tuple[int, ...]] = (0, 59, 118)
NUM_RECORDED_CLIPS: Final[int] = NUM_CLIPS + NUM_TEST_CLIPS * NUM_TEST_REPEATS

STIMULI_IDS: Final[Mapping[str, int]] = MappingProxyType({"natural": 5, "chirp": 1, "mb": 2})

# Seconds covered by the frames that follow each stimulus trigger, and how many 30 Hz frames that is.
# Natural movie: one trigger per 5 s clip; chirp: one used trigger per 33 s chirp; moving bar: one per bar sweep.
TRIGGER_SPAN_S: Final[Mapping[int, float]] = MappingProxyType({5: 4.9666667, 1: 32.98999999, 2: 4.054001})
FRAMES_PER_TRIGGER: Final[Mapping[int, int]] = MappingProxyType({5: 150, 1: 990, 2: 123})
# The chirp's trigger list marks two events per chirp; only every second trigger starts a chirp.
TRIGGER_STEP: Final[Mapping[int, int]] = MappingProxyType({5: 1, 1: 2, 2: 1})

# Upper bounds (exclusive of the next class) of the functional classes of RGC types 1-32.
BADEN_TYPE_BOUNDARIES: Final[tuple[int, ...]] = (9, 14, 20, 28, 32)

RGC_GROUP_NAMES_DICT: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "OFF local, OS",
        2: "OFF DS",
        3: "OFF step",
        4: "OFF slow",
        5: "OFF alpha sust.",
        6: "(ON-)OFF Jam-B mix",
        7: "OFF sust",
        8: "OFF alpha trans",
        9: "OFF mini alpha trans",
        10: "ON-OFF local-edge W3",
        11: "ON-OFF local",
        12: "ON-OFF DS 1",
        13: "ON-OFF DS 2",
        14: "(ON-)OFF local, OS",
        15: "ON step",
        16: "ON DS trans",
        17: "ON local trans, OS",
        18: "ON trans",
        19: "ON trans, large",
        20: "ON high freq",
        21: "ON low freq",
        22: "ON sust",
        23: "ON mini alpha",
        24: "ON alpha",
        25: "ON DS sust 1",
        26: "ON DS sust 2",
        27: "ON slow",
        28: "ON contrast suppr.",
        29: "ON DS sust 3",
        30: "ON local sust Os",
        31: "OFF suppr. 1",
        32: "OFF suppr. 2",
        33: "OFF AC",
        34: "ON high freq. sust. 1 AC",
        35: "ON high freq. trans. AC",
        36: "ON-OFF high freq. AC",
        37: "ON high freq. sust. 2 AC",
        38: "ON sust. 1 AC",
        39: "ON sust. 2 AC",
        40: "ON sust. 3 AC",
        41: "ON sust. 4 AC",
        42: "ON starburst AC",
        43: "ON-OFF local AC",
        44: "ON step AC",
        45: "ON local 1 AC",
        46: "ON local 2 AC",
    }
)
RGC_TYPES: Final[tuple[int, ...]] = tuple(range(1, 33))
AMACRINE_TYPES: Final[tuple[int, ...]] = tuple(range(33, 47))


def _class_of(group_id: int) -> str:
    if group_id <= 9:
        return "OFF"
    if group_id <= 14:
        return "ON-OFF"
    if group_id <= 20:
        return "Fast On"
    if group_id <= 28:
        return "SLOW ON"
    if group_id <= 32:
        return "Uncertain RGC"
    return "AC"


RGC_GROUP_GROUP_ID_TO_CLASS_NAME: Final[Mapping[int, str]] = MappingProxyType(
    {group_id: _class_of(group_id) for group_id in RGC_GROUP_NAMES_DICT}
)

# Bounds used when optimising most exciting inputs (MEIs): the stimulus norm and, per channel, the range of the
# z-scored movie.
STIMULUS_RANGE_CONSTRAINTS: Final[Mapping[str, float]] = MappingProxyType(
    {"norm": 30.0, "x_min_green": -0.654, "x_max_green": 6.269, "x_min_uv": -0.913, "x_max_uv": 6.269}
)

# Per-channel statistics of the raw movies (before the joint z-scoring applied to the published pickles).
pre_normalisation_values_18x16: Final[Mapping[str, float]] = MappingProxyType(
    {"channel_0_mean": 37.4171, "channel_0_std": 28.9048, "channel_1_mean": 36.1315, "channel_1_std": 39.8411}
)
MEAN_STD_DICT_74x64: Final[Mapping[str, float]] = MappingProxyType(
    {
        "channel_0_mean": 37.1976,
        "channel_0_std": 30.2689,
        "channel_1_mean": 36.7610,
        "channel_1_std": 42.6547,
        "joint_mean": 36.9793,
        "joint_std": 36.9846,
    }
)

# The reference forces this recording field to the right eye whatever its metadata says; kept as data (not a
# name test buried in the loader) so results match and the override is visible.
EYE_OVERRIDES: Final[Mapping[str, str]] = MappingProxyType({"session_2_ventral2_20200626": "right"})

# Readout coordinates from ROI masks: mask pixels are 2 µm, readout pixels 50 µm (factor 25); the mask's origin
# sits 2.75 readout pixels into the 8-pixel-wide readout grid, which is mapped to [-1, 1].
ROI_MASK_TO_READOUT_SCALE: Final[float] = 25.0
ROI_MASK_READOUT_OFFSET: Final[float] = 2.75
READOUT_GRID_SIZE: Final[float] = 8.0

_HF = "https://huggingface.co/datasets/open-retina/open-retina/resolve/main/euler_lab/hoefling_2024"
MOVIES_LOW_RES_URL: Final[str] = f"{_HF}/stimuli/rgc_natstim_18x16_joint_normalized_2024-01-11.zip"
MOVIES_HIGH_RES_URL: Final[str] = f"{_HF}/stimuli/rgc_natstim_72x64_joint_normalized_2024-10-11.zip"
RESPONSES_URL: Final[str] = f"{_HF}/responses/rgc_natstim_2024-08-14.zip"
RESPONSES_SUBSET_URL: Final[str] = f"{_HF}/responses/rgc_natsim_subset_only_naturalspikes_2024-08-14.h5"
ORIGINAL_SOURCE: Final[str] = "https://gin.g-node.org/eulerlab/rgc-natstim"
CITATION: Final[str] = (
    "Höfling L., Szatko K. P., Behrens C., Deng Y., Qiu Y., Klindt D. A., Jessen Z., Schwartz G. W., Bethge M., "
    "Berens P., Franke K., Ecker A. S., Euler T. (2024). A chromatic feature detector in the retina signals "
    "visual context changes. eLife 13, e86860."
)
