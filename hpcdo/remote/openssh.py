"""The system's OpenSSH client as a machine's connection (``transport: openssh``).

For what paramiko cannot do: GSSAPI/Kerberos logins, FIDO2 security keys
(``sk-`` keys), a site's certificate tool that writes short-lived keys or
``ssh_config`` fragments.  Each command is one ``ssh`` process multiplexed
over a master connection (ControlMaster), which outlives the call for the
machine's ``persist`` seconds (ControlPersist; with ``persist: 0``, until the
call ends): the persist agent of the paramiko transport is not needed.

``ssh`` reads the user's ssh_config itself (``HPCDO_SSH_CONFIG`` as ``-F``),
through a small config file hpcdo writes first (``~/.hpcdo/ssh``), which
puts ``StrictHostKeyChecking yes`` and the machine's ``known_hosts`` before
the user's settings.  OpenSSH hands a ``-F`` file, and only it, to the
``ssh`` it starts for each jump host, so jump hosts are checked exactly as
the machine is.  The machine file's user, port, proxy_jump and
connect_timeout are passed as options (its identity_file in that config
file, offered to the jump hosts too), each its own argument: no local
shell ever reads them.  A value OpenSSH would put into a shell command
line (a jump host, in the ProxyCommand it makes of ProxyJump) is refused
if it holds anything but the characters of host and user names.

Commands run as ``sh -c '<script>'`` (``sh -s`` with the script on stdin),
as with :class:`hpcdo.remote.ssh.SSHRemote`, and stream as in
:mod:`hpcdo.remote.connection`.  ``ssh`` says its own failures with exit
code 255; one with ssh's words on stderr is a :class:`RemoteError`, any
other 255 is the script's.
"""

import atexit
import hashlib
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time

from .. import ConfigError, RemoteError
from . import auth, sshconfig, trace
from .connection import Remote, Result, _pump

#: the control sockets and generated configs (0700): short, for a Unix socket's 108 bytes
BASE = "~/.hpcdo/ssh"
#: how long a master outlives a call of a machine with ``persist: 0`` if the call cannot end it
SHORT_PERSIST = 60
#: what a host or user name handed to OpenSSH may hold (it puts jump hosts into a shell line)
NAME = re.compile(r"^[A-Za-z0-9_.:-]+\Z")
#: what the path of hpcdo's config file may hold (OpenSSH puts it into that line too)
PATH = re.compile(r"^[A-Za-z0-9_.,:@%+/~=-]+\Z")
#: ssh's own words on stderr, when it exits 255: the connection failed, not the script
SSH_WORDS = re.compile(
    r"^(ssh: |kex_exchange_identification|Connection (closed|reset|timed out|refused)|"
    r"Host key verification failed|No \S+ host key is known|Permission denied \(|"
    r"mux_client|Control ?[Ss]ocket|ControlPath|channel \d+: open failed|"
    r"Could not resolve hostname|Bad (owner|configuration)|stdio forwarding failed|"
    r"banner exchange|Received disconnect|Disconnected from|Timeout, server|"
    r"@@@@|Killed by signal)", re.M)
#: the known_hosts name OpenSSH says it has no key for
UNKNOWN_KEY = re.compile(r"No \S+ host key is known for (\S+?) and you have requested strict checking")


def _safe(value, what, name, allowed=NAME):
    if not allowed.match(value) or value.startswith("-"):
        raise ConfigError("machine %s: %s '%s' holds characters the system ssh would pass to a shell "
                          "(transport: openssh takes names of letters, digits and . _ - : only)"
                          % (name, what, value))
    return value


def _private_dir():
    path = os.path.expanduser(BASE)
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class OpenSSHRemote(Remote):
    """A machine reached with the system ``ssh`` client, one master connection shared by all commands."""

    def __init__(self, host, user=None, port=None, identity_file=None, known_hosts=None,
                 proxy_jump=None, connect_timeout=None, persist=0, name=None, ssh="ssh", askpass=None):
        self.name = name or host
        self.askpass = askpass
        _safe(host, "host", self.name)
        self.alias = host
        self.known_hosts = os.path.expanduser(known_hosts) if known_hosts else None
        self.identity_file = os.path.expanduser(identity_file) if identity_file else None
        self.persist = int(persist or 0)
        self.ssh = ssh
        options = ["-T", "-o", "LogLevel=ERROR"]
        if user:
            options += ["-l", _safe(user, "user", self.name)]
        if port:
            options += ["-p", str(int(port))]
        if proxy_jump and proxy_jump.strip().lower() == "none":
            options += ["-o", "ProxyJump=none"]
        elif proxy_jump:
            hops = []
            for hop_user, hop, hop_port in sshconfig.parse_jumps(proxy_jump, "machine %s: proxy_jump" % self.name):
                hop = _safe(hop, "proxy_jump: jump host", self.name)
                hops.append("%s%s%s" % (_safe(hop_user, "proxy_jump: user", self.name) + "@" if hop_user else "",
                                        "[%s]" % hop if ":" in hop else hop,
                                        ":%d" % hop_port if hop_port else ""))
            options += ["-J", ",".join(hops)]
        if connect_timeout:
            options += ["-o", "ConnectTimeout=%d" % max(1, round(connect_timeout))]
        self.host = "%s@%s" % (user, host) if user else host
        if port:
            self.host += ":%d" % int(port)
        files = [f for f, _base in sshconfig.config_files()]
        text = self._config_text(files)
        key = hashlib.sha256("\0".join([text] + options + [host]).encode()).hexdigest()[:16]
        self._dir = _private_dir()
        self.config_path = os.path.join(self._dir, key + ".conf")
        _safe(self.config_path, "home directory path", self.name, PATH)
        self.control_path = os.path.join(self._dir, key + ".cm")
        persist_for = self.persist if self.persist > 0 else SHORT_PERSIST
        self._plain = options + ["-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "BatchMode=yes"]
        self._options = options + ["-o", "ControlMaster=auto", "-o", "ControlPath=" + self.control_path,
                                   "-o", "ControlPersist=%d" % persist_for]
        self._text = text
        self._lock = threading.Lock()
        self._ready = False
        self._refused = None

    def _config_text(self, files):
        """The ssh_config hpcdo puts before the user's: host keys checked, the machine's key offered."""
        def quoted(path):
            if '"' in path or "\n" in path:
                raise ConfigError("machine %s: path %s cannot be written into an ssh_config" % (self.name, path))
            return '"%s"' % path
        lines = ["# written by hpcdo for machine %s (transport: openssh); rewritten on every call" % self.name,
                 "Host *",
                 "  StrictHostKeyChecking yes"]
        if self.known_hosts:
            # as a global file, before the system's: the user's own UserKnownHostsFile stays in force
            lines.append("  GlobalKnownHostsFile %s /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
                         % quoted(self.known_hosts))
        if self.identity_file:
            lines.append("  IdentityFile " + quoted(self.identity_file))
        for path in files:
            lines.append("Include " + quoted(path))
        return "\n".join(lines) + "\n"

    def _argv(self, *words):
        return [self.ssh, "-F", self.config_path] + self._options + list(words)

    # -- the master connection ------------------------------------------------
    def connect(self):
        self._master()

    def _master(self):
        """Make sure a master connection is up: one of an earlier call, or one opened now."""
        with self._lock:
            if self._refused is not None:
                raise self._refused        # said once per call, not once per task
            if self._ready:
                return
            if shutil.which(self.ssh) is None:
                self._refused = RemoteError("machine %s: transport: openssh needs the system ssh client, "
                                            "and there is no '%s' on PATH" % (self.name, self.ssh))
                raise self._refused
            if self.known_hosts and not os.path.exists(self.known_hosts):
                self._refused = RemoteError("machine %s: known_hosts file %s does not exist"
                                            % (self.name, self.known_hosts))
                raise self._refused
            if self.identity_file and not os.path.exists(self.identity_file):
                self._refused = RemoteError("machine %s: identity_file %s does not exist"
                                            % (self.name, self.identity_file))
                raise self._refused
            self._write_config()
            if not self._alive():
                start = time.monotonic()
                try:
                    self._open_master()
                finally:
                    trace.record("connect", self.host, time.monotonic() - start, what="connect")
            if self.persist <= 0:
                atexit.register(self._exit_master)
            self._ready = True

    def _write_config(self):
        tmp = "%s.%d" % (self.config_path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self._text)
        os.replace(tmp, self.config_path)

    def _alive(self):
        proc = subprocess.run(self._argv("-O", "check", "--", self.alias), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return proc.returncode == 0

    def _open_master(self):
        """The first command opens the master, which then stays in the background (ControlPersist).

        Its stdin is not a pipe of ours: a passphrase, PIN or one-time code is
        asked on the terminal (or by SSH_ASKPASS), as by ``ssh`` itself.
        """
        proc = subprocess.run(self._argv("--", self.alias, "true"), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self._login_env())
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace")
            if not UNKNOWN_KEY.search(err):
                # with ControlPersist, ssh sends a jump host's ssh's words to /dev/null:
                # once more without it, to say which server refused and why
                again = subprocess.run([self.ssh, "-F", self.config_path] + self._plain + ["--", self.alias, "true"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
                err = again.stderr.decode("utf-8", "replace") or err
            self._refused = RemoteError(self._refusal(err))
            raise self._refused

    def _login_env(self):
        """ssh's environment for the login: with no terminal to ask on, the machine's askpass
        (or ``HPCDO_ASKPASS``) answers the prompts, as it does over paramiko."""
        env = dict(os.environ)
        program = auth.Answerer(self.name, self.askpass).program()
        if program and not _terminal():
            env["SSH_ASKPASS"] = program
            env["SSH_ASKPASS_REQUIRE"] = "force"       # OpenSSH 8.4+: askpass even without DISPLAY
        return env

    def _refusal(self, err, what="cannot connect to"):
        """One line for the failure ``ssh`` described in ``err``."""
        where = "machine %s (%s, system ssh)" % (self.name, self.host)
        unknown = UNKNOWN_KEY.search(err)
        if unknown:
            entry = unknown.group(1)
            host, port = entry, 22
            match = re.match(r"^\[(.*)\]:(\d+)$", entry)
            if match:
                host, port = match.group(1), int(match.group(2))
            holder = self.known_hosts or "~/.ssh/known_hosts"
            return ("host key of %s is not known (on the way to %s): refusing to connect. Check the "
                    "key's fingerprint with the site, then trust it with: ssh-keyscan -p %d %s >> %s "
                    "(run it on the jump host before it if %s is reached through one)"
                    % (entry, where, port, shlex.quote(host), holder, entry))
        lines = [line.strip() for line in err.replace("\r", "").splitlines() if line.strip()]
        return "%s %s: %s" % (what, where, "; ".join(lines[-3:]) or "ssh failed with no message")

    def _exit_master(self):
        # "stop", not "exit": the master is shared by every call with these settings (another
        # project's, a status in another terminal); it takes no new session and ends when the
        # sessions running on it have, instead of cutting them
        subprocess.run(self._argv("-O", "stop", "--", self.alias), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # -- commands ---------------------------------------------------------------
    def _run(self, script, chunks, sink, counter):
        self._master()
        command = "sh -s" if script is None else "sh -c " + shlex.quote(script)
        # a session of its own, as over paramiko: a Ctrl-C in the terminal does
        # not reach the remote work by itself
        # ssh's own messages go to a log of this command's (-E), apart from the script's stderr
        log = "%s.%d.%d.log" % (self.control_path[:-len(".cm")], os.getpid(), next(_COMMANDS))
        proc = subprocess.Popen(self._argv("-E", log, "--", self.alias, command), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        counter.started = True
        try:
            out, err = _pump(chunks, proc.stdin.write, proc.stdin.close,
                             proc.stdout.read1, proc.stderr.read, sink, counter,
                             abort=lambda: _stop(proc))
            code = proc.wait()
        except BaseException:
            _stop(proc)
            proc.wait()
            _read_and_remove(log)
            raise
        said = _read_and_remove(log)
        # 255 is ssh's own failure when ssh says so, or when the master is gone with the
        # command; a script that exits 255 itself, with anything on its stderr, is its own
        if code == 255 and (SSH_WORDS.search(said) or not self._alive()):
            with self._lock:
                self._ready = False        # the next command opens a master again
            raise RemoteError(self._refusal(said or err.decode("utf-8", "replace") or "the connection closed",
                                            "lost the connection to"))
        return Result(code, out, err)

    def close(self):
        """End the master now for a machine without ``persist``; else it is kept, as asked."""
        with self._lock:
            if self._ready and self.persist <= 0:
                self._exit_master()
            self._ready = False


#: numbers the commands of this process, for their ssh logs' names
_COMMANDS = itertools.count()


def _read_and_remove(path):
    """The text of ``path`` (ssh's log of one command), which is then removed; "" if none."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
        os.remove(path)
        return text
    except OSError:
        return ""


def _terminal():
    """True if this process has a terminal that ssh can ask on."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        return True
    except OSError:
        return False


def _stop(proc):
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
