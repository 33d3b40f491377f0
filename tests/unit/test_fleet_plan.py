"""Several machines in one call (issue 15): the plan made before any child starts, the words each
child is given, the summary read back from the children's reports, and recipe figures.

The last tests run the real ``doit machine=a,b`` in a project made by ``hpcdo init``, on two
machines that are this computer (localhost and a second local machine with its own work root),
with commands that build nothing (``jobscript``, ``status --json``, ``list``).
"""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from hpcdo import ConfigError, console
from hpcdo import figures, fleet
from hpcdo.fleet_summary import Fleet
from hpcdo.recipe import LocalTree, Recipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def machines_dir(tmp_path):
    """A project directory whose machines/ holds the repository's test machines and two more."""
    mdir = tmp_path / "machines"
    mdir.mkdir()
    with open(os.path.join(ROOT, "machines", "test.yml")) as fh:
        (mdir / "test.yml").write_text(fh.read())
    (mdir / "machines_user.yml").write_text(
        "testsge:\n  remote_root: ~/sge-root\n"
        "twin:\n  extends: testslurm\n  description: the same account and root as testslurm\n")
    return str(tmp_path)


@pytest.mark.parametrize("value, said", [
    ("localhost,,testslurm", "'' is not a machine name"),
    ("localhost, testslurm", "' testslurm' is not a machine name"),
    ("localhost,test/slurm", "'test/slurm' is not a machine name"),
    ("localhost,", "'' is not a machine name"),
    ("testslurm,localhost,testslurm", "names machine testslurm twice"),
])
def test_bad_lists_are_one_line(value, said):
    with pytest.raises(ConfigError) as err:
        fleet.machine_names(value)
    assert said in str(err.value) and "\n" not in str(err.value)


def test_is_fleet():
    assert fleet.is_fleet("a,b") and not fleet.is_fleet("a") and not fleet.is_fleet(None)


def test_plan_resolves_each_machine_in_order(machines_dir):
    assert fleet.plan(machines_dir, "testsge,localhost,testslurm", {}) == ["testsge", "localhost", "testslurm"]


def test_an_unknown_machine_is_refused_before_anything(machines_dir):
    with pytest.raises(ConfigError, match=r"^unknown machine 'nosuch'.*known machines: .*testslurm"):
        fleet.plan(machines_dir, "localhost,nosuch", {})


def test_two_machines_with_one_work_root_are_refused(machines_dir):
    # twin extends testslurm: the same host, user and remote_root
    with pytest.raises(ConfigError, match=r"^machines testslurm and twin both work in "
                                          r"hpcuser@127\.0\.0\.1:~/hpcdo: .*its own remote_root$"):
        fleet.plan(machines_dir, "testslurm,twin", {})
    # remote_root= on the command line applies to every machine: testsge then shares testslurm's
    assert fleet.plan(machines_dir, "testslurm,testsge", {}) == ["testslurm", "testsge"]
    with pytest.raises(ConfigError, match=r"machines testslurm and testsge both work in hpcuser@127\.0\.0\.1:x"):
        fleet.plan(machines_dir, "testslurm,testsge", {"remote_root": "x"})
    # localhost is another computer than the cluster's host, whatever the root
    assert fleet.plan(machines_dir, "localhost,testslurm", {"remote_root": "x"}) == ["localhost", "testslurm"]


def test_a_bad_override_is_refused_for_the_list(machines_dir):
    with pytest.raises(ConfigError, match="cores"):
        fleet.plan(machines_dir, "localhost,testslurm", {"cores": "many"})


def test_child_words():
    words = ["machine=a,b", "-n", "2", "--report", "r.json", "--junit=j.xml", "fetch_results", "retry", "x"]
    argv = fleet.child_argv(words, "a,b", "b", "/tmp/rep-b.json", "r.json", "j.xml")
    assert argv == ["--report", "/tmp/rep-b.json", "machine=b", "-n", "2", "fetch_results", "retry", "x"]
    # a --report that is not the call's own (a task's argument) is left as it is
    argv = fleet.child_argv(["machine=a,b", "status", "--report", "z"], "a,b", "a", "/t", "", "")
    assert argv == ["--report", "/t", "machine=a", "status", "--report", "z"]


def test_child_words_refuse_what_cannot_be_repeated():
    with pytest.raises(ConfigError, match="machine= is given twice"):
        fleet.child_argv(["machine=x", "machine=a,b"], "a,b", "a", "/t")
    with pytest.raises(ConfigError, match="is not on the command line"):
        fleet.child_argv(["fetch_results"], "a,b", "a", "/t")


class FakeChild:
    def __init__(self, machine, code, report_path, errors=(), stdout=()):
        self.machine, self.code, self.report_path = machine, code, report_path
        self.errors, self.stdout = list(errors), list(stdout)
        self.started, self.ended = 10.0, 75.0

    error_line = fleet.Child.error_line


def test_exit_code():
    assert fleet.exit_code([FakeChild("a", 0, ""), FakeChild("b", 0, "")]) == 0
    assert fleet.exit_code([FakeChild("a", 0, ""), FakeChild("b", 1, "")]) == 1
    assert fleet.exit_code([FakeChild("a", 2, ""), FakeChild("b", 1, "")]) == 2
    assert fleet.exit_code([FakeChild("a", 0, ""), FakeChild("b", -9, "")]) == 1


def run_record(recipe, run, state, elapsed, machine):
    return {"recipe": recipe, "run": run, "state": state, "elapsed_seconds": elapsed,
            "results": "results/%s/%s/" % (machine, run), "job_id": "7", "exit_code": 0, "reason": None,
            "log": "log", "retry": "retry"}


def report_doc(machine, steps, runs):
    return {"machine": {"name": machine}, "tasks": [], "started": "2026-12-02T00:00:00Z", "seconds": 1,
            "steps": [dict(step, seconds=1) for step in steps], "runs": runs}


def test_summary_table_reads_reports_and_figures(tmp_path):
    project = str(tmp_path)
    for machine, mlups in (("m1", 12.345678), ("m2", 3)):
        for run in ("r-1", "r.2"):
            os.makedirs(os.path.join(project, "results", machine, run))
            with open(os.path.join(project, "results", machine, run, "summary.json"), "w") as fh:
                json.dump({"mlups": mlups, "timing": {"wall": 7.5}}, fh)
    os.remove(os.path.join(project, "results", "m2", "r.2", "summary.json"))      # not fetched: "-"
    reports = {
        "m1": report_doc("m1", [{"task": "compile", "state": "up_to_date"}],
                         [run_record("flow", "r-1", "completed", 65, "m1"),
                          run_record("flow", "r.2", "completed", 3700, "m1")]),
        "m2": report_doc("m2", [{"task": "wait:r.2", "state": "failed", "message": "run r.2: job 7 failed\nlog: x"},
                                {"task": "wait:r-1", "state": "failed", "message": "other"},
                                {"task": "submit:r-1", "state": "failed", "message": "run r.2: job 7 failed\nmore"}],
                         [run_record("flow", "r-1", "completed", None, "m2"),
                          run_record("flow", "r.2", "failed", 2, "m2")]),
    }
    children = []
    for machine, code in (("m1", 0), ("m2", 1), ("m3", 2)):
        path = os.path.join(project, "rep-%s.json" % machine)
        if machine in reports:
            with open(path, "w") as fh:
                json.dump(reports[machine], fh)
        children.append(FakeChild(machine, code, path, errors=["hpcdo: error: cannot connect to m3: refused\n"]))
    result = Fleet(project, children, 80.0,
                   figures={"flow": {"MLUPS": ("summary.json", "mlups"), "wall": ("summary.json", "timing.wall")}})
    text = result.text().splitlines()
    assert text[0] == "3 machines: 1 ok, 2 failed (0:01:20)"
    assert text[1].split() == ["m1", "ok", "0:01:05"]
    assert text[2].split(None, 3) == ["m2", "FAILED", "0:01:05",
                                      "wait:r.2: run r.2: job 7 failed (the same for 1 more steps) (and 1 more failed steps)"]
    assert text[3].split(None, 3) == ["m3", "FAILED", "0:01:05", "hpcdo: error: cannot connect to m3: refused"]
    assert [line.split() for line in text[4:]] == [
        ["run", "machine", "state", "wall", "MLUPS", "wall"],
        ["r-1", "m1", "completed", "0:01:05", "12.35", "7.5"],
        ["m2", "completed", "-", "3", "7.5"],
        ["m3", "-", "-", "-", "-"],
        ["r.2", "m1", "completed", "1:01:40", "12.35", "7.5"],
        ["m2", "failed", "0:00:02", "-", "-"],
        ["m3", "-", "-", "-", "-"],
    ]
    doc = result.document()
    assert doc["outcome"] == "failure" and doc["machines"] == ["m1", "m2", "m3"]
    assert [f["machine"] for f in doc["failed"]] == ["m2", "m3"] and doc["reports"]["m3"] is None
    junit = ET.fromstring(result.junit())
    assert [s.get("name") for s in junit] == ["hpcdo.m1.steps", "hpcdo.m1.runs", "hpcdo.m2.steps",
                                              "hpcdo.m2.runs", "hpcdo.m3"]
    # m2's three failed steps and failed run, and m3's call
    assert junit.get("failures") == "5" and junit.get("tests") == "9"


def test_machines_text_only_when_no_runs(tmp_path):
    result = Fleet(str(tmp_path), [FakeChild("a", 0, "/nonexistent"), FakeChild("b", 0, "/nonexistent")], 1.0,
                   figures={})
    assert result.text() == "2 machines: 2 ok, 0 failed (0:00:01)\n  a  ok      0:01:05\n  b  ok      0:01:05\n"


def test_recipe_figures_are_checked():
    recipe = Recipe(name="flow", source=LocalTree("src"), executable="flow")
    recipe.figure("MLUPS", "summary.json", "mlups")
    recipe.figure("steps/s", "out/timing.json", "timing.rate")
    assert recipe.figures == {"MLUPS": ("summary.json", "mlups"), "steps/s": ("out/timing.json", "timing.rate")}
    for args, said in ((("MLUPS", "summary.json", "x"), "named twice"),
                       (("bad name", "summary.json", "x"), "name it with"),
                       (("a", "../summary.json", "x"), "file must be a plain path"),
                       (("a", "/etc/passwd", "x"), "file must be a plain path"),
                       (("a", "*.json", "x"), "file must be a plain path"),
                       (("a", "s.json", "a..b"), "key must be"),
                       (("a", "s.json", ""), "key must be")):
        with pytest.raises(ConfigError, match="recipe flow: figure .*" + said):
            recipe.figure(*args)


def test_read_figure(tmp_path):
    path = str(tmp_path / "s.json")
    with open(path, "w") as fh:
        json.dump({"a": {"b": 2.5}, "flag": True, "name": "x", "list": [1]}, fh)
    assert figures.read_figure(path, "a.b") == 2.5
    assert figures.read_figure(path, "name") == "x"
    assert figures.read_figure(path, "flag") is None
    assert figures.read_figure(path, "list") is None
    assert figures.read_figure(path, "a.c") is None
    assert figures.read_figure(str(tmp_path / "none.json"), "a") is None


# -- the real doit, on two machines that are this computer --------------------------------

@pytest.fixture
def two_local(tmp_path):
    root = tmp_path / "proj"
    console.init(str(root))
    with open(root / "machines" / "machines_user.yml", "w") as fh:
        fh.write("localhost:\n  remote_root: %s\n" % (tmp_path / "work-a"))
        fh.write("other:\n  scheduler: local\n  remote_root: %s\n" % (tmp_path / "work-b"))
    return root


def doit(root, *args):
    return subprocess.run([sys.executable, "-m", "doit"] + list(args), cwd=str(root), capture_output=True,
                          text=True, timeout=300)


def test_jobscript_on_two_machines_prefixes_each_line(two_local):
    proc = doit(two_local, "machine=localhost,other", "jobscript", "short")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("localhost | #!") for line in lines), proc.stdout
    assert any(line.startswith("other     | #!") for line in lines), proc.stdout
    assert "2 machines: 2 ok, 0 failed" in proc.stdout
    assert not os.path.exists(two_local / "results")


def test_status_json_of_two_machines_is_one_document(two_local):
    proc = doit(two_local, "machine=localhost,other", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert sorted(doc["machines"]) == ["localhost", "other"]
    for one in doc["machines"].values():
        assert one["runs"] and {r["state"] for r in one["runs"]} == {"never_submitted"}


@pytest.mark.parametrize("words, said", [
    (["machine=localhost,nosuch", "fetch_results"], "hpcdo: error: unknown machine 'nosuch'"),
    (["machine=localhost,localhost", "list"], "hpcdo: error: machine=localhost,localhost names machine localhost twice"),
    (["machine=localhost,other", "info", "fetch_results"], "hpcdo: error: doit info takes one machine, not a list"),
    (["machine=localhost,other", "dumpdb"], "hpcdo: error: doit dumpdb takes one machine, not a list"),
])
def test_refusals_are_one_line(two_local, words, said):
    proc = doit(two_local, *words)
    assert proc.returncode == 2
    assert proc.stderr.startswith(said) and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""
    assert not os.path.exists(os.path.dirname(str(two_local)) + "/work-a")


def test_status_tables_of_two_machines_are_shown_each_whole(two_local):
    proc = doit(two_local, "machine=localhost,other", "status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    owners = [line.split(" | ", 1)[0].strip() for line in proc.stdout.splitlines() if " | " in line]
    # one block per machine, in the order the list names them: never interleaved
    assert owners == sorted(owners, key=["localhost", "other"].index) and set(owners) == {"localhost", "other"}
    for machine in ("localhost", "other"):
        rows = [line for line in proc.stdout.splitlines() if line.startswith(machine)]
        assert any(re.search(r"\| run +job +state", row) for row in rows), rows
        assert sum(1 for row in rows if re.search(r"\| run (short|long) ", row)) == 2, rows


SLOW = "import sys, time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n"


@pytest.mark.parametrize("mode", [fleet.LIVE, fleet.GROUPED])
def test_lines_are_shown_as_they_come_or_each_child_whole(tmp_path, capsys, monkeypatch, mode):
    monkeypatch.setattr(fleet.Child, "program", [sys.executable, "-c", SLOW])
    children = [fleet.Child(name, [], "", 5, mode) for name in ("one", "two")]
    fleet.run_children(children, str(tmp_path), dict(os.environ))
    owners = [line.split(" | ")[0].strip() for line in capsys.readouterr().out.splitlines()]
    assert sorted(owners) == ["one"] * 4 + ["two"] * 4
    if mode == fleet.GROUPED:
        assert owners == ["one"] * 4 + ["two"] * 4
    else:
        # both ran at once, and each line was shown when it came
        assert owners != ["one"] * 4 + ["two"] * 4 and owners != ["two"] * 4 + ["one"] * 4
