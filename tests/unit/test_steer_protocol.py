"""lbflow's steering socket, its client, and hpcdo's side of ``steer`` and ``tail`` on this computer.

lbflow is built from demo/lbflow (CMake, once per module) and run for real:
``--steer-port 0`` publishes steer.json, answers ``status``, ``force`` and
``stop``, and records the force history in summary.json; without the option
its output has no trace of steering.  The remote scripts of ``steer`` and
``tail`` run under dash and bash and pass shellcheck; the tunnel relays
bytes both ways and says why a connection could not be carried.
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

from hpcdo import HpcdoError
from hpcdo.remote import tunnel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEOMETRY = os.path.join(ROOT, "demo", "geometries", "straight.gmy")
CLIENT = os.path.join(ROOT, "demo", "steer_client.py")
sys.path.insert(0, os.path.join(ROOT, "demo"))
import steer_client  # noqa: E402

SHELLS = ["dash", "bash"]


@pytest.fixture(scope="module")
def lbflow(tmp_path_factory):
    build = tmp_path_factory.mktemp("lbflow-build")
    for argv in (["cmake", "-S", os.path.join(ROOT, "demo", "lbflow"), "-B", str(build),
                  "-DCMAKE_BUILD_TYPE=Release"], ["cmake", "--build", str(build)]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "warning" not in proc.stdout.lower() + proc.stderr.lower(), proc.stdout + proc.stderr
    return str(build / "lbflow")


def start(lbflow, cwd, *args):
    return subprocess.Popen([lbflow, "--geometry", GEOMETRY] + list(args), cwd=str(cwd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def published(cwd, timeout=20):
    path = os.path.join(str(cwd), "steer.json")
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "lbflow published no steer.json"
        time.sleep(0.05)
    with open(path) as fh:
        return json.load(fh)


def client(*words):
    return subprocess.run([sys.executable, CLIENT] + list(words), capture_output=True, text=True, timeout=60)


def test_status_force_and_stop_change_the_run_and_its_results(lbflow, tmp_path):
    proc = start(lbflow, tmp_path, "--steps", "10000000", "--output-every", "0", "--steer-port", "0",
                 "--steer-every", "50")
    try:
        where = published(tmp_path)
        assert where["host"] == socket.gethostname() and where["pid"] == proc.pid and 0 < where["port"] < 65536
        steering = steer_client.Steering(("127.0.0.1", where["port"]))
        first = steer_client.parse_status(steering.ask("status"))
        assert first["force"] == 5e-05 and first["step"] > 0 and first["step"] % 50 == 0
        assert steering.ask("force 1.5e-4") == "ok force=1.500000000e-04"
        assert steering.ask("force nan").startswith("error force")
        assert steering.ask("force").startswith("error unknown")
        assert steering.ask("jump").startswith("error unknown")
        # the Poiseuille flow rate is proportional to the force: it settles at three times the first
        deadline = time.monotonic() + 60
        while True:
            now = steer_client.parse_status(steering.ask("status"))
            if now["flow"] > 0.99 * 3 * 0.8200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert now["force"] == 1.5e-4 and now["flow"] == pytest.approx(3 * 0.8200, rel=0.02)
        stopped = steering.ask("stop")
        steering.close()
        assert stopped.startswith("ok stop step=")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    step = int(stopped.split("=")[1])
    assert not os.path.exists(tmp_path / "steer.json"), "steer.json outlived the run"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == step and summary["force"] == 5e-05
    assert summary["flow_rate_mid"] == pytest.approx(3 * 0.8200, rel=0.02)
    steering_record = summary["steering"]
    assert steering_record["stopped_at_step"] == step and steering_record["port"] == where["port"]
    history = steering_record["force_history"]
    assert history[0] == {"step": 0, "force": 5e-05} and history[1]["force"] == 1.5e-4
    assert len(history) == 2 and 0 < history[1]["step"] <= first["step"] + 50
    assert "steer: step %d: force 0.00015" % history[1]["step"] in out
    assert "lbflow: done: geometry straight, %d steps" % step in out


def test_without_the_option_nothing_of_steering_shows(lbflow, tmp_path):
    plain, steered = tmp_path / "plain", tmp_path / "steered"
    plain.mkdir()
    steered.mkdir()
    runs = [start(lbflow, plain, "--steps", "600", "--output-every", "200"),
            start(lbflow, steered, "--steps", "600", "--output-every", "200", "--steer-port", "0",
                  "--steer-every", "1")]
    outs = [p.communicate(timeout=60)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0]
    assert "steer" not in outs[0] and not os.path.exists(plain / "steer.json")
    summary = json.loads((plain / "summary.json").read_text())
    assert "steering" not in summary and summary["steps"] == 600
    assert (plain / "summary.json").read_text().endswith('"mlups": %.3f\n}\n' % summary["mlups"])
    # listening, unasked, changes no result
    assert (plain / "velocity.csv").read_bytes() == (steered / "velocity.csv").read_bytes()
    assert json.loads((steered / "summary.json").read_text())["steering"]["force_history"] == \
        [{"step": 0, "force": 5e-05}]
    assert "lbflow: steering on %s:" % socket.gethostname() in outs[1]
    assert [line for line in outs[0].splitlines() if not line.startswith("lbflow")] == \
        [line for line in outs[1].splitlines() if not line.startswith("lbflow")]


@pytest.mark.parametrize("args, said", [
    (["--steer-port", "70000"], "--steer-port: 70000 out of range"),
    (["--steer-port", "x"], "--steer-port: 'x' is not an integer"),
    (["--steer-port", "0", "--steer-every", "0"], "--steer-every: 0 out of range"),
])
def test_bad_steering_options_are_one_line(lbflow, tmp_path, args, said):
    proc = start(lbflow, tmp_path, *args)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and err.strip().splitlines() == ["lbflow: error: " + err.split("error: ")[1].strip()]
    assert said in err


def test_a_taken_port_is_one_line(lbflow, tmp_path):
    busy = socket.socket()
    busy.bind(("0.0.0.0", 0))
    busy.listen(1)
    try:
        proc = start(lbflow, tmp_path, "--steer-port", str(busy.getsockname()[1]))
        out, err = proc.communicate(timeout=30)
    finally:
        busy.close()
    assert proc.returncode == 1 and "cannot listen on port" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "steer.json")


def test_the_client_says_what_went_wrong(lbflow, tmp_path):
    proc = start(lbflow, tmp_path, "--steps", "10000000", "--output-every", "0", "--steer-port", "0")
    try:
        port = str(published(tmp_path)["port"])
        answer = client(port, "status")
        assert answer.returncode == 0 and answer.stdout.startswith("step=")
        bad = client("127.0.0.1:" + port, "frobnicate")
        assert bad.returncode == 1 and bad.stdout.startswith("error unknown")
        typed = subprocess.run([sys.executable, CLIENT, port], input="status\n\nforce 1e-5\nstop\n",
                               capture_output=True, text=True, timeout=60)
        lines = typed.stdout.splitlines()
        assert typed.returncode == 0 and lines[0].startswith("step=") and lines[1:] == \
            ["ok force=1.000000000e-05", lines[2]] and lines[2].startswith("ok stop")
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    gone = client(port, "status")
    assert gone.returncode == 1 and gone.stderr.startswith("steer_client: cannot reach lbflow")
    assert client("nonsense:port").returncode == 1


# -- hpcdo's side ------------------------------------------------------------------------

@pytest.mark.parametrize("text, why", [
    ('{"host": "n1; touch x", "port": 5}', "no usable host"),
    ('{"host": "-oProxyCommand=x", "port": 5}', "no usable host"),
    ('{"host": "n1", "port": 0}', "no usable host"),
    ('{"host": "n1", "port": true}', "no usable host"),
    ('{"host": "n1", "port": "5"}', "no usable host"),
    ('{"host": "n1"}', "not a JSON object"),
    ('not json', "not a JSON object"),
])
def test_a_bad_steer_json_is_refused(text, why):
    with pytest.raises(HpcdoError, match=why):
        tunnel.parse_published(text)


def test_answers_are_read():
    assert tunnel.parse_where('@steer {"host": "c1.x", "port": 4000, "pid": 3}\n') == (False, ("c1.x", 4000), False)
    assert tunnel.parse_where("@ended\n@nosteer\n") == (True, None, False)
    assert tunnel.parse_where("@norun\n") == (False, None, True)
    assert tunnel.parse_follow("noise\n@tail 120 1\n") == (120, True)
    assert tunnel.parse_follow("@tail 7 0") == (7, False)
    assert tunnel.parse_follow("sh: cannot cd") is None


NASTY = "r $(touch PWNED) `touch PWNED` q'uote"


def run_script(shell, tmp_path, script):
    proc = subprocess.run([shell, "-c", script], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, HOME=str(tmp_path), TMPDIR=str(tmp_path)))
    assert not list(tmp_path.rglob("PWNED")), "a value ran as code"
    return proc


@pytest.mark.parametrize("shell", SHELLS)
def test_where_reads_steer_json_and_the_exit_marker(shell, tmp_path):
    root = tmp_path / "root"
    rundir = root / "lb" / "runs" / NASTY
    script = tunnel.where_script(str(root), "lb/runs/" + NASTY)
    assert run_script(shell, tmp_path, script).stdout == "@norun\n"
    rundir.mkdir(parents=True)
    assert run_script(shell, tmp_path, script).stdout == "@nosteer\n"
    (rundir / "steer.json").write_text('{"host": "n1", "port": 4000,\n "pid": 9}\n')
    assert tunnel.parse_where(run_script(shell, tmp_path, script).stdout) == (False, ("n1", 4000), False)
    (rundir / "job.exit").write_text("0 1700000000\n")
    assert tunnel.parse_where(run_script(shell, tmp_path, script).stdout) == (True, ("n1", 4000), False)


@pytest.mark.parametrize("shell", SHELLS)
def test_follow_prints_what_grows_until_the_exit_marker(shell, tmp_path):
    root = tmp_path / "root"
    rundir = root / "lb" / "runs" / NASTY
    rundir.mkdir(parents=True)
    out = rundir / "job.out"
    out.write_bytes(b"line 1\n")
    # no job.out growth and no marker: it follows for its seconds, then says where it is
    started = time.monotonic()
    proc = run_script(shell, tmp_path, tunnel.follow_script(str(root), "lb/runs/" + NASTY, 0, 1))
    assert proc.stdout == "line 1\n" and tunnel.parse_follow(proc.stderr) == (7, False)
    assert 0.9 < time.monotonic() - started < 10

    def grow():
        for i in range(2, 5):
            time.sleep(0.4)
            with open(out, "ab") as fh:
                fh.write(b"line %d \xc3\xa9\n" % i)
        (rundir / "job.exit").write_text("0 1\n")
    writer = threading.Thread(target=grow)
    writer.start()
    started = time.monotonic()
    proc = subprocess.Popen([shell, "-c", tunnel.follow_script(str(root), "lb/runs/" + NASTY, 7, 30)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                            env=dict(os.environ, HOME=str(tmp_path), TMPDIR=str(tmp_path)))
    first = proc.stdout.readline()      # unbuffered: nothing read ahead that communicate() would miss
    assert first == "line 2 é\n".encode() and time.monotonic() - started < 5, "not shown as it came"
    rest, err = proc.communicate(timeout=30)
    writer.join()
    assert first + rest == "line 2 é\nline 3 é\nline 4 é\n".encode()
    assert tunnel.parse_follow(err.decode()) == (out.stat().st_size, True)
    assert time.monotonic() - started < 10, "it did not stop at the exit marker"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp")], "its temporary file was left"
    # the run was submitted again: a job.out shorter than the offset is read from its start
    out.write_bytes(b"again\n")
    proc = run_script(shell, tmp_path, tunnel.follow_script(str(root), "lb/runs/" + NASTY, 500, 0))
    assert proc.stdout == "again\n" and tunnel.parse_follow(proc.stderr) == (6, True)
    proc = run_script(shell, tmp_path, tunnel.follow_script(str(root), "lb/runs/none", 0, 0))
    assert proc.stdout == "" and tunnel.parse_follow(proc.stderr) == (0, False)


@pytest.mark.parametrize("which", ["where", "follow"])
def test_scripts_pass_shellcheck(which):
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is not installed: run tests/run, which installs it")
    script = tunnel.where_script("~/hpcdo", "lb/runs/r") if which == "where" else \
        tunnel.follow_script("$WORK/hpcdo", "lb/runs/r", 0, 20)
    proc = subprocess.run(["shellcheck", "-s", "sh", "-e", "SC2016,SC2317,SC2015,SC1091", "-"], input=script,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def echo_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    conn.sendall(data.upper())
    threading.Thread(target=serve, daemon=True).start()
    return server


def test_the_forwarder_carries_both_ways_and_says_what_failed():
    server = echo_server()
    forwarder = tunnel.Forwarder(tunnel.direct("127.0.0.1", server.getsockname()[1]))
    forwarder.serve()
    try:
        for _ in range(2):
            with socket.create_connection(forwarder.address, timeout=10) as conn:
                conn.sendall(b"status\n" * 5000)
                conn.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    got += data
            assert got == b"STATUS\n" * 5000
        assert forwarder.carried == 2 and forwarder.failures == []
    finally:
        forwarder.close()
        server.close()
    with pytest.raises(OSError):
        socket.create_connection(forwarder.address, timeout=2)
    unheard = socket.socket()          # bound, never listening: a connection to it is refused
    unheard.bind(("127.0.0.1", 0))
    refused = tunnel.Forwarder(tunnel.direct("127.0.0.1", unheard.getsockname()[1]))
    refused.serve()
    try:
        with socket.create_connection(refused.address, timeout=10) as conn:
            assert conn.recv(10) == b""        # closed: nothing listens at the far end
        time.sleep(0.2)
        assert refused.carried == 0 and len(refused.failures) == 1
    finally:
        refused.close()
        unheard.close()


def test_a_local_port_taken_is_one_line():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        with pytest.raises(HpcdoError, match="cannot listen on 127.0.0.1:%d here" % busy.getsockname()[1]):
            tunnel.Forwarder(tunnel.direct("127.0.0.1", 1), busy.getsockname()[1])
    finally:
        busy.close()
