"""Experiment configs (YAML) and benchmark scripts that print tables."""
