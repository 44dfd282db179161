"""Dataloader-side parsing for the Sridhar et al. 2025 natural movies.

Only the fixation parser is available; the chunked datasets and loaders of the reference (``MarmosetMovieDataset``,
``frame_movie_loader``, ``NoiseDataset``, ``white_noise_loader``) are not implemented yet.
"""

from __future__ import annotations

from collections.abc import Iterable

from openretina.errors import DataFormatError


def process_fixations(
    fixations: Iterable[str], flip_imgs: bool = False, select_flip: int | None = None
) -> list[dict[str, int]]:
    """Parse fixation-file lines (one displayed frame each, whitespace separated).

    Token 0 is the image index, tokens 3 and 4 the centre x / y, and the first character of the last token the
    flip flag (inverted when ``flip_imgs``). Returns ``[{"img_index", "center_x", "center_y", "flip"}]``, keeping
    only lines whose flag equals ``select_flip`` when given.
    """
    parsed = []
    for number, line in enumerate(fixations):
        tokens = line.split()
        try:
            flip = int(tokens[-1][0])
            entry = {
                "img_index": int(float(tokens[0])),
                "center_x": int(float(tokens[3])),
                "center_y": int(float(tokens[4])),
                "flip": int(flip == 0) if flip_imgs else flip,
            }
        except (IndexError, ValueError) as error:
            raise DataFormatError(
                f"fixation line {number} {line!r} is malformed ({error}); expected whitespace-separated numbers with "
                "the image index first, centre x and y as tokens 3 and 4 and the flip flag last."
            ) from error
        if select_flip is None or entry["flip"] == select_flip:
            parsed.append(entry)
    return parsed
