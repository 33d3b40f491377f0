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
            state = info.state
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
            if key == only or (only is None and (info.state.active or info.state is JobState.LOST)):
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
            if session.job(key).state is JobState.LOST:
                self._lost_seen[key] = self._lost_seen.get(key, 0) + 1
            else:
                self._lost_seen.pop(key, None)
        self._generation += 1
        if events.listening():
            for key, _rundir, _patterns in active:
                info = session.job(key)
                events.emit("job", run=key.rpartition("/")[2], id=info.id, state=info.state.value)
