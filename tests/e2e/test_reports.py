"""What a call says happened, checked against what Slurm saw: --report, --junit, status, status --json.

A project unlike the demo (tests/e2e/anyproject.py) with runs of different
outputs and lengths, one made to fail (exit 3), goes through the real test
cluster's Slurm; the reports' job ids, states, exit codes and times are
compared with what Slurm's controller (scontrol, squeue) says of them.
"""

import calendar
import json
import time
import xml.etree.ElementTree as ET

import pytest

import anyproject

RUNS = [("small", ["--bytes", 100, "a.dat"]), ("many", ["--files", 4, 10, "f"]),
        ("slow", ["--sleep", 3, "--bytes", 1, "s"]), ("bad", ["--bytes", 5, "partial", "--exit", 3])]


def slurm_saw(cluster, ids):
    """{id: (JobState, exit code, SubmitTime, StartTime, EndTime)} as Slurm's controller holds them
    (``scontrol -o show job``: the test cluster keeps no accounting; times in epoch seconds)."""
    out = cluster.ssh("scontrol -o show job").stdout
    found = {}
    for line in out.splitlines():
        f = dict(word.split("=", 1) for word in line.split() if "=" in word)
        if f.get("JobId") in ids:
            stamp = [time.mktime(time.strptime(f[k], "%Y-%m-%dT%H:%M:%S"))
                     for k in ("SubmitTime", "StartTime", "EndTime")]
            found[f["JobId"]] = (f["JobState"], int(f["ExitCode"].split(":")[0]), *stamp)
    return found


def epoch(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def json_out(out):
    """The JSON document a call printed: its output starts with it (a script pipes it to json.load)."""
    document, _end = json.JSONDecoder().raw_decode(out.out)
    return document


def remote_ids(project):
    return {name: project.remote("cat tool/runs/%s/job.id" % name).strip() for name, _a in RUNS}


@pytest.fixture
def tool(slurm_project):
    return anyproject.make(slurm_project, RUNS)


def test_reports_and_status_say_what_slurm_saw(tool, cluster, tmp_path):
    out = tool.doit("--report", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml"), "fetch_results",
                    ok=False)
    ids = remote_ids(tool)
    seen = slurm_saw(cluster, set(ids.values()))
    assert {n: seen[i][0] for n, i in ids.items()} == {"small": "COMPLETED", "many": "COMPLETED",
                                                       "slow": "COMPLETED", "bad": "FAILED"}, seen

    # -- the JSON report: every step, and each run as Slurm saw it
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["outcome"] == "failure" and doc["complete"] and doc["machine"]["name"] == "testslurm"
    steps = {s["task"]: s for s in doc["steps"]}
    for name in ["clone", "configure", "compile"] + ["submit:" + n for n, _a in RUNS]:
        assert steps[name]["state"] in ("executed", "up_to_date"), steps[name]
    assert steps["compile"]["state"] == "executed" and steps["compile"]["seconds"] > 0
    assert steps["wait:bad"]["state"] == "failed" and "exit code 3" in steps["wait:bad"]["message"]
    assert steps["fetch_results:bad"]["state"] == "not_run"
    assert all(steps["fetch_results:" + n]["state"] == "executed" for n in ("small", "many", "slow"))
    runs = {r["run"]: r for r in doc["runs"]}
    assert set(runs) == {n for n, _a in RUNS}
    for name, job_id in ids.items():
        state, code, submitted, started, ended = seen[job_id]
        run = runs[name]
        assert run["job_id"] == job_id and run["exit_code"] == code and run["state"] == state.lower(), run
        # the run's own markers and Slurm's record agree within the seconds a job script takes
        assert abs(epoch(run["submitted"]) - submitted) <= 3, (run, seen[job_id])
        assert abs(epoch(run["started"]) - started) <= 3 and abs(epoch(run["ended"]) - ended) <= 3, run
        assert run["walltime_seconds"] == 300 and run["elapsed_seconds"] >= 0
        assert run["results"] == "results/testslurm/%s/" % name
    assert runs["slow"]["elapsed_seconds"] >= 3
    assert runs["bad"]["retry"] == "doit machine=testslurm retry bad"
    assert runs["bad"]["log"].endswith("/tool/runs/bad/job.out") and tool.remote_root in runs["bad"]["log"]
    assert runs["small"]["fetched"] and not runs["bad"]["fetched"] and runs["small"]["log"] is None

    # -- JUnit: a case per step and per run, the failures with their messages
    root = ET.parse(str(tmp_path / "j.xml")).getroot()
    assert root.tag == "testsuites" and [s.tag for s in root] == ["testsuite", "testsuite"]
    step_cases = {c.get("name"): c for c in root[0].iter("testcase")}
    run_cases = {c.get("name"): c for c in root[1].iter("testcase")}
    assert set(step_cases) == set(steps) and set(run_cases) == set(runs)
    assert "exit code 3" in step_cases["wait:bad"].find("failure").get("message")
    assert step_cases["fetch_results:bad"].find("skipped") is not None
    bad = run_cases["bad"].find("failure")
    assert bad is not None and ids["bad"] in bad.get("message") and "retry bad" in bad.text
    assert all(run_cases[n].find("failure") is None for n in ("small", "many", "slow"))
    assert (root.get("failures"), root.get("tests")) == ("2", str(len(steps) + len(runs)))

    # -- status --json: the same runs, and every step's state, asking the machine once
    status = json_out(tool.doit("status", "--json"))
    assert status["schema"] == 1 and status["machine"]["scheduler"] == "slurm"
    assert {r["run"]: (r["job_id"], r["state"], r["exit_code"]) for r in status["runs"]} == {
        n: (ids[n], seen[ids[n]][0].lower(), seen[ids[n]][1]) for n in ids}
    states = {s["task"]: s["state"] for s in status["steps"]}
    assert states["wait:bad"] == "stale" and states["fetch_results:bad"] == "stale"
    assert states["submit:bad"] == "up_to_date"            # a program's failure is not submitted again
    assert all(v == "up_to_date" for k, v in states.items() if not k.endswith(":bad")), states

    # -- the status table: a row per run with its job, state, exit code, log and retry command
    table = tool.doit("status").out
    row = next(line for line in table.splitlines() if line.startswith("run bad "))
    assert ids["bad"] in row and "failed" in row and " 3 " in row and "retry bad" in row, table
    row = next(line for line in table.splitlines() if line.startswith("run slow "))
    assert ids["slow"] in row and "completed" in row and "/0:05:00" in row, table
    assert "results/testslurm/slow/" in row and "not fetched" not in row


def test_status_shows_why_a_job_waits_as_squeue_says(tool, cluster):
    later = ["directives=[--begin=now+600]"]
    tool.doit(*later, "submit:small")
    job = tool.remote("cat tool/runs/small/job.id").strip()
    said = cluster.ssh("squeue -h -j %s -o '%%T %%r'" % job).stdout.split()
    assert said == ["PENDING", "BeginTime"], said
    status = json_out(tool.doit(*later, "status", "--json"))
    run = next(r for r in status["runs"] if r["run"] == "small")
    assert (run["job_id"], run["state"], run["reason"]) == (job, "pending", "BeginTime"), run
    assert run["started"] is None and run["elapsed_seconds"] is None and run["submitted"]
    table = tool.doit(*later, "status").out
    assert any(l.startswith("run small ") and "BeginTime" in l and "pending" in l for l in table.splitlines())
    # the report of a call that only submits: the run is pending, not failed
    tool.doit(*later, "--report", tool.file("r.json"), "--junit", tool.file("j.xml"), "submit")
    doc = json.loads(open(tool.file("r.json")).read())
    assert {r["run"]: r["state"] for r in doc["runs"]}["small"] == "pending"
    root = ET.parse(tool.file("j.xml")).getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "small")
    assert case.find("skipped") is not None and "BeginTime" in case.find("skipped").get("message")


@pytest.fixture(params=["testsge", "testpbs"])
def other_tool(request, tmp_path, cluster):
    from conftest import cluster_project
    for project in cluster_project(tmp_path, cluster, request.param):
        yield anyproject.make(project, [("fine", ["--bytes", 3, "x"]), ("broke", ["--exit", 5])])


def test_reports_on_grid_engine_and_pbs_commands(other_tool, tmp_path):
    """The same record through Grid Engine and PBS-style commands: states, exit codes, ids and times."""
    tool = other_tool
    tool.doit("--report", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml"), "fetch_results",
              ok=False)
    doc = json.loads((tmp_path / "r.json").read_text())
    runs = {r["run"]: r for r in doc["runs"]}
    for name in ("fine", "broke"):
        assert runs[name]["job_id"] == tool.remote("cat tool/runs/%s/job.id" % name).strip()
        times = [epoch(runs[name][k]) for k in ("submitted", "started", "ended")]
        assert times == sorted(times) and time.time() - times[0] < 600, runs[name]
    assert (runs["fine"]["state"], runs["fine"]["exit_code"]) == ("completed", 0)
    assert (runs["broke"]["state"], runs["broke"]["exit_code"]) == ("failed", 5)
    assert runs["broke"]["retry"] == "doit machine=%s retry broke" % tool.machine
    root = ET.parse(str(tmp_path / "j.xml")).getroot()
    assert root.get("failures") == "2" and root.find(".//testcase[@name='broke']/failure") is not None
    status = json_out(tool.doit("status", "--json"))
    assert {r["run"]: r["state"] for r in status["runs"]} == {"fine": "completed", "broke": "failed"}
