"""What ``from openretina.insilico import *`` and the documented import paths provide."""

from __future__ import annotations

import openretina.insilico


def test_star_import_names() -> None:
    namespace: dict[str, object] = {}
    exec("from openretina.insilico import *", namespace)
    reference_names = {
        "optimize_stimulus",
        "IncreaseObjective",
        "ContrastiveNeuronObjective",
        "OptimizationStopper",
        "MeanReducer",
        "SliceMeanReducer",
    }
    assert reference_names | {"EarlyStopper"} == set(openretina.insilico.__all__)
    assert reference_names <= set(namespace)


def test_documented_import_paths() -> None:
    from openretina.insilico import visualize_receptive_fields
    from openretina.insilico.receptive_fields import visualize_receptive_fields as defined
    from openretina.insilico.stimulus_optimization.regularizer import ClipStimulus, TotalVariationRegularizer

    assert visualize_receptive_fields is defined
    assert callable(ClipStimulus) and callable(TotalVariationRegularizer)
