"""Sridhar et al. 2025: marmoset ganglion cells on a multi-electrode array, natural movies ("NM", images shown
with fixational eye movements) and white noise ("WN").

Modules: :mod:`.constants`; :mod:`.responses` (``load_responses``, ``response_splits_from_pickles``);
:mod:`.stimuli` (shape-only placeholder movies that use no memory, ``load_frames``); :mod:`.dataloader_utils`
(trial-wise splits, STA locations); :mod:`.dataloaders` (``frame_movie_loader``, ``white_noise_loader``,
``MarmosetMovieDataset``, ``NoiseDataset``, ``ChunkedSampler``, ``process_fixations``); :mod:`.sample_data` (tiny
data sets in the native layouts, for tests and offline trials).
"""
