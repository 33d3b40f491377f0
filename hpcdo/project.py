"""A project: its dodo.py directory, its machines, its recipes, one chosen machine.

``dodo.py`` needs two lines::

    from hpcdo.project import dodo
    globals().update(dodo(__file__))

which read ``machine=`` (default ``localhost``) and any ``key=value``
overrides from the doit command line, load ``machines/`` and every recipe
in ``recipes/``, and hand doit the tasks.  Any problem with them ends the
program with one ``hpcdo: error: ...`` line and exit status 2.
"""

import fcntl
import importlib.util
import json
import os
import sys
import traceback

from . import ConfigError, HpcdoError
from . import config
from . import jobscript
from . import report
from .remote import trace
from . import tasks
from .recipe import Recipe
from .session import Session
from .steps import Steps
from .target import Target

DEFAULT_MACHINE = "localhost"

#: doit commands that run no task, and tasks that need nothing from the
#: machine, so no connection or probe is started ahead of them
NOT_RUNNING = {"list", "info", "help", "forget", "clean", "dumpdb", "ignore", "strace",
               "tabcompletion", "reset-dep", "auto", "jobscript"}

#: tasks that only look at the machine or stop jobs on it: they never wait
#: behind another doit working on the same machine (that is when users want them)
NEVER_WAIT = {"status", "cancel"}

#: doit options that take a value as the next word (``-n 4``), so that word is no task name
VALUE_OPTIONS = {"-n", "--process", "-P", "--parallel-type", "-v", "--verbosity", "-r", "--reporter",
                 "-o", "--output-file", "--db-file", "--backend", "-f", "--file", "-d", "--dir",
                 "--dep-file", "--check_file_uptodate", "--codec-cls", "--failure-verbosity"}


def load_recipes(project_dir):
    """Run every ``recipes/*.py`` and collect the Recipe objects they create."""
    rdir = os.path.join(project_dir, "recipes")
    if not os.path.isdir(rdir):
        raise ConfigError("no recipes/ directory in %s" % project_dir)
    recipes = []
    for fname in sorted(os.listdir(rdir)):
        if not fname.endswith(".py") or fname.startswith("_"):
            continue
        path = os.path.join(rdir, fname)
        module = _exec_recipe(path, project_dir)
        found = []
        for value in vars(module).values():
            if isinstance(value, Recipe) and all(value is not r for r in found):
                found.append(value)
        if not found:
            raise ConfigError("%s: defines no Recipe" % os.path.relpath(path, project_dir))
        for recipe in found:
            recipe.path = path
        recipes += found
    if not recipes:
        raise ConfigError("recipes/ holds no recipe files")
    _check_unique(recipes)
    return recipes


def _exec_recipe(path, project_dir):
    rel = os.path.relpath(path, project_dir)
    name = "hpcdo_recipe_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError("%s:%s: syntax error: %s" % (rel, exc.lineno, exc.msg))
    except Exception as exc:
        line = None
        for frame in traceback.extract_tb(exc.__traceback__):
            if os.path.abspath(frame.filename) == os.path.abspath(path):
                line = frame.lineno
        where = "%s:%s" % (rel, line) if line else rel
        if isinstance(exc, HpcdoError):
            raise ConfigError("%s: %s" % (where, exc))
        raise ConfigError("%s: the recipe raised %s: %s" % (where, type(exc).__name__, exc))
    return module


def _check_unique(recipes):
    seen = {}
    for recipe in recipes:
        for kind, names in (("recipe", [recipe.name]), ("run", recipe.runs), ("geometry", recipe.geometries)):
            for name in names:
                other = seen.get((kind, name))
                if other is not None and other is not recipe:
                    raise ConfigError("%s name %r is used by both recipe %s and recipe %s"
                                      % (kind, name, other.name, recipe.name))
                seen[(kind, name)] = recipe


def positional_words(argv):
    """The task names and their arguments on a doit command line (no options, no ``key=value``)."""
    words, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word in VALUE_OPTIONS:
            skip = True
        elif "=" not in word and not word.startswith("-"):
            words.append(word)
    return words


def parallel_type(argv):
    """The ``-P``/``--parallel-type`` value a doit command line asks for, or None."""
    for i, word in enumerate(argv):
        if word in ("-P", "--parallel-type") and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith("--parallel-type="):
            return word.split("=", 1)[1]
        if word.startswith("-P") and len(word) > 2:
            return word[2:]
    return None


def command_line_vars(argv):
    """The ``key=value`` words of a doit command line."""
    found = {}
    for word in argv:
        if "=" in word and not word.startswith("-"):
            key, value = word.split("=", 1)
            found[key] = value
    return found


class Project:
    def __init__(self, project_dir, machine_name=DEFAULT_MACHINE, overrides=None, connect_early=False):
        self.dir = os.path.abspath(project_dir)
        self.catalogue = config.Catalogue(self.dir)
        layer = config.parse_overrides(overrides or {})
        self.machine = self.catalogue.machine(machine_name, layer)
        for warning in self.catalogue.warnings(machine_name):
            sys.stderr.write("hpcdo: warning: %s\n" % warning)
        self.session = Session(self.machine)
        if connect_early:
            # the handshake's round trips overlap with loading the recipes
            self.session.start_connect()
        self.recipes = load_recipes(self.dir)
        templates = jobscript.environment(self.dir)
        self.targets = [Target(self.session, r, self.dir, templates) for r in self.recipes]
        self.session.targets = self.targets          # what the probe asks about
        self.steps = Steps(self.session, self.targets)
        # a run the machine cannot hold (cores not a multiple of threads, too
        # few nodes) is one error line now, not after a build has been spent
        for target, run in self.steps.runs():
            target.layout(run)

    def status_table(self):
        rows = [("machine", "%s (%s, %s)" % (self.machine.name, self.session.remote.host,
                                             self.machine.scheduler))]
        for target in self.targets:
            rows.append(("recipe", target.recipe.name))
            rows += self.steps.status_rows(target)
        width = max(len(a) for a, _b in rows)
        return "\n".join("%-*s  %s" % (width, a, b) for a, b in rows)


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


def dodo(dodo_file, argv=None):
    """The globals a ``dodo.py`` needs: DOIT_CONFIG and the task generator."""
    argv = sys.argv[1:] if argv is None else argv
    words = command_line_vars(argv)
    machine = words.pop("machine", None) or DEFAULT_MACHINE
    project_dir = os.path.dirname(os.path.abspath(dodo_file))
    positional = positional_words(argv)
    runs_tasks = not (positional and positional[0] in NOT_RUNNING)
    bad_trace = trace.check()
    if bad_trace:
        sys.stderr.write("hpcdo: error: %s\n" % bad_trace)
        sys.exit(2)
    if parallel_type(argv) == "process":
        # each step would run in a copy of this process, blind to what the
        # others submitted and fetched: tasks run in threads (-n N alone)
        sys.stderr.write("hpcdo: error: -P process is not supported: hpcdo's steps share one "
                         "connection and one view of the machine; use -n N, which runs them in threads\n")
        sys.exit(2)
    try:
        project = Project(project_dir, machine, words, connect_early=runs_tasks)
    except HpcdoError as exc:
        sys.stderr.write("hpcdo: error: %s\n" % exc)
        sys.exit(2)
    state_dir = os.path.join(project_dir, ".hpcdo")
    os.makedirs(state_dir, exist_ok=True)
    if runs_tasks:
        if not (positional and positional[0] in NEVER_WAIT):
            _one_at_a_time(state_dir, project.machine.name)
        project.session.start_probe()
        _interrupt_in_one_line(project)
    dep_file = os.path.join(state_dir, "doit-%s.json" % project.machine.name)
    _drop_if_unreadable(dep_file)

    def task_hpcdo():
        try:
            yield from tasks.generate(project, positional)
        except HpcdoError as exc:
            sys.stderr.write("hpcdo: error: %s\n" % exc)
            sys.exit(2)

    task_hpcdo.__doc__ = "hpcdo tasks"
    return {
        "DOIT_CONFIG": {
            "default_tasks": ["fetch_results"],
            # doit's own record is a cache only: the machine holds the truth.
            # JSON is read once; sqlite3 cost a query per task (25 ms of a
            # 300-run no-op).
            "dep_file": dep_file,
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
        },
        "task_hpcdo": task_hpcdo,
        "hpcdo_project": project,
    }
