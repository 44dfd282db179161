"""Cores: shared feature extractors mapping a stimulus movie to feature movies."""
