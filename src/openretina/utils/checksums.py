"""File digests and the expected content of a download (size, sha256, git blob id)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ExpectedContent", "git_blob_sha1_of_file", "sha256_of_file"]

_CHUNK_BYTES = 1 << 20


def _digest_of_file(path: Path, digest: hashlib._Hash) -> str:
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_file(path: Path) -> str:
    """Hex sha256 digest of the file at ``path`` (read in 1 MiB chunks)."""
    return _digest_of_file(path, hashlib.sha256())


def git_blob_sha1_of_file(path: Path) -> str:
    """The git object id of the file's content (sha1 of ``b"blob <size>\\0"`` + content).

    Hugging Face listings give this id (``oid``) for files stored in git itself rather than in LFS, so such
    files can be verified without a sha256.
    """
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    return _digest_of_file(path, digest)


@dataclass(frozen=True)
class ExpectedContent:
    """What a file must be; ``None`` fields are not checked (hex digests are compared case-insensitively)."""

    size: int | None = None
    sha256: str | None = None
    git_blob_sha1: str | None = None

    def mismatch(self, path: Path) -> str | None:
        """A sentence describing how the file at ``path`` differs from the expectation, or None if it matches.

        Cheap checks first: the size is compared before any digest is computed.
        """
        if self.size is not None and (actual_size := path.stat().st_size) != self.size:
            return f"has {actual_size} bytes, expected {self.size}"
        if self.sha256 is not None and (actual := sha256_of_file(path)) != self.sha256.lower():
            return f"has sha256 {actual}, expected {self.sha256}"
        if self.git_blob_sha1 is not None and (actual := git_blob_sha1_of_file(path)) != self.git_blob_sha1.lower():
            return f"has git blob id {actual}, expected {self.git_blob_sha1}"
        return None
