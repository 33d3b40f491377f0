"""PBS: PBS Professional / OpenPBS (``pbs``) and TORQUE (``torque``): qsub, qstat -f, qdel.

Status is one ``qstat -f`` for the ids in question: PBS Pro and OpenPBS ask
the server once per id and go on past an unknown one, and ``-x`` adds the
finished jobs the server keeps as history (with ``Exit_status``).  Where
``-x`` means something else or nothing (TORQUE: XML output; the Slurm PBS
wrappers of slurm-wlm-torque: an unknown option) the plain ``qstat -f``
follows.  The job blocks are read from either the text or TORQUE's XML.

Exit status (PBS Pro reference guide, "Job Exit Status"; TORQUE admin guide
"Job exit status"): 0 and up is the script's own; above 256 the job was
killed by signal ``status - 256``; below 0 PBS ended it: -29 (PBS Pro,
JOB_EXEC_KILL_WALLTIME) and -11 (TORQUE, JOB_EXEC_OVERLIMIT_WT) are a
walltime kill, -20 (PBS Pro) the mother superior node failing.

The wrappers of slurm-wlm-torque read no ``#PBS`` line from the script: when
qsub is one of them, the submit passes the script's plain directives as
options (its ``-l`` takes one list, so they are joined).
"""

import re

from ..remote.shell import code
from .base import SIGNALLED, JobState, Scheduler, seconds, to_int

JOB_ID_LINE = re.compile(r"^Job Id:\s*(\S+)")
# "    job_state = R": continuation lines of a long value have no " = "
ATTRIBUTE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_.]*) = (.*)$")
XML_JOB = re.compile(r"<Job>(.*?)</Job>", re.S)
XML_FIELD = re.compile(r"<(Job_Id|job_state|exit_status|Exit_status)>([^<]*)</")
XML_WALLTIME = re.compile(r"<walltime>([^<]*)</walltime>")

class PBS(Scheduler):
    name = "pbs"
    template = "pbs.sh.j2"
    letter_first = True              # PBS wants a letter first
    submit_command, queue_command, cancel_command = "qsub", "qstat", "qdel"
    directive = "#PBS"
    family = "pbs"
    #: the qstat options tried first (then plain ``qstat -f``)
    qstat_first = "-f -x"
    states = {
        "Q": JobState.PENDING,       # queued
        "H": JobState.PENDING,       # held
        "W": JobState.PENDING,       # waiting for its start time or stage-in
        "T": JobState.PENDING,       # in transit to another server or queue
        "R": JobState.RUNNING,
        "E": JobState.RUNNING,       # exiting: ending, the outcome is not known yet
        "B": JobState.RUNNING,       # an array job that has begun
        "S": JobState.RUNNING,       # suspended: keeps its place
        "U": JobState.RUNNING,       # suspended, workstation busy (PBS Pro)
        # finished; Exit_status says how.  M (moved to another server) is left
        # out on purpose: this server no longer follows the job.
        "F": JobState.COMPLETED,     # PBS Pro history
        "X": JobState.COMPLETED,     # PBS Pro: a finished subjob
        "C": JobState.COMPLETED,     # TORQUE (and the Slurm wrappers)
    }
    #: negative exit statuses: PBS ended the job
    pbs_codes = {-29: JobState.TIMEOUT, -20: JobState.NODE_FAIL}

    def snippet_values(self):
        return dict(Scheduler.snippet_values(self), queue_options=code(self.qstat_first))

    def parse_status(self, text):
        """{id: (state, code)} from ``qstat -f`` job blocks (text or TORQUE's XML) and the ``@ids`` line."""
        asked, jobs = [], []
        for line in text.splitlines():
            if line.startswith("@ids "):
                asked = [i for i in line[5:].strip().split(",") if i]
        if "<Job>" in text:
            for block in XML_JOB.findall(text):
                attrs = {k.lower(): v.strip() for k, v in XML_FIELD.findall(block)}
                for kind in ("resources_used", "Resource_List"):
                    section = re.search(r"<%s>(.*?)</%s>" % (kind, kind), block, re.S)
                    walltime = XML_WALLTIME.search(section.group(1)) if section else None
                    if walltime:
                        attrs["%s.walltime" % kind.lower()] = walltime.group(1).strip()
                if attrs.get("job_id"):
                    jobs.append((attrs.pop("job_id"), attrs))
        else:
            for line in text.splitlines():
                m = JOB_ID_LINE.match(line)
                a = ATTRIBUTE.match(line) if jobs and not m else None
                if m:
                    jobs.append((m.group(1), {}))
                elif a:
                    jobs[-1][1].setdefault(a.group(1).lower(), a.group(2).strip())
        found = {}
        for job_id, attrs in jobs:
            state = self.states.get(attrs.get("job_state", "").upper())
            code = None
            if state is JobState.COMPLETED:
                state, code = self.finished_state(attrs)
            if state is not None:            # finished with no word on how: left to the marker
                found.setdefault(self.match_id(job_id, asked), (state, code))
        return found

    @staticmethod
    def match_id(job_id, asked):
        """The id hpcdo asked about that ``job_id`` is (same sequence number), else ``job_id``."""
        if job_id in asked or not asked:
            return job_id
        number = job_id.split(".")[0]
        same = [i for i in asked if i.split(".")[0] == number]
        return same[0] if len(same) == 1 else job_id

    def finished_state(self, attrs):
        """(JobState, shell-style exit code) of a finished job from its Exit_status and walltimes."""
        status = to_int(attrs.get("exit_status"))
        if status is None:
            return None, None
        limit = seconds(attrs.get("resource_list.walltime"))
        used = seconds(attrs.get("resources_used.walltime"))
        ran_out = limit is not None and used is not None and used >= limit
        if status > 256:                     # killed by signal status - 256
            code = SIGNALLED + status - 256
            if ran_out:
                return JobState.TIMEOUT, code
            if status - 256 in (2, 9, 15):   # qdel: SIGTERM, then SIGKILL
                return JobState.CANCELLED, code
            return JobState.FAILED, code
        if status < 0:
            state = self.pbs_codes.get(status)
            if state is None:
                state = JobState.TIMEOUT if ran_out else JobState.FAILED
            return state, status
        if status == 0:
            return JobState.COMPLETED, 0
        return (JobState.TIMEOUT if ran_out and status >= SIGNALLED else JobState.FAILED), status


class Torque(PBS):
    """TORQUE (and the Slurm PBS wrappers): ``-l nodes=N:ppn=C``; no history flag for qstat."""

    name = "torque"
    template = "torque.sh.j2"
    qstat_first = "-f"
    pbs_codes = {-11: JobState.TIMEOUT}
