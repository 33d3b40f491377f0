"""Grid Engine (SGE 6.x, Son of Grid Engine, Univa/Altair GE): qsub, qstat, qacct, qdel.

One ``qstat -u <user>`` lists all of the user's queued and running jobs;
only the ids it no longer lists are looked up with ``qacct -j`` (one call
each: qacct takes one job per call), skipped where there is no qacct or it
has no record.  Accounting says how a job ended: ``failed`` (0 = ran; 100
"assumedly after job" = the job was killed, by qdel or by an execd-enforced
limit; 37 = qmaster enforced h_rt/h_cpu/h_vmem; others = it never started)
and ``exit_status`` (137 after SIGKILL).  qdel and h_rt both send SIGKILL, so
a kill is a timeout when the job used its whole ``h_rt`` (from ``category``).

States, from sge_status(5): the letters of qstat's state column combine:
d(eletion) E(rror) h(old) r(unning) R(estarted) s/S/T (suspended) t(ransferring)
w(aiting) q(ueued).
"""

from .base import JobState, Scheduler, seconds, to_int

# qacct's "failed" codes that say how a job ended (sge_shepherd(8), accounting(5))
FAILED_RESCHEDULED = 25          # "rescheduling": its host went down, or qmod -rj
FAILED_QMASTER_LIMIT = 37        # "qmaster enforced h_rt, h_cpu, or h_vmem limit"
FAILED_AFTER_JOB = 100           # "assumedly after job": killed (qdel, or a limit the execd enforced)


class SGE(Scheduler):
    name = "sge"
    template = "sge.sh.j2"
    letter_first = True              # qsub: 'job name ... cannot start with a digit'
    submit_command, queue_command, accounting_command, cancel_command = "qsub", "qstat", "qacct", "qdel"
    directive = "#$"
    family = "sge"

    # the usual states; other combinations of the same letters go through state_of
    states = {
        "qw": JobState.PENDING, "hqw": JobState.PENDING, "hRwq": JobState.PENDING,
        "Rq": JobState.PENDING, "hRq": JobState.PENDING,
        "r": JobState.RUNNING, "t": JobState.RUNNING, "Rr": JobState.RUNNING,
        "Rt": JobState.RUNNING, "hr": JobState.RUNNING,
        # suspended (by the user, the queue, or a subordinate queue): still holds its slots
        "s": JobState.RUNNING, "S": JobState.RUNNING, "T": JobState.RUNNING,
        "ts": JobState.RUNNING, "tS": JobState.RUNNING, "tT": JobState.RUNNING,
        "Rs": JobState.RUNNING, "RS": JobState.RUNNING, "RT": JobState.RUNNING,
        # error: the job waits for qmod -cj and never runs on its own
        "Eqw": JobState.FAILED, "Ehqw": JobState.FAILED, "EhRqw": JobState.FAILED,
        # being deleted: ends soon, and accounting then says how
        "dr": JobState.RUNNING, "dt": JobState.RUNNING, "dRr": JobState.RUNNING,
        "dRt": JobState.RUNNING, "ds": JobState.RUNNING, "dS": JobState.RUNNING,
        "dT": JobState.RUNNING, "dqw": JobState.PENDING, "dhqw": JobState.PENDING,
    }

    def state_of(self, letters):
        """JobState of a qstat state word such as ``qw``, ``hRwq``, ``Eqw``, ``dr``; None if it is none."""
        if letters in self.states:
            return self.states[letters]
        if not letters or not set(letters) <= set("dEhrRsStTwqz"):
            return None
        if "E" in letters:
            return JobState.FAILED
        if "q" in letters or "w" in letters:
            return JobState.PENDING
        if set(letters) & set("rtsSTR"):
            return JobState.RUNNING
        return None

    def parse_status(self, text):
        """qstat's job lines, then ``qacct -j`` records (the last record of a job wins)."""
        found, accounted, record = {}, {}, None
        for line in text.splitlines():
            words = line.split()
            if line.startswith("====="):
                record = {}
                continue
            if record is not None:
                if words:
                    record[words[0]] = line.split(None, 1)[1].strip() if len(words) > 1 else ""
                    if words[0] == "jobnumber":
                        accounted[words[1] if len(words) > 1 else ""] = record
                continue
            if len(words) >= 5 and words[0].isdigit():
                state = self.state_of(words[4])
                if state is None:            # a job name with blanks shifts the columns
                    state = next((self.state_of(w) for w in words[5:] if self.state_of(w)), None)
                if state is not None:
                    found.setdefault(words[0], (state, None))
        for job_id, rec in accounted.items():
            if job_id and job_id not in found:
                found[job_id] = self.accounting_state(rec)
        return found

    def accounting_state(self, rec):
        """(JobState, exit code) of one qacct record."""
        failed = to_int(rec.get("failed", "0").split(":")[0]) or 0
        status = rec.get("exit_status", "").split()
        code = to_int(status[0]) if status else None
        limit = None                         # the h_rt the job asked for, from "category"
        category = rec.get("category", "").split()
        for flag, value in zip(category, category[1:]):
            if flag == "-l":
                for res in value.split(","):
                    if res.split("=")[0] == "h_rt":
                        limit = seconds(res.split("=", 1)[1])
        used = seconds(rec.get("ru_wallclock"))
        if failed in (FAILED_QMASTER_LIMIT, FAILED_AFTER_JOB) and None not in (limit, used):
            if used >= limit:
                return JobState.TIMEOUT, code
        if failed == FAILED_QMASTER_LIMIT:
            # h_rt unless the job is known to have ended before its h_rt (then h_cpu, h_vmem)
            return (JobState.FAILED if limit is not None and used is not None else JobState.TIMEOUT), code
        if failed == FAILED_RESCHEDULED:
            return JobState.NODE_FAIL, code
        if failed == FAILED_AFTER_JOB:
            # qdel sends SIGKILL (137); with -notify a SIGTERM may have ended it first
            return (JobState.CANCELLED if code in (137, 143) else JobState.FAILED), code
        if failed:
            return JobState.FAILED, code     # never started: prolog, shell, cwd, output file ...
        return (JobState.COMPLETED, 0) if code == 0 else (JobState.FAILED, code)
