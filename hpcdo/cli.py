"""hpcdo's doit task loader: doit hands it the command, its arguments and its options.

A project's ``pyproject.toml`` names the loader::

    [tool.doit]
    loader = "hpcdo"

    [tool.doit.plugins.loader]
    hpcdo = "hpcdo.cli:Loader"

doit then asks :class:`Loader` for its configuration and tasks instead of
reading ``dodo.py`` alone.  The loader reads ``machine=NAME`` (default
``localhost``) and any ``key=value`` overrides from doit's own record of
them, builds the :class:`hpcdo.project.Project`, and learns from doit which
command runs (``run``, ``list``, ``info`` ...) and with which task names,
so no part of hpcdo reads ``sys.argv``.  ``dodo.py`` is still loaded: tasks
of the project's own written there stand beside hpcdo's.  Any problem with
the machine or the recipes ends the call with one ``hpcdo: error: ...`` line
and exit status 2.
"""

import fcntl
import json
import os
import pprint
import sys

from doit import doit_cmd
from doit.cmd_base import DodoTaskLoader
from doit.cmd_dumpdb import DumpDB as DoitDumpDB

from . import HpcdoError
from . import config, fleet, report, tasks
from .project import DEFAULT_MACHINE, Project
from .steps.check import MachineOnly
from .remote import trace

#: tasks that only look at the machine or stop jobs on it: they never wait
#: behind another doit working on the same machine (that is when users want them)
NEVER_WAIT = {"status", "cancel", "check", "steer", "tail"}

#: tasks that need nothing from the machine: no connection is opened for them
OFFLINE = {"jobscript"}

#: tasks that ask the machine in a script of their own: no probe is started for them
NO_PROBE = {"check"}

#: tasks that need the machine only: they run even when the recipes do not load
MACHINE_ONLY = {"check"}

_active = []

#: options hpcdo adds to doit's commands: where to write the call's record
OPT_REPORT = {"section": "hpcdo", "name": "hpcdo_report", "long": "report", "type": str, "default": "",
              "help": "write what this call did (each step, each run's job and results) as JSON to FILE"}
OPT_JUNIT = {"section": "hpcdo", "name": "hpcdo_junit", "long": "junit", "type": str, "default": "",
             "help": "write what this call did as JUnit XML to FILE (one test case per step)"}


class Loader(DodoTaskLoader):
    """The task loader ``pyproject.toml`` names: dodo.py's own tasks, and hpcdo's."""

    cmd_options = DodoTaskLoader.cmd_options + (OPT_REPORT, OPT_JUNIT)

    def setup(self, opt_values):
        _active.append(self)
        super().setup(opt_values)
        explicit = getattr(opt_values, "_non_default_keys", ())
        if "par_type" in explicit and opt_values.get("par_type") == "process":
            # each step would run in a copy of this process, blind to what the
            # others submitted and fetched: tasks run in threads (-n N alone)
            _fail("-P process is not supported: hpcdo's steps share one connection and one view of "
                  "the machine; use -n N, which runs them in threads")
        bad_trace = trace.check()
        if bad_trace:
            _fail(bad_trace)
        values = dict(getattr(doit_cmd, "_CMDLINE_VARS", None) or {})
        machine = values.pop("machine", None) or DEFAULT_MACHINE
        project_dir = os.path.dirname(os.path.abspath(self.namespace.get("__file__") or "dodo.py"))
        self.broken = None
        self.opt_values = opt_values
        self.fleet = (project_dir, machine, values) if fleet.is_fleet(machine) else None
        if self.fleet is not None:
            # machine=a,b,c: one child call per machine (hpcdo.fleet), no project here
            self.state_dir = os.path.join(project_dir, ".hpcdo")
            return
        try:
            self.project = Project(project_dir, machine, values)
        except HpcdoError as exc:
            # the machine alone may still be checked (``check``); every other
            # command says the error when it asks for its tasks
            try:
                self.project = MachineOnly(project_dir, machine, values, broken=str(exc))
            except HpcdoError:
                _fail(str(exc))
            self.broken = str(exc)
        self.state_dir = os.path.join(project_dir, ".hpcdo")
        os.makedirs(self.state_dir, exist_ok=True)
        self.user_verbosity = None
        if opt_values.get("hpcdo_report") or opt_values.get("hpcdo_junit"):
            from . import callreport
            report.LISTENERS.append(callreport.CallReport(self.project, opt_values.get("hpcdo_report"),
                                                          opt_values.get("hpcdo_junit")))

    def load_doit_config(self):
        """hpcdo's choice of doit's settings, less every one the user made.

        A setting in ``DOIT_CONFIG`` (dodo.py), in ``[tool.doit]`` (pyproject.toml) or
        doit.cfg, or on the command line wins over hpcdo's, as doit's conventions say.
        """
        if self.fleet is not None:
            # never written: the call ends in load_tasks, each machine's child keeps its own record
            return {"dep_file": os.path.join(self.state_dir, "doit-fleet-unused.json"), "backend": "json"}
        own = dict(self.namespace.get("DOIT_CONFIG") or {})
        explicit = set(getattr(self.opt_values, "_non_default_keys", ()))
        configured = configured_values(self.config)
        chosen = explicit | set(own) | set(configured)

        def value(key, default=None):
            if key in own and key not in explicit:
                return own[key]
            if key in chosen and key in self.opt_values:
                return self.opt_values[key]
            return configured.get(key, default)

        if value("par_type") == "process":
            _fail("par_type = process is not supported: hpcdo's steps share one connection and one view "
                  "of the machine; remove it (steps run in threads with -n N)")
        backend = value("backend", "json")
        config = {
            "default_tasks": ["fetch_results"],
            # doit's own record is a cache only: the machine holds the truth.
            # JSON is read once; sqlite3 cost a query per task (25 ms of a
            # 300-run no-op).  One record per machine, named by its backend.
            "dep_file": os.path.join(self.state_dir, "doit-%s.%s" % (self.project.machine.name, backend)),
            "backend": "json",
            "verbosity": 1,
            # one run's failure never stops the others being waited for and
            # fetched; the call still ends non-zero and names each failure
            "continue": True,
            # ``-n N`` runs steps in threads of this process, which share the
            # connection and the probe's answer; doit's default, processes,
            # would each see the machine as it was before the others ran
            "par_type": "thread",
            "reporter": report.Reporter,
        }
        for key in chosen:
            config.pop(key, None)
        # what doit reads only from DOIT_CONFIG (default_tasks ...) is taken from pyproject.toml too
        config.update({k: v for k, v in configured.items() if k not in self.opt_values})
        config.update(own)
        if backend == "json" and "dep_file" not in chosen:
            _drop_if_unreadable(config["dep_file"])
        if "verbosity" in chosen and "verbosity" not in explicit:
            # a verbosity the user set applies to every step, as ``-v`` does; doit would let
            # each task's own verbosity win over it
            self.user_verbosity = value("verbosity")
        return config

    def load_tasks(self, cmd, pos_args):
        if self.fleet is not None:
            project_dir, value, overrides = self.fleet
            try:
                # the words this call was started with, given again to each machine's child
                code = fleet.main(project_dir, value, overrides, cmd.get_name(), pos_args, sys.argv[1:],
                                  self.opt_values.get("hpcdo_report"), self.opt_values.get("hpcdo_junit"))
            except HpcdoError as exc:
                _fail(str(exc))
            except KeyboardInterrupt:
                # before any machine's call started, or after all ended: nothing to say of them
                sys.stderr.write("\nhpcdo: interrupted\n")
                code = 130
            sys.exit(code)
        project = self.project
        first = pos_args[0] if pos_args else ""
        if self.broken is not None and not (cmd.execute_tasks and first in MACHINE_ONLY):
            _fail(self.broken)
        if cmd.execute_tasks and first not in OFFLINE:
            # first: Ctrl-C while waiting for another doit's lock is one line too
            _interrupt_in_one_line(project)
            if first not in NEVER_WAIT:
                _one_at_a_time(self.state_dir, project.machine.name)
            if first not in NO_PROBE:
                # the connection's handshake and the probe overlap with doit
                # ordering its tasks; the first check waits for the answer
                project.session.start_probe()

        def task_hpcdo():
            try:
                if self.broken is not None:
                    yield tasks.check_task(project)
                    return
                for task in tasks.generate(project, pos_args):
                    yield self._user_verbosity(task)
            except HpcdoError as exc:
                _fail(str(exc))

        task_hpcdo.__doc__ = "hpcdo tasks"
        if getattr(cmd, "reporters", None):
            self._tell_listeners(cmd.reporters)
        own = self.namespace
        self.namespace = dict(own, task_hpcdo=task_hpcdo)
        try:
            loaded = super().load_tasks(cmd, pos_args)
        finally:
            self.namespace = own
        if cmd.get_name() == "help" and self.broken is None:
            self._explain_positional(loaded)
        return loaded

    def _explain_positional(self, loaded):
        """``doit help retry``: a task that takes run names lists them."""
        names = sorted(run.name for _target, run in self.project.steps.runs())
        for task in loaded:
            if task.pos_arg and names:
                task.doc = "%s\n  RUN: one or more of the runs: %s" % (task.doc, ", ".join(names))


    def _user_verbosity(self, task):
        """A step prints as the user's verbosity says; the tasks that exist to print
        an answer (``status``, ``jobscript``, ``check``: verbosity 2) still print it."""
        if self.user_verbosity is not None and task.get("verbosity") != 2:
            task.pop("verbosity", None)
        return task

    def _tell_listeners(self, reporters):
        """``--report``/``--junit`` with a reporter the user chose: it is told each event too.
        A reporter doit does not know is one line (doit would stop with a traceback)."""
        chosen = self.opt_values.get("reporter")
        cls = reporters.get(chosen) if isinstance(chosen, str) else chosen
        if cls is None:
            _fail("unknown reporter %r; doit knows: %s" % (chosen, ", ".join(sorted(reporters))))
        if report.LISTENERS and isinstance(cls, type) and not issubclass(cls, report.Reporter):
            # set as doit's own default is set: the command line still shows what was chosen
            dict.__setitem__(self.opt_values, "reporter", telling(cls))


def configured_values(config):
    """The doit settings a configuration file sets: ``[tool.doit]`` (pyproject.toml) or doit.cfg,
    globally or for a command (``[tool.doit.commands.run]``)."""
    values = {}
    for section, found in (config or {}).items():
        if section.islower() and not section.startswith("task:") and isinstance(found, dict):
            values.update(found)
    values.update((config or {}).get("GLOBAL", {}))
    values.pop("loader", None)
    return values


def telling(reporter_cls):
    """``reporter_cls``, which also tells each of hpcdo's listeners (the ``--report`` record) of
    each event, after its own part."""
    def told(name):
        def method(self, *args):
            result = getattr(reporter_cls, name)(self, *args)
            for listener in report.LISTENERS:
                hook = getattr(listener, name, None)
                if hook is not None:
                    hook(*args)
            return result
        method.__name__ = name
        return method
    names = [n for n in ("initialize", "get_status", "execute_task", "add_failure", "add_success",
                         "skip_uptodate", "skip_ignore", "complete_run") if hasattr(reporter_cls, n)]
    return type(reporter_cls.__name__, (reporter_cls,), {n: told(n) for n in names})


class DumpDB(DoitDumpDB):
    """``doit dumpdb``: hpcdo keeps doit's record per machine, as JSON, which doit's dumpdb cannot read.

    A project's pyproject.toml names it (``[tool.doit.plugins.command] dumpdb =
    "hpcdo.cli:DumpDB"``).  ``machine=NAME`` picks the record; ``--db-file``
    names another one.
    """
    doc_purpose = "dump doit's record of a machine (.hpcdo/doit-<machine>.json; machine=NAME)"

    def execute(self, opt_values, pos_args):
        if "dep_file" in getattr(opt_values, "_non_default_keys", ()):
            path = opt_values["dep_file"]
        else:
            machine = (getattr(doit_cmd, "_CMDLINE_VARS", None) or {}).get("machine") or DEFAULT_MACHINE
            if fleet.is_fleet(machine):
                _fail("doit dumpdb takes one machine, not a list: machine=%s (give one of them)" % machine)
            try:            # an alias names its machine's record (tianhe: doit-tianhe2.json)
                machine = config.Catalogue(os.getcwd()).canonical(machine)
            except HpcdoError as exc:
                _fail(str(exc))
            path = os.path.join(".hpcdo", "doit-%s.json" % machine)
        try:
            with open(path) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            _fail("%s does not exist: doit has no record of this machine here yet (run doit first, "
                  "in the project's directory)" % path)
        except (OSError, ValueError):
            # not JSON: a record of doit's other backends, which doit's own dumpdb reads
            opt_values["dep_file"] = path
            return super().execute(opt_values, pos_args)
        print("JSON record %s" % path)
        for key in sorted(data):
            print("%s -> %s" % (key, pprint.pformat(data[key], indent=4, width=100)))
        return 0


def needs_loader(dodo_file):
    """Called by ``dodo.py``: one clear line when doit reads it without hpcdo's loader."""
    if not _active:
        _fail("doit read %s without hpcdo's task loader: run doit in the project's directory, whose "
              "pyproject.toml names it ([tool.doit] loader = \"hpcdo\"; see README.md)" % dodo_file)


def _fail(message):
    sys.stderr.write("hpcdo: error: %s\n" % message)
    sys.exit(2)


_held_locks = []


def _one_at_a_time(state_dir, machine):
    """Let one doit of this checkout work on ``machine`` at a time; a second one waits.

    Two at once would configure and build in the same directories side by
    side.  The lock is the kernel's (flock), so a killed doit never leaves
    it behind; it is held until this process exits.
    """
    path = os.path.join(state_dir, "lock-%s" % machine)
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "?"
        sys.stderr.write("hpcdo: another doit (pid %s) is working on machine %s in this project; "
                         "waiting for it to finish\n" % (holder, machine))
        sys.stderr.flush()
        fcntl.flock(fh, fcntl.LOCK_EX)
    fh.seek(0)
    fh.truncate()
    fh.write("%d\n" % os.getpid())
    fh.flush()
    _held_locks.append(fh)


def _interrupt_in_one_line(project):
    """Make Ctrl-C end the call with one line, not doit's traceback.

    The line says which jobs keep running on the machine: nothing hpcdo
    submitted is lost, and the next call picks them up.
    """
    previous = sys.excepthook

    def hook(kind, value, tb):
        if not issubclass(kind, KeyboardInterrupt):
            return previous(kind, value, tb)
        try:
            running = project.steps.jobs.active_jobs()
        except Exception:
            running = []
        if running:
            sys.stderr.write("\nhpcdo: interrupted; %s keep%s running on %s, and the next call picks "
                             "%s up\n" % (", ".join("run %s (job %s)" % r for r in running),
                                         "s" if len(running) == 1 else "", project.machine.name,
                                         "it" if len(running) == 1 else "them"))
        else:
            sys.stderr.write("\nhpcdo: interrupted; the next call goes on from where this one "
                             "stopped\n")
        sys.stderr.flush()

    sys.excepthook = hook


def _drop_if_unreadable(dep_file):
    """Remove doit's record if it does not parse (a call killed while doit wrote it).

    doit would stop on it; it is only a cache (every check asks the machine
    and results/), so it can go.
    """
    try:
        with open(dep_file) as fh:
            json.load(fh)
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        try:
            os.remove(dep_file)
        except OSError:
            pass
