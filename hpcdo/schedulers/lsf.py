"""IBM Spectrum LSF: ``bsub < job.sh``, one ``bjobs -a -o ...`` for the ids, bkill.

bsub reads the ``#BSUB`` lines only of a script it reads from stdin, and
prints "Job <123> is submitted to queue <normal>.".  ``bjobs -a`` with ids
lists them, finished ones too for a while (CLEAN_PERIOD, an hour by
default), and prints "Job <123> is not found" for the others.  Its
``-o`` fields (jobid stat exit_code exit_reason) are separated by ``|``;
where bjobs knows no ``exit_reason`` field (older LSF) the call is repeated
without it.

States (bjobs(1), "Job states"): PEND PROV WAIT PSUSP wait; RUN, USUSP,
SSUSP hold their slots; UNKWN is a job whose host mbatchd lost contact
with (it may come back); ZOMBI a job killed while its host was unreachable;
DONE exited 0; EXIT did not, and its termination reason ("Termination
reasons displayed by bacct, bhist, and bjobs": TERM_RUNLIMIT,
TERM_OWNER ...) says why.  LSF sends SIGUSR2 at the run limit, which the
jobscript does not trap, so a run-limit kill leaves no marker and the
reason is read here.
"""

import re

from .base import JobState, Scheduler, to_int

TERM_REASON = re.compile(r"\bTERM_[A-Z_]+\b")
TERM_STATES = {
    "TERM_RUNLIMIT": JobState.TIMEOUT, "TERM_DEADLINE": JobState.TIMEOUT,
    "TERM_OWNER": JobState.CANCELLED, "TERM_ADMIN": JobState.CANCELLED,
    "TERM_FORCE_OWNER": JobState.CANCELLED, "TERM_FORCE_ADMIN": JobState.CANCELLED,
    "TERM_REQUEUE_OWNER": JobState.CANCELLED, "TERM_REQUEUE_ADMIN": JobState.CANCELLED,
    "TERM_BUCKET_KILL": JobState.CANCELLED,
    "TERM_PREEMPT": JobState.PREEMPTED, "TERM_WINDOW": JobState.PREEMPTED,
    "TERM_ZOMBIE": JobState.NODE_FAIL, "TERM_REMOVE_HUNG_JOB": JobState.NODE_FAIL,
}
# the same reasons as bjobs -l words them, where exit_reason gives the text only
TERM_TEXTS = (
    ("run time limit", JobState.TIMEOUT), ("run limit", JobState.TIMEOUT),
    ("killed by owner", JobState.CANCELLED), ("killed by root", JobState.CANCELLED),
    ("administrator", JobState.CANCELLED), ("preempt", JobState.PREEMPTED),
)


class LSF(Scheduler):
    name = "lsf"
    template = "lsf.sh.j2"
    submit_command, queue_command, cancel_command = "bsub", "bjobs", "bkill"
    directive = "#BSUB"
    family = "lsf"
    states = {
        "PEND": JobState.PENDING, "PROV": JobState.PENDING, "WAIT": JobState.PENDING,
        "PSUSP": JobState.PENDING,
        "RUN": JobState.RUNNING, "USUSP": JobState.RUNNING, "SSUSP": JobState.RUNNING,
        "UNKWN": JobState.RUNNING,
        "ZOMBI": JobState.NODE_FAIL,
        "DONE": JobState.COMPLETED, "EXIT": JobState.FAILED,
    }

    def parse_status(self, text):
        """``<jobid>|<STAT>|<exit code>[|<exit reason>]`` lines; "Job <N> is not found" says nothing."""
        found = {}
        for line in text.splitlines():
            fields = line.split("|", 3)
            if len(fields) < 2 or not fields[0].strip().isdigit():
                continue
            state = self.states.get(fields[1].strip().upper())
            if state is None:
                continue
            code = to_int(fields[2]) if len(fields) > 2 else None
            reason = fields[3].strip() if len(fields) > 3 else ""
            if state is JobState.COMPLETED:
                code = 0
            elif state is JobState.FAILED:
                state = self.exit_state(reason)
            found.setdefault(fields[0].strip(), (state, code))
        return found

    @staticmethod
    def exit_state(reason):
        """The JobState of an EXIT job from its termination reason (FAILED when none says more)."""
        for term in TERM_REASON.findall(reason):
            if term in TERM_STATES:
                return TERM_STATES[term]
        lowered = reason.lower()
        for text, state in TERM_TEXTS:
            if text in lowered:
                return state
        return JobState.FAILED
