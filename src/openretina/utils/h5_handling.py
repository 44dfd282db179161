"""Reference import path; the helpers live in :mod:`openretina.data_io.h5_handling`."""

from openretina.data_io.h5_handling import count_items as count_items
from openretina.data_io.h5_handling import h5_to_folders as h5_to_folders
from openretina.data_io.h5_handling import load_dataset_from_h5 as load_dataset_from_h5
from openretina.data_io.h5_handling import load_h5_into_dict as load_h5_into_dict
from openretina.data_io.h5_handling import print_h5_structure as print_h5_structure
