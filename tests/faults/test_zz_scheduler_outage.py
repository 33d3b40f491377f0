"""Fault 3: the scheduler is down (slurmctld stopped) during submit and during wait.

The real slurmctld of the test cluster is stopped and always started again
(the ``controller`` fixture restarts it, or reruns tests/cluster/up, in a
finally block).  Outages stay under about 25 s because others share the
cluster; these tests are marked ``disruptive`` and this module's name sorts
it last.  Slurm's own clients retry for a while before they give up: with
the controller down, ``sbatch`` fails after about 9 s and ``squeue`` after
about 18 s.

What hpcdo must do: a transient outage is ridden out (bounded retries with
back-off), a lasting one is a clear error; nothing untrue is recorded (a
job the queue cannot be asked about is not "lost", and is never submitted
a second time); when the controller is back, the next call carries on.
"""

import re
import time

import pytest

from conftest import write_recipe
from faults_helpers import finish, jobs_for, no_traceback, wait_until
from faultfix import controller  # noqa: F401  (fixture)

SHORT = ("one", "straight", ["--geometry", "{geometry}", "--steps", 300])
# about 30 s of computing on the test cluster: it outlives the outage
LONG = ("long", "straight", ["--geometry", "{geometry}", "--steps", 250000, "--output-every", 0])


def job_id(project, run):
    return project.remote("cat lbflow/runs/%s/job.id 2>/dev/null" % run).strip()


def started(project, run):
    return project.remote("cat lbflow/runs/%s/job.started 2>/dev/null" % run).strip() != ""


def call_during_outage(project, controller, seconds, *args):
    """Stop the controller, start ``doit args``, start the controller ``seconds`` later; the call's
    (exit status, output), which never holds a traceback."""
    controller.stop()
    try:
        proc = project.popen(*args)
        time.sleep(seconds)
    finally:
        controller.start()
    rc, output = finish(proc)
    assert "Traceback" not in output, output
    return rc, output


def test_a_refused_job_is_not_retried(slurm_project):
    """A permanent refusal (no such partition) fails at once, with sbatch's reason, and records no job."""
    project = slurm_project
    write_recipe(project, [SHORT])
    project.doit("compile", "send_geometry")
    start = time.monotonic()
    out = project.doit("fetch_results", "partition=nosuch", ok=False)
    assert time.monotonic() - start < 30, "a permanent refusal was retried"
    no_traceback(out)
    assert "invalid partition" in out.out.lower(), out
    assert job_id(project, "one") == ""
    assert jobs_for(project, "one") == []


@pytest.mark.disruptive
def test_submit_rides_out_a_short_controller_outage(slurm_project, controller):
    """The controller is down when sbatch runs and back ~12 s later: the same call submits, once."""
    project = slurm_project
    write_recipe(project, [SHORT])
    project.doit("compile", "send_geometry")
    rc, output = call_during_outage(project, controller, 12, "fetch_results")
    assert rc == 0, output
    jobs = jobs_for(project, "one")
    assert len(jobs) == 1, jobs
    assert job_id(project, "one") == jobs[0]
    assert project.summary("one")["steps"] == 300


@pytest.mark.disruptive
def test_submit_during_a_lasting_outage_is_a_clear_error(slurm_project, controller):
    """Down for the whole call (up to 25 s): a clear error naming the scheduler, no job recorded;
    the next call carries on.  (A call that outlasts the outage and then submits is fine too.)"""
    project = slurm_project
    write_recipe(project, [SHORT])
    project.doit("compile", "send_geometry")
    controller.stop()
    try:
        proc = project.popen("submit:one")
        try:
            proc.wait(timeout=25)
        except Exception:
            pass
        if proc.poll() is not None:
            # still down: nothing may claim a job
            assert job_id(project, "one") == ""
            status = project.doit("status", "persist=0", ok=None)
            assert re.search(r"run one\s+never submitted", status.out), status
    finally:
        controller.start()
    rc, output = finish(proc)
    assert "Traceback" not in output, output
    if rc != 0:
        assert re.search(r"slurm controller|scheduler", output, re.I), output
        assert "LOST" not in output
        assert jobs_for(project, "one") == []
    out = project.doit("fetch_results")
    jobs = jobs_for(project, "one")
    assert len(jobs) == 1, (jobs, out)
    assert job_id(project, "one") == jobs[0]


@pytest.mark.disruptive
def test_a_call_made_while_the_controller_is_down_does_not_resubmit_a_running_job(slurm_project, controller):
    """A job runs; the controller goes down; a new call (a dropped terminal, say) asks about the
    job: the queue cannot answer, which must not make the job 'lost' and submitted again."""
    project = slurm_project
    write_recipe(project, [LONG])
    project.doit("submit:long")
    first = job_id(project, "long")
    wait_until(lambda: started(project, "long"), timeout=120, what="the job to start")
    rc, output = call_during_outage(project, controller, 20, "fetch_results")
    if rc != 0:
        # a clear error about the scheduler, then the next call carries on
        assert re.search(r"slurm controller|scheduler", output, re.I), output
        again = project.doit("fetch_results")
        no_traceback(again)
    jobs = jobs_for(project, "long")
    assert jobs == [first], (jobs, output)
    assert job_id(project, "long") == first
    assert project.remote("ls lbflow/runs/long/previous 2>/dev/null").strip() == ""
    assert project.summary("long")["steps"] == 250000


@pytest.mark.disruptive
def test_wait_rides_out_a_controller_outage(slurm_project, controller):
    """doit is waiting when the controller goes down for 20 s: the wait goes on, and ends when the job does."""
    project = slurm_project
    write_recipe(project, [LONG])
    proc = project.popen("fetch_results")
    try:
        wait_until(lambda: started(project, "long"), timeout=120, what="the job to start")
        first = job_id(project, "long")
        controller.stop()
        time.sleep(20)
    finally:
        controller.start()
    rc, output = finish(proc)
    assert "Traceback" not in output, output
    assert rc == 0, output
    assert "LOST" not in output
    assert jobs_for(project, "long") == [first]
    assert project.summary("long")["steps"] == 250000
