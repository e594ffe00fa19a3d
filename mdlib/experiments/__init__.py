"""Experiments that combine several parts of the library (each module one experiment, reused by notebooks and scripts)."""
