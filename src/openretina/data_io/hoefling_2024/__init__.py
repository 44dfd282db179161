"""Höfling et al. 2024: mouse retinal ganglion and amacrine cells imaged with two-photon calcium imaging while
UV/green natural movies were shown.

Submodules: :mod:`.constants` (frame rate, clip structure, cell-type names, stimulus range constraints),
:mod:`.stimuli` (``movies_from_pickle``), :mod:`.responses` (``filter_responses``, ``make_final_responses``, ...),
:mod:`.dataloaders` (``natmov_dataloaders_v2``).
"""
