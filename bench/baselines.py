"""The alternatives hpcdo is measured against, built from hpcdo's own parts.

* ``perstep``: what a straightforward doit + fabric dodo.py does: each task
  checks its own state on the machine with its own remote command
  (fabric's ``Connection.run``), over one shared connection; each distinct
  stamp or job is asked for once.
* ``fabsim``: FabSim3's pattern on top of that: a new SSH connection for
  every remote command.
* ``perjob``: submission with one remote command per job instead of one
  for all the runs of an invocation.

A benchmark project selects one with a dodo file that calls :func:`install`
before loading hpcdo's tasks (see ``bench/run.py``).
"""

import shlex
import time

import hpcdo.project
import hpcdo.session
import hpcdo.tasks
from hpcdo import RemoteError
from hpcdo.model import Job
from hpcdo.remote import scripts, trace
from hpcdo.remote.connection import Result
from hpcdo.remote.ssh import SSHRemote
from hpcdo.session import Session


class PerStepSession(Session):
    """No batched probe: every stamp and every job is its own remote command."""

    def probe(self):
        with self._lock:
            if not hasattr(self, "_items"):
                self._items, self._asked = {}, set()
                for target in self.targets:
                    stamps, runs = target.probe_items()
                    for item in stamps:
                        self._items[item[0]] = ("stamp", item)
                    for item in runs:
                        self._items[item[0]] = ("run", item)

    def _ask(self, key):
        self.probe()
        with self._lock:
            if key in self._asked or key not in self._items:
                return
            self._asked.add(key)
            kind, item = self._items[key]
        stamps, runs = ([item], []) if kind == "stamp" else ([], [item])
        script = scripts.probe_script(self.machine.remote_root, stamps, runs, self.scheduler)
        result = self.remote.run(script, what="check " + key)
        found_stamps, records, queue = scripts.parse_probe(result.text, self.scheduler, runs)
        with self._lock:
            self._stamps.update(found_stamps)
            self._jobs.update({key: Job.from_record(record) for key, record in records.items()})
            self._queue.update(queue)

    def stamp(self, key):
        self._ask(key)
        return super().stamp(key)

    def job(self, key):
        self._ask(key)
        return super().job(key)


class FabricRunRemote(SSHRemote):
    """Commands through fabric's ``Connection.run``, as a plain fabric dodo.py would run them.

    Transfers (commands with stdin or a sink) keep hpcdo's own path: the
    baselines differ from hpcdo in how they check, not in how they move files.
    """

    fresh = False      # FabSim3: a new connection for every command

    def run(self, script, stdin=None, sink=None, what="", check=True):
        if stdin is not None or sink is not None:
            return super().run(script, stdin, sink, what, check)
        self._transport()
        start = time.monotonic()
        try:
            out = self._conn.run("sh -c " + shlex.quote(script), hide=True, warn=True, in_stream=False)
        finally:
            trace.record("run", self.host, time.monotonic() - start, 0, 0, what)
        result = Result(out.exited, out.stdout.encode(), out.stderr.encode())
        if self.fresh:
            self.close()
        if check and result.exit_code != 0:
            raise RemoteError("%s failed: %s" % (what, result.tail(5)))
        return result


class FreshConnectionRemote(FabricRunRemote):
    fresh = True


def _remote_factory(cls):
    def make(machine):
        if machine.is_local:
            return hpcdo.session.LocalRemote(machine.name)
        return cls(machine.host, user=machine.user, port=machine.port, identity_file=machine.identity_file,
                   known_hosts=machine.known_hosts, name=machine.name)
    return make


def install(mode):
    """Switch hpcdo to a baseline behaviour for this process."""
    if mode in ("perstep", "fabsim"):
        hpcdo.project.Session = PerStepSession
    if mode == "perstep":
        hpcdo.session.make_remote = _remote_factory(FabricRunRemote)
    if mode == "fabsim":
        hpcdo.session.make_remote = _remote_factory(FreshConnectionRemote)
    if mode == "perjob":
        hpcdo.tasks.batch_scope = lambda words, run_names: set()
    if mode not in ("perstep", "fabsim", "perjob"):
        raise SystemExit("unknown baseline %r" % mode)
