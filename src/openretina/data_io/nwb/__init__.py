"""NWB (Neurodata Without Borders) import and export for retina recordings (needs ``pip install openretina[nwb]``).

:func:`load_nwb_session` / :func:`load_nwb_sessions` read stimulus series, responses (``Units``,
``RoiResponseSeries`` or ``TimeSeries``) and trials into the standard containers; :func:`export_nwb` /
:func:`write_nwb_session` write containers to NWB. See ``docs/nwb.md``. pynwb is imported only when called.
"""

from openretina.data_io.nwb.reader import load_nwb_session, load_nwb_sessions
from openretina.data_io.nwb.writer import export_nwb, write_nwb_session

__all__ = ["export_nwb", "load_nwb_session", "load_nwb_sessions", "write_nwb_session"]
