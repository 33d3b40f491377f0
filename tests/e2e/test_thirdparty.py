"""A third-party-style CMake code through the whole pipeline, beside the demo.

``tests/thirdparty/miniheat`` (MIT, see its README) is shaped like a real C++
mini-app, not like the demo: ``project(... LANGUAGES CXX)``, a static library
target plus the executable in ``app/`` (so ``executable="app/miniheat"``),
an optional ``find_package(OpenMP)``, a ``configure_file`` version header, a
``cmake/`` module, an input deck read from a file (sent as the run's
geometry) and outputs in a subdirectory (``output/fields/field_<step>.csv``),
whose sizes differ from run to run.  The project keeps the demo's ``lbflow``
recipe too, so every build task is ``<step>:<recipe>`` and an edit of one
code must leave the other's runs alone.

The scenario, on localhost and testslurm: the first call fetches every run,
each miniheat file byte for byte as a Python model of the solver computes it;
the next call is a no-op; an edit of one source file (``src/io.cpp``)
recompiles that one file and reruns exactly ``compile:miniheat`` and the
miniheat runs; then a no-op again.
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from genproject import Checks, make_project, remote_job_ids, run_tasks, short  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CODE = os.path.join(os.path.dirname(HERE), "thirdparty", "miniheat")
DEMO_RUNS = ("straight", "bifurcation", "stenosis")
DECKS = {"plate": "plate.deck", "rod": "rod.deck", "hot-corner": "hot-corner.deck"}
#: run name -> (deck, args, output directory, steps or None for the deck's)
RUNS = {
    "plate": ("plate", ["--deck", "{geometry}", "--output", "output"], "output", None),
    "rod-long": ("rod", ["-i", "{geometry}", "-o", "output", "--steps", 800], "output", 800),
    "hot-corner.0": ("hot-corner", ["--deck", "{geometry}"], "output", None),
}
OUTPUTS = ["output/*.txt", "output/history.dat", "output/fields/*.csv"]

RECIPE = '''"""miniheat, a third-party-style C++ code (tests/thirdparty/miniheat)."""
from hpcdo.recipe import LocalTree, Recipe

recipe = Recipe(
    name="miniheat",
    source=LocalTree("thirdparty/miniheat"),
    executable="app/miniheat",
    cmake_options={"CMAKE_BUILD_TYPE": "Release", "MINIHEAT_ENABLE_OPENMP": True},
    geometries=%(geometries)r,
    outputs=%(outputs)r,
)
%(runs)s
'''


# -- a model of the solver: what each run must write, byte for byte ------------------

def read_deck(text):
    deck = {"name": "case", "nx": 32, "ny": 32, "steps": 100, "output_every": 0, "alpha": 0.2,
            "hot_value": 100.0, "boundary": "top"}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = (s.strip() for s in line.split("=", 1))
            deck[key] = int(value) if key in ("nx", "ny", "steps", "output_every") else \
                float(value) if key in ("alpha", "hot_value") else value
    return deck


def simulate(deck_text, output="output", steps=None, max_key="max", version="1.4.2", precision=6):
    """{path: bytes} that ``miniheat`` writes: the same Jacobi sweeps, in the same order of operations."""
    d = read_deck(deck_text)
    nx, ny, a, hot = d["nx"], d["ny"], d["alpha"], d["hot_value"]
    steps = d["steps"] if steps is None else steps

    def boundary(g):
        for i in range(nx):
            g[0][i] = g[ny - 1][i] = 0.0
        for j in range(ny):
            g[j][0] = g[j][nx - 1] = 0.0
        if d["boundary"] == "top":
            g[0][:] = [hot] * nx
        elif d["boundary"] == "left":
            for j in range(ny):
                g[j][0] = hot
        else:
            for i in range(nx // 2):
                g[0][i] = hot
            for j in range(ny // 2):
                g[j][0] = hot

    def total(g):
        s = 0.0
        for row in g:
            for x in row:
                s += x
        return s

    u = [[0.0] * nx for _ in range(ny)]
    nxt = [[0.0] * nx for _ in range(ny)]
    boundary(u)
    boundary(nxt)
    files, history = {}, []
    for s in range(1, steps + 1):
        for j in range(1, ny - 1):
            up, row, down, out = u[j - 1], u[j], u[j + 1], nxt[j]
            for i in range(1, nx - 1):
                c = row[i]
                out[i] = c + a * (row[i - 1] + row[i + 1] + up[i] + down[i] - 4.0 * c)
        boundary(nxt)
        u, nxt = nxt, u
        if (d["output_every"] > 0 and s % d["output_every"] == 0) or s == steps:
            files["%s/fields/field_%06d.csv" % (output, s)] = "".join(
                ",".join("%.*f" % (precision, x) for x in row) + "\n" for row in u).encode()
            history.append((s, total(u)))
    files[output + "/history.dat"] = ("# step total_heat\n" +
                                      "".join("%d %.17g\n" % h for h in history)).encode()
    files[output + "/summary.txt"] = (
        "miniheat %s\nname = %s\nnx = %d\nny = %d\nsteps = %d\ntotal_heat = %.17g\n%s = %.17g\n"
        % (version, d["name"], nx, ny, steps, total(u), max_key, max(x for row in u for x in row))).encode()
    return files


def expected_runs(max_key="max"):
    found = []
    for run, (deck, _args, output, steps) in RUNS.items():
        with open(os.path.join(CODE, "examples", DECKS[deck])) as fh:
            found.append((run, "miniheat", simulate(fh.read(), output, steps, max_key)))
    return found


# -- the scenario -------------------------------------------------------------------------

def setup_project(project):
    shutil.copytree(CODE, project.file("thirdparty/miniheat"))
    runs = "\n".join("recipe.run(%r, geometry=%r, args=%r, cores=1, walltime='00:05:00')" % (name, deck, args)
                     for name, (deck, args, _o, _s) in RUNS.items())
    text = RECIPE % {"geometries": {g: "thirdparty/miniheat/examples/" + f for g, f in DECKS.items()},
                     "outputs": OUTPUTS, "runs": runs}
    with open(project.file("recipes/miniheat.py"), "w") as fh:
        fh.write(text)


@pytest.mark.parametrize("machine", ["localhost", "testslurm"])
def test_thirdparty_code_pipeline(machine, tmp_path, request):
    project = make_project(request, tmp_path, machine)
    setup_project(project)
    checks = Checks(project, "project: the demo's lbflow and tests/thirdparty/miniheat, runs %s"
                    % ", ".join(RUNS))
    heat_runs = list(RUNS)
    build = {"%s:%s" % (step, r) for step in ("clone", "configure", "compile") for r in ("lbflow", "miniheat")}

    out = checks.call("first call", "fetch_results")
    # the demo recipe's report over its own runs is made last; the miniheat edit below leaves it alone
    checks.ran("first call", out, build | {"send_geometry:" + g for g in list(DECKS) + list(DEMO_RUNS)} |
               run_tasks(heat_runs + list(DEMO_RUNS)) | {"analyse:report"})
    ids = remote_job_ids(project)
    checks.results("first call's miniheat results", expected_runs(), ids=ids)
    for run in DEMO_RUNS:
        checks.check("first call's lbflow results", os.path.exists(os.path.join(project.results(run), "summary.json")),
                     "run %s has no summary.json" % run)

    out = checks.call("no-op", "fetch_results")
    checks.check("no-op runs no task", out.ran == [], "ran %s" % short(out.ran))
    checks.check("no-op costs at most 2 remote operations", len(out.trace) <= 2,
                 "%d: %s" % (len(out.trace), short([t["what"] for t in out.trace])))

    # one source file of the third-party code changes what every one of its runs writes
    project.edit("thirdparty/miniheat/src/io.cpp", '"max = %.17g\\n"', '"max_temperature = %.17g\\n"')
    out = checks.call("edit of src/io.cpp", "fetch_results")
    checks.ran("edit of src/io.cpp", out, {"compile:miniheat"} | run_tasks(heat_runs))
    log = project.remote("cat miniheat/build/.hpcdo-compile.log")
    built = [line for line in log.splitlines() if "Building CXX object" in line]
    checks.check("edit of src/io.cpp recompiles that file only", len(built) == 1 and "io.cpp" in built[0],
                 "the build log says:\n%s" % log)
    checks.results("miniheat results after the edit", expected_runs("max_temperature"),
                   ids=remote_job_ids(project))
    for run in DEMO_RUNS:
        checks.check("lbflow untouched by the edit", remote_job_ids(project).get(run) == ids.get(run),
                     "run %s has a new job" % run)

    out = checks.call("no-op after the edit", "fetch_results")
    checks.check("no-op after the edit runs no task", out.ran == [], "ran %s" % short(out.ran))
    checks.check("no-op after the edit costs at most 2 remote operations", len(out.trace) <= 2,
                 "%d: %s" % (len(out.trace), short([t["what"] for t in out.trace])))
    checks.finish()
