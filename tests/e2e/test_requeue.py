"""A job the scheduler requeues is still the run's job (issue 11.4).

After ``scontrol requeue`` Slurm shows the job PENDING again while the run
directory holds the exit marker of its first attempt (143, from the TERM
that stopped it).  hpcdo read that as a failure and submitted a second job,
and the requeued job later ran in the same directory.  A job the queue
reports pending or running is active whatever the marker says, and the
jobscript clears the earlier attempt's marker when it starts again.
"""

import re
import time

import anyproject
from anyproject import expected, read_bytes
from conftest import reaped, wait_until


def _remote(project, command):
    return project.remote(command).strip()


def test_a_requeued_job_is_waited_for_not_submitted_again(slurm_project):
    project = slurm_project
    anyproject.make(project, [("rq", ["--sleep", 6, "--bytes", 7, "r.dat"])])
    with reaped(project.popen("fetch_results")) as working:
        wait_until(lambda: _remote(project, "cat tool/runs/rq/job.started 2>/dev/null"), "the job to start")
        job = _remote(project, "cat tool/runs/rq/job.id")
        project.cluster.ssh("scontrol requeue %s" % job)
        wait_until(lambda: _remote(project, "cat tool/runs/rq/job.exit 2>/dev/null").startswith("143"),
                  "the first attempt's exit marker")
        time.sleep(2)                      # a poll or two sees the marker beside PENDING
        project.cluster.ssh("scontrol update jobid=%s starttime=now" % job)
        out, err = working.communicate(timeout=180)
    assert working.returncode == 0, out + err
    assert _remote(project, "cat tool/runs/rq/job.id") == job
    ran = [j for j in project.cluster.squeue(project.remote_root + "/tool/runs/rq")]
    assert [j[0] for j in ran] == [job], ran
    assert read_bytes(project, "rq", "r.dat") == expected(7)
    assert open(project.results("rq") + "/job.exit").read().split()[0] == "0"


def test_a_wedged_squeue_is_no_answer_within_scheduler_timeout(slurm_project):
    """Issue 11.6: a squeue that never answers hung wait and status; scheduler_timeout was
    ignored.  A wrapper on the machine's PATH wedges squeue for this call only."""
    project = slurm_project
    anyproject.make(project, [("w", ["--sleep", 20, "--bytes", 1, "w.dat"])])
    project.doit("submit")
    job = _remote(project, "cat tool/runs/w/job.id")
    wedge = project.remote_root + "-wedge"
    project.cluster.ssh("mkdir -p %s && printf '#!/bin/sh\\nsleep 600\\n' > %s/squeue && chmod +x %s/squeue"
                        % (wedge, wedge, wedge))
    try:
        setup = "shell_setup=['PATH=$HOME/%s:$PATH']" % wedge
        started = time.monotonic()
        status = project.doit("status", setup, "scheduler_timeout=4", timeout=120)
        assert time.monotonic() - started < 30, "status waited on the wedged squeue"
        assert re.search(r"(?m)^run w +%s +unknown " % job, status.out), status
        started = time.monotonic()
        out = project.doit("fetch_results", setup, "scheduler_timeout=4", ok=False, timeout=180)
        assert time.monotonic() - started < 60, "wait hung on the wedged squeue"
        assert "has not answered for 4 s" in out.out and job in out.out, out
        assert _remote(project, "cat tool/runs/w/job.id") == job            # nothing submitted again
    finally:
        project.cluster.ssh("rm -rf %s" % wedge, check=False)
    assert project.doit("fetch_results", timeout=180).rc == 0
    assert read_bytes(project, "w", "w.dat") == expected(1)
