"""Loops in the recipe API: the chain of iterations worked out from fetched results (hpcdo.loop).

The chain is pure: each test gives it results directories written here (a
value file and a provenance file holding the run settings the results were
made with, as hpcdo/steps/results.py writes them) and checks which
iterations it makes, with which parameters, and where it stops.
"""

import json
import os

import pytest

from hpcdo import ConfigError
from hpcdo.loop import Converged, Next, chain, finished, settings_match, status_lines
from hpcdo.recipe import LocalTree, Recipe
from hpcdo.steps.loop import materialise
from hpcdo.steps.results import PROVENANCE


def recipe():
    return Recipe(name="r", source=LocalTree("src"), executable="x",
                  geometries={"straight": "g/straight.gmy"})


def halving(factor=0.5, tolerance=0.02):
    """An update that moves ``force`` to where ``value`` = 1, by a fraction ``factor`` of the way."""
    def update(results, params, history):
        with open(os.path.join(results, "value")) as fh:
            value = float(fh.read())
        if abs(value - 1) <= tolerance:
            return Converged(value=value)
        return Next(value=value, force=params["force"] * (1 + factor * (1 / value - 1)))
    return update


def declare(rec, update, first=None, max_iterations=8):
    rec.loop("cal", first=first or {"force": 0.05}, max_iterations=max_iterations, geometry="straight",
             args=["--geometry", "{geometry}", "--force", "{force}"], cores=1)(update)
    return rec.loops["cal"]


class Results:
    """Fetched results in ``tmp_path``: the value a code with value = 4 x force gives, per run name."""

    def __init__(self, tmp_path, law=lambda force: 4 * force):
        self.top, self.law, self.asked = str(tmp_path), law, []

    def fetch(self, run, settings=None):
        """Write ``run``'s results as a fetch would: its value, and the settings it ran with."""
        where = os.path.join(self.top, run.name)
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, "value"), "w") as fh:
            fh.write(repr(self.law(float(run.params["force"]))))
        with open(os.path.join(where, PROVENANCE), "w") as fh:
            json.dump({"run_settings": settings or run.spec()}, fh)

    def __call__(self, run):
        """``chain``'s results_of: the directory, if its provenance has ``run``'s current settings."""
        self.asked.append(run.name)
        where = os.path.join(self.top, run.name)
        try:
            with open(os.path.join(where, PROVENANCE)) as fh:
                prov = json.load(fh)
        except OSError:
            return None
        return where if settings_match(prov, run) else None


def run_all(loop, results):
    """Fetch iteration after iteration as the loop task would; the final chain."""
    for _ in range(loop.max_iterations + 1):
        iterations, error = chain(loop, results)
        assert error is None
        if finished(iterations):
            return iterations
        results.fetch(iterations[-1].run)
    raise AssertionError("the chain never finished")


def test_without_results_the_chain_is_the_first_iteration_alone(tmp_path):
    loop = declare(recipe(), halving())
    iterations, error = chain(loop, Results(tmp_path))
    assert error is None and len(iterations) == 1
    first = iterations[0]
    assert (first.number, first.run.name, first.params, first.outcome) == (1, "cal-01", {"force": 0.05}, "open")
    fields = first.run.fields(first.run.layout(1, None), "straight.gmy")
    assert first.run.argv(fields) == ["--geometry", "straight.gmy", "--force", "0.05"]
    assert first.run.loop is loop


def test_each_iteration_runs_what_the_function_made_of_the_last_results(tmp_path):
    results = Results(tmp_path)
    loop = declare(recipe(), halving())
    iterations = run_all(loop, results)
    forces = [it.params["force"] for it in iterations]
    assert forces[0] == 0.05
    for before, after in zip(iterations, iterations[1:]):
        value = 4 * before.params["force"]
        assert before.value == value and before.outcome == "next"
        assert after.params["force"] == pytest.approx(before.params["force"] * (1 + 0.5 * (1 / value - 1)))
    assert iterations[-1].outcome == "converged" and abs(iterations[-1].value - 1) <= 0.02
    assert [it.run.name for it in iterations] == ["cal-%02d" % n for n in range(1, len(iterations) + 1)]
    assert 4 <= len(iterations) <= 8, forces


def test_history_holds_the_earlier_iterations(tmp_path):
    seen = []

    def update(results, params, history):
        seen.append([h["iteration"] for h in history])
        return Next(value=len(history), force=params["force"] + 1) if len(history) < 2 else Converged(value=9)
    results = Results(tmp_path)
    loop = declare(recipe(), update)
    iterations = run_all(loop, results)
    assert [it.params["force"] for it in iterations] == [0.05, 1.05, 2.05]
    assert seen[-3:] == [[], [1], [1, 2]]
    assert [it.record()["value"] for it in iterations] == [0, 1, 9]


def test_max_iterations_ends_the_chain(tmp_path):
    results = Results(tmp_path, law=lambda force: 100.0)          # never converges
    loop = declare(recipe(), halving(), max_iterations=3)
    iterations = run_all(loop, results)
    assert [it.outcome for it in iterations] == ["next", "next", "max"]
    assert finished(iterations)


def test_results_made_with_other_settings_do_not_count(tmp_path):
    """An iteration whose results ran with other settings is the one to run again; the chain stops there."""
    results = Results(tmp_path)
    loop = declare(recipe(), halving())
    done = run_all(loop, results)
    assert len(done) >= 4
    # the function changed: it now moves all the way (factor 1) from iteration 3 on
    def changed(res, params, history):
        return halving(0.5 if len(history) < 2 else 1.0)(res, params, history)
    other = declare(recipe(), changed)
    iterations, error = chain(other, results)
    assert error is None
    assert [it.params for it in iterations[:3]] == [it.params for it in done[:3]]
    assert iterations[3].params != done[3].params
    assert len(iterations) == 4 and iterations[3].outcome == "open", "iteration 4 is the one to run again"


def test_a_changed_first_iteration_reruns_from_the_start(tmp_path):
    results = Results(tmp_path)
    run_all(declare(recipe(), halving()), results)
    iterations, _error = chain(declare(recipe(), halving(), first={"force": 0.3}), results)
    assert len(iterations) == 1 and iterations[0].outcome == "open"


def test_the_iterations_settings_are_in_their_signature():
    loop = declare(recipe(), halving())
    one, two = loop.make_run(2, {"force": 0.5}), loop.make_run(2, {"force": 0.6})
    assert one.name == two.name == "cal-02"
    assert one.spec() != two.spec()
    assert one.spec() == loop.make_run(2, {"force": 0.5}).spec()


def test_the_functions_mistakes_are_one_line_and_keep_the_iterations_before(tmp_path):
    results = Results(tmp_path)

    def broken(res, params, history):
        if history:
            return {"force": 1}
        return Next(value=1, force=0.5)
    loop = declare(recipe(), broken)
    results.fetch(loop.make_run(1, {"force": 0.05}))
    results.fetch(loop.make_run(2, {"force": 0.5}))
    iterations, error = chain(loop, results)
    assert len(iterations) == 2 and iterations[0].outcome == "next"
    assert error.startswith("recipe r: loop cal: the function returned {'force': 1} for iteration 2; return Next")

    def raising(res, params, history):
        raise ValueError("no flow rate in %s" % os.path.basename(res))
    _its, error = chain(declare(recipe(), raising), results)
    assert "the function failed on the results of iteration 1: " in error
    assert error.endswith("ValueError: no flow rate in cal-01") and "\n" not in error

    def unknown(res, params, history):
        return Next(value=1, tau=2)
    _its, error = chain(declare(recipe(), unknown), results)
    assert "returned parameter tau, which the first iteration does not have (force)" in error

    def bad_value(res, params, history):
        return Next(value=1, force=[1, 2])
    _its, error = chain(declare(recipe(), bad_value), results)
    assert "must be a string or number" in error


@pytest.mark.parametrize("kwargs, message", [
    ({"first": {}}, "first must be a dict of parameter names to values"),
    ({"first": {"force": True}}, "value True must be a string or number"),
    ({"first": {"cores": 2}}, "parameter 'cores' is a name hpcdo fills in itself"),
    ({"max_iterations": 0}, "max_iterations must be an integer from 1 to 99"),
    ({"args": ["{tau}"]}, r"uses \{tau\}; only"),
    ({"tau": 1}, "unknown setting tau; a loop takes geometry, args"),
])
def test_mistakes_in_a_loop_are_one_line_at_load(kwargs, message):
    args = dict({"first": {"force": 1}, "args": ["{force}"]}, **kwargs)
    with pytest.raises(ConfigError, match=message):
        recipe().loop("cal", **args)(halving())


def test_a_loop_defined_twice_or_clashing_with_a_run_is_refused(tmp_path):
    rec = recipe()
    rec.loop("cal", first={"force": 1})(halving())
    with pytest.raises(ConfigError, match="loop 'cal' is defined twice"):
        rec.loop("cal", first={"force": 1})(halving())
    rec.run("cal-03", args=["x"])

    class Target:
        recipe = rec

        def results_dir(self, run):
            return os.path.join(str(tmp_path), run.name)
    with pytest.raises(ConfigError, match="run cal-03 has the name of iteration 3 of loop cal"):
        materialise([Target()])


def test_materialise_adds_the_known_iterations_as_runs_and_status_shows_them(tmp_path):
    rec = recipe()
    rec.run("plain", args=["x"])
    loop = declare(rec, halving(), first={"force": 0.1})
    results = Results(tmp_path)
    results.fetch(loop.make_run(1, {"force": 0.1}))

    class Target:
        recipe = rec

        class machine:
            name = "m"

        def results_dir(self, run):
            return os.path.join(str(tmp_path), run.name)
    materialise([Target()])
    assert list(rec.runs) == ["plain", "cal-01", "cal-02"]
    assert rec.runs["cal-02"].params == {"force": pytest.approx(0.1 * (1 + 0.5 * (1 / 0.4 - 1)))}
    text = "\n".join(status_lines([Target()]))
    assert "loop     cal (recipe r, at most 8 iterations): iteration 2 is next" in text
    assert "  1          cal-01  force=0.1                  0.4    next" in text, text
    assert "  2          cal-02  force=0.17500000000000002  -      open" in text, text


def test_history_file_and_plot_or_one_line_without_matplotlib(tmp_path, monkeypatch):
    from hpcdo.steps.loop import NO_PLOT, LoopStep
    rec = recipe()
    loop = declare(rec, halving())
    results = Results(tmp_path / "fetched")
    iterations = run_all(loop, results)

    class Target:
        recipe, project_dir = rec, str(tmp_path)

        class machine:
            name = "m"

    class Steps:
        jobs, results = None, {"r": None}
    step = LoopStep(Steps, Target, loop)
    step.write_history(iterations)
    with open(str(tmp_path / "results" / "m" / "cal.history.json")) as fh:
        doc = json.load(fh)
    assert doc["state"] == "converged" and [i["params"]["force"] for i in doc["iterations"]] == \
        [it.params["force"] for it in iterations]
    pytest.importorskip("matplotlib")
    assert step.write_plot(iterations) == "loop cal: wrote results/m/cal.history.json and results/m/cal.convergence.png"
    assert os.path.getsize(str(tmp_path / "results" / "m" / "cal.convergence.png")) > 1000
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    line = step.write_plot(iterations)
    assert line == "loop cal: history in results/m/cal.history.json; results/m/cal.convergence.png " + NO_PLOT
