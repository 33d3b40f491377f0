"""Launchers: the command that starts the parallel program inside a job.

The launcher is a separate idea from the scheduler (ReFrame keeps them apart
too): Slurm sites use ``srun``, Cray ALPS sites ``aprun``, TACC ``ibrun``,
Tianhe ``yhrun``, and many Grid Engine or PBS sites ``mpirun``.  A machine
picks one with ``launcher:`` and adds site options with
``launcher_options:``; ``run_command:`` (FabSim3's name) replaces the whole
prefix when a site needs something no launcher here covers.

Each launcher is its standard argument list with ``$tasks`` (copies of
the program: cores / threads), ``$threads`` (cores per task), ``$cores``
(every core of the run: tasks x threads), ``$nodes``, ``$corespernode``
(the machine's) and ``$cpn`` (this run's tasks per node) filled in per run;
``launcher_options`` and ``run_command`` may use the same variables.  A run
with threads > 1 also gets the launcher's thread option below, where the
launcher documents one.  ``mpirun`` and ``mpiexec`` get none, because the
option differs per MPI library: a machine adds its own in
``launcher_options`` (Open MPI 4: ``--map-by slot:PE=$threads``; Cray
PALS ``mpiexec``: ``--depth=$threads --cpu-bind depth``).

=========  ==========================  ======================================
launcher   words                       threads > 1 adds
=========  ==========================  ======================================
none       (the program alone)         -
srun       srun --ntasks=$tasks        --cpus-per-task=$threads (srun takes
                                       it no longer from the job since 22.05)
mpirun     mpirun -np $tasks           - (per MPI, see above)
mpiexec    mpiexec -n $tasks           - (per MPI, see above)
aprun      aprun -n $tasks -N $cpn     -d $threads (depth: cores per PE)
ibrun      ibrun                       - (takes the layout from the job)
yhrun      yhrun -n $tasks             -c $threads (Tianhe's srun)
=========  ==========================  ======================================
"""

import string

from . import ConfigError

#: launcher name -> its prefix, before the machine's launcher_options
LAUNCHERS = {
    "none": "",
    "srun": "srun --ntasks=$tasks",
    "mpirun": "mpirun -np $tasks",
    "mpiexec": "mpiexec -n $tasks",
    "aprun": "aprun -n $tasks -N $cpn",
    "ibrun": "ibrun",                      # takes the task count from the job
    "yhrun": "yhrun -n $tasks",
}

#: launcher name -> its option for a run with threads > 1 (after its prefix)
THREAD_OPTIONS = {
    "srun": "--cpus-per-task=$threads",
    "aprun": "-d $threads",
    "yhrun": "-c $threads",
}

VARIABLES = ("cores", "nodes", "corespernode", "cpn", "threads", "tasks")


def _fill(text, values, what):
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError) as exc:
        raise ConfigError("%s %r: unknown variable %s (known: %s)"
                          % (what, text, exc, ", ".join("$" + v for v in VARIABLES)))


def prefix(machine, values, gpus=0):
    """The launcher words that go before the executable, for one run, as shell text.

    ``values`` holds each of :data:`VARIABLES` for the run.  ``run_command``
    wins if set; otherwise the launcher's own arguments (and its thread
    option when threads > 1) followed by ``launcher_options``.  The values
    are whole numbers and the rest comes from the machine file, which is the
    user's own shell text.  A run with ``gpus`` (GPUs per node) also gets the machine's
    ``gpu_launcher_options`` (the site's binding of tasks to GPUs), where ``$gpus`` may be used too.
    """
    assert set(values) == set(VARIABLES), sorted(values)
    if machine.run_command:
        return _fill(machine.run_command, values, "machine %s: run_command" % machine.name).strip()
    name = machine.launcher or "none"
    if name not in LAUNCHERS:
        raise ConfigError("machine %s: unknown launcher '%s'; known launchers: %s"
                          % (machine.name, name, ", ".join(sorted(LAUNCHERS))))
    words = [LAUNCHERS[name]]
    if values["threads"] > 1:
        words.append(THREAD_OPTIONS.get(name, ""))
    if machine.launcher_options:
        if name == "none":
            raise ConfigError("machine %s: launcher_options %r need a launcher (launcher: none)"
                              % (machine.name, machine.launcher_options))
        words.append(machine.launcher_options)
    text = _fill(" ".join(w for w in words if w), values, "machine %s: launcher" % machine.name).strip()
    if gpus and machine.gpu_launcher_options:
        text += " " + _fill(machine.gpu_launcher_options, dict(values, gpus=gpus),
                            "machine %s: gpu_launcher_options" % machine.name).strip()
    return text.strip()
