"""Batch systems: one small class per scheduler, beside its jobscript template.

A scheduler knows four things, each a short shell snippet or parser: how to
submit ``./job.sh`` from the run directory, how to ask for the state of many
jobs in one command, how to cancel, and how its state names map onto
:class:`~hpcdo.schedulers.base.JobState`.  Adding a scheduler means adding
one module here and one ``<name>.sh.j2`` template, and naming it below.
"""

from .. import ConfigError
from .base import JobState, Scheduler  # noqa: F401
from .local import Local
from .slurm import Slurm

SCHEDULERS = {cls.name: cls for cls in (Local, Slurm)}


def get(name):
    """The scheduler called ``name``, or a one-line error listing the known ones."""
    try:
        return SCHEDULERS[name]()
    except KeyError:
        raise ConfigError("unknown scheduler '%s'; known schedulers: %s"
                          % (name, ", ".join(sorted(SCHEDULERS))))
