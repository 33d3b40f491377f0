"""Analysis steps: local Python functions over fetched results (part of the recipe API).

A recipe declares one with :meth:`hpcdo.recipe.Recipe.analysis`::

    @recipe.analysis("report", outputs=["report.md", "report.png"])
    def report(results, out):
        # results: {run name: its fetched results directory}; out: where to write
        ...

On each machine it is the doit task ``analyse:<name>``: it needs every named
run's results fetched (``fetch_results:<run>``) and runs again only when the
content of one of those results changes (every fetched file, and the run's
``hpcdo-provenance.json`` but for the time of its fetch: a run fetched again
with the same content does not redo it) or when the function's code does (its source, and that of the
functions of its own recipe file it calls).  It writes into a scratch
directory; its declared outputs move into ``results/<machine>/`` only when
the function returned and wrote every one of them, so a failed or
interrupted analysis never leaves a half-written report.  ``fetch_results``
(the whole pipeline) runs every analysis last.
"""

import hashlib
import inspect
import os
import shutil
import traceback
import types

from . import ConfigError, HpcdoError

#: an output's name: a plain file name in results/<machine>/
_BAD_OUTPUT = ("/", "\\", "\0", "\n")


class Analysis:
    """One analysis of a recipe: which runs it reads, what it writes, the function that does it."""

    def __init__(self, recipe, name, function, runs, outputs):
        self.recipe, self.name = recipe, name        # (the recipe checked the name)
        label = self.label = "recipe %s: analysis %s" % (recipe.name, name)
        if not callable(function):
            raise ConfigError("%s: needs a function (results, out)" % label)
        self.function = function
        if runs is not None and (isinstance(runs, str) or not all(isinstance(r, str) for r in runs)):
            raise ConfigError("%s: runs must be a list of run names" % label)
        self.runs = None if runs is None else list(runs)
        if isinstance(outputs, str):
            outputs = [outputs]
        self.outputs = list(outputs)
        if not self.outputs:
            raise ConfigError("%s: name the files it writes (outputs=[...])" % label)
        for out in self.outputs:
            if not isinstance(out, str) or not out or out in (".", "..") or out.startswith(".") or \
                    any(c in out for c in _BAD_OUTPUT):
                raise ConfigError("%s: output %r must be a plain file name (it lands in "
                                  "results/<machine>/)" % (label, out))

    def run_names(self):
        """The runs it reads: those named (each checked), else every run of the recipe."""
        if self.runs is None:
            return list(self.recipe.runs)
        unknown = [r for r in self.runs if r not in self.recipe.runs]
        if unknown:
            raise ConfigError("%s: unknown run %s; runs: %s" % (self.label, ", ".join(unknown),
                                                                ", ".join(sorted(self.recipe.runs))))
        return list(self.runs)

    def code_digest(self):
        """A hash of the function's source and of the functions of its own module it calls."""
        h, seen, todo = hashlib.sha256(), set(), [self.function]
        module = getattr(self.function, "__module__", None)
        while todo:
            func = todo.pop()
            if id(func) in seen:
                continue
            seen.add(id(func))
            try:
                h.update(inspect.getsource(func).encode())
            except (OSError, TypeError):
                h.update(repr(getattr(func, "__code__", func)).encode())
            code = getattr(func, "__code__", None)
            for name in (code.co_names if code else ()):
                value = getattr(func, "__globals__", {}).get(name)
                if isinstance(value, types.FunctionType) and value.__module__ == module:
                    todo.append(value)
        return h.hexdigest()

    def execute(self, results, out_dir, where):
        """Call the function in a scratch directory; move its outputs into ``out_dir``; a one-line error."""
        scratch = os.path.join(out_dir, ".analysis-%s.tmp" % self.name)
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch)
        try:
            try:
                self.function(dict(results), scratch)
            except Exception as exc:
                raise HpcdoError("%s failed: %s" % (self.label, describe(exc, where)))
            missing = [o for o in self.outputs if not os.path.isfile(os.path.join(scratch, o))]
            if missing:
                raise HpcdoError("%s wrote no %s (it writes into the directory it is given as out)"
                                 % (self.label, ", ".join(missing)))
            for out in self.outputs:
                os.replace(os.path.join(scratch, out), os.path.join(out_dir, out))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return "%s: wrote %s" % (self.label, ", ".join(os.path.join(out_dir, o) for o in self.outputs))


def describe(exc, where):
    """``recipes/x.py:12: ValueError: ...``: the deepest line of the recipe file the error passed."""
    place = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if where and os.path.abspath(frame.f_code.co_filename) == os.path.abspath(where):
            place = "%s:%d" % (os.path.relpath(where), lineno)
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return "%s: %s" % (place, text) if place else text
