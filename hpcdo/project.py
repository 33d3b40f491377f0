"""A project: its directory, its machines, its recipes, one chosen machine.

:class:`Project` loads ``machines/`` and every recipe in ``recipes/`` for the
machine a call names, and makes its targets, its session and its steps.
:mod:`hpcdo.cli` (doit's task loader) makes one per call and hands doit its
tasks.
"""

import importlib.util
import json
import os
import sys
import traceback

from . import ConfigError, HpcdoError
from . import config
from . import inputs as input_store
from . import jobscript
from . import outcomes
from . import status
from .recipe import Recipe
from .session import Session
from .steps import Steps
from .steps import loop as loops
from .target import Target

DEFAULT_MACHINE = config.LOCAL_MACHINE

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
        for kind, names in (("recipe", [recipe.name]), ("run", recipe.runs), ("geometry", recipe.geometries),
                            ("input", recipe.inputs)):
            for name in names:
                other = seen.get((kind, name))
                if other is not None and other is not recipe:
                    raise ConfigError("%s name %r is used by both recipe %s and recipe %s"
                                      % (kind, name, other.name, recipe.name))
                seen[(kind, name)] = recipe


class Project:
    def __init__(self, project_dir, machine_name=DEFAULT_MACHINE, overrides=None):
        self.dir = os.path.abspath(project_dir)
        self.catalogue = config.Catalogue(self.dir)
        layer = config.parse_overrides(overrides or {})
        self.machine = self.catalogue.machine(machine_name, layer)
        for warning in self.catalogue.warnings(machine_name):
            sys.stderr.write("hpcdo: warning: %s\n" % warning)
        self.session = Session(self.machine)
        self.recipes = load_recipes(self.dir)
        templates = jobscript.environment(self.dir)
        self.targets = [Target(self.session, r, self.dir, templates) for r in self.recipes]
        # each loop's iterations known from the fetched results become runs (hpcdo.steps.loop)
        loops.materialise(self.targets)
        self.session.targets = self.targets          # what the probe asks about
        self.steps = Steps(self.session, self.targets)
        # a run the machine cannot hold (cores not a multiple of threads, too
        # few nodes) is one error line now, not after a build has been spent
        for target, run in self.steps.runs():
            target.layout(run)
        for target in self.targets:
            input_store.probe_stamps(target)        # a missing input is one error line now too
        outcomes.set_call_project(self)             # what the end-of-call summary tells of

    def status_table(self):
        """``status``: each step's state, then a row per run (job, state, queue reason, times,
        elapsed/walltime, exit code, results): :func:`hpcdo.status.table`."""
        return status.table(self)

    def status_json(self):
        """``status --json``: the same as a stable JSON document (docs/reports.md)."""
        return json.dumps(status.document(self), indent=2, sort_keys=True)
