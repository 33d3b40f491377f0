"""Fujitsu PJM (Technical Computing Suite job manager; RIKEN Fugaku): pjsub, pjstat, pjdel.

Written from Fugaku's user guide (R-CCS, "Job execution" and "Job execution command
options", https://www.r-ccs.riken.jp/fugaku/docs/user-guide/) and the formats PJM's
commands print as public Fugaku tooling records them; no PJM was at hand, so the
snippets are tested against those documented outputs only (tests/data/schedulers/pjm/),
as LSF's are.

* ``pjsub job.sh`` reads the script's ``#PJM`` lines and prints "[INFO] PJM 0000 pjsub
  Job 12345 submitted."; a refusal is an "[ERR.] PJM nnnn pjsub ..." line (some with exit
  status 0, so the id is what tells).
* ``pjstat -v --choose jid,st,ec,pc,sn`` lists unfinished jobs, ``pjstat -H`` the finished
  ones, with the job id, state (ST), exit code (EC), PJM code (PC) and signal (SN); both
  are asked in the one status query, filtered to the ids (``--filter jid=a+b``).
  unverified: that ``--filter`` and ``--choose`` are taken together with ``-H``.
* States: ACC (accepted), QUE (queued), RNA (acquiring resources) and HLD (held) wait;
  RNP (prologue), RUN, RNE (epilogue), RNO (ending), SPP/SPD/RSM (suspending, suspended,
  resuming) hold the nodes; EXT ended (its exit code tells how); CCL was cancelled; ERR
  and RJT failed or were refused.
* At the elapse limit every process of the job gets SIGXCPU, and SIGKILL 10 s later
  (unverified: seen in Fugaku users' tooling, not the guide): a job whose signal is
  SIGXCPU (24) ran out of time.  The jobscript traps XCPU and leaves its exit marker.
* ``pjdel id ...`` cancels (the base cancel snippet).
"""

from .base import JobState, Scheduler, to_int

#: the signal PJM sends at the elapse limit
SIGXCPU = 24


class PJM(Scheduler):
    name = "pjm"
    template = "pjm.sh.j2"
    submit_command, queue_command, cancel_command = "pjsub", "pjstat", "pjdel"
    directive = "#PJM"
    family = "pjm"
    name_limit = 63           # pjsub --name: 63 bytes
    #: Fugaku has no GPUs, and PJM's GPU resource names are site-specific: a run with gpus= is refused
    gpus = False
    states = {
        "ACC": JobState.PENDING, "QUE": JobState.PENDING, "RNA": JobState.PENDING,
        "HLD": JobState.PENDING,
        "RNP": JobState.RUNNING, "RUN": JobState.RUNNING, "RNE": JobState.RUNNING,
        "RNO": JobState.RUNNING, "SPP": JobState.RUNNING, "SPD": JobState.RUNNING,
        "RSM": JobState.RUNNING,
        "EXT": JobState.COMPLETED, "CCL": JobState.CANCELLED,
        "ERR": JobState.FAILED, "RJT": JobState.FAILED,
    }

    def parse_status(self, text):
        """``JOB_ID ST EC PC SN`` rows (header and other lines skipped); the first row of an id wins
        (unfinished jobs are listed before the history)."""
        found = {}
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 2 or not fields[0].isdigit():
                continue
            state = self.states.get(fields[1].upper())
            if state is None:
                continue
            code = to_int(fields[2]) if len(fields) > 2 else None
            signal = to_int(fields[4]) if len(fields) > 4 else None
            if state is JobState.COMPLETED:
                if signal == SIGXCPU:
                    state = JobState.TIMEOUT
                elif code is None or code != 0:
                    state = JobState.FAILED
            elif state is JobState.CANCELLED and signal == SIGXCPU:
                state = JobState.TIMEOUT
            if state in (JobState.PENDING, JobState.RUNNING):
                code = None
            found.setdefault(fields[0], (state, code))
        return found
