"""Fault 8: the remote disk is full.

The work root is a 4 MiB tmpfs mounted in the cluster user's home and owned
by that user (``small_disk``); the test fills it to the last byte as that
user before the step under test, and frees it afterwards.  Each step that
writes on the machine must fail with a clear error (the system's "No space
left on device" reaches the user), record nothing as done (no stamp, no job
id, no job in the queue), and the next call, with space again, carries on.
"""

import hashlib
import json
import os
import re

import pytest

from conftest import reaped, write_recipe
from faults_helpers import jobs_for, no_traceback, scancel, wait_until
from faultfix import disk_project, small_disk  # noqa: F401  (fixtures)

RUNS = [("a", "straight", ["--geometry", "{geometry}", "--steps", 500])]


def disk_full_error(out):
    assert out.rc != 0, out
    no_traceback(out)
    assert re.search(r"no space left on device|disk (is )?full", out.out, re.I), out


def test_geometry_upload_on_a_full_disk(disk_project):
    project = disk_project
    write_recipe(project, RUNS)
    project.doit("send_geometry:straight")
    old = project.remote("sha256sum lbflow/geometry/straight/straight.gmy | cut -c1-64").strip()
    with open(project.file("demo/geometries/straight.gmy"), "ab") as fh:
        fh.write(b"\n" * 100000)
    project.disk.fill()
    out = project.doit("send_geometry:straight", ok=False)
    disk_full_error(out)
    assert project.remote("cat lbflow/geometry/straight/.hpcdo-stamp 2>/dev/null").strip() == ""
    assert project.remote("sha256sum lbflow/geometry/straight/straight.gmy | cut -c1-64").strip() == old
    assert project.remote("ls -A lbflow/geometry/straight").split() == ["straight.gmy"]
    project.disk.free()
    again = project.doit("send_geometry:straight")
    assert again.ran == ["send_geometry:straight"], again
    new = hashlib.sha256(open(project.file("demo/geometries/straight.gmy"), "rb").read()).hexdigest()
    assert json.loads(project.remote("cat lbflow/geometry/straight/.hpcdo-stamp"))["sig"] == new


def test_compile_on_a_full_disk(disk_project):
    project = disk_project
    write_recipe(project, RUNS)
    project.doit("compile")
    # an edit that makes the object file and the executable 400 KB bigger
    with open(project.file("demo/lbflow/src/output.c"), "a") as fh:
        fh.write("\nconst char hpcdo_padding[400000] = {1};\n")
    # room for the edited file to be synced (it is staged beside the source
    # first), none for the 400 KB bigger object file and executable
    project.disk.fill(spare_pages=16)
    out = project.doit("compile", ok=False)
    disk_full_error(out)
    assert project.remote("cat lbflow/build/.hpcdo-compile 2>/dev/null").strip() == ""
    project.disk.free()
    again = project.doit("compile")
    assert "compile" in again.ran, again
    assert project.doit("compile").ran == []


def recorded_jobs(project, run):
    """Job ids the run directory records: job.id and the previous attempts."""
    ids = project.remote("cat lbflow/runs/%s/job.id 2>/dev/null; ls lbflow/runs/%s/previous 2>/dev/null"
                         % (run, run)).split()
    return set(ids)


@pytest.mark.parametrize("spare_pages", [0, 2], ids=["no-page-left", "two-pages-left"])
def test_submit_on_a_full_disk(disk_project, spare_pages):
    """No room for the run directory's files (or room for the jobscript only): a clear error,
    and never a job in the queue that the run directory does not record."""
    project = disk_project
    write_recipe(project, RUNS)
    project.doit("compile", "send_geometry")
    project.disk.fill(spare_pages)
    out = project.doit("fetch_results", ok=False)
    queued = jobs_for(project, "a")
    orphans = set(queued) - recorded_jobs(project, "a")
    scancel(project.cluster, sorted(orphans))
    disk_full_error(out)
    assert not orphans, "job(s) %s queued but not recorded in the run directory" % sorted(orphans)
    project.disk.free()
    again = project.doit("fetch_results")
    assert "submit:a" in again.ran or "wait:a" in again.ran, again
    assert set(jobs_for(project, "a")) <= recorded_jobs(project, "a")
    assert project.summary("a")["steps"] == 500


def test_job_output_on_a_full_disk_is_not_taken_as_done(disk_project):
    """The disk fills while the job waits in the queue: the job cannot write its results;
    wait must not call it completed, nothing is fetched.  Its failure looks like the
    program's (a non-zero exit), so it waits for ``retry``, which runs it again."""
    project = disk_project
    write_recipe(project, RUNS)
    hold = "directives=['--hold']"
    project.doit("submit:a", hold)
    job = project.remote("cat lbflow/runs/a/job.id").strip()
    project.disk.fill()
    project.cluster.ssh("scontrol release %s" % job)
    wait_until(lambda: not [j for j in jobs_for(project, "a")
                            if j in [x[0] for x in project.cluster.squeue() if x[2] in ("PENDING", "RUNNING", "COMPLETING")]],
               timeout=120, what="the job to end")
    out = project.doit("fetch_results", hold, ok=None)
    no_traceback(out)
    assert "fetch_results:a" not in out.ran, out
    assert not os.path.exists(os.path.join(project.results("a"), "summary.json"))
    assert "retry a" in out.out, out
    project.disk.free()
    # with space again, retry runs the job again (held: release it) and fetch_results fetches
    retried = project.doit("retry", "a", hold)
    assert "submitted job" in retried.out, retried
    proc = project.popen("fetch_results", hold)
    with reaped(proc):
        wait_until(lambda: project.remote("cat lbflow/runs/a/job.id 2>/dev/null").strip() not in ("", job),
                   timeout=60, what="the run to be submitted again")
        project.cluster.ssh("scontrol release %s" % project.remote("cat lbflow/runs/a/job.id").strip())
        proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert project.summary("a")["steps"] == 500


@pytest.fixture(params=["localhost", "testslurm"])
def any_project(request, tmp_path):
    from conftest import on_machine
    yield from on_machine(request, tmp_path)


def test_a_full_local_disk_during_a_fetch(any_project):
    """11.6: the laptop's disk fills up while results arrive.  Before, the thread writing the
    download and the machine's ``tar`` blocked each other: the call never ended and a partial
    file stayed in results/.  Now the fetch fails in one line with the system's reason, leaves
    nothing in results/, and the next call, with space again, fetches it all."""
    import subprocess
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
    import anyproject

    project = any_project
    anyproject.make(project, [("big", ["--bytes", 6000000, "big.dat", "--files", 50, 1000, "many/f"]),
                              ("small", ["--bytes", 10, "s.dat"])])
    project.doit("wait")
    results = os.path.join(project.path, "results")
    os.makedirs(results)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", results], check=True)
    try:
        out = project.doit("fetch_results", ok=False, timeout=180)
        no_traceback(out)
        assert re.search(r"no space left on device", out.out, re.I), out
        assert "fetch_results:big" in out.ran, out
        machine_dir = os.path.join(results, project.machine)
        left = sorted(os.listdir(machine_dir))
        assert "big" not in left and not [n for n in left if n.startswith(".big.")], left
        assert os.path.exists(os.path.join(machine_dir, "small", "s.dat")), left
    finally:
        subprocess.run(["umount", results], check=True)
    again = project.doit("fetch_results")           # small's results were on the unmounted disk
    assert sorted(again.ran) == ["fetch_results:big", "fetch_results:small"], again
    with open(os.path.join(project.results("big"), "big.dat"), "rb") as fh:
        assert len(fh.read()) == 6000000
    assert len(os.listdir(os.path.join(project.results("big"), "many"))) == 50
    assert project.doit("fetch_results").ran == []
