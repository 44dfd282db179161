"""Goldin et al. 2022: mouse and axolotl ganglion cells on a multi-electrode array, flashed natural images.

Submodules: :mod:`.constants`, :mod:`.stimuli` (``load_all_stimuli``), :mod:`.responses` (``load_all_responses``,
``load_test_repeats_for_session``). Each flashed image is one "frame"; responses are spike counts per flash.
"""
