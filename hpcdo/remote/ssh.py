"""The SSH connection to a machine: one fabric/paramiko connection, opened on first use.

Host keys are always verified (``known_hosts`` files; an unknown or changed
key refuses the connection with the commands to check and trust it).  The
connection is shared by all threads of a call; each command is a channel
of its own, started without waiting for the server's confirmation, with
Nagle's algorithm off.  Commands run as in :mod:`hpcdo.remote.connection`.
"""

import base64
import hashlib
import os
import shlex
import socket
import threading
import time

from .. import RemoteError
from . import auth, login, trace
from . import sshconfig
from .connection import WINDOW_SIZE, Remote, Result, _pump


def _sha256_fingerprint(key):
    """A key's fingerprint as OpenSSH shows it: SHA256:<base64, no padding>."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _no_delay(sock):
    """Send each SSH packet at once (TCP_NODELAY), as OpenSSH does for a session.

    With Nagle's algorithm on, the last short packet of a command waits for
    the peer's delayed acknowledgement of the one before: measured on
    loopback, 40 ms on every command (44 ms for ``true``, 5 ms without).
    """
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass        # not a TCP socket (a ProxyCommand's pipe): nothing to tune


def _exec(chan, command):
    """Start ``command`` on ``chan`` without waiting for the server to confirm the request.

    paramiko's ``exec_command`` waits a round trip for the server's yes
    before the first byte of stdin may follow; the answer it waits for is
    already implied by the output, the exit status and the channel closing
    that come next, and a refused request shows as a channel that closes
    with no exit status (reported as such by the caller).  One round trip
    saved per command is a tenth of a second on a transatlantic link.
    """
    try:
        from paramiko.common import cMSG_CHANNEL_REQUEST
        from paramiko.message import Message
        send = chan.transport._send_user_message
    except (ImportError, AttributeError):      # a paramiko without these internals
        chan.exec_command(command)
        return
    m = Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("exec")
    m.add_boolean(False)
    m.add_string(command)
    send(m)


def _trust(client, files):
    """Make ``client`` refuse any host key not in ``files`` (RejectPolicy)."""
    import paramiko
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    for path in files:
        try:
            client.load_host_keys(path)
        except (IOError, paramiko.SSHException) as exc:
            raise RemoteError("cannot read known_hosts file %s: %s" % (path, exc))


def _through(route, known, hops, name, answerer):
    """What the target's connection runs over: None (a TCP connection of its own), the
    ProxyCommand's pipe, or a ``direct-tcpip`` channel through the jump hosts.

    Each jump host is a connection of its own, over the previous one's
    channel, and its host key is checked against the same ``known_hosts``
    files as the target's (RejectPolicy): an unknown one is refused.
    The clients opened are appended to ``hops``.  A jump host that asks for
    a one-time code or password asks ``answerer``, as the target does.
    """
    import paramiko

    if route.proxy_command:
        try:
            return paramiko.ProxyCommand(route.proxy_command)
        except paramiko.SSHException as exc:
            raise RemoteError("machine %s: ssh_config's ProxyCommand cannot start: %s" % (name, exc))
    sock = None
    for i, hop in enumerate(route.jumps):
        where = "jump host %s (%s) of machine %s" % (hop.alias, hop.label, name)
        client = login.client(answerer, where)     # its login's prompts ask answerer
        _trust(client, known)
        hops.append(client)
        keys = [path for path in hop.identity_files if os.path.exists(path)]
        _login(lambda: client.connect(hop.hostname, port=hop.port, username=hop.user,
                                      key_filename=keys or None, sock=sock,
                                      timeout=hop.connect_timeout),
               route, i, where)
        transport = client.get_transport()
        transport.set_keepalive(hop.server_alive_interval)
        if sock is None:
            _no_delay(transport.sock)
        after = route.jumps[i + 1] if i + 1 < len(route.jumps) else route.target
        try:
            sock = transport.open_channel("direct-tcpip", (after.hostname, after.port), ("", 0),
                                          timeout=hop.connect_timeout)
        except (paramiko.SSHException, socket.error, EOFError) as exc:
            raise RemoteError("jump host %s (%s) of machine %s cannot reach %s:%d: %s"
                              % (hop.alias, hop.label, name, after.hostname, after.port,
                                 exc or type(exc).__name__))
    return sock


def _login(connect, route, index, where):
    """Call ``connect`` for the ``index``-th server on ``route`` (the jump hosts, then the
    target), called ``where``; a refusal is one line.

    A host key that is unknown or changed names the server refused and the
    commands that check and trust its key: ``ssh-keyscan`` run here for the
    first server on the way, on the server before it otherwise.
    """
    import paramiko

    jumps = route.jumps
    hop = jumps[index] if index < len(jumps) else route.target
    if hop is route.target and jumps:
        where += " (through jump host %s)" % ", ".join(j.alias for j in jumps)
    holder = route.known_hosts_files[0] if route.machine_known_hosts else "~/.ssh/known_hosts"
    scan = "ssh-keyscan -p %d %s" % (hop.port, shlex.quote(hop.hostname))
    if index > 0:
        before = jumps[index - 1]
        scan = "ssh %s-p %d %s %s" % (
            "-J %s " % shlex.quote(",".join(j.spec() for j in jumps[:index - 1])) if index > 1 else "",
            before.port, shlex.quote("%s@%s" % (before.user, before.hostname)), scan)
    try:
        connect()
    except paramiko.BadHostKeyException as exc:
        holder = _file_holding(hop.entry, route.known_hosts_files) or holder
        raise RemoteError(
            "host key of %s has CHANGED (it now offers %s %s): refusing to connect. If the site "
            "announced a new key, check that fingerprint with them, then remove the old entry "
            "with: ssh-keygen -f %s -R '%s' and trust the new one with: %s >> %s"
            % (where, exc.key.get_name(), _sha256_fingerprint(exc.key), holder, hop.entry,
               scan, holder))
    except paramiko.SSHException as exc:
        if "not found in known_hosts" in str(exc):
            raise RemoteError(
                "host key of %s is not known: refusing to connect. Check the key's "
                "fingerprint with the site, then trust it with: %s >> %s" % (where, scan, holder))
        raise RemoteError("cannot connect to %s: %s" % (where, exc))
    except (socket.error, EOFError) as exc:
        raise RemoteError("cannot connect to %s: %s" % (where, exc or type(exc).__name__))


def _file_holding(entry, files):
    """The known_hosts file among ``files`` that has a key for ``entry``."""
    import paramiko
    for path in files:
        try:
            if paramiko.HostKeys(path).lookup(entry):
                return path
        except (IOError, paramiko.SSHException):
            continue
    return None


class SSHRemote(Remote):
    """One SSH connection, opened on first use and shared by all threads.

    Host keys are always verified: the system and user ``known_hosts`` files
    are loaded, plus the machine's own ``known_hosts`` if it names one, and an
    unknown or changed key refuses the connection with a message saying how
    to check and trust it.
    """

    #: who answers the server's login prompts (a one-time code ...): an
    #: :class:`hpcdo.remote.auth.Answerer` (terminal, else askpass) unless set
    answerer = None

    def __init__(self, host, user=None, port=None, identity_file=None,
                 known_hosts=None, connect_timeout=None, name=None, proxy_jump=None, ssh_config=None):
        # ``host`` may be an ssh_config alias; the values given are the machine
        # file's, None where it sets none: ssh_config then decides, as for ``ssh``
        self.name = name or host
        self.identity_file = identity_file
        self.known_hosts = known_hosts
        self.route = sshconfig.resolve(host, user=user, port=port, identity_file=identity_file,
                                       proxy_jump=proxy_jump, connect_timeout=connect_timeout,
                                       known_hosts=known_hosts, config=ssh_config, name=self.name)
        target = self.route.target
        self.hostname, self.user, self.port = target.hostname, target.user, target.port
        self.connect_timeout = target.connect_timeout
        self.host = "%s@%s:%d" % (self.user, self.hostname, self.port)
        self._hops = []
        self._conn = None
        self._refused = None
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------
    def _transport(self):
        with self._lock:
            if self._refused is not None:
                raise self._refused      # say it once per invocation, not once per task
            if self._conn is None or not self._conn.is_connected:
                try:
                    self._conn = self._open()
                except RemoteError as exc:
                    self._refused = exc
                    raise
            return self._conn.transport

    def connect(self):
        self._transport()

    def is_connected(self):
        """True while a connection is open (no refusal kept, no dead transport)."""
        with self._lock:
            return self._refused is None and self._conn is not None and self._conn.is_connected

    def _open(self):
        import fabric
        import paramiko

        target = self.route.target
        kwargs = {}
        if self.identity_file:
            path = os.path.expanduser(self.identity_file)
            if not os.path.exists(path):
                raise RemoteError("machine %s: identity_file %s does not exist" % (self.name, path))
        # the machine's key first, then ssh_config's IdentityFile (one missing is skipped, as by ssh)
        keys = [path for path in target.identity_files if os.path.exists(path)]
        if keys:
            kwargs["key_filename"] = keys
        answerer = self.answerer or auth.Answerer(self.name)
        # ssh_config was read by sshconfig; fabric must not read it again: the jump
        # hosts it makes of a ProxyJump line take any host key (AutoAddPolicy)
        conn = fabric.Connection(target.hostname, user=target.user, port=target.port,
                                 connect_timeout=target.connect_timeout, connect_kwargs=kwargs,
                                 gateway=False, config=fabric.Config(ssh_config=paramiko.SSHConfig()))
        # a login's prompts (a code, a password, a key's passphrase) go to the terminal or
        # askpass, never paramiko's input(), and a password- or code-only login is asked too
        conn.client = login.client(answerer, self._where())
        known = self._known_hosts_files()
        _trust(conn.client, known)
        start = time.monotonic()
        hops = []
        try:
            sock = _through(self.route, known, hops, self.name, answerer)
            if sock is not None:
                conn.connect_kwargs["sock"] = sock
            _login(conn.open, self.route, len(self.route.jumps), self._where())
        except BaseException:
            for client in reversed(hops):
                client.close()
            raise
        finally:
            trace.record("connect", self.host, time.monotonic() - start, what="connect")
        for client in reversed(self._hops):     # the jump hosts of a connection that died
            client.close()
        self._hops = hops
        conn.transport.set_keepalive(target.server_alive_interval)
        _no_delay(conn.transport.sock)
        return conn

    def _known_hosts_files(self):
        """The known_hosts files that exist: the machine's, then ssh_config's (or OpenSSH's default) ones."""
        if self.known_hosts and not os.path.exists(os.path.expanduser(self.known_hosts)):
            raise RemoteError("machine %s: known_hosts file %s does not exist"
                              % (self.name, self.known_hosts))
        return [path for path in self.route.known_hosts_files if os.path.exists(path)]

    def _where(self):
        return "machine %s (%s)" % (self.name, self.host)

    # -- commands ---------------------------------------------------------
    def _run(self, script, chunks, sink, counter):
        chan = self._open_channel()
        try:
            _exec(chan, "sh -s" if script is None else "sh -c " + shlex.quote(script))
            counter.started = True
        except (socket.error, EOFError, Exception) as exc:
            raise RemoteError("lost the connection to %s: %s" % (self._where(), exc))
        try:
            out, err = _pump(chunks, chan.sendall, chan.shutdown_write,
                             chan.recv, chan.recv_stderr, sink, counter, abort=chan.close)
            code = chan.recv_exit_status()
        finally:
            chan.close()
        if code == -1:
            raise RemoteError("lost the connection to %s while a command ran (or the server "
                              "refused to run it)" % self._where())
        return Result(code, out, err)

    def _open_channel(self):
        """A new channel; a connection found dead before anything ran is opened again once.

        A connection kept for long (``persist``) can die quietly: a laptop's
        sleep, a login node's restart.  Nothing has run on it yet, so trying
        again on a fresh connection is safe.
        """
        for attempt in (1, 2):
            transport = self._transport()
            try:
                return transport.open_session(window_size=WINDOW_SIZE)
            except (socket.error, EOFError, Exception) as exc:
                self.close()
                if attempt == 2:
                    raise RemoteError("lost the connection to %s: %s" % (self._where(), exc))

    def close(self):
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            for client in reversed(self._hops):
                client.close()
            self._hops = []
