"""Jobs are submitted once per inputs, whatever happens to the doit that submitted them.

Acceptance f: while a run's job is pending or running, a second invocation
(another shell at the same moment, or a rerun after Ctrl-C or kill -9)
submits nothing, and the scheduler shows one job for the run.
"""

import os
import signal
import time

from conftest import reaped, write_recipe

LONG = ("long", "straight", ["--geometry", "{geometry}", "--steps", 60000, "--output-every", 0])
SHORT = ("short", "straight", ["--geometry", "{geometry}", "--steps", 300])


def jobs_for(project, run):
    """Job ids the scheduler or the process table (localhost) holds for ``run``."""
    if project.cluster is not None:
        return project.cluster.jobs(project.machine, "%s/lbflow/runs/%s" % (project.remote_root, run))
    rundir = os.path.realpath(os.path.join(project.remote_root, "lbflow", "runs", run))
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if b"hpcdo-job" in cmdline and cwd == rundir:
            found.append(pid)
    return found


def wait_until(predicate, timeout=60, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def started(project, run):
    return project.remote("cat lbflow/runs/%s/job.started 2>/dev/null" % run).strip() != ""


def test_two_invocations_at_once_submit_one_job(project):
    write_recipe(project, [LONG, SHORT])
    project.doit("compile", "send_geometry")
    procs = [project.popen("submit:long") for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len(jobs_for(project, "long")) == 1
    ids = project.remote("cat lbflow/runs/long/job.id").split()
    assert len(ids) == 1
    assert project.remote("ls lbflow/runs/long/previous 2>/dev/null").strip() == ""
    again = project.doit("submit:long")
    assert again.ran == [] and len(jobs_for(project, "long")) == 1


def interrupt_while_waiting(project, sig):
    write_recipe(project, [LONG])
    proc = project.popen("fetch_results")
    with reaped(proc):
        wait_until(lambda: started(project, "long"), timeout=240, what="the job to start")
        proc.send_signal(sig)
        proc.communicate(timeout=60)
    job = project.remote("cat lbflow/runs/long/job.id").strip()
    assert job and len(jobs_for(project, "long")) == 1
    out = project.doit("fetch_results")
    assert "submit:long" not in out.ran and "submit:long" in out.uptodate, out
    assert "fetch_results:long" in out.ran
    assert project.remote("cat lbflow/runs/long/job.id").strip() == job
    assert project.summary("long")["steps"] == 60000
    assert len(jobs_for(project, "long")) <= 1


def test_ctrl_c_while_waiting_does_not_resubmit(project):
    interrupt_while_waiting(project, signal.SIGINT)


def test_kill_9_while_waiting_does_not_resubmit(project):
    interrupt_while_waiting(project, signal.SIGKILL)


def test_threads_share_one_connection(project):
    """doit -n 4 -P thread: the same pipeline, one connection, every result."""
    out = project.doit("-n", "4", "-P", "thread", "fetch_results")
    for run in ("straight", "bifurcation", "stenosis"):
        assert project.summary(run)["steps"] == 3000
    # at most one connection (none when testslurm's persistent agent already holds one)
    assert sum(1 for t in out.trace if t["op"] == "connect") <= (0 if project.cluster is None else 1)
    probes = [t for t in out.trace if t["what"] == "probe"]
    assert len(probes) == 1


def test_cancel_reports_cancelled_and_resubmits(project):
    """doit cancel: the scheduler's own cancel ends the job; status says cancelled; the next call resubmits."""
    write_recipe(project, [LONG])
    project.doit("submit")
    first = project.remote("cat lbflow/runs/long/job.id").strip()
    wait_until(lambda: started(project, "long"), timeout=240, what="the job to start")
    out = project.doit("cancel")
    assert "cancelled run long (job %s)" % first in out.out, out
    assert [t["what"] for t in out.trace if t["op"] == "run"] == ["probe", "cancel 1 jobs"], out.trace
    wait_until(lambda: "cancelled" in project.doit("status").out, timeout=120,
               what="status to report the job cancelled")
    out = project.doit("submit")
    assert out.ran == ["submit:long"], out
    assert project.remote("cat lbflow/runs/long/job.id").strip() != first
    assert project.remote("ls lbflow/runs/long/previous/%s/job.cancelled 2>/dev/null" % first).strip()
    project.doit("cancel")
