"""The registry of published models: the reference's names and locations as data, legacy names, overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from openretina.errors import DataFormatError
from openretina.hub import REGISTRY, PretrainedModel, get_pretrained_model, list_pretrained_models, registry_override
from openretina.hub.registry import model_name_to_remote_location

BASE = "https://huggingface.co/datasets/open-retina/open-retina/tree/main/model_checkpoints"
# Spec section 8.1, written out independently of the registry.
REFERENCE_TABLE = {
    "hoefling_2024_low_res": "/2026-03-09/hoefling_2024_cnn_low_res.ckpt",
    "hoefling_2024_high_res": "/2026-03-09/hoefling_2024_cnn_high_res.ckpt",
    "karamanlis_2024_mouse": "/2026-03-09/karamanlis_2024_mouse.ckpt",
    "karamanlis_2024_marmoset": "/2026-03-09/karamanlis_2024_marmoset.ckpt",
    "maheswaranathan_2023": "/2026-03-09/maheswaranathan_2023.ckpt",
    "sridhar_2025": "/2026-03-09/sridhar_2025.ckpt",
    "goldin_2022_axolotl": "/2026-03-09/goldin_2022_axolotl.ckpt",
    "goldin_2022_mouse": "/2026-03-09/goldin_2022_mouse.ckpt",
    "hoefling_2024_base_low_res": "/27-11-2025/hoefling_2024_base_low_res.ckpt",
}
LEGACY_NAMES = {
    "hoefling_2024_base_high_res": "27-11-2025",
    "hoefling_2024_base_low_res_grey_scale": "27-11-2025",
    "karamanlis_2024_base_mouse": "27-11-2025",
    "karamanlis_2024_base_marmoset": "27-11-2025",
    "karamanlis_2024_base": "24-01-2025",
    "karamanlis_2024_gru": "24-01-2025",
    "maheswaranathan_2023_base": "24-01-2025",
    "maheswaranathan_2023_gru": "24-01-2025",
}


def test_the_nine_reference_names_and_locations() -> None:
    assert model_name_to_remote_location() == {name: BASE + suffix for name, suffix in REFERENCE_TABLE.items()}
    published = [m.name for m in list_pretrained_models() if m.hub_path is not None]
    assert published == sorted(REFERENCE_TABLE)
    for name, suffix in REFERENCE_TABLE.items():
        entry = REGISTRY[name]
        assert entry.hub_path == "model_checkpoints" + suffix
        assert entry.url == BASE + suffix


def test_no_invented_checksums_or_metrics() -> None:
    # Published models: the publishers state no checksum or metric. (The bundled model's metrics are ours.)
    for entry in (e for e in REGISTRY.values() if e.hub_path is not None):
        assert entry.sha256 is None, entry.name
        assert entry.metrics is None, entry.name


@pytest.mark.parametrize(
    ("name", "shape", "rate", "species"),
    [
        ("hoefling_2024_base_low_res", (2, 18, 16), 30.0, "mouse"),
        ("hoefling_2024_high_res", (2, 72, 64), 30.0, "mouse"),
        ("karamanlis_2024_mouse", (1, 60, 80), 75.0, "mouse"),
        ("maheswaranathan_2023", (1, 50, 50), 100.0, "salamander"),
        ("goldin_2022_axolotl", (1, 108, 108), None, "axolotl"),
        ("sridhar_2025", (1, 80, 90), 85.0, "marmoset"),
    ],
)
def test_metadata_from_the_spec(name: str, shape: tuple[int, int, int], rate: float | None, species: str) -> None:
    entry = REGISTRY[name]
    assert (entry.input_shape, entry.frame_rate_hz, entry.species) == (shape, rate, species)
    assert entry.citation and entry.dataset


@pytest.mark.parametrize(("name", "folder"), sorted(LEGACY_NAMES.items()))
def test_legacy_names_resolve_to_their_old_paths_with_a_warning(name: str, folder: str) -> None:
    with pytest.warns(DeprecationWarning, match=name):
        entry = get_pretrained_model(name)
    assert entry is not None and entry.hub_path == f"model_checkpoints/{folder}/{name}.ckpt"
    assert entry.superseded_by in REFERENCE_TABLE
    assert name not in model_name_to_remote_location()
    assert name in [m.name for m in list_pretrained_models(include_deprecated=True)]


def test_current_names_do_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    assert get_pretrained_model("hoefling_2024_base_low_res") is REGISTRY["hoefling_2024_base_low_res"]
    assert get_pretrained_model("my/local/file.ckpt") is None
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_an_entry_can_point_at_package_data() -> None:
    bundled = PretrainedModel(
        name="synthetic_demo",
        package_path="data/pretrained/synthetic_demo",
        input_shape=(2, 18, 16),
        frame_rate_hz=30.0,
        species="synthetic",
        dataset="openretina synthetic retina",
        citation="openretina",
    )
    assert bundled.url is None
    import openretina

    assert Path(bundled.location) == Path(openretina.__file__).parent / "data/pretrained/synthetic_demo"


@pytest.mark.parametrize(("hub_path", "package_path"), [(None, None), ("a.ckpt", "data/a.ckpt")])
def test_exactly_one_location_is_required(hub_path: str | None, package_path: str | None) -> None:
    with pytest.raises(DataFormatError, match="exactly one"):
        PretrainedModel("x", (1, 2, 3), None, "s", "d", "c", hub_path=hub_path, package_path=package_path)


def test_registry_override_is_temporary() -> None:
    original = REGISTRY["goldin_2022_mouse"]
    changed = dataclasses.replace(original, sha256="ab" * 32)
    with registry_override(changed):
        assert REGISTRY["goldin_2022_mouse"].sha256 == "ab" * 32
    assert REGISTRY["goldin_2022_mouse"] is original
    with pytest.raises(TypeError):
        REGISTRY["new"] = original  # type: ignore[index]
