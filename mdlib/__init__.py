"""mdlib: the helper package behind the meta-learning-for-dialogue notebooks.

Layers, each importing only the ones before it::

    data  ->  models  ->  meta  ->  evaluation  ->  dm, system  ->  experiments  ->  commands (CLI), reproduce

:mod:`mdlib.evaluation` is a package: data access, adaptation, scoring, pretraining and
baselines, one module each.

Plotting (:mod:`mdlib.plotting`), statistics (:mod:`mdlib.stats`), metrics
(:mod:`mdlib.metrics`) and reporting (:mod:`mdlib.report`) are leaves any layer may use.
"""

__version__ = "0.1.0"
