"""Experiments: whole comparisons built from the layers below.

An experiment combines data (:mod:`mdlib.data`), the generator (:mod:`mdlib.models`),
meta-learners (:mod:`mdlib.meta`) and adaptation and scoring (:mod:`mdlib.evaluation`)
into one run that returns plain, JSON-ready numbers. It sits above ``meta``,
``evaluation``, ``dm`` and ``system`` in the layers;
scripts, notebooks and commands call it, nothing below imports it.

* :mod:`mdlib.experiments.comparison`: the fair-comparison runner of both dialogue
  protocols (docs/comparison.md), one seed per call.
* :mod:`mdlib.experiments.parallel`: independent runs of it (seeds, families) side by side
  in worker processes, with the same results as a loop.
* :mod:`mdlib.experiments.personas`: the compute-matched probe of the persona family
  (docs/personas.md): does a meta-learned start adapt to a new persona faster than
  multi-task training + fine-tuning at equal compute?
* :mod:`mdlib.experiments.end_to_end`: parser, manager and generator each zero-shot,
  fine-tuned or meta-learned, against the listening user (docs/simulation.md): which
  part's meta-learning matters?
"""
