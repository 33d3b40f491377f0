"""Slurm: sbatch, one squeue for all of the user's jobs, sacct where it exists."""

from .base import JobState, Scheduler


class Slurm(Scheduler):
    name = "slurm"
    template = "slurm.sh.j2"
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
        return 'id=$(sbatch --parsable ./job.sh) && id=${id%%;*}'

    def status_snippet(self):
        # All of the user's jobs in one squeue (an unknown id in a -j list can
        # fail the whole call); sacct only for jobs squeue has forgotten, and
        # only where accounting exists.
        return ('q=$(squeue -h -t all -u "$(id -un)" -o "%i %T" 2>/dev/null); '
                'printf "%s\\n" "$q"; miss=; '
                'for i in $(printf "%s" "$ids" | tr , " "); do '
                'case " $(printf "%s" "$q" | tr "\\n" " ") " in *" $i "*) ;; '
                '*) miss="$miss${miss:+,}$i";; esac; done; '
                'if [ -n "$miss" ] && command -v sacct >/dev/null 2>&1; then '
                'sacct -n -X -P -j "$miss" -o JobID,State 2>/dev/null | tr "|" " "; fi; true')

    def cancel_snippet(self):
        return 'scancel $(printf "%s" "$ids" | tr , " ") 2>/dev/null; true'
