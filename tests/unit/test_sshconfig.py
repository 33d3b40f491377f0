"""The user's ssh_config, resolved as OpenSSH would: aliases, HostName, User, Port, IdentityFile,
ProxyJump (several hops), ConnectTimeout, ServerAliveInterval; the machine file wins where it sets a key."""

import os
import textwrap

import pytest

from hpcdo import ConfigError
from hpcdo.config import Catalogue
from hpcdo.remote import sshconfig
from hpcdo.remote.sshconfig import load, parse_jumps, resolve

SITE = """\
    Host gw
      HostName gateway.example.org
      User gwuser
      Port 2022
      IdentityFile ~/.ssh/gw_key
    Host inner
      HostName 10.0.0.5
      Port 2200
    Host hpc hpc-alias
      HostName login.%h.example.org
      User alice
      Port 2201
      IdentityFile ~/.ssh/hpc_key
      ProxyJump gw,inner
      ConnectTimeout 7
      ServerAliveInterval 11
      UserKnownHostsFile ~/.ssh/site_known_hosts
    Host viacmd
      HostName 192.0.2.9
      ProxyCommand nc %h %p
    Host *
      User fallback
"""


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """Write ``text`` as the ssh_config HPCDO_SSH_CONFIG names; return it loaded."""
    def write(text=SITE, name="ssh_config"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        monkeypatch.setenv(sshconfig.ENV, str(path))
        return load()
    monkeypatch.setenv("HOME", str(tmp_path))
    return write


def test_alias_gives_hostname_user_port_key_timeout_keepalive(cfg):
    route = resolve("hpc", config=cfg())
    t = route.target
    assert (t.hostname, t.user, t.port) == ("login.hpc.example.org", "alice", 2201)
    assert t.identity_files == [os.path.expanduser("~/.ssh/hpc_key")]
    assert (t.connect_timeout, t.server_alive_interval) == (7, 11)
    assert t.entry == "[login.hpc.example.org]:2201"


def test_machine_values_win_only_where_set(cfg):
    config = cfg()
    t = resolve("hpc", user="bob", port=2222, connect_timeout=3, identity_file="/k/mine",
                config=config).target
    assert (t.user, t.port, t.connect_timeout) == ("bob", 2222, 3)
    assert t.identity_files == ["/k/mine", os.path.expanduser("~/.ssh/hpc_key")]   # the machine's first
    plain = resolve("elsewhere.org", config=config).target
    assert (plain.hostname, plain.user, plain.port, plain.connect_timeout) == ("elsewhere.org", "fallback", 22, 30)
    assert plain.server_alive_interval == 30


def test_several_jump_hosts_each_looked_up_in_order(cfg):
    route = resolve("hpc", config=cfg())
    assert [(h.alias, h.hostname, h.user, h.port) for h in route.jumps] == [
        ("gw", "gateway.example.org", "gwuser", 2022), ("inner", "10.0.0.5", "fallback", 2200)]
    assert route.jumps[0].identity_files == [os.path.expanduser("~/.ssh/gw_key")]
    assert route.proxy_command is None


def test_machine_proxy_jump_wins_and_none_goes_direct(cfg):
    config = cfg()
    route = resolve("hpc", proxy_jump="carol@jump.example.org:2300", config=config)
    assert [(h.user, h.hostname, h.port) for h in route.jumps] == [("carol", "jump.example.org", 2300)]
    assert resolve("hpc", proxy_jump="none", config=config).jumps == []
    # a machine that is not in ssh_config at all, through an alias that is
    route = resolve("203.0.113.7", proxy_jump="gw", config=config)
    assert [h.hostname for h in route.jumps] == ["gateway.example.org"]


def test_first_jump_hosts_own_proxy_jump_comes_first_and_loops_end(cfg):
    config = cfg("""\
        Host a
          ProxyJump b
        Host b
          ProxyJump a
        Host target
          ProxyJump a,c
        Host *
          ProxyJump target
    """)
    route = resolve("target", config=config)
    assert [h.alias for h in route.jumps] == ["b", "a", "c"]
    # ``Host *`` naming a jump host: the jump host itself is reached directly
    assert [h.alias for h in resolve("gwonly", proxy_jump="target", config=config).jumps] == ["b", "a", "c", "target"]


def test_a_jump_host_on_the_targets_address_but_another_port_is_kept(cfg):
    # a bastion beside the target on one address (OpenSSH refuses a loop only on the same
    # host, port and user); the same host and port is the target itself, skipped
    config = cfg()
    route = resolve("127.0.0.1", port=2222, proxy_jump="u@127.0.0.1:2223", config=config)
    assert [(h.hostname, h.port) for h in route.jumps] == [("127.0.0.1", 2223)]
    assert resolve("127.0.0.1", port=2222, proxy_jump="127.0.0.1:2222", config=config).jumps == []


def test_proxy_command_when_there_is_no_jump(cfg):
    config = cfg()
    route = resolve("viacmd", config=config)
    assert route.proxy_command == "nc 192.0.2.9 22" and route.jumps == []
    assert resolve("viacmd", proxy_jump="gw", config=config).proxy_command is None


def test_known_hosts_machine_first_then_ssh_config_then_system(cfg):
    config = cfg()
    files = resolve("hpc", known_hosts="~/mine", config=config).known_hosts_files
    assert files[:2] == [os.path.expanduser("~/mine"), os.path.expanduser("~/.ssh/site_known_hosts")]
    assert "/etc/ssh/ssh_known_hosts" in files
    assert resolve("other", config=config).known_hosts_files[0] == os.path.expanduser("~/.ssh/known_hosts")


@pytest.mark.parametrize("text, hops", [
    ("h", [(None, "h", None)]),
    ("u@h:2200,v@[2001:db8::1]:22", [("u", "h", 2200), ("v", "2001:db8::1", 22)]),
    ("ssh://u@h:2", [("u", "h", 2)]),
    ("a.example.org, b", [(None, "a.example.org", None), (None, "b", None)]),
])
def test_jump_specs(text, hops):
    assert parse_jumps(text) == hops


@pytest.mark.parametrize("text", ["h:port", "h:0", "@h", "u@", "a,,b", "h x", "[::1", "h:99999"])
def test_bad_jump_spec_is_one_line(text):
    with pytest.raises(ConfigError) as err:
        parse_jumps(text, "machine m: proxy_jump")
    assert str(err.value).startswith("machine m: proxy_jump: '") and "\n" not in str(err.value)


def test_include_is_followed(cfg, tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "site.conf").write_text("Host hpc\n  Port 2999\n  User inc\n")
    config = cfg("Include site.conf\nHost *\n  Port 1\n")
    t = resolve("hpc", config=config).target
    assert (t.port, t.user) == (2999, "inc")


def test_env_names_the_one_file_and_errors_are_one_line(cfg, tmp_path, monkeypatch):
    cfg("Host x\n  Port 5\n")
    assert resolve("x").target.port == 5             # read from HPCDO_SSH_CONFIG, not ~/.ssh/config
    monkeypatch.setenv(sshconfig.ENV, "none")
    assert resolve("x").target.port == 22
    monkeypatch.setenv(sshconfig.ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="ssh_config file .*missing.* does not exist"):
        load()
    cfg("Host x\n  Port five\n")
    with pytest.raises(ConfigError, match="ssh_config for x: port must be a whole number"):
        resolve("x")
    (tmp_path / "ssh_config").write_text("Host x\n  =oops\n")
    with pytest.raises(ConfigError, match="ssh_config file .*ssh_config: Unparsable line"):
        load()


def test_user_ssh_config_and_system_one_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(sshconfig.ENV, raising=False)
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host x\n  Port 7\n")
    files = [f for f, _ in sshconfig.config_files()]
    assert files[0] == str(tmp_path / ".ssh" / "config")
    assert resolve("x").target.port == 7


def test_ssh_config_port_is_not_overridden_by_a_builtin_default(cfg, tmp_path):
    """A machine that sets no port reaches the ssh_config alias's Port (a built-in 22 used to win)."""
    from hpcdo.session import make_remote
    cfg("Host hpc-alias\n  HostName 192.0.2.1\n  Port 2201\n  User alice\n")
    (tmp_path / "machines").mkdir()
    (tmp_path / "machines" / "m.yml").write_text(textwrap.dedent("""\
        viaconfig:
          host: hpc-alias
          scheduler: slurm
        explicit:
          extends: viaconfig
          port: 2222
          user: bob
    """))
    cat = Catalogue(str(tmp_path))
    machine = cat.machine("viaconfig")
    assert machine.port is None
    remote = make_remote(machine)
    assert (remote.hostname, remote.port, remote.user) == ("192.0.2.1", 2201, "alice")
    remote = make_remote(cat.machine("explicit"))
    assert (remote.port, remote.user) == (2222, "bob")


def test_persist_agent_params_follow_the_ssh_config_file_without_importing_paramiko(cfg, tmp_path):
    """A call through the persist agent does not pay for paramiko's import (about 0.25 s); the
    agent resolves ssh_config, and its socket changes with the file."""
    import subprocess
    import sys
    cfg("Host hpc-alias\n  Port 2201\n")
    (tmp_path / "machines").mkdir()
    (tmp_path / "machines" / "m.yml").write_text("kept:\n  host: hpc-alias\n  scheduler: slurm\n  persist: 60\n")
    code = textwrap.dedent("""\
        import json, sys
        from hpcdo.config import Catalogue
        from hpcdo.session import make_remote
        remote = make_remote(Catalogue(sys.argv[1]).machine("kept"))
        print(json.dumps([remote.params, remote.host, "paramiko" in sys.modules]))
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def ask():
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=root), check=True).stdout
        import json
        return json.loads(out)
    params, host, imported = ask()
    assert not imported
    assert (params["host"], params["port"], host) == ("hpc-alias", None, "hpc-alias")
    assert params["ssh_config"]
    cfg("Host hpc-alias\n  Port 2202\n")
    assert ask()[0]["ssh_config"] != params["ssh_config"]


def test_a_host_with_shell_characters_never_reaches_ssh_configs_match_exec(tmp_path):
    """paramiko runs ``Match exec`` with %h put in unquoted: a host (or jump host) holding shell
    characters is refused before any lookup, as OpenSSH 9.6+ refuses it."""
    import paramiko
    pwned = tmp_path / "PWNED"
    config = paramiko.SSHConfig.from_text('Match exec "test -n %h"\n  User someone\n')
    plain = paramiko.SSHConfig.from_text("")
    for host, jump, conf in [("x$(touch${IFS}%s)" % pwned, None, config), ("-oProxyCommand=touch", None, config),
                             ("a b", None, config), ("ok", "u@x;touch${IFS}%s" % pwned, plain)]:
        with pytest.raises(ConfigError) as info:
            resolve(host, proxy_jump=jump, config=conf, name="m")
        assert "shell" in str(info.value) and "\n" not in str(info.value)
    assert not pwned.exists()
    assert resolve("login.example.org", user="j.doe-1", config=plain, name="m").target.user == "j.doe-1"


def test_a_machine_file_host_or_user_with_shell_characters_is_one_error_line(tmp_path):
    from hpcdo.config import Catalogue
    (tmp_path / "machines").mkdir()
    (tmp_path / "machines" / "m.yml").write_text("bad:\n  host: 'h$(id)'\n  scheduler: slurm\n  remote_root: w\n")
    with pytest.raises(ConfigError) as info:
        Catalogue(str(tmp_path)).machine("bad")
    assert "m.yml:2" in str(info.value) and "key 'host'" in str(info.value) and "$(id)" not in str(info.value)
