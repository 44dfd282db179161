"""The one download function: URL forms, cache layout, mirrors, checksums, retries, resume, zips, offline errors."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.utils import download, http_transfer
from openretina.utils.download import (
    ChecksumMismatchError,
    RemoteEntryNotFoundError,
    RemoteFileUnavailableError,
    RetryPolicy,
    get_cache_directory,
    get_local_file_path,
    resolve_remote_file,
)

NO_WAIT = RetryPolicy(attempts=3, initial_delay_s=0.0)
HF_TREE = "https://huggingface.co/datasets/open-retina/open-retina/tree/main"
GIN_RAW = "https://gin.g-node.org/eulerlab/rgc-natstim/raw/master"
PAYLOAD = bytes(range(256)) * 40  # 10 KiB, every byte value


@pytest.fixture
def server(tmp_path: Path, serve: Callable[[Path], Any]) -> Any:
    root = tmp_path / "served"
    (root / "folder").mkdir(parents=True)
    (root / "folder" / "data.bin").write_bytes(PAYLOAD)
    return serve(root)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


# ----------------------------------------------------------------------------------------------- URL resolution
@pytest.mark.parametrize("form", ["tree", "blob", "resolve"])
def test_huggingface_url_forms_share_the_reference_cache_path(form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.HUB_MIRROR_ENV, raising=False)
    url = f"https://huggingface.co/datasets/open-retina/open-retina/{form}/main/model_checkpoints/a b/m.ckpt"
    remote = resolve_remote_file(url)
    assert remote.cache_path == PurePosixPath("model_checkpoints/a b/m.ckpt")
    assert remote.download_urls == (
        "https://huggingface.co/datasets/open-retina/open-retina/resolve/main/model_checkpoints/a%20b/m.ckpt",
    )


def test_hub_mirror_replaces_the_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.HUB_MIRROR_ENV, "http://mirror.local:8000/hub/")
    remote = resolve_remote_file(f"{HF_TREE}/euler_lab/x.zip")
    assert remote.download_urls == ("http://mirror.local:8000/hub/euler_lab/x.zip",)
    assert remote.cache_path == PurePosixPath("euler_lab/x.zip")


def test_other_sources_get_their_own_cache_subtrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.GIN_MIRROR_ENV, "http://gin-mirror")
    other_repo = resolve_remote_file("https://huggingface.co/datasets/someone/else/blob/v2/model_checkpoints/m.ckpt")
    assert other_repo.cache_path == PurePosixPath("huggingface/someone/else/v2/model_checkpoints/m.ckpt")
    gin = resolve_remote_file("https://gin.g-node.org/eulerlab/rgc-natstim/raw/master/models/a/config.yaml")
    assert gin.cache_path == PurePosixPath("gin/eulerlab/rgc-natstim/raw/master/models/a/config.yaml")
    assert gin.download_urls == ("http://gin-mirror/eulerlab/rgc-natstim/raw/master/models/a/config.yaml",)
    plain = resolve_remote_file("http://127.0.0.1:8080/x/y.h5")
    assert plain.cache_path == PurePosixPath("url/127.0.0.1_8080/x/y.h5")


def test_huggingface_query_strings_and_www_do_not_change_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.HUB_MIRROR_ENV, raising=False)
    plain = resolve_remote_file(f"{HF_TREE}/euler_lab/x.zip")
    for variant in (
        "https://huggingface.co/datasets/open-retina/open-retina/resolve/main/euler_lab/x.zip?download=true",
        "https://www.huggingface.co/datasets/open-retina/open-retina/blob/main/euler_lab/x.zip#L1",
    ):
        remote = resolve_remote_file(variant)
        assert (remote.cache_path, remote.download_urls) == (plain.cache_path, plain.download_urls)


def test_huggingface_paths_carry_their_folder_listing_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.HUB_MIRROR_ENV, raising=False)
    folder = "gollisch_lab/sridhar_2025/marmoset/natural movie"
    assert resolve_remote_file(f"{HF_TREE}/{folder}").listing_url == (
        "https://huggingface.co/api/datasets/open-retina/open-retina/tree/main/"
        "gollisch_lab/sridhar_2025/marmoset/natural%20movie?recursive=true"
    )
    other = resolve_remote_file("https://huggingface.co/datasets/someone/else/tree/v2/a/b")
    assert other.listing_url == "https://huggingface.co/api/datasets/someone/else/tree/v2/a/b?recursive=true"
    monkeypatch.setenv(download.HUB_MIRROR_ENV, "http://mirror.local/hub")
    assert resolve_remote_file(f"{HF_TREE}/{folder}").listing_url == (
        "http://mirror.local/hub/gollisch_lab/sridhar_2025/marmoset/natural%20movie.openretina-tree.json"
    )
    # the mirror stands in for the project repository only
    assert resolve_remote_file("https://huggingface.co/datasets/someone/else/tree/v2/a/b") == other


def test_gin_browsing_page_urls_fetch_the_raw_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(download.GIN_MIRROR_ENV, raising=False)
    raw = resolve_remote_file(f"{GIN_RAW}/models/a b/config.yaml")
    page = resolve_remote_file("https://gin.g-node.org/eulerlab/rgc-natstim/src/master/models/a%20b/config.yaml?x=1")
    assert (
        raw.download_urls
        == page.download_urls
        == ("https://gin.g-node.org/eulerlab/rgc-natstim/raw/master/models/a%20b/config.yaml",)
    )
    assert (
        raw.cache_path == page.cache_path == PurePosixPath("gin/eulerlab/rgc-natstim/raw/master/models/a b/config.yaml")
    )
    assert raw.listing_url is None  # GIN URLs name files


@pytest.mark.parametrize("bad", ["ftp://host/file", "https://host/", "https://host/a/../../etc/passwd"])
def test_unusable_urls_are_rejected(bad: str) -> None:
    with pytest.raises(DataFormatError, match=r"URL|http"):
        resolve_remote_file(bad)


def test_cache_directory_follows_the_environment_and_import_does_not_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.CACHE_DIRECTORY_ENV, "~/somewhere")
    assert get_cache_directory() == Path.home() / "somewhere"
    monkeypatch.delenv(download.CACHE_DIRECTORY_ENV)
    assert get_cache_directory() == Path.home() / "openretina_cache"
    env = {k: v for k, v in os.environ.items() if k != download.CACHE_DIRECTORY_ENV}
    probe = "import os, openretina.utils.download; print('OPENRETINA_CACHE_DIRECTORY' in os.environ)"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------------- downloads
def test_download_then_cached_copy_needs_no_network(
    server: Any, cache: Path, forbid_network: Callable[[], list[str]]
) -> None:
    url = f"{server.url}/folder/data.bin"
    local = get_local_file_path(url, cache, sha256=_sha256(PAYLOAD), retry=NO_WAIT, progress=False)
    assert local == cache / "url" / server.url.removeprefix("http://").replace(":", "_") / "folder" / "data.bin"
    assert local.read_bytes() == PAYLOAD
    server.stop()
    attempts = forbid_network()
    assert get_local_file_path(url, cache, sha256=_sha256(PAYLOAD), progress=False) == local
    assert len(server.requests) == 1 and attempts == []


def test_mirror_serves_hub_paths(server: Any, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.HUB_MIRROR_ENV, server.url)
    local = get_local_file_path(f"{HF_TREE}/folder/data.bin", cache, retry=NO_WAIT, progress=False)
    assert local == cache / "folder" / "data.bin"
    assert local.read_bytes() == PAYLOAD
    assert server.requests == [("/folder/data.bin", None)]


def test_wrong_checksum_is_detected_and_nothing_is_kept(server: Any, cache: Path) -> None:
    with pytest.raises(ChecksumMismatchError) as raised:
        get_local_file_path(f"{server.url}/folder/data.bin", cache, sha256="0" * 64, retry=NO_WAIT, progress=False)
    message = str(raised.value)
    assert "0" * 64 in message and _sha256(PAYLOAD) in message and "/folder/data.bin" in message
    assert _cache_files(cache) == []


def test_truncated_download_is_detected_and_nothing_is_kept(server: Any, cache: Path) -> None:
    server.truncate_to = 1000
    server.support_range = False
    with pytest.raises(RemoteFileUnavailableError, match=f"sent 1000 of {len(PAYLOAD)} bytes") as raised:
        get_local_file_path(f"{server.url}/folder/data.bin", cache, retry=NO_WAIT, progress=False)
    assert "3 attempts" in str(raised.value)
    assert len(server.requests) == 3
    assert _cache_files(cache) == []


def test_partial_file_is_resumed_with_a_range_request(server: Any, cache: Path) -> None:
    url = f"{server.url}/folder/data.bin"
    destination = cache / Path(*resolve_remote_file(url).cache_path.parts)
    destination.parent.mkdir(parents=True)
    destination.with_name("data.bin.partial").write_bytes(PAYLOAD[:4000])
    local = get_local_file_path(url, cache, sha256=_sha256(PAYLOAD), retry=NO_WAIT, progress=False)
    assert local.read_bytes() == PAYLOAD
    assert server.requests == [("/folder/data.bin", "bytes=4000-")]
    assert _cache_files(cache) == [str(destination.relative_to(cache))]


def test_partial_file_is_restarted_when_the_server_ignores_ranges(server: Any, cache: Path) -> None:
    server.support_range = False
    url = f"{server.url}/folder/data.bin"
    destination = cache / Path(*resolve_remote_file(url).cache_path.parts)
    destination.parent.mkdir(parents=True)
    destination.with_name("data.bin.partial").write_bytes(b"garbage" * 100)
    assert get_local_file_path(url, cache, retry=NO_WAIT, progress=False).read_bytes() == PAYLOAD


def test_partial_file_longer_than_the_remote_file_is_restarted(server: Any, cache: Path) -> None:
    url = f"{server.url}/folder/data.bin"
    destination = cache / Path(*resolve_remote_file(url).cache_path.parts)
    destination.parent.mkdir(parents=True)
    destination.with_name("data.bin.partial").write_bytes(PAYLOAD + b"stale tail")
    assert get_local_file_path(url, cache, retry=NO_WAIT, progress=False).read_bytes() == PAYLOAD
    assert server.requests == [("/folder/data.bin", f"bytes={len(PAYLOAD) + 10}-"), ("/folder/data.bin", None)]


def test_unknown_host_fails_at_once(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def unresolvable(request: Any, timeout: float) -> None:
        calls.append(request.full_url)
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", unresolvable)
    with pytest.raises(RemoteFileUnavailableError, match="cannot resolve the host name"):
        get_local_file_path("https://example.invalid/model.ckpt", cache, retry=NO_WAIT, progress=False)
    assert calls == ["https://example.invalid/model.ckpt"]


def test_transient_errors_are_retried(server: Any, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(http_transfer.time, "sleep", sleeps.append)
    server.fail_with = [503, 502]
    policy = RetryPolicy(attempts=3, initial_delay_s=0.5, factor=4.0)
    local = get_local_file_path(f"{server.url}/folder/data.bin", cache, retry=policy, progress=False)
    assert local.read_bytes() == PAYLOAD
    assert len(server.requests) == 3
    assert sleeps == [0.0, 0.5, 2.0]  # no wait, then geometric backoff


def test_missing_remote_file_fails_at_once(server: Any, cache: Path) -> None:
    with pytest.raises(RemoteFileUnavailableError, match="HTTP 404"):
        get_local_file_path(f"{server.url}/folder/absent.bin", cache, retry=NO_WAIT, progress=False)
    assert len(server.requests) == 1


def test_offline_with_empty_cache_gives_one_actionable_error(server: Any, cache: Path) -> None:
    server.stop()
    url = f"{server.url}/folder/data.bin"
    with pytest.raises(RemoteFileUnavailableError) as raised:
        get_local_file_path(url, cache, what="dataset 'demo'", retry=NO_WAIT, progress=False)
    message = str(raised.value)
    expected_location = cache / Path(*resolve_remote_file(url).cache_path.parts)
    for part in ("dataset 'demo'", url, str(expected_location), "connection failed", "curl", "3 attempts"):
        assert part in message
    assert download.HUB_MIRROR_ENV not in message  # a plain URL has no mirror variable
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert isinstance(raised.value, FileNotFoundError)
    assert not isinstance(raised.value, RemoteEntryNotFoundError)


@pytest.mark.parametrize(
    ("url", "variable"),
    [(f"{HF_TREE}/folder/data.bin", download.HUB_MIRROR_ENV), (f"{GIN_RAW}/folder/data.bin", download.GIN_MIRROR_ENV)],
)
def test_offline_error_names_the_mirror_variable_of_the_source(
    server: Any, cache: Path, monkeypatch: pytest.MonkeyPatch, url: str, variable: str
) -> None:
    monkeypatch.setenv(variable, server.url)
    server.stop()
    with pytest.raises(RemoteFileUnavailableError, match=variable):
        get_local_file_path(url, cache, retry=NO_WAIT, progress=False)


def test_interrupted_download_keeps_its_partial_file_and_resumes(
    server: Any, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C mid-download: the bytes received stay in ``.partial``; the next call asks only for the rest."""
    url = f"{server.url}/folder/data.bin"
    written: list[int] = []

    class InterruptAfterFourChunks:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __enter__(self) -> InterruptAfterFourChunks:
            return self

        def __exit__(self, *args: Any) -> None:
            pass

        def update(self, n: int) -> None:
            written.append(n)
            if len(written) == 4:
                raise KeyboardInterrupt

    monkeypatch.setattr(http_transfer, "_CHUNK_BYTES", 1000)
    monkeypatch.setattr(http_transfer, "tqdm", InterruptAfterFourChunks)
    with pytest.raises(KeyboardInterrupt):
        get_local_file_path(url, cache, retry=NO_WAIT, progress=False)
    destination = cache / Path(*resolve_remote_file(url).cache_path.parts)
    assert destination.with_name("data.bin.partial").read_bytes() == PAYLOAD[:4000]
    assert not destination.exists()
    monkeypatch.undo()
    local = get_local_file_path(url, cache, sha256=_sha256(PAYLOAD), retry=NO_WAIT, progress=False)
    assert local.read_bytes() == PAYLOAD
    assert server.requests == [("/folder/data.bin", None), ("/folder/data.bin", "bytes=4000-")]


def test_damaged_cached_file_is_downloaded_again(server: Any, cache: Path) -> None:
    url = f"{server.url}/folder/data.bin"
    local = get_local_file_path(url, cache, progress=False)
    local.write_bytes(b"bit rot")
    assert get_local_file_path(url, cache, sha256=_sha256(PAYLOAD), progress=False).read_bytes() == PAYLOAD
    assert len(server.requests) == 2


# ---------------------------------------------------------------------------------------------------------- zips
def _write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"inner.pkl": b"one"}, "inner.pkl"),  # single member: next to the archive
        ({"bundle/a.txt": b"a", "bundle/sub/b.txt": b"b"}, "bundle"),  # one folder named like the archive
        ({"a.txt": b"a", "b.txt": b"b"}, "bundle"),  # anything else: a folder named like the archive
    ],
)
def test_zip_is_extracted_kept_and_reused_offline(
    server: Any, cache: Path, members: dict[str, bytes], expected: str
) -> None:
    _write_zip(server.root / "z" / "bundle.zip", members)
    url = f"{server.url}/z/bundle.zip"
    result = get_local_file_path(url, cache, progress=False)
    archive = cache / Path(*resolve_remote_file(url).cache_path.parts)
    assert result == archive.parent / expected
    assert archive.is_file() and archive.with_name("bundle.zip.extracted").is_file()  # kept for integrity checks
    extracted = {
        str(p.relative_to(result if result.is_dir() else result.parent)): p.read_bytes()
        for p in ([result] if result.is_file() else result.rglob("*"))
        if p.is_file()
    }
    assert extracted == {name.removeprefix("bundle/"): data for name, data in members.items()}
    server.stop()
    assert get_local_file_path(url, cache, progress=False) == result


def test_zip_members_leaving_the_folder_are_refused(server: Any, cache: Path) -> None:
    _write_zip(server.root / "evil.zip", {"../../escaped.txt": b"x", "ok.txt": b"y"})
    with pytest.raises(DataFormatError, match="outside the archive"):
        get_local_file_path(f"{server.url}/evil.zip", cache, progress=False)
    assert not (cache.parent / "escaped.txt").exists() and not (cache / "escaped.txt").exists()


# --------------------------------------------------------------------------------------------------- local paths
def test_local_paths_are_returned_and_missing_ones_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "weights.ckpt"
    file.write_bytes(b"x")
    assert get_local_file_path(str(file)) == file
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_local_file_path("~/weights.ckpt") == file
    with pytest.raises(DataFileNotFoundError, match=r"absent\.ckpt"):
        get_local_file_path(tmp_path / "absent.ckpt")


def test_reference_import_path_reexports_the_same_function() -> None:
    from openretina.utils import file_utils

    assert file_utils.get_local_file_path is get_local_file_path
    assert file_utils.HUGGINGFACE_REPO_ID == "open-retina/open-retina"
