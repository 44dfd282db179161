"""The one download function of openretina: remote file or folder -> verified copy in the local cache.

Models and datasets alike go through :func:`get_local_file_path`, which accepts

* Hugging Face dataset-repository URLs (``.../datasets/<owner>/<repo>/{tree,blob,resolve}/<revision>/<path>``,
  query strings such as ``?download=true`` ignored) naming a file *or a folder*,
* G-Node GIN URLs (``https://gin.g-node.org/<owner>/<repo>/{raw,src,media}/<branch>/<path>``; the ``src``
  browsing page is fetched through its ``raw`` twin, since the page itself is HTML),
* any other ``http(s)://`` URL,
* local paths (``~`` is expanded; the file or folder must exist).

Cache layout (exact paths, never fuzzy name matching): a file at path ``P`` of the project's Hugging Face
repository ``open-retina/open-retina`` (revision ``main``) is cached at ``<cache>/P``, the layout the reference
uses, so an existing reference cache is reused. Other repositories, GIN and plain URLs get their own
sub-trees (``huggingface/<owner>/<repo>/<revision>/P``, ``gin/<owner>/<repo>/...``, ``url/<host>/<path>``),
so two sources can never collide.

Folders (Hugging Face only): a path that is not a file is listed with the Hub's tree API and every file below
it is fetched like a single file (cache, checksum from the listing, resume, retries). Once all are verified,
the listing is stored next to the folder as ``<folder>.openretina-tree.json`` (see
:mod:`openretina.utils.hf_folders`); a folder with a complete record is then used without any network access.

Mirrors: with ``OPENRETINA_HUB_URL`` set, ``P`` of the project repository is fetched from
``{OPENRETINA_HUB_URL}/P`` by a plain HTTP GET, and the listing of a folder ``P`` from
``{OPENRETINA_HUB_URL}/P.openretina-tree.json``; ``OPENRETINA_GIN_URL`` does the same for GIN files
(``{OPENRETINA_GIN_URL}/<owner>/<repo>/raw/<branch>/<path>``). Any static file server holding a copy of the
tree is a mirror, which is what air-gapped clusters need; a populated cache is one.

Downloads go to ``<file>.partial`` with a progress bar, are retried with exponential backoff (resuming with an
HTTP Range request where the server supports it), are checked against the expected byte count and, when
known, the expected digest, and only then renamed atomically into place. Zip archives are extracted next to
the archive, which is kept together with an ``.extracted`` marker, so their integrity can be re-checked later.

Differences from the reference (its weak points): no repository listing before a cache lookup (offline use
works), no stem-based cache matching (the wrong file can no longer be returned), folder prefixes end at a
``/`` (``a/b`` does not pull in ``a/bc``), one listing of the folder instead of the whole repository, no
truncation of GIN paths to their last two components (no collisions), zips are kept, any HTTPS host works,
and importing this module does not modify ``os.environ``. Only the standard library is used for HTTP.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.utils.checksums import ExpectedContent, sha256_of_file
from openretina.utils.hf_folders import (
    FOLDER_INDEX_SUFFIX,
    FolderEntry,
    files_under,
    folder_index_path,
    missing_files,
    next_page_url,
    parse_listing,
    read_folder_index,
    write_folder_index,
)
from openretina.utils.http_transfer import RetryPolicy, TransferError, fetch_page, fetch_to_file
from openretina.utils.zip_extraction import extract_zip

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
    "HubLocation",
    "RemoteEntryNotFoundError",
    "RemoteFile",
    "RemoteFileUnavailableError",
    "RetryPolicy",
    "download_file",
    "ensure_local_file",
    "get_cache_directory",
    "get_local_file_path",
    "huggingface_download",
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

_PARTIAL_SUFFIX = ".partial"
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_HF_URL = re.compile(
    r"^https?://(?:www\.)?huggingface\.co/datasets/(?P<repo>[^/]+/[^/]+)/(?:tree|blob|resolve)/(?P<rev>[^/]+)/"
    r"(?P<path>[^?#]+)"
)
# GIN's browsing page of a file (``src``) is HTML; the file itself is served under ``raw``.
_GIN_BROWSING_VIEW = re.compile(r"^(?P<repo>[^/]+/[^/]+)/src/(?P<rest>.+)$")


class RemoteFileUnavailableError(DataFileNotFoundError):
    """A file is neither in the cache nor downloadable (offline, unreachable server, missing file, truncated)."""


class RemoteEntryNotFoundError(RemoteFileUnavailableError):
    """The server answered that nothing is at the URL (HTTP 404/410), or the URL names a folder, not a file."""


class _ListingNotFoundError(RemoteEntryNotFoundError):
    """The folder listing of a path does not exist: together with a missing file, the path does not exist."""


class ChecksumMismatchError(DataFormatError):
    """A downloaded or cached file does not have the expected size or digest; the file was removed."""


DEFAULT_RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True)
class HubLocation:
    """A path in a Hugging Face dataset repository.

    Attributes:
        repo: ``"<owner>/<name>"``.
        revision: branch, tag or commit.
        path: repository-relative path of the file or folder.
        cache_root: where the repository's tree starts, relative to the cache directory (``.`` for the
            project repository at ``main``).
    """

    repo: str
    revision: str
    path: PurePosixPath
    cache_root: PurePosixPath


@dataclass(frozen=True)
class RemoteFile:
    """Where a remote file (or Hugging Face folder) comes from and where it lives in the cache.

    Attributes:
        url: the canonical URL (as a user would write it).
        download_urls: URLs tried in order (a mirror, when configured, replaces the origin: no silent
            fallback to the internet on an air-gapped machine).
        cache_path: path relative to the cache directory (POSIX form).
        mirror_env: the environment variable that would point at a mirror of this source, if any.
        hub: the repository location for Hugging Face URLs (which may name folders), else None.
        listing_url: where the folder listing is fetched if a Hugging Face path turns out to be a folder.
    """

    url: str
    download_urls: tuple[str, ...]
    cache_path: PurePosixPath
    mirror_env: str | None = None
    hub: HubLocation | None = None
    listing_url: str | None = None


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


def _huggingface_remote(url: str, repo: str, revision: str, path: PurePosixPath) -> RemoteFile:
    """The file or folder ``path`` of dataset repository ``repo`` at ``revision`` (mirrored for the project's)."""
    quoted = urllib.parse.quote(str(path))
    download = f"{HUGGINGFACE_BASE_URL}datasets/{repo}/resolve/{revision}/{quoted}"
    listing = f"{HUGGINGFACE_BASE_URL}api/datasets/{repo}/tree/{revision}/{quoted}?recursive=true"
    if repo == HUGGINGFACE_REPO_ID and revision == "main":
        cache_root, mirror_env = PurePosixPath(), HUB_MIRROR_ENV
        download = _mirror_url(HUB_MIRROR_ENV, str(path)) or download
        listing = _mirror_url(HUB_MIRROR_ENV, f"{path}{FOLDER_INDEX_SUFFIX}") or listing
    else:
        cache_root, mirror_env = PurePosixPath("huggingface", repo, revision), None
    hub = HubLocation(repo, revision, path, cache_root)
    return RemoteFile(url, (download,), cache_root / path, mirror_env, hub, listing)


def resolve_remote_file(url: str) -> RemoteFile:
    """Map a Hugging Face, GIN or other HTTP(S) URL to its download URLs and cache path.

    Raises:
        DataFormatError: the URL is not an ``http(s)://`` URL or has an unusable path.
    """
    hf_match = _HF_URL.match(url)
    if hf_match:
        return _huggingface_remote(url, hf_match["repo"], hf_match["rev"], _safe_relative_path(hf_match["path"], url))
    if url.startswith(GIN_BASE_URL):
        relative = re.split(r"[?#]", url[len(GIN_BASE_URL) :])[0]
        if view := _GIN_BROWSING_VIEW.match(relative):
            relative = f"{view['repo']}/raw/{view['rest']}"
        path = _safe_relative_path(relative, url)
        origin = GIN_BASE_URL + urllib.parse.quote(str(path))
        mirror = _mirror_url(GIN_MIRROR_ENV, str(path))
        return RemoteFile(url, (mirror or origin,), PurePosixPath("gin") / path, GIN_MIRROR_ENV)
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in {"http", "https"} and parsed.netloc:
        path = _safe_relative_path(parsed.path, url)
        return RemoteFile(url, (url,), PurePosixPath("url", parsed.netloc.replace(":", "_")) / path)
    raise DataFormatError(f"{url!r} is not an http(s) URL; give a Hugging Face or GIN URL, any https URL or a path.")


def _offline_advice(mirror_env: str | None) -> str:
    if mirror_env is None:
        return "or give the URL of a reachable copy."
    return f"or set {mirror_env} to a mirror of the repository (see docs/datasets.md, 'Downloads and mirrors')."


def _unavailable(
    what: str, url: str, destination: Path, error: TransferError, mirror_env: str | None
) -> RemoteFileUnavailableError:
    error_class = RemoteEntryNotFoundError if error.not_found else RemoteFileUnavailableError
    return error_class(
        f"{what}: could not download {url} ({error.reason}). The file is not in the cache either: expected at "
        f"{destination}. If this machine is offline, copy the file there from a machine with access "
        f"(for example `curl -L -o '{destination}' '{url}'`), point {CACHE_DIRECTORY_ENV} at a cache that "
        f"holds it, {_offline_advice(mirror_env)}"
    )


def download_file(
    url: str,
    destination: Path,
    *,
    expected: ExpectedContent | None = None,
    what: str | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float = 60.0,
    progress: bool = True,
    mirror_env: str | None = None,
) -> Path:
    """Download ``url`` to ``destination`` via ``<destination>.partial``, verify it, then rename atomically.

    A partial file (from an earlier attempt, or left by an interrupted process) is resumed with an HTTP Range
    request, or restarted if the server ignores the range. When the call fails, neither ``destination`` nor
    the partial file is left behind.

    Args:
        url: what to fetch.
        destination: final path; parent folders are created.
        expected: size and digests the file must have; None checks only the announced length.
        what: how to name the file in error messages, e.g. ``"pretrained model 'hoefling_2024_low_res'"``.
        retry: retry policy for transient failures; default :data:`DEFAULT_RETRY_POLICY`.
        timeout_s: socket timeout per request.
        progress: show a tqdm progress bar.
        mirror_env: the mirror variable to suggest if the download fails.

    Raises:
        RemoteEntryNotFoundError: the server has nothing at ``url`` (HTTP 404/410) or it names a folder.
        RemoteFileUnavailableError: unreachable, other HTTP error or incomplete after all attempts.
        ChecksumMismatchError: the complete download differs from ``expected``.
    """
    what = what or f"file {destination.name!r}"
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + _PARTIAL_SUFFIX)
    try:
        fetch_to_file(
            url,
            partial,
            retry=retry or DEFAULT_RETRY_POLICY,
            timeout_s=timeout_s,
            progress=progress,
            label=destination.name,
        )
    except TransferError as error:
        partial.unlink(missing_ok=True)  # an interrupted process keeps its partial file; a failed call does not
        raise _unavailable(what, url, destination, error, mirror_env) from None
    if expected is not None and (problem := expected.mismatch(partial)) is not None:
        partial.unlink()
        raise ChecksumMismatchError(
            f"{what}: the file downloaded from {url} {problem}; it was deleted. The server or mirror holds a "
            "different or damaged file: check the mirror's copy, or update the expected checksum if the file was "
            "republished on purpose."
        )
    os.replace(partial, destination)
    return destination


def _folder_unavailable(what: str, remote: RemoteFile, folder: Path, url: str, reason: str) -> str:
    return (
        f"{what}: could not list the folder {remote.url} at {url} ({reason}). The folder is not complete in the "
        f"cache either: expected at {folder}, with the record {folder_index_path(folder).name} next to it. If this "
        f"machine is offline, copy the folder and its record there from a machine that downloaded it, point "
        f"{CACHE_DIRECTORY_ENV} at a cache that holds them, {_offline_advice(remote.mirror_env)}"
    )


def _fetch_listing(remote: RemoteFile, folder: Path, request: _Request) -> list[FolderEntry]:
    """Every file entry of the folder listing, following the Hub's pagination."""
    entries: list[FolderEntry] = []
    page = remote.listing_url
    while page is not None:
        try:
            body, link = fetch_page(page, retry=request.retry or DEFAULT_RETRY_POLICY)
        except TransferError as error:
            error_class = _ListingNotFoundError if error.not_found else RemoteFileUnavailableError
            raise error_class(_folder_unavailable(request.what, remote, folder, page, error.reason)) from None
        entries.extend(parse_listing(body, page))
        page = next_page_url(link)
    return entries


def ensure_local_file(
    remote: RemoteFile,
    cache_folder: Path,
    *,
    expected: ExpectedContent | None = None,
    what: str | None = None,
    retry: RetryPolicy | None = None,
    progress: bool = True,
) -> Path:
    """Return the cached copy of ``remote`` under ``cache_folder``, downloading it first if it is missing.

    A cached file is returned without network access; if ``expected`` is given it is verified first and a
    damaged copy is deleted and downloaded again.
    """
    destination = cache_folder / Path(*remote.cache_path.parts)
    if destination.is_file():
        if expected is None or expected.mismatch(destination) is None:
            return destination
        destination.unlink()  # damaged cache entry (e.g. disk error or a manual copy of another file)
    errors: list[RemoteFileUnavailableError] = []
    for url in remote.download_urls:
        try:
            return download_file(
                url,
                destination,
                expected=expected,
                what=what,
                retry=retry,
                progress=progress,
                mirror_env=remote.mirror_env,
            )
        except RemoteFileUnavailableError as error:
            errors.append(error)
    raise errors[-1] from None


@dataclass(frozen=True)
class _Request:
    """How one call of :func:`get_local_file_path` wants its files fetched."""

    what: str
    retry: RetryPolicy | None
    progress: bool
    unzip: bool


def _ensure_local_folder(remote: RemoteFile, hub: HubLocation, cache_folder: Path, request: _Request) -> Path:
    """The cached copy of the Hugging Face folder ``remote``: complete and verified, downloading what is missing.

    A folder whose record (``<folder>.openretina-tree.json``) lists only files present with their sizes is
    returned without network access. Otherwise the folder is listed and each file is fetched like a single file
    (present, verified files are kept, so an interrupted folder download resumes where it stopped).
    """
    repo_root = cache_folder / Path(*hub.cache_root.parts)
    folder = cache_folder / Path(*remote.cache_path.parts)
    entries = read_folder_index(folder_index_path(folder))
    if entries is None or missing_files(repo_root, entries):
        entries = files_under(_fetch_listing(remote, folder, request), hub.path)
        if not entries:
            raise _ListingNotFoundError(
                f"{request.what}: the listing of {remote.url} ({remote.listing_url}) holds no files."
            )
        for entry in tqdm(entries, desc=hub.path.name, unit="file", disable=not request.progress, leave=False):
            ensure_local_file(
                _huggingface_remote(remote.url, hub.repo, hub.revision, entry.path),
                cache_folder,
                expected=entry.expected,
                what=f"{request.what}: file {str(entry.path)!r}",
                retry=request.retry,
                progress=request.progress,
            )
        write_folder_index(repo_root, str(hub.path), entries)
    if request.unzip:
        for entry in entries:
            if entry.path.suffix == ".zip":
                extract_zip(repo_root / Path(*entry.path.parts))
    return folder


def _as_folder(remote: RemoteFile, hub: HubLocation, cache_folder: Path, sha256: str | None, request: _Request) -> Path:
    if sha256 is not None:
        raise DataFormatError(
            f"{request.what}: {remote.url} is a folder, but a sha256 was given; a sha256 applies to one file (the "
            "files of a folder are checked against the folder listing). Drop the sha256 or name a file."
        )
    return _ensure_local_folder(remote, hub, cache_folder, request)


def _ensure_local(remote: RemoteFile, cache_folder: Path, sha256: str | None, request: _Request) -> Path:
    """File or folder: the folder record decides offline; online a missing file makes a Hub path a folder."""
    destination = cache_folder / Path(*remote.cache_path.parts)
    hub = remote.hub
    if hub is not None and not destination.is_file() and folder_index_path(destination).is_file():
        return _as_folder(remote, hub, cache_folder, sha256, request)
    expected = ExpectedContent(sha256=sha256) if sha256 else None
    try:
        local = ensure_local_file(
            remote, cache_folder, expected=expected, what=request.what, retry=request.retry, progress=request.progress
        )
    except RemoteEntryNotFoundError:
        if hub is None:
            raise
        try:
            return _as_folder(remote, hub, cache_folder, sha256, request)
        except _ListingNotFoundError:
            raise RemoteEntryNotFoundError(
                f"{request.what}: the repository {hub.repo} (revision {hub.revision}) has no file or folder "
                f"{str(hub.path)!r}: {remote.download_urls[0]} and the folder listing {remote.listing_url} were "
                f"both not found. Check the path (browse {HUGGINGFACE_BASE_URL}datasets/{hub.repo}/tree/"
                f"{hub.revision}/{hub.path.parent}); a mirror must hold the file, or for a folder its record "
                f"{hub.path.name}{FOLDER_INDEX_SUFFIX} next to it."
            ) from None
    except RemoteFileUnavailableError:
        if not (destination.is_dir() and any(destination.iterdir())):
            raise
        warnings.warn(
            f"{request.what}: {remote.url} is unreachable; using the folder {destination} found in the cache, which "
            f"has no completeness record ({folder_index_path(destination).name}, written after a verified "
            "download), so files may be missing. Run once with network access (or a mirror) to verify it.",
            stacklevel=3,
        )
        return destination
    return extract_zip(local) if request.unzip and local.suffix == ".zip" else local


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
    """Local path of a file or folder given as a URL (downloaded into the cache if needed) or as a local path.

    Args:
        file_path: Hugging Face dataset URL (``tree``, ``blob`` or ``resolve`` form) of a file or folder, GIN
            URL, other ``http(s)`` URL, or local path (``~`` expanded).
        cache_folder: cache directory; default :func:`get_cache_directory`.
        sha256: expected hex digest of a single remote file (checked after download and on cache hits); files
            of a folder are checked against the sizes and digests of the folder listing instead.
        what: how to name the file in error messages.
        unzip: extract downloaded ``.zip`` files, including those inside a downloaded folder (the archives are
            kept), and return the extracted file or folder; local paths are returned as given.
        retry: retry policy for transient download failures.
        progress: show progress bars while downloading.

    Raises:
        DataFileNotFoundError: a local path that does not exist.
        RemoteEntryNotFoundError: the repository has no file or folder at that path.
        RemoteFileUnavailableError: a URL that is neither cached nor downloadable.
        ChecksumMismatchError: a downloaded file differs from its expected size or digest.
    """
    text = os.fspath(file_path)
    if _URL_SCHEME.match(text):
        cache = Path(cache_folder).expanduser() if cache_folder is not None else get_cache_directory()
        remote = resolve_remote_file(text)
        request = _Request(what or f"download {remote.cache_path.name!r}", retry, progress, unzip)
        return _ensure_local(remote, cache, sha256, request)
    local = Path(text).expanduser()
    if not local.exists():
        raise DataFileNotFoundError(
            f"{what or 'file'}: local path {local} does not exist. Give an existing file or folder, or a "
            "Hugging Face / GIN / https URL to download."
        )
    return local


def huggingface_download(
    target_name: str, local_dir: str | os.PathLike[str] | None = None, unzip: bool = True, progress: bool = True
) -> Path:
    """Fetch the file or folder ``target_name`` of the project's Hugging Face repository (reference name).

    Same as :func:`get_local_file_path` on ``.../datasets/open-retina/open-retina/resolve/main/<target_name>``:
    ``local_dir`` is the cache directory, and the result is ``<local_dir>/<target_name>`` (or, for a zip with
    ``unzip``, what the zip holds).
    """
    url = f"{HUGGINGFACE_BASE_URL}datasets/{HUGGINGFACE_REPO_ID}/resolve/main/{target_name.strip('/')}"
    return get_local_file_path(
        url, local_dir, unzip=unzip, progress=progress, what=f"Hugging Face path {target_name!r}"
    )
