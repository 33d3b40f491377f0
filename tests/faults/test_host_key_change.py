"""Hostile input: the machine answers with another host key (a reinstalled login node, or a
man in the middle) on the same host and port.

A relay gives hpcdo one address: first it leads to the cluster's sshd, whose
key the known_hosts file trusts, and a call works; then it leads to a second
sshd, started here with a key of its own.  The next call must refuse to
connect before anything runs, and say how to check the new key (its SHA256
fingerprint, the form sites publish and ``ssh-keygen -l`` prints) and how to
update the known_hosts file that holds the old one.

(tests/e2e/test_tasks.py covers an unknown host key.)
"""

import os
import re
import socket
import subprocess
import time

import pytest

from faults_helpers import no_traceback, wait_until
from faultfix import STATE_DIR, relay, stop_agents  # noqa: F401  (fixture)

CLUSTER_SSHD_CONFIG = os.path.join(STATE_DIR, "ssh", "sshd_config")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def impostor(tmp_path):
    """A second sshd on loopback, same users and settings as the cluster's, with a new host key."""
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    port = free_port()
    pidfile = tmp_path / "sshd.pid"
    lines = []
    for line in open(CLUSTER_SSHD_CONFIG):
        word = line.split(None, 1)[0] if line.strip() else ""
        if word in ("Port", "HostKey", "PidFile"):
            continue
        lines.append(line)
    lines += ["Port %d\n" % port, "HostKey %s\n" % key, "PidFile %s\n" % pidfile]
    config = tmp_path / "sshd_config"
    config.write_text("".join(lines))
    os.makedirs("/run/sshd", exist_ok=True)
    subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(tmp_path / "sshd.log")], check=True)
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=20, what="the second sshd")
    pid = int(pidfile.read_text().strip())
    try:
        fingerprint = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(key) + ".pub"],
                                     capture_output=True, text=True, check=True).stdout.split()[1]
        yield port, fingerprint
    finally:
        os.kill(pid, 15)


@pytest.mark.parametrize("via", ["ssh", "agent"])
def test_changed_host_key_is_refused_with_how_to_check_and_update(slurm_project, relay, impostor, via):
    project = slurm_project
    port, fingerprint = impostor
    args = list(relay.args)
    if via == "agent":
        args = [a for a in args if not a.startswith("persist=")] + ["persist=30"]
    first = project.doit("clone", *args)
    assert first.ran == ["clone"], first
    stop_agents(relay.known_hosts)              # a kept connection would not notice the change
    time.sleep(0.5)

    relay.retarget(("127.0.0.1", port))
    project.edit("demo/lbflow/src/output.c", "\\\"max_velocity\\\"", "\\\"max_speed\\\"")
    out = project.doit("compile", *args, ok=False)
    no_traceback(out)
    assert not [t for t in out.trace if t["op"] == "run"], out.trace        # nothing ran there
    text = " ".join(out.out.split())
    assert re.search(r"host key .* (has )?changed", text, re.I), out
    assert fingerprint in text, "the message does not show the new key's fingerprint %s:\n%s" % (fingerprint, out)
    assert "ssh-keygen -f %s -R" % relay.known_hosts in text, out
    assert relay.known_hosts in text, \
        "the message does not name the known_hosts file that holds the old key (%s):\n%s" % (relay.known_hosts, out)
    # the machine still holds the old source: nothing was sent to the impostor
    assert "max_speed" not in project.remote("cat lbflow/src/src/output.c")
