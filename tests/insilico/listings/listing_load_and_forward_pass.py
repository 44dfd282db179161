# Paper listing (spec reference-insilico.md §5.2, listing_load_and_forward_pass.py), unchanged.
import torch

from openretina.models import *

model = load_core_readout_from_remote("hoefling_2024_base_low_res", "cpu")
responses = model.forward(torch.rand(model.stimulus_shape(time_steps=50)))
