"""Reference import path of the download helpers; the code lives in :mod:`openretina.utils.download`."""

from openretina.utils.download import (
    GIN_BASE_URL,
    HOME_DIR,
    HUGGINGFACE_BASE_URL,
    HUGGINGFACE_REPO_ID,
    get_cache_directory,
    get_local_file_path,
    huggingface_download,
)

__all__ = [
    "GIN_BASE_URL",
    "HOME_DIR",
    "HUGGINGFACE_BASE_URL",
    "HUGGINGFACE_REPO_ID",
    "get_cache_directory",
    "get_local_file_path",
    "huggingface_download",
]
