"""Helpers shared by the fault-injection tests."""

import shlex
import subprocess
import time

from conftest import reaped


def wait_until(predicate, timeout=60, interval=0.2, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def rundir(project, run, recipe="lbflow"):
    return "%s/%s/runs/%s" % (project.remote_root, recipe, run)


def jobs_for(project, run, recipe="lbflow"):
    """Ids of every job (any state) the scheduler holds for the run's directory."""
    return project.cluster.jobs(project.machine, rundir(project, run, recipe))


def scancel(cluster, ids):
    ids = [i for i in ids if i]
    if ids:
        cluster.ssh("scancel %s >/dev/null 2>&1" % " ".join(shlex.quote(i) for i in ids), check=False)


def no_traceback(out):
    assert "Traceback" not in out.out, out


def finish(proc, timeout=300):
    """(exit status, stdout + stderr) of a doit started with Project.popen; killed if it overruns."""
    with reaped(proc):
        out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def ends_soon(proc, since, timeout=90):
    """(exit status, output, seconds since ``since``) of a waiting doit that must end within ``timeout``
    once its job is gone; a call still waiting then fails the test."""
    with reaped(proc):
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the waiting call did not end within %d s of the job's end: it hangs on "
                                 "a job the scheduler no longer knows" % timeout)
        return proc.returncode, out + err, time.monotonic() - since
