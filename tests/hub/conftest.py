"""Fixtures of the hub tests: a local mirror of the hub repository serving the reference checkpoint fixture."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from openretina.utils import download

from ._static_server import StaticServer

TESTS_DIR = Path(__file__).resolve().parents[1]
FIXTURE_DIR = TESTS_DIR / "data" / "reference_fixture"
# Where the README's model lives in the hub repository (reference layout).
README_MODEL_HUB_PATH = "model_checkpoints/27-11-2025/hoefling_2024_base_low_res.ckpt"
FIXTURE_CHECKPOINT = FIXTURE_DIR / "trained_best.ckpt"
FIXTURE_SESSIONS = {"session_1_synthetic_20240101": 40, "session_2_synthetic_20240102": 56}


@pytest.fixture(scope="session")
def fixture_sha256() -> str:
    return hashlib.sha256(FIXTURE_CHECKPOINT.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def reference_io() -> dict[str, torch.Tensor]:
    """``input`` (3, 2, 60, 18, 16) and the reference outputs ``<checkpoint>__<session>``."""
    return load_file(str(FIXTURE_DIR / "io.safetensors"))


@pytest.fixture
def hub_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local mirror of the hub repository holding the fixture checkpoint at the README model's path.

    ``OPENRETINA_HUB_URL`` points at it, ``OPENRETINA_CACHE_DIRECTORY`` at an empty temporary cache, and
    retries do not wait.
    """
    root = tmp_path / "mirror"
    (root / README_MODEL_HUB_PATH).parent.mkdir(parents=True)
    shutil.copyfile(FIXTURE_CHECKPOINT, root / README_MODEL_HUB_PATH)
    server = StaticServer(root)
    monkeypatch.setenv(download.HUB_MIRROR_ENV, server.url)
    monkeypatch.setenv(download.CACHE_DIRECTORY_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(download, "DEFAULT_RETRY_POLICY", download.RetryPolicy(attempts=2, initial_delay_s=0.0))
    try:
        yield server
    finally:
        server.stop()
