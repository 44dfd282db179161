"""The published pre-trained models as data: one table read by the loaders, the CLI listing and the docs.

Each :class:`PretrainedModel` says where the checkpoint lives (a path in the project's Hugging Face dataset
repository, or a path inside the installed package for bundled models), what input it expects and where it
comes from. Values the reference does not state are ``None``: no checksum or metric is ever made up.

The names and locations are those of the reference's ``_MODEL_NAME_TO_REMOTE_LOCATION``; names of earlier
releases resolve to their old locations with a :class:`DeprecationWarning` (the reference dropped them, so old
scripts failed with a confusing "path does not exist").
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from openretina.errors import DataFormatError
from openretina.utils.download import HUGGINGFACE_BASE_URL, HUGGINGFACE_REPO_ID

__all__ = [
    "HUGGINGFACE_CHECKPOINTS_BASE_PATH",
    "REGISTRY",
    "PretrainedModel",
    "get_pretrained_model",
    "list_pretrained_models",
    "model_name_to_remote_location",
    "registry_override",
]

HUGGINGFACE_REPO_TREE_URL = f"{HUGGINGFACE_BASE_URL}datasets/{HUGGINGFACE_REPO_ID}/tree/main"
HUGGINGFACE_CHECKPOINTS_BASE_PATH = f"{HUGGINGFACE_REPO_TREE_URL}/model_checkpoints"
GIN_MODEL_CHECKPOINTS_BASE_PATH = "https://gin.g-node.org/teulerlab/open-retina/raw/checkpoints/model_checkpoints"


@dataclass(frozen=True)
class PretrainedModel:
    """One published (or bundled) model: location, expected input and provenance.

    Exactly one of ``hub_path`` (path inside the Hugging Face dataset repository ``open-retina/open-retina``)
    and ``package_path`` (path of a file shipped inside the ``openretina`` package, e.g.
    ``"data/pretrained/synthetic.ckpt"``) is set.

    Attributes:
        name: registry key, e.g. ``"hoefling_2024_low_res"``.
        input_shape: stimulus ``(channels, height, width)``; time is free.
        frame_rate_hz: stimulus frame rate, None when not stated (e.g. flashed images).
        species, dataset, citation: provenance of the training data.
        licence: licence of the checkpoint, None when the publisher does not state one.
        sha256: expected checksum of the checkpoint file, None when unknown.
        metrics: reported test metrics, None when none are published.
        superseded_by: for names of earlier releases, the name that replaces them (loading warns).
        notes: caveats, e.g. values that could not be verified.
    """

    name: str
    input_shape: tuple[int, int, int]
    frame_rate_hz: float | None
    species: str
    dataset: str
    citation: str
    hub_path: str | None = None
    package_path: str | None = None
    licence: str | None = None
    sha256: str | None = None
    metrics: Mapping[str, float] | None = None
    superseded_by: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if (self.hub_path is None) == (self.package_path is None):
            raise DataFormatError(
                f"PretrainedModel {self.name!r}: give exactly one of hub_path and package_path "
                f"(got hub_path={self.hub_path!r}, package_path={self.package_path!r})."
            )

    @property
    def url(self) -> str | None:
        """Hugging Face URL of the checkpoint (``tree/main`` form, as in the reference), None for bundled models."""
        return f"{HUGGINGFACE_REPO_TREE_URL}/{self.hub_path}" if self.hub_path is not None else None

    @property
    def location(self) -> str:
        """Where :func:`openretina.utils.download.get_local_file_path` finds the file: URL or package file path."""
        if self.hub_path is not None:
            return f"{HUGGINGFACE_REPO_TREE_URL}/{self.hub_path}"
        assert self.package_path is not None  # guaranteed by __post_init__
        return str(Path(str(resources.files("openretina"))) / self.package_path)


_HOEFLING = (
    "Höfling et al. (2024), A chromatic feature detector in the retina signals visual context changes, eLife, "
    "https://doi.org/10.7554/eLife.86860"
)
_KARAMANLIS = (
    "Karamanlis et al. (2024), Nonlinear receptive fields evoke redundant retinal coding of natural scenes, "
    "Nature, https://doi.org/10.1038/s41586-024-08212-3"
)
_MAHESWARANATHAN = (
    "Maheswaranathan et al. (2023), Interpreting the retinal neural code for natural scenes: from computations "
    "to neurons, Neuron, https://doi.org/10.1016/j.neuron.2023.06.007"
)
_GOLDIN = "Goldin et al. (2022); dataset https://zenodo.org/records/6868362"
_SRIDHAR = "Sridhar et al. (2025); dataset https://doi.org/10.12751/g-node.3dfiti"
_UNVERIFIED_FILE_NAME = "Name of an earlier release; its file name is inferred from the release folder."


def _model(name: str, folder: str, file: str | None = None, **metadata: Any) -> PretrainedModel:
    """An entry whose checkpoint is ``model_checkpoints/<folder>/<file or name>.ckpt`` in the hub repository."""
    return PretrainedModel(name=name, hub_path=f"model_checkpoints/{folder}/{file or name}.ckpt", **metadata)


_HOEFLING_LOW: dict[str, Any] = {"input_shape": (2, 18, 16), "frame_rate_hz": 30.0, "species": "mouse"}
_HOEFLING_HIGH: dict[str, Any] = {"input_shape": (2, 72, 64), "frame_rate_hz": 30.0, "species": "mouse"}
_HOEFLING_DATA: dict[str, Any] = {
    "dataset": "hoefling_2024 (two-photon Ca2+ imaging, green/UV natural movies)",
    "citation": _HOEFLING,
}
_KARAMANLIS_DATA: dict[str, Any] = {
    "dataset": "karamanlis_2024 (MEA, fixational natural movies)",
    "citation": _KARAMANLIS,
}
_MAHESWARANATHAN_DATA: dict[str, Any] = {
    "dataset": "maheswaranathan_2023 (MEA, natural scenes)",
    "citation": _MAHESWARANATHAN,
}

_MODELS: tuple[PretrainedModel, ...] = (
    _model("hoefling_2024_low_res", "2026-03-09", "hoefling_2024_cnn_low_res", **_HOEFLING_LOW, **_HOEFLING_DATA),
    _model("hoefling_2024_high_res", "2026-03-09", "hoefling_2024_cnn_high_res", **_HOEFLING_HIGH, **_HOEFLING_DATA),
    _model(
        "karamanlis_2024_mouse",
        "2026-03-09",
        input_shape=(1, 60, 80),
        frame_rate_hz=75.0,
        species="mouse",
        **_KARAMANLIS_DATA,
    ),
    _model(
        "karamanlis_2024_marmoset",
        "2026-03-09",
        input_shape=(1, 60, 80),
        frame_rate_hz=85.0,
        species="marmoset",
        notes="Frame rate from a comment in the reference's config (the mouse recordings use 75 Hz).",
        **_KARAMANLIS_DATA,
    ),
    _model(
        "maheswaranathan_2023",
        "2026-03-09",
        input_shape=(1, 50, 50),
        frame_rate_hz=100.0,
        species="salamander",
        notes="The checkpoint's data_info may state 30 Hz: the reference config did until after it was trained.",
        **_MAHESWARANATHAN_DATA,
    ),
    _model(
        "sridhar_2025",
        "2026-03-09",
        input_shape=(1, 80, 90),
        frame_rate_hz=85.0,
        species="marmoset",
        dataset="sridhar_2025 (MEA, natural movie)",
        citation=_SRIDHAR,
    ),
    _model(
        "goldin_2022_axolotl",
        "2026-03-09",
        input_shape=(1, 108, 108),
        frame_rate_hz=None,
        species="axolotl",
        dataset="goldin_2022 (MEA, flashed natural images; one frame per image)",
        citation=_GOLDIN,
    ),
    _model(
        "goldin_2022_mouse",
        "2026-03-09",
        input_shape=(1, 108, 108),
        frame_rate_hz=None,
        species="mouse",
        dataset="goldin_2022 (MEA, flashed natural images; one frame per image)",
        citation=_GOLDIN,
    ),
    _model(
        "hoefling_2024_base_low_res",
        "27-11-2025",
        notes="First bioRxiv version of the paper; the README's example model.",
        **_HOEFLING_LOW,
        **_HOEFLING_DATA,
    ),
    # Earlier releases: kept resolvable (the reference made them fail), with a deprecation warning.
    _model(
        "hoefling_2024_base_high_res",
        "27-11-2025",
        superseded_by="hoefling_2024_high_res",
        notes=_UNVERIFIED_FILE_NAME,
        **_HOEFLING_HIGH,
        **_HOEFLING_DATA,
    ),
    _model(
        "hoefling_2024_base_low_res_grey_scale",
        "27-11-2025",
        input_shape=(1, 18, 16),
        frame_rate_hz=30.0,
        species="mouse",
        superseded_by="hoefling_2024_low_res",
        notes=_UNVERIFIED_FILE_NAME + " Single-channel input assumed from the name; check data_info.",
        **_HOEFLING_DATA,
    ),
    *(
        _model(
            f"karamanlis_2024_base_{species}",
            "27-11-2025",
            input_shape=(1, 60, 80),
            frame_rate_hz=rate,
            species=species,
            superseded_by=f"karamanlis_2024_{species}",
            notes=_UNVERIFIED_FILE_NAME,
            **_KARAMANLIS_DATA,
        )
        for species, rate in (("mouse", 75.0), ("marmoset", 85.0))
    ),
    *(
        _model(
            name,
            "24-01-2025",
            input_shape=shape,
            frame_rate_hz=rate,
            species=species,
            superseded_by=successor,
            notes=_UNVERIFIED_FILE_NAME + " GRU models may not load: the reference dropped their support.",
            **data,
        )
        for name, shape, rate, species, successor, data in (
            ("karamanlis_2024_base", (1, 60, 80), 75.0, "mouse", "karamanlis_2024_mouse", _KARAMANLIS_DATA),
            ("karamanlis_2024_gru", (1, 60, 80), 75.0, "mouse", "karamanlis_2024_mouse", _KARAMANLIS_DATA),
            (
                "maheswaranathan_2023_base",
                (1, 50, 50),
                100.0,
                "salamander",
                "maheswaranathan_2023",
                _MAHESWARANATHAN_DATA,
            ),
            (
                "maheswaranathan_2023_gru",
                (1, 50, 50),
                100.0,
                "salamander",
                "maheswaranathan_2023",
                _MAHESWARANATHAN_DATA,
            ),
        )
    ),
)

# Shipped inside the package: trained by `openretina demo` (seed 0) on the embedded synthetic retina, so examples
# and tests have a real model with no network. Never registered under a published model's name.
_BUNDLED: tuple[PretrainedModel, ...] = (
    PretrainedModel(
        name="synthetic_retina_core_readout",
        package_path="data/pretrained/synthetic_retina_core_readout",
        input_shape=(2, 18, 16),
        frame_rate_hz=30.0,
        species="synthetic",
        dataset="openretina synthetic retina, seed 0 (2 sessions x 50 cells, 15,000 training frames)",
        citation="openretina (this package); architecture of Höfling et al. (2024) low-res",
        licence="MIT",
        metrics={"test_correlation_mean": 0.9157, "correlation_to_noise_free_truth_mean": 0.946},
        notes="Metrics as reported by `openretina demo` for this model (demo_output/report.json).",
    ),
)

_REGISTRY: dict[str, PretrainedModel] = {model.name: model for model in (*_MODELS, *_BUNDLED)}
REGISTRY: Mapping[str, PretrainedModel] = MappingProxyType(_REGISTRY)
"""Read-only view of all registered models (current and deprecated names), keyed by name."""


def list_pretrained_models(include_deprecated: bool = False) -> list[PretrainedModel]:
    """Registered models sorted by name; names of earlier releases only with ``include_deprecated``."""
    return sorted((m for m in REGISTRY.values() if include_deprecated or m.superseded_by is None), key=lambda m: m.name)


def get_pretrained_model(name: str) -> PretrainedModel | None:
    """The registry entry called ``name`` (None if unknown); warns for names of earlier releases."""
    entry = REGISTRY.get(name)
    if entry is not None and entry.superseded_by is not None:
        warnings.warn(
            f"Pretrained model name {name!r} is from an earlier release; it still loads {entry.hub_path}, but "
            f"{entry.superseded_by!r} is the current model.",
            DeprecationWarning,
            stacklevel=3,
        )
    return entry


def model_name_to_remote_location() -> dict[str, str]:
    """The reference's ``_MODEL_NAME_TO_REMOTE_LOCATION`` (current published names -> URL), from the registry.

    Models shipped inside the package (``package_path``) have no remote location and are left out.
    """
    return {m.name: m.location for m in list_pretrained_models() if m.hub_path is not None}


@contextmanager
def registry_override(*models: PretrainedModel) -> Iterator[None]:
    """Temporarily add or replace registry entries (tests, private deployments); restored on exit."""
    saved = dict(_REGISTRY)
    _REGISTRY.update({m.name: m for m in models})
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)
