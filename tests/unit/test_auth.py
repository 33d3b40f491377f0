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
from hpcdo.remote import auth, login
from hpcdo.remote.auth import Answerer, LoginError, PipeAnswerer, answer_agent

CODE = "493817"
PASSWORD = "correct horse"
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


def test_a_question_that_is_not_an_object_is_refused_in_one_line():
    import io
    out = io.BytesIO()
    last = answer_agent(io.BytesIO(b"ask []\nready\n"), out, lambda *a: [CODE])
    assert last == "ready" and b"could not be read" in out.getvalue() and CODE.encode() not in out.getvalue()


# -- paramiko: a server asking for a key, then a code ------------------------------------

class TwoFactorServer(paramiko.ServerInterface):
    """A key then a code, unless told: ``methods`` offered first, ``after_key`` once the key is
    accepted (None: the key alone logs in), ``takes_key``: the key is registered."""

    def __init__(self, key, methods="publickey,keyboard-interactive", after_key="keyboard-interactive",
                 takes_key=True):
        self.key = key
        self.methods = methods
        self.after_key = after_key
        self.takes_key = takes_key
        self.key_done = False
        self.responses = []
        self.passwords = []

    def get_allowed_auths(self, username):
        return self.after_key if self.key_done else self.methods

    def check_auth_publickey(self, username, key):
        if "publickey" not in self.get_allowed_auths(username) or not self.takes_key or key != self.key:
            return paramiko.AUTH_FAILED
        self.key_done = True
        return paramiko.AUTH_PARTIALLY_SUCCESSFUL if self.after_key else paramiko.AUTH_SUCCESSFUL

    def check_auth_password(self, username, password):
        if "password" not in self.get_allowed_auths(username):
            return paramiko.AUTH_FAILED
        self.passwords.append(password)
        return paramiko.AUTH_SUCCESSFUL if password == PASSWORD else paramiko.AUTH_FAILED

    def check_auth_interactive(self, username, submethods):
        if "keyboard-interactive" not in self.get_allowed_auths(username):
            return paramiko.AUTH_FAILED
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
    """(connect(answerer, keys=the user's key) -> transport or exception, the server's record):
    a two-factor sshd in a thread, logged into as hpcdo does (login.client)."""
    host_key = paramiko.Ed25519Key.from_private_key_file(_keygen(tmp_path, "host"))
    user_file = _keygen(tmp_path, "user")
    fake = TwoFactorServer(paramiko.Ed25519Key.from_private_key_file(user_file))
    fake.user_file = user_file
    known = tmp_path / "known_hosts"
    transports = []

    def connect(answerer, keys=(user_file,)):
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
            try:
                t.start_server(server=fake)
            except (paramiko.SSHException, EOFError, OSError):
                pass              # the client closed the connection during the handshake
        threading.Thread(target=serve, daemon=True).start()
        client = login.client(answerer, "machine m")
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.load_host_keys(str(known))
        try:
            client.connect("127.0.0.1", port=port, username="u", key_filename=list(keys) or None,
                           allow_agent=False, look_for_keys=False)
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


# -- nothing is sent to the server when no one can answer (a failed login counts) -------------

def agent_answering(answerer):
    """A PipeAnswerer whose caller answers with ``answerer`` over real pipes (as the agent's)."""
    to_client_r, to_client_w = os.pipe()
    to_agent_r, to_agent_w = os.pipe()
    rfile, wfile = os.fdopen(to_client_r, "rb"), os.fdopen(to_agent_w, "wb")
    threading.Thread(target=answer_agent, args=(rfile, wfile, answerer), daemon=True).start()
    return PipeAnswerer("m", os.fdopen(to_agent_r, "rb"), os.fdopen(to_client_w, "wb"))


def test_the_agent_with_nobody_to_answer_sends_no_response(server, monkeypatch):
    connect, fake = server
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    error = connect(agent_answering(Answerer("m", tty=NO_TTY, kept=True)))
    assert isinstance(error, LoginError), error
    assert "machine m needs an interactive login" in str(error) and "\n" not in str(error)
    assert fake.responses == []


def test_a_kept_connection_opened_again_after_the_relay_closed_sends_no_response(server):
    connect, fake = server
    answerer = agent_answering(lambda title, instructions, prompts: [CODE])
    answerer.close()
    error = connect(answerer)
    assert isinstance(error, LoginError) and "kept connection to machine m was lost" in str(error), error
    assert fake.responses == []


@pytest.mark.parametrize("how", ["failing", "missing", "through the agent"])
def test_an_askpass_that_cannot_answer_sends_no_response(server, monkeypatch, tmp_path, how):
    connect, fake = server
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    prog = program(tmp_path, "exit 1\n") if how != "missing" else str(tmp_path / "missing")
    answerer = Answerer("m", askpass=prog, tty=NO_TTY)
    error = connect(agent_answering(answerer) if how == "through the agent" else answerer)
    assert isinstance(error, LoginError) and "askpass program" in str(error), error
    assert "\n" not in str(error) and fake.responses == []


def test_end_of_input_at_the_code_prompt_sends_no_response(server):
    connect, fake = server
    master, slave = os.openpty()
    try:
        def hang_up():
            time.sleep(0.5)
            os.write(master, termios.tcgetattr(slave)[6][termios.VEOF])     # ctrl-D
        threading.Thread(target=hang_up, daemon=True).start()
        error = connect(Answerer("m", tty=os.ttyname(slave)))
    finally:
        os.close(master)
        os.close(slave)
    assert isinstance(error, LoginError) and "no answer was typed" in str(error), error
    assert fake.responses == []


# -- logins without a key, or whose key is refused ---------------------------------------

def answering(*answers):
    asked = []

    def answerer(title, instructions, prompts):
        asked.append([text for text, _echo in prompts])
        return list(answers)
    return answerer, asked


def test_a_code_only_server_with_no_key_file_is_asked(server):
    connect, fake = server
    fake.methods = "keyboard-interactive"
    answerer, asked = answering(CODE)
    transport = connect(answerer, keys=())
    assert isinstance(transport, paramiko.Transport) and transport.is_authenticated(), transport
    assert asked == [["Verification code: "]] and fake.responses == [[CODE]]


def test_a_refused_key_then_keyboard_interactive_is_asked_once(server):
    connect, fake = server
    fake.takes_key = False              # not registered yet; the site takes password + code alone
    answerer, asked = answering(CODE)
    transport = connect(answerer)
    assert isinstance(transport, paramiko.Transport) and transport.is_authenticated(), transport
    assert asked == [["Verification code: "]] and fake.responses == [[CODE]]


def test_a_password_only_server_with_no_key_is_asked_the_password_once(server):
    connect, fake = server
    fake.methods = "password"
    answerer, asked = answering(PASSWORD)
    transport = connect(answerer, keys=())
    assert isinstance(transport, paramiko.Transport) and transport.is_authenticated(), transport
    assert asked == [["Password: "]] and fake.passwords == [PASSWORD]


# -- a server asking for a password after the key ----------------------------------------

def test_a_password_after_the_key_is_asked_through_the_answerer(server):
    connect, fake = server
    fake.after_key = "password"
    answerer, asked = answering(PASSWORD)
    transport = connect(answerer)
    assert isinstance(transport, paramiko.Transport) and transport.is_authenticated(), transport
    assert asked == [["Password: "]] and fake.passwords == [PASSWORD] and fake.responses == []


def test_a_refused_password_is_one_line_and_not_tried_again(server):
    connect, fake = server
    fake.after_key = "password"
    answerer, asked = answering("wrong")
    error = connect(answerer)
    assert isinstance(error, LoginError), error
    line = str(error)
    assert "refused the password" in line and "one-time code" not in line and "wrong" not in line
    assert "\n" not in line and fake.passwords == ["wrong"] and len(asked) == 1


def test_a_method_hpcdo_cannot_answer_is_named_with_the_way_out(server):
    connect, fake = server
    fake.after_key = "gssapi-with-mic"
    answerer, asked = answering(CODE)
    error = connect(answerer)
    assert isinstance(error, LoginError), error
    assert "gssapi-with-mic" in str(error) and "transport: openssh" in str(error), error
    assert "refused the one-time code" not in str(error) and asked == [] and fake.responses == []


# -- a key protected by a passphrase --------------------------------------------------------

PHRASE = "open sesame"


def locked_key(tmp_path, fake):
    path = str(tmp_path / "locked")
    fake.methods = "publickey"          # the key first: no code alone
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PHRASE, "-f", path], check=True)
    with open(path + ".pub") as fh:
        fake.key = paramiko.PKey.from_type_string("ssh-ed25519", __import__("base64").b64decode(fh.read().split()[1]))
    return path


def test_a_passphrase_protected_key_is_unlocked_through_the_answerer(server, tmp_path, monkeypatch):
    connect, fake = server
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    path = locked_key(tmp_path, fake)
    asked = tmp_path / "asked"
    prog = program(tmp_path, 'printf "%%s\\n" "$1" >> %s; case "$1" in *assphrase*) echo "%s";; '
                   '*) echo %s;; esac\n' % (asked, PHRASE, CODE))
    transport = connect(Answerer("m", askpass=prog, tty=NO_TTY), keys=[path])
    assert isinstance(transport, paramiko.Transport) and transport.is_authenticated(), transport
    assert asked.read_text().splitlines() == ["(m) Passphrase for key %s: " % path, "(m) Verification code: "]
    assert fake.responses == [[CODE]]


def test_a_wrong_passphrase_or_nobody_to_ask_it_is_one_line_and_nothing_sent(server, tmp_path, monkeypatch):
    connect, fake = server
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv(auth.ASKPASS_ENV, raising=False)
    path = locked_key(tmp_path, fake)
    error = connect(Answerer("m", askpass=program(tmp_path, "echo nope\n"), tty=NO_TTY), keys=[path])
    assert isinstance(error, LoginError) and "passphrase for key %s was not accepted" % path in str(error), error
    assert "nope" not in str(error) and "ssh-add" in str(error)
    error = connect(Answerer("m", tty=NO_TTY), keys=[path])
    assert isinstance(error, LoginError) and "ssh-add %s" % path in str(error) and "\n" not in str(error), error
    assert fake.responses == [] and not fake.key_done


# -- the terminal: no escape sequence from the server, echo back on SIGTERM ---------------------

def test_the_servers_text_is_shown_without_control_characters():
    user = Typist(["1"])
    Answerer("m", tty=user.path)("\x1b]0;owned\x07Duo\x1b[2J", "Pick\ta device.\r\n\x9b1m",
                                 [("\x1b[2K\x1b[8mPasscode: ", True)])
    screen = user.finish()
    assert "\x1b" not in screen and "\x07" not in screen and "\x9b" not in screen
    assert "]0;ownedDuo[2J" in screen and "Pick\ta device." in screen and "(m) [2K[8mPasscode: " in screen


def test_sigterm_during_a_secret_prompt_puts_echo_back(tmp_path):
    import subprocess
    import sys
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)[3] & termios.ECHO
        assert before
        child = subprocess.Popen([sys.executable, "-c", "from hpcdo.remote.auth import Answerer; import sys; "
                                  "Answerer('m', tty=sys.argv[1])('', '', [('Code: ', False)])",
                                  os.ttyname(slave)], stdin=subprocess.DEVNULL)
        screen, deadline = b"", time.monotonic() + 20
        while b"Code: " not in screen and time.monotonic() < deadline:
            screen += os.read(master, 4096)
        time.sleep(0.3)
        assert not termios.tcgetattr(slave)[3] & termios.ECHO          # the prompt reads blind
        child.terminate()
        assert child.wait(10) == -15                                      # still ended by the signal
        assert termios.tcgetattr(slave)[3] & termios.ECHO == before
    finally:
        os.close(master)
        os.close(slave)


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

