"""A machine's jobs: submitting them (batched), waiting for them, cancelling and retrying them.

:meth:`Submit.submit_batch` sends every stale run this call selected in one
remote command; each ``submit:RUN`` task then reports its own answer
(:meth:`Submit.do_submit`), or submits alone when the batch could not take
it.  The submit script (see :mod:`hpcdo.remote.scripts`) holds a lock in
the run directory and submits only if ``job.id`` is still what this call
saw, so two calls never give a run two jobs.

One :class:`Jobs` per machine and invocation.  Waiting goes through one
:class:`hpcdo.steps.monitor.JobMonitor`, whose batched poll all waiters
share.  A job the machine ended (node failure, pre-emption, lost) is
submitted again by itself up to the machine's ``retries``; one the program
ended waits for the user (new inputs, or ``doit retry``).
"""

import os
import sys
import time

from .. import HpcdoError, RemoteError, events
from .. import inputs as input_store
from ..model import Job
from ..remote import scripts
from ..schedulers.base import JobState
from .monitor import JobMonitor
from .pack import Backlog, max_jobs

#: job states that say the machine, not the program, ended the job: such a
#: run is submitted again by itself, up to the machine's ``retries`` times
MACHINE_FAULTS = (JobState.NODE_FAIL, JobState.PREEMPTED, JobState.LOST)

#: job states that say the program itself failed: with the same inputs it
#: would fail again, so it waits for the user (new inputs, or ``retry``)
PROGRAM_FAULTS = (JobState.FAILED, JobState.TIMEOUT)

#: a submission the scheduler did not answer is tried this many times more,
#: after pauses of RETRY_PAUSE, 2x, 4x ... seconds (15 s in all by default)
RETRIES = 3
RETRY_PAUSE = 2.5


class Submit:
    """The submissions to ``session``'s machine; ``monitor`` learns of each job submitted."""

    def __init__(self, session, monitor):
        self.session = session
        self.machine = session.machine
        self.monitor = monitor
        #: run key -> job id, for runs the batch submitted in this invocation
        self.batched = {}
        #: runs waiting for a free place in the queue (max_jobs): the waits submit them
        self.backlog = monitor.backlog = Backlog(self)

    def submit_current(self, target, run):
        """The run has a job for these inputs: queued, running, done, or failed in a way that
        submitting again would not mend (the program's own failure, or retries used up)."""
        info = self.session.job(target.run_key(run))
        sig = target.submit_sig(run)
        if not sig or info.sig != sig:
            return False
        state = info.state
        if state.active or state.done or state in PROGRAM_FAULTS:
            return True
        if state in MACHINE_FAULTS:
            return not self.retries_left(info)
        return False             # cancelled, or never submitted

    def submit_current_here(self, target, run):
        """submit's check: current, and not just submitted by this invocation's batch."""
        return self.submit_current(target, run) and target.run_key(run) not in self.batched

    def retries_left(self, info):
        """How many more times a job the machine lost may be submitted again for the same inputs."""
        return max(0, int(self.machine.retries) + 1 - info.tries_count())

    def why_submit(self, target, run):
        info = self.session.job(target.run_key(run))
        state = info.state
        if not target.submit_sig(run):
            return "the executable is not built yet"
        if not info.id:
            return "run %s was never submitted" % run.name
        if info.sig != target.submit_sig(run):
            return ("the run's inputs changed since job %s (executable, geometry, run settings or "
                    "jobscript)" % info.id)
        if state is JobState.CANCELLED:
            return "job %s was cancelled" % info.id
        if state in MACHINE_FAULTS:
            return "job %s ended %s (the machine, not the program); %d retries left" % (
                info.id, state.value.upper(), self.retries_left(info))
        return "job %s is %s" % (info.id, state.value)

    def submit_request(self, target, run, info, fresh=False):
        """What the submit script needs for ``run``, or an error if it must not be submitted now.

        ``fresh``: the user asked for this submission (``retry``), so the
        count of jobs in a row for these inputs starts again.
        """
        sig = target.submit_sig(run)
        if not sig:
            raise HpcdoError("run %s: the executable's hash is unknown; compile first" % run.name)
        if info.sig != sig and info.state.active:
            raise HpcdoError(
                "run %s: job %s for earlier inputs is still %s on %s; wait for it or cancel it "
                "before submitting the new inputs" % (run.name, info.id, info.state.value,
                                                       self.machine.name))
        links = [("../../build/" + target.recipe.executable, os.path.basename(target.recipe.executable))]
        if run.geometry:
            links.append(("../../geometry/%s/%s" % (run.geometry, target.geometry_file(run.geometry)),
                          target.geometry_file(run.geometry)))
        links += input_store.links(target, run)
        binary = getattr(self.session.stamp(target.keys["compile"]), "binary", None)
        request = scripts.SubmitRequest(target.run_key(run), target.run_dir(run), info.id, sig, links,
                                        run.outputs, target.jobscript(run), fresh=fresh, binary=binary,
                                        build_stamp="../../build/.hpcdo-compile", recipe_dir=target.dir)
        same = not fresh and info.id and info.sig == sig
        request.tries = info.tries_count() + 1 if same else 1
        return request

    def submitted(self, target, run, request, outcome, detail):
        """Record one answer of the submit script; True if the run now has its job."""
        key = target.run_key(run)
        self.monitor.track(key, target.run_dir(run), run.outputs)
        if outcome == "submitted":
            self.session.set_job(key, Job(sig=request.sig, id=detail, tries=str(request.tries)),
                                 JobState.PENDING)
            events.emit("job", run=run.name, id=detail, state=JobState.PENDING.value, walltime=run.walltime)
            return True
        if outcome == "error" and self.session.scheduler.transient(detail):
            raise RemoteError("run %s: the scheduler on %s did not answer (%s); nothing was submitted: "
                              "call again when it is back" % (run.name, self.machine.name,
                                                              detail.replace("\n", " ")))
        if outcome == "error":
            raise RemoteError("run %s: submission on %s failed: %s" % (run.name, self.machine.name, detail))
        return False

    def do_submit(self, target, run):
        key = target.run_key(run)
        batched = self.batched.get(key)
        if batched:
            return "submitted job %s (with %d others in one command)" % (batched, len(self.batched) - 1)
        if key in self.backlog:
            return self.deferred_line(run)
        return self.submit_one(target, run)

    def deferred_line(self, run):
        return ("run %s waits for a free place in the queue (max_jobs %d on %s): submitted as jobs end, "
                "while hpcdo waits" % (run.name, max_jobs(self.machine), self.machine.name))

    def submit_one(self, target, run, fresh=False):
        """Submit ``run`` in a command of its own, unless a job for its inputs is already there."""
        key = target.run_key(run)
        away = 0                      # submissions the scheduler did not answer
        for attempt in range(30):
            info = self.session.job(key)
            sig = target.submit_sig(run)
            if sig and info.sig == sig and (info.state.active or info.state.done):
                self.monitor.track(key, target.run_dir(run), run.outputs)
                return "job %s for these inputs is already %s" % (info.id, info.state.value)
            if not fresh and self.submit_current(target, run):
                return "job %s for these inputs %s; not submitted again" % (info.id, info.state.value)
            request = self.submit_request(target, run, info, fresh=fresh)
            result = self.session.remote.run(
                scripts.submit_script(self.machine.remote_root, [request], self.session.scheduler,
                                      max_jobs=max_jobs(self.machine), known=self.backlog.known_active()),
                what="submit " + run.name, private=True)
            outcome, detail = scripts.parse_submit(result.text).get(
                key, ("error", result.text.strip() or "no answer from the submit script"))
            if outcome == "deferred":
                self.monitor.track(key, target.run_dir(run), run.outputs)
                self.backlog.add(key, (target, run, request))
                return self.deferred_line(run)
            if outcome == "error" and self.session.scheduler.transient(detail) and away < RETRIES:
                # the scheduler is away (restarting, overloaded): nothing was
                # recorded; try again after a growing pause
                away += 1
                time.sleep(RETRY_PAUSE * 2 ** (away - 1))
                continue
            if self.submitted(target, run, request, outcome, detail):
                return "submitted job %s" % detail
            # busy or changed: another invocation is submitting or has just
            # submitted this run; look again at what the machine now holds.
            if outcome == "busy":
                time.sleep(min(0.5 * (attempt + 1), 5))
            self.monitor.refresh(key)
        raise RemoteError("run %s: another hpcdo kept the run's submission lock; try again later" % run.name)

    def stale_runs(self, keys):
        """(target, run) pairs among run ``keys`` whose submit step is stale."""
        return [(dep, run) for dep in self.session.targets for run in dep.recipe.runs.values()
                if dep.run_key(run) in keys and not self.submit_current(dep, run)]

    def submit_batch(self, keys):
        """Submit every stale run in one remote command; each submit task then reports its own.

        Runs that cannot go in the batch (a job for older inputs still
        running, another invocation holding the lock) are left to their own
        submit task, which says why or retries.
        """
        requests = {}
        for dep, run in self.stale_runs(keys):
            try:
                request = self.submit_request(dep, run, self.session.job(dep.run_key(run)))
            except HpcdoError:
                continue
            requests[request.key] = (dep, run, request)
        if not requests:
            return "nothing to submit"
        answers = self.send(requests, "submit")
        for key, (dep, run, request) in requests.items():
            outcome, detail = answers.get(key, ("missing", ""))
            if outcome == "deferred":
                self.monitor.track(key, dep.run_dir(run), run.outputs)
                self.backlog.add(key, (dep, run, request))
            elif outcome in ("submitted", "busy", "changed"):
                if self.submitted(dep, run, request, outcome, detail):
                    self.batched[key] = detail
        waiting = " (%d wait for a free place: max_jobs %d)" % (len(self.backlog), max_jobs(self.machine)) \
            if len(self.backlog) else ""
        return "submitted %d of %d runs in one command%s" % (len(self.batched), len(requests), waiting)

    def send(self, requests, verb):
        """Submit ``requests`` ({key: (target, run, SubmitRequest)}) in one command; the script's answers.

        By stdin: jobscripts carry values other users of the machine must not see.
        """
        script = scripts.submit_script(self.machine.remote_root, [r for _d, _r, r in requests.values()],
                                       self.session.scheduler, max_jobs=max_jobs(self.machine),
                                       known=self.backlog.known_active())
        result = self.session.remote.run(script, what="%s %d runs" % (verb, len(requests)), private=True)
        return scripts.parse_submit(result.text)


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
        if events.listening():
            info = self.session.job(key)
            events.emit("waiting", run=run.name, id=info.id, walltime=run.walltime)
            events.emit("job", run=run.name, id=info.id, state=info.state.value)
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
                if outcome == "deferred":
                    lines.append("run %s: no free place in the queue (max_jobs %d); not submitted: "
                                 "call retry again later" % (run.name, max_jobs(self.machine)))
                elif self.submit.submitted(dep, run, request, outcome, detail):
                    lines.append("run %s: submitted job %s; fetch_results waits for it and fetches its "
                                 "results" % (run.name, detail))
                else:
                    lines.append("run %s: another hpcdo is submitting it (%s); not submitted" % (
                        run.name, outcome))
        return "\n".join(lines)
