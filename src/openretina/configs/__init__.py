"""Hydra configs shipped with openretina (importable as pkg://openretina.configs)."""
