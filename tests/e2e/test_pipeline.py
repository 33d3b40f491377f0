"""The core pipeline end to end, on localhost and on the real SSH + Slurm cluster.

Each test is a scenario a user lives through: the first run, the no-op
rerun, an edit, a CMake option, a geometry, a fresh clone, a scratch purge,
a failing job.  Assertions name the tasks doit ran, the results on disk,
what the machine holds and how many remote operations it took.
"""

import json
import os

RUNS = ("straight", "bifurcation", "stenosis")
BUILD = {"configure", "compile"}
#: the demo's analysis (recipes/lbflow.py): redone whenever a run's results change
REPORT = {"analyse:report"}


def runs_of(steps, runs=RUNS):
    return {"%s:%s" % (step, run) for step in steps for run in runs}


def assert_ran(out, expected):
    """Exactly ``expected`` ran, except that a wait may find its job already ended.

    A wait task is up to date when the poll made while waiting for an earlier
    run already saw its job finish; that is the batched poll doing its job.
    """
    waits = {t for t in expected if t.startswith("wait:")}
    assert expected - waits <= out.ran_set() <= expected, out
    assert waits <= out.ran_set() | set(out.uptodate), out


def first_run(project):
    out = project.doit("fetch_results")
    assert_ran(out, {"clone", "configure", "compile"} | {"send_geometry:" + g for g in RUNS} |
               runs_of(("submit", "wait", "fetch_results")) | REPORT)
    assert out.ran[-1] == "analyse:report", out
    return out


def test_first_run_then_noop(project):
    """Acceptance a, b, h: results for every run; the rerun executes nothing in at most 2 operations."""
    out = first_run(project)
    submits = [t["what"] for t in out.trace if t["what"].startswith("submit")]
    assert submits == ["submit 3 runs"], out.trace         # one command submits every run
    polls = [t for t in out.trace if t["what"].startswith("poll")]
    assert polls and all(t["op"] == "run" for t in polls)
    for run in RUNS:
        summary = project.summary(run)
        assert summary["steps"] == 3000
        assert summary["precision"] == "double"
        prov = json.load(open(os.path.join(project.results(run), "hpcdo-provenance.json")))
        assert prov["machine"] == project.machine and prov["run"] == run
        assert prov["job_id"] and prov["cmake_options"]["LBFLOW_PRECISION"] == "double"
        assert "--geometry" in prov["jobscript"] and prov["source_version"]
        assert open(os.path.join(project.results(run), "job.exit")).read().split()[0] == "0"

    again = project.doit("fetch_results")
    assert again.ran == [], again
    assert len(again.uptodate) >= 15
    assert len(again.trace) <= 2, again.trace
    assert [t["what"] for t in again.trace if t["op"] == "run"] == ["probe"]


def test_changed_or_missing_results_are_fetched_again(project):
    """fetch_results reruns when the machine's results change or the local copy is gone."""
    first_run(project)
    project.remote("sleep 1; echo extra >> lbflow/runs/straight/velocity.csv")
    out = project.doit("fetch_results")
    assert out.ran == ["fetch_results:straight", "analyse:report"], out
    assert open(os.path.join(project.results("straight"), "velocity.csv")).read().endswith("extra\n")
    # the same results fetched again: the report, whose inputs did not change, is not redone
    os.remove(os.path.join(project.results("stenosis"), "summary.json"))
    out = project.doit("fetch_results")
    assert out.ran == ["fetch_results:stenosis"], out
    assert project.summary("stenosis")["steps"] == 3000


def test_source_edit_reruns_compile_and_runs_only(project):
    """Acceptance c: one edited .c file recompiles one object, then resubmits every run."""
    first_run(project)
    project.edit("demo/lbflow/src/output.c", "\\\"max_velocity\\\"", "\\\"max_speed\\\"")
    out = project.doit("fetch_results")
    assert_ran(out, {"compile"} | runs_of(("submit", "wait", "fetch_results")) | REPORT)
    log = project.remote("cat lbflow/build/.hpcdo-compile.log")
    built = [line for line in log.splitlines() if "Building C object" in line]
    assert len(built) == 1 and "output.c" in built[0], log
    assert "max_speed" in project.summary("straight")
    # only the edited file crossed the wire
    sync = [t for t in out.trace if t["what"].startswith("sync")]
    assert len(sync) == 1 and sync[0]["what"] == "sync 1 files", out.trace


def test_cmake_option_and_geometry_changes(project):
    """Acceptance d: an option reruns configure onwards; a geometry reruns only its runs."""
    first_run(project)
    project.edit("recipes/lbflow.py", '"LBFLOW_PRECISION": "double"', '"LBFLOW_PRECISION": "float"')
    out = project.doit("fetch_results")
    assert_ran(out, BUILD | runs_of(("submit", "wait", "fetch_results")) | REPORT)
    assert project.summary("bifurcation")["precision"] == "float"

    # close one more fluid cell in the stenosis: only the stenosis run is redone
    path = project.file("demo/geometries/stenosis.gmy")
    lines = open(path).read().split("\n")
    row = len(lines) // 2
    col = lines[row].index(".", len(lines[row]) // 3)
    lines[row] = lines[row][:col] + "#" + lines[row][col + 1:]
    open(path, "w").write("\n".join(lines))
    out = project.doit("fetch_results")
    assert_ran(out, {"send_geometry:stenosis"} | runs_of(("submit", "wait", "fetch_results"), ["stenosis"]) | REPORT)


def test_fresh_clone_and_scratch_purge(project, tmp_path):
    """Acceptance g: a new checkout only fetches; a purged build dir is rebuilt, nothing else."""
    first_run(project)
    other = project.clone_to(tmp_path / "elsewhere")
    out = other.doit("fetch_results")
    assert out.ran_set() == runs_of(("fetch_results",)) | REPORT, out
    assert other.summary("straight")["steps"] == 3000

    project.remote("rm -rf lbflow/build")
    out = other.doit("fetch_results")
    # the rebuilt executable is byte-identical, so no job is spent again
    assert out.ran_set() == BUILD, out
    assert project.remote("ls lbflow/build/lbflow").strip() == "lbflow/build/lbflow"


def test_failed_job_reports_and_waits_for_retry(project):
    """Acceptance i: a job exiting non-zero fails wait with state and output tail; the next call
    does not submit it again with the same inputs (it would fail the same way); retry does."""
    from conftest import write_recipe
    write_recipe(project, [("good", "straight", ["--geometry", "{geometry}", "--steps", 200]),
                           ("bad", "straight", ["--geometry", "{geometry}", "--tau", 0.4])])
    out = project.doit("fetch_results", ok=False)
    assert "wait:bad" in out.ran
    assert "FAILED" in out.out and "exit code 2" in out.out, out
    assert "tau" in out.out, out            # lbflow's own error line, from the job's output
    assert "Traceback" not in out.out
    first = project.remote("cat lbflow/runs/bad/job.id").strip()
    out = project.doit("fetch_results:bad", ok=False)
    assert "submit:bad" not in out.ran and "retry bad" in out.out, out
    assert project.remote("cat lbflow/runs/bad/job.id").strip() == first
    project.doit("retry", "bad")
    assert project.remote("cat lbflow/runs/bad/job.id").strip() != first
    assert project.remote("ls lbflow/runs/bad/previous").split() == [first]  # old attempt kept
