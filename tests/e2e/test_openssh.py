"""``transport: openssh``: the pipeline scenarios on the system ssh client (ControlMaster/ControlPersist).

The scenarios are the ones of test_pipeline.py and test_jobs.py, run here on
machine ``testslurm-openssh`` (the test cluster's Slurm, through ``ssh``),
plus what is the system client's own: the kept master connection, host keys
checked for the target and for a jump host, the bastion reached with ``-J``.
"""

import os
import stat
import textwrap

import pytest

from conftest import cluster_project
from test_bastion import Behind
from test_jobs import (test_cancel_reports_cancelled_and_resubmits,                    # noqa: F401
                       test_ctrl_c_while_waiting_does_not_resubmit,
                       test_two_invocations_at_once_submit_one_job)
from test_pipeline import (RUNS, first_run, test_failed_job_reports_and_waits_for_retry,  # noqa: F401
                           test_first_run_then_noop, test_source_edit_reruns_compile_and_runs_only)

MACHINES = """\
testslurm-openssh:
  extends: testslurm
  description: the loopback test cluster's Slurm through the system ssh client
  transport: openssh
  persist: 120
openssh-unknown-host:
  extends: testslurm-openssh
  known_hosts: {empty}
  persist: 0
openssh-behind:
  extends: testslurm-openssh
  host: {host}
  port: {port}
  known_hosts: {kh}
  proxy_jump: {user}@{bastion}:{bastion_port}
openssh-unknown-bastion:
  extends: openssh-behind
  known_hosts: {only_target}
  persist: 0
"""


@pytest.fixture(params=["testslurm-openssh"])
def project(request, tmp_path, cluster, monkeypatch):
    """The pipeline tests' project, on the openssh machines; an empty ssh_config of its own."""
    b = Behind(cluster)
    (tmp_path / "ssh_config").write_text("# no settings: the machine file says everything\n")
    monkeypatch.setenv("HPCDO_SSH_CONFIG", str(tmp_path / "ssh_config"))
    (tmp_path / "empty_known_hosts").write_text("")
    lines = open(b.known_hosts).read().splitlines()
    (tmp_path / "only_target").write_text(
        "".join(line + "\n" for line in lines if line.startswith("[%s]:%d " % (b.host, b.port))))
    for p in cluster_project(tmp_path, cluster, request.param):
        with open(p.file("machines/openssh.yml"), "w") as fh:
            fh.write(MACHINES.format(empty=tmp_path / "empty_known_hosts", host=b.host, port=b.port,
                                     kh=b.known_hosts, user=b.user, bastion=b.bastion,
                                     bastion_port=b.bastion_port, only_target=tmp_path / "only_target"))
        yield p


def masters():
    """The control sockets of hpcdo's ssh masters."""
    base = os.path.expanduser("~/.hpcdo/ssh")
    return sorted(f for f in os.listdir(base) if f.endswith(".cm")) if os.path.isdir(base) else []


def test_master_is_kept_in_a_private_directory(project):
    """The first call opens one master connection, in ~/.hpcdo/ssh (0700); the next call reuses it."""
    out = project.doit("clone")
    base = os.path.expanduser("~/.hpcdo/ssh")
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
    assert masters()
    again = project.doit("status")
    assert [t for t in again.trace if t["op"] == "connect"] == [], again.trace
    assert len([t for t in out.trace + again.trace if t["op"] == "connect"]) <= 1
    for name in os.listdir(base):
        if name.endswith(".conf"):
            assert stat.S_IMODE(os.stat(os.path.join(base, name)).st_mode) == 0o600


def test_unknown_host_key_is_refused_with_the_hint(project):
    project.machine = "openssh-unknown-host"
    out = project.doit("fetch_results", ok=False)
    assert "host key of [127.0.0.1]:2222 is not known" in out.out, out
    assert "ssh-keyscan -p 2222 127.0.0.1 >> " in out.out and "Traceback" not in out.out, out


def test_pipeline_through_the_bastion_with_ssh_J(project):
    """proxy_jump becomes ``ssh -J``; the jump host's ssh is checked with the same known_hosts."""
    project.machine = "openssh-behind"
    first_run(project)
    for run in RUNS:
        assert project.summary(run)["steps"] == 3000
    again = project.doit("fetch_results")
    assert again.ran == [] and [t["what"] for t in again.trace if t["op"] == "run"] == ["probe"], again


def test_unknown_jump_host_is_refused(project, cluster):
    b = Behind(cluster)
    project.machine = "openssh-unknown-bastion"
    out = project.doit("fetch_results", ok=False)
    assert "host key of [%s]:%d is not known" % (b.bastion, b.bastion_port) in out.out, out
    assert "ssh-keyscan -p %d %s >> " % (b.bastion_port, b.bastion) in out.out, out
    assert "Traceback" not in out.out and not os.path.exists(project.results("straight"))


def test_values_that_would_reach_a_shell_are_refused(project):
    """OpenSSH puts jump hosts into a shell command line (its ProxyCommand): refused, in one line."""
    project.machine = "testslurm-openssh"
    # a canary of this test's own: a fixed /tmp/x may be anybody's
    canary = os.path.join(project.path, "pwned")
    out = project.doit("fetch_results", "proxy_jump=a;touch${IFS}" + canary, ok=False)
    assert "proxy_jump" in out.out and "Traceback" not in out.out, out
    assert len([line for line in out.out.splitlines() if line.strip()]) <= 3, out
    assert not os.path.exists(canary)


def test_no_host_key_prompt_or_secret_on_the_command_line(project):
    """ssh runs with StrictHostKeyChecking=yes for every hop (the config hpcdo writes for -F)."""
    project.doit("clone")
    base = os.path.expanduser("~/.hpcdo/ssh")
    confs = [open(os.path.join(base, f)).read() for f in os.listdir(base) if f.endswith(".conf")]
    assert confs and all("StrictHostKeyChecking yes" in c for c in confs)
    mine = [c for c in confs if "testslurm-openssh" in c]
    assert mine and textwrap.dedent(mine[0]).count("Include") == 1     # the HPCDO_SSH_CONFIG file


def _remote(cluster, persist=0, **kw):
    from hpcdo.remote.openssh import OpenSSHRemote
    return OpenSSHRemote(cluster.host, user=cluster.user, port=cluster.port, identity_file=cluster.key,
                         known_hosts=cluster.known_hosts, persist=persist, name="shared", **kw)


def test_one_call_ending_does_not_cut_anothers_command(cluster, tmp_path, monkeypatch):
    """Two calls with the same settings share one master; the first to end (persist 0) must
    not end the other's command with it."""
    import threading
    (tmp_path / "ssh_config").write_text("")
    monkeypatch.setenv("HPCDO_SSH_CONFIG", str(tmp_path / "ssh_config"))
    long_call, short_call = _remote(cluster), _remote(cluster)
    assert long_call.control_path == short_call.control_path      # one master for both
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=long_call.run("sleep 4; echo finished")))
    worker.start()
    try:
        import time
        time.sleep(1.5)
        assert short_call.run("echo short").text.strip() == "short"
        short_call.close()                       # the end of a persist-0 call
        worker.join(30)
        assert result["r"].text.strip() == "finished"
    finally:
        worker.join(30)
        long_call.close()


def test_a_script_exiting_255_is_its_own_exit_code(cluster, tmp_path, monkeypatch):
    (tmp_path / "ssh_config").write_text("")
    monkeypatch.setenv("HPCDO_SSH_CONFIG", str(tmp_path / "ssh_config"))
    remote = _remote(cluster)
    try:
        r = remote.run('echo "ssh: connect to host github.com port 22: Connection refused" >&2; exit 255',
                       check=False)
        assert r.exit_code == 255 and "github.com" in r.stderr.decode()
        assert remote.run("echo still").text.strip() == "still"
    finally:
        remote.close()


def test_no_ssh_client_is_one_line(cluster, tmp_path, monkeypatch):
    from hpcdo import RemoteError
    (tmp_path / "ssh_config").write_text("")
    monkeypatch.setenv("HPCDO_SSH_CONFIG", str(tmp_path / "ssh_config"))
    remote = _remote(cluster, ssh="ssh-not-installed-here")
    with pytest.raises(RemoteError) as info:
        remote.run("true")
    assert "needs the system ssh client" in str(info.value) and "\n" not in str(info.value)
