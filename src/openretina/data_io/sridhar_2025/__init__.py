"""Sridhar et al. 2025: marmoset ganglion cells on a multi-electrode array, natural movies ("NM", images shown
with fixational eye movements) and white noise ("WN").

Available: :mod:`.constants`, :mod:`.responses` (``load_responses``, ``response_splits_from_pickles``),
:mod:`.stimuli` (shape-only placeholder movies, ``load_frames``), :mod:`.dataloader_utils` (trial splits, STA
locations) and :mod:`.dataloaders` (``process_fixations``). The chunked datasets and loaders of the reference
(``MarmosetMovieDataset``, ``frame_movie_loader``, ``NoiseDataset``, ``white_noise_loader``) are not implemented yet.
"""
