"""The core pipeline on generated projects that are not the demo (issue 10).

Each seed makes a different project (tests/e2e/genproject.py): 1-3 recipes,
each its own small C or C++ CMake code in its own layout, 1-20 runs each with
names at the edge of what hpcdo allows, outputs from 0 bytes to a few MB, none
to dozens of files, nested directories, matched by different output patterns,
with and without input files.  Every generated program is deterministic, so
each fetched file is checked byte for byte against what its run wrote.

For each seed and machine, one scenario:

(a) the first ``fetch_results`` runs every step and fetches every run's files;
(b) the next call executes no task, in at most 2 remote operations;
(c) a run added to a recipe runs only that run's submit, wait and fetch, and
    the call after that runs nothing;
(d) ``cold`` and then a call: the rebuilt executable is the same, so nothing
    is submitted or fetched again;
(e) a deleted result file, or a run's deleted result directory, is fetched
    again for that run only;
(f) ``doit -n 4 fetch_results`` (doit's default process mode) on a fresh
    project gives complete, current results, and after one run's arguments
    change, ``doit -n 4`` fetches the new job's results.

Each check is recorded and the scenario goes on, so one failure does not hide
the next; the test fails at the end with every failed check, labelled (a)-(f).

Seeds and machines: by default a few seeds on localhost and a couple on
testslurm.  ``HPCDO_SEEDS=0-19`` (a range), ``HPCDO_SEEDS=20`` (a count:
seeds 0-19) or ``HPCDO_SEEDS=3,8`` (a list; one seed: ``HPCDO_SEEDS=7,``)
runs those seeds on every machine of ``HPCDO_GEN_MACHINES`` (comma
separated; default localhost,testslurm; testsge and testpbs work too)::

    HPCDO_SEEDS=0-19 HPCDO_GEN_MACHINES=localhost python3 -m pytest tests/e2e/test_generated.py
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import genproject  # noqa: E402
from genproject import (Checks, generate, local_files, make_project, parse_seeds,  # noqa: E402
                        remote_job_ids, run_tasks, short)

#: CI's default: (machine, seed) pairs, chosen to cover every layout, 1-3
#: recipes, multi-MB outputs, default and explicit output patterns
DEFAULT_CASES = [("localhost", 1), ("localhost", 2), ("localhost", 5), ("testslurm", 3), ("testslurm", 4)]
DEFAULT_PARALLEL = [("localhost", 2), ("testslurm", 6)]


def _cases(default):
    seeds = os.environ.get("HPCDO_SEEDS")
    machines = os.environ.get("HPCDO_GEN_MACHINES")
    if not seeds and not machines:
        return default
    machine_list = [m.strip() for m in (machines or "localhost,testslurm").split(",") if m.strip()]
    if seeds:
        seed_list = parse_seeds(seeds)
    else:
        seed_list = sorted({s for _m, s in default})
    return [(m, s) for m in machine_list for s in seed_list]


CASES = _cases(DEFAULT_CASES)
PARALLEL_CASES = _cases(DEFAULT_PARALLEL)


def _id(case):
    return "%s-seed%s" % case


# -- the generator checks itself ---------------------------------------------------

def test_generated_programs_write_what_the_reference_says(tmp_path):
    """Each layout's program, built and run here by hand, writes exactly what genproject.simulate says.

    Without this, a failure of the scenarios below could be the generator's own.
    """
    seen = set()
    specs = []
    for seed in range(40):
        spec = generate(seed, max_runs=4)
        for recipe in spec.recipes:
            if recipe.layout not in seen:
                seen.add(recipe.layout)
                specs.append((spec, recipe))
        if seen == set(genproject.LAYOUTS):
            break
    assert seen == set(genproject.LAYOUTS)
    for spec, recipe in specs:
        project = tmp_path / ("p%d" % spec.seed)
        spec.write(str(project))
        build = tmp_path / ("build-%s" % recipe.layout)
        options = ["-DCMAKE_BUILD_TYPE=Release", "-DGEN_SALT=%s" % recipe.salt,
                   "-DGEN_ECHO_HEADER=%s" % ("ON" if recipe.echo_header else "OFF")]
        subprocess.run(["cmake", "-S", str(project / recipe.source_dir), "-B", str(build)] + options,
                       check=True, capture_output=True)
        subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
        exe = str(build / recipe.executable)
        geometry = sorted(recipe.geometries)[0] if recipe.geometries else None
        every = genproject.RunSpec(
            "0every-feature.x", geometry,
            ["--run", "{run}", "--cores", "{cores}", "--file", "out/a/b/x.dat", "8192", "file=big.bin:3145745",
             "--file", "empty", "0", "--many", "parts/p", "12", "50", "--many", "none/p", "0", "50",
             "--note", "it's \"quoted\" $HOME; *.c \\ {{braces}}", "--echo", "echo/args.txt"] +
            (["--input", "{geometry}", "out/in/g.sum"] if geometry else []), None, 1, "00:01:00", "a b")
        for run in recipe.runs + [every]:
            rundir = tempfile.mkdtemp(dir=str(tmp_path))
            if run.geometry:
                path, data = recipe.geometries[run.geometry]
                with open(os.path.join(rundir, os.path.basename(path)), "wb") as fh:
                    fh.write(data)
            env = dict(os.environ)
            env.pop("GEN_MODE", None)
            if run.env_mode is not None:
                env["GEN_MODE"] = run.env_mode
            subprocess.run([exe] + recipe.argv(run), cwd=rundir, env=env, check=True, capture_output=True)
            written = recipe.written(run)
            inputs = {os.path.basename(recipe.geometries[run.geometry][0])} if run.geometry else set()
            assert local_files(rundir) - inputs == set(written), (recipe.layout, run.args)
            for rel, data in written.items():
                assert open(os.path.join(rundir, rel), "rb").read() == data, (recipe.layout, rel)
            shutil.rmtree(rundir)


# -- (a)-(e) -------------------------------------------------------------------------

@pytest.mark.parametrize("machine,seed", CASES, ids=[_id(c) for c in CASES])
def test_generated_project(machine, seed, tmp_path, request):
    spec = generate(seed)
    project = make_project(request, tmp_path, machine)
    spec.write(project.path)
    checks = Checks(project, spec.describe())
    all_runs = [run.name for _r, run in spec.runs()]

    # (a) the first call runs every step and fetches every run's files
    out = checks.call("(a) first call", "fetch_results")
    checks.ran("(a) first call", out, spec.build_tasks() | spec.geometry_tasks() | run_tasks(all_runs))
    checks.results("(a) first call's results", spec.expected_runs(), ids=remote_job_ids(project))

    # (b) nothing is stale: no task runs, at most 2 remote operations
    out = checks.call("(b) no-op", "fetch_results")
    checks.check("(b) no-op runs no task", out.ran == [], "ran %s" % short(out.ran))
    checks.check("(b) no-op costs at most 2 remote operations", len(out.trace) <= 2,
                 "%d: %s" % (len(out.trace), short([t["what"] for t in out.trace])))

    # (c) a new run: only its own steps run
    sent = spec.geometry_tasks()
    new = spec.add_run()
    spec.write_recipes(project.path)
    out = checks.call("(c) added run %s" % new, "fetch_results")
    # (and its geometry's upload, if no other run read that geometry)
    checks.ran("(c) added run %s" % new, out, run_tasks([new]) | (spec.geometry_tasks() - sent))
    checks.results("(c) results after adding a run", spec.expected_runs(), ids=remote_job_ids(project))
    # the new run's snapshot of the executable is one more link to it: nothing else may change
    out = checks.call("(c) the call after adding a run", "fetch_results")
    checks.check("(c) the call after adding a run runs no task", out.ran == [], "ran %s" % short(out.ran))

    # (d) cold rebuilds the same executable: nothing is submitted or fetched again
    checks.call("(d) cold", "cold")
    out = checks.call("(d) the call after cold", "fetch_results")
    again = sorted(t for t in out.ran if t.startswith(("submit:", "fetch_results:")))
    checks.check("(d) the call after cold submits and fetches nothing", not again,
                 "ran %s" % short(again))
    checks.check("(d) the call after cold runs no task at all", out.ran == [], "ran %s" % short(out.ran))
    checks.results("(d) results after cold", spec.expected_runs(), ids=remote_job_ids(project))

    # (e) a deleted result file, then a deleted result directory, is fetched again for that run only
    with_files = [(recipe, run) for recipe, run in spec.runs() if recipe.expected(run)]
    if with_files:
        recipe, run = max(with_files, key=lambda rr: max(p.count("/") for p in rr[0].expected(rr[1])))
        rel = max(recipe.expected(run), key=lambda p: p.count("/"))
        path = os.path.join(project.results(run.name), rel)
        label = "(e) deleted %s of run %s" % (rel, run.name)
        if checks.check(label, os.path.isfile(path), "there is no such file to delete (see above)"):
            os.remove(path)
            out = checks.call(label, "fetch_results")
            checks.ran(label, out, {"fetch_results:" + run.name})
            checks.results("(e) results after deleting one file", spec.expected_runs({run.name}))
    victim = all_runs[len(all_runs) // 2]
    label = "(e) deleted results of run %s" % victim
    if checks.check(label, os.path.isdir(project.results(victim)), "there are no results to delete (see above)"):
        shutil.rmtree(project.results(victim))
        out = checks.call(label, "fetch_results")
        checks.ran(label, out, {"fetch_results:" + victim})
        checks.results("(e) results after deleting a run's directory", spec.expected_runs(),
                       ids=remote_job_ids(project))
    checks.finish()


# -- (f) -------------------------------------------------------------------------------

@pytest.mark.parametrize("machine,seed", PARALLEL_CASES, ids=[_id(c) for c in PARALLEL_CASES])
def test_generated_project_in_parallel(machine, seed, tmp_path, request):
    """doit -n 4 (threads: hpcdo sets par_type; doit's default was processes, each blind to the
    others' work): complete and current results, fresh and after a change."""
    spec = generate(seed)
    project = make_project(request, tmp_path, machine)
    spec.write(project.path)
    checks = Checks(project, spec.describe())

    checks.call("(f) doit -n 4 on a fresh project", "-n", "4", "fetch_results")
    checks.results("(f) doit -n 4 on a fresh project", spec.expected_runs(), ids=remote_job_ids(project))

    # what doit -n 4 left undone, a plain call does: it must find nothing to do
    out = checks.call("(f) plain call after doit -n 4", "fetch_results")
    checks.check("(f) plain call after doit -n 4 runs no task", out.ran == [], "ran %s" % short(out.ran))
    checks.results("(f) after the plain call", spec.expected_runs(), ids=remote_job_ids(project))

    # separately, from results made current by the plain call: change one run's arguments,
    # and let doit -n 4 bring the new job's results
    _recipe, run = spec.runs()[-1]
    before = remote_job_ids(project).get(run.name)
    path = spec.change_args(run.name)
    spec.write_recipes(project.path)
    checks.call("(f) doit -n 4 after changing run %s's args" % run.name, "-n", "4", "fetch_results")
    ids = remote_job_ids(project)
    checks.check("(f) changed run %s has a new job" % run.name, ids.get(run.name) != before,
                 "job.id on the machine is still %s" % before)
    checks.results("(f) doit -n 4 after changing run %s's args (new file %s)" % (run.name, path),
                   spec.expected_runs({run.name}), ids=ids)
    out = checks.call("(f) plain call after the changed run", "fetch_results")
    checks.check("(f) plain call after the changed run runs no task", out.ran == [], "ran %s" % short(out.ran))
    checks.finish()
