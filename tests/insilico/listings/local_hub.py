"""A local copy of the model hub for the in-silico acceptance tests: the reference fixture served over HTTP.

Loading a registered model name inside :func:`serve_fixture_as` goes through the real code path (registry ->
download from ``$OPENRETINA_HUB_URL`` -> sha256 check -> cache -> safe checkpoint reader), with the project's
copy of the reference checkpoint fixture standing in for the published file. Test modules load this file with
``runpy.run_path`` (tests are not a package under the importlib import mode).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.hub._static_server import StaticServer  # the project's one local HTTP server for tests

from openretina.hub import REGISTRY, registry_override
from openretina.models.core_readout import BaseCoreReadout
from openretina.utils import download

TESTS_DIR = Path(__file__).resolve().parents[2]
FIXTURE_CHECKPOINT = TESTS_DIR / "data" / "reference_fixture" / "trained_best.ckpt"
FIXTURE_IO = TESTS_DIR / "data" / "reference_fixture" / "io.safetensors"
FIXTURE_SESSIONS = {"session_1_synthetic_20240101": 40, "session_2_synthetic_20240102": 56}
MODEL_NAME = "hoefling_2024_base_low_res"


@contextmanager
def serve_fixture_as(folder: Path, model_name: str = MODEL_NAME) -> Iterator[Any]:
    """Serve the fixture checkpoint where the registry says ``model_name`` lives; yield the running server.

    Inside the block ``OPENRETINA_HUB_URL`` points at the server, ``OPENRETINA_CACHE_DIRECTORY`` at an empty
    folder under ``folder``, download retries do not wait, and the registry entry carries the fixture's sha256
    (through :func:`openretina.hub.registry_override`, the hub's supported override), so the download is
    verified. ``server.requests`` lists the paths fetched.
    """
    entry = REGISTRY[model_name]
    assert entry.hub_path is not None, f"{model_name} is not a hub model"
    root = folder / "mirror"
    (root / entry.hub_path).parent.mkdir(parents=True)
    shutil.copyfile(FIXTURE_CHECKPOINT, root / entry.hub_path)
    server = StaticServer(root)
    fixture_entry = dataclasses.replace(entry, sha256=download.sha256_of_file(FIXTURE_CHECKPOINT))
    try:
        with pytest.MonkeyPatch.context() as patch, registry_override(fixture_entry):
            patch.setenv(download.HUB_MIRROR_ENV, server.url)
            patch.setenv(download.CACHE_DIRECTORY_ENV, str(folder / "cache"))
            patch.setattr(download, "DEFAULT_RETRY_POLICY", download.RetryPolicy(attempts=2, initial_delay_s=0.0))
            yield server
    finally:
        server.stop()


def hub_request(model_name: str = MODEL_NAME) -> tuple[str, None]:
    """The request a first load of ``model_name`` makes to the mirror: its registry path, no Range header."""
    return (f"/{REGISTRY[model_name].hub_path}", None)


@contextmanager
def recorded_model_inputs() -> Iterator[list[torch.Tensor]]:
    """Record a copy of the stimulus of every call of a core-readout model (of any instance) inside the block.

    The snippets and listings build their model themselves, so a global forward pre-hook is the way to see
    what they feed it without changing their text.
    """
    inputs: list[torch.Tensor] = []

    def record(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if isinstance(module, BaseCoreReadout) and args:
            inputs.append(args[0].detach().clone())

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        yield inputs
    finally:
        handle.remove()
