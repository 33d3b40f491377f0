"""Waiting for jobs: one batched, backed-off poll shared by every waiting task."""

import threading
import time

from .. import RemoteError, events
from ..remote import scripts
from ..schedulers.base import JobState


class JobMonitor:
    """Wait for jobs with one batched, backed-off poll shared by all waiters."""

    def __init__(self, session):
        self.session = session
        self._tracked = {}            # key -> (rundir, patterns)
        self._poll_lock = threading.Lock()
        self._generation = 0
        self._lost_seen = {}
        #: the runs waiting for a place in the queue (max_jobs), sent again with each poll
        self.backlog = None

    def track(self, key, rundir, patterns):
        self._tracked[key] = (rundir, list(patterns))

    def wait(self, key, timeout=None):
        """Block until the job of ``key`` has ended; return its job info."""
        machine = self.session.machine
        interval = float(machine.poll_interval)
        start = time.monotonic()
        unknown_since = None
        rounds = self.backlog.rounds if self.backlog is not None else 0
        while True:
            info = self.session.job(key)
            state = info.state
            queued = self._queued(key)
            if state is JobState.UNKNOWN:
                unknown_since = unknown_since or time.monotonic()
                if time.monotonic() - unknown_since > float(machine.scheduler_timeout):
                    raise RemoteError(
                        "the scheduler on %s has not answered for %d s; job %s may still be running "
                        "and is not submitted again: call again later"
                        % (machine.name, machine.scheduler_timeout, info.id))
            else:
                unknown_since = None
            if state is JobState.LOST and self._lost_seen.get(key, 0) < 2:
                pass          # the marker may not be visible yet (shared filesystems lag)
            elif not state.active and not queued:
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
            if self.backlog is not None and self.backlog.rounds != rounds:
                # a round placed runs: jobs are ending, so look again soon
                rounds, interval = self.backlog.rounds, float(machine.poll_interval)

    def _queued(self, key):
        """True while ``key`` waits in the backlog, or its submission by another call is to be read;
        a round that could not submit it raises that error here."""
        backlog = self.backlog
        if backlog is None:
            return False
        if key in backlog.failed:
            raise RemoteError(backlog.failed.pop(key))
        return key in backlog or key in backlog.recheck

    def refresh(self, key):
        """Look again at one run now (after another invocation touched it)."""
        with self._poll_lock:
            self._poll(only=key)

    def _poll(self, only=None):
        session = self.session
        backlog = self.backlog if only is None else None
        recheck = set(backlog.recheck) if backlog is not None else set()
        active = []
        for key, (rundir, patterns) in self._tracked.items():
            info = session.job(key)
            if key == only or key in recheck or (only is None and (info.state.active or info.state is JobState.LOST)):
                active.append((key, rundir, patterns))
        submit, items = backlog.script() if backlog is not None else (None, [])
        if not active and not submit:
            self._generation += 1
            return
        # the runs waiting for a place go first, in the same command as the poll
        script = scripts.poll_script(session.machine.remote_root, active, session.scheduler,
                                     query_timeout=session.query_timeout()) if active else ""
        what = "poll %d jobs" % len(active)
        if submit:
            script, what = submit + script, "submit %d of %d waiting runs, %s" % (len(items), len(backlog), what)
        result = session.remote.run(script, what=what, private=bool(submit))
        if submit:
            backlog.take(items, scripts.parse_submit(result.text))
            backlog.recheck -= recheck
        _stamps, jobs, queue = scripts.parse_probe(result.text, session.scheduler, active)
        session.update_from_poll(jobs, queue)
        for key in jobs:
            if session.job(key).state is JobState.LOST:
                self._lost_seen[key] = self._lost_seen.get(key, 0) + 1
            else:
                self._lost_seen.pop(key, None)
        self._generation += 1
        if events.listening():
            for key, _rundir, _patterns in active:
                info = session.job(key)
                events.emit("job", run=key.rpartition("/")[2], id=info.id, state=info.state.value)
