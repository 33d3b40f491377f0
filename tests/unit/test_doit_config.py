"""doit's conventions: settings a user makes in DOIT_CONFIG (dodo.py) or [tool.doit]
(pyproject.toml) win over hpcdo's defaults; ``doit dumpdb`` and ``doit help TASK`` work.

Each test makes a project with ``hpcdo init`` in a temporary directory and runs the real
``doit`` there on ``localhost``, its work root a fresh directory of the test's own.
"""

import json
import os
import subprocess
import sys

from hpcdo import console

USER_TASKS = '''
def task_good():
    return {"actions": ["echo good-ran"], "verbosity": 2}

def task_bad():
    return {"actions": ["false"]}

def task_after():
    return {"actions": ["echo after-ran"], "verbosity": 2}
'''


def project(tmp_path, doit_config=None, dodo_config=None):
    root = tmp_path / "proj"
    console.init(str(root))
    if doit_config:
        # keys of [tool.doit] stand in its table, before the plugin tables
        text = (root / "pyproject.toml").read_text()
        (root / "pyproject.toml").write_text(text.replace('loader = "hpcdo"\n',
                                                          'loader = "hpcdo"\n%s\n' % doit_config))
    with open(root / "dodo.py", "a") as fh:
        fh.write(USER_TASKS)
        if dodo_config:
            fh.write("\nDOIT_CONFIG = %r\n" % (dodo_config,))
    return root


def doit(root, *args):
    work = os.path.join(os.path.dirname(str(root)), "work")
    proc = subprocess.run([sys.executable, "-m", "doit"] + list(args) + ["remote_root=" + work],
                          cwd=str(root), capture_output=True, text=True, timeout=300)
    return proc


def test_default_tasks_from_dodo_config_are_honoured(tmp_path):
    root = project(tmp_path, dodo_config={"default_tasks": ["good"]})
    proc = doit(root)
    assert proc.returncode == 0, proc.stderr
    assert "good-ran" in proc.stdout
    assert "compile" not in proc.stdout          # hpcdo's default (fetch_results) did not run


def test_continue_false_in_pyproject_stops_at_the_first_failure(tmp_path):
    root = project(tmp_path, doit_config="continue = false")
    proc = doit(root, "bad", "after")
    assert proc.returncode != 0
    assert "after-ran" not in proc.stdout


def test_continue_is_hpcdos_default_otherwise(tmp_path):
    root = project(tmp_path)
    proc = doit(root, "bad", "after")
    assert proc.returncode != 0
    assert "after-ran" in proc.stdout


def test_verbosity_in_pyproject_wins_over_a_steps_own(tmp_path):
    quiet = doit(project(tmp_path / "a"), "compile")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "Building C object" not in quiet.stdout      # compile's own verbosity captures it
    loud = doit(project(tmp_path / "b", doit_config="verbosity = 2"), "compile")
    assert loud.returncode == 0, loud.stdout + loud.stderr
    assert "Building C object" in loud.stdout


def test_a_reporter_chosen_in_pyproject_is_used_and_still_feeds_the_report(tmp_path):
    root = project(tmp_path, doit_config='reporter = "json"')
    report = tmp_path / "report.json"
    proc = doit(root, "--report", str(report), "jobscript", "short")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)                        # doit's JSON reporter, not hpcdo's console
    assert [t["name"] for t in out["tasks"]] == ["jobscript"]
    assert "jobscript" in report.read_text()


def test_par_type_process_in_pyproject_is_refused_in_one_line(tmp_path):
    root = project(tmp_path, doit_config='par_type = "process"')
    proc = doit(root, "list")
    assert proc.returncode == 2
    assert proc.stderr.startswith("hpcdo: error: par_type = process is not supported")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_dumpdb_reads_the_machines_json_record(tmp_path):
    root = project(tmp_path)
    assert doit(root, "clone").returncode == 0
    proc = subprocess.run([sys.executable, "-m", "doit", "dumpdb"], cwd=str(root), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "clone -> " in proc.stdout
    other = subprocess.run([sys.executable, "-m", "doit", "dumpdb", "machine=archer2"], cwd=str(root),
                           capture_output=True, text=True, timeout=60)
    assert other.returncode == 2
    assert other.stderr.startswith("hpcdo: error: .hpcdo/doit-archer2.json does not exist")
    assert "Traceback" not in other.stderr
    # an alias reads its machine's record, not one of its own (tianhe is tianhe2's)
    alias = subprocess.run([sys.executable, "-m", "doit", "dumpdb", "machine=tianhe"], cwd=str(root),
                           capture_output=True, text=True, timeout=60)
    assert alias.returncode == 2
    assert alias.stderr.startswith("hpcdo: error: .hpcdo/doit-tianhe2.json does not exist"), alias.stderr


def test_help_on_a_task_names_its_runs_and_options(tmp_path):
    root = project(tmp_path)
    retry = doit(root, "help", "retry")
    assert "doit retry [RUN...]" in retry.stdout
    assert "RUN: one or more of the runs: long, short" in retry.stdout
    status = doit(root, "help", "status")
    assert "--json" in status.stdout


def test_an_unknown_reporter_in_pyproject_is_one_line(tmp_path):
    root = project(tmp_path, doit_config='reporter = "nosuch"')
    proc = doit(root, "jobscript", "short")
    assert proc.returncode == 2
    assert proc.stderr.startswith("hpcdo: error: unknown reporter 'nosuch'; doit knows: console, ")
    assert "Traceback" not in proc.stderr
