"""Steering a running job and looking at its output: ``doit machine=X steer RUN`` and ``tail RUN``.

A real lbflow job runs with ``--steer-port 0`` on localhost and on the test
cluster's Slurm (reached through the persist agent, and through the system
ssh with ``transport: openssh``).  Through the tunnel ``steer`` prints, the
demo's client reads the job's flow rate, doubles its driving force and sees
the flow double, then stops it; ``tail`` shows the job's output as it runs
(the force change included) and ends by itself when the job does, as does
the tunnel.  The fetched summary.json holds the force history and the
doubled flow.  Ctrl-C ends either command in one line, the job going on; a
job that publishes no port, a job that has ended, a run never submitted and
an unknown run are one line each (a pending job is one line too: on a busy
cluster ``tunnel_to`` meets it and tries again).
"""

import os
import re
import signal
import socket
import sys
import threading
import time

import pytest

from conftest import ROOT, cluster_project, reaped, write_recipe

sys.path.insert(0, os.path.join(ROOT, "demo"))
import steer_client  # noqa: E402

#: Poiseuille flow rate of straight.gmy at the default force (demo/lbflow/README.md)
FLOW = 0.8200
LONG = ["--geometry", "straight.gmy", "--steps", "50000000", "--output-every", "5000"]
#: how long a job may wait in the shared test cluster's queue
QUEUE_WAIT = 900

MACHINES_YML = """\
testslurm-openssh-steer:
  extends: testslurm
  description: the test cluster's Slurm through the system ssh client
  transport: openssh
  persist: 60
"""


@pytest.fixture(params=["localhost", "testslurm", "testslurm-openssh-steer"])
def machine_project(request, tmp_path, monkeypatch):
    if request.param == "localhost":
        yield request.getfixturevalue("local_project")
        return
    cluster = request.getfixturevalue("cluster")
    (tmp_path / "ssh_config").write_text("# no settings: the machine file says everything\n")
    monkeypatch.setenv("HPCDO_SSH_CONFIG", str(tmp_path / "ssh_config"))
    for project in cluster_project(tmp_path, cluster, request.param):
        with open(project.file("machines/steering.yml"), "w") as fh:
            fh.write(MACHINES_YML)
        yield project


class Watched:
    """A doit started in the background whose output lines are collected as they come."""

    def __init__(self, project, *args):
        self.proc = project.popen(*args)
        self.lines = []
        self.readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                        for stream in (self.proc.stdout, self.proc.stderr)]
        for reader in self.readers:
            reader.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self):
        return "\n".join(self.lines)

    def wait_for(self, pattern, timeout=60):
        """The first match of ``pattern`` in the output; None if the command ended without it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            if self.proc.poll() is not None:
                for reader in self.readers:
                    reader.join(5)
                return re.search(pattern, self.text)
            time.sleep(0.1)
        raise AssertionError("no %r in %ds:\n%s" % (pattern, timeout, self.text))

    def end(self, timeout=60):
        self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(5)
        return self.proc.returncode


def tunnel_to(project, run, *options):
    """A ``steer RUN`` holding its tunnel, and the local (host, port) it printed; retried while pending."""
    deadline = time.monotonic() + QUEUE_WAIT
    while True:
        steer = Watched(project, "steer", *(options + (run,)))
        found = steer.wait_for(r"connect to 127\.0\.0\.1:(\d+) ", timeout=120)
        if found:
            return steer, ("127.0.0.1", int(found.group(1)))
        steer.end()
        assert "is still pending" in steer.text, steer.text
        assert time.monotonic() < deadline, "the job stayed pending for %ds" % QUEUE_WAIT
        time.sleep(3)


def one_line_failure(outcome, said):
    assert outcome.rc != 0 and said in outcome.out and "Traceback" not in outcome.out, outcome
    return outcome


def test_steer_a_running_job_through_the_tunnel(machine_project):
    project = machine_project
    write_recipe(project, [("live", "straight", LONG + ["--steer-port", "0", "--steer-every", "50"])])
    try:
        steer_and_stop(project)
    finally:
        # a failure must not leave a job of 50 million steps behind (on localhost no fixture cancels it)
        project.doit("cancel", "live", ok=None)


def steer_and_stop(project):
    project.doit("submit:live")
    steer, address = tunnel_to(project, "live")
    with reaped(steer.proc):
        assert re.search(r"run live: job \S+ listens on [\w.-]+:\d+; tunnel through %s" % project.machine, steer.text)
        # a second tunnel, and a tail, ended with Ctrl-C: one line each, the job goes on
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        chosen = free.getsockname()[1]
        free.close()
        other, other_address = tunnel_to(project, "live", "--port", str(chosen))
        with reaped(other.proc):
            assert other_address == ("127.0.0.1", chosen)
            probe = steer_client.Steering(other_address)
            assert probe.ask("status").startswith("step=")
            probe.close()
            looker = Watched(project, "tail", "live")
            with reaped(looker.proc):
                looker.wait_for(r"step +\d+/50000000", timeout=60)
                looker.proc.send_signal(signal.SIGINT)
                assert looker.end() == 0, looker.text
            assert "stopped following run live; its job" in looker.text and "Traceback" not in looker.text
            other.proc.send_signal(signal.SIGINT)
            assert other.end() == 0, other.text
        assert re.search(r"tunnel 127.0.0.1:\d+ -> run live closed: interrupted \(1 connection\(s\) carried\)",
                         other.text) and "Traceback" not in other.text, other.text

        looker = Watched(project, "tail", "live")
        with reaped(looker.proc):
            looker.wait_for(r"step +\d+/50000000", timeout=60)
            steering = steer_client.Steering(address)
            before = steer_client.parse_status(steering.ask("status"))
            assert before["force"] == 5e-05 and before["flow"] == pytest.approx(FLOW, rel=0.02)
            assert steering.ask("force 1e-4") == "ok force=1.000000000e-04"
            deadline = time.monotonic() + 300
            while True:
                now = steer_client.parse_status(steering.ask("status"))
                if now["flow"] > 0.99 * 2 * FLOW or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert now["force"] == 1e-4 and now["flow"] == pytest.approx(2 * FLOW, rel=0.02)
            looker.wait_for(r"steer: step \d+: force 0.0001", timeout=60)
            stopped = steering.ask("stop")
            steering.close()
            assert stopped.startswith("ok stop step="), stopped
            # both end by themselves with the job
            assert looker.end(timeout=120) == 0, looker.text
            assert steer.end(timeout=120) == 0, steer.text
    step = int(stopped.split("=")[1])
    assert "lbflow: done: geometry straight, %d steps" % step in looker.text
    assert re.search(r"^run live: job \S+ ended( COMPLETED)? on %s" % project.machine, looker.text, re.M), looker.text
    assert re.search(r"-> run live closed: its job ended \(\d+ connection\(s\) carried\)", steer.text), steer.text
    assert "Traceback" not in looker.text + steer.text

    project.doit("fetch_results")
    summary = project.summary("live")
    assert summary["steps"] == step and summary["steering"]["stopped_at_step"] == step
    history = summary["steering"]["force_history"]
    assert [h["force"] for h in history] == [5e-05, 1e-4] and 0 < history[1]["step"] < step
    assert summary["flow_rate_mid"] == pytest.approx(2 * FLOW, rel=0.02)
    assert not os.path.exists(os.path.join(project.results("live"), "steer.json"))
    one_line_failure(project.doit("steer", "live", ok=None), "run live: job")
    assert re.search(r"has ended \(COMPLETED\) on %s: nothing is running to steer" % project.machine,
                     project.doit("steer", "live", ok=None).out)


def test_no_port_pending_ended_and_unknown_are_one_line(local_project):
    project = local_project
    write_recipe(project, [("mute", "straight", LONG), ("never", "straight", ["--geometry", "straight.gmy"])])
    project.doit("submit:mute")
    try:
        started = time.monotonic()
        out = one_line_failure(project.doit("steer", "mute", ok=None),
                               "publishes no steering port: its run directory").out
        assert "lbflow writes one when run with --steer-port 0" in out
        assert time.monotonic() - started >= 10, "no time was given to publish the port"
        # the job goes on, untouched
        assert "running" in project.doit("status").out
    finally:
        project.doit("cancel", "mute")
    one_line_failure(project.doit("steer", "never", ok=None),
                     "run never has no job on localhost: it was never submitted")
    one_line_failure(project.doit("tail", "never", ok=None), "run never has no job on localhost")
    one_line_failure(project.doit("steer", "nosuch", ok=None), "unknown run nosuch; name one run")
    one_line_failure(project.doit("tail", ok=None), "name one run: doit machine=localhost tail RUN (runs: mute, never)")
    one_line_failure(project.doit("steer", "mute", "never", ok=None), "name one run")
    one_line_failure(project.doit("steer", "mute", ok=None), "has ended (CANCELLED) on localhost")
    # a run that has ended: tail prints its whole output once, and how it ended
    tail = project.doit("tail", "mute")
    assert "lbflow 1.0.0: geometry straight" in tail.out and "lbflow: steering" not in tail.out
    assert "run mute: job" in tail.out and "ended CANCELLED on localhost" in tail.out
