"""docs/ci.md's GitHub Actions and GitLab CI examples, their shell run as the runners would.

The YAML blocks of the page are parsed; each job's shell (GitHub: its ``run:``
steps, with the step's and workflow's ``env`` and the secrets filled in;
GitLab: ``before_script`` then ``script``) runs under ``bash -eo pipefail``
in a fresh copy of a project of varied runs (one fails, exit 3) with a fresh
home directory, against the test cluster's Slurm.  Only installing hpcdo is
left out: the runners here use this checkout.  No CI service is involved.

The submit job runs in one copy; the collecting job in another, again (as
its schedule would) until the jobs have ended.  That second runner must
rerun no build or submit step, only fetch.
"""

import json
import os
import re
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import yaml

import anyproject
from conftest import ROOT

DOC = os.path.join(ROOT, "docs", "ci.md")
RUNS = [("small", ["--bytes", 10, "a.dat"]), ("many", ["--files", 3, 7, "f"]),
        ("slow", ["--sleep", 4, "--bytes", 1, "s"]), ("bad", ["--bytes", 2, "partial", "--exit", 3])]


def examples():
    """{"github": workflow, "gitlab": pipeline} from the page's ```yaml blocks."""
    with open(DOC) as fh:
        blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", fh.read(), re.S)]
    found = {}
    for block in blocks:
        found["github" if "jobs" in block else "gitlab"] = block
    assert set(found) == {"github", "gitlab"}
    return found


def installs(text):
    return "pip install" in text


def github_job(workflow, name, secrets, variables):
    """The shell of the GitHub job ``name``: [(script, env)] of its ``run:`` steps."""
    def fill(value):
        value = re.sub(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", lambda m: secrets[m.group(1)], str(value))
        return re.sub(r"\$\{\{\s*vars\.(\w+)\s*\}\}", lambda m: variables[m.group(1)], value)
    top = {k: fill(v) for k, v in (workflow.get("env") or {}).items()}
    steps = []
    for step in workflow["jobs"][name]["steps"]:
        if "run" in step and not installs(step["run"]):
            assert "${{" not in step["run"], step           # values reach the shell by env, never pasted in
            steps.append((step["run"], dict(top, **{k: fill(v) for k, v in (step.get("env") or {}).items()})))
    return steps


def gitlab_job(pipeline, name, secrets, variables):
    """The shell of the GitLab job ``name``: one script of its before_script and script lines."""
    job = pipeline[name]
    lines = (job.get("before_script") or pipeline["default"]["before_script"]) + job["script"]
    return [("\n".join(line for line in lines if not installs(line)), dict(secrets, **variables))]


def run_job(steps, cwd, home):
    """Run a job's shell steps as a runner does; (exit status, all it printed)."""
    printed = ""
    for script, env in steps:
        full = {"PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
                "PYTHONPATH": ROOT, "LANG": "C.UTF-8"}
        full.update(env)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                              env=full, capture_output=True, text=True, timeout=600)
        printed += proc.stdout + proc.stderr
        if proc.returncode != 0:
            return proc.returncode, printed
    return 0, printed


@pytest.fixture
def ci_project(slurm_project, cluster):
    """The tool project whose testslurm entry has no key of its own: only the secrets give one."""
    project = anyproject.make(slurm_project, RUNS)
    path = project.file("machines/test.yml")
    with open(path) as fh:
        text = original = fh.read()
    text = text.replace("  identity_file: %s\n" % cluster.key, "", 1)
    text = text.replace("  known_hosts: %s\n" % cluster.known_hosts, "", 1)
    text = text.replace('  remote_root: "~/hpcdo"\n', "  remote_root: %s\n" % project.remote_root, 1)
    assert len(original) - len(text) == len("  identity_file: \n  known_hosts: \n") + len(cluster.key) + len(
        cluster.known_hosts) + len('"~/hpcdo"') - len(project.remote_root), "machines/test.yml changed shape"
    with open(path, "w") as fh:
        fh.write(text)
    return project


@pytest.mark.parametrize("flavour", ["github", "gitlab"])
def test_the_ci_examples_submit_then_collect_on_another_runner(ci_project, cluster, tmp_path, flavour):
    with open(cluster.key) as fh:
        key = fh.read()
    with open(cluster.known_hosts) as fh:
        known = fh.read()
    secrets = {"HPCDO_SSH_KEY": key, "HPCDO_KNOWN_HOSTS": known}
    variables = {"HPCDO_MACHINE": "testslurm"}
    doc = examples()[flavour]
    job = github_job if flavour == "github" else gitlab_job

    # runner 1: a fresh checkout and home; the submit job
    first, home1 = ci_project.clone_to(tmp_path / "runner1"), tmp_path / "home1"
    home1.mkdir()
    rc, printed = run_job(job(doc, "submit", secrets, variables), first.path, home1)
    assert rc == 0, printed
    assert key.strip().splitlines()[1] not in printed and "PRIVATE KEY" not in printed
    for name in ("hpcdo_key", "hpcdo_known_hosts"):
        mode = stat.S_IMODE(os.stat(home1 / ".ssh" / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(os.stat(home1 / ".ssh").st_mode) == 0o700
    submitted = json.loads(open(first.file("hpcdo-report.json")).read())
    assert submitted["outcome"] == "success"
    executed = {s["task"] for s in submitted["steps"] if s["state"] == "executed"}
    assert {"clone", "configure", "compile"} | {"submit:" + n for n, _a in RUNS} <= executed, submitted
    assert not any(t.startswith(("wait:", "fetch_results:")) for t in executed)
    ids = {r["run"]: r["job_id"] for r in submitted["runs"]}
    assert all(ids.values()) and set(ids) == {n for n, _a in RUNS}
    ET.parse(first.file("hpcdo-junit.xml"))

    # runner 2: another fresh checkout and home; the scheduled job, until the jobs have ended
    second, home2 = ci_project.clone_to(tmp_path / "runner2"), tmp_path / "home2"
    home2.mkdir()
    deadline = time.monotonic() + 180
    while True:
        rc, printed = run_job(job(doc, "fetch_results", secrets, variables), second.path, home2)
        if os.path.exists(second.file("hpcdo-report.json")) or time.monotonic() > deadline:
            break
        assert rc == 0 and "still queued or running" in printed, printed
        time.sleep(3)
    assert rc != 0, printed                             # run bad failed: so does the job, artifacts kept
    report = json.loads(open(second.file("hpcdo-report.json")).read())
    steps = {s["task"]: s["state"] for s in report["steps"]}
    rebuilt = [t for t, s in steps.items() if s != "up_to_date" and not t.startswith(("wait:", "fetch_results:"))]
    assert rebuilt == [], report["steps"]             # the machine's record: nothing built or submitted again
    assert all(steps["fetch_results:" + n] == "executed" for n in ("small", "many", "slow")), steps
    assert steps["wait:bad"] == "failed" and steps["fetch_results:bad"] == "not_run"
    runs = {r["run"]: r for r in report["runs"]}
    assert {n: r["job_id"] for n, r in runs.items()} == ids          # the jobs runner 1 submitted
    assert runs["bad"]["state"] == "failed" and runs["bad"]["retry"] == "doit machine=testslurm retry bad"
    assert anyproject.read_bytes(second, "small", "a.dat") == anyproject.expected(10)
    junit = ET.parse(second.file("hpcdo-junit.xml")).getroot()
    assert junit.get("failures") == "2", ET.tostring(junit)
    status = json.loads(open(second.file("hpcdo-status.json")).read())
    assert {r["run"]: r["job_id"] for r in status["runs"]} == ids
    # what the artifacts step uploads is there, whatever the outcome
    for path in ("hpcdo-report.json", "hpcdo-junit.xml", "hpcdo-status.json", "results"):
        assert os.path.exists(second.file(path)), path


def test_the_examples_upload_the_record_also_when_the_call_failed():
    github, gitlab = examples()["github"], examples()["gitlab"]
    for name in ("submit", "fetch_results"):
        upload = [s for s in github["jobs"][name]["steps"] if "upload-artifact" in s.get("uses", "")]
        assert len(upload) == 1 and upload[0]["if"] == "always()"
        assert "hpcdo-report.json" in upload[0]["with"]["path"] and "hpcdo-junit.xml" in upload[0]["with"]["path"]
        artifacts = gitlab[name]["artifacts"]
        assert artifacts["when"] == "always" and artifacts["reports"]["junit"] == "hpcdo-junit.xml"
    assert "results/" in upload[0]["with"]["path"] and "results/" in gitlab["fetch_results"]["artifacts"]["paths"]
    # the submit job runs on pushes, the collecting job on the schedule, never both
    assert github["jobs"]["submit"]["if"] == "github.event_name != 'schedule'"
    assert github["jobs"]["fetch_results"]["if"] == "github.event_name == 'schedule'"
    triggers = github.get("on", github.get(True))          # YAML 1.1 reads a bare ``on`` as true
    assert "schedule" in triggers and "push" in triggers
