"""transport: openssh, against a fake ``ssh`` that records its arguments and runs the command here."""

import json
import os
import shlex
import stat
import textwrap

import pytest

from hpcdo import ConfigError, RemoteError
from hpcdo.remote import sshconfig
from hpcdo.remote.openssh import OpenSSHRemote

FAKE = """\
#!/usr/bin/env python3
# records argv; -O check answers 'master running'; else runs the last word with sh -c, as sshd would
import json, os, subprocess, sys
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
if "-O" in sys.argv:
    sys.exit(0)
sys.exit(subprocess.call(["sh", "-c", sys.argv[-1]]))
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(sshconfig.ENV, "none")
    path = tmp_path / "ssh"
    path.write_text(FAKE)
    path.chmod(0o755)
    log = tmp_path / "log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    calls = lambda: [json.loads(line) for line in log.read_text().splitlines()]   # noqa: E731
    return str(path), calls


def test_machine_values_are_argv_words_and_the_script_one_quoted_word(fake, tmp_path):
    ssh, calls = fake
    (tmp_path / "kh").write_text("")
    remote = OpenSSHRemote("login.example.org", user="jdoe", port=2201, known_hosts=str(tmp_path / "kh"),
                           proxy_jump="ssh://gw@gate.example.org:2022,10.0.0.1", connect_timeout=7.4,
                           persist=60, name="m", ssh=ssh)
    script = "printf '%s\\n' \"$HOME\" 'it''s' ; echo $((1+2))"
    result = remote.run(script)
    assert result.text == "%s\nits\n3\n" % os.environ.get("HOME", str(tmp_path))
    argv = calls()[-1]
    assert argv[-2:] == ["login.example.org", "sh -c " + shlex.quote(script)]
    words = " ".join(argv)
    for option in ("-l jdoe", "-p 2201", "-J gw@gate.example.org:2022,10.0.0.1", "ConnectTimeout=7",
                   "ControlMaster=auto", "ControlPersist=60", "-F " + remote.config_path):
        assert option in words
    config = open(remote.config_path).read()
    assert "StrictHostKeyChecking yes" in config and 'GlobalKnownHostsFile "%s"' % (tmp_path / "kh") in config
    assert stat.S_IMODE(os.stat(os.path.dirname(remote.control_path)).st_mode) == 0o700
    # a Unix socket's path (108 bytes, with ssh's own 17-byte suffix): 35 bytes after the home directory
    assert len(remote.control_path) - len(str(tmp_path)) <= 35


def test_stdin_streams_and_exit_codes_pass_through(fake):
    ssh, _calls = fake
    remote = OpenSSHRemote("h", name="m", ssh=ssh)
    assert remote.run("wc -c", stdin=[b"x" * 100000, b"y"]).text.strip() == "100001"
    assert remote.run("exit 3", check=False).exit_code == 3
    with pytest.raises(RemoteError, match="failed \\(exit 4\\)"):
        remote.run("echo no >&2; exit 4")
    assert remote.run("cat", private=True).text == ""      # the script went by stdin (sh -s)


@pytest.mark.parametrize("key, value", [("host", "h;rm -rf x"), ("user", "a b"), ("proxy_jump", "gw$(id)"),
                                        ("proxy_jump", "u`x`@gw"), ("host", "-oProxyCommand=x")])
def test_values_a_shell_would_read_are_refused(fake, key, value):
    ssh, _calls = fake
    kwargs = {"host": "h", "name": "m", "ssh": ssh}
    kwargs[key] = value
    with pytest.raises(ConfigError) as err:
        OpenSSHRemote(**kwargs)
    assert str(err.value).startswith("machine m: ") and "\n" not in str(err.value)


def test_includes_the_users_config_after_hpcdos_own(fake, tmp_path, monkeypatch):
    ssh, _calls = fake
    mine = tmp_path / "my config"
    mine.write_text(textwrap.dedent("Host h\n  Port 2\n"))
    monkeypatch.setenv(sshconfig.ENV, str(mine))
    remote = OpenSSHRemote("h", identity_file="~/id", name="m", ssh=ssh)
    text = remote._text
    assert text.index("StrictHostKeyChecking yes") < text.index('Include "%s"' % mine)
    assert 'IdentityFile "%s"' % os.path.join(str(tmp_path), "id") in text


def test_a_call_on_the_system_ssh_does_not_import_paramiko(tmp_path):
    """The system ssh reads ssh_config itself: hpcdo need not load paramiko (about 0.25 s a call)."""
    import subprocess
    import sys
    code = ("import sys; from hpcdo.remote.openssh import OpenSSHRemote; "
            "OpenSSHRemote('h', user='u', port=2, known_hosts='/k', proxy_jump='g:3', name='m'); "
            "print('paramiko' in sys.modules)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=root, HOME=str(tmp_path))).stdout
    assert out.strip() == "False"
