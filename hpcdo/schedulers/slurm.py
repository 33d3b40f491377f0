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
    # renamed on some machines (see tianhe.py)
    submit_command, queue_command, accounting_command, cancel_command = "sbatch", "squeue", "sacct", "scancel"
    directive = "#SBATCH"
    family = "slurm"
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
