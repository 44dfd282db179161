"""Process-wide settings a run applies before loading anything; shared by ``openretina train`` and ``eval``."""

from __future__ import annotations

import os
from pathlib import Path

import lightning
from hydra.utils import instantiate
from omegaconf import DictConfig

from openretina.utils.download import CACHE_DIRECTORY_ENV

__all__ = ["cache_directory", "prepare_run"]


def cache_directory(cfg: DictConfig) -> Path | None:
    """``paths.cache_dir`` with ``~`` expanded, or None when the config leaves it unset (null or absent)."""
    value = cfg.get("paths", {}).get("cache_dir")
    return Path(str(value)).expanduser() if value else None


def prepare_run(cfg: DictConfig) -> None:
    """Export ``paths.cache_dir`` as ``$OPENRETINA_CACHE_DIRECTORY``, seed everything, set the matmul precision.

    The export makes every download of the run (datasets, models, ``${oc.env:OPENRETINA_CACHE_DIRECTORY}`` in
    configs) use the configured cache. Seeding comes first, before any data is loaded, so data loading is
    reproducible too (the reference seeded after it).
    """
    cache = cache_directory(cfg)
    if cache is not None:
        os.environ[CACHE_DIRECTORY_ENV] = str(cache)
    if cfg.get("seed") is not None:
        lightning.seed_everything(int(cfg.seed), workers=True, verbose=False)
    if cfg.get("matmul_precision") is not None:
        instantiate(cfg.matmul_precision)
