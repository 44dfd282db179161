"""Maheswaranathan et al. 2023: salamander ganglion cells on a multi-electrode array, natural scenes and white noise.

Submodules: :mod:`.constants`, :mod:`.stimuli` (``load_all_stimuli``), :mod:`.responses` (``load_all_responses``,
``load_test_repeats_for_session``, ``NeuronDataBaccus``).
"""
