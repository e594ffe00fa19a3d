"""Data layer: domains, the simulated user and generator, the corpus format, text
processing, pairs and the DAML protocol splits (notebook 01)."""
