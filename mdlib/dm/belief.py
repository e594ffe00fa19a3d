"""The dialogue manager's belief tracker, :class:`~mdlib.data.belief.BeliefTracker`.

It is the corpus's own system side (the generator in :mod:`mdlib.data.generator` speaks
with it, and the data layer may not import ``mdlib.dm``), so it is defined in
:mod:`mdlib.data.belief`; the dialogue manager uses it under this name.
"""

from mdlib.data.belief import BeliefTracker

__all__ = ["BeliefTracker"]
