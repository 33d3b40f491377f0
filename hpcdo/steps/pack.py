"""Runs waiting for a place in the user's queue (the machine's ``max_jobs``).

With ``max_jobs`` the submit script counts the user's jobs in the queue
and submits only into the free places; the runs it could not place answer
``@deferred`` and wait here, in the order they were asked for.  The
:class:`hpcdo.steps.monitor.JobMonitor` sends them again in each of its
polls (:meth:`Backlog.script` goes in front of the poll, in the same remote
command), so the campaign still costs one remote command per round, and
the runs are submitted as the jobs before them end.  A run is never in
the backlog and submitted at once: the script's per-run lock and ``job.id``
check hold for every round, as for the first.
"""

import threading

from .. import RemoteError
from ..remote import scripts


def max_jobs(machine):
    """The machine's ``max_jobs`` (0: no limit)."""
    return int(getattr(machine, "max_jobs", 0) or 0)


class Backlog:
    """The runs of one machine waiting for a free place among ``max_jobs``."""

    def __init__(self, submit):
        self.submit = submit
        self.session = submit.session
        self._lock = threading.Lock()
        self._waiting = {}            # key -> (target, run, request), in the order asked
        self.failed = {}              # key -> why a later round could not submit it
        #: runs another invocation submitted meanwhile (@changed): the next poll reads their markers
        self.recheck = set()
        #: rounds that submitted at least one run (a waiter polls sooner after one)
        self.rounds = 0

    def __contains__(self, key):
        with self._lock:
            return key in self._waiting

    def __len__(self):
        with self._lock:
            return len(self._waiting)

    def add(self, key, item):
        with self._lock:
            self._waiting[key] = item
            self.failed.pop(key, None)

    def limit(self):
        return max_jobs(self.session.machine)

    def known_active(self):
        """The jobs this call knows to be queued or running on the machine (a floor under the count)."""
        ids = set()
        for dep in self.session.targets:
            for run in dep.recipe.runs.values():
                info = self.session.job(dep.run_key(run))
                if info.id and info.state.active:
                    ids.add(info.id)
        return len(ids)

    def script(self):
        """The submit script for the first waiting runs (at most ``max_jobs``), or None if none wait."""
        with self._lock:
            items = list(self._waiting.values())[:max(1, self.limit())]
        if not items:
            return None, []
        requests = [request for _t, _r, request in items]
        return scripts.submit_script(self.session.machine.remote_root, requests, self.session.scheduler,
                                     max_jobs=self.limit(), known=self.known_active()), items

    def take(self, items, answers):
        """Record a round's answers: submitted runs leave the backlog, as do those it cannot submit."""
        placed = 0
        for target, run, request in items:
            key = request.key
            outcome, detail = answers.get(key, ("missing", ""))
            if outcome in ("deferred", "missing", "busy"):
                continue              # busy: another hpcdo holds the run's lock; the next round sees
            with self._lock:
                self._waiting.pop(key, None)
            if outcome == "changed":
                self.recheck.add(key)
            try:
                if self.submit.submitted(target, run, request, outcome, detail):
                    placed += 1
            except RemoteError as exc:
                self.failed[key] = str(exc)
        if placed:
            self.rounds += 1
        return placed
