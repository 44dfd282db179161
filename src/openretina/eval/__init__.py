"""Evaluation: per-neuron metrics, noise ceilings, chunk-aligned predictions, the evaluation table and summary."""
