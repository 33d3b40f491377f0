"""Where a machine's SSH connection goes, as OpenSSH would decide it.

A machine's ``host`` may be an alias of the user's ``~/.ssh/config``; its
``HostName``, ``User``, ``Port``, ``IdentityFile``, ``ProxyJump`` (any number
of hops), ``ProxyCommand``, ``ConnectTimeout``, ``ServerAliveInterval``,
``UserKnownHostsFile`` and ``GlobalKnownHostsFile`` apply as they would to
``ssh <host>``.  A value in the machine file wins, but only one its files
set: the built-in defaults (``hpcdo/machines.yml``) set neither ``port`` nor
``user`` nor ``proxy_jump`` nor ``connect_timeout``, so ssh_config's count.

The files read are OpenSSH's: ``~/.ssh/config`` then ``/etc/ssh/ssh_config``
(the first value found wins), with ``Include`` lines followed.
``HPCDO_SSH_CONFIG=<file>`` reads that file alone, as ``ssh -F <file>``
does (``none``: no file at all).

Each jump host is looked up the same way (its own HostName, User, Port,
IdentityFile and, for the first hop, its own ProxyJump).  Host keys are
never this module's business beyond naming the files: every hop is checked
against the same ``known_hosts`` files by the transport.
"""

import getpass
import glob
import hashlib
import io
import os
import re

from .. import ConfigError

#: names ``ssh -F`` as an environment variable: the one ssh_config file to read
ENV = "HPCDO_SSH_CONFIG"
USER_CONFIG = "~/.ssh/config"
SYSTEM_CONFIG = "/etc/ssh/ssh_config"
DEFAULT_PORT = 22
DEFAULT_TIMEOUT = 30
#: seconds between keepalives when ssh_config says nothing (OpenSSH's default is none)
DEFAULT_ALIVE = 30
#: longest chain of jump hosts followed (a loop of ProxyJump lines ends here)
MAX_HOPS = 8
_INCLUDE = re.compile(r"^\s*include(?:\s*=\s*|\s+)(.+)$", re.IGNORECASE)


def config_files(path=None):
    """The ssh_config files to read: ``path``, else $HPCDO_SSH_CONFIG, else OpenSSH's two.

    Returns a list of (file, directory relative Include paths start from);
    files that do not exist are left out, except one named explicitly.
    """
    path = path if path is not None else os.environ.get(ENV) or None
    if path is not None:
        if path == "none":
            return []
        full = os.path.expanduser(path)
        if not os.path.isfile(full):
            raise ConfigError("ssh_config file %s (%s) does not exist" % (full, ENV))
        return [(full, os.path.expanduser("~/.ssh"))]
    found = []
    for one, base in ((USER_CONFIG, "~/.ssh"), (SYSTEM_CONFIG, "/etc/ssh")):
        full = os.path.expanduser(one)
        if os.path.isfile(full):
            found.append((full, os.path.expanduser(base)))
    return found


def _text(path, base, depth=0):
    """The file's text with its ``Include`` lines replaced by the files they name."""
    if depth > 16:
        raise ConfigError("ssh_config %s: Include nested too deep (a loop?)" % path)
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("cannot read ssh_config file %s: %s" % (path, exc))
    out = []
    for line in lines:
        match = _INCLUDE.match(line)
        if not match:
            out.append(line)
            continue
        for word in match.group(1).split():
            word = os.path.expanduser(word.strip('"'))
            if not os.path.isabs(word):
                word = os.path.join(base, word)
            for one in sorted(glob.glob(word)):
                if os.path.isfile(one):
                    out.append(_text(one, base, depth + 1))
    return "\n".join(out) + "\n"


class _NoConfig:
    """What :func:`load` gives when there is no ssh_config file: paramiko need not be imported."""

    @staticmethod
    def lookup(host):
        return {"hostname": host}


def load(path=None):
    """A ``paramiko.SSHConfig`` holding the user's ssh_config (see :func:`config_files`)."""
    files = config_files(path)
    if not files:
        return _NoConfig()
    import paramiko
    config = paramiko.SSHConfig()
    for full, base in files:
        try:
            config.parse(io.StringIO(_text(full, base)))
        except paramiko.ssh_exception.ConfigParseError as exc:
            raise ConfigError("ssh_config file %s: %s" % (full, exc))
    return config


def digest(path=None):
    """A short hash of the user's own ssh_config (the file and what it includes), or None if
    there is none; cheap (no paramiko): it names the persist agent's socket, so that an agent
    is not used after the file it read has changed.  (``/etc/ssh/ssh_config`` is left out.)"""
    files = [(full, base) for full, base in config_files(path) if full != SYSTEM_CONFIG]
    if not files:
        return None
    text = "".join("%s\0%s\0" % (full, _text(full, base)) for full, base in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Hop:
    """One SSH server on the way: where it is, who logs in, with which keys."""

    def __init__(self, alias, hostname, port, user, identity_files, connect_timeout,
                 server_alive_interval=DEFAULT_ALIVE):
        self.alias = alias
        self.hostname = hostname
        self.port = port
        self.user = user
        self.identity_files = identity_files
        self.connect_timeout = connect_timeout
        self.server_alive_interval = server_alive_interval

    @property
    def entry(self):
        """The name the server's key has in known_hosts: ``host`` or ``[host]:port``."""
        return self.hostname if self.port == DEFAULT_PORT else "[%s]:%d" % (self.hostname, self.port)

    @property
    def label(self):
        return "%s@%s:%d" % (self.user, self.hostname, self.port)

    def spec(self):
        """This hop as ProxyJump writes it: ``user@host:port``."""
        host = "[%s]" % self.hostname if ":" in self.hostname else self.hostname
        return "%s@%s:%d" % (self.user, host, self.port)

    def __repr__(self):
        return "<Hop %s (%s)>" % (self.alias, self.label)


class Route:
    """The target and the jump hosts before it, in the order they are connected."""

    def __init__(self, target, jumps, proxy_command, known_hosts_files, machine_known_hosts=None):
        self.target = target
        self.jumps = jumps
        self.proxy_command = proxy_command
        #: every known_hosts file to trust, for the target and each jump host alike
        self.known_hosts_files = known_hosts_files
        #: the machine file's own known_hosts (the first of those files), or None
        self.machine_known_hosts = machine_known_hosts


def parse_jumps(text, where="proxy_jump"):
    """``[user@]host[:port][,...]`` (or ``ssh://[user@]host[:port]``) as (user, host, port) triples."""
    hops = []
    for one in text.split(","):
        one = one.strip()
        if one.startswith("ssh://"):
            one = one[len("ssh://"):].rstrip("/")
        user, _, rest = one.rpartition("@")
        port = None
        if rest.startswith("["):
            host, closed, tail = rest[1:].partition("]")
            if tail.startswith(":"):
                port = tail[1:]
            elif tail or not closed:
                host = ""
        else:
            host, colon, port = rest.partition(":")
            if not colon:
                port = None
        if not host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)) \
                or (user == "" and "@" in one) or any(c.isspace() for c in one):
            raise ConfigError("%s: '%s' is not a jump host like [user@]host[:port]" % (where, one))
        hops.append((user or None, host, int(port) if port else None))
    return hops


def _number(options, key, where):
    value = options.get(key)
    if value is None:
        return None
    try:
        number = int(value)
        if number < 0:
            raise ValueError
        return number
    except ValueError:
        raise ConfigError("ssh_config for %s: %s must be a whole number, not '%s'" % (where, key, value))


def _local_user():
    try:
        return getpass.getuser()
    except Exception:      # no name for this uid
        return "root" if os.geteuid() == 0 else str(os.geteuid())


#: what OpenSSH (9.6+) refuses in a host or user name given to it: shell characters, which
#: ssh_config's ``Match exec`` and ``%h``/``%r`` tokens would hand to a shell, and blanks
UNSAFE_NAME = re.compile(r"""['"`$\\;&<>|(){}\s\x00-\x1f\x7f]""")


def name_ok(value):
    """True if ``value`` is a host or user name that can reach ssh_config and ssh as it is."""
    return isinstance(value, str) and value != "" and not value.startswith("-") \
        and not UNSAFE_NAME.search(value)


def _hop(config, alias, user, port, identity_file, connect_timeout, where):
    """A Hop for ``alias``: given values first, then ssh_config's, then OpenSSH's defaults."""
    for what, value in (("host", alias), ("user", user)):
        if value is not None and not name_ok(value):
            # the value is not repeated: the line says what is wrong with it
            raise ConfigError("%s: a %s name may not start with '-' nor hold blanks or any of "
                              "' \" ` $ \\ ; & < > | ( ) { } (ssh_config would hand them to a shell)"
                              % (where, what))
    options = config.lookup(alias)
    files = []
    for path in ([identity_file] if identity_file else []) + list(options.get("identityfile") or []):
        full = os.path.expanduser(path)
        if full not in files:
            files.append(full)
    timeout = connect_timeout if connect_timeout is not None else _number(options, "connecttimeout", alias)
    alive = _number(options, "serveraliveinterval", alias)
    return Hop(alias=alias,
               hostname=options.get("hostname") or alias,
               port=int(port) if port else (_number(options, "port", alias) or DEFAULT_PORT),
               user=user or options.get("user") or _local_user(),
               identity_files=files,
               connect_timeout=timeout if timeout else DEFAULT_TIMEOUT,
               server_alive_interval=alive if alive is not None else DEFAULT_ALIVE), options


def _known_hosts(options, known_hosts):
    """OpenSSH's known_hosts files for these options, then the machine's own."""
    files = []
    user = (options.get("userknownhostsfile") or "~/.ssh/known_hosts ~/.ssh/known_hosts2").split()
    system = (options.get("globalknownhostsfile") or
              "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2").split()
    for one in user + system:
        if one != "none":
            full = os.path.expanduser(one.strip('"'))
            if full not in files:
                files.append(full)
    if known_hosts:
        full = os.path.expanduser(known_hosts)
        if full in files:
            files.remove(full)
        files.insert(0, full)
    return files


def resolve(host, user=None, port=None, identity_file=None, proxy_jump=None, connect_timeout=None,
            known_hosts=None, config=None, name=None):
    """The :class:`Route` to machine ``name`` at ``host`` (an address or an ssh_config alias).

    ``user``, ``port``, ``identity_file``, ``proxy_jump`` and ``connect_timeout``
    are the machine file's values, None where it sets none; ``config`` a
    ``paramiko.SSHConfig`` (default: :func:`load`).  ``proxy_jump`` ``none``
    goes direct whatever ssh_config says.
    """
    config = load() if config is None else config
    where = "machine %s" % (name or host)
    target, options = _hop(config, host, user, port, identity_file, connect_timeout, where)
    jump_text = proxy_jump if proxy_jump is not None else options.get("proxyjump")
    jumps, proxy_command = [], None
    if jump_text and jump_text.strip().lower() != "none":
        jumps = _jump_hops(config, jump_text, identity_file, connect_timeout,
                           "%s: %s" % (where, "proxy_jump" if proxy_jump is not None else "ProxyJump"),
                           seen=[(host, target.port)])
    elif proxy_jump is None and options.get("proxycommand", "none").strip().lower() != "none":
        proxy_command = options["proxycommand"]
    return Route(target, jumps, proxy_command, _known_hosts(options, known_hosts), known_hosts)


def _jump_hops(config, text, identity_file, connect_timeout, where, seen):
    """The hops of ``text``, the first one's own ProxyJump hops put before it."""
    hops = []
    for user, alias, port in parse_jumps(text, where):
        hop, options = _hop(config, alias, user, port, identity_file, connect_timeout, where)
        if (alias, hop.port) in seen:
            # a jump through the host itself (``Host *`` + ProxyJump), as OpenSSH skips it;
            # the same address on another port is another server (a bastion beside the target)
            continue
        if not hops:
            own = options.get("proxyjump")
            # OpenSSH reaches the first jump host with an ``ssh`` of its own,
            # which follows that host's ProxyJump
            if own and own.strip().lower() != "none":
                hops += _jump_hops(config, own, identity_file, connect_timeout,
                                   "ssh_config for %s: ProxyJump" % alias, seen + [(alias, hop.port)])
        hops.append(hop)
        if len(hops) > MAX_HOPS:
            raise ConfigError("%s: more than %d jump hosts (a ProxyJump loop?)" % (where, MAX_HOPS))
    return hops
