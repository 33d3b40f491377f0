"""Several machines in one call: ``doit machine=a,b,c fetch_results``.

When ``machine=`` holds a comma list, the loader (:mod:`hpcdo.cli`) builds no
project of its own.  It checks the list first, so a mistake is one line before
anything starts: each name is a machine name, none twice (an alias and its
machine count as one), and each resolves through the machine catalogue with
the call's ``key=value`` overrides.  Then it runs one child
``doit machine=<m> <the same words>`` per machine, all at once, in the same
directory and environment.  Each child is an ordinary hpcdo call: its own lock,
connection, probe, doit record and ``results/<m>/``; a machine that fails
stops only its own child.

Each child writes to a pipe, so it draws no live area (:mod:`hpcdo.progress`
writes plain lines where there is no terminal); every line it writes is shown
prefixed with its machine's name.  Each child writes ``--report`` JSON to a
temporary file, from which the end of the call says, per machine, ok or
failed (with the child's one-line error), and per run the state, wall time
and figures (``Recipe.figure``) on each machine (:mod:`hpcdo.fleet_summary`).
``--report FILE`` and ``--junit FILE`` given to the whole call hold every
machine's record.  The call exits non-zero when any machine failed.

Ctrl-C reaches the children from the terminal (they are in its foreground
process group); the parent waits for each to say where it stopped, and
interrupts, then ends, any child that does not stop: none is left behind.

``info``, ``help`` and ``dumpdb`` are about one machine: with a list they are
refused in one line.  ``status --json`` prints one JSON document, each
machine's under its name.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import ConfigError
from . import config
from .layer import MACHINE_NAME

#: the separator of machine names in ``machine=a,b,c``
SEP = ","
#: doit commands that name one machine's tasks or record: refused with a list
ONE_MACHINE_COMMANDS = ("info", "help", "dumpdb")
#: tasks whose output is an answer (a table, a jobscript): each machine's shown whole
ANSWERS = ("status", "jobscript", "check")
#: after Ctrl-C, seconds a child is given to stop by itself, then after SIGINT, then after SIGTERM
GRACE = (5.0, 10.0, 5.0)


def is_fleet(value):
    """True when a ``machine=`` value names several machines."""
    return isinstance(value, str) and SEP in value


def machine_names(value):
    """The names of ``machine=a,b,c`` as given, each checked as a machine name; duplicates refused."""
    names = value.split(SEP)
    for name in names:
        if not MACHINE_NAME.match(name):
            raise ConfigError("machine=%s: %r is not a machine name (letters, digits, '_', '.', '-'; "
                              "machines are separated by ',' with no spaces)" % (value, name))
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError("machine=%s names machine %s twice" % (value, name))
        seen.add(name)
    return names


def plan(project_dir, value, overrides):
    """The machines of ``machine=a,b,c``, resolved through the catalogue: their names, in order.

    Every mistake (a bad or unknown name, an alias of a machine already named,
    a bad override for one of them) is a :class:`ConfigError` before any child
    starts.
    """
    names = machine_names(value)
    catalogue = config.Catalogue(project_dir)
    layer = config.parse_overrides(overrides or {})
    resolved, roots = [], {}
    for name in names:
        machine = catalogue.machine(name, layer)
        if machine.name in resolved:
            raise ConfigError("machine=%s names machine %s twice (%s is another name of it)"
                              % (value, machine.name, name))
        # the work tree on a machine is remote_root/<recipe>/, whatever the machine's name: two
        # machines with the same account and remote_root would build and run in one directory
        where = work_root(machine)
        if where in roots:
            raise ConfigError("machines %s and %s both work in %s: at once they would build and run in "
                              "the same directories; give one of them its own remote_root"
                              % (roots[where], machine.name, _said(where)))
        roots[where] = machine.name
        resolved.append(machine.name)
    return resolved


def work_root(machine):
    """(host, user, remote_root) of ``machine``: where its work tree is."""
    host = (machine.host or "").lower()
    return (host, (machine.user or "") if host else "", str(machine.remote_root or "").rstrip("/"))


def _said(where):
    host, user, root = where
    return "%s%s:%s" % (user + "@" if user else "", host, root) if host else root


def _option_words(words, long, given):
    """Indices of the first ``--long GIVEN`` / ``--long=GIVEN`` in ``words`` (both words of the
    first form); none when ``given`` is empty."""
    for i, word in enumerate(words if given else ()):
        if word == "--" + long and words[i + 1:i + 2] == [given]:
            return [i, i + 1]
        if word == "--%s=%s" % (long, given):
            return [i]
    return []


def child_argv(words, value, machine, report_path, own_report="", own_junit=""):
    """The words of one machine's child call: ``words`` (this call's, without the program) with
    ``machine=<value>`` made ``machine=<machine>``, the call's own ``--report own_report`` and
    ``--junit own_junit`` taken out (the whole call writes them), and ``--report report_path``
    put first (doit reads its loader's options before the command's name)."""
    drop = set(_option_words(words, "report", own_report)) | set(_option_words(words, "junit", own_junit))
    out, replaced = [], False
    for i, word in enumerate(words):
        if i in drop:
            continue
        if word.startswith("machine=") and not word.startswith("-"):
            if word != "machine=" + value:
                raise ConfigError("machine= is given twice on the command line (%s and machine=%s); "
                                  "give it once" % (word, value))
            word, replaced = "machine=" + machine, True
        out.append(word)
    if not replaced:
        raise ConfigError("machine=%s is not on the command line this call was started with; "
                          "start doit as a command (doit machine=a,b ...)" % value)
    return ["--report", report_path] + out


#: how a child's lines are shown: as they come, all together when it ends (an answer such as
#: ``status``, whose table would otherwise interleave with other machines'), or not (``--json``)
LIVE, GROUPED, CAPTURED = "live", "grouped", "captured"


class Child:
    """One machine's ``doit`` call: its process, its pumps, what it said."""

    #: what runs, before the child's words
    program = [sys.executable, "-m", "doit"]

    def __init__(self, machine, argv, report_path, width, mode=LIVE):
        self.machine, self.argv, self.report_path = machine, argv, report_path
        self.prefix = "%-*s | " % (width, machine)
        self.mode = mode
        self.stdout, self.errors = [], []
        self.proc, self.pumps, self.lock = None, [], None
        self.started = self.ended = None

    def start(self, cwd, env, lock):
        self.started, self.lock = time.monotonic(), lock
        self.proc = subprocess.Popen(self.program + self.argv, cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=1, text=True, errors="replace")
        for stream, out, keep in ((self.proc.stdout, sys.stdout, self.stdout),
                                  (self.proc.stderr, sys.stderr, self.errors)):
            pump = threading.Thread(target=self._pump, args=(stream, out, keep, lock), daemon=True)
            pump.start()
            self.pumps.append(pump)

    def _pump(self, stream, out, keep, lock):
        for line in stream:
            keep.append(line)
            if self.mode == LIVE or (self.mode == CAPTURED and keep is self.errors):
                self._show(out, [line], lock)
        stream.close()

    def _show(self, out, lines, lock):
        with lock:
            for line in lines:
                out.write(self.prefix + line if line.endswith("\n") else self.prefix + line + "\n")
            out.flush()

    def wait(self, timeout=None):
        code = self.proc.wait(timeout)
        for pump in self.pumps:
            pump.join()
        if self.ended is None:
            self.ended = time.monotonic()
            if self.mode == GROUPED:
                self._show(sys.stdout, self.stdout, self.lock)
                self._show(sys.stderr, self.errors, self.lock)
        return code

    @property
    def code(self):
        return None if self.proc is None else self.proc.returncode

    def error_line(self):
        """The child's own one-line error (its last ``hpcdo: error:`` or ``hpcdo:`` line), or ""."""
        lines = [line.strip() for line in self.errors + self.stdout if line.strip()]
        for prefix in ("hpcdo: error:", "hpcdo:"):
            said = [line for line in lines if line.startswith(prefix)]
            if said:
                return said[-1]
        return ""


def run_children(children, cwd, env):
    """Start every child, wait for all; on Ctrl-C (or SIGTERM) stop them all, then re-raise."""
    lock = threading.Lock()
    previous = signal.getsignal(signal.SIGTERM)

    def terminated(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminated)
    try:
        for child in children:
            child.start(cwd, env, lock)
        for child in children:
            child.wait()
    except BaseException:
        stop(children)
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def stop(children):
    """Ctrl-C: give each child the time to stop itself (it got the terminal's SIGINT too), then
    SIGINT, SIGTERM and SIGKILL those that do not; reap every one."""
    running = [c for c in children if c.proc is not None and c.proc.poll() is None]
    for sig, grace in zip((None, signal.SIGINT, signal.SIGTERM), GRACE):
        if sig is not None:
            for child in running:
                _signal(child, sig)
        deadline = time.monotonic() + grace
        for child in running:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            except KeyboardInterrupt:
                pass            # a second Ctrl-C: go on stopping them
        running = [c for c in running if c.proc.poll() is None]
        if not running:
            return
    for child in running:
        _signal(child, signal.SIGKILL)
        child.wait()


def _signal(child, sig):
    try:
        child.proc.send_signal(sig)
    except OSError:
        pass


def exit_code(children):
    """0 when every machine's call succeeded, else the highest child code (1 for a signal)."""
    codes = [c.code for c in children]
    if all(code == 0 for code in codes):
        return 0
    return max([code for code in codes if code and code > 0] or [1])


def main(project_dir, value, overrides, command, pos_args, words, own_report="", own_junit=""):
    """Run ``words`` (this call's command line, without the program) on each machine of
    ``machine=<value>`` and say how each went; returns the exit code.  ``command`` and
    ``pos_args`` are doit's command name and its arguments."""
    from . import fleet_summary
    if command in ONE_MACHINE_COMMANDS:
        raise ConfigError("doit %s takes one machine, not a list: machine=%s (give one of them)"
                          % (command, value))
    machines = plan(project_dir, value, overrides)
    as_json = bool(pos_args) and pos_args[0] == "status" and "--json" in pos_args
    answers = command != "run" or (bool(pos_args) and pos_args[0] in ANSWERS)
    mode = CAPTURED if as_json else GROUPED if answers else LIVE
    width = max(len(m) for m in machines)
    tmp = tempfile.mkdtemp(prefix="hpcdo-fleet-")
    children = []
    try:
        for machine in machines:
            path = os.path.join(tmp, "report-%s.json" % machine)
            children.append(Child(machine, child_argv(words, value, machine, path, own_report, own_junit), path, width,
                                  mode))
        started = time.monotonic()
        try:
            run_children(children, os.getcwd(), dict(os.environ))
        except KeyboardInterrupt:
            sys.stderr.write("hpcdo: interrupted; every machine's call has stopped (%s)\n"
                             % ", ".join(machines))
            return 130
        seconds = time.monotonic() - started
        result = fleet_summary.Fleet(project_dir, children, seconds)
        if as_json:
            sys.stdout.write(result.status_json())
        elif command == "run":
            sys.stdout.write(result.text())
        else:
            sys.stdout.write(result.machines_text())
        result.write(own_report, own_junit)
        return exit_code(children)
    finally:
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)
