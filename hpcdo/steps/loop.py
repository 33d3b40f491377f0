"""The loop step: a recipe's iterative workflow (:mod:`hpcdo.loop`) as the doit task ``loop:<name>``.

At load, :func:`materialise` works out each loop's iterations from the
fetched results (:func:`hpcdo.loop.chain`; results count only when their
provenance says they were made with the iteration's current settings) and
puts their runs among the recipe's runs, so the probe asks about them, and
``status``, ``cancel``, ``retry`` and ``jobscript`` know them, like any run.

The task's check is local once the probe has answered: the last known
iteration ended the loop (converged, or the last allowed), and every
iteration's job completed for its current inputs and its results here are
the machine's.  Its action walks the chain from iteration 1: an iteration
whose job and results are current is passed over, any other is submitted
(at most one job per run and inputs: :class:`hpcdo.steps.jobs.Submit`),
waited for and fetched by the ordinary steps; then the function gives the
next iteration's parameters, from results fetched for the current inputs.
So a killed call resumes at the iteration it was in, without submitting a
job that is pending, running or done, and a change upstream reruns from
the first iteration whose inputs change.  The action writes the history
(``results/<machine>/<loop>.history.json``) after each iteration, and the
convergence plot (``<loop>.convergence.png``, with matplotlib) at the end.
"""

import json
import os
import sys

from .. import ConfigError
from ..loop import Iteration, chain, finished, history_document, same_params, settings_match
from .results import read_provenance

NO_PLOT = "not written: matplotlib is not installed (pip install 'hpcdo[demo]')"


def materialise(targets):
    """Give each loop of ``targets``' recipes its iterations known from local results; add their runs."""
    owners = {run: t.recipe.name for t in targets for run in t.recipe.runs}
    for target in targets:
        recipe = target.recipe
        for loop in recipe.loops.values():
            def results_of(run, target=target):
                where = target.results_dir(run)
                return where if settings_match(read_provenance(where), run) else None
            loop.iterations, loop.error = chain(loop, results_of)
            for number in range(1, loop.max_iterations + 1):
                name = loop.run_name(number)
                if name in owners:
                    raise ConfigError("recipe %s: run %s has the name of iteration %d of loop %s (recipe %s); "
                                      "rename one" % (owners[name], name, number, loop.name, recipe.name))
            for iteration in loop.iterations:
                recipe.runs[iteration.run.name] = iteration.run


def is_iteration(run):
    return getattr(run, "loop", None) is not None


class LoopStep:
    """The task ``loop:<name>`` of ``loop`` of ``target`` (a :class:`hpcdo.target.Target`)."""

    def __init__(self, steps, target, loop):
        self.target, self.loop = target, loop
        self.jobs = steps.jobs
        self.results = steps.results[target.recipe.name]
        self.out_dir = os.path.join(target.project_dir, "results", target.machine.name)

    def ready(self, run):
        return self.jobs.wait_current(self.target, run) and self.results.fetch_current(run)

    def current(self):
        iterations = self.loop.iterations
        return not self.loop.error and finished(iterations) and all(self.ready(it.run) for it in iterations)

    def why(self):
        if self.loop.error:
            return self.loop.error
        for it in self.loop.iterations:
            if not self.ready(it.run):
                return "iteration %d (run %s) has no results fetched for its current inputs" % (
                    it.number, it.run.name)
        return "iteration %d is the next to run" % (len(self.loop.iterations) + 1)

    def ensure(self, run):
        """Bring ``run``'s results here for its current inputs: submit (if no job has them), wait, fetch."""
        said, jobs, target = [], self.jobs, self.target
        if not jobs.wait_current(target, run):
            if not jobs.submit.submit_current(target, run):
                said.append(jobs.submit.submit_one(target, run))
            said.append(jobs.do_wait(target, run))
        if not self.results.fetch_current(run):
            said.append(self.results.do_fetch(run))
        return said

    def do_loop(self):
        loop, recipe = self.loop, self.target.recipe
        known = {it.number: it for it in loop.iterations}
        done, history, params, lines = [], [], loop.first, []
        for number in range(1, loop.max_iterations + 1):
            old = known.get(number)
            if old is not None and same_params(old.params, params):
                run = old.run
            else:
                run = loop.make_run(number, params)
                _forget(self.target, run.name)       # its jobscript and signature are the new settings'
                recipe.runs[run.name] = run
            iteration = Iteration(number, run, params)
            done.append(iteration)
            said = self.ensure(run)
            answer = loop.step(self.target.results_dir(run), iteration, history)
            history.append(iteration.record())
            loop.iterations = list(done)
            self.write_history(done)
            line = "loop %s: iteration %d (%s): %s -> value %s, %s" % (
                loop.name, number, run.name, _params_text(params), iteration.value, _outcome_text(iteration))
            lines.append(line + ("" if said else " (results already here)"))
            sys.stderr.write("hpcdo: %s\n" % line)
            sys.stderr.flush()
            if iteration.outcome != "next":
                break
            params = loop.next_params(iteration, answer)
        for number in range(len(done) + 1, loop.max_iterations + 1):
            stale = recipe.runs.get(loop.run_name(number))
            if stale is not None and getattr(stale, "loop", None) is loop:
                del recipe.runs[stale.name]          # of an older chain: not part of this one
        lines.append(self.write_plot(done))
        return "\n".join(lines)

    def history_path(self):
        return os.path.join(self.out_dir, "%s.history.json" % self.loop.name)

    def plot_path(self):
        return os.path.join(self.out_dir, "%s.convergence.png" % self.loop.name)

    def write_history(self, iterations):
        os.makedirs(self.out_dir, exist_ok=True)
        path = self.history_path()
        with open(path + ".tmp", "w") as fh:
            json.dump(history_document(self.loop, iterations, self.target.machine.name), fh, indent=2,
                      sort_keys=True)
            fh.write("\n")
        os.replace(path + ".tmp", path)

    def write_plot(self, iterations):
        """The convergence plot: the value, and each numeric parameter, per iteration."""
        rel = os.path.relpath(self.plot_path(), self.target.project_dir)
        try:
            import matplotlib
            matplotlib.use("Agg")
            from matplotlib import pyplot
            from matplotlib.ticker import MaxNLocator
        except ImportError:
            return "loop %s: history in %s; %s %s" % (
                self.loop.name, os.path.relpath(self.history_path(), self.target.project_dir), rel, NO_PLOT)
        numbers = [it.number for it in iterations]
        series = [("value", [it.value for it in iterations])]
        series += [(key, [it.params.get(key) for it in iterations]) for key in self.loop.first]
        series = [(k, v) for k, v in series if all(isinstance(x, (int, float)) for x in v)]
        fig, axes = pyplot.subplots(max(1, len(series)), 1, sharex=True, squeeze=False,
                                    figsize=(6, 2.2 * max(1, len(series))))
        for ax, (key, values) in zip(axes[:, 0], series):
            ax.plot(numbers, values, "o-")
            ax.set_ylabel(key)
            ax.grid(True, alpha=0.3)
        axes[-1, 0].set_xlabel("iteration")
        axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0, 0].set_title("loop %s on %s: %s" % (self.loop.name, self.target.machine.name,
                                                   _outcome_text(iterations[-1]) if iterations else "open"))
        fig.tight_layout()
        tmp = self.plot_path() + ".tmp.png"
        fig.savefig(tmp, dpi=100)
        pyplot.close(fig)
        os.replace(tmp, self.plot_path())
        return "loop %s: wrote %s and %s" % (
            self.loop.name, os.path.relpath(self.history_path(), self.target.project_dir), rel)


def _forget(target, name):
    """Drop what ``target`` worked out for a run called ``name`` (it now has other settings)."""
    with target._lock:
        for key in list(target._cache):
            if key == "jobscript:" + name or (isinstance(key, tuple) and len(key) > 1 and key[1] == name):
                del target._cache[key]


def _params_text(params):
    return ", ".join("%s=%s" % (k, v) for k, v in params.items())


def _outcome_text(iteration):
    return {"converged": "converged", "max": "max_iterations reached without converging",
            "next": "not converged", "open": "not run yet"}[iteration.outcome]
