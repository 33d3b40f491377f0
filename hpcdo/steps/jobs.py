"""A machine's jobs once submitted: waiting for them, cancelling them, retrying them.

One :class:`Jobs` per machine and invocation.  Waiting goes through one
:class:`hpcdo.steps.monitor.JobMonitor`, whose batched poll all waiters
share.  A job the machine ended (node failure, pre-emption, lost) is
submitted again by itself up to the machine's ``retries``; one the program
ended waits for the user (new inputs, or ``doit retry``).
"""

import sys

from .. import HpcdoError
from ..remote import scripts
from ..schedulers.base import JobState
from .monitor import JobMonitor
from .submit import MACHINE_FAULTS, Submit


class Jobs:
    """The jobs of every target on ``session``'s machine; :attr:`submit` submits them."""

    def __init__(self, session):
        self.session = session
        self.machine = session.machine
        self.monitor = JobMonitor(session)
        self.submit = Submit(session, self.monitor)

    def wait_current(self, target, run):
        info = self.session.job(target.run_key(run))
        sig = target.submit_sig(run)
        return bool(sig) and info.sig == sig and info.state.done

    def why_wait(self, target, run):
        info = self.session.job(target.run_key(run))
        if info.state.active:
            return "job %s is %s" % (info.id, info.state.value)
        if info.id and not info.state.done:
            return self.failure_line(target, run, info)
        return "run %s has no completed job for its current inputs" % run.name

    def do_wait(self, target, run):
        key = target.run_key(run)
        self.monitor.track(key, target.run_dir(run), run.outputs)
        while True:
            info = self.monitor.wait(key)
            if info.state.done:
                return "job %s completed" % info.id
            if not (info.state in MACHINE_FAULTS and info.sig == target.submit_sig(run)
                    and self.submit.retries_left(info)):
                break
            # the machine lost the job, not the program: submit it again now,
            # and say so where the user sees it whatever the verbosity
            lost = "hpcdo: run %s: job %s ended %s (the machine ended it, not the program); " % (
                run.name, info.id, info.state.value.upper())
            done = self.submit.submit_one(target, run)
            sys.stderr.write(lost + done.replace("submitted job", "submitted it again as job") + "\n")
            sys.stderr.flush()
        tail = self.session.remote.run(scripts.tail_script(self.machine.remote_root, target.run_dir(run)),
                                       what="tail " + run.name, check=False).text.rstrip()
        if tail:
            sys.stderr.write("last lines of run %s's job.out:\n%s\n" % (run.name, "\n".join(
                "  " + line for line in tail.splitlines())))
        raise HpcdoError(self.failure_line(target, run, info))

    def failure_line(self, target, run, info):
        """One line: how the run's job ended, where its log is, and what happens next."""
        state = info.state
        code = "" if info.code is None else " with exit code %s" % info.code
        head = "run %s: job %s on %s ended %s%s; log: %s" % (
            run.name, info.id, self.machine.name, state.value.upper(), code, target.log_path(run))
        retry = "doit machine=%s retry %s" % (self.machine.name, run.name)
        if state is JobState.CANCELLED:
            return head + "; the next call submits it again"
        if state in MACHINE_FAULTS:
            return head + "; submitted %s times for these inputs, so not again by itself: %s" % (
                info.tries or 1, retry)
        return head + "; not submitted again for the same inputs: change them, or %s" % retry

    def active_jobs(self):
        """(run name, job id) of the jobs this call knows to be pending or running, asking nothing."""
        if not self.session.probed:
            return []
        found = []
        for dep in self.session.targets:
            for run in dep.recipe.runs.values():
                info = self.session.job(dep.run_key(run))
                if info.id and info.state.active:
                    found.append((run.name, info.id))
        return found

    def cancel(self, pairs):
        """Cancel the pending or running jobs of the (target, run) ``pairs``, in one command.

        The jobscript's TERM trap leaves an exit marker, and the scheduler
        reports the job cancelled; the next call submits the run again.
        """
        found = []
        for dep, run in pairs:
            info = self.session.job(dep.run_key(run))
            if info.state.active:
                found.append((run.name, dep.run_dir(run), info.id))
        if not found:
            return "no job of %s is pending or running" % ", ".join(run.name for _d, run in pairs)
        self.session.remote.run(scripts.cancel_script(self.machine.remote_root, [(d, i) for _r, d, i in found],
                                              self.session.scheduler), what="cancel %d jobs" % len(found))
        return "\n".join("cancelled run %s (job %s)" % (r, i) for r, _d, i in found)

    def retry(self, pairs):
        """Submit again the (target, run) ``pairs`` whose job for their current inputs failed.

        A run whose program failed is not submitted again by itself (it would
        fail the same way); this is how the user says it should be.  Runs with
        a job queued, running or completed, and runs whose inputs changed
        (the pipeline submits those anyway), are left alone and said so.
        """
        lines, requests = [], {}
        for dep, run in pairs:
            info = self.session.job(dep.run_key(run))
            state = info.state
            if state is JobState.NONE:
                lines.append("run %s was never submitted: fetch_results submits it" % run.name)
            elif state.active or state.done:
                lines.append("run %s: job %s is %s; nothing to retry" % (run.name, info.id, state.value))
            elif info.sig != dep.submit_sig(run):
                lines.append("run %s: its inputs changed since job %s; fetch_results submits it" % (
                    run.name, info.id))
            else:
                request = self.submit.submit_request(dep, run, info, fresh=True)
                requests[request.key] = (dep, run, request)
        if requests:
            answers = self.submit.send(requests, "retry")
            for key, (dep, run, request) in requests.items():
                outcome, detail = answers.get(key, ("error", "no answer from the submit script"))
                if self.submit.submitted(dep, run, request, outcome, detail):
                    lines.append("run %s: submitted job %s; fetch_results waits for it and fetches its "
                                 "results" % (run.name, detail))
                else:
                    lines.append("run %s: another hpcdo is submitting it (%s); not submitted" % (
                        run.name, outcome))
        return "\n".join(lines)
