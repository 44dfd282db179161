"""Folders of a Hugging Face repository: the listing format, the cache's completeness record, mirror indexes.

A folder is described by the JSON that the Hub's tree API returns
(``GET /api/datasets/<owner>/<repo>/tree/<revision>/<folder>?recursive=true``): a list of entries
``{"type": "file" | "directory", "path": <repository-relative path>, "size": <bytes>, "oid": <git blob id>,
"lfs": {"oid": <sha256>, "size": <bytes>}}`` (``lfs`` only for files stored in LFS). The same format serves
three purposes, so one parser reads them all:

* the Hub's answer (possibly paginated; pages are concatenated by the caller),
* a mirror's index: a static file ``<folder>.openretina-tree.json`` next to the folder, which
  :func:`write_folder_index` creates from the files on disk,
* the cache's completeness record, written next to the downloaded folder once every file is verified. A
  populated cache is therefore itself a valid mirror.

The record sits *next to* the folder, not inside it, so loaders that iterate over a folder never see it.
This module does no network access.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from openretina.errors import DataFileNotFoundError, DataFormatError
from openretina.utils.checksums import ExpectedContent, git_blob_sha1_of_file, sha256_of_file

__all__ = [
    "FOLDER_INDEX_SUFFIX",
    "FolderEntry",
    "files_under",
    "folder_index_path",
    "missing_files",
    "next_page_url",
    "parse_listing",
    "read_folder_index",
    "write_folder_index",
]

FOLDER_INDEX_SUFFIX = ".openretina-tree.json"
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class FolderEntry:
    """One file of a repository folder.

    Attributes:
        path: repository-relative path (POSIX form).
        size: bytes.
        sha256: content digest (known for LFS files and in openretina's own indexes), else None.
        git_blob_sha1: git object id (known for files stored in git), else None.
    """

    path: PurePosixPath
    size: int
    sha256: str | None = None
    git_blob_sha1: str | None = None

    @property
    def expected(self) -> ExpectedContent:
        """The checks a downloaded copy must pass (the git id is redundant when a sha256 is known)."""
        return ExpectedContent(self.size, self.sha256, None if self.sha256 else self.git_blob_sha1)

    def as_json(self) -> dict[str, object]:
        """The entry in the Hub's tree-listing format."""
        entry: dict[str, object] = {"type": "file", "path": str(self.path), "size": self.size}
        if self.git_blob_sha1 is not None:
            entry["oid"] = self.git_blob_sha1
        if self.sha256 is not None:
            entry["lfs"] = {"oid": self.sha256, "size": self.size}
        return entry


def _entry_from_json(item: object, source: str) -> FolderEntry | None:
    """A file entry, None for a directory entry; DataFormatError for anything malformed."""
    if not isinstance(item, dict) or item.get("type") not in {"file", "directory"}:
        raise DataFormatError(f"folder listing {source}: entry {item!r} has no 'type' of 'file' or 'directory'.")
    if item["type"] == "directory":
        return None
    path, size, lfs = item.get("path"), item.get("size"), item.get("lfs")
    if not isinstance(path, str) or not isinstance(size, int) or (lfs is not None and not isinstance(lfs, dict)):
        raise DataFormatError(
            f"folder listing {source}: file entry {item!r} needs a string 'path' and an integer 'size'. "
            "Regenerate the index with openretina.utils.hf_folders.write_folder_index."
        )
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise DataFormatError(f"folder listing {source}: path {path!r} leaves the repository; refusing it.")
    sha256 = lfs.get("oid") if lfs else None
    oid = item.get("oid")
    return FolderEntry(
        relative, size, sha256 if isinstance(sha256, str) else None, oid if isinstance(oid, str) else None
    )


def parse_listing(payload: bytes | str, source: str) -> list[FolderEntry]:
    """The file entries of one listing page (directories are skipped; files of sub-folders are listed anyway).

    Raises:
        DataFormatError: not JSON, not a list, or an entry without path/size; ``source`` names the origin.
    """
    try:
        items = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataFormatError(f"folder listing {source} is not valid JSON ({error}).") from None
    if not isinstance(items, list):
        raise DataFormatError(f"folder listing {source} must be a JSON list of entries, got {type(items).__name__}.")
    return [entry for item in items if (entry := _entry_from_json(item, source)) is not None]


def next_page_url(link_header: str | None) -> str | None:
    """The ``rel="next"`` target of an HTTP ``Link`` header (how the Hub paginates listings), if any."""
    match = _NEXT_LINK.search(link_header or "")
    return match[1] if match else None


def files_under(entries: Iterable[FolderEntry], folder: PurePosixPath) -> list[FolderEntry]:
    """Entries strictly inside ``folder`` (``a/b`` contains ``a/b/c`` but not ``a/bc``), sorted by path."""
    return sorted((e for e in entries if folder in e.path.parents), key=lambda e: e.path)


def folder_index_path(folder: Path) -> Path:
    """Where the index of ``folder`` lives: ``<folder>.openretina-tree.json`` next to it."""
    return folder.with_name(folder.name + FOLDER_INDEX_SUFFIX)


def read_folder_index(index_file: Path) -> list[FolderEntry] | None:
    """The entries of an index file; None if it is absent or unreadable (then the folder counts as incomplete)."""
    try:
        return parse_listing(index_file.read_bytes(), str(index_file))
    except (OSError, DataFormatError):
        return None


def _write_entries(index_file: Path, entries: Sequence[FolderEntry]) -> None:
    staging = index_file.with_name(index_file.name + ".partial")
    staging.write_text(json.dumps([entry.as_json() for entry in entries], indent=1))
    os.replace(staging, index_file)  # atomic: a reader sees the old index or the complete new one


def missing_files(root: Path, entries: Iterable[FolderEntry]) -> list[PurePosixPath]:
    """Entries whose file is absent under ``root`` or has another size (a cheap check: no digest computed)."""
    missing = []
    for entry in entries:
        local = root / Path(*entry.path.parts)
        if not local.is_file() or local.stat().st_size != entry.size:
            missing.append(entry.path)
    return missing


def write_folder_index(root: str | os.PathLike[str], folder: str, entries: Sequence[FolderEntry] | None = None) -> Path:
    """Write ``<root>/<folder>.openretina-tree.json`` and return its path.

    Args:
        root: the repository's root on disk (a mirror's root, or the cache directory).
        folder: repository-relative folder path, e.g. ``"gollisch_lab/sridhar_2025/marmoset/natural_movie"``.
        entries: the files to record; default: every file below the folder on disk, with its size, sha256 and
            git blob id computed here (index files and unfinished ``.partial`` downloads are skipped).

    Raises:
        DataFileNotFoundError: the folder does not exist under ``root``.
    """
    base = Path(root).expanduser()
    relative = PurePosixPath(folder.strip("/"))
    local = base / Path(*relative.parts)
    if not local.is_dir():
        raise DataFileNotFoundError(f"cannot index {folder!r}: {local} is not a folder. Give a folder under {base}.")
    if entries is None:
        entries = [
            FolderEntry(
                relative / PurePosixPath(path.relative_to(local).as_posix()),
                path.stat().st_size,
                sha256_of_file(path),
                git_blob_sha1_of_file(path),
            )
            for path in sorted(local.rglob("*"))
            if path.is_file() and not path.name.endswith((FOLDER_INDEX_SUFFIX, ".partial"))
        ]
    index_file = folder_index_path(local)
    _write_entries(index_file, entries)
    return index_file
