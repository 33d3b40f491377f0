"""A login node reachable only through a jump host (the cluster's bastion component).

The target sshd listens where only the bastion reaches it
(tests/cluster/components/bastion.sh): the direct path is refused, so a
pipeline that ends with results went through the bastion.  Jump hosts' keys
are checked as the target's is; ssh_config's aliases (HostName, Port, User,
IdentityFile, ProxyJump) are honoured.
"""

import os
import socket
import textwrap

import pytest

from conftest import cluster_project
from test_pipeline import RUNS, first_run

DIR = "/var/lib/hpcdo-testcluster"


def env(cluster, key, default):
    return cluster.env.get(key, default)


class Behind:
    """Where the bastion component put things (cluster.env, else its defaults)."""

    def __init__(self, cluster):
        self.bastion = env(cluster, "HPCDO_BASTION_HOST", "10.231.0.2")
        self.bastion_port = int(env(cluster, "HPCDO_BASTION_PORT", "2230"))
        self.host = env(cluster, "HPCDO_BEHIND_HOST", "127.0.0.1")
        self.port = int(env(cluster, "HPCDO_BEHIND_PORT", "2231"))
        self.known_hosts = env(cluster, "HPCDO_BASTION_KNOWN_HOSTS", DIR + "/bastion/known_hosts")
        self.key = cluster.key
        self.user = cluster.user


#: the test cluster's Slurm settings, without its address, user, key or known_hosts
SLURM = """\
  scheduler: slurm
  partition: debug
  launcher: srun
  remote_root: "~/hpcdo"
  cores: 1
  make_jobs: 2
  max_job_name_chars: 24
  poll_interval: 0.5
  poll_max: 5
  jobscript: testslurm.sh.j2
"""


def machines(b, tmp_path):
    """The project's machine file: the target with proxy_jump in the machine file, the same
    going direct, one whose known_hosts lacks the bastion's key, one that lacks the target's,
    and an ssh_config alias."""
    only_target = tmp_path / "known_hosts_target_only"
    only_bastion = tmp_path / "known_hosts_bastion_only"
    lines = open(b.known_hosts).read().splitlines()
    only_target.write_text("".join(l + "\n" for l in lines if l.startswith("[%s]:%d " % (b.host, b.port))))
    only_bastion.write_text("".join(l + "\n" for l in lines
                                    if l.startswith("[%s]:%d " % (b.bastion, b.bastion_port))))
    assert only_target.read_text() and only_bastion.read_text()
    where = textwrap.dedent("""\
        behind:
          host: {host}
          port: {port}
          user: {user}
          identity_file: {key}
          known_hosts: {kh}
          proxy_jump: {user}@{bastion}:{bastion_port}
          persist: 120
        {slurm}
        behind-direct:
          extends: behind
          proxy_jump: none
          persist: 0
        behind-unknown-bastion:
          extends: behind
          known_hosts: {only_target}
          persist: 0
        behind-unknown-target:
          extends: behind
          known_hosts: {only_bastion}
          persist: 0
        alias:
          host: hpcdo-target
        {slurm}
        """).format(host=b.host, port=b.port, user=b.user, key=b.key, kh=b.known_hosts, bastion=b.bastion,
                    bastion_port=b.bastion_port, only_target=only_target, only_bastion=only_bastion,
                    slurm=SLURM.rstrip("\n"))
    return where


def ssh_config(b, path):
    """An ssh_config that says everything about the target but its name: HostName, Port, User,
    IdentityFile, ProxyJump (an alias itself), ConnectTimeout, and the known_hosts file for the
    alias alone (the other machines trust only their own known_hosts)."""
    path.write_text(textwrap.dedent("""\
        Host hpcdo-jump
          HostName {bastion}
          Port {bastion_port}
        Host hpcdo-target
          HostName {host}
          Port {port}
          ProxyJump hpcdo-jump
          ConnectTimeout 10
          ServerAliveInterval 15
          UserKnownHostsFile {kh}
        Host *
          User {user}
          IdentityFile {key}
          GlobalKnownHostsFile /dev/null
        """).format(host=b.host, port=b.port, user=b.user, key=b.key, kh=b.known_hosts,
                    bastion=b.bastion, bastion_port=b.bastion_port))
    return str(path)


@pytest.fixture
def behind(tmp_path, cluster, monkeypatch):
    """A project with the machines above, run as machine ``behind``; HPCDO_SSH_CONFIG names an
    ssh_config of its own (the alias), never ~/.ssh/config."""
    b = Behind(cluster)
    monkeypatch.setenv("HPCDO_SSH_CONFIG", ssh_config(b, tmp_path / "ssh_config"))
    for project in cluster_project(tmp_path, cluster, "behind"):
        with open(project.file("machines/behind.yml"), "w") as fh:
            fh.write(machines(b, tmp_path))
        project.behind = b
        yield project


def as_machine(project, name):
    project.machine = name
    return project


def test_the_direct_path_to_the_target_fails(behind):
    """The target cannot be reached but through the bastion: from here its address refuses."""
    b = behind.behind
    with pytest.raises(OSError):
        socket.create_connection((b.host, b.port), timeout=5).close()
    out = as_machine(behind, "behind-direct").doit("fetch_results", ok=False)
    assert "cannot connect to machine behind-direct (%s@%s:%d)" % (b.user, b.host, b.port) in out.out, out
    assert "Traceback" not in out.out
    assert not os.path.exists(behind.results("straight"))


def test_pipeline_through_the_bastion_then_noop(behind):
    """The whole pipeline to fetch_results on Slurm behind the bastion (kept by the agent), then a
    no-op rerun in one remote operation."""
    b = behind.behind
    out = first_run(behind)
    # one connection, or none if the agent of an earlier call still holds it
    assert [t["host"] for t in out.trace if t["op"] == "connect"] in ([], ["%s@%s:%d" % (b.user, b.host, b.port)])
    for run in RUNS:
        assert behind.summary(run)["steps"] == 3000
        assert open(os.path.join(behind.results(run), "job.exit")).read().split()[0] == "0"
    again = behind.doit("fetch_results")
    assert again.ran == [] and [t["what"] for t in again.trace if t["op"] == "run"] == ["probe"], again
    assert [t for t in again.trace if t["op"] == "connect"] == [], again.trace    # the agent kept it


def test_unknown_jump_host_key_is_refused_with_the_hint(behind):
    """A jump host whose key is in no known_hosts file is refused, in one line naming it and the
    ssh-keyscan that trusts it; nothing runs (paramiko's AutoAddPolicy would have let it in)."""
    b = behind.behind
    machine = as_machine(behind, "behind-unknown-bastion")
    out = machine.doit("fetch_results", ok=False)
    kh = os.path.join(os.path.dirname(machine.path), "known_hosts_target_only")
    said = ("host key of jump host %s (%s@%s:%d) of machine behind-unknown-bastion is not known: "
            "refusing to connect. Check the key's fingerprint with the site, then trust it with: "
            "ssh-keyscan -p %d %s >> %s" % (b.bastion, b.user, b.bastion, b.bastion_port,
                                             b.bastion_port, b.bastion, kh))
    assert said in out.out, out
    assert "Traceback" not in out.out and not os.path.exists(machine.results("straight")), out
    assert "10.231" not in open(kh).read()             # nothing was added to the file either


def test_unknown_target_behind_a_known_bastion_gets_a_hint_run_on_the_bastion(behind):
    b = behind.behind
    out = as_machine(behind, "behind-unknown-target").doit("fetch_results", ok=False)
    assert ("host key of machine behind-unknown-target (%s@%s:%d) (through jump host %s) is not known"
            % (b.user, b.host, b.port, b.bastion)) in out.out, out
    assert ("trust it with: ssh -p %d %s@%s ssh-keyscan -p %d %s >> "
            % (b.bastion_port, b.user, b.bastion, b.port, b.host)) in out.out, out
    assert "Traceback" not in out.out, out


def test_ssh_config_alias_with_port_user_key_and_proxy_jump(behind):
    """A machine that says only ``host: hpcdo-target``: ssh_config gives its HostName, Port
    (no built-in 22 in the way), User, IdentityFile and ProxyJump; the pipeline runs through it."""
    b = behind.behind
    project = as_machine(behind, "alias")
    out = first_run(project)
    assert [t["host"] for t in out.trace if t["op"] == "connect"] == ["%s@%s:%d" % (b.user, b.host, b.port)]
    for run in RUNS:
        assert project.summary(run)["steps"] == 3000
    # without the ssh_config the alias means nothing
    out = project.doit("fetch_results:straight", ok=False, env={"HPCDO_SSH_CONFIG": "none"})
    assert "cannot connect to machine alias" in out.out and "Traceback" not in out.out, out
