"""Sweeps end to end: every run of a sweep is an ordinary run with its own stamp and results.

Adding a value submits only the new runs, removing one leaves its results alone, and each run
got the values its name says (read back from the code's own summary.json).
"""

import json
import os

import pytest

RECIPE = """from hpcdo.recipe import LocalTree, Recipe
recipe = Recipe(name="lbflow", source=LocalTree("demo/lbflow"), executable="lbflow",
    cmake_options={"CMAKE_BUILD_TYPE": "Release"},
    geometries={"straight": "demo/geometries/straight.gmy", "stenosis": "demo/geometries/stenosis.gmy"},
    outputs=["summary.json"])
recipe.sweep("flow", {"geometry": ["straight", "stenosis"], "steps": %r}, replicas=2,
             args=["--geometry", "{geometry}", "--steps", "{steps}", "--output-every", 0],
             env={"HPCDO_REPLICA": "{replica}"}, cores=1, walltime="00:05:00")
"""


def write(project, steps):
    with open(project.file("recipes/lbflow.py"), "w") as fh:
        fh.write(RECIPE % (steps,))


def names(steps):
    return {"flow-%s-steps%d-r%d" % (g, s, r) for g in ("straight", "stenosis") for s in steps for r in (1, 2)}


@pytest.fixture(params=["localhost", "testslurm"])
def sweep_project(request, tmp_path):
    from conftest import on_machine
    yield from on_machine(request, tmp_path)


def test_a_sweep_runs_each_combination_and_a_new_value_runs_only_its_runs(sweep_project):
    project = sweep_project
    write(project, [40, 60])
    out = project.doit("fetch_results")
    submitted = {t.split(":", 1)[1] for t in out.ran if t.startswith("submit:")}
    assert submitted == names([40, 60]), out
    for name in names([40, 60]):
        summary = json.load(open(os.path.join(project.results(name), "summary.json")))
        steps = int(name.split("-steps")[1].split("-")[0])
        assert summary["steps"] == steps, (name, summary)
        assert name.split("-")[1] in summary["geometry"], (name, summary)

    write(project, [20, 40, 60])
    out = project.doit("fetch_results")
    ran = [t for t in out.ran if not t.startswith("_")]
    for step in ("submit", "fetch_results"):
        assert {t.split(":", 1)[1] for t in ran if t.startswith(step + ":")} == names([20]), out
    # (a wait is up to date when the job ended before it was asked)
    assert all(t.split(":", 1)[1] in names([20]) for t in ran), out

    write(project, [20])
    out = project.doit("fetch_results")
    assert out.ran == [], out
    for name in names([40, 60]):
        assert os.path.isfile(os.path.join(project.results(name), "summary.json")), name
