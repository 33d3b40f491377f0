"""Two-factor logins (issue 13): a key, then a TOTP code, as ARCHER2-like sites ask.

The machine here is the test cluster through its second sshd
(``tests/cluster/components/mfa.sh``: 127.0.0.1:2223, ``AuthenticationMethods
publickey,keyboard-interactive``, the code checked by PAM's pam_oath).  doit
runs on a pseudo-terminal of the test's own (its controlling terminal, as a
user's shell gives it), and the test types the code when the server's prompt
shows; or it runs with no terminal at all (a new session), as in CI.

pam_oath takes each code once (a replay is refused), so a test that logs in
waits for a 30 s step no test has used yet.
"""

import fcntl
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import termios
import time
import uuid

import pytest

from conftest import Project, reaped

MACHINE = "testmfa"
PROMPT = "One-time password"
WRONG = "refused the one-time code or password"
NEEDS = "needs an interactive login"


# -- the cluster's two-factor sshd and its codes -----------------------------------

class Totp:
    """Codes of the cluster's TOTP secret, each handed out once (pam_oath refuses a replay)."""

    last_step = int(time.time() // 30)       # the harness may have used the step it started in

    def __init__(self, secret):
        self.secret = secret

    def _at(self, when):
        with open(self.secret, "rb") as fh:          # the secret on stdin, not on a command line
            proc = subprocess.run(["oathtool", "--totp", "-N", "@%d" % when, "-"], stdin=fh,
                                  capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    def last_used_step(self):
        """The step of the last code pam_oath took, from its user file (``... <otp> <time>L``),
        whoever logged in (the harness, another test run): a code of that step or before is
        refused as a replay."""
        try:
            with open(os.path.join(os.path.dirname(self.secret), "users.oath")) as fh:
                fields = fh.read().split()
            when = time.mktime(time.strptime(fields[-1].rstrip("L"), "%Y-%m-%dT%H:%M:%S"))
            return int(when // 30)
        except (OSError, IndexError, ValueError):
            return 0

    def fresh(self):
        """A code of a step no call has used yet (waiting for the next step if needed)."""
        Totp.last_step = max(Totp.last_step, self.last_used_step())
        while int(time.time() // 30) <= Totp.last_step:
            time.sleep(30 - time.time() % 30 + 0.2)
        step = int(time.time() // 30)
        Totp.last_step = step
        return self._at(step * 30 + 1)

    def wrong(self):
        """A code no step near now takes."""
        step = int(time.time() // 30)
        near = {self._at((step + k) * 30 + 1) for k in range(-3, 4)}
        return next(c for c in ("%06d" % (n * 142857 % 1000000) for n in range(1, 50)) if c not in near)


@pytest.fixture
def mfa(cluster, tmp_path):
    """(machine file text, Totp, known_hosts of this test's own): an agent of this test alone."""
    env = cluster.env
    assert "HPCDO_MFA_PORT" in env, "the cluster has no two-factor sshd: run tests/cluster/up"
    known = tmp_path / "mfa_known_hosts"
    with open(env["HPCDO_MFA_KNOWN_HOSTS"]) as src, open(known, "w") as dst:
        dst.write(src.read())
    # testslurm's settings spelt out, not extended: no layer sets persist, so the
    # working-day default of interactive_login applies
    text = "\n".join([
        "%s:" % MACHINE,
        "  description: the loopback cluster through its two-factor sshd (key, then a TOTP code)",
        "  host: %s" % env["HPCDO_MFA_HOST"],
        "  port: %s" % env["HPCDO_MFA_PORT"],
        "  user: %s" % cluster.user,
        "  identity_file: %s" % cluster.key,
        "  known_hosts: %s" % known,
        "  interactive_login: true",
        "  scheduler: slurm",
        "  partition: debug",
        "  launcher: srun",
        "  cores: 1",
        "  make_jobs: 2",
        "  max_job_name_chars: 24",
        "  poll_interval: 0.5",
        "  poll_max: 5",
        "  jobscript: testslurm.sh.j2",
        ""])
    try:
        yield text, Totp(env["HPCDO_MFA_SECRET"]), str(known)
    finally:
        stop_agents(str(known))


@pytest.fixture
def mfa_project(tmp_path, cluster, mfa):
    root = "hpcdo-tests/%s" % uuid.uuid4().hex[:12]
    p = Project(tmp_path / "project", MACHINE, root, cluster)
    with open(p.file("machines/mfa.yml"), "w") as fh:
        fh.write(mfa[0])
    yield p
    cluster.cancel_all("testslurm", root)
    cluster.ssh("rm -rf %s" % shlex.quote(root), check=False)


def stop_agents(needle):
    """End the agents started with ``needle`` (a path only this test uses) in their arguments, by pid."""
    for pid in agents(needle):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def agents(needle):
    """{pid: argv} of the connection agents whose arguments hold ``needle``."""
    found = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0")]
            except OSError:
                continue
            if "hpcdo.remote.agent" in argv and any(needle in a for a in argv):
                found[int(pid)] = argv
    return found


# -- doit on a terminal, or with none ------------------------------------------------

class Run:
    def __init__(self, rc, out, trace):
        self.rc = rc
        self.out = out.replace("\r\n", "\n")
        self.ran = re.findall(r"^\.  (\S+)$", self.out, re.M)
        self.trace = trace

    def __repr__(self):
        return "<doit rc=%s ran=%s>\n%s" % (self.rc, self.ran, self.out[-3000:])


def _argv(project, args):
    return [sys.executable, "-m", "doit", "machine=" + project.machine, "remote_root=" + project.remote_root] \
        + list(args)


def _env(project, extra):
    env = {k: v for k, v in os.environ.items() if k not in ("HPCDO_ASKPASS", "SSH_ASKPASS")}
    env["HPCDO_TRACE"] = project.file(".trace-%s.jsonl" % uuid.uuid4().hex)
    env.update(extra or {})
    return env


def _trace(path):
    """The trace's records; the file stays (the test looks for the code in it)."""
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _controlling_tty():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)      # the pseudo-terminal becomes the session's terminal


def on_terminal(project, *args, answers=(), env=None, timeout=600):
    """Run doit on a pseudo-terminal as its controlling terminal; type ``answers`` (one per
    prompt of the server, in order); returns (Run, number of prompts seen)."""
    master, slave = os.openpty()
    # a dumb terminal: the prompt still comes by the terminal, and the steps as plain lines
    # (the live progress area, tested in test_progress, redraws them in place)
    env = dict(_env(project, env), TERM="dumb")
    proc = subprocess.Popen(_argv(project, args), cwd=project.path, stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True, preexec_fn=_controlling_tty)
    os.close(slave)
    out, prompts, deadline = b"", 0, time.monotonic() + timeout
    with reaped(proc):
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    block = os.read(master, 65536)
                except OSError:          # EIO: every writer of the terminal is gone
                    block = b""
                if not block:
                    break
                out += block
                seen = out.decode("utf-8", "replace").count(PROMPT)
                while prompts < seen:
                    if prompts < len(answers):
                        os.write(master, answers[prompts].encode() + b"\n")
                    else:
                        deadline = min(deadline, time.monotonic() + 2)    # a prompt not expected: end it
                    prompts += 1
            elif proc.poll() is not None:
                break
        proc.wait(timeout=max(1, deadline - time.monotonic()))
    os.close(master)
    return Run(proc.returncode, out.decode("utf-8", "replace"), _trace(env["HPCDO_TRACE"])), prompts


def without_terminal(project, *args, env=None, timeout=600):
    """Run doit in a session of its own: no controlling terminal, as in CI or cron."""
    env = _env(project, env)
    proc = subprocess.run(_argv(project, args), cwd=project.path, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=env, start_new_session=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout + proc.stderr, _trace(env["HPCDO_TRACE"]))


def nowhere(code, project, cluster):
    """Assert ``code`` is in no file of the project, ~/.hpcdo, the agents' directory, the cluster's
    logs, the work root on the machine, nor any process's arguments or environment."""
    places = [project.path, os.path.expanduser("~/.hpcdo"), os.path.join(cluster.state_dir, "log")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        places.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "agents"))
    places = [p for p in places if os.path.exists(p)]
    # (not results/: six digits turn up in a velocity field's numbers by chance)
    found = subprocess.run(["grep", "-rlaF", "--exclude-dir=results", "--", code] + places,
                           capture_output=True, text=True)
    assert found.returncode == 1 and not found.stdout, "the code is on disk: %s" % found.stdout
    remote = cluster.ssh("grep -rlaF -- %s %s; true" % (code, shlex.quote(project.remote_root)), check=False)
    assert remote.stdout.strip() == "", "the code is on the machine: %s" % remote.stdout
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for part in ("cmdline", "environ"):
                try:
                    with open("/proc/%s/%s" % (pid, part), "rb") as fh:
                        assert code.encode() not in fh.read(), "the code is in process %s's %s" % (pid, part)
                except OSError:
                    pass


def askpass_program(tmp_path, totp):
    """(an askpass program printing the current code and noting each prompt, the file of prompts)."""
    asked = tmp_path / "asked"
    program = tmp_path / "askpass"
    program.write_text('#!/bin/sh\nprintf "%%s\\n" "$1" >> %s\nexec oathtool --totp - < %s\n'
                       % (shlex.quote(str(asked)), shlex.quote(totp.secret)))
    program.chmod(0o700)
    return program, asked


# -- the tests -----------------------------------------------------------------------

def test_first_login_asks_on_the_terminal_then_the_agent_keeps_it(mfa_project, mfa, cluster):
    project = mfa_project
    _text, totp, known = mfa
    code = totp.fresh()
    first, prompts = on_terminal(project, "fetch_results", answers=[code])
    assert first.rc == 0, first
    assert prompts == 1, first                          # the server's prompt, shown once
    assert "(%s) %s" % (MACHINE, PROMPT) in first.out, first
    assert code not in first.out, first                 # typed with echo off
    assert {"compile", "submit:straight", "fetch_results:straight"} <= set(first.ran), first
    assert project.summary("straight")
    # the agent holds the login, for a working day (no layer sets persist)
    kept = agents(known)
    assert len(kept) == 1, kept
    assert list(kept.values())[0][4] == str(8 * 3600), kept

    # later calls, on another terminal or on none, are not asked
    again, prompts = on_terminal(project, "fetch_results")
    assert again.rc == 0 and prompts == 0 and again.ran == [], again
    assert PROMPT not in again.out
    quiet = without_terminal(project, "status")
    assert quiet.rc == 0 and PROMPT not in quiet.out and NEEDS not in quiet.out, quiet
    nowhere(code, project, cluster)


def test_a_wrong_code_is_one_line_and_not_retried(mfa_project, mfa, cluster):
    project = mfa_project
    _text, totp, known = mfa
    wrong = totp.wrong()
    out, prompts = on_terminal(project, "fetch_results", answers=[wrong, wrong, wrong])
    assert out.rc != 0, out
    assert prompts == 1, out                            # asked once: nothing retried
    said = [line for line in out.out.splitlines() if WRONG in line]
    assert len(said) == 1, out
    assert "Traceback" not in out.out, out
    assert wrong not in out.out
    assert not agents(known), "an agent without a login stayed"
    nowhere(wrong, project, cluster)


def test_askpass_answers_when_there_is_no_terminal(mfa_project, mfa, cluster, tmp_path):
    """The machine's askpass program, as OpenSSH's SSH_ASKPASS: the prompt is its argument, the
    code its output; through the agent (persist) and through a call's own connection."""
    project = mfa_project
    _text, totp, known = mfa
    program, asked = askpass_program(tmp_path, totp)
    with open(project.file("machines/mfa.yml"), "a") as fh:
        fh.write("  askpass: %s\n" % program)
    totp.fresh()                 # the step askpass's code will be of is unused
    out = without_terminal(project, "status")
    assert out.rc == 0, out
    assert asked.read_text().count(PROMPT) == 1, asked.read_text()
    assert len(agents(known)) == 1
    stop_agents(known)

    # HPCDO_ASKPASS when the machine names none, on a connection of the call's own
    project.edit("machines/mfa.yml", "  askpass: %s\n" % program, "")
    totp.fresh()
    out = without_terminal(project, "status", "persist=0", env={"HPCDO_ASKPASS": str(program)})
    assert out.rc == 0, out
    assert asked.read_text().count(PROMPT) == 2
    assert not agents(known)


class SshdLog:
    """What the two-factor sshd logs from now on (its failed logins: what MaxAuthTries and
    fail2ban count). Other tests logging in to it meanwhile would show here too."""

    FAILED = ("PAM: Authentication failure", "Failed keyboard-interactive", "expected one response",
              "wrong number of replies")

    def __init__(self, cluster):
        self.path = os.path.join(cluster.state_dir, "log", "sshd-mfa.log")
        self.start = os.path.getsize(self.path)

    def failures(self):
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            lines = fh.read().decode("utf-8", "replace").splitlines()
        return [line for line in lines if any(word in line for word in self.FAILED)]


@pytest.mark.parametrize("askpass", [None, "missing"])
def test_no_terminal_and_no_askpass_is_one_line_and_no_failed_login(mfa_project, mfa, cluster, tmp_path,
                                                                    askpass):
    """Through the agent (persist), which asks the call: nobody can answer, so the server is
    sent no answer at all (an empty one is a failed login to the site), and the call says why."""
    project = mfa_project
    _text, _totp, known = mfa
    if askpass:
        with open(project.file("machines/mfa.yml"), "a") as fh:
            fh.write("  askpass: %s\n" % (tmp_path / "no-such-askpass"))
    log = SshdLog(cluster)
    out = without_terminal(project, "fetch_results")
    assert out.rc != 0, out
    said = [line for line in out.out.splitlines() if (NEEDS if not askpass else "askpass program") in line]
    assert len(said) == 1, out
    if not askpass:
        assert "doit machine=%s status" % MACHINE in said[0] and "askpass" in said[0], said
    assert "Traceback" not in out.out, out
    assert not agents(known), out
    time.sleep(1)                          # sshd has written its line by now
    assert log.failures() == [], log.failures()


def test_a_jump_host_asking_for_a_code_is_answered_the_same_way(cluster, mfa, tmp_path):
    """A two-factor bastion (the TOTP sshd) before a key-only target (the cluster's usual
    sshd): the bastion's prompt goes to askpass like the target's would, once."""
    _text, totp, known = mfa
    with open(known, "a") as dst, open(cluster.known_hosts) as src:
        dst.write(src.read())             # one file trusting the bastion and the target
    program, asked = askpass_program(tmp_path, totp)
    root = "hpcdo-tests/%s" % uuid.uuid4().hex[:12]
    project = Project(tmp_path / "project", "testmfajump", root, cluster)
    with open(project.file("machines/mfa.yml"), "w") as fh:
        fh.write("\n".join([
            "testmfajump:",
            "  extends: testslurm",
            "  host: %s" % cluster.host,
            "  port: %d" % cluster.port,
            "  proxy_jump: %s@%s:%s" % (cluster.user, cluster.env["HPCDO_MFA_HOST"], cluster.env["HPCDO_MFA_PORT"]),
            "  known_hosts: %s" % known,
            "  askpass: %s" % program,
            "  persist: 0",
            ""]))
    try:
        totp.fresh()
        out = without_terminal(project, "status")
        assert out.rc == 0, out
        assert asked.read_text().count(PROMPT) == 1, asked.read_text()
        assert "Traceback" not in out.out, out
    finally:
        cluster.ssh("rm -rf %s" % shlex.quote(root), check=False)


def test_the_system_ssh_asks_askpass_when_there_is_no_terminal(mfa, cluster, tmp_path):
    """transport: openssh on the two-factor sshd: ssh runs the machine's askpass, as paramiko does."""
    text, totp, _known = mfa
    program, asked = askpass_program(tmp_path, totp)
    root = "hpcdo-tests/%s" % uuid.uuid4().hex[:12]
    project = Project(tmp_path / "project", MACHINE, root, cluster)
    with open(project.file("machines/mfa.yml"), "w") as fh:
        fh.write(text + "  transport: openssh\n  askpass: %s\n  persist: 0\n" % program)
    try:
        totp.fresh()
        out = without_terminal(project, "status")
        assert out.rc == 0, out
        assert asked.read_text().count(PROMPT) == 1, asked.read_text()
    finally:
        cluster.ssh("rm -rf %s" % shlex.quote(root), check=False)
