"""What every scheduler shares: job states, and how markers and queue combine."""

import enum
import re


class JobState(enum.Enum):
    NONE = "none"                # never submitted
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"      # exit code 0
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    LOST = "lost"                # gone from the queue without leaving an exit marker

    @property
    def active(self):
        return self in (JobState.PENDING, JobState.RUNNING)

    @property
    def done(self):
        return self is JobState.COMPLETED


SAFE_DIRECTIVE = re.compile(r"^[A-Za-z0-9_.,:=+@%/-]+$")


class Scheduler:
    """Base of all schedulers; subclasses fill in the class attributes."""

    #: the name machines use in ``scheduler:``
    name = None
    #: the jobscript template, found in the project's jobscripts/ or beside this module
    template = None
    #: raw state word -> JobState
    states = {}

    def submit_snippet(self):
        """Shell that submits ./job.sh from the run directory and sets ``id``."""
        raise NotImplementedError

    def status_snippet(self):
        """Shell that prints ``<id> <STATE>`` lines for the comma list in ``$ids``."""
        raise NotImplementedError

    def cancel_snippet(self):
        """Shell that cancels the jobs in ``$ids``."""
        raise NotImplementedError

    def parse_status(self, text):
        """{job id: JobState} from the lines ``status_snippet`` printed."""
        found = {}
        for line in text.splitlines():
            words = line.split()
            if len(words) < 2:
                continue
            raw = words[1].rstrip("+").upper()
            state = self.states.get(raw)
            if state is not None:
                found.setdefault(words[0], state)
        return found

    def job_name(self, recipe, run, limit):
        """A job name the scheduler accepts, at most ``limit`` characters."""
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", "%s-%s" % (recipe, run))
        return name[:limit] if limit else name


def combine(job_id, exit_marker, queue_state):
    """The state of one job from its exit marker and what the queue says.

    The marker the jobscript writes at exit is the most reliable source: it
    survives the scheduler forgetting the job (no accounting, MinJobAge).
    A job neither queued nor marked is LOST; one with no id was never submitted.
    """
    if not job_id:
        return JobState.NONE, None
    if exit_marker:
        try:
            code = int(exit_marker.split()[0])
        except ValueError:
            code = None
        if code == 0:
            return JobState.COMPLETED, 0
        if queue_state in (JobState.CANCELLED, JobState.TIMEOUT, JobState.NODE_FAIL,
                           JobState.PREEMPTED):
            return queue_state, code
        return JobState.FAILED, code
    if queue_state is None:
        return JobState.LOST, None
    return queue_state, None
