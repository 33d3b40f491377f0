"""Looking into a running job: ``doit machine=X steer RUN`` and ``doit machine=X tail RUN``.

``steer`` forwards a local port to the port a run's program listens on, on
the compute node the scheduler placed it on.  The program says where in its
run directory (``steer.json``: ``{"host": ..., "port": ...}``; lbflow writes
it when run with ``--steer-port``); one command reads it.  The tunnel is
:mod:`hpcdo.remote.tunnel`'s: a TCP connection on the built-in localhost, a
``direct-tcpip`` channel over paramiko (a connection of its own when the
persist agent holds the machine's: the agent relays commands, not ports),
``ssh -W`` through the master with ``transport: openssh``.  It stays until
Ctrl-C, or until the job ends or its program stops publishing the port,
which one small command every :data:`WATCH_EVERY` seconds asks.

``tail`` prints the run's ``job.out`` as it grows, like ``tail -f``, until
the job ends: the machine follows the file for :data:`FOLLOW_SECONDS` per
command (a loop in POSIX sh), then the scheduler is asked whether the job
is still pending or running.  A job that has ended has its whole output
printed once.  Ctrl-C ends either command with one line; the job goes on.
"""

import codecs
import sys
import time

from .. import HpcdoError
from ..config import Machine
from ..remote import tunnel
from ..remote.connection import LocalRemote
from ..remote.openssh import OpenSSHRemote
from ..remote.ssh import SSHRemote
from ..schedulers.base import JobState
from ..session import make_remote

#: seconds the machine follows job.out per command before the job's state is asked again
FOLLOW_SECONDS = 20
#: seconds between the checks that the steered job still runs and still publishes its port
WATCH_EVERY = 2.0
#: seconds a running job's program is given to publish its port before "publishes no port"
PUBLISH_WAIT = 10.0


def _say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _Live:
    """stdout for a remote command's output: each block is shown as it arrives.

    doit puts a text writer of its own in ``sys.stdout`` while a task runs: the
    bytes are decoded on the way (a character split between blocks stays whole).
    """

    def __init__(self, stream=None):
        self.stream = stream
        self.decode = codecs.getincrementaldecoder("utf-8")("replace").decode

    def write(self, block):
        stream = self.stream or sys.stdout
        stream.write(self.decode(block))
        stream.flush()


class Looking:
    """``steer`` and ``tail`` of the runs of one project on its machine."""

    def __init__(self, project):
        self.session = project.session
        self.machine = project.machine
        self.jobs = project.steps.jobs
        self.root = self.machine.remote_root

    def _state(self, target, run, fresh=False):
        """The run's job (from the probe, or asked of the scheduler again when ``fresh``)."""
        key = target.run_key(run)
        if fresh:
            self.jobs.monitor.track(key, target.run_dir(run), run.outputs)
            self.jobs.monitor.refresh(key)
        return self.session.job(key)

    def _never(self, run):
        return HpcdoError("run %s has no job on %s: it was never submitted (doit machine=%s fetch_results "
                          "submits it)" % (run.name, self.machine.name, self.machine.name))

    # -- tail -------------------------------------------------------------------------
    def tail(self, target, run, sink=None):
        """Print the run's job.out as it grows until its job ends; the last line says how it ended."""
        info = self._state(target, run)
        if info.state is JobState.NONE:
            raise self._never(run)
        sink = sink or _Live()
        rundir, offset = target.run_dir(run), 0
        following = info.state.active
        try:
            while True:
                result = self.session.remote.run(
                    tunnel.follow_script(self.root, rundir, offset, FOLLOW_SECONDS if following else 0),
                    sink=sink, what="tail " + run.name, check=False)
                answer = tunnel.parse_follow(result.error_text)
                if answer is None:
                    raise HpcdoError("run %s: cannot read %s on %s: %s" % (
                        run.name, target.log_path(run), self.machine.name, result.tail(3) or "no answer"))
                offset, ended = answer
                if not following:
                    break
                if ended:
                    info = self._state(target, run, fresh=True)
                    break
                info = self._state(target, run, fresh=True)
                following = info.state.active    # gone without its exit marker: once more, then stop
        except KeyboardInterrupt:
            return "\nstopped following run %s; its job %s goes on (doit machine=%s status)" % (
                run.name, info.id, self.machine.name)
        how = "" if info.state.active else " " + info.state.value.upper()
        return "run %s: job %s ended%s on %s (doit machine=%s status)" % (
            run.name, info.id, how, self.machine.name, self.machine.name)

    # -- steer ------------------------------------------------------------------------
    def published(self, target, run):
        """(ended, (host, port) or None): one command reading the run's steer.json and exit marker."""
        result = self.session.remote.run(tunnel.where_script(self.root, target.run_dir(run)),
                                         what="steer " + run.name)
        ended, address, no_run = tunnel.parse_where(result.text)
        if no_run:
            raise HpcdoError("run %s has no run directory on %s (%s)" % (
                run.name, self.machine.name, target.run_dir(run)))
        return ended, address

    def _running(self, target, run):
        """The run's running job, or one line saying why there is none to steer."""
        info = self._state(target, run)
        name = self.machine.name
        if info.state is JobState.NONE:
            raise self._never(run)
        if info.state is JobState.PENDING:
            raise HpcdoError("run %s: job %s is still pending on %s; steer it once it runs (doit machine=%s "
                             "status)" % (run.name, info.id, name, name))
        if not info.state.active:
            raise HpcdoError("run %s: job %s has ended (%s) on %s: nothing is running to steer"
                             % (run.name, info.id, info.state.value.upper(), name))
        return info

    def _address(self, target, run, info):
        """Where the running job listens; it is given PUBLISH_WAIT seconds to say so."""
        deadline = time.monotonic() + PUBLISH_WAIT
        while True:
            ended, address = self.published(target, run)
            if ended:
                raise HpcdoError("run %s: job %s has just ended on %s: nothing is running to steer"
                                 % (run.name, info.id, self.machine.name))
            if address is not None:
                return address
            if time.monotonic() > deadline:
                raise HpcdoError(
                    "run %s: job %s on %s publishes no steering port: its run directory %s has no steer.json "
                    "(lbflow writes one when run with --steer-port 0)"
                    % (run.name, info.id, self.machine.name, target.run_dir(run)))
            time.sleep(1.0)

    def _connector(self, host, port):
        """(connect function, connection of our own to close after, or None)."""
        remote = self.session.remote
        if isinstance(remote, LocalRemote):
            return tunnel.direct(host, port), None
        if isinstance(remote, OpenSSHRemote):
            remote.connect()
            return tunnel.through_openssh(remote, host, port), None
        own = None
        if not isinstance(remote, SSHRemote):
            # the persist agent relays commands, not ports: one direct connection for the tunnel
            own = make_remote(Machine(self.machine.name, dict(self.machine.as_dict(), persist=0), {},
                                      self.machine.notes))
            remote = own
        remote.connect()
        return tunnel.through_paramiko(remote, host, port), own

    def steer(self, target, run, port=0, say=_say):
        """Forward local ``port`` (0: any free one) to the run's steering port until Ctrl-C or the job ends."""
        info = self._running(target, run)
        address = self._address(target, run, info)
        host, far_port = address
        connect, own = self._connector(host, far_port)
        try:
            forwarder = tunnel.Forwarder(connect, port)
        except HpcdoError:
            if own is not None:
                own.close()
            raise
        local = "%s:%d" % forwarder.address
        forwarder.serve()
        say("run %s: job %s listens on %s:%d; tunnel through %s" % (run.name, info.id, host, far_port,
                                                                   self.machine.name))
        say("connect to %s (python3 demo/steer_client.py %s status); Ctrl-C ends the tunnel" % (local, local))
        why = "interrupted"
        try:
            why = self._watch(target, run, address)
        except KeyboardInterrupt:
            pass
        finally:
            forwarder.close()
            if own is not None:
                own.close()
        failed = "; %d connection(s) could not be carried: %s" % (
            len(forwarder.failures), forwarder.failures[-1]) if forwarder.failures else ""
        return "tunnel %s -> run %s closed: %s (%d connection(s) carried)%s" % (
            local, run.name, why, forwarder.carried, failed)

    def _watch(self, target, run, address):
        """Wait until the job ends or stops publishing ``address``; say which.

        A program removes its steer.json as it ends, a moment before the jobscript leaves its
        exit marker: a port gone is looked at once more before it is said to be gone.
        """
        gone = False
        while True:
            time.sleep(WATCH_EVERY)
            ended, now = self.published(target, run)
            if ended:
                return "its job ended"
            if now is None and not gone:
                gone = True
            elif now != address:
                return "its program no longer listens there" if now is None else \
                    "its program now listens on %s:%d (run steer again)" % now


# -- the doit tasks -------------------------------------------------------------------

def tasks(project, runs):
    """The ``steer`` and ``tail`` tasks: each takes one run's name."""
    from doit.exceptions import TaskFailed

    looking = Looking(project)
    machine = project.machine.name
    by_name = {run.name: (target, run) for target, run in runs}

    def one(command, names):
        if len(names) != 1 or names[0] not in by_name:
            said = "unknown run %s; " % ", ".join(n for n in names if n not in by_name) \
                if any(n not in by_name for n in names) else ""
            return None, TaskFailed("%sname one run: doit machine=%s %s RUN (runs: %s)" % (
                said, machine, command, ", ".join(sorted(by_name))))
        return by_name[names[0]], None

    def steer(names, port):
        pair, error = one("steer", names)
        if error:
            return error
        try:
            _say(looking.steer(*pair, port=port))
        except HpcdoError as exc:
            return TaskFailed(str(exc))
        except KeyboardInterrupt:        # before the tunnel was open (waiting for its port)
            _say("\nstopped before the tunnel to run %s opened; its job goes on" % names[0])
        return True

    def tail(names):
        pair, error = one("tail", names)
        if error:
            return error
        try:
            _say(looking.tail(*pair))
        except HpcdoError as exc:
            return TaskFailed(str(exc))
        except KeyboardInterrupt:        # while the job's state was asked
            _say("\nstopped following run %s; its job goes on" % names[0])
        return True

    yield {"basename": "steer", "pos_arg": "names", "verbosity": 2, "uptodate": [False],
           "params": [{"name": "port", "long": "port", "type": int, "default": 0,
                       "help": "the local port to listen on (default: any free port)"}],
           "doc": "forward a local port to the steering port a running job of %s publishes (steer.json), "
                  "until Ctrl-C or the job ends: doit machine=%s steer [--port N] RUN" % (machine, machine),
           "actions": [steer]}
    yield {"basename": "tail", "pos_arg": "names", "verbosity": 2, "uptodate": [False],
           "doc": "show a run's job output on %s as it grows, until its job ends (Ctrl-C stops "
                  "looking): doit machine=%s tail RUN" % (machine, machine),
           "actions": [tail]}
