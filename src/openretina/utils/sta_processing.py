"""Reference import path for the STA helpers; they live in :mod:`openretina.data_io.sta_processing`."""

from openretina.data_io.sta_processing import (
    create_gaussian_mask,
    extract_filters_from_sta,
    fit_2d_gaussian,
    gaussian_2d,
    load_sta_and_extract_filters,
)

__all__ = [
    "create_gaussian_mask",
    "extract_filters_from_sta",
    "fit_2d_gaussian",
    "gaussian_2d",
    "load_sta_and_extract_filters",
]
