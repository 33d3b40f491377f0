"""Fault 2: doit is interrupted (SIGINT) or killed (SIGKILL) during submission: never two jobs for one run.

The window is hit for real: the machine's ``sbatch`` is slowed by a shell
function (the machine's ``shell_setup``, as a slow or busy controller would
be), which sleeps *after* the real ``sbatch`` returned.  The test waits
until the scheduler holds the job while the run directory has no ``job.id``
yet -- the job exists, hpcdo has not recorded it -- and interrupts or kills
doit right there.  The next call, started at once (while the first
submission script may still be running on the machine), must end with one
job per run, the one whose id the run directory records, and the results.

(tests/e2e/test_jobs.py covers Ctrl-C and kill -9 while *waiting*, and three
simultaneous invocations of submit.)
"""

import os
import shutil
import signal

import pytest

from conftest import reaped, write_recipe
from faults_helpers import jobs_for, no_traceback, wait_until
from faultfix import stop_agents

SLOW_SBATCH = """
slowsubmit:
  extends: testslurm
  shell_setup:
    - 'sbatch() { command sbatch "$@"; r=$?; sleep 5; return $r; }'
"""

RUNS = [("one", "straight", ["--geometry", "{geometry}", "--steps", 2000]),
        ("two", "bifurcation", ["--geometry", "{geometry}", "--steps", 2000])]


def job_id(project, run):
    return project.remote("cat lbflow/runs/%s/job.id 2>/dev/null" % run).strip()


@pytest.fixture(params=["ssh", "agent"])
def via(request, tmp_path):
    """Connection words: the call's own connection, or a persistent agent of this test's own."""
    if request.param == "ssh":
        yield ["persist=0"]
        return
    from faultfix import STATE_DIR
    known = str(tmp_path / "agent_known_hosts")
    shutil.copy(os.path.join(STATE_DIR, "known_hosts"), known)
    try:
        yield ["known_hosts=%s" % known, "persist=60"]
    finally:
        stop_agents(known)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupt_between_sbatch_and_recording_the_id(slurm_project, via, sig):
    project = slurm_project
    with open(project.file("machines/faults.yml"), "w") as fh:
        fh.write(SLOW_SBATCH)
    project.machine = "slowsubmit"
    write_recipe(project, RUNS)
    project.doit("compile", "send_geometry", *via)

    proc = project.popen("fetch_results", *via)
    with reaped(proc):
        # the job is queued, its id not yet recorded: the submission is in flight
        wait_until(lambda: jobs_for(project, "one") and not job_id(project, "one"),
                   timeout=60, interval=0.1, what="the first job to be queued before job.id is written")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode != 0
    print("interrupted call's stderr:\n" + err[-3000:])

    again = project.doit("fetch_results", *via)
    no_traceback(again)
    for run in ("one", "two"):
        jobs = jobs_for(project, run)
        assert len(jobs) == 1, (run, jobs, again)
        assert job_id(project, run) == jobs[0]
        assert project.remote("ls lbflow/runs/%s/previous 2>/dev/null" % run).strip() == ""
        assert project.summary(run)["steps"] == 2000
    assert project.doit("fetch_results", *via).ran == []
