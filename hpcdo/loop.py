"""Iterative workflows: a chain of runs, each one's settings made from the last one's results
(part of the recipe API).

A recipe declares a loop with :meth:`hpcdo.recipe.Recipe.loop`: the first
iteration's parameters, the run's other settings (as for a run of a sweep:
``args`` and ``env`` values use the parameters as {fields}), a maximum
number of iterations, and a local Python function that reads the fetched
results of iteration k and says what iteration k+1 runs with, or that the
loop has converged::

    from hpcdo.loop import Converged, Next

    @recipe.loop("calib", first={"force": 1e-5}, max_iterations=8, geometry="stenosis",
                 args=["--geometry", "{geometry}", "--force", "{force}"])
    def calib(results, params, history):
        # results: iteration k's fetched results directory; params: its parameters;
        # history: [{"iteration", "params", "value"}] of iterations 1..k-1
        q = read_flow_rate(results)
        if abs(q - TARGET) < 0.01 * TARGET:
            return Converged(value=q)
        return Next(value=q, force=params["force"] * TARGET / q)

Each iteration is an ordinary run named ``<loop>-01``, ``<loop>-02`` ...,
with its own signature (its parameters are part of it), stamp, job and
results.  The function must be a function of its arguments alone: the
chain is worked out again from the fetched results at every call
(:func:`chain`), so the iterations whose results are here and whose
settings are still what the function gives are known without asking the
machine, an interrupted loop resumes at the iteration it was in, and a
changed function (or first iteration) reruns the chain from the first
iteration whose settings change.  ``value`` is what the function measured;
it goes into the loop's history (``results/<machine>/<loop>.history.json``,
shown by ``status``) and its convergence plot.
"""

import json

from . import ConfigError, HpcdoError, sweep
from .analysis import describe

__all__ = ["Next", "Converged", "Loop", "Iteration", "chain"]

#: what a loop's iterations take of :meth:`hpcdo.recipe.Recipe.run`'s arguments
SETTINGS = ("geometry", "args", "cores", "walltime", "env", "outputs", "nodes", "threads", "gpus", "inputs")


class Next:
    """The function's answer: not converged; iteration k+1 runs with these parameters.

    Parameters not named keep iteration k's values.
    """

    def __init__(self, value=None, **params):
        self.value = value
        self.params = params

    def __repr__(self):
        return "Next(value=%r, %s)" % (self.value, ", ".join("%s=%r" % kv for kv in self.params.items()))


class Converged:
    """The function's answer: the loop has converged at iteration k."""

    def __init__(self, value=None):
        self.value = value

    def __repr__(self):
        return "Converged(value=%r)" % (self.value,)


class Iteration:
    """One iteration of a loop: its number, its run, its parameters and what its results gave."""

    def __init__(self, number, run, params):
        self.number, self.run, self.params = number, run, dict(params)
        #: the function's measured value (None until its results were read)
        self.value = None
        #: "open" (no results for its settings yet), "next", "converged" or "max"
        self.outcome = "open"

    def record(self):
        """Its entry in the history: what the function is given and what the history file holds."""
        return {"iteration": self.number, "run": self.run.name, "params": dict(self.params),
                "value": self.value, "outcome": self.outcome}


class Loop:
    """A recipe's loop: its first parameters, its run settings, its function and its bound."""

    def __init__(self, recipe, name, function, first, max_iterations, settings, run_class):
        self.recipe, self.name = recipe, name          # (the recipe checked the name)
        #: hpcdo.recipe.Run (given, as the recipe module imports this one)
        self.run_class = run_class
        label = self.label = "recipe %s: loop %s" % (recipe.name, name)
        if not callable(function):
            raise ConfigError("%s: needs a function (results, params, history)" % label)
        self.function = function
        if not isinstance(max_iterations, int) or isinstance(max_iterations, bool) or \
                not 1 <= max_iterations <= 99:
            raise ConfigError("%s: max_iterations must be an integer from 1 to 99" % label)
        self.max_iterations = max_iterations
        self.first = self.check_params(first, "first")
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise ConfigError("%s: unknown setting %s; a loop takes %s" % (label, ", ".join(unknown),
                                                                         ", ".join(SETTINGS)))
        #: Run's settings: geometry, args, cores, walltime, env, outputs, nodes, threads, gpus, inputs
        self.settings = dict(settings)
        # a mistake in args or env is one line now, not after iteration 1 ran
        self.make_run(1, self.first)
        #: the iterations the last call of :func:`chain` made (set by the project at load)
        self.iterations = []
        #: the function's error on the results of the last known iteration, if any
        self.error = None

    def check_params(self, params, what):
        if not isinstance(params, dict) or not params:
            raise ConfigError("%s: %s must be a dict of parameter names to values" % (self.label, what))
        checked = sweep.check_parameters("%s: %s" % (self.label, what), {k: [v] for k, v in params.items()},
                                         reserved={"geometry", "cores", "threads", "tasks", "nodes", "run"})
        return {k: v[0] for k, v in checked.items()}

    def run_name(self, number):
        return "%s-%02d" % (self.name, number)

    def make_run(self, number, params):
        """Iteration ``number``'s run, with ``params`` as its {fields} (part of its signature)."""
        s = self.settings
        extra = {k: s[k] for k in ("gpus", "inputs") if s.get(k) is not None}
        run = self.run_class(self.recipe, self.run_name(number), s.get("geometry"), s.get("args", ()),
                             s.get("cores"), s.get("walltime", "00:10:00"), s.get("env"), s.get("outputs"),
                             s.get("nodes"), s.get("threads", 1), params=params, **extra)
        run.loop = self
        return run

    def step(self, results, iteration, history):
        """Call the function on ``iteration``'s fetched ``results``; return its Next or Converged.

        Sets the iteration's value and outcome.  Any mistake is one HpcdoError line.
        """
        where = getattr(self.recipe, "path", None)
        try:
            answer = self.function(results, dict(iteration.params), [dict(h) for h in history])
        except Exception as exc:
            raise HpcdoError("%s: the function failed on the results of iteration %d: %s"
                             % (self.label, iteration.number, describe(exc, where)))
        if not isinstance(answer, (Next, Converged)):
            raise HpcdoError("%s: the function returned %r for iteration %d; return Next(value, **params) "
                             "or Converged(value)" % (self.label, answer, iteration.number))
        value = answer.value
        if value is not None and (not isinstance(value, (int, float, str)) or isinstance(value, bool)):
            raise HpcdoError("%s: iteration %d: value %r must be a number or a string"
                             % (self.label, iteration.number, value))
        iteration.value = value
        if isinstance(answer, Converged):
            iteration.outcome = "converged"
        elif iteration.number >= self.max_iterations:
            iteration.outcome = "max"
        else:
            iteration.outcome = "next"
            unknown = sorted(set(answer.params) - set(self.first))
            if unknown:
                raise HpcdoError("%s: iteration %d: the function returned parameter %s, which the first "
                                 "iteration does not have (%s)" % (self.label, iteration.number,
                                                                   ", ".join(unknown), ", ".join(self.first)))
            try:
                self.check_params(dict(iteration.params, **answer.params), "iteration %d's next parameters"
                                  % iteration.number)
            except ConfigError as exc:
                raise HpcdoError(str(exc))
        return answer

    def next_params(self, iteration, answer):
        return dict(iteration.params, **answer.params)


def chain(loop, results_of, start=None):
    """The loop's iterations as far as fetched results tell them.

    ``results_of(run)``: the directory of ``run``'s fetched results if they
    are the results of its current settings, else None.  Iteration 1 runs
    ``loop.first``; iteration k+1 runs what the function gives for k's
    results.  The chain ends at the first iteration without results (its
    outcome is "open": it is the one to run), at one the function says
    converged, or at ``max_iterations``.  ``start``: iterations already
    made (their runs are kept when their parameters are the same).
    Returns (iterations, error): an error of the function is returned, not
    raised, so that the iterations before it still count.
    """
    known = {it.number: it for it in (start or [])}
    iterations, history, params = [], [], loop.first
    for number in range(1, loop.max_iterations + 1):
        old = known.get(number)
        run = old.run if old is not None and same_params(old.params, params) else loop.make_run(number, params)
        iteration = Iteration(number, run, params)
        iterations.append(iteration)
        where = results_of(run)
        if where is None:
            break
        try:
            answer = loop.step(where, iteration, history)
        except HpcdoError as exc:
            iteration.outcome = "open"
            return iterations, str(exc)
        history.append(iteration.record())
        if iteration.outcome != "next":
            break
        params = loop.next_params(iteration, answer)
    return iterations, None


def same_params(a, b):
    return _plain(a) == _plain(b)


def _plain(value):
    """``value`` as JSON gives it back (a provenance file's run settings are read from JSON)."""
    return json.loads(json.dumps(value, sort_keys=True))


def settings_match(provenance, run):
    """The provenance of fetched results says they were made with ``run``'s current settings."""
    return bool(provenance) and provenance.get("run_settings") == _plain(run.spec())


def finished(iterations):
    """The last iteration says the loop is over: converged, or its last allowed iteration ran."""
    return bool(iterations) and iterations[-1].outcome in ("converged", "max")


def history_document(loop, iterations, machine):
    """The history file's content: each iteration's parameters, value and outcome."""
    return {"loop": loop.name, "recipe": loop.recipe.name, "machine": machine,
            "max_iterations": loop.max_iterations,
            "state": iterations[-1].outcome if iterations else "open",
            "iterations": [it.record() for it in iterations]}


def status_lines(targets):
    """``status``: each loop's history, as far as the fetched results tell it (asks nothing)."""
    lines = []
    for target in targets:
        for loop in target.recipe.loops.values():
            its = loop.iterations
            state = {"converged": "converged at iteration %d", "max": "stopped at max_iterations (%d) "
                     "without converging", "next": "open", "open": "iteration %d is next"}[
                its[-1].outcome if its else "open"]
            state = state % len(its) if "%d" in state else state
            lines.append("loop     %s (recipe %s, at most %d iterations): %s" % (
                loop.name, loop.recipe.name, loop.max_iterations, state))
            if loop.error:
                lines.append("  " + loop.error)
            rows = [("iteration", "run", "params", "value", "outcome")]
            rows += [(str(it.number), it.run.name, ", ".join("%s=%s" % (k, sweep.field_text(v))
                                                            for k, v in it.params.items()),
                      "-" if it.value is None else str(it.value), it.outcome) for it in its]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            lines += ["  " + "  ".join(v.ljust(widths[i]) if i < 4 else v for i, v in enumerate(r)).rstrip()
                      for r in rows]
    return lines


def status_document(targets):
    """``status --json``: {loop name: its history document} (see :func:`history_document`)."""
    return {loop.name: history_document(loop, loop.iterations, target.machine.name)
            for target in targets for loop in target.recipe.loops.values()}
