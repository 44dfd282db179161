"""Fixtures of the download tests: local HTTP servers on 127.0.0.1, an empty cache, and a network tripwire."""

from __future__ import annotations

import importlib.util
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openretina.utils import download


def _static_server_class() -> Any:
    """tests/hub/_static_server.py's StaticServer (tests are not a package under importlib import mode)."""
    path = Path(__file__).resolve().parents[1] / "hub" / "_static_server.py"
    spec = importlib.util.spec_from_file_location("_static_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.StaticServer


StaticServer = _static_server_class()


@pytest.fixture
def serve() -> Iterator[Callable[[Path], Any]]:
    """``serve(root)`` starts a StaticServer for ``root``; every server is stopped after the test."""
    servers: list[Any] = []

    def start(root: Path) -> Any:
        servers.append(StaticServer(root))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()  # a no-op for servers a test already stopped (offline scenarios)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> download.RetryPolicy:
    """Three attempts without waiting, also as the default policy."""
    policy = download.RetryPolicy(attempts=3, initial_delay_s=0.0)
    monkeypatch.setattr(download, "DEFAULT_RETRY_POLICY", policy)
    return policy


@pytest.fixture
def forbid_network(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Calling the fixture's value arms a tripwire: any later HTTP request fails the test; returns the log."""
    attempts: list[str] = []

    def arm() -> list[str]:
        def refuse(request: Any, *args: Any, **kwargs: Any) -> None:
            attempts.append(getattr(request, "full_url", str(request)))
            raise AssertionError(f"unexpected network access: {attempts[-1]}")

        monkeypatch.setattr(urllib.request, "urlopen", refuse)
        return attempts

    return arm
