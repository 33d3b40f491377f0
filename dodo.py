"""hpcdo's entry point for doit: `doit machine=<name> <task>` (default machine: localhost).

Machines live in machines/, recipes in recipes/; see README.md.
"""
from hpcdo.project import dodo

globals().update(dodo(__file__))
