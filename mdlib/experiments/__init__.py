"""Experiments: whole comparisons built from the layers below.

An experiment combines data (:mod:`mdlib.data`), the generator (:mod:`mdlib.models`),
meta-learners (:mod:`mdlib.meta`) and adaptation and scoring (:mod:`mdlib.evaluation`)
into one run that returns plain, JSON-ready numbers. It sits above ``meta`` and
``evaluation`` in the layers (``data -> models -> meta -> evaluation -> experiments``);
scripts, notebooks and commands call it, nothing below imports it.

* :mod:`mdlib.experiments.personas`: the compute-matched probe of the persona family
  (docs/personas.md): does a meta-learned start adapt to a new persona faster than
  multi-task training + fine-tuning at equal compute?
"""
