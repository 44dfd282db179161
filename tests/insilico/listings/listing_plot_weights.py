# Paper listing (spec reference-insilico.md §5.2, listing_plot_weights.py), unchanged.
from openretina.models import *

model = load_core_readout_from_remote("hoefling_2024_base_low_res", "cpu")
conv_layer_figure = model.core.plot_weight_visualization(layer=0, in_channel=1, out_channel=0)
session_key = model.readout.readout_keys()[0]
readout_figure = model.readout[session_key].plot_weight_for_neuron(5)
