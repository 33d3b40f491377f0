"""Run inputs end to end (hpcdo.inputs): a file and a directory tree, shared by many runs.

A generated project whose "code" (built by CMake) writes what it finds in
each path it is given.  Two inputs, ``params`` (a file) and ``mesh`` (a
directory with nested files), are shared by sweeps of runs: each is
uploaded once, whatever the number of runs reading it; each run directory
holds them under their names; changing one nested file of ``mesh`` uploads
``mesh`` alone, once, and reruns exactly the runs that read it.
"""

import os
import shlex

import pytest

from conftest import on_machine

CMAKELISTS = """cmake_minimum_required(VERSION 3.13)
project(reader NONE)
configure_file(reader.sh ${CMAKE_BINARY_DIR}/reader COPYONLY)
"""

#: writes seen.txt: each file under each argument (a file or a directory), with its content
READER = r"""#!/bin/sh
for p in "$@"; do
  if [ -d "$p" ]; then
    (cd "$p" && find . -type f | LC_ALL=C sort | while IFS= read -r f; do printf '%s/%s=%s\n' "$1" "${f#./}" "$(cat "$f")"; done)
  else
    printf '%s=%s\n' "$p" "$(cat "$p")"
  fi
  shift
done > seen.txt
[ -L mesh ] && echo "mesh is a link" >> seen.txt
echo "label $LABEL" >> seen.txt
"""

RECIPE = """from hpcdo.recipe import LocalTree, Recipe
recipe = Recipe(name="reader", source=LocalTree("reader"), executable="reader", outputs=["seen.txt"],
                inputs={"mesh": "data/mesh", "params": "data/params.txt"})
recipe.sweep("both", {"n": [1, 2, 3, 4]}, names="both-{n}", inputs=["mesh", "params"],
             args=["{inputs[mesh]}", "{inputs[params]}"], env={"LABEL": "{n}"}, cores=1, walltime="00:05:00")
recipe.sweep("mesh", {"n": [1, 2, 3]}, names="mesh-{n}", inputs=["mesh"],
             args=["{inputs[mesh]}"], env={"LABEL": "{n}"}, cores=1, walltime="00:05:00")
recipe.sweep("params", {"n": [1, 2]}, names="params-{n}", inputs=["params"],
             args=["{inputs[params]}"], env={"LABEL": "{n}"}, cores=1, walltime="00:05:00")
recipe.run("none", args=[], env={"LABEL": "none"}, cores=1, walltime="00:05:00")
"""

BOTH = ["both-%d" % n for n in (1, 2, 3, 4)]
MESH = ["mesh-%d" % n for n in (1, 2, 3)]
PARAMS = ["params-%d" % n for n in (1, 2)]
RUNS = BOTH + MESH + PARAMS + ["none"]


@pytest.fixture(params=["localhost", "testslurm"])
def input_project(request, tmp_path):
    for project in on_machine(request, tmp_path):
        top = project.path
        os.remove(os.path.join(top, "recipes", "lbflow.py"))
        files = {"recipes/reader.py": RECIPE, "reader/CMakeLists.txt": CMAKELISTS, "reader/reader.sh": READER,
                 "data/params.txt": "p=1", "data/mesh/a.txt": "alpha", "data/mesh/deep/er/b.txt": "beta"}
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(top, rel)), exist_ok=True)
            with open(os.path.join(top, rel), "w") as fh:
                fh.write(text)
        os.chmod(os.path.join(top, "reader", "reader.sh"), 0o755)
        yield project
        # the store is read-only: let the fixture remove the work root
        project.remote("chmod -R u+w reader/inputs")


def seen(project, run):
    with open(os.path.join(project.results(run), "seen.txt")) as fh:
        return fh.read().splitlines()


def sent(out):
    """The uploads of inputs the call made, as the trace recorded them."""
    return [t["what"] for t in out.trace if t["what"].startswith("send input")]


def steps_of(out, step):
    return {t.split(":", 1)[1] for t in out.ran if t.startswith(step + ":")}


def test_inputs_are_sent_once_linked_into_every_run_and_a_change_reruns_only_their_runs(input_project):
    project = input_project
    out = project.doit("fetch_results")
    assert steps_of(out, "send_input") == {"mesh", "params"}, out
    assert sorted(sent(out)) == ["send input mesh (2 files, 9 bytes)", "send input params (1 file, 3 bytes)"], out.trace
    assert steps_of(out, "submit") == set(RUNS), out
    for run in BOTH:
        assert seen(project, run) == ["mesh/a.txt=alpha", "mesh/deep/er/b.txt=beta", "params=p=1",
                                      "mesh is a link", "label " + run[-1]], run
    for run in MESH:
        assert seen(project, run)[:2] == ["mesh/a.txt=alpha", "mesh/deep/er/b.txt=beta"], run
    for run in PARAMS:
        assert seen(project, run) == ["params=p=1", "label " + run[-1]], run
    assert seen(project, "none") == ["label none"]
    # one stored copy of each, by content; the runs hold links to it, which are never fetched
    store = project.remote("ls reader/inputs").split()
    assert len(store) == 2 and all(len(d) == 64 for d in store), store
    link = project.remote("readlink reader/runs/both-1/mesh").strip()
    assert link.startswith("../../inputs/") and link.endswith("/content") and link.split("/")[3] in store
    links = project.remote("stat -c %h reader/runs/both-1/params reader/runs/params-2/params").split()
    assert links == [str(1 + len(BOTH) + len(PARAMS))] * 2, links     # the store's copy and one a run
    assert not os.path.exists(os.path.join(project.results("both-1"), "mesh"))
    assert not os.path.exists(os.path.join(project.results("both-1"), "params"))

    again = project.doit("fetch_results")
    assert again.ran == [] and sent(again) == [], again
    assert [t["what"] for t in again.trace if t["op"] == "run"] == ["probe"], again.trace

    # one nested file of the directory changes: it alone is sent again, and only its runs rerun
    with open(project.file("data/mesh/deep/er/b.txt"), "w") as fh:
        fh.write("BETA!")
    out = project.doit("fetch_results")
    assert steps_of(out, "send_input") == {"mesh"}, out
    assert sent(out) == ["send input mesh (2 files, 10 bytes)"], out.trace
    assert steps_of(out, "submit") == set(BOTH + MESH), out
    assert steps_of(out, "fetch_results") == set(BOTH + MESH), out
    for run in BOTH + MESH:
        assert "mesh/deep/er/b.txt=BETA!" in seen(project, run), run
    assert len(project.remote("ls reader/inputs").split()) == 3       # the old content is kept

    # changed back: that content is still on the machine, so nothing is sent, only the runs rerun
    with open(project.file("data/mesh/deep/er/b.txt"), "w") as fh:
        fh.write("beta")
    out = project.doit("fetch_results")
    assert sent(out) == [] and "send_input:mesh" in out.uptodate, out
    assert steps_of(out, "submit") == set(BOTH + MESH), out
    assert "mesh/deep/er/b.txt=beta" in seen(project, "mesh-3")


def test_a_missing_input_or_an_unknown_one_is_one_line(input_project):
    project = input_project
    os.remove(project.file("data/params.txt"))
    out = project.doit("fetch_results", ok=False)
    assert "Traceback" not in out.out and out.ran == [], out
    assert "recipe reader: input params: data/params.txt does not exist" in out.out, out
    with open(project.file("data/params.txt"), "w") as fh:
        fh.write("p=1")
    project.edit("recipes/reader.py", 'inputs=["params"]', 'inputs=["param"]')
    out = project.doit("fetch_results", ok=False)
    assert "Traceback" not in out.out, out
    assert "run params-1: unknown input 'param' (the recipe has: mesh, params)" in out.out, out
