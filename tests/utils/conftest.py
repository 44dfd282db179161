"""Fixtures of the download tests: local HTTP servers on 127.0.0.1, an empty cache, and a network tripwire."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openretina.utils import download

from ..hub._static_server import StaticServer


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
