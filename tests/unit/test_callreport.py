"""The --report/--junit record of a call: every step's state, every run's outcome, written whole."""

import json
import os
import xml.etree.ElementTree as ET
from types import SimpleNamespace as NS

from doit.exceptions import TaskFailed, UnmetDependency

from hpcdo import callreport, outcomes


def task(name, actions=True):
    return NS(name=name, actions=[object()] if actions else [])


def fake_project():
    return NS(machine=NS(name="testslurm", scheduler="slurm"), session=NS(remote=NS(host="localhost")))


RUNS = [outcomes.RunOutcome(recipe="gen", run="good", machine="testslurm", state="completed", job_id="41",
                            exit_code=0, submitted=100.0, started=110.0, ended=130.0, elapsed=20.0,
                            walltime=300, results="results/testslurm/good/", fetched=True, current=True,
                            tries=1),
        outcomes.RunOutcome(recipe="gen", run="bad", machine="testslurm", state="failed", job_id="42",
                            exit_code=3, elapsed=1.0, walltime=300, results="results/testslurm/bad/",
                            log="/w/gen/runs/bad/job.out", retry="doit machine=testslurm retry bad"),
        outcomes.RunOutcome(recipe="gen", run="later", machine="testslurm", state="pending", job_id="43",
                            reason="Priority", walltime=60, results="results/testslurm/later/")]


def a_call(tmp_path, monkeypatch, finish=True):
    monkeypatch.setattr(outcomes, "run_outcomes", lambda project, names=None, now=None:
                        [r for r in RUNS if names is None or r.run in names])
    clock = iter(range(1000, 2000))
    report = callreport.CallReport(fake_project(), str(tmp_path / "out" / "report.json"),
                                   str(tmp_path / "out" / "junit.xml"), clock=lambda: float(next(clock)))
    report.initialize([], ["fetch_results"])
    report.skip_uptodate(task("clone"))
    report.execute_task(task("compile"))
    report.add_success(task("compile"))
    report.execute_task(task("fetch_results", actions=False))       # a group: its steps say it all
    report.add_success(task("fetch_results", actions=False))
    for run in ("good", "bad", "later"):
        report.skip_uptodate(task("submit:" + run))
    report.execute_task(task("wait:bad"))
    report.add_failure(task("wait:bad"), TaskFailed("run bad: job 42 on testslurm ended FAILED with exit code 3"))
    report.add_failure(task("fetch_results:bad"), UnmetDependency("wait:bad failed"))
    report.execute_task(task("fetch_results:good"))
    report.add_success(task("fetch_results:good"))
    if finish:
        report.complete_run()
    return report


def test_the_json_report_has_every_step_and_the_runs_of_the_call(tmp_path, monkeypatch):
    a_call(tmp_path, monkeypatch)
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    steps = {s["task"]: s for s in doc["steps"]}
    assert "fetch_results" not in steps
    assert steps["clone"]["state"] == "up_to_date" and steps["compile"]["state"] == "executed"
    assert steps["compile"]["seconds"] == 1.0
    assert steps["wait:bad"]["state"] == "failed" and "exit code 3" in steps["wait:bad"]["message"]
    assert steps["fetch_results:bad"]["state"] == "not_run"
    runs = {r["run"]: r for r in doc["runs"]}
    assert runs["bad"]["retry"] == "doit machine=testslurm retry bad" and runs["bad"]["exit_code"] == 3
    assert runs["good"]["results"] == "results/testslurm/good/" and runs["good"]["job_id"] == "41"
    assert runs["later"]["state"] == "pending" and runs["later"]["reason"] == "Priority"
    assert doc["outcome"] == "failure" and doc["complete"] and doc["tasks"] == ["fetch_results"]
    assert doc["totals"] == {"steps": {"up_to_date": 4, "executed": 2, "failed": 1, "not_run": 1},
                             "runs": {"completed": 1, "failed": 1, "pending": 1}}
    assert sorted(os.listdir(tmp_path / "out")) == ["junit.xml", "report.json"]      # no temporary left


def check_junit_shape(root):
    """What GitHub and GitLab test report readers take: testsuites > testsuite > testcase, counts that add up."""
    assert root.tag == "testsuites"
    total = {"tests": 0, "failures": 0, "skipped": 0}
    for suite in root:
        assert suite.tag == "testsuite" and suite.get("name")
        cases = list(suite)
        assert all(c.tag == "testcase" and c.get("name") and c.get("classname") for c in cases)
        assert all(float(c.get("time")) >= 0 for c in cases)
        for child in (x for c in cases for x in c):
            assert child.tag in ("failure", "skipped", "system-out", "error")
        counts = {"tests": len(cases), "failures": sum(c.find("failure") is not None for c in cases),
                  "skipped": sum(c.find("skipped") is not None for c in cases)}
        for key, value in counts.items():
            assert int(suite.get(key)) == value
            total[key] += value
        assert suite.get("errors") == "0"
    for key, value in total.items():
        assert int(root.get(key)) == value


def test_the_junit_report_has_a_case_per_step_and_per_run(tmp_path, monkeypatch):
    a_call(tmp_path, monkeypatch)
    root = ET.parse(str(tmp_path / "out" / "junit.xml")).getroot()
    check_junit_shape(root)
    steps, runs = root
    case = {c.get("name"): c for c in steps}
    assert case["wait:bad"].find("failure").get("message").startswith("run bad: job 42")
    assert case["fetch_results:bad"].find("skipped") is not None
    assert case["clone"].find("failure") is None and case["clone"].find("skipped") is None
    run = {c.get("name"): c for c in runs}
    failure = run["bad"].find("failure")
    assert failure.get("type") == "failed" and "retry: doit machine=testslurm retry bad" in failure.text
    assert "log: testslurm:/w/gen/runs/bad/job.out" in failure.text
    assert run["later"].find("skipped") is not None and run["good"].find("failure") is None
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("11", "2", "2")


def test_a_call_that_ends_early_still_leaves_a_record_saying_so(tmp_path, monkeypatch):
    report = a_call(tmp_path, monkeypatch, finish=False)
    assert not (tmp_path / "out" / "report.json").exists()
    report._at_exit()
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["complete"] is False and doc["outcome"] == "failure"
    report._at_exit()                      # written once


def test_files_are_replaced_whole(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    callreport.write_atomically(str(path), "new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["r.json"]


def test_an_unwritable_report_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(outcomes, "run_outcomes", lambda project, names=None, now=None: [])
    (tmp_path / "file").write_text("")
    report = callreport.CallReport(fake_project(), str(tmp_path / "file" / "r.json"), "")
    report.complete_run()
    err = capsys.readouterr().err
    assert err.startswith("hpcdo: could not write") and err.count("\n") == 1
