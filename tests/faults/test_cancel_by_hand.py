"""Fault 6: a job is cancelled by hand (scancel): reported as cancelled, resubmitted on the next call.

Two cases, each with doit waiting for the job when it is cancelled: a
running job (Slurm sends SIGTERM: the jobscript's trap leaves exit marker
143) and a pending one, held with ``--hold`` (it never ran: no marker, only
the queue knows).  The waiting call ends promptly, naming the job and
CANCELLED; ``status`` says cancelled; the next call submits the run again
and keeps the cancelled attempt's files under ``previous/<job id>/``.
"""

import re
import time

import pytest

from conftest import reaped, write_recipe
from faults_helpers import ends_soon, jobs_for, no_traceback, scancel, wait_until

LONG = ("long", "straight", ["--geometry", "{geometry}", "--steps", 200000, "--output-every", 0])
HOLD = "directives=['--hold']"


def status_of(project, run, *args):
    out = project.doit("status", *args)
    m = re.search(r"^run %s\s+(.*)$" % run, out.out, re.M)
    assert m, out
    return " ".join(m.group(1).split())        # the table's columns, one space apart


def job_id(project, run):
    return project.remote("cat lbflow/runs/%s/job.id 2>/dev/null" % run).strip()


@pytest.mark.parametrize("case", ["running", "pending"])
def test_scancel_by_hand_is_reported_and_resubmitted(slurm_project, case):
    project = slurm_project
    write_recipe(project, [LONG])
    args = [HOLD] if case == "pending" else []
    project.doit("compile", "send_geometry", *args)
    proc = project.popen("fetch_results", *args)
    with reaped(proc):
        if case == "running":
            wait_until(lambda: project.remote("cat lbflow/runs/long/job.started 2>/dev/null").strip(),
                       timeout=120, what="the job to start")
        else:
            wait_until(lambda: [j for j in project.cluster.squeue(project.remote_root + "/lbflow/runs/long")
                                if j[2] == "PENDING"], timeout=60, what="the held job to be queued")
            time.sleep(1)                    # doit is now waiting for it
        job = job_id(project, "long")
        assert job
        project.cluster.ssh("scancel %s" % job)          # by hand, behind hpcdo's back
        cancelled = time.monotonic()
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - cancelled
    output = out + err
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    assert took < 30, "the wait took %d s to notice the cancel" % took
    assert "CANCELLED" in output and job in output, output
    assert "the next call submits it again" in output, output
    assert status_of(project, "long", *args).startswith("%s cancelled" % job)

    again = project.doit("submit:long", *args)
    no_traceback(again)
    assert again.ran == ["submit:long"], again
    new = job_id(project, "long")
    try:
        assert new and new != job
        assert sorted(jobs_for(project, "long")) == sorted([job, new])
        assert project.remote("ls lbflow/runs/long/previous").split() == [job]
        if case == "running":
            assert project.remote("cat lbflow/runs/long/previous/%s/job.exit" % job).split()[0] == "143"
    finally:
        scancel(project.cluster, [new])


@pytest.fixture
def sge_project(tmp_path, cluster):
    from conftest import cluster_project
    yield from cluster_project(tmp_path, cluster, "testsge")


def test_qdel_of_a_pending_job_by_hand_on_grid_engine(sge_project):
    """Grid Engine keeps no accounting record of a job deleted while pending (qacct says
    "job id N not found" and exits 1): the job is LOST, which hpcdo cannot tell from the
    machine losing it, so the waiting call submits it again once (retries: 1); a second
    qdel ends the call promptly, saying the job is gone, and retry submits it again."""
    project = sge_project
    write_recipe(project, [LONG])
    hold = "directives=['-h']"
    project.doit("compile", "send_geometry", hold)
    proc = project.popen("fetch_results", hold)
    with reaped(proc):
        jobs = []
        for _ in range(2):
            wait_until(lambda: job_id(project, "long") not in [""] + jobs and
                       job_id(project, "long") in project.cluster.jobs("testsge"),
                       timeout=60, what="the held job to be queued")
            jobs.append(job_id(project, "long"))
            time.sleep(1)
            project.cluster.ssh("qdel %s" % jobs[-1])
        rc, output, took = ends_soon(proc, time.monotonic())
    assert "Traceback" not in output, output
    assert rc != 0, output
    assert took < 60, "the wait took %d s to notice the deleted job" % took
    assert "job %s ended LOST" % jobs[0] in output and "submitted it again as job %s" % jobs[1] in output
    assert re.search(r"job %s on testsge ended (CANCELLED|LOST)" % jobs[1], output) and "retry long" in output
    again = project.doit("retry", "long", hold)
    assert "submitted job" in again.out, again
    new = job_id(project, "long")
    assert new and new not in jobs
    project.cluster.ssh("qdel %s >/dev/null 2>&1" % new, check=False)