"""The calibration demo's doit file: `doit machine=<name> fetch_results` (default machine: localhost).

hpcdo's tasks come from hpcdo's task loader, which pyproject.toml names.  The
recipe is recipes/calibrate.py; the loop is explained in docs/loops.md.
"""
from hpcdo.cli import needs_loader

needs_loader(__file__)
