"""A persistent agent started by another checkout or version of hpcdo is never used as is.

The agent (``persist``) keeps the SSH connection between calls.  A call
from code other than the agent's (another checkout, another version, an
edited tree) must be served by an agent running its own code: each code
identity (version and a hash of the package's sources) has an agent of its
own, so two checkouts alternating calls each reuse theirs, and an agent
found where this code's agent should be, but running other code, is retired
and replaced, after it finishes what it is serving.

Two copies of the hpcdo package in the test's directory stand for two
checkouts with the same version number and different code (one comment
apart); PYTHONPATH picks the one a doit call (and the agent it starts) runs.
Each test uses a known_hosts file of its own, so its agents are its own.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import hpcdo
from faultfix import stop_agents
from faults_helpers import wait_until

HPCDO = os.path.dirname(os.path.abspath(hpcdo.__file__))


@pytest.fixture
def checkouts(tmp_path):
    """Two copies of the hpcdo package: (directory of A, directory of B), B's code one comment apart."""
    dirs = []
    for name in ("A", "B"):
        root = tmp_path / ("checkout" + name)
        shutil.copytree(HPCDO, str(root / "hpcdo"), ignore=shutil.ignore_patterns("__pycache__"))
        dirs.append(str(root))
    with open(os.path.join(dirs[1], "hpcdo", "remote", "trace.py"), "a") as fh:
        fh.write("# checkout B: same version, other code\n")
    return dirs


@pytest.fixture
def own(slurm_project, tmp_path):
    """Connection words of this test's own (its agents are found by its known_hosts path)."""
    known = str(tmp_path / "agent_known_hosts")
    shutil.copy(slurm_project.cluster.known_hosts, known)
    yield known, ["known_hosts=%s" % known, "persist=60"]
    stop_agents(known)


def agents(needle):
    """{pid: socket path} of the running agents whose command line holds ``needle``."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                argv = fh.read().decode("utf-8", "replace").split("\0")
            with open("/proc/%s/stat" % pid) as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if "hpcdo.remote.agent" in argv and any(needle in a for a in argv):
            found[int(pid)] = argv[argv.index("hpcdo.remote.agent") + 3]
    return found


def hello(path):
    """What the agent listening on ``path`` says of itself (the ping of the agent protocol)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
        sock.sendall(b'{"ping": true}\n')
        return json.loads(sock.makefile("rb").readline())
    finally:
        sock.close()


def identity(checkout):
    """(version, code identity) of the hpcdo in ``checkout``, as its own code computes them."""
    code = ("import json, hpcdo; from hpcdo.remote import agent; "
            "print(json.dumps([hpcdo.__version__, agent.code_identity()]))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=checkout),
                         capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    return tuple(json.loads(out.stdout))


def call(project, checkout, args, *words):
    out = project.doit("status", *(list(args) + list(words)), env={"PYTHONPATH": checkout})
    assert "Traceback" not in out.out, out
    return out


def connects(out):
    return [t for t in out.trace if t["op"] == "connect"]


def test_each_checkout_is_served_by_an_agent_of_its_own_code(slurm_project, checkouts, own):
    project = slurm_project
    known, args = own
    a, b = checkouts
    first = call(project, a, args)
    assert len(connects(first)) == 1, first.trace            # A's call started an agent
    (pid_a, path_a), = agents(known).items()

    second = call(project, b, args)
    running = agents(known)
    new = sorted(set(running) - {pid_a})
    assert len(new) == 1, "checkout B's call was served by checkout A's agent %d: %s" % (pid_a, running)
    pid_b = new[0]
    assert len(connects(second)) == 1, second.trace          # a connection of its own
    said = hello(running[pid_b])
    assert (said["version"], said["code"]) == identity(b) and said["pid"] == pid_b
    assert said["version"] == hpcdo.__version__
    said_a = hello(path_a)                                    # A's agent is untouched, and unused
    assert (said_a["version"], said_a["code"]) == identity(a) and said_a["pid"] == pid_a
    assert identity(a) != identity(b)
    served_a = said_a["served"]

    # alternating calls reuse each checkout's own agent: no new agent, no new connection
    for checkout, pid in ((a, pid_a), (b, pid_b), (a, pid_a)):
        out = call(project, checkout, args)
        assert connects(out) == [] and [t["what"] for t in out.trace] == ["probe"], out.trace
        assert sorted(agents(known)) == sorted([pid_a, pid_b])
    assert hello(path_a)["served"] == served_a + 2           # A's two calls, nothing of B's


def test_an_agent_of_other_code_on_this_codes_socket_is_replaced(slurm_project, checkouts, own):
    """An agent running checkout A's code found where checkout B's agent listens is retired and
    replaced; a command it is running when retired still completes."""
    project = slurm_project
    known, args = own
    a, b = checkouts
    # B's socket path, as B computes it for these connection settings
    params = {"host": project.cluster.host, "user": project.cluster.user, "port": project.cluster.port,
              "identity_file": project.cluster.key, "known_hosts": known}
    code = ("import json, sys; from hpcdo.remote.agent import socket_path; "
            "print(socket_path(json.loads(sys.argv[1])))")
    path_b = subprocess.run([sys.executable, "-c", code, json.dumps(params)], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=b), cwd="/").stdout.strip()
    assert path_b.endswith(".sock")
    # an agent of A's code on B's socket
    stale = subprocess.Popen([sys.executable, "-m", "hpcdo.remote.agent", json.dumps(params), "60", path_b,
                              "testslurm"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/",
                             env=dict(os.environ, PYTHONPATH=a), start_new_session=True)
    try:
        assert stale.stdout.readline().strip().startswith(b"ready")
        stale.stdout.close()
        assert hello(path_b)["pid"] == stale.pid

        # a command in progress through the stale agent when it is retired
        from hpcdo.remote.agent import AgentRemote
        slow = AgentRemote(params, 60, "testslurm")
        slow.path, slow._started = path_b, True
        result = {}
        worker = threading.Thread(target=lambda: result.update(r=slow.run("sleep 3; echo done", check=False)))
        worker.start()
        time.sleep(1)

        out = call(project, b, args)
        assert len(connects(out)) == 1, out.trace             # B started an agent of its own
        said = hello(path_b)
        assert said["pid"] != stale.pid and (said["version"], said["code"]) == identity(b)
        worker.join(30)
        assert result["r"].exit_code == 0 and result["r"].text == "done\n", result
        wait_until(lambda: stale.poll() is not None, timeout=10, what="the stale agent to exit")
        assert sorted(agents(known)) == [said["pid"]]
        again = call(project, b, args)
        assert connects(again) == [] and hello(path_b)["pid"] == said["pid"]
    finally:
        if stale.poll() is None:
            stale.kill()
        stale.wait()


def test_a_call_whose_agent_retired_between_commands_goes_on(cluster, own):
    """The agent a call is using is retired (or ends) between two of its commands: the next command
    starts a new agent instead of failing, since nothing of it had been sent."""
    from hpcdo.remote.agent import AgentRemote, socket_path
    known, _args = own
    params = {"host": cluster.host, "user": cluster.user, "port": cluster.port,
              "identity_file": cluster.key, "known_hosts": known}
    remote = AgentRemote(params, 60, "testslurm")
    assert remote.run("echo one").text == "one\n"
    first = hello(socket_path(params))["pid"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(socket_path(params))
    sock.sendall(b'{"retire": true}\n')
    assert json.loads(sock.makefile("rb").readline()) == {"retired": True}
    sock.close()
    wait_until(lambda: first not in agents(known), timeout=10, what="the retired agent to exit")
    assert remote.run("echo two").text == "two\n"
    second = hello(socket_path(params))
    assert second["pid"] != first and second["served"] == 1
