"""Launchers: the command that starts the parallel program inside a job.

The launcher is a separate idea from the scheduler (ReFrame keeps them apart
too): Slurm sites use ``srun``, Cray ALPS sites ``aprun``, TACC ``ibrun``,
Tianhe ``yhrun``, and many Grid Engine or PBS sites ``mpirun``.  A machine
picks one with ``launcher:`` and adds site options with
``launcher_options:``; ``run_command:`` (FabSim3's name) replaces the whole
prefix when a site needs something no launcher here covers.

Each launcher is its standard argument list with ``$cores``, ``$nodes``,
``$corespernode`` (the machine's) and ``$cpn`` (this run's ranks per node)
filled in per run.
"""

import string

from . import ConfigError

#: launcher name -> its prefix, before the machine's launcher_options
LAUNCHERS = {
    "none": "",
    "srun": "srun --ntasks=$cores",
    "mpirun": "mpirun -np $cores",
    "mpiexec": "mpiexec -n $cores",
    "aprun": "aprun -n $cores -N $corespernode",
    "ibrun": "ibrun",                      # takes the task count from the job
    "yhrun": "yhrun -n $cores",
}

VARIABLES = ("cores", "nodes", "corespernode", "cpn")


def _fill(text, values, what):
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError) as exc:
        raise ConfigError("%s %r: unknown variable %s (known: %s)"
                          % (what, text, exc, ", ".join("$" + v for v in VARIABLES)))


def prefix(machine, cores, nodes, corespernode, cpn):
    """The launcher words that go before the executable, for one run, as shell text.

    ``run_command`` wins if set; otherwise the launcher's own arguments
    followed by ``launcher_options``.  The values are whole numbers and the
    rest comes from the machine file, which is the user's own shell text.
    """
    values = {"cores": cores, "nodes": nodes, "corespernode": corespernode, "cpn": cpn}
    if machine.run_command:
        return _fill(machine.run_command, values, "machine %s: run_command" % machine.name).strip()
    name = machine.launcher or "none"
    if name not in LAUNCHERS:
        raise ConfigError("machine %s: unknown launcher '%s'; known launchers: %s"
                          % (machine.name, name, ", ".join(sorted(LAUNCHERS))))
    words = [LAUNCHERS[name]]
    if machine.launcher_options:
        if name == "none":
            raise ConfigError("machine %s: launcher_options %r need a launcher (launcher: none)"
                              % (machine.name, machine.launcher_options))
        words.append(machine.launcher_options)
    return _fill(" ".join(w for w in words if w), values,
                 "machine %s: launcher" % machine.name).strip()
