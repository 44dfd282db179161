"""Reference import path of the legacy ensemble loader; the code lives in :mod:`openretina.hub.ensemble`."""

from openretina.hub.ensemble import Center, load_ensemble_model_from_remote, load_ensemble_retina_model_from_directory

__all__ = ["Center", "load_ensemble_model_from_remote", "load_ensemble_retina_model_from_directory"]
