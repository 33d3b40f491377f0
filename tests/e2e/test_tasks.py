"""status, cold, a Git source cloned on the machine, and host-key checking."""

import os
import subprocess

import pytest

from conftest import ROOT


def test_status_reports_steps_and_jobs(project):
    out = project.doit("status")
    assert "never submitted" in out.out and "stale" in out.out, out
    project.doit("fetch_results")
    out = project.doit("status")
    lines = [line.strip() for line in out.out.splitlines()]
    table = dict(line.split(None, 1) for line in lines if line[:1].isalpha() and " " in line)
    assert table["compile"].strip() == "up to date"
    assert table["send_geometry:stenosis"].strip() == "up to date"
    runs = [line for line in lines if line.startswith("run ") and not line.startswith("run  ")]
    assert len(runs) == 3 and all(" completed " in r and "not fetched" not in r for r in runs), out
    header = next(line for line in lines if line.startswith("run ") and "elapsed/walltime" in line)
    assert header.split() == ["run", "job", "state", "reason", "submitted", "started", "ended",
                              "elapsed/walltime", "exit", "results"]
    assert len([t for t in out.trace if t["op"] == "run"]) == 1


def test_cold_says_what_it_removes_and_rebuilds_from_scratch(project):
    project.doit("compile")
    project.remote("touch lbflow/build/stray-file")
    out = project.doit("cold:lbflow")
    assert out.ran == ["cold:lbflow"]
    root = project.remote_root.rstrip("/")
    assert "cold lbflow on %s: removing %s/lbflow/src and %s/lbflow/build" % (project.machine, root, root) \
        in out.out, out
    assert "results/ are kept" in out.out
    assert project.remote("ls lbflow/build/stray-file 2>/dev/null").strip() == ""
    assert project.remote("ls lbflow/build/lbflow").strip() == "lbflow/build/lbflow"
    out = project.doit("compile")
    assert out.ran == [], out
    assert "cold:<recipe> for one" in project.doit("help", "cold").out


@pytest.fixture
def git_repo():
    """A git repository of the demo code that the machine's user can clone.

    It lives in a world-readable directory: the cluster user is not root
    and cannot enter pytest's own temporary directories.
    """
    import pathlib
    import shutil
    import tempfile
    top = tempfile.mkdtemp(prefix="hpcdo-git-")
    try:
        yield _make_repo(pathlib.Path(top))
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _make_repo(tmp_path):
    repo = tmp_path / "lbflow.git"
    work = tmp_path / "lbflow-work"
    subprocess.run(["cp", "-r", os.path.join(ROOT, "demo", "lbflow"), str(work)], check=True)
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                ["git", "commit", "-q", "-m", "demo"], ["git", "tag", "v1"]):
        subprocess.run(cmd, cwd=work, check=True, env=env)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repo)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)
    os.chmod(str(tmp_path), 0o755)
    return str(repo)


def test_git_source_is_cloned_on_the_machine(project, git_repo):
    if project.cluster is not None:
        # git refuses to clone from a repository another user owns
        subprocess.run(["chown", "-R", project.cluster.user, git_repo], check=True)
    path = project.file("recipes/lbflow.py")
    text = open(path).read()
    text = text.replace("from hpcdo.recipe import LocalTree, Recipe", "from hpcdo.recipe import Git, Recipe")
    text = text.replace('source=LocalTree("demo/lbflow")', "source=Git(%r, ref='v1')" % git_repo)
    open(path, "w").write(text)
    out = project.doit("fetch_results")
    assert {"clone", "configure", "compile"} <= out.ran_set(), out
    assert project.remote("git -C lbflow/src describe --tags").strip() == "v1"
    assert project.doit("fetch_results").ran == []
    import json
    prov = json.load(open(os.path.join(project.results("straight"), "hpcdo-provenance.json")))
    assert len(prov["source_version"]) == 40 and prov["source"].startswith("git ")


def test_unknown_host_key_is_refused(slurm_project, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    home = tmp_path / "home"
    home.mkdir()
    out = slurm_project.doit("compile", "known_hosts=%s" % empty, ok=False, env={"HOME": str(home)})
    assert "host key of machine testslurm" in out.out and "is not known" in out.out, out
    assert "ssh-keyscan -p 2222 127.0.0.1" in out.out
    assert "Traceback" not in out.out
    assert not [t for t in out.trace if t["op"] == "run"]


def test_persistent_connection_agent(slurm_project, tmp_path):
    """persist: the first call starts an agent holding the connection; later calls reuse it, then it retires."""
    import shutil
    import time
    known = tmp_path / "known_hosts"           # own connection settings: an agent of this test's own
    shutil.copy(slurm_project.cluster.known_hosts, known)
    args = ("known_hosts=%s" % known, "persist=3")
    first = slurm_project.doit("fetch_results", *args)
    assert [t["op"] for t in first.trace].count("connect") == 1
    again = slurm_project.doit("fetch_results", *args)
    assert again.ran == [] and [t["what"] for t in again.trace] == ["probe"], again.trace
    without = slurm_project.doit("fetch_results", "known_hosts=%s" % known, "persist=0")
    assert [t["op"] for t in without.trace] == ["connect", "run"]
    agents = subprocess.run(["pgrep", "-f", "hpcdo.remote.agent.*%s" % known], capture_output=True, text=True)
    assert agents.stdout.split(), "no agent running"
    import stat
    from hpcdo.remote.agent import socket_path
    sock = socket_path({"host": "127.0.0.1", "user": "hpcuser", "port": 2222,
                        "identity_file": slurm_project.cluster.key, "known_hosts": str(known)})
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600          # only its user may use it
    assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and subprocess.run(
            ["pgrep", "-f", "hpcdo.remote.agent.*%s" % known], capture_output=True).returncode == 0:
        time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", "hpcdo.remote.agent.*%s" % known], capture_output=True).returncode != 0, \
        "the agent did not retire after persist seconds"


def test_a_dead_kept_connection_is_opened_again(cluster):
    """A connection that died between commands (sleep, restart) is reopened before the next one runs."""
    from hpcdo.remote.ssh import SSHRemote
    remote = SSHRemote(cluster.host, user=cluster.user, port=cluster.port, identity_file=cluster.key,
                       known_hosts=cluster.known_hosts, name="testslurm")
    try:
        assert remote.run("echo one").text == "one\n"
        remote._conn.transport.close()            # dies behind hpcdo's back
        assert remote.run("echo two").text == "two\n"
    finally:
        remote.close()


def test_long_scripts_and_shell_setup_through_the_agent(cluster, tmp_path):
    """A script too long for one argument goes by stdin, through the agent too, after shell_setup."""
    import shutil
    from hpcdo.config import Machine, SCHEMA
    from hpcdo.session import make_remote
    known = tmp_path / "known_hosts"
    shutil.copy(cluster.known_hosts, known)
    settings = dict.fromkeys(SCHEMA)
    settings.update(host=cluster.host, user=cluster.user, port=cluster.port, identity_file=cluster.key,
                    known_hosts=str(known), persist=5, shell_setup=["HPCDO_SETUP='set up'"])
    remote = make_remote(Machine("testslurm", settings, {}))
    try:
        filler = "# %s\n" % ("x" * 70) * 1800                # about 130 KB: by stdin, not as an argument
        result = remote.run(filler + 'printf "%s|%s\\n" "$HPCDO_SETUP" "$(id -un)"')
        assert result.text == "set up|%s\n" % cluster.user
    finally:
        remote.close()
