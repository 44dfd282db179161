"""Reference import path for the evaluation summary; the code lives in :mod:`openretina.eval.evaluation`."""

from openretina.eval.evaluation import EvaluationSummary

__all__ = ["EvaluationSummary"]
