"""One machine for one invocation: its connection, its scheduler, and what is on it.

The session asks the machine once, in one batched script, for every stamp
and every job of every target (the *probe*), and keeps the answer.  Each
step's up-to-date check then compares locally computed signatures with that
answer, so checking a whole project costs one round trip.  Steps that run
update the session's view with what they wrote, so the checks of later
steps in the same invocation need no further round trip.

That is all it does: the steps that act on the machine are in
:mod:`hpcdo.steps`.
"""

import threading
import time

from . import HpcdoError
from . import schedulers
from .model import Job, Stamp
from .remote import scripts
from .remote.agent import AgentRemote
from .remote.auth import Answerer
from .remote.connection import LocalRemote
from .remote.openssh import OpenSSHRemote
from .remote.ssh import SSHRemote
from .remote.sshconfig import digest
from .schedulers.base import JobState, combine


def make_remote(machine):
    """The machine's one connection, with its ``shell_setup`` lines put before every script."""
    if machine.is_local:
        remote = LocalRemote(machine.name)
    elif machine.transport == "openssh":
        # the system ssh reads ssh_config itself; its ControlPersist keeps the connection
        remote = OpenSSHRemote(machine.host, user=machine.user, port=machine.port,
                               identity_file=machine.identity_file, known_hosts=machine.known_hosts,
                               proxy_jump=machine.proxy_jump, connect_timeout=machine.connect_timeout,
                               persist=machine.persist, name=machine.name, askpass=machine.askpass)
    elif machine.persist:
        # the agent reads ssh_config (this call need not import paramiko); the socket,
        # named after the params, changes with the user's ssh_config file
        params = {"host": machine.host, "user": machine.user, "port": machine.port,
                  "identity_file": machine.identity_file, "known_hosts": machine.known_hosts}
        # only when set, so that a machine without them keeps its agent's socket
        extra = {"proxy_jump": machine.proxy_jump, "connect_timeout": machine.connect_timeout,
                 "ssh_config": digest()}
        params.update((key, value) for key, value in extra.items() if value)
        remote = AgentRemote(params, machine.persist, machine.name)
    else:
        remote = SSHRemote(machine.host, user=machine.user, port=machine.port,
                           identity_file=machine.identity_file, known_hosts=machine.known_hosts,
                           proxy_jump=machine.proxy_jump, connect_timeout=machine.connect_timeout,
                           name=machine.name)
    if isinstance(remote, (SSHRemote, AgentRemote)):
        # a login prompt (two-factor code, password) is answered on the terminal, else by askpass
        # (the system ssh of transport: openssh asks on the terminal itself)
        remote.answerer = Answerer(machine.name, machine.askpass, kept=bool(machine.persist))
    remote.preamble = "".join(line + "\n" for line in machine.shell_setup or [])
    return remote


#: the longest one scheduler query (squeue, qstat ...) may take, seconds
QUERY_TIMEOUT = 30


class Session:
    """The connection to one machine and the probe's answer about ``targets``.

    ``targets``: the :class:`hpcdo.target.Target` values whose stamps and
    runs the probe asks about; the project sets them before the first probe.
    """

    def __init__(self, machine, targets=()):
        self.machine = machine
        self.scheduler = schedulers.get(machine.scheduler)
        self.remote = make_remote(machine)
        self.targets = list(targets)
        self._lock = threading.RLock()
        self._probed = False
        self._stamps = {}
        self._jobs = {}
        self._queue = {}
        self._times = {}              # key -> the run's job times and the scheduler's words (times())
        self._seen_jobs = {}          # key -> the Job job() last answered; cleared on any news
        self._probe_error = None

    # -- the probe --------------------------------------------------------
    @property
    def probed(self):
        """True once the probe has answered (nothing is asked)."""
        return self._probed

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
            for target in self.targets:
                s, r = target.probe_items()
                stamps += s
                runs += r
                heads += target.probe_heads()
            script = scripts.probe_script(self.machine.remote_root, stamps, runs, self.scheduler, heads,
                                          query_timeout=self.query_timeout())
            # a git login must not show in ``ps``: then the script goes by stdin
            result = self.remote.run(script, what="probe", private=any(h[3] is not None for h in heads))
            self._stamps, records, self._queue = scripts.parse_probe(result.text, self.scheduler, runs)
            self._jobs = {key: Job.from_record(record) for key, record in records.items()}
            self._times = {key: dict(record.get("times") or {}) for key, record in records.items()}
            self._seen_jobs.clear()
            self._probed = True

    def query_timeout(self):
        """Seconds one scheduler query may take before it counts as unanswered.

        A wedged ``squeue`` must not hang the probe; a wait bears unanswered
        queries for ``scheduler_timeout`` in all.
        """
        return max(1, min(QUERY_TIMEOUT, int(float(self.machine.scheduler_timeout))))

    def stamp(self, key):
        """The stamp ``key`` (a :class:`hpcdo.model.Stamp`), or None when the machine has none
        (or its product is gone)."""
        self.probe()
        with self._lock:
            text = self._stamps.get(key)
        return Stamp.parse(text)

    def set_stamp(self, key, stamp):
        """Record the stamp a step wrote (a Stamp), or that it has none (None)."""
        with self._lock:
            self._stamps[key] = stamp.to_json() if stamp is not None else None

    def job(self, key):
        """What is known of the run ``key``: a :class:`hpcdo.model.Job` with its state."""
        self.probe()
        with self._lock:
            seen = self._seen_jobs.get(key)
            if seen is not None:
                return seen             # asked again (a no-op asks each run 4 times)
            job = self._jobs.get(key) or Job()
            state, code = combine(job.id, job.exit, *self._queue.get(job.id, (None, None)))
            if job.cancelled and state not in (JobState.COMPLETED, JobState.NONE) and not state.active:
                state = JobState.CANCELLED      # ``doit cancel`` marked it
            seen = self._seen_jobs[key] = job.with_state(state, code)
        return seen

    def times(self, key):
        """What is known of when run ``key``'s job was ``submitted``, ``started`` and ``ended``
        (epoch seconds), its time ``limit`` (seconds) and the scheduler's ``reason`` it waits:
        a dict without the keys nothing said (see :func:`hpcdo.remote.answers.parse_probe`)."""
        self.probe()
        with self._lock:
            return dict(self._times.get(key) or {})

    def set_job(self, key, job, queue_state=None):
        """Record what a step wrote about run ``key`` (a Job), and what the queue now says of it."""
        with self._lock:
            self._seen_jobs.clear()
            if self._jobs.get(key, Job()).id != job.id:
                self._times[key] = {"submitted": time.time()} if job.id else {}
            self._jobs[key] = job
            if queue_state is not None and job.id:
                self._queue[job.id] = (queue_state, None)

    def update_from_poll(self, records, queue):
        """Take a poll's answer: the runs' marker records and the queue's states."""
        with self._lock:
            self._seen_jobs.clear()
            for key, record in records.items():
                self._jobs[key] = Job.from_record(record)
                self._times[key] = dict(record.get("times") or {})
                if record.get("id"):
                    self._queue.pop(record["id"], None)
            self._queue.update(queue)

    def close(self):
        self.remote.close()
