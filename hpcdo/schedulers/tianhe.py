"""Tianhe (TH-1A, TH-2 at NSCC Guangzhou/Tianjin): Slurm with its commands renamed.

yhbatch, yhqueue (yhq), yhacct and yhcancel take Slurm's options, so the
jobscript is Slurm's (tianhe.sh.j2 extends slurm.sh.j2, for a project to
override).  NSCC-GZ's manual (v1.4, 2016) submits with the options on the
command line ("yhbatch -N 4 -n 96 -p <partition> job.sh") and says nothing of
``#SBATCH`` lines, so the submit passes the script's plain ``#SBATCH --x=y``
lines as options as well: Slurm reads them either way, and the command line
wins where both say the same thing.  The Slurm underneath is old, so the job
id is read from "Submitted batch job N" rather than from ``--parsable``.
"""

from .slurm import Slurm


class Tianhe(Slurm):
    name = "tianhe"
    template = "tianhe.sh.j2"
    submit_command, queue_command, accounting_command, cancel_command = "yhbatch", "yhqueue", "yhacct", "yhcancel"
