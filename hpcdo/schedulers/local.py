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
    #: seconds a cancelled job has to end on TERM before it is killed
    grace = 10

    def snippet_values(self):
        return {"grace": int(self.grace)}
