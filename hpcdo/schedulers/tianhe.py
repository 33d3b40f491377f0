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
    sbatch, squeue, sacct, scancel = "yhbatch", "yhqueue", "yhacct", "yhcancel"

    def submit_snippet(self):
        return ('so=$(sed -n "s|^#SBATCH \\(--[a-z-]*=[A-Za-z0-9_.,:=+@%%/-]*\\)$|\\1|p" job.sh); '
                'out=$(%s $so ./job.sh); rc=$?; printf "%%s\\n" "$out"; '
                'id=$(printf "%%s\\n" "$out" | sed -n "s/^Submitted batch job \\([0-9][0-9]*\\).*/\\1/p" '
                '| head -n 1); [ "$rc" -eq 0 ] && [ -n "$id" ]' % self.sbatch)
