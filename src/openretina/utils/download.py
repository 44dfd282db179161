"""The one download function of openretina: remote file -> verified file in the local cache.

Models and datasets alike go through :func:`get_local_file_path`, which accepts

* Hugging Face dataset-repository URLs (``.../datasets/<owner>/<repo>/{tree,blob,resolve}/<revision>/<path>``),
* G-Node GIN URLs (``https://gin.g-node.org/<owner>/<repo>/raw/<branch>/<path>``),
* any other ``http(s)://`` URL,
* local paths (``~`` is expanded; the file or folder must exist).

Cache layout (exact paths, never fuzzy name matching): a file at path ``P`` of the project's Hugging Face
repository ``open-retina/open-retina`` (revision ``main``) is cached at ``<cache>/P``, the layout the reference
uses, so an existing reference cache is reused. Other repositories, GIN and plain URLs get their own
sub-trees (``huggingface/<owner>/<repo>/<revision>/P``, ``gin/<owner>/<repo>/...``, ``url/<host>/<path>``),
so two sources can never collide.

Mirrors: with ``OPENRETINA_HUB_URL`` set, ``P`` of the project repository is fetched from
``{OPENRETINA_HUB_URL}/P`` by a plain HTTP GET; ``OPENRETINA_GIN_URL`` does the same for GIN
(``{OPENRETINA_GIN_URL}/<owner>/<repo>/raw/<branch>/<path>``). Any static file server holding a copy of the
tree is a mirror, which is what air-gapped clusters need.

Downloads go to ``<file>.partial`` with a progress bar, are retried with exponential backoff (resuming with an
HTTP Range request where the server supports it), are checked against the expected byte count and, when
given, the expected sha256, and only then renamed atomically into place. A file found in the cache is returned
without any network access. Zip archives are extracted next to the archive, which is kept together with an
``.extracted`` marker, so their integrity can be re-checked later.

Differences from the reference (its weak points): no repository listing before a cache lookup (offline use
works), no stem-based cache matching (the wrong file can no longer be returned), no truncation of GIN paths to
their last two components (no collisions), zips are kept, any HTTPS host works, and importing this module does
not modify ``os.environ``. Only the standard library is used for HTTP.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from openretina.errors import DataFileNotFoundError, DataFormatError

__all__ = [
    "CACHE_DIRECTORY_ENV",
    "DEFAULT_RETRY_POLICY",
    "GIN_BASE_URL",
    "GIN_MIRROR_ENV",
    "HOME_DIR",
    "HUB_MIRROR_ENV",
    "HUGGINGFACE_BASE_URL",
    "HUGGINGFACE_REPO_ID",
    "ChecksumMismatchError",
    "RemoteFile",
    "RemoteFileUnavailableError",
    "RetryPolicy",
    "download_file",
    "ensure_local_file",
    "get_cache_directory",
    "get_local_file_path",
    "resolve_remote_file",
    "sha256_of_file",
]

GIN_BASE_URL = "https://gin.g-node.org/"
HUGGINGFACE_BASE_URL = "https://huggingface.co/"
HUGGINGFACE_REPO_ID = "open-retina/open-retina"
HOME_DIR = str(Path.home())

CACHE_DIRECTORY_ENV = "OPENRETINA_CACHE_DIRECTORY"
HUB_MIRROR_ENV = "OPENRETINA_HUB_URL"
GIN_MIRROR_ENV = "OPENRETINA_GIN_URL"
DEFAULT_CACHE_DIRECTORY = "~/openretina_cache"

_CHUNK_BYTES = 1 << 20
_PARTIAL_SUFFIX = ".partial"
_EXTRACTED_SUFFIX = ".extracted"
_HF_URL = re.compile(
    r"^https?://huggingface\.co/datasets/(?P<repo>[^/]+/[^/]+)/(?:tree|blob|resolve)/(?P<rev>[^/]+)/(?P<path>.+)$"
)
# HTTP statuses worth retrying: the server may recover (rate limits, restarts, gateways).
_TRANSIENT_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class RemoteFileUnavailableError(DataFileNotFoundError):
    """A file is neither in the cache nor downloadable (offline, unreachable server, missing file, truncated)."""


class ChecksumMismatchError(DataFormatError):
    """A downloaded or cached file does not have the expected sha256; the file was removed."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient download failures are retried (delays grow geometrically)."""

    attempts: int = 3
    initial_delay_s: float = 2.0
    factor: float = 3.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (0-based; no wait before the first)."""
        return 0.0 if attempt == 0 else self.initial_delay_s * self.factor ** (attempt - 1)


DEFAULT_RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True)
class RemoteFile:
    """Where a remote file comes from and where it lives in the cache.

    Attributes:
        url: the canonical URL (as a user would write it).
        download_urls: URLs tried in order (a mirror, when configured, replaces the origin: no silent
            fallback to the internet on an air-gapped machine).
        cache_path: path relative to the cache directory (POSIX form).
    """

    url: str
    download_urls: tuple[str, ...]
    cache_path: PurePosixPath


def get_cache_directory() -> Path:
    """The cache directory: ``$OPENRETINA_CACHE_DIRECTORY`` or ``~/openretina_cache`` (read at call time)."""
    return Path(os.environ.get(CACHE_DIRECTORY_ENV) or DEFAULT_CACHE_DIRECTORY).expanduser()


def _mirror_url(env_name: str, relative_path: str) -> str | None:
    base = os.environ.get(env_name)
    if not base:
        return None
    return f"{base.rstrip('/')}/{urllib.parse.quote(relative_path)}"


def _safe_relative_path(path: str, url: str) -> PurePosixPath:
    relative = PurePosixPath(urllib.parse.unquote(path.strip("/")))
    if not relative.parts or ".." in relative.parts:
        raise DataFormatError(f"URL {url!r}: the path {path!r} is empty or leaves its folder ('..'); check the URL.")
    return relative


def resolve_remote_file(url: str) -> RemoteFile:
    """Map a Hugging Face, GIN or other HTTP(S) URL to its download URLs and cache path.

    Raises:
        DataFormatError: the URL is not an ``http(s)://`` URL or has an unusable path.
    """
    hf_match = _HF_URL.match(url)
    if hf_match:
        repo, revision = hf_match["repo"], hf_match["rev"]
        path = _safe_relative_path(hf_match["path"], url)
        origin = f"{HUGGINGFACE_BASE_URL}datasets/{repo}/resolve/{revision}/{urllib.parse.quote(str(path))}"
        if repo == HUGGINGFACE_REPO_ID and revision == "main":
            mirror = _mirror_url(HUB_MIRROR_ENV, str(path))
            return RemoteFile(url, (mirror or origin,), path)
        return RemoteFile(url, (origin,), PurePosixPath("huggingface", repo, revision) / path)
    if url.startswith(GIN_BASE_URL):
        path = _safe_relative_path(url[len(GIN_BASE_URL) :], url)
        mirror = _mirror_url(GIN_MIRROR_ENV, str(path))
        return RemoteFile(url, (mirror or url,), PurePosixPath("gin") / path)
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in {"http", "https"} and parsed.netloc:
        path = _safe_relative_path(parsed.path, url)
        return RemoteFile(url, (url,), PurePosixPath("url", parsed.netloc.replace(":", "_")) / path)
    raise DataFormatError(f"{url!r} is not an http(s) URL; give a Hugging Face or GIN URL, any https URL or a path.")


def sha256_of_file(path: Path) -> str:
    """Hex sha256 digest of the file at ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _TransientDownloadError(Exception):
    """A failure that another attempt may fix; ``reason`` is shown to the user if all attempts fail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _RangeNotSatisfiableError(Exception):
    """The server refused to resume (HTTP 416): the partial file does not fit the remote file."""


class _PermanentDownloadError(Exception):
    """A failure that retrying cannot fix (e.g. HTTP 404)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _open(url: str, offset: int, timeout_s: float) -> urllib.response.addinfourl:
    from openretina import __version__

    headers = {"User-Agent": f"openretina/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            raise _RangeNotSatisfiableError() from None
        reason = f"HTTP {error.code} {error.reason}"
        if error.code in _TRANSIENT_HTTP_STATUS:
            raise _TransientDownloadError(reason) from None
        raise _PermanentDownloadError(reason) from None
    except (urllib.error.URLError, OSError) as error:
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(cause, socket.gaierror):  # host name unknown: offline or a typo, waiting will not help
            raise _PermanentDownloadError(f"cannot resolve the host name ({cause})") from None
        raise _TransientDownloadError(f"connection failed ({cause})") from None


def _fetch_once(url: str, partial: Path, timeout_s: float, progress: bool, label: str) -> None:
    """One attempt: continue ``partial`` (Range request) or restart it; raise if the body is incomplete."""
    offset = partial.stat().st_size if partial.exists() else 0
    try:
        response = _open(url, offset, timeout_s)
    except _RangeNotSatisfiableError:  # stale partial file (e.g. the remote file changed): start over
        partial.unlink()
        offset = 0
        response = _open(url, offset, timeout_s)
    with response:
        resumed = offset > 0 and response.status == 206
        if not resumed:
            offset = 0
        length_header = response.headers.get("Content-Length")
        expected_total = offset + int(length_header) if length_header is not None else None
        received = offset
        with (
            partial.open("ab" if resumed else "wb") as sink,
            tqdm(
                total=expected_total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            try:
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    sink.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise _TransientDownloadError(f"connection lost after {received} bytes ({error})") from None
    if expected_total is not None and received != expected_total:
        raise _TransientDownloadError(f"the server sent {received} of {expected_total} bytes")


def _unavailable_message(what: str, url: str, destination: Path, reason: str) -> str:
    return (
        f"{what}: could not download {url} ({reason}). The file is not in the cache either: expected at "
        f"{destination}. If this machine is offline, copy the file there from a machine with access "
        f"(for example `curl -L -o '{destination}' '{url}'`), point {CACHE_DIRECTORY_ENV} at a cache that "
        f"holds it, or set {HUB_MIRROR_ENV} / {GIN_MIRROR_ENV} to a mirror of the repository."
    )


def download_file(
    url: str,
    destination: Path,
    *,
    sha256: str | None = None,
    what: str | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``destination`` via ``<destination>.partial``, verify it, then rename atomically.

    A partial file (from an earlier attempt, or left by an interrupted process) is resumed with an HTTP Range
    request, or restarted if the server ignores the range. When the call fails, neither ``destination`` nor
    the partial file is left behind.

    Args:
        url: what to fetch.
        destination: final path; parent folders are created.
        sha256: expected hex digest, or None to skip the check.
        what: how to name the file in error messages, e.g. ``"pretrained model 'hoefling_2024_low_res'"``.
        retry: retry policy for transient failures; default :data:`DEFAULT_RETRY_POLICY`.
        timeout_s: socket timeout per request.
        progress: show a tqdm progress bar.

    Raises:
        RemoteFileUnavailableError: unreachable, HTTP error or incomplete after all attempts.
        ChecksumMismatchError: the complete download has another sha256 than expected.
    """
    policy = retry or DEFAULT_RETRY_POLICY
    what = what or f"file {destination.name!r}"
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + _PARTIAL_SUFFIX)
    reason = "no attempt made"
    for attempt in range(max(1, policy.attempts)):
        time.sleep(policy.delay_before(attempt))
        try:
            _fetch_once(url, partial, timeout_s, progress, destination.name)
            break
        except _TransientDownloadError as error:
            reason = error.reason
        except _PermanentDownloadError as error:
            partial.unlink(missing_ok=True)
            raise RemoteFileUnavailableError(_unavailable_message(what, url, destination, error.reason)) from None
    else:
        partial.unlink(missing_ok=True)  # an interrupted process keeps its partial file; a failed call does not
        raise RemoteFileUnavailableError(
            _unavailable_message(what, url, destination, f"{reason}; gave up after {policy.attempts} attempts")
        ) from None
    if sha256 is not None:
        actual = sha256_of_file(partial)
        if actual != sha256.lower():
            partial.unlink()
            raise ChecksumMismatchError(
                f"{what}: the file downloaded from {url} has sha256 {actual}, expected {sha256}; it was deleted. "
                "The server or mirror holds a different or damaged file: check the mirror's copy, or update the "
                "expected checksum if the file was republished on purpose."
            )
    os.replace(partial, destination)
    return destination


def _extraction_marker(archive: Path) -> Path:
    return archive.with_name(archive.name + _EXTRACTED_SUFFIX)


def _extract_zip(archive: Path) -> Path:
    """Extract ``archive`` next to itself (keeping it) and return what it holds, as the reference laid it out.

    One file -> that file next to the archive; a single top-level folder named like the archive -> that folder
    next to the archive; anything else -> a folder named like the archive (without ``.zip``).
    """
    marker = _extraction_marker(archive)
    if marker.exists():
        result = archive.parent / json.loads(marker.read_text())["result"]
        if result.exists():
            return result
    with zipfile.ZipFile(archive) as zipped:
        members = [info for info in zipped.infolist() if not info.is_dir()]
        for info in members:
            parts = PurePosixPath(info.filename).parts
            if not parts or parts[0] in {"/", ""} or ".." in parts or ":" in parts[0]:
                raise DataFormatError(
                    f"zip archive {archive}: member {info.filename!r} would be written outside the archive's "
                    "folder; refusing to extract it. Delete the archive and obtain it from a trusted source."
                )
        staging = archive.with_name(f".{archive.name}.extracting")
        shutil.rmtree(staging, ignore_errors=True)
        zipped.extractall(staging)
    top_level = {PurePosixPath(info.filename).parts[0] for info in members}
    if len(members) == 1:
        relative = PurePosixPath(members[0].filename)
        source = staging / relative
    elif top_level == {archive.stem} and not any(PurePosixPath(m.filename).parts == (archive.stem,) for m in members):
        relative = PurePosixPath(archive.stem)
        source = staging / archive.stem
    else:
        relative = PurePosixPath(archive.stem)
        source = staging
    result = archive.parent / relative
    if result.is_dir():
        shutil.rmtree(result)
    result.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, result)
    shutil.rmtree(staging, ignore_errors=True)
    marker.write_text(json.dumps({"result": str(relative), "zip_sha256": sha256_of_file(archive)}))
    return result


def ensure_local_file(
    remote: RemoteFile,
    cache_folder: Path,
    *,
    sha256: str | None = None,
    what: str | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = True,
) -> Path:
    """Return the cached copy of ``remote`` under ``cache_folder``, downloading it first if it is missing.

    A cached file is returned without network access; if ``sha256`` is given it is verified first and a
    damaged copy is deleted and downloaded again.
    """
    destination = cache_folder / Path(*remote.cache_path.parts)
    if destination.is_file():
        if sha256 is None or sha256_of_file(destination) == sha256.lower():
            return destination
        destination.unlink()  # damaged cache entry (e.g. disk error or a manual copy of another file)
    errors: list[RemoteFileUnavailableError] = []
    for url in remote.download_urls:
        try:
            return download_file(url, destination, sha256=sha256, what=what, retry=retry, progress=progress)
        except RemoteFileUnavailableError as error:
            errors.append(error)
    raise errors[-1] from None


def get_local_file_path(
    file_path: str | os.PathLike[str],
    cache_folder: str | os.PathLike[str] | None = None,
    *,
    sha256: str | None = None,
    what: str | None = None,
    unzip: bool = True,
    retry: RetryPolicy | None = None,
    progress: bool = True,
) -> Path:
    """Local path of a file given as a URL (downloaded into the cache if needed) or as a local path.

    Args:
        file_path: Hugging Face dataset URL (``tree/main``, ``blob/main`` or ``resolve/main`` form), GIN URL,
            other ``http(s)`` URL, or local path (``~`` expanded).
        cache_folder: cache directory; default :func:`get_cache_directory`.
        sha256: expected hex digest of the remote file (checked after download and on cache hits).
        what: how to name the file in error messages.
        unzip: extract downloaded ``.zip`` files (the archive is kept) and return the extracted file or folder;
            local paths are returned as given.
        retry: retry policy for transient download failures.
        progress: show a progress bar while downloading.

    Raises:
        DataFileNotFoundError: a local path that does not exist.
        RemoteFileUnavailableError: a URL that is neither cached nor downloadable.
        ChecksumMismatchError: the downloaded file has an unexpected sha256.
    """
    text = os.fspath(file_path)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        cache = Path(cache_folder).expanduser() if cache_folder is not None else get_cache_directory()
        local = ensure_local_file(
            resolve_remote_file(text), cache, sha256=sha256, what=what, retry=retry, progress=progress
        )
        return _extract_zip(local) if unzip and local.suffix == ".zip" else local
    local = Path(text).expanduser()
    if not local.exists():
        raise DataFileNotFoundError(
            f"{what or 'file'}: local path {local} does not exist. Give an existing file or folder, or a "
            "Hugging Face / GIN / https URL to download."
        )
    return local
