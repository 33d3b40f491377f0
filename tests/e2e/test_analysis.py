"""Analysis steps end to end: they run after the fetch, rerun only when a result or their code
changes, and a failing one leaves the previous report whole and says one line."""

import os
import re

import pytest

from conftest import on_machine

RECIPE = '''from hpcdo.recipe import LocalTree, Recipe
recipe = Recipe(name="lbflow", source=LocalTree("demo/lbflow"), executable="lbflow",
    geometries={"straight": "demo/geometries/straight.gmy", "stenosis": "demo/geometries/stenosis.gmy"},
    outputs=["summary.json"])
recipe.run("s40", geometry="straight", args=["--geometry", "{geometry}", "--steps", 40], cores=1)
recipe.run("n70", geometry="stenosis", args=["--geometry", "{geometry}", "--steps", 70], cores=1)
recipe.run("n90", geometry="stenosis", args=["--geometry", "{geometry}", "--steps", 90], cores=1)


def describe(summary):
    return "%%s %%d" %% (summary["geometry"], summary["steps"])


@recipe.analysis("table", outputs=["table.txt", "count.txt"], runs=%(runs)r)
def table(results, out):
    import json, os
    with open(os.path.join(os.path.dirname(out), "..", "..", "calls.log"), "a") as fh:
        fh.write("call\\n")
    lines = []
    for run, path in sorted(results.items()):
        with open(os.path.join(path, "summary.json")) as fh:
            lines.append("%%s %%s" %% (run, describe(json.load(fh))))
    with open(os.path.join(out, "table.txt"), "w") as fh:
        fh.write("\\n".join(lines) + "\\n")
    %(fail)s
    with open(os.path.join(out, "count.txt"), "w") as fh:
        fh.write(str(len(lines)))
'''


def write(project, runs=None, fail="pass"):
    with open(project.file("recipes/lbflow.py"), "w") as fh:
        fh.write(RECIPE % {"runs": runs, "fail": fail})


def calls(project):
    path = project.file("calls.log")
    return len(open(path).read().split()) if os.path.exists(path) else 0


@pytest.fixture(params=["localhost", "testslurm"])
def analysis_project(request, tmp_path):
    yield from on_machine(request, tmp_path)


def test_an_analysis_reruns_only_when_a_result_or_its_code_changes(analysis_project):
    project = analysis_project
    write(project)
    out = project.doit("fetch_results")
    assert out.ran[-1] == "analyse:table", out
    table = os.path.join(project.path, "results", project.machine, "table.txt")
    assert open(table).read() == "n70 stenosis 70\nn90 stenosis 90\ns40 straight 40\n"
    assert calls(project) == 1

    out = project.doit("fetch_results")
    assert out.ran == [] and calls(project) == 1, out

    # a function it calls changes: only the analysis runs again
    project.edit("recipes/lbflow.py", 'return "%s %d"', 'return "%s/%d"')
    out = project.doit("fetch_results")
    assert out.ran == ["analyse:table"], out
    assert open(table).read().splitlines()[0] == "n70 stenosis/70"

    # one run's results fetched again with the same content: the fetch only
    os.remove(os.path.join(project.results("n70"), "summary.json"))
    out = project.doit("fetch_results")
    assert [t for t in out.ran if not t.startswith(("wait:", "_"))] == ["fetch_results:n70"], out
    assert calls(project) == 2

    # one run's results changed on the machine: that fetch, then the analysis
    project.remote("sleep 1; sed -i 's/\"steps\": 70/\"steps\": 71/' lbflow/runs/n70/summary.json")
    out = project.doit("fetch_results")
    assert [t for t in out.ran if not t.startswith(("wait:", "_"))] == ["fetch_results:n70", "analyse:table"], out
    assert calls(project) == 3
    assert open(table).read().splitlines()[0] == "n70 stenosis/71"


def test_an_analysis_of_named_runs_waits_only_for_them(analysis_project):
    project = analysis_project
    write(project, runs=["s40"])
    out = project.doit("analyse:table")
    fetched = {t.split(":", 1)[1] for t in out.ran if t.startswith("fetch_results:")}
    assert fetched == {"s40"}, out
    assert open(os.path.join(project.path, "results", project.machine, "count.txt")).read() == "1"


def test_a_failing_analysis_says_one_line_and_leaves_the_last_report_whole(local_project):
    project = local_project
    write(project)
    project.doit("fetch_results")
    report_dir = os.path.join(project.path, "results", "localhost")
    before = {n: open(os.path.join(report_dir, n)).read() for n in ("table.txt", "count.txt")}

    write(project, fail="raise ValueError('no flow in %s' % lines[0])")
    out = project.doit("fetch_results", ok=False)
    assert "Traceback" not in out.out, out
    line = [l for l in out.out.splitlines() if "analysis table failed" in l]
    assert line and re.search(r"recipes/lbflow\.py:\d+: ValueError: no flow in n70", line[0]), out
    after = {n: open(os.path.join(report_dir, n)).read() for n in ("table.txt", "count.txt")}
    assert after == before
    assert not [n for n in os.listdir(report_dir) if n.startswith(".analysis")]

    write(project, fail="return")
    out = project.doit("fetch_results", ok=False)
    assert any("analysis table wrote no count.txt" in l for l in out.out.splitlines()), out
    assert {n: open(os.path.join(report_dir, n)).read() for n in ("table.txt", "count.txt")} == before
