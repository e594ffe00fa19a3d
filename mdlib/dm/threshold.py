"""The dialogue manager's reference threshold policy (SimDial) and pending-request tracker.

They are the corpus's own system side (the generator in :mod:`mdlib.data.generator`
speaks with them, and the data layer may not import ``mdlib.dm``), so they are defined in
:mod:`mdlib.data.threshold`; the dialogue manager, notebook 06 and the end-to-end system
use them under these names.
"""

from mdlib.data.threshold import KB_MAX_ROWS, ThresholdPolicy, track_requests

__all__ = ["KB_MAX_ROWS", "ThresholdPolicy", "track_requests"]
