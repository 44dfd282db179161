"""Extract a downloaded zip archive next to itself, once, keeping the archive so it can be verified again."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from openretina.errors import DataFormatError
from openretina.utils.checksums import sha256_of_file

__all__ = ["EXTRACTED_SUFFIX", "extract_zip"]

EXTRACTED_SUFFIX = ".extracted"


def _check_members_stay_inside(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    for info in members:
        parts = PurePosixPath(info.filename).parts
        if not parts or parts[0] in {"/", ""} or ".." in parts or ":" in parts[0]:
            raise DataFormatError(
                f"zip archive {archive}: member {info.filename!r} would be written outside the archive's "
                "folder; refusing to extract it. Delete the archive and obtain it from a trusted source."
            )


def extract_zip(archive: Path) -> Path:
    """Extract ``archive`` next to itself (keeping it) and return what it holds, laid out as the reference did.

    One file -> that file next to the archive; a single top-level folder named like the archive -> that folder
    next to the archive; anything else -> a folder named like the archive (without ``.zip``). A marker
    ``<archive>.extracted`` records the result and the archive's sha256, so a second call does nothing.

    Raises:
        DataFormatError: a member would land outside the archive's folder (``..``, absolute paths).
    """
    marker = archive.with_name(archive.name + EXTRACTED_SUFFIX)
    if marker.exists():
        result = archive.parent / json.loads(marker.read_text())["result"]
        if result.exists():
            return result
    with zipfile.ZipFile(archive) as zipped:
        members = [info for info in zipped.infolist() if not info.is_dir()]
        _check_members_stay_inside(archive, members)
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
