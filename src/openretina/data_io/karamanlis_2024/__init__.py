"""Karamanlis et al. 2024: mouse and marmoset ganglion cells on a multi-electrode array, natural images shown with
simulated fixational eye movements.

Submodules: :mod:`.constants`, :mod:`.stimuli` (``load_all_stimuli``, ``return_fix_movie``),
:mod:`.responses` (``load_all_responses``).
"""
