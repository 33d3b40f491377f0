"""Analysis tasks: their dependencies, and the clashes refused before anything runs."""

import hashlib
import json
import os
import types

import pytest

from hpcdo import ConfigError
from hpcdo.recipe import LocalTree, Recipe
from hpcdo.steps import analyse


class _Target:
    def __init__(self, recipe):
        self.recipe = recipe

    def results_dir(self, run):
        return "/p/results/m/" + run.name


def project(*recipes):
    return types.SimpleNamespace(machine=types.SimpleNamespace(name="m"), dir="/p",
                                 targets=[_Target(r) for r in recipes])


def recipe(name="r"):
    rec = Recipe(name=name, source=LocalTree("src"), executable="x")
    rec.run("a")
    rec.run("b")
    return rec


def test_an_analysis_depends_on_its_runs_fetches_and_their_content():
    rec = recipe()
    rec.analysis("t", outputs=["t.txt"], runs=["b"])(lambda results, out: None)
    (task,) = analyse.tasks(project(rec), lambda run: "fetch_results:" + run)
    assert task["task_dep"] == ["fetch_results:b"]
    assert "file_dep" not in task          # a fetch rewrites the provenance; its content counts
    assert [u.results for u in task["uptodate"] if isinstance(u, analyse.ResultsUnchanged)] == \
        [{"b": "/p/results/m/b"}]
    assert task["targets"] == ["/p/results/m/t.txt"]


def _fetched(path, fetched_at, velocity="1,2\n"):
    path.mkdir(exist_ok=True)
    (path / "velocity.csv").write_text(velocity)
    (path / "hpcdo-provenance.json").write_text(json.dumps({"job_id": "7", "fetched_at": fetched_at}))


def test_the_results_digest_ignores_the_fetch_time_only(tmp_path):
    run = tmp_path / "a"
    _fetched(run, "2026-01-01T00:00:00")
    first = analyse.results_digest({"a": str(run)})
    _fetched(run, "2026-01-02T00:00:00")                        # fetched again, same content
    assert analyse.results_digest({"a": str(run)}) == first
    _fetched(run, "2026-01-02T00:00:00", velocity="1,3\n")     # a result changed
    assert analyse.results_digest({"a": str(run)}) != first
    _fetched(run, "2026-01-01T00:00:00")
    (run / "extra.txt").write_text("")                          # a new result file
    assert analyse.results_digest({"a": str(run)}) != first
    (run / "extra.txt").unlink()
    assert analyse.results_digest({"a": str(run)}) == first
    assert analyse.results_digest({"b": str(run)}) != first      # another run's results


def test_results_unchanged_saves_the_digest_it_compared(tmp_path):
    run = tmp_path / "a"
    _fetched(run, "t1")
    check = analyse.ResultsUnchanged({"a": str(run)})
    task = types.SimpleNamespace(value_savers=[])
    assert check(task, {}) is False                              # never ran
    saved = task.value_savers[0]()
    assert check(types.SimpleNamespace(value_savers=[]), saved) is True
    _fetched(run, "t2", velocity="9\n")
    assert check(types.SimpleNamespace(value_savers=[]), saved) is False


@pytest.mark.parametrize("build, message", [
    (lambda r, s: r.analysis("t", outputs=["a"])(len), "output a is also the name of run a"),
    (lambda r, s: (r.analysis("t", outputs=["x"])(len), s.analysis("u", outputs=["x"])(len)),
     "analyses t and u both write results/m/x"),
    (lambda r, s: (r.analysis("t", outputs=["x"])(len), s.analysis("t", outputs=["y"])(len)),
     "analysis t is defined by recipes r and s"),
    (lambda r, s: r.analysis("t", outputs=["x"], runs=["zz"])(len), "unknown run zz"),
])
def test_clashes_are_one_error(build, message):
    one, two = recipe("r"), recipe("s")
    build(one, two)
    with pytest.raises(ConfigError, match=message):
        list(analyse.tasks(project(one, two), lambda run: "fetch_results:" + run))


@pytest.mark.parametrize("kwargs, message", [
    ({"outputs": []}, r"name the files it writes"),
    ({"outputs": ["../x"]}, r"output '\.\./x' must be a plain file name"),
    ({"outputs": [".hidden"]}, r"must be a plain file name"),
    ({"outputs": ["x"], "runs": "a"}, r"runs must be a list of run names"),
])
def test_bad_declarations_are_one_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        recipe().analysis("t", **kwargs)(len)


def test_a_function_it_calls_counts_in_its_code_digest():
    from hpcdo.analysis import Analysis
    ns = {}
    exec("def helper(): return 1\ndef f(results, out): return helper()\n", ns)
    for fn in ns.values():
        if callable(fn):
            fn.__module__ = "m"
    first = Analysis(recipe(), "t", ns["f"], None, ["x"]).code_digest()
    exec("def helper(): return 2\n", ns)
    ns["helper"].__module__ = "m"
    assert Analysis(recipe(), "t", ns["f"], None, ["x"]).code_digest() != first


def test_a_file_of_the_same_size_and_time_is_not_read_again(tmp_path):
    run = tmp_path / "a"
    _fetched(run, "t1")
    seen = {}
    first = analyse.results_digest({"a": str(run)}, {}, seen)
    velocity = str(run / "velocity.csv")
    assert seen[velocity][2] == hashlib.sha256(b"1,2\n").hexdigest()
    # a recorded hash is trusted while size and time match: the file is not read
    lied = {path: list(entry) for path, entry in seen.items()}
    lied[velocity][2] = hashlib.sha256(b"other").hexdigest()
    assert analyse.results_digest({"a": str(run)}, lied, {}) != first
    assert analyse.results_digest({"a": str(run)}, seen, {}) == first
    # a changed time (a fetch rewrote it) reads it again
    os.utime(velocity, ns=(1, 1))
    again = {}
    assert analyse.results_digest({"a": str(run)}, lied, again) == first
    assert again[velocity][1] == 1
