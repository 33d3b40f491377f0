"""Batch systems: one small class per scheduler, beside its jobscript template.

A scheduler knows four things: how to submit ``./job.sh`` from the run
directory, how to ask for the state of many jobs in one command, how to
cancel (three shell snippets in ``sh/<name>/``, inherited from the nearest
base class that has one), and how its state names map onto
:class:`~hpcdo.schedulers.base.JobState` -- with the exit code, where its
accounting tells one (its module).  Adding a scheduler means adding one
module here, its snippets, and one ``<name>.sh.j2`` template that extends
``base.sh.j2`` (``_macros.j2`` converts walltimes and memory and writes the
machine's extra directives), and naming it below.
"""

from .. import ConfigError
from .base import JobState, Scheduler  # noqa: F401
from .local import Local
from .lsf import LSF
from .pbs import PBS, Torque
from .pjm import PJM
from .sge import SGE
from .slurm import Slurm
from .tianhe import Tianhe

SCHEDULERS = {cls.name: cls for cls in (Local, Slurm, Tianhe, SGE, PBS, Torque, LSF, PJM)}


def get(name):
    """The scheduler called ``name``, or a one-line error listing the known ones."""
    try:
        return SCHEDULERS[name]()
    except KeyError:
        raise ConfigError("unknown scheduler '%s'; known schedulers: %s"
                          % (name, ", ".join(sorted(SCHEDULERS))))
