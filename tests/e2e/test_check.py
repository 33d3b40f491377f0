"""``doit machine=X check`` on the real test machines: all OK, or FAIL lines that say what to change where.

Each machine of machines/test.yml that is real (localhost, and the loopback
cluster through Slurm, Grid Engine and PBS commands) must pass the check
with nothing submitted and nothing left behind; a wrong partition and a
wrong module must fail it, naming the machine file and line to change; a
refused connection is one FAIL line, never a traceback.
"""

import os
import re
import shlex
import subprocess
import uuid

import pytest

from conftest import MACHINES, on_machine
from test_fabsim_files import fab_cluster  # noqa: F401  (the loopback cluster described in FabSim3's format)

CLUSTER_MACHINES = [m for m in MACHINES if m != "localhost"]


@pytest.fixture(params=MACHINES)
def machine_project(request, tmp_path):
    yield from on_machine(request, tmp_path)


@pytest.fixture(params=CLUSTER_MACHINES)
def cluster_machine_project(request, tmp_path):
    yield from on_machine(request, tmp_path)


def table(out):
    """{label: [(status, detail, fix or None)]} of the check's table in doit's output."""
    found, last = {}, None
    for line in out.out.splitlines():
        m = re.match(r"^(OK|WARN|FAIL|INFO)  (.+?)  +(.*)$", line)
        if m:
            last = [m.group(1), m.group(3), None]
            found.setdefault(m.group(2).strip(), []).append(last)
        elif last and line.strip().startswith("-> "):
            last[2] = line.strip()[3:]
    assert found, out
    return found


def statuses(rows):
    return {status for lines in rows.values() for status, _d, _f in lines}


def add_machine(project, text):
    """Append a machine to the project's machines/test.yml; the line numbers of its keys."""
    path = project.file("machines/test.yml")
    with open(path) as fh:
        start = len(fh.read().splitlines())
    with open(path, "a") as fh:
        fh.write(text)
    return {line.split(":")[0].strip(): start + n + 1 for n, line in enumerate(text.splitlines())}


def root_exists(project):
    if project.cluster is None:
        return os.path.exists(project.remote_root)
    return project.cluster.ssh("test -e %s" % shlex.quote(project.remote_root), check=False).returncode == 0


def leftovers(project):
    """Temporary directories of the check left in the nearest existing parent of the work root."""
    parent = os.path.dirname(project.remote_root.rstrip("/"))
    command = "ls -a %s 2>/dev/null | grep -c hpcdo-check" % shlex.quote(parent)
    if project.cluster is None:
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout.strip()
    return project.cluster.ssh(command, check=False).stdout.strip()


def test_check_passes_on_every_test_machine(machine_project):
    project = machine_project
    out = project.doit("check")
    rows = table(out)
    assert "FAIL" not in statuses(rows), out
    assert rows["connection"][0][0] == "OK" and rows["work root"][0][0] == "OK", out
    assert rows["cmake"][0][0] == "OK" and rows["cmake"][0][1].startswith("cmake version"), out
    assert rows["C compiler"][0][0] == "OK" and rows["clock"][0][0] == "OK", out
    assert "Traceback" not in out.out
    if project.machine != "localhost":
        assert rows["job test"][0][0] == "OK", out
        # test mode only: the scheduler holds no job from this work root
        assert project.cluster.jobs(project.machine, project.remote_root) == []
    # nothing created: not the work root, no temporary directory left
    assert not root_exists(project)
    assert leftovers(project) in ("", "0")
    # one round trip for all of it (the connection's own handshake aside)
    assert [t["what"] for t in out.trace if t.get("op") == "run"] == ["check"], out.trace


def test_a_wrong_partition_fails_naming_the_machine_file(cluster_machine_project):
    project = cluster_machine_project
    lines = add_machine(project, "wrongpart:\n  extends: %s\n  partition: nosuchpart\n" % project.machine)
    out = project.doit("check", "machine=wrongpart", ok=False)
    rows = table(out)
    status, detail, fix = rows["job test"][0]
    assert status == "FAIL" and "nosuchpart" in detail, out
    assert fix == "change 'partition' in machines/test.yml:%d" % lines["partition"], out
    assert "Traceback" not in out.out
    assert "1 check failed" in out.out


def test_a_wrong_module_fails_naming_the_machine_file(cluster_machine_project, tmp_path):
    project, cluster = cluster_machine_project, cluster_machine_project.cluster
    init, moduledir = cluster.env["HPCDO_LMOD_INIT_SH"], cluster.env["HPCDO_MODULEFILES"]
    name = "hpcdocheck%s" % uuid.uuid4().hex[:8]
    cluster.ssh("mkdir -p %s && printf %%s %s > %s" % (
        shlex.quote("%s/%s" % (moduledir, name)), shlex.quote('setenv("HPCDO_CHECK", "1")\n'),
        shlex.quote("%s/%s/1.0.lua" % (moduledir, name))))
    try:
        lines = add_machine(project, "wrongmod:\n  extends: %s\n  module_init: %s\n  modules: [use %s, %s/1.0, "
                                     "nosuchmodule/9.9]\n" % (project.machine, init, moduledir, name))
        out = project.doit("check", "machine=wrongmod", ok=False)
    finally:
        cluster.ssh("rm -rf %s" % shlex.quote("%s/%s" % (moduledir, name)), check=False)
    rows = table(out)
    assert rows["module init"][0][0] == "OK" and rows["module system"][0][0] == "OK", out
    assert [(s, d.split(":")[0]) for s, d, _f in rows["module"]] == [
        ("OK", "use " + moduledir), ("OK", "load %s/1.0" % name), ("FAIL", "load nosuchmodule/9.9")], out
    assert "nosuchmodule/9.9" in rows["module"][2][1]
    assert rows["module"][2][2] == "change 'modules' in machines/test.yml:%d" % lines["modules"], out
    assert "FAIL" not in {s for label, r in rows.items() if label != "module" for s, _d, _f in r}, out


def test_an_unknown_host_key_is_a_fail_line(slurm_project, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    out = slurm_project.doit("check", "known_hosts=%s" % empty, ok=False)
    rows = table(out)
    status, detail, fix = rows["connection"][0]
    assert status == "FAIL" and "is not known: refusing to connect" in detail and "ssh-keyscan" in detail, out
    assert fix == "change 'known_hosts' given on the command line (known_hosts=...)"
    assert list(rows) == ["connection"] and "Traceback" not in out.out, out


def test_a_refused_login_is_a_fail_line(slurm_project, tmp_path):
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    out = slurm_project.doit("check", "identity_file=%s" % key, ok=False)
    rows = table(out)
    status, detail, fix = rows["connection"][0]
    assert status == "FAIL" and "Authentication failed" in detail, out
    assert "'identity_file' given on the command line" in fix and "Traceback" not in out.out, out


def test_check_works_when_the_recipes_do_not_load(local_project):
    with open(local_project.file("recipes/lbflow.py"), "a") as fh:
        fh.write("\nrecipe.run('x', geometry='straight', args=[1 / 0])\n")
    out = local_project.doit("check")
    rows = table(out)
    assert rows["recipes"][0][0] == "WARN" and "ZeroDivisionError" in rows["recipes"][0][1], out
    assert rows["connection"][0][0] == "OK"
    # every other command still stops at the broken recipe, in one line
    out = local_project.doit("status", ok=False)
    assert [line for line in out.out.splitlines() if line.startswith("hpcdo: error:")] == [
        "hpcdo: error: recipes/lbflow.py:%d: the recipe raised ZeroDivisionError: division by zero"
        % len(open(local_project.file("recipes/lbflow.py")).read().splitlines())], out


def test_a_fabsim3_machine_is_checked_with_its_notes(fab_cluster):
    """What a FabSim3 file sets that hpcdo has no use for is said here (INFO), not on every call."""
    rc, out, err = fab_cluster.doit("machine=fabcluster", "check")
    assert rc == 0 and "Traceback" not in out + err, out + err
    notes = [line for line in out.splitlines() if line.startswith("INFO  note")]
    assert notes and all("ignored" in line for line in notes), out
    assert not [line for line in out.splitlines() if line.startswith("FAIL")], out
    # the work root made of a shell variable in the middle of FabSim3's path, as every call makes it
    assert re.search(r"^OK    work root .*/%s/hpcuser/FabSim " % re.escape(fab_cluster.root), out, re.M), out
