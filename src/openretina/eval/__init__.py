"""Evaluation metrics and oracles."""
