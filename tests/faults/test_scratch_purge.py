"""Fault 4: scratch purge: parts of the work root deleted behind hpcdo's back.

After a complete pipeline of two runs, one thing is deleted on the machine
(a run directory, a geometry, the build directory, the source tree, the
whole work root); the next call must notice it from its one probe and redo
exactly what depended on it -- nothing else.  Local results that are still
whole are not fetched again unless the machine's results changed.
"""

import json
import os

import pytest

from conftest import write_recipe
from faults_helpers import jobs_for, no_traceback

RUNS = [("a", "straight", ["--geometry", "{geometry}", "--steps", 500]),
        ("b", "bifurcation", ["--geometry", "{geometry}", "--steps", 500])]
GEOMETRIES = {"send_geometry:straight", "send_geometry:bifurcation"}     # the ones the runs use


def run_tasks(*runs):
    return {"%s:%s" % (step, run) for step in ("submit", "wait", "fetch_results") for run in runs}


@pytest.fixture
def done(slurm_project):
    """A project whose two runs are complete and fetched."""
    write_recipe(slurm_project, RUNS)
    slurm_project.doit("fetch_results")
    assert slurm_project.doit("fetch_results").ran == []
    return slurm_project


def provenance_job(project, run):
    with open(os.path.join(project.results(run), "hpcdo-provenance.json")) as fh:
        return json.load(fh)["job_id"]


def ran_exactly(out, expected):
    """``expected`` ran; a wait may be found up to date by an earlier poll."""
    no_traceback(out)
    waits = {t for t in expected if t.startswith("wait:")}
    assert expected - waits <= out.ran_set() <= expected, out
    assert waits <= out.ran_set() | set(out.uptodate), out


def test_purged_run_directory_is_run_again_alone(done):
    project = done
    old = project.remote("cat lbflow/runs/a/job.id").strip()
    project.remote("rm -rf lbflow/runs/a")
    out = project.doit("fetch_results")
    ran_exactly(out, run_tasks("a"))
    new = project.remote("cat lbflow/runs/a/job.id").strip()
    assert new and new != old
    assert project.summary("a")["steps"] == 500
    # the local results are the new job's, and say so
    assert provenance_job(project, "a") == new
    assert project.doit("fetch_results").ran == []


def test_purged_geometry_is_uploaded_again_and_nothing_else(done):
    project = done
    project.remote("rm -rf lbflow/geometry/straight")
    out = project.doit("fetch_results")
    ran_exactly(out, {"send_geometry:straight"})
    assert project.remote("cmp lbflow/geometry/straight/straight.gmy lbflow/runs/a/straight.gmy && echo same").strip() \
        == "same"
    assert project.doit("fetch_results").ran == []


def test_purged_geometry_file_alone_is_noticed(done):
    """Only the file is gone, its stamp is still there: the stamp alone does not count."""
    project = done
    project.remote("rm -f lbflow/geometry/bifurcation/bifurcation.gmy")
    out = project.doit("fetch_results")
    ran_exactly(out, {"send_geometry:bifurcation"})


def test_purged_build_directory_rebuilds_without_resubmitting(done):
    project = done
    ids = [project.remote("cat lbflow/runs/%s/job.id" % r).strip() for r in ("a", "b")]
    project.remote("rm -rf lbflow/build")
    out = project.doit("fetch_results")
    ran_exactly(out, {"configure", "compile"})
    assert [project.remote("cat lbflow/runs/%s/job.id" % r).strip() for r in ("a", "b")] == ids


def test_purged_executable_alone_is_rebuilt(done):
    project = done
    project.remote("rm -f lbflow/build/lbflow")
    out = project.doit("fetch_results")
    ran_exactly(out, {"compile"})
    assert project.remote("test -x lbflow/build/lbflow && echo ok").strip() == "ok"


def test_purged_source_tree_is_synced_again(done):
    project = done
    project.remote("rm -rf lbflow/src")
    out = project.doit("fetch_results")
    ran_exactly(out, {"clone"})
    assert project.remote("ls lbflow/src/CMakeLists.txt").strip() == "lbflow/src/CMakeLists.txt"
    # the next edit still builds from the synced tree
    project.edit("demo/lbflow/src/output.c", "\\\"max_velocity\\\"", "\\\"max_speed\\\"")
    out = project.doit("fetch_results")
    ran_exactly(out, {"compile"} | run_tasks("a", "b"))
    assert "max_speed" in project.summary("a")


def test_purged_work_root_redoes_everything(done):
    project = done
    project.remote("cd && rm -rf %s" % project.remote_root)
    out = project.doit("fetch_results")
    ran_exactly(out, {"clone", "configure", "compile"} | GEOMETRIES | run_tasks("a", "b"))
    for run in ("a", "b"):
        assert len(jobs_for(project, run)) == 2          # the purged one, and the new one
        assert project.summary(run)["steps"] == 500
        assert provenance_job(project, run) == project.remote("cat lbflow/runs/%s/job.id" % run).strip()
    assert os.path.exists(os.path.join(project.results("a"), "hpcdo-provenance.json"))


def test_purged_output_file_does_not_delete_the_local_copy(done):
    """One result file is purged on the machine: the next call must not replace the complete
    local results with the incomplete remote set (the file would be lost on both sides)."""
    project = done
    local = os.path.join(project.results("a"), "velocity.csv")
    before = open(local, "rb").read()
    project.remote("rm -f lbflow/runs/a/velocity.csv")
    out = project.doit("fetch_results", ok=None)
    no_traceback(out)
    assert os.path.exists(local), "velocity.csv is gone locally too (%s)" % out.ran
    if "submit:a" not in out.ran:
        assert open(local, "rb").read() == before
    else:                                       # the run was redone: its own, complete results
        assert provenance_job(project, "a") == project.remote("cat lbflow/runs/a/job.id").strip()
