"""Acceptance: the README example against a local mirror; cache, offline use, corrupted and truncated downloads."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from openretina.hub import REGISTRY, load_core_readout_from_remote, load_core_readout_model, registry_override
from openretina.hub.loading import _MODEL_NAME_TO_REMOTE_LOCATION
from openretina.models import UnifiedCoreReadout
from openretina.utils import download
from openretina.utils.download import ChecksumMismatchError, RemoteFileUnavailableError

from .conftest import FIXTURE_SESSIONS, README_MODEL_HUB_PATH

README_EXAMPLE = """
from openretina.models import *
model = load_core_readout_from_remote("hoefling_2024_base_low_res", "cpu")
responses = model.forward(torch.rand(model.stimulus_shape(time_steps=50)))
"""
MODEL_NAME = "hoefling_2024_base_low_res"
TOLERANCE = 1e-5


def _with_checksum(sha256: str) -> Any:
    """The README model's registry entry, carrying the checksum of the served fixture."""
    return registry_override(dataclasses.replace(REGISTRY[MODEL_NAME], sha256=sha256))


def _cache_files() -> list[Path]:
    cache = download.get_cache_directory()
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def test_readme_example_runs_against_a_local_mirror(hub_mirror: Any, fixture_sha256: str) -> None:
    import openretina.models

    if not hasattr(openretina.models, "load_core_readout_from_remote"):
        pytest.skip("openretina.models does not export load_core_readout_from_remote yet (wired by the lead)")
    namespace: dict[str, Any] = {"torch": torch}
    with _with_checksum(fixture_sha256):
        exec(README_EXAMPLE, namespace)  # the snippet exactly as the README has it
    assert namespace["responses"].shape == (1, 20, sum(FIXTURE_SESSIONS.values()))
    assert hub_mirror.requests == [(f"/{README_MODEL_HUB_PATH}", None)]


def test_mirror_download_reproduces_the_reference_outputs_then_works_offline(
    hub_mirror: Any, fixture_sha256: str, reference_io: dict[str, torch.Tensor]
) -> None:
    with _with_checksum(fixture_sha256):
        model = load_core_readout_from_remote(MODEL_NAME, "cpu")
        assert isinstance(model, UnifiedCoreReadout)
        assert not model.training and model.device == torch.device("cpu")
        responses = model.forward(torch.rand(model.stimulus_shape(time_steps=50)))
        assert responses.shape == (1, 20, 96)
        with torch.no_grad():
            for session in FIXTURE_SESSIONS:
                output = model(reference_io["input"], data_key=session)
                assert (output - reference_io[f"trained_best__{session}"]).abs().max().item() < TOLERANCE
        cached = download.get_cache_directory() / README_MODEL_HUB_PATH
        assert _cache_files() == [cached]  # reference cache layout, nothing else
        hub_mirror.stop()
        again = load_core_readout_from_remote(MODEL_NAME, "cpu")  # offline: served from the cache
    with torch.no_grad():
        torch.testing.assert_close(again(reference_io["input"]), model(reference_io["input"]), rtol=0, atol=0)
    assert len(hub_mirror.requests) == 1


def test_corrupted_download_is_refused_and_not_cached(hub_mirror: Any, fixture_sha256: str) -> None:
    wrong = fixture_sha256[::-1]
    with _with_checksum(wrong), pytest.raises(ChecksumMismatchError) as raised:
        load_core_readout_from_remote(MODEL_NAME, "cpu")
    assert MODEL_NAME in str(raised.value) and wrong in str(raised.value) and fixture_sha256 in str(raised.value)
    assert _cache_files() == []


def test_truncated_download_is_refused_and_not_cached(hub_mirror: Any, fixture_sha256: str) -> None:
    hub_mirror.truncate_to = 50_000
    size = (hub_mirror.root / README_MODEL_HUB_PATH).stat().st_size
    with _with_checksum(fixture_sha256), pytest.raises(RemoteFileUnavailableError) as raised:
        load_core_readout_from_remote(MODEL_NAME, "cpu")
    # Two attempts, the second resuming where the first stopped: 2 x 50000 bytes of the file arrived.
    assert f"sent 100000 of {size} bytes" in str(raised.value) and MODEL_NAME in str(raised.value)
    assert [request[1] for request in hub_mirror.requests] == [None, "bytes=50000-"]
    assert _cache_files() == []


def test_offline_with_empty_cache_names_model_url_and_remedy(hub_mirror: Any) -> None:
    hub_mirror.stop()
    with pytest.raises(RemoteFileUnavailableError) as raised:
        load_core_readout_from_remote(MODEL_NAME, "cpu")
    message = str(raised.value)
    assert f"pretrained model {MODEL_NAME!r}" in message
    assert f"{hub_mirror.url}/{README_MODEL_HUB_PATH}" in message
    assert str(download.get_cache_directory() / README_MODEL_HUB_PATH) in message  # where to put the file
    assert "curl" in message and download.CACHE_DIRECTORY_ENV in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no HTTP-library traceback


def test_cached_file_loads_without_mirror_or_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_sha256: str
) -> None:
    cache = tmp_path / "prepopulated"
    (cache / README_MODEL_HUB_PATH).parent.mkdir(parents=True)
    shutil.copyfile(
        Path(__file__).resolve().parents[1] / "data/reference_fixture/trained_best.ckpt", cache / README_MODEL_HUB_PATH
    )
    monkeypatch.setenv(download.HUB_MIRROR_ENV, "http://127.0.0.1:9")  # would be refused if contacted

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network used for a cached file")

    monkeypatch.setattr(download.urllib.request, "urlopen", no_network)
    with _with_checksum(fixture_sha256):
        model = load_core_readout_model(MODEL_NAME, "cpu", cache_directory_path=cache)  # cache argument honoured
    assert model.readout_keys() == list(FIXTURE_SESSIONS)


def test_legacy_name_warns_and_loads_its_old_path(hub_mirror: Any) -> None:
    legacy_path = "model_checkpoints/27-11-2025/hoefling_2024_base_high_res.ckpt"
    (hub_mirror.root / legacy_path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(hub_mirror.root / README_MODEL_HUB_PATH, hub_mirror.root / legacy_path)
    with pytest.warns(DeprecationWarning, match="hoefling_2024_high_res"):
        model = load_core_readout_from_remote("hoefling_2024_base_high_res", "cpu")
    assert hub_mirror.requests == [(f"/{legacy_path}", None)]
    assert not model.training


def test_urls_and_local_paths_load_too(hub_mirror: Any, tmp_path: Path) -> None:
    url = f"{hub_mirror.url}/{README_MODEL_HUB_PATH}"
    from_url = load_core_readout_from_remote(url, "cpu")
    local = download.get_cache_directory() / "url"
    assert any(local.rglob("hoefling_2024_base_low_res.ckpt"))
    from_path = load_core_readout_from_remote(str(hub_mirror.root / README_MODEL_HUB_PATH), "cpu")
    x = torch.rand(from_path.stimulus_shape(time_steps=40))
    with torch.no_grad():
        torch.testing.assert_close(from_url(x), from_path(x), rtol=0, atol=0)


def test_remote_location_table_is_derived_from_the_registry() -> None:
    assert _MODEL_NAME_TO_REMOTE_LOCATION[MODEL_NAME] == (
        "https://huggingface.co/datasets/open-retina/open-retina/tree/main/model_checkpoints/27-11-2025/"
        "hoefling_2024_base_low_res.ckpt"
    )
    published = {m for m, e in REGISTRY.items() if e.superseded_by is None and e.hub_path is not None}
    assert set(_MODEL_NAME_TO_REMOTE_LOCATION) == published
