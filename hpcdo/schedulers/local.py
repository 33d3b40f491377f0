"""The local scheduler: the jobscript runs in the background, tracked by its pid.

It needs no batch system, so it serves the embedded ``localhost`` machine
and any workstation reached over SSH.  The job runs in a session of its own
(``setsid`` where there is one) so neither a Ctrl-C in the terminal nor the
end of the SSH session reaches it; the word ``hpcdo-job`` on its command
line guards against a recycled pid being taken for the job.
"""

from .base import JobState, Scheduler


class Local(Scheduler):
    name = "local"
    template = "local.sh.j2"
    states = {"RUNNING": JobState.RUNNING}

    def submit_snippet(self):
        # The submission ignores HUP, INT and TERM so that it is never cut
        # between starting the job and recording its id; a child would inherit
        # that, and a job that ignores TERM can be neither cancelled nor
        # trapped, so the job's subshell restores them first.
        return ("if command -v setsid >/dev/null 2>&1; then "
                "(trap - HUP INT TERM PIPE; exec setsid bash ./job.sh hpcdo-job </dev/null >job.out 2>&1) & "
                "else (trap - INT TERM PIPE; exec nohup bash ./job.sh hpcdo-job </dev/null >job.out 2>&1) & "
                "fi; id=$!")

    def status_snippet(self):
        return ('for i in $(printf "%s" "$ids" | tr , " "); do '
                'a=$(ps -o args= -p "$i" 2>/dev/null) && '
                'case "$a" in *hpcdo-job*) echo "$i RUNNING";; esac; done')

    def cancel_snippet(self):
        return ('for i in $(printf "%s" "$ids" | tr , " "); do '
                'kill -TERM -- "-$i" 2>/dev/null || kill -TERM "$i" 2>/dev/null; done; true')
