"""Loops end to end: a calibration loop interrupted in iteration 3 resumes without a second job,
a no-op after convergence is one remote operation, and an edited update function reruns from the
first iteration whose settings change (hpcdo/loop.py, hpcdo/steps/loop.py).

The project is not the demo: lbflow in the straight vessel beside an ordinary run, with an update
that moves the force half the way (in log) to where the flow rate meets the target, so that the
loop takes seven iterations.  What each iteration ran with is read back from lbflow's own
summary.json; what was submitted from the machine's job.id files, hpcdo's trace and, on the
cluster, from Slurm.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import reaped, wait_until

RECIPE = '''import json, os
from hpcdo.loop import Converged, Next
from hpcdo.recipe import LocalTree, Recipe
recipe = Recipe(name="lbflow", source=LocalTree("demo/lbflow"), executable="lbflow",
    cmake_options={"CMAKE_BUILD_TYPE": "Release"},
    geometries={"straight": "demo/geometries/straight.gmy"}, outputs=["summary.json"])
recipe.run("plain", geometry="straight", args=["--geometry", "{geometry}", "--steps", 20], cores=1)
TARGET = 0.655

@recipe.loop("cal", first={"force": 1e-5}, max_iterations=8, geometry="straight",
             args=["--geometry", "{geometry}", "--steps", 4000, "--force", "{force}", "--output-every", 0],
             env={"CAL_FORCE": "{force}"}, cores=1, walltime="00:05:00")
def cal(results, params, history):
    with open(os.path.join(results, "summary.json")) as fh:
        flow = json.load(fh)["flow_rate_mid"]
    if abs(flow - TARGET) <= 0.03 * TARGET:
        return Converged(value=flow)
    # a comment
    step = 0.5 if len(history) < 2 else 0.5
    return Next(value=flow, force=params["force"] * (TARGET / flow) ** step)
'''


@pytest.fixture(params=["localhost", "testslurm"])
def loop_project(request, tmp_path):
    from conftest import on_machine
    yield from on_machine(request, tmp_path)


def job_id(project, run):
    return project.remote("cat lbflow/runs/%s/job.id 2>/dev/null" % run).strip()


def submits(trace):
    """The runs each submit command of a call sent (hpcdo's trace names them)."""
    return [t["what"].split(" ", 1)[1] for t in trace if t["op"] == "run" and t["what"].startswith("submit ")]


def history(project):
    with open(os.path.join(project.path, "results", project.machine, "cal.history.json")) as fh:
        return json.load(fh)


def check_history(project, expected_len, exponent_from_3=0.5):
    """Each iteration ran with the force the update gave for the one before (read from lbflow's summary)."""
    doc = history(project)
    its = doc["iterations"]
    assert doc["state"] == "converged" and len(its) == expected_len, doc
    for before, after in zip(its, its[1:]):
        step = 0.5 if before["iteration"] < 3 else exponent_from_3
        assert after["params"]["force"] == pytest.approx(before["params"]["force"] * (0.655 / before["value"]) ** step)
    for it in its:
        summary = project.summary("cal-%02d" % it["iteration"])
        assert summary["force"] == pytest.approx(it["params"]["force"]), (it, summary)
        assert summary["flow_rate_mid"] == it["value"]
    assert abs(its[-1]["value"] - 0.655) <= 0.03 * 0.655
    return its


def test_a_loop_resumes_where_it_was_killed_and_reruns_from_the_first_changed_iteration(loop_project, tmp_path):
    project = loop_project
    with open(project.file("recipes/lbflow.py"), "w") as fh:
        fh.write(RECIPE)
    trace_path = str(tmp_path / "killed.jsonl")
    kill = signal.SIGINT if project.machine == "localhost" else signal.SIGKILL
    env = dict(os.environ, HPCDO_TRACE=trace_path)
    argv = [sys.executable, "-m", "doit", "machine=" + project.machine, "remote_root=" + project.remote_root,
            "fetch_results"]
    with reaped(subprocess.Popen(argv, cwd=project.path, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))) as working:
        wait_until(lambda: job_id(project, "cal-03") or working.poll() is not None, "iteration 3's job",
                   timeout=300, every=0.1)
        working.send_signal(kill)
        out, err = working.communicate(timeout=60)
    assert working.returncode != 0, out + err
    with open(trace_path) as fh:
        first = submits([json.loads(line) for line in fh])
    before = {run: job_id(project, run) for run in ("cal-01", "cal-02", "cal-03")}
    assert all(before.values()), before
    assert [r for r in first if r.startswith("cal")][:3] == ["cal-01", "cal-02", "cal-03"], first
    assert not job_id(project, "cal-05"), "killed in iteration 3 (or 4 at most)"

    out = project.doit("fetch_results")
    # (the ordinary run may not have been fetched when the first call was killed)
    assert [t for t in out.ran if not t.endswith(":plain")] == ["loop:cal"], out
    again = [r for r in submits(out.trace) if r != "plain"]
    assert not {"cal-01", "cal-02", "cal-03"} & set(again), again
    assert {run: job_id(project, run) for run in before} == before
    its = check_history(project, 7)
    assert again == ["cal-%02d" % n for n in range(4, 8) if "cal-%02d" % n not in first], (first, again)
    assert "hpcdo: loop cal: iteration 7 (cal-07): force=" in out.out and ", converged" in out.out, out
    if project.cluster is not None:
        for it in its:
            jobs = project.cluster.squeue("%s/lbflow/runs/%s" % (project.remote_root, it["run"]))
            assert len(jobs) == 1, (it["run"], jobs)

    # converged: a no-op executes no task and asks the machine once
    out = project.doit("fetch_results")
    assert out.ran == [] and "loop:cal" in out.uptodate, out
    assert [t["what"] for t in out.trace if t["op"] == "run"] == ["probe"], out.trace
    status = project.doit("status").out
    assert "loop     cal (recipe lbflow, at most 8 iterations): converged at iteration 7" in status, status
    assert "  7          cal-07  force=" in status, status

    # a comment in the function changes no setting: nothing runs
    project.edit("recipes/lbflow.py", "# a comment", "# another comment")
    out = project.doit("fetch_results")
    assert out.ran == [], out

    # the update changes from iteration 3's results on: iterations 1-3 stand, 4 and 5 run again
    kept = {run: job_id(project, run) for run in ("cal-01", "cal-02", "cal-03", "cal-04")}
    project.edit("recipes/lbflow.py", "else 0.5", "else 0.9")
    out = project.doit("fetch_results")
    assert out.ran == ["loop:cal"], out
    # (cal-05 was not among the runs the probe asked about: its first submit command finds the
    # older job's id and submits nothing, the second submits; one new job, as the scheduler says)
    assert sorted(set(submits(out.trace))) == ["cal-04", "cal-05"], out.trace
    assert {run: job_id(project, run) for run in ("cal-01", "cal-02", "cal-03")} == \
        {run: kept[run] for run in ("cal-01", "cal-02", "cal-03")}
    assert job_id(project, "cal-04") != kept["cal-04"]
    its = check_history(project, 5, exponent_from_3=0.9)
    if project.cluster is not None:
        for it in its:
            jobs = project.cluster.squeue("%s/lbflow/runs/%s" % (project.remote_root, it["run"]))
            assert len(jobs) == (1 if it["iteration"] < 4 else 2), (it["run"], jobs)
    out = project.doit("fetch_results")
    assert out.ran == [] and [t["what"] for t in out.trace if t["op"] == "run"] == ["probe"], out


def test_the_calibration_demo_converges_within_one_percent(loop_project):
    """demo/calibrate, as the README runs it: lbflow's force calibrated to a flow rate of 3.0 through
    the stenosis, within 1% in at most 8 iterations; then a no-op is one remote operation."""
    project = loop_project
    demo = project.file("demo/calibrate")
    for name in ("machines", "jobscripts"):          # the test cluster's machines and templates
        if os.path.isdir(project.file(name)):
            shutil.copytree(project.file(name), os.path.join(demo, name))
    argv = [sys.executable, "-m", "doit", "machine=" + project.machine, "remote_root=" + project.remote_root]

    def doit(*args):
        trace = os.path.join(demo, ".trace.jsonl")
        proc = subprocess.run(argv + list(args), cwd=demo, capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, HPCDO_TRACE=trace))
        with open(trace) as fh:
            ops = [json.loads(line) for line in fh]
        os.remove(trace)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc, ops

    proc, _ops = doit("fetch_results")
    out = os.path.join(demo, "results", project.machine)
    with open(os.path.join(out, "calibrate.history.json")) as fh:
        doc = json.load(fh)
    its = doc["iterations"]
    assert doc["state"] == "converged" and 2 <= len(its) <= 8, doc
    assert abs(its[-1]["value"] - 3.0) <= 0.03 and all(abs(it["value"] - 3.0) > 0.03 for it in its[:-1]), doc
    for it in its:
        with open(os.path.join(out, it["run"], "summary.json")) as fh:
            summary = json.load(fh)
        assert summary["force"] == pytest.approx(it["params"]["force"]) and summary["flow_rate_mid"] == it["value"]
        assert summary["geometry"] == "stenosis", summary
    assert os.path.getsize(os.path.join(out, "calibrate.convergence.png")) > 1000
    assert "converged" in proc.stderr, proc.stderr

    proc, ops = doit("fetch_results")
    assert "\n.  " not in "\n" + proc.stdout and "-- loop:calibrate" in proc.stdout, proc.stdout
    assert [t["what"] for t in ops if t["op"] == "run"] == ["probe"], ops
