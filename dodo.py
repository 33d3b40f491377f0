"""This project's doit file: `doit machine=<name> <task>` (default machine: localhost).

hpcdo's tasks come from hpcdo's task loader, which pyproject.toml names
([tool.doit]); doit hands it the command and its arguments.  Machines live
in machines/, recipes in recipes/ (see README.md).  doit tasks of the
project's own may be written below, as task_* functions.
"""
from hpcdo.cli import needs_loader

needs_loader(__file__)
