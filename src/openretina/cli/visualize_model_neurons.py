"""Reference module path of ``openretina visualize``; the code lives in :mod:`openretina.cli.visualize`."""

from openretina.cli.visualize import add_parser_arguments, load_model, main, visualize_model_neurons

__all__ = ["add_parser_arguments", "load_model", "main", "visualize_model_neurons"]
