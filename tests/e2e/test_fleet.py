"""Several machines in one call (issue 15): ``doit machine=localhost,testslurm,testsge fetch_results``.

Generated projects (runs with varied names, a recipe naming a figure) on this
computer and on the loopback cluster through Slurm and Grid Engine, each machine
with its own work root.  The tests read what the user sees (each line prefixed
with its machine, the summary, the cross-machine table), what each machine's call
recorded (the whole call's ``--report``, which holds each machine's), and what
landed in ``results/<machine>/``.
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import Project, reaped, wait_until, write_recipe

pytestmark = pytest.mark.usefixtures("cluster")

RUNS = [("alpha-1", "straight", ["--geometry", "{geometry}", "--steps", 300]),
        ("B.two", "stenosis", ["--geometry", "{geometry}", "--steps", 200]),
        ("c_3", "bifurcation", ["--geometry", "{geometry}", "--steps", 250])]


def closed_port():
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fleet(tmp_path, cluster):
    """A generated project whose machines localhost, testslurm, testsge (and testdown: testslurm
    on a port nothing listens on) each have a work root of their own."""
    tag = uuid.uuid4().hex[:10]
    roots = {"testslurm": "hpcdo-tests/fleet-%s-slurm" % tag, "testsge": "hpcdo-tests/fleet-%s-sge" % tag,
             "testdown": "hpcdo-tests/fleet-%s-down" % tag}
    project = Project(tmp_path / "project", "localhost", str(tmp_path / "remote"), cluster)
    write_recipe(project, RUNS, name="flow")
    with open(project.file("recipes/lbflow.py"), "a") as fh:
        fh.write("recipe.figure('MLUPS', 'summary.json', 'mlups')\n"
                 "recipe.figure('steps', 'summary.json', 'steps')\n")
    # the user's file is read last: its remote_root wins over machines/test.yml's
    with open(project.file("machines/machines_user.yml"), "w") as fh:
        fh.write("localhost:\n  remote_root: %s\n" % project.remote_root)
        for name, root in roots.items():
            fh.write("%s:\n  remote_root: %s\n" % (name, root))
        fh.write("  extends: testslurm\n  port: %d\n" % closed_port())
    project.roots = roots
    yield project
    for name in ("testslurm", "testsge"):
        cluster.cancel_all(name, roots[name])
    cluster.ssh("rm -rf %s" % " ".join(shlex.quote(r) for r in roots.values()), check=False)


def doit(project, *words, timeout=900):
    argv = [sys.executable, "-m", "doit"] + list(words)
    proc = subprocess.run(argv, cwd=project.path, capture_output=True, text=True, timeout=timeout)
    return proc


def by_machine(text):
    """{machine: [its lines]} of the lines a child wrote, prefixed ``<machine> | ``."""
    lines = {}
    for line in text.splitlines():
        match = re.match(r"^(\S+)\s+\| (.*)$", line)
        if match:
            lines.setdefault(match.group(1), []).append(match.group(2))
    return lines


def table(text):
    """{(run, machine): [state, wall, MLUPS, steps]} from the cross-machine table."""
    rows, run, inside = {}, None, False
    for line in text.splitlines():
        if re.match(r"^run\s+machine\s+state\s+wall\s+MLUPS\s+steps$", line):
            inside = True
            continue
        if not inside or "|" in line:
            continue
        cells = line.split()
        if len(cells) == 6:
            run = cells.pop(0)
        if len(cells) == 5 and run:
            rows[(run, cells[0])] = cells[1:]
    return rows


def report(project, path):
    with open(os.path.join(project.path, path)) as fh:
        return json.load(fh)


def executed(doc, machine):
    return [s["task"] for s in doc["reports"][machine]["steps"] if s["state"] == "executed"]


def test_three_machines_at_once_then_a_noop_on_all_three(fleet):
    machines = ["localhost", "testslurm", "testsge"]
    proc = doit(fleet, "machine=" + ",".join(machines), "--report", "fleet.json", "fetch_results")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "3 machines: 3 ok, 0 failed" in proc.stdout, out
    said = by_machine(proc.stdout)
    doc = report(fleet, "fleet.json")
    assert doc["outcome"] == "success" and doc["machines"] == machines and doc["failed"] == []
    # the three calls ran at once: some moment lies within every one of them
    spans = [(doc["reports"][m]["started"], doc["reports"][m]["ended"]) for m in machines]
    assert max(start for start, _ in spans) <= min(end for _, end in spans), spans
    rows = table(proc.stdout)
    for machine, root in (("localhost", fleet.remote_root), ("testslurm", fleet.roots["testslurm"]),
                          ("testsge", fleet.roots["testsge"])):
        # each machine worked in its own work root
        if machine == "localhost":
            where = os.listdir(os.path.join(root, "flow", "runs"))
        else:
            where = fleet.cluster.ssh("ls %s/flow/runs" % shlex.quote(root), check=False).stdout.split()
        assert sorted(where) == sorted(r for r, _, _ in RUNS), (machine, where)
    for machine in machines:
        # each machine's call ran every run, and said so under its own name (its build may come
        # from the machine's build cache: a shared user's home on the test cluster)
        assert ".  fetch_results:alpha-1" in said[machine], said.get(machine)
        steps = executed(doc, machine)
        assert {"_submit_batch"} | {"fetch_results:" + r for r, _, _ in RUNS} \
            <= set(steps), steps
        for run, _geometry, args in RUNS:
            with open(os.path.join(fleet.path, "results", machine, run, "summary.json")) as fh:
                summary = json.load(fh)
            state, wall, mlups, steps_shown = rows[(run, machine)]
            assert state == "completed"
            assert wall == "-" or re.match(r"^\d+:\d\d:\d\d$", wall)
            assert float(mlups) == pytest.approx(summary["mlups"], rel=1e-3)
            assert int(steps_shown) == args[-1] == summary["steps"]
        ran = [r for r in doc["reports"][machine]["runs"] if r["state"] == "completed"]
        assert sorted(r["run"] for r in ran) == sorted(r for r, _, _ in RUNS)
    assert len(rows) == len(RUNS) * len(machines)

    again = doit(fleet, "machine=" + ",".join(machines), "--report", "noop.json", "fetch_results")
    assert again.returncode == 0, again.stdout + again.stderr
    doc = report(fleet, "noop.json")
    for machine in machines:
        assert executed(doc, machine) == [], (machine, executed(doc, machine))
        assert doc["reports"][machine]["totals"]["steps"] == {"up_to_date": len(doc["reports"][machine]["steps"])}
        assert not [line for line in by_machine(again.stdout)[machine] if line.startswith(".  ")]
    assert "3 machines: 3 ok, 0 failed" in again.stdout
    assert len(table(again.stdout)) == len(RUNS) * len(machines)


def test_one_machine_down_fails_only_that_machine(fleet):
    proc = doit(fleet, "machine=localhost,testdown,testsge", "--report", "fleet.json", "fetch_results")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "3 machines: 2 ok, 1 failed" in proc.stdout, out
    down = [line for line in proc.stdout.splitlines() if re.match(r"^  testdown\s+FAILED\s", line)]
    assert len(down) == 1, out
    assert "refused" in down[0] or "connect" in down[0], down
    for machine in ("localhost", "testsge"):
        assert re.search(r"^  %s\s+ok\s" % machine, proc.stdout, re.M), out
        for run, _geometry, _args in RUNS:
            assert os.path.exists(os.path.join(fleet.path, "results", machine, run, "summary.json"))
    assert not os.path.exists(os.path.join(fleet.path, "results", "testdown"))
    doc = report(fleet, "fleet.json")
    assert [f["machine"] for f in doc["failed"]] == ["testdown"]
    assert doc["outcome"] == "failure"
    rows = table(proc.stdout)
    assert all(rows[(run, "testdown")][0] != "completed" for run, _, _ in RUNS)
    assert all(rows[(run, "testsge")][0] == "completed" for run, _, _ in RUNS)


def test_a_list_with_an_unknown_machine_is_one_line_before_anything_starts(fleet):
    proc = doit(fleet, "machine=localhost,testslurm,nosuch", "fetch_results")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("hpcdo: error: unknown machine 'nosuch'") and proc.stderr.count("\n") == 1
    assert not os.path.exists(os.path.join(fleet.path, "results"))
    assert not os.path.exists(fleet.remote_root)


def test_status_of_several_machines(fleet):
    proc = doit(fleet, "machine=localhost,testsge", "status", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert sorted(doc["machines"]) == ["localhost", "testsge"]
    for machine, one in doc["machines"].items():
        assert one["machine"]["name"] == machine
        assert one["machine"]["scheduler"] == {"localhost": "local", "testsge": "sge"}[machine]
        assert sorted(r["run"] for r in one["runs"]) == sorted(r for r, _, _ in RUNS)
        assert {r["state"] for r in one["runs"]} == {"never_submitted"}


def child_pids(pid):
    """The pids whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_stops_every_machine_and_leaves_no_child(fleet):
    write_recipe(fleet, [("slow-a", "straight", ["--geometry", "{geometry}", "--steps", 4000000])], name="flow")
    argv = [sys.executable, "-m", "doit", "machine=localhost,testslurm", "fetch_results"]
    # its own process group, as a terminal's foreground job is: Ctrl-C is SIGINT to the group
    proc = subprocess.Popen(argv, cwd=fleet.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    with reaped(proc):
        reader.start()
        wait_until(lambda: all(any(line.startswith(m) and "is running" in line for line in list(lines))
                               for m in ("localhost", "testslurm")),
                   "both machines' jobs running", timeout=300)
        children = child_pids(proc.pid)
        assert len(children) == 2, children
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(10)
    text = "".join(lines)
    assert proc.returncode != 0, text
    assert "hpcdo: interrupted; every machine's call has stopped (localhost, testslurm)" in text, text
    # each machine's call said where it stopped, under its own name
    assert re.search(r"^localhost\s+\| hpcdo: interrupted; run slow-a \(job \d+\) keeps running", text, re.M), text
    assert re.search(r"^testslurm\s+\| hpcdo: interrupted; run slow-a \(job \d+\) keeps running", text, re.M), text
    time.sleep(0.5)
    assert [pid for pid in children if alive(pid)] == []
    assert "Traceback" not in text
    jobs = dict(re.findall(r"^(localhost|testslurm)\s+\| hpcdo: interrupted; run slow-a \(job (\d+)\)", text, re.M))
    assert fleet.cluster.jobs("testslurm", fleet.roots["testslurm"] + "/flow/runs/slow-a") == [jobs["testslurm"]]

    # the jobs it left running are cancelled on both machines by one call too
    proc = doit(fleet, "machine=localhost,testslurm", "cancel")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 machines: 2 ok, 0 failed" in proc.stdout
    wait_until(lambda: [j[2] for j in fleet.cluster.squeue(fleet.roots["testslurm"] + "/flow/runs/slow-a")]
               == ["CANCELLED"], "the Slurm job cancelled")
    wait_until(lambda: not alive(int(jobs["localhost"])), "the local job gone")
