"""One machine for one invocation: its connection, its scheduler, what is on it.

The session asks the machine once, in one batched script, for every stamp
and every job of every recipe (the *probe*), and keeps the answer.  Each
step's up-to-date check then compares locally computed signatures with that
answer, so checking a whole project costs one round trip.  Steps that run
update the session's view with what they wrote, so the checks of later
steps in the same invocation need no further round trip.

Waiting for jobs goes through :class:`JobMonitor`: one poll asks about all
of the machine's unfinished jobs at once, and all waiting tasks share it.
"""

import json
import threading
import time

from . import HpcdoError, RemoteError
from . import schedulers
from .remote import scripts
from .remote.agent import AgentRemote
from .remote.connection import LocalRemote, SSHRemote
from .schedulers.base import JobState, combine


def make_remote(machine):
    """The machine's one connection, with its ``shell_setup`` lines put before every script."""
    if machine.is_local:
        remote = LocalRemote(machine.name)
    elif machine.persist:
        params = {"host": machine.host, "user": machine.user, "port": int(machine.port or 22),
                  "identity_file": machine.identity_file, "known_hosts": machine.known_hosts}
        remote = AgentRemote(params, machine.persist, machine.name)
    else:
        remote = SSHRemote(machine.host, user=machine.user, port=machine.port,
                           identity_file=machine.identity_file, known_hosts=machine.known_hosts,
                           name=machine.name)
    remote.preamble = "".join(line + "\n" for line in machine.shell_setup or [])
    return remote


#: the longest one scheduler query (squeue, qstat ...) may take, seconds
QUERY_TIMEOUT = 30


class Session:
    def __init__(self, machine):
        self.machine = machine
        self.scheduler = schedulers.get(machine.scheduler)
        self.remote = make_remote(machine)
        self.deployments = []
        self._lock = threading.RLock()
        self._probed = False
        self._stamps = {}
        self._jobs = {}
        self._queue = {}
        self._probe_error = None
        #: run key -> job id, for runs the batch submitted in this invocation
        self.batched = {}
        self.monitor = JobMonitor(self)

    # -- the probe --------------------------------------------------------
    def start_connect(self):
        """Begin connecting in the background; a failure is reported by the first command."""
        def connect_quietly():
            try:
                self.remote.connect()
            except Exception:
                pass
        threading.Thread(target=connect_quietly, name="hpcdo-connect", daemon=True).start()

    def start_probe(self):
        """Begin connecting and probing in the background.

        The connection's handshake and the probe are mostly waiting on the
        network; started while doit loads and orders its tasks, that wait
        overlaps with local work instead of adding to it.  The first check
        that needs the answer waits for it (or gets its error).
        """
        def probe_quietly():
            try:
                self.probe()
            except Exception:
                pass         # probe() remembers it; the first check reports it
        self._prefetch = threading.Thread(target=probe_quietly, name="hpcdo-probe", daemon=True)
        self._prefetch.start()

    def probe(self):
        """Ask the machine for all stamps and jobs, once per invocation."""
        with self._lock:
            if self._probed:
                return
            if self._probe_error is not None:
                raise self._probe_error
            try:
                self._run_probe()
            except HpcdoError as exc:
                self._probe_error = exc
                raise

    def _run_probe(self):
        with self._lock:
            stamps, runs, heads = [], [], []
            for dep in self.deployments:
                s, r = dep.probe_items()
                stamps += s
                runs += r
                heads += dep.probe_heads()
            script = scripts.probe_script(self.machine.remote_root, stamps, runs, self.scheduler, heads,
                                          query_timeout=self.query_timeout())
            # a git login must not show in ``ps``: then the script goes by stdin
            result = self.remote.run(script, what="probe", private=any(h[3] is not None for h in heads))
            self._stamps, self._jobs, self._queue = scripts.parse_probe(result.text, self.scheduler, runs)
            self._probed = True

    def query_timeout(self):
        """Seconds one scheduler query may take before it counts as unanswered.

        A wedged ``squeue`` must not hang the probe; a wait bears unanswered
        queries for ``scheduler_timeout`` in all.
        """
        return max(1, min(QUERY_TIMEOUT, int(float(self.machine.scheduler_timeout))))

    def stamp(self, key):
        """The stamp ``key`` as a dict, or None when the machine has none (or its product is gone)."""
        self.probe()
        with self._lock:
            text = self._stamps.get(key)
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def set_stamp(self, key, value):
        with self._lock:
            self._stamps[key] = json.dumps(value) if value is not None else None

    def job(self, key):
        """What is known of the run ``key``: sig, id, exit, fingerprint, state, code."""
        self.probe()
        with self._lock:
            info = dict(self._jobs.get(key) or {"sig": "", "id": "", "exit": "", "fingerprint": "", "tries": ""})
            state, code = combine(info["id"], info["exit"], *self._queue.get(info["id"], (None, None)))
            if info.get("cancelled") and state not in (JobState.COMPLETED, JobState.NONE) and not state.active:
                state = JobState.CANCELLED      # ``doit cancel`` marked it
        info["state"], info["code"] = state, code
        return info

    def active_jobs(self):
        """(run name, job id) of the jobs this call knows to be pending or running, asking nothing."""
        if not self._probed:
            return []
        found = []
        for dep in self.deployments:
            for run in dep.recipe.runs.values():
                info = self.job(dep.run_key(run))
                if info["id"] and info["state"].active:
                    found.append((run.name, info["id"]))
        return found

    def set_job(self, key, info, queue_state=None):
        with self._lock:
            self._jobs[key] = {k: info.get(k, "") for k in ("sig", "id", "exit", "fingerprint", "cancelled",
                                                            "tries")}
            if queue_state is not None and info.get("id"):
                self._queue[info["id"]] = (queue_state, None)

    def update_from_poll(self, jobs, queue):
        with self._lock:
            self._jobs.update(jobs)
            for job_id in [j.get("id") for j in jobs.values()]:
                if job_id:
                    self._queue.pop(job_id, None)
            self._queue.update(queue)

    def stale_runs(self, keys):
        """(deployment, run) pairs among run ``keys`` whose submit step is stale."""
        return [(dep, run) for dep in self.deployments for run in dep.recipe.runs.values()
                if dep.run_key(run) in keys and not dep.submit_current(run)]

    def submit_batch(self, keys):
        """Submit every stale run in one remote command; each submit task then reports its own.

        Runs that cannot go in the batch (a job for older inputs still
        running, another invocation holding the lock) are left to their own
        submit task, which says why or retries.
        """
        requests = {}
        for dep, run in self.stale_runs(keys):
            try:
                request = dep.submit_request(run, self.job(dep.run_key(run)))
            except HpcdoError:
                continue
            requests[request.key] = (dep, run, request)
        if not requests:
            return "nothing to submit"
        answers = self._send(requests, "submit")
        for key, (dep, run, request) in requests.items():
            outcome, detail = answers.get(key, ("missing", ""))
            if outcome in ("submitted", "busy", "changed"):
                if dep.submitted(run, request, outcome, detail):
                    self.batched[key] = detail
        return "submitted %d of %d runs in one command" % (len(self.batched), len(requests))

    def _send(self, requests, verb):
        """Submit ``requests`` ({key: (dep, run, SubmitRequest)}) in one command; the script's answers.

        By stdin: jobscripts carry values other users of the machine must not see.
        """
        script = scripts.submit_script(self.machine.remote_root, [r for _d, _r, r in requests.values()],
                                       self.scheduler)
        result = self.remote.run(script, what="%s %d runs" % (verb, len(requests)), private=True)
        return scripts.parse_submit(result.text)

    def cancel(self, pairs):
        """Cancel the pending or running jobs of the (deployment, run) ``pairs``, in one command.

        The jobscript's TERM trap leaves an exit marker, and the scheduler
        reports the job cancelled; the next call submits the run again.
        """
        found = []
        for dep, run in pairs:
            info = self.job(dep.run_key(run))
            if info["state"].active:
                found.append((run.name, dep.run_dir(run), info["id"]))
        if not found:
            return "no job of %s is pending or running" % ", ".join(run.name for _d, run in pairs)
        self.remote.run(scripts.cancel_script(self.machine.remote_root, [(d, i) for _r, d, i in found],
                                              self.scheduler), what="cancel %d jobs" % len(found))
        return "\n".join("cancelled run %s (job %s)" % (r, i) for r, _d, i in found)

    def retry(self, pairs):
        """Submit again the (deployment, run) ``pairs`` whose job for their current inputs failed.

        A run whose program failed is not submitted again by itself (it would
        fail the same way); this is how the user says it should be.  Runs with
        a job queued, running or completed, and runs whose inputs changed
        (the pipeline submits those anyway), are left alone and said so.
        """
        lines, requests = [], {}
        for dep, run in pairs:
            info = self.job(dep.run_key(run))
            state = info["state"]
            if state is JobState.NONE:
                lines.append("run %s was never submitted: fetch_results submits it" % run.name)
            elif state.active or state.done:
                lines.append("run %s: job %s is %s; nothing to retry" % (run.name, info["id"], state.value))
            elif info["sig"] != dep.submit_sig(run):
                lines.append("run %s: its inputs changed since job %s; fetch_results submits it" % (
                    run.name, info["id"]))
            else:
                request = dep.submit_request(run, info, fresh=True)
                requests[request.key] = (dep, run, request)
        if requests:
            answers = self._send(requests, "retry")
            for key, (dep, run, request) in requests.items():
                outcome, detail = answers.get(key, ("error", "no answer from the submit script"))
                if dep.submitted(run, request, outcome, detail):
                    lines.append("run %s: submitted job %s; fetch_results waits for it and fetches its "
                                 "results" % (run.name, detail))
                else:
                    lines.append("run %s: another hpcdo is submitting it (%s); not submitted" % (
                        run.name, outcome))
        return "\n".join(lines)

    def close(self):
        self.remote.close()


class JobMonitor:
    """Wait for jobs with one batched, backed-off poll shared by all waiters."""

    def __init__(self, session):
        self.session = session
        self._tracked = {}            # key -> (rundir, patterns)
        self._poll_lock = threading.Lock()
        self._generation = 0
        self._lost_seen = {}

    def track(self, key, rundir, patterns):
        self._tracked[key] = (rundir, list(patterns))

    def wait(self, key, timeout=None):
        """Block until the job of ``key`` has ended; return its job info."""
        machine = self.session.machine
        interval = float(machine.poll_interval)
        start = time.monotonic()
        unknown_since = None
        while True:
            info = self.session.job(key)
            state = info["state"]
            if state is JobState.UNKNOWN:
                unknown_since = unknown_since or time.monotonic()
                if time.monotonic() - unknown_since > float(machine.scheduler_timeout):
                    raise RemoteError(
                        "the scheduler on %s has not answered for %d s; job %s may still be running "
                        "and is not submitted again: call again later"
                        % (machine.name, machine.scheduler_timeout, info["id"]))
            else:
                unknown_since = None
            if state is JobState.LOST and self._lost_seen.get(key, 0) < 2:
                pass          # the marker may not be visible yet (shared filesystems lag)
            elif not state.active:
                return info
            if timeout is not None and time.monotonic() - start > timeout:
                raise RemoteError("gave up waiting for run %s after %d s" % (key, timeout))
            seen = self._generation
            with self._poll_lock:
                if self._generation != seen:
                    continue          # another thread polled while we queued
                time.sleep(interval)
                self._poll()
            interval = min(interval * 1.5, float(machine.poll_max))

    def refresh(self, key):
        """Look again at one run now (after another invocation touched it)."""
        with self._poll_lock:
            self._poll(only=key)

    def _poll(self, only=None):
        session = self.session
        active = []
        for key, (rundir, patterns) in self._tracked.items():
            info = session.job(key)
            if key == only or (only is None and (info["state"].active or info["state"] is JobState.LOST)):
                active.append((key, rundir, patterns))
        if not active:
            self._generation += 1
            return
        script = scripts.poll_script(session.machine.remote_root, active, session.scheduler,
                                     query_timeout=session.query_timeout())
        result = session.remote.run(script, what="poll %d jobs" % len(active))
        _stamps, jobs, queue = scripts.parse_probe(result.text, session.scheduler, active)
        session.update_from_poll(jobs, queue)
        for key in jobs:
            if session.job(key)["state"] is JobState.LOST:
                self._lost_seen[key] = self._lost_seen.get(key, 0) + 1
            else:
                self._lost_seen.pop(key, None)
        self._generation += 1
