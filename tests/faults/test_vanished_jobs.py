"""Fault 5: a job vanishes from the queue and there is no accounting to ask.

Grid Engine forgets a job the moment it ends; with its accounting out of
reach (here ``qacct`` is shadowed by a shell function in the machine's
``shell_setup``, as on sites where users cannot read the accounting file)
nothing but the run directory remembers the job.  Slurm keeps ended jobs
for MinJobAge (300 s on the test cluster, which has no sacct), so for Slurm
the run directory is made to name a job id the controller has forgotten:
the state the machine is in once MinJobAge has passed.

The exit marker the jobscript leaves decides the outcome; without one the
job is LOST, said so quickly (no hang), and submitted again by itself up to
the machine's ``retries``.  A failed marker is the program's failure: it is
not submitted again until the inputs change or ``retry`` asks for it.
(Whether the resubmitted job's results are then fetched is the business of
test_scratch_purge.py's provenance checks.)
"""

import re
import time

import pytest

from conftest import reaped, write_recipe
from faults_helpers import ends_soon, jobs_for, no_traceback, wait_until

NO_QACCT = "shell_setup=['qacct() { return 1; }']"
SHORT = ("a", "straight", ["--geometry", "{geometry}", "--steps", 500])
LONG = ("long", "straight", ["--geometry", "{geometry}", "--steps", 200000, "--output-every", 0])


def forgotten_id(cluster):
    """A Slurm job id the controller does not know (job 1 ended long ago on any used cluster)."""
    proc = cluster.ssh("squeue -h -j 1 -o %i", check=False)
    assert proc.returncode != 0 or proc.stdout.strip() == "", "job 1 is still known to Slurm"
    return "1"


def status_of(project, run):
    out = project.doit("status")
    m = re.search(r"^run %s\s+(.*)$" % run, out.out, re.M)
    assert m, out
    return " ".join(m.group(1).split())        # the table's columns, one space apart


@pytest.fixture
def forgotten(slurm_project):
    """A completed, fetched run whose job Slurm has since forgotten."""
    write_recipe(slurm_project, [SHORT])
    slurm_project.doit("fetch_results")
    gone = forgotten_id(slurm_project.cluster)
    slurm_project.remote("echo %s > lbflow/runs/a/job.id" % gone)
    return slurm_project, gone


def test_forgotten_job_with_marker_counts_as_completed(forgotten, tmp_path):
    project, gone = forgotten
    fresh = project.clone_to(tmp_path / "fresh")          # no local state at all
    start = time.monotonic()
    out = fresh.doit("fetch_results")
    assert time.monotonic() - start < 60
    assert out.ran == ["fetch_results:a"], out
    assert fresh.summary("a")["steps"] == 500
    assert len(jobs_for(project, "a")) == 1               # nothing submitted again
    assert status_of(fresh, "a").startswith("%s completed" % gone)


def test_forgotten_job_with_failed_marker_is_failed_until_retried(forgotten):
    project, gone = forgotten
    project.remote("printf '2 %s\\n' \"$(date +%s)\" > lbflow/runs/a/job.exit")
    assert status_of(project, "a").startswith("%s failed" % gone)
    start = time.monotonic()
    failed = project.doit("fetch_results", ok=False)
    assert time.monotonic() - start < 60
    assert "submit:a" not in failed.ran and "FAILED with exit code 2" in failed.out, failed
    assert project.remote("cat lbflow/runs/a/job.id").strip() == gone
    retried = project.doit("retry", "a")
    assert "submitted job" in retried.out, retried
    out = project.doit("fetch_results")
    assert "fetch_results:a" in out.ran, out
    new = project.remote("cat lbflow/runs/a/job.id").strip()
    assert new != gone and len(jobs_for(project, "a")) == 2
    assert status_of(project, "a").startswith("%s completed" % new)
    assert project.remote("cat lbflow/runs/a/previous/%s/job.exit" % gone).split()[0] == "2"


def test_forgotten_job_without_marker_is_lost_not_waited_for(forgotten):
    project, gone = forgotten
    project.remote("rm -f lbflow/runs/a/job.exit")
    assert status_of(project, "a").startswith("%s lost" % gone)
    start = time.monotonic()
    out = project.doit("fetch_results")
    assert time.monotonic() - start < 60, "waited for a job no one knows"
    assert "submit:a" in out.ran, out
    new = project.remote("cat lbflow/runs/a/job.id").strip()
    assert new != gone
    assert status_of(project, "a").startswith("%s completed" % new)


@pytest.fixture
def sge_project(tmp_path, cluster):
    from conftest import cluster_project
    yield from cluster_project(tmp_path, cluster, "testsge")


def test_sge_job_gone_without_accounting_is_known_by_its_marker(sge_project, tmp_path):
    project = sge_project
    write_recipe(project, [SHORT])
    out = project.doit("fetch_results", NO_QACCT)
    assert project.summary("a")["steps"] == 500
    job = project.remote("cat lbflow/runs/a/job.id").strip()
    assert job not in project.cluster.jobs("testsge")      # Grid Engine has forgotten it
    fresh = project.clone_to(tmp_path / "fresh")
    out = fresh.doit("fetch_results", NO_QACCT)
    assert out.ran == ["fetch_results:a"], out
    assert status_of(fresh, "a").startswith("%s completed" % job)


def _kill_when_started(project, after=None):
    """qdel the run's job once it has started (and is not job ``after``); return its id."""
    def started():
        job = project.remote("cat lbflow/runs/long/job.id 2>/dev/null").strip()
        return job and job != after and project.remote("cat lbflow/runs/long/job.started 2>/dev/null").strip()
    wait_until(started, timeout=120, what="the job to start")
    job = project.remote("cat lbflow/runs/long/job.id").strip()
    project.cluster.ssh("qdel %s" % job)
    return job


def test_sge_job_killed_without_marker_or_accounting_is_submitted_again_once(sge_project):
    """qdel kills the job with SIGKILL (no marker); Grid Engine forgets it; no accounting:
    the job is LOST, which is the machine's doing, so the waiting call submits it again by
    itself (retries: 1); when that one is lost too, it says so within seconds."""
    project = sge_project
    write_recipe(project, [LONG])
    proc = project.popen("fetch_results", NO_QACCT)
    with reaped(proc):
        first = _kill_when_started(project)
        second = _kill_when_started(project, after=first)
        rc, output, took = ends_soon(proc, time.monotonic())
    assert rc != 0
    assert "Traceback" not in output, output
    assert took < 60, "the wait hung for %d s on a job that no longer exists" % took
    assert "job %s ended LOST (the machine ended it, not the program); submitted it again as job %s" % (
        first, second) in output, output
    assert "job %s on testsge ended LOST" % second in output and "retry long" in output, output
    assert project.remote("cat lbflow/runs/long/job.exit 2>/dev/null").strip() == ""
    again = project.doit("submit:long", NO_QACCT)             # retries used up: left alone
    assert again.ran == [] and project.remote("cat lbflow/runs/long/job.id").strip() == second, again
    retried = project.doit("retry", "long", NO_QACCT)
    no_traceback(retried)
    new = project.remote("cat lbflow/runs/long/job.id").strip()
    assert new and new not in (first, second), retried
    project.cluster.ssh("qdel %s >/dev/null 2>&1" % new, check=False)
