"""Slurm: sbatch, one squeue for all of the user's jobs, sacct where it exists."""

from .base import SIGNALLED, JobState, Scheduler, to_int


def slurm_exit_code(text):
    """sacct's ExitCode ``code:signal`` as one shell-style code (128 + signal when a signal ended it)."""
    code, _, signal = str(text).partition(":")
    signal = to_int(signal)
    if signal and signal < 65:           # OUT_OF_MEMORY shows 0:125, not a signal
        return SIGNALLED + signal
    return to_int(code)


class Slurm(Scheduler):
    name = "slurm"
    template = "slurm.sh.j2"
    # the commands, renamed on some machines (see tianhe.py)
    sbatch, squeue, sacct, scancel = "sbatch", "squeue", "sacct", "scancel"
    states = {
        "PENDING": JobState.PENDING, "CONFIGURING": JobState.PENDING,
        "REQUEUED": JobState.PENDING, "REQUEUE_HOLD": JobState.PENDING,
        "REQUEUE_FED": JobState.PENDING, "RESV_DEL_HOLD": JobState.PENDING,
        "RESIZING": JobState.RUNNING, "SUSPENDED": JobState.RUNNING,
        "STOPPED": JobState.RUNNING, "SIGNALING": JobState.RUNNING,
        "STAGE_OUT": JobState.RUNNING, "RUNNING": JobState.RUNNING,
        "COMPLETING": JobState.RUNNING,
        "COMPLETED": JobState.COMPLETED,
        "FAILED": JobState.FAILED, "OUT_OF_MEMORY": JobState.FAILED,
        "SPECIAL_EXIT": JobState.FAILED,
        "CANCELLED": JobState.CANCELLED, "REVOKED": JobState.CANCELLED,
        "TIMEOUT": JobState.TIMEOUT, "DEADLINE": JobState.TIMEOUT,
        "NODE_FAIL": JobState.NODE_FAIL, "BOOT_FAIL": JobState.NODE_FAIL,
        "PREEMPTED": JobState.PREEMPTED,
    }

    def submit_snippet(self):
        # --parsable prints "id" or "id;cluster"
        return 'id=$(%s --parsable ./job.sh) && id=${id%%%%;*}' % self.sbatch

    def status_snippet(self):
        # All of the user's jobs in one squeue (an unknown id in a -j list can
        # fail the whole call); sacct only for jobs squeue has forgotten, and
        # only where accounting exists.  sacct's lines keep their "|": its
        # state can be several words ("CANCELLED by 1000").
        # A failing squeue (controller down) prints @qfail: "not in the queue"
        # would wrongly read as "gone".
        return ('if q=$(%(squeue)s -h -t all -u "$(id -un)" -o "%%i %%T" 2>/dev/null); then '
                'printf "%%s\\n" "$q"; miss=; '
                'for i in $(printf "%%s" "$ids" | tr , " "); do '
                'case " $(printf "%%s" "$q" | tr "\\n" " ") " in *" $i "*) ;; '
                '*) miss="$miss${miss:+,}$i";; esac; done; '
                'if [ -n "$miss" ] && command -v %(sacct)s >/dev/null 2>&1; then '
                '%(sacct)s -n -X -P -j "$miss" -o JobID,State,ExitCode 2>/dev/null; fi; '
                'else echo @qfail; fi; true'
                % {"squeue": self.squeue, "sacct": self.sacct})

    def cancel_snippet(self):
        return '%s $(printf "%%s" "$ids" | tr , " ") 2>/dev/null; true' % self.scancel

    def parse_status(self, text):
        """squeue's ``<id> <STATE>`` lines, then sacct's ``<id>|<STATE ...>|<code>:<signal>``."""
        found = {}
        for line in text.splitlines():
            if "|" not in line:
                for job_id, value in Scheduler.parse_status(self, line).items():
                    found.setdefault(job_id, value)
                continue
            fields = line.split("|")
            words = fields[1].split() if len(fields) > 1 else []
            state = self.states.get(words[0].rstrip("+").upper()) if words else None
            if state is None or not fields[0].strip():
                continue
            code = slurm_exit_code(fields[2]) if len(fields) > 2 else None
            if state is JobState.COMPLETED and code:
                state = JobState.FAILED
            found.setdefault(fields[0].strip(), (state, code))
        return found
