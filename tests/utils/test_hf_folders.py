"""Hugging Face folder downloads: listing (mirror index, Hub API with pages), cache record, offline, resume, errors."""

from __future__ import annotations

import email.message
import functools
import hashlib
import http.server
import io
import json
import threading
import urllib.error
import urllib.request
import urllib.response
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.utils import download
from openretina.utils.checksums import ExpectedContent, git_blob_sha1_of_file
from openretina.utils.download import (
    ChecksumMismatchError,
    RemoteEntryNotFoundError,
    RemoteFileUnavailableError,
    get_local_file_path,
    huggingface_download,
)
from openretina.utils.hf_folders import (
    FolderEntry,
    files_under,
    next_page_url,
    parse_listing,
    read_folder_index,
    write_folder_index,
)

HF_TREE = "https://huggingface.co/datasets/open-retina/open-retina/tree/main"
FOLDER = "lab/data"
A_BIN = bytes(range(256)) * 8
FOLDER_FILES = ("lab/data/a.bin", "lab/data/pack.zip", "lab/data/sub/b.txt")  # sorted
SIBLING = "lab/database.bin"  # shares the prefix "lab/data" but is not inside the folder


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _repository(root: Path) -> dict[str, bytes]:
    """A copy of a hub repository tree under ``root`` with the folder, a prefix-sharing sibling and no index."""
    contents = {
        "lab/data/a.bin": A_BIN,
        "lab/data/pack.zip": _zip_bytes({"x.txt": b"x", "y.txt": b"y"}),
        "lab/data/sub/b.txt": b"hello\n",
        SIBLING: b"no",
    }
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return contents


@pytest.fixture
def mirror(tmp_path: Path, serve: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch, no_wait: Any) -> Any:
    """A static mirror of the hub repository holding the folder and its index; ``OPENRETINA_HUB_URL`` set."""
    root = tmp_path / "mirror"
    _repository(root)
    write_folder_index(root, FOLDER)
    server = serve(root)
    monkeypatch.setenv(download.HUB_MIRROR_ENV, server.url)
    return server


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ listing format
def test_index_records_sizes_and_digests_computed_independently(tmp_path: Path) -> None:
    contents = _repository(tmp_path)
    index = write_folder_index(tmp_path, FOLDER + "/")
    assert index == tmp_path / "lab" / "data.openretina-tree.json"
    listed = json.loads(index.read_text())
    assert [item["path"] for item in listed] == list(FOLDER_FILES)
    for item in listed:
        data = contents[item["path"]]
        assert item["type"] == "file" and item["size"] == len(data)
        assert item["lfs"]["oid"] == _sha256(data)
        assert item["oid"] == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    # git's own id of "hello\n" (git hash-object), an independent fixed value
    assert git_blob_sha1_of_file(tmp_path / "lab/data/sub/b.txt") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert read_folder_index(index) == parse_listing(index.read_bytes(), "index")


def test_hub_listing_entries_are_parsed_and_directories_skipped() -> None:
    page = json.dumps(
        [
            {"type": "directory", "oid": "d" * 40, "size": 0, "path": "lab/data/sub"},
            {"type": "file", "oid": "a" * 40, "size": 6, "path": "lab/data/sub/b.txt"},
            {"type": "file", "oid": "b" * 40, "size": 9, "path": "lab/data/c.h5", "lfs": {"oid": "C" * 64, "size": 9}},
        ]
    )
    assert parse_listing(page, "page") == [
        FolderEntry(PurePosixPath("lab/data/sub/b.txt"), 6, None, "a" * 40),
        FolderEntry(PurePosixPath("lab/data/c.h5"), 9, "C" * 64, "b" * 40),
    ]
    assert parse_listing(page, "page")[1].expected == ExpectedContent(9, "C" * 64, None)  # sha256 suffices
    assert parse_listing(page, "page")[0].expected == ExpectedContent(6, None, "a" * 40)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("<html>", "not valid JSON"),
        ('{"path": "x"}', "JSON list"),
        ('[{"path": "x", "size": 1}]', "'type'"),
        ('[{"type": "file", "path": "x"}]', "integer 'size'"),
        ('[{"type": "file", "path": "../../etc/passwd", "size": 1}]', "leaves the repository"),
    ],
)
def test_malformed_listings_are_refused_with_their_source(payload: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message) as raised:
        parse_listing(payload, "http://mirror/x.json")
    assert "http://mirror/x.json" in str(raised.value)


def test_folder_membership_needs_a_slash_and_pages_follow_the_link_header() -> None:
    entries = [FolderEntry(PurePosixPath(p), 1) for p in ("a/bc.txt", "a/b/z.txt", "a/b/c/d.txt", "a/b")]
    assert [str(e.path) for e in files_under(entries, PurePosixPath("a/b"))] == ["a/b/c/d.txt", "a/b/z.txt"]
    link = '<https://huggingface.co/api/datasets/o/r/tree/main/a?recursive=true&cursor=XYZ>; rel="next"'
    assert next_page_url(link) == "https://huggingface.co/api/datasets/o/r/tree/main/a?recursive=true&cursor=XYZ"
    assert next_page_url('<https://x/prev>; rel="prev"') is None and next_page_url(None) is None


def test_indexing_a_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DataFileNotFoundError, match="lab/absent"):
        write_folder_index(tmp_path, "lab/absent")


# --------------------------------------------------------------------------------------------- folder downloads
def test_folder_from_a_mirror_is_complete_verified_and_then_used_offline(
    mirror: Any, cache: Path, forbid_network: Callable[[], list[str]]
) -> None:
    folder = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    assert folder == cache / "lab" / "data"  # the reference's cache layout
    assert _folder_files(folder) == _folder_files(mirror.root / FOLDER)
    assert not (cache / SIBLING).exists()  # "lab/database.bin" is not in "lab/data"
    assert read_folder_index(cache / "lab" / "data.openretina-tree.json") == read_folder_index(
        mirror.root / "lab" / "data.openretina-tree.json"
    )
    assert [path for path, _ in mirror.requests] == [
        "/lab/data",  # not a file ...
        "/lab/data.openretina-tree.json",  # ... so the folder's listing
        "/lab/data/a.bin",
        "/lab/data/pack.zip",
        "/lab/data/sub/b.txt",
    ]
    mirror.stop()
    attempts = forbid_network()
    for form in ("tree", "blob", "resolve"):
        url = f"https://huggingface.co/datasets/open-retina/open-retina/{form}/main/{FOLDER}/"
        assert get_local_file_path(url, cache, unzip=False, progress=False) == folder
    assert attempts == []


def test_zips_inside_a_folder_are_extracted_and_kept(mirror: Any, cache: Path) -> None:
    folder = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, progress=False)
    assert _folder_files(folder / "pack") == {"x.txt": b"x", "y.txt": b"y"}
    assert (folder / "pack.zip").is_file() and (folder / "pack.zip.extracted").is_file()


def test_a_populated_cache_is_itself_a_mirror(
    mirror: Any, cache: Path, tmp_path: Path, serve: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    monkeypatch.setenv(download.HUB_MIRROR_ENV, serve(cache).url)
    second = get_local_file_path(f"{HF_TREE}/{FOLDER}", tmp_path / "cache2", unzip=False, progress=False)
    assert _folder_files(second) == _folder_files(first)


def test_interrupted_folder_download_resumes_with_the_missing_files_only(mirror: Any, cache: Path) -> None:
    held_back = mirror.root / "lab/data/sub/b.txt"
    held_back.rename(mirror.root / "held_back")
    with pytest.raises(RemoteEntryNotFoundError, match=r"'lab/data/sub/b\.txt'.*HTTP 404"):
        get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    assert not (cache / "lab" / "data.openretina-tree.json").exists()  # incomplete: no record
    assert (cache / "lab/data/a.bin").is_file()  # verified files stay
    (mirror.root / "held_back").rename(held_back)
    mirror.requests.clear()
    folder = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    assert _folder_files(folder) == _folder_files(mirror.root / FOLDER)
    assert [path for path, _ in mirror.requests] == [
        "/lab/data",
        "/lab/data.openretina-tree.json",
        "/lab/data/sub/b.txt",
    ]


def test_deleted_file_of_a_recorded_folder_is_fetched_again(mirror: Any, cache: Path) -> None:
    folder = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    (folder / "a.bin").unlink()
    mirror.requests.clear()
    assert get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False) == folder
    assert (folder / "a.bin").read_bytes() == A_BIN
    # the record says it is a folder: no file attempt first
    assert [path for path, _ in mirror.requests] == ["/lab/data.openretina-tree.json", "/lab/data/a.bin"]


def test_folder_file_differing_from_the_listing_is_rejected(mirror: Any, cache: Path) -> None:
    served = mirror.root / "lab/data/a.bin"
    served.write_bytes(bytes(reversed(served.read_bytes())))  # same size, other content
    with pytest.raises(ChecksumMismatchError, match=r"lab/data/a\.bin.*sha256") as raised:
        get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    assert _sha256(A_BIN) in str(raised.value)
    assert not (cache / "lab/data/a.bin").exists() and not (cache / "lab" / "data.openretina-tree.json").exists()


def test_sha256_for_a_folder_is_refused(mirror: Any, cache: Path) -> None:
    with pytest.raises(DataFormatError, match="is a folder, but a sha256 was given"):
        get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, sha256="0" * 64, progress=False)


def test_path_that_is_neither_file_nor_folder_gives_one_clear_error(mirror: Any, cache: Path) -> None:
    with pytest.raises(RemoteEntryNotFoundError) as raised:
        get_local_file_path(f"{HF_TREE}/lab/absent", cache, what="dataset 'x'", progress=False)
    message = str(raised.value)
    for part in ("dataset 'x'", "no file or folder 'lab/absent'", "/lab/absent.openretina-tree.json", "tree/main/lab"):
        assert part in message
    assert len(mirror.requests) == 2  # 404s are not retried


def test_offline_with_an_empty_cache_names_folder_record_and_mirror(mirror: Any, cache: Path) -> None:
    mirror.stop()
    with pytest.raises(RemoteFileUnavailableError) as raised:
        get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, progress=False)
    message = str(raised.value)
    for part in (f"{mirror.url}/lab/data", "connection failed", str(cache / "lab" / "data"), download.HUB_MIRROR_ENV):
        assert part in message


def test_reference_cache_folder_without_record_is_used_offline_with_a_warning(
    mirror: Any, cache: Path, tmp_path: Path
) -> None:
    (cache / "lab/data").mkdir(parents=True)
    (cache / "lab/data/a.bin").write_bytes(A_BIN)
    mirror.stop()
    with pytest.warns(UserWarning, match="no completeness record"):
        assert get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, progress=False) == cache / "lab/data"


def test_reference_cache_folder_is_verified_and_completed_online(mirror: Any, cache: Path) -> None:
    (cache / "lab/data").mkdir(parents=True)
    (cache / "lab/data/a.bin").write_bytes(A_BIN)
    (cache / "lab/data/sub").mkdir()
    (cache / "lab/data/sub/b.txt").write_bytes(b"HELLO\n")  # damaged copy, same size
    folder = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    assert _folder_files(folder) == _folder_files(mirror.root / FOLDER)
    assert [path for path, _ in mirror.requests][2:] == ["/lab/data/pack.zip", "/lab/data/sub/b.txt"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stdlib_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wait: Any) -> Iterator[Path]:
    """A mirror served by ``python -m http.server``'s handler, which redirects folders to an HTML index."""
    root = tmp_path / "stdlib_mirror"
    _repository(root)
    write_folder_index(root, FOLDER)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(download.HUB_MIRROR_ENV, f"http://127.0.0.1:{httpd.server_address[1]}")
    yield root
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_folder_from_a_stdlib_http_server_mirror(stdlib_mirror: Path, cache: Path) -> None:
    folder = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, unzip=False, progress=False)
    assert folder.is_dir() and _folder_files(folder) == _folder_files(stdlib_mirror / FOLDER)


def test_reference_helper_downloads_repository_paths(mirror: Any, cache: Path) -> None:
    assert huggingface_download(f"{FOLDER}/", cache, progress=False) == cache / "lab" / "data"
    assert huggingface_download(SIBLING, cache, progress=False).read_bytes() == b"no"


# ------------------------------------------------------------------------------------- the Hub's own listing API
@pytest.mark.parametrize(
    ("repo", "revision", "cached_under"),
    [("open-retina/open-retina", "main", ""), ("someone/else", "v2", "huggingface/someone/else/v2/")],
)
def test_folder_from_the_hub_api_with_git_ids_for_non_lfs_files(
    tmp_path: Path,
    cache: Path,
    serve: Callable[[Path], Any],
    monkeypatch: pytest.MonkeyPatch,
    no_wait: Any,
    repo: str,
    revision: str,
    cached_under: str,
) -> None:
    """The origin (no mirror): files under ``resolve/<revision>``, the listing from ``api/.../tree/...``."""
    root = tmp_path / "hub"
    contents = _repository(root / f"datasets/{repo}/resolve/{revision}")
    listing = [
        {"type": "directory", "oid": "0" * 40, "size": 0, "path": "lab/data/sub"},
        {"type": "file", "oid": hashlib.sha1(b"blob 6\0hello\n").hexdigest(), "size": 6, "path": "lab/data/sub/b.txt"},
    ] + [
        {"type": "file", "oid": "f" * 40, "size": len(contents[p]), "path": p, "lfs": {"oid": _sha256(contents[p])}}
        for p in ("lab/data/a.bin", "lab/data/pack.zip")
    ]
    page = root / f"api/datasets/{repo}/tree/{revision}/lab/data?recursive=true"
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps(listing))
    server = serve(root)
    monkeypatch.setenv(download.HUB_MIRROR_ENV, "http://never.invalid")  # stands in for the project repo only
    if repo == "open-retina/open-retina":
        monkeypatch.delenv(download.HUB_MIRROR_ENV)
    monkeypatch.setattr(download, "HUGGINGFACE_BASE_URL", f"{server.url}/")
    url = f"https://huggingface.co/datasets/{repo}/tree/{revision}/{FOLDER}"
    folder = get_local_file_path(url, cache, unzip=False, progress=False)
    assert folder == cache / f"{cached_under}lab/data"
    assert _folder_files(folder) == {p.removeprefix("lab/data/"): contents[p] for p in FOLDER_FILES}
    assert (cache / f"{cached_under}lab/data.openretina-tree.json").is_file()
    (folder / "sub/b.txt").write_bytes(b"HELLO\n")
    (cache / f"{cached_under}lab/data.openretina-tree.json").unlink()  # forget the record: the git id must catch it
    server.requests.clear()
    assert get_local_file_path(url, cache, unzip=False, progress=False) == folder
    assert (folder / "sub/b.txt").read_bytes() == b"hello\n"
    assert server.requests[-1][0] == f"/datasets/{repo}/resolve/{revision}/lab/data/sub/b.txt"


def _response(url: str, body: bytes, headers: dict[str, str]) -> urllib.response.addinfourl:
    message = email.message.Message()
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        message[name] = value
    return urllib.response.addinfourl(io.BytesIO(body), message, url, 200)


def test_paginated_hub_listing_is_followed_to_the_last_page(
    cache: Path, monkeypatch: pytest.MonkeyPatch, no_wait: Any
) -> None:
    monkeypatch.delenv(download.HUB_MIRROR_ENV, raising=False)
    api = "https://huggingface.co/api/datasets/open-retina/open-retina/tree/main/lab/data?recursive=true"
    files = {f"lab/data/f{i}.txt": f"file {i}".encode() for i in range(3)}
    entries = [{"type": "file", "path": p, "size": len(d), "lfs": {"oid": _sha256(d)}} for p, d in files.items()]
    pages = {
        api: (entries[:2], {"Link": f'<{api}&cursor=2>; rel="next"'}),
        f"{api}&cursor=2": (entries[2:], {}),
    }
    resolve = "https://huggingface.co/datasets/open-retina/open-retina/resolve/main/"
    requested: list[str] = []

    def fake_urlopen(request: urllib.request.Request, timeout: float) -> urllib.response.addinfourl:
        url = request.full_url
        requested.append(url)
        if url in pages:
            body, headers = pages[url]
            return _response(url, json.dumps(body).encode(), headers)
        if url.removeprefix(resolve) in files:
            return _response(url, files[url.removeprefix(resolve)], {})
        raise urllib.error.HTTPError(url, 404, "Not Found", email.message.Message(), None)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    folder = get_local_file_path(f"{HF_TREE}/{FOLDER}", cache, progress=False)
    assert _folder_files(folder) == {p.removeprefix("lab/data/"): d for p, d in files.items()}
    assert requested[:3] == [f"{resolve}lab/data", api, f"{api}&cursor=2"]
