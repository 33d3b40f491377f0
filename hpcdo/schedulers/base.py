"""What every scheduler shares: job states, and how markers and queue combine."""

import enum
import os
import re

from ..remote import shell

#: the schedulers' shell snippets: sh/<scheduler>/{submit,status,cancel}.sh
SNIPPETS = shell.environment(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sh"))


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
    UNKNOWN = "unknown"          # no exit marker, and the scheduler could not be asked

    @property
    def active(self):
        """Pending, running, or not known to have ended: never submitted again meanwhile."""
        return self in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)

    @property
    def done(self):
        return self is JobState.COMPLETED


#: the line a status snippet prints when the scheduler itself did not answer
QUEUE_DOWN = "@qfail"

#: what schedulers say when they are down or busy for a while, not refusing the job:
#: Slurm ("Unable to contact slurm controller", "Socket timed out"), Grid Engine
#: ("unable to contact qmaster", "commlib error"), PBS ("Cannot connect to server"),
#: LSF ("not responding", "LSF is down")
TRANSIENT = re.compile(r"unable to contact|socket timed out|temporarily unavailable|try again|"
                       r"not responding|connection refused|cannot connect|commlib error|"
                       r"lsf is down|timed out", re.IGNORECASE)

# \Z, not $: "$" also matches before a final line break
SAFE_DIRECTIVE = re.compile(r"^[A-Za-z0-9_.,:=+@%/-]+\Z")

#: a job's exit code as a shell reports it: 128 + n when signal n ended it
SIGNALLED = 128


def to_int(text):
    """``text`` as an int, or None (accounting prints ``-``, ``NONE``, ``undefined`` ...)."""
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def seconds(text):
    """Seconds in a duration: ``[[D-]HH:]MM:SS``, ``HH:MM:SS``, plain seconds or ``61s``; else None."""
    if text is None:
        return None
    text = str(text).strip().rstrip("s")
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        days = to_int(head)
        if days is None:
            return None
    total = 0
    for part in text.split(":"):
        try:
            total = total * 60 + float(part)
        except ValueError:
            return None
    return int(total) + days * 86400


class Scheduler:
    """Base of all schedulers; subclasses fill in the class attributes."""

    #: the name machines use in ``scheduler:``
    name = None
    #: the jobscript template, found in the project's jobscripts/ or beside this module
    template = None
    #: raw state word -> JobState
    states = {}
    #: longest job name when the machine sets no ``max_job_name_chars`` (0: no limit)
    name_limit = 0
    #: the scheduler refuses job names that do not start with a letter (recipe names may
    #: start with a digit): such names get a "j" in front
    letter_first = False

    #: the scheduler's commands, which the snippets name (some sites rename them)
    submit_command = queue_command = accounting_command = cancel_command = None
    #: the prefix of the jobscript's directive lines
    directive = None
    #: the family whose tools a subclass shares (Tianhe is Slurm's, TORQUE is PBS's):
    #: slurm, sge, pbs, lsf or local, for ``doit machine=X check``'s test mode
    family = "local"

    def snippet(self, kind):
        """The text of ``sh/<name>/<kind>.sh``, from this class or the nearest base that has one."""
        for cls in type(self).__mro__:
            folder = "base" if cls is Scheduler else cls.__dict__.get("name")
            if folder and os.path.exists(os.path.join(SNIPPETS.loader.searchpath[0], folder, kind + ".sh")):
                return shell.render("%s/%s.sh" % (folder, kind), env=SNIPPETS, **self.snippet_values()).strip()
        raise NotImplementedError("%s has no %s snippet" % (type(self).__name__, kind))

    def snippet_values(self):
        """What the snippets fill in: the commands, as hpcdo's own shell text."""
        values = {"submit_command": self.submit_command, "queue_command": self.queue_command,
                  "accounting_command": self.accounting_command, "cancel_command": self.cancel_command}
        return {key: shell.code(value) for key, value in values.items() if value}

    def submit_snippet(self):
        """Shell that submits ./job.sh from the run directory and sets ``id``."""
        return self.snippet("submit")

    def status_snippet(self):
        """Shell that prints the state of the jobs in the comma list ``$ids``, for :meth:`parse_status`."""
        return self.snippet("status")

    def cancel_snippet(self):
        """Shell that cancels the jobs in ``$ids``."""
        return self.snippet("cancel")

    def count_snippet(self):
        """Shell that sets ``n`` to the user's jobs queued or running (array elements one each), or empty."""
        return self.snippet("count")

    def parse_status(self, text):
        """{job id: (JobState, exit code or None)} from what ``status_snippet`` printed.

        This base reads ``<id> <STATE> [<exit code>]`` lines; the first line
        about an id wins, and a job the queue does not list is left out.
        """
        found = {}
        for line in text.splitlines():
            words = line.split()
            if len(words) < 2:
                continue
            state = self.states.get(words[1].rstrip("+").upper())
            if state is not None:
                code = to_int(words[2]) if len(words) > 2 else None
                found.setdefault(words[0], (state, code))
        return found

    def transient(self, message):
        """True if a failed submission's ``message`` says the scheduler is away, not that it refused."""
        return bool(TRANSIENT.search(message or ""))

    def job_name(self, recipe, run, limit):
        """A job name the scheduler accepts, at most ``limit`` characters."""
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", "%s-%s" % (recipe, run))
        if self.letter_first and not name[:1].isalpha():
            name = "j" + name
        limit = limit or self.name_limit
        return name[:limit] if limit else name


def combine(job_id, exit_marker, queue_state, queue_code=None):
    """The state and exit code of one job from its exit marker and what the queue says.

    The marker the jobscript writes at exit is the most reliable source: it
    survives the scheduler forgetting the job (no accounting, MinJobAge),
    and its code wins over the queue's.  Without a marker, the queue's state
    and the exit code its accounting reported (``queue_code``) stand.  A job
    neither queued nor marked is LOST; one with no id was never submitted.
    A job the queue reports pending or running is active whatever its marker
    says: the marker is from an attempt before a requeue.
    """
    if not job_id:
        return JobState.NONE, None
    if queue_state in (JobState.PENDING, JobState.RUNNING):
        # the queue holds the job again (a requeue after a node failure or
        # preemption): a marker left by its earlier attempt says nothing now
        return queue_state, None
    if exit_marker:
        code = to_int(exit_marker.split()[0])
        if code == 0:
            return JobState.COMPLETED, 0
        if queue_state in (JobState.CANCELLED, JobState.TIMEOUT, JobState.NODE_FAIL,
                           JobState.PREEMPTED):
            return queue_state, code
        return JobState.FAILED, code
    if queue_state is None:
        return JobState.LOST, None
    return queue_state, queue_code
