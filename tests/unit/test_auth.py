"""Login prompts (hpcdo.remote.auth): who answers a server's keyboard-interactive questions.

The terminal is a real pseudo-terminal (the seam: the terminal's path), the
askpass programs are real programs, the agent's relay runs over real pipes,
and the SSH server is paramiko's own, in this process, asking for a key and
then a code as a two-factor site does.
"""

import os
import socket
import termios
import threading
import time

import paramiko
import pytest

from hpcdo.config import INTERACTIVE_PERSIST, Catalogue, parse_overrides
from hpcdo.remote import auth
from hpcdo.remote.auth import Answerer, LoginError, PipeAnswerer, answer_agent

CODE = "493817"
NO_TTY = "/nonexistent/tty"


# -- the terminal --------------------------------------------------------------------

class Typist:
    """The user at a pseudo-terminal: waits for each prompt, notes the echo setting, types the answer."""

    def __init__(self, answers):
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.answers = list(answers)
        self.screen = b""
        self.echo_when_asked = []
        self.thread = threading.Thread(target=self._type, daemon=True)
        self.thread.start()

    def _type(self):
        deadline = time.monotonic() + 10
        while self.answers and time.monotonic() < deadline:
            self.screen += os.read(self.master, 4096)
            if self.screen.rstrip().endswith(b":"):
                time.sleep(0.1)          # the reader has set the terminal up by now
                self.echo_when_asked.append(bool(termios.tcgetattr(self.slave)[3] & termios.ECHO))
                os.write(self.master, self.answers.pop(0).encode() + b"\n")
                self.screen += b"|"

    def finish(self):
        self.thread.join(5)
        time.sleep(0.1)
        try:
            os.set_blocking(self.master, False)
            self.screen += os.read(self.master, 65536)
        except OSError:
            pass
        os.close(self.master)
        os.close(self.slave)
        return self.screen.decode()


def test_a_secret_prompt_is_shown_and_read_without_echo():
    user = Typist([CODE])
    answers = Answerer("archer2", tty=user.path)("", "", [("TOTP code: ", False)])
    screen = user.finish()
    assert answers == [CODE]
    assert "(archer2) TOTP code: " in screen
    assert user.echo_when_asked == [False]
    assert CODE not in screen                                # never shown


def test_echo_is_back_on_after_a_secret_prompt():
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)[3] & termios.ECHO
        user = threading.Thread(target=lambda: (time.sleep(0.3), os.write(master, CODE.encode() + b"\n")))
        user.start()
        assert Answerer("m", tty=os.ttyname(slave))("", "", [("Code: ", False)]) == [CODE]
        user.join()
        assert termios.tcgetattr(slave)[3] & termios.ECHO == before
    finally:
        os.close(master)
        os.close(slave)


def test_a_visible_prompt_echoes_and_the_site_message_is_shown():
    user = Typist(["1"])
    answers = Answerer("stampede3", tty=user.path)("Duo two-factor login", "Choose a device.\n",
                                                   [("Passcode or option (1-2): ", True)])
    screen = user.finish()
    assert answers == ["1"]
    assert "Duo two-factor login" in screen and "Choose a device." in screen
    assert user.echo_when_asked == [True]


def test_end_of_input_on_the_terminal_is_no_login():
    master, slave = os.openpty()
    try:
        def hang_up():
            time.sleep(0.3)
            os.write(master, termios.tcgetattr(slave)[6][termios.VEOF])     # ctrl-D
        threading.Thread(target=hang_up).start()
        with pytest.raises(LoginError, match="no answer was typed"):
            Answerer("m", tty=os.ttyname(slave))("", "", [("Code: ", False)])
    finally:
        os.close(master)
        os.close(slave)


# -- askpass -------------------------------------------------------------------------

def program(tmp_path, body, name="askpass"):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return str(path)


def test_without_a_terminal_the_machines_askpass_answers(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    asked = tmp_path / "asked"
    prog = program(tmp_path, 'printf "%%s" "$1" > %s; echo %s\n' % (asked, CODE))
    assert Answerer("derecho", askpass=prog, tty=NO_TTY)("", "", [("Token_Response: ", False)]) == [CODE]
    assert asked.read_text() == "(derecho) Token_Response: "            # the prompt is its argument


def test_hpcdo_askpass_answers_when_the_machine_names_none(tmp_path, monkeypatch):
    monkeypatch.setenv(auth.ASKPASS_ENV, program(tmp_path, "printf 'env\\r\\n'\n", "env"))
    assert Answerer("m", tty=NO_TTY)("", "", [("Code: ", False)]) == ["env"]
    mine = program(tmp_path, "echo machine\n", "machine")
    assert Answerer("m", askpass=mine, tty=NO_TTY)("", "", [("Code: ", False)]) == ["machine"]


def test_a_failing_askpass_is_one_line_without_its_output(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    prog = program(tmp_path, "echo %s; exit 3\n" % CODE)
    with pytest.raises(LoginError) as err:
        Answerer("m", askpass=prog, tty=NO_TTY)("", "", [("Code: ", False)])
    assert "failed (exit 3)" in str(err.value) and CODE not in str(err.value)
    with pytest.raises(LoginError, match="cannot run the askpass program"):
        Answerer("m", askpass=str(tmp_path / "missing"), tty=NO_TTY)("", "", [("Code: ", False)])


def test_with_neither_one_line_says_how_to_log_in(monkeypatch):
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    answerer = Answerer("archer2", tty=NO_TTY, kept=True)
    assert not answerer.available()
    with pytest.raises(LoginError) as err:
        answerer("", "", [("Password: ", False)])
    line = str(err.value)
    assert "\n" not in line and "machine archer2 needs an interactive login" in line
    assert "doit machine=archer2 status" in line and "askpass" in line and auth.ASKPASS_ENV in line
    assert answerer("", "Duo push sent.", []) == []           # nothing to answer: no error


# -- the agent's relay -----------------------------------------------------------------

def relay(answerer):
    """A PipeAnswerer (the agent's side) wired to answer_agent (the caller's) over two pipes."""
    to_client_r, to_client_w = os.pipe()
    to_agent_r, to_agent_w = os.pipe()
    agent_side = PipeAnswerer("m", os.fdopen(to_agent_r, "rb"), os.fdopen(to_client_w, "wb"))
    result = {}
    with os.fdopen(to_client_r, "rb") as rfile, os.fdopen(to_agent_w, "wb") as wfile:
        def client():
            result["last"] = answer_agent(rfile, wfile, answerer)
        thread = threading.Thread(target=client)
        thread.start()
        yield agent_side
        agent_side.wfile.write(b"ready\n")
        agent_side.wfile.flush()
        agent_side.wfile.close()
        thread.join(5)
    assert result["last"] == "ready"


def test_the_agent_asks_the_caller_over_its_pipes():
    seen = []

    def answerer(title, instructions, prompts):
        seen.append((title, instructions, prompts))
        return [CODE]
    for agent_side in relay(answerer):
        assert agent_side("Site", "Welcome", [("Code: ", False)]) == [CODE]
    assert seen == [("Site", "Welcome", [("Code: ", False)])]


def test_the_callers_refusal_reaches_the_agent_and_a_closed_relay_says_so():
    def answerer(title, instructions, prompts):
        raise LoginError("machine m needs an interactive login")
    for agent_side in relay(answerer):
        with pytest.raises(LoginError, match="machine m needs an interactive login"):
            agent_side("", "", [("Code: ", False)])
    agent_side.close()
    with pytest.raises(LoginError, match="kept connection to machine m was lost"):
        agent_side("", "", [("Code: ", False)])


# -- paramiko: a server asking for a key, then a code ------------------------------------

class TwoFactorServer(paramiko.ServerInterface):
    def __init__(self, key):
        self.key = key
        self.responses = []

    def get_allowed_auths(self, username):
        return "publickey,keyboard-interactive"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_PARTIALLY_SUCCESSFUL if key == self.key else paramiko.AUTH_FAILED

    def check_auth_interactive(self, username, submethods):
        query = paramiko.InteractiveQuery("", "")
        query.add_prompt("Verification code: ", False)
        return query

    def check_auth_interactive_response(self, responses):
        self.responses.append(list(responses))
        return paramiko.AUTH_SUCCESSFUL if list(responses) == [CODE] else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED


@pytest.fixture
def server(tmp_path):
    """(connect(answerer) -> transport or exception, the server's record): a two-factor sshd in a thread."""
    host_key = paramiko.Ed25519Key.from_private_key_file(_keygen(tmp_path, "host"))
    user_file = _keygen(tmp_path, "user")
    fake = TwoFactorServer(paramiko.Ed25519Key.from_private_key_file(user_file))
    known = tmp_path / "known_hosts"
    transports = []

    def connect(answerer):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        known.write_text("[127.0.0.1]:%d %s %s\n" % (port, host_key.get_name(), host_key.get_base64()))

        def serve():
            conn = listener.accept()[0]
            t = paramiko.Transport(conn)
            t.add_server_key(host_key)
            transports.append(t)
            t.start_server(server=fake)
        threading.Thread(target=serve, daemon=True).start()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.load_host_keys(str(known))
        try:
            client.connect("127.0.0.1", port=port, username="u", key_filename=[user_file], allow_agent=False,
                           look_for_keys=False, transport_factory=auth.transport_factory(answerer, "machine m"))
            return client.get_transport()
        except Exception as exc:
            return exc
        finally:
            listener.close()
    yield connect, fake
    for t in transports:
        t.close()


def _keygen(tmp_path, name):
    path = str(tmp_path / name)
    import subprocess          # ssh-keygen: paramiko cannot write an ed25519 key
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return path


def test_key_then_code_logs_in_asking_once(server):
    connect, fake = server
    asked = []

    def answerer(title, instructions, prompts):
        asked.append(prompts)
        return [CODE]
    transport = connect(answerer)
    assert isinstance(transport, paramiko.Transport) and transport.is_authenticated(), transport
    assert asked == [[("Verification code: ", False)]]
    assert fake.responses == [[CODE]]


def test_a_refused_code_is_one_error_and_never_sent_again(server):
    connect, fake = server
    asked = []

    def answerer(title, instructions, prompts):
        asked.append(prompts)
        return ["000000"]
    error = connect(answerer)
    assert isinstance(error, LoginError), error
    assert "refused the one-time code or password" in str(error) and "000000" not in str(error)
    assert len(asked) == 1 and fake.responses == [["000000"]]          # one try, no retry


def test_with_nobody_to_ask_no_answer_is_sent(server, monkeypatch):
    connect, fake = server
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    error = connect(Answerer("m", tty=NO_TTY))
    assert isinstance(error, LoginError) and "needs an interactive login" in str(error), error
    assert fake.responses == []


def test_an_answerer_failing_in_paramikos_thread_is_raised_as_itself(server, monkeypatch, tmp_path):
    connect, fake = server
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    error = connect(Answerer("m", askpass=program(tmp_path, "exit 1\n"), tty=NO_TTY))
    assert isinstance(error, LoginError) and "askpass program" in str(error), error


# -- the working day a two-factor login is kept --------------------------------------------

def catalogue(tmp_path, text):
    (tmp_path / "machines").mkdir(exist_ok=True)
    (tmp_path / "machines" / "m.yml").write_text(text)
    return Catalogue(str(tmp_path))


BASE = "site:\n  host: login.example.org\n  scheduler: slurm\n"


def test_an_interactive_login_is_kept_a_working_day_unless_persist_is_set(tmp_path):
    cat = catalogue(tmp_path, BASE + "  interactive_login: true\nplain:\n  extends: site\n  interactive_login: false\n"
                    "short:\n  extends: site\n  persist: 600\n")
    assert INTERACTIVE_PERSIST == 8 * 3600
    assert cat.machine("site").persist == INTERACTIVE_PERSIST
    assert cat.machine("plain").persist == 0
    assert cat.machine("short").persist == 600
    assert cat.machine("site", parse_overrides({"persist": "0"})).persist == 0


@pytest.mark.parametrize("name", ["archer2", "stampede3", "derecho", "minerva"])
def test_the_catalogues_two_factor_sites_say_so_and_keep_the_login(tmp_path, name):
    machine = catalogue(tmp_path, "").machine(name)
    assert machine.interactive_login is True
    assert machine.persist == INTERACTIVE_PERSIST

