"""FabSim3 machine files, read as they are, as hpcdo machine layers.

A FabSim3 user keeps machines in ``fabsim/deploy/machines.yml`` (with an
optional ``machines_private.yml`` beside it) and personal settings in
``machines_user.yml``.  :func:`load` reads those files without changing them
and returns hpcdo :class:`~hpcdo.layer.Layer` objects whose keys are
hpcdo's and whose file and line are the FabSim3 ones, so an error about a
FabSim3 machine points at the line the user wrote.

How FabSim3 builds one machine (``fabsim/deploy/machines.py``): the
``default:`` block of machines.yml, then that of machines_user.yml, then
the entry named by ``import:`` (its machines.yml entry, then its user
entry), then the machine's own machines.yml entry, then its user entry,
each replacing whole keys.  ``modules`` is the exception: a mapping
(``all``, ``loaded``, ``unloaded``, or a FabSim3 script name) updated sub-key
by sub-key, taken from machines.yml's default block only, never from the
user's.  Paths are ``$var`` templates (Python ``string.Template``) filled once
each from the merged settings, in the order home_path, runtime_path,
work_path.  Here ``import`` may chain (FabSim3 follows one level) and
becomes hpcdo's ``extends``.

Each machine is resolved in FabSim3's order, then split into layers
by the file each value came from (machines.yml, machines_user.yml, the
batch header template).  Every machine's layers therefore carry its whole
description, including what it inherits from FabSim3's defaults and its
``import``, so they give the same machine whether or not FabSim3's default
block is applied in front of them.

=========================  ==================================================
FabSim3                    hpcdo
=========================  ==================================================
remote                     host ("localhost" or none: null, this computer)
username                   user
port, cores, corespernode  the same
max_job_name_chars         the same
job_dispatch               scheduler: sbatch slurm, qsub sge or pbs (from the
                           batch header), bsub lsf, yhbatch tianhe, empty
                           local; options after the command: directives
batch_header               the template's directives: partition, account,
                           qos, pe from their options (and memory where it
                           means what hpcdo's does: SGE h_vmem, PBS mem),
                           the rest as ``directives``; options hpcdo writes
                           for every job (name, time, tasks, nodes, output,
                           working directory, shell) are dropped; ``export``
                           lines: env (a plain value) or assignments in
                           front of run_command (a value the job's shell
                           expands, e.g. $SLURM_CPUS_PER_TASK); only one
                           assignment word ($NAME, ${NAME}, $((...)), a
                           trailing comment dropped), else a warning
  (header not found)       budget account, partition_name (or queue)
                           partition, qos_name qos
run_command                run_command; $cores $nodes $corespernode kept,
                           other $vars filled from the machine
work_path_template (with   remote_root, filled from the machine's settings;
runtime_path_template,     a shell variable ($SCRATCH, ${SCRATCH}) is left
home_path_template,        for the machine, anywhere in the path (remote_root
fabric_dir, username ...)  expands it there); anything else its shell would
                           run ($(...), `...`) is an error
memory                     $memory in a header; 2GB where unset, as FabSim3
modules                    modules: all (as written), unloaded ("unload x"),
                           loaded ("load x")
run_prefix_commands        shell_setup
import                     extends
=========================  ==================================================

Everything else is left out with a line saying why, about each machine
that has the key (a ``default:`` block's key about every machine that
inherits it): a warning where the machine's jobs differ from what FabSim3
would submit, a note (``Machine.notes``, for ``doit machine=X check``)
where nothing in a job changes; FabSim3 internals are left out quietly.
A machine that cannot be resolved (an unknown ``$var``, a job_dispatch
hpcdo does not drive, a wrong type) is left out, and its error is raised
when someone asks for that machine, even where hpcdo ships a machine of
that name: FabSim3's shipped files describe machines hpcdo cannot drive
(LoadLeveler, QCG), and one of them must not stop the others from loading.
A FabSim3 machine named like one hpcdo ships replaces it as a whole
(:class:`hpcdo.config.Catalogue`).

The package, one concern a module: :mod:`.loader` reads the files and
resolves each machine in FabSim3's order, :mod:`.mapping` maps one
machine's settings onto hpcdo keys (and says why the rest is left out),
:mod:`.headers` reads job_dispatch and the batch header template, and
:mod:`.values` holds the ``$var`` and type helpers they share.
"""

from .loader import FabsimMachines, load
from .mapping import NOTE, WARN

__all__ = ["FabsimMachines", "load", "NOTE", "WARN"]
