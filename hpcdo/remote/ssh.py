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
from . import trace
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


class SSHRemote(Remote):
    """One SSH connection, opened on first use and shared by all threads.

    Host keys are always verified: the system and user ``known_hosts`` files
    are loaded, plus the machine's own ``known_hosts`` if it names one, and an
    unknown or changed key refuses the connection with a message saying how
    to check and trust it.
    """

    def __init__(self, host, user=None, port=22, identity_file=None,
                 known_hosts=None, connect_timeout=30, name=None):
        self.hostname = host
        self.user = user
        self.port = int(port or 22)
        self.identity_file = identity_file
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self.name = name or host
        self.host = "%s@%s:%d" % (user, host, self.port) if user else "%s:%d" % (host, self.port)
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

        kwargs = {}
        if self.identity_file:
            path = os.path.expanduser(self.identity_file)
            if not os.path.exists(path):
                raise RemoteError("machine %s: identity_file %s does not exist" % (self.name, path))
            kwargs["key_filename"] = [path]
        conn = fabric.Connection(self.hostname, user=self.user, port=self.port,
                                 connect_timeout=self.connect_timeout,
                                 connect_kwargs=kwargs)
        client = conn.client
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        for path in self._known_hosts_files(conn):
            try:
                client.load_host_keys(path)
            except (IOError, paramiko.SSHException) as exc:
                raise RemoteError("cannot read known_hosts file %s: %s" % (path, exc))
        start = time.monotonic()
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            entry = self.hostname if self.port == 22 else "[%s]:%d" % (self.hostname, self.port)
            holder = self._file_holding(entry, self._known_hosts_files(conn)) or "~/.ssh/known_hosts"
            raise RemoteError(
                "host key of %s has CHANGED (it now offers %s %s): refusing to connect. If the site "
                "announced a new key, check that fingerprint with them, then remove the old entry "
                "with: ssh-keygen -f %s -R '%s' and trust the new one with: ssh-keyscan -p %d %s >> %s"
                % (self._where(), exc.key.get_name(), _sha256_fingerprint(exc.key), holder, entry,
                   self.port, self.hostname, holder))
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise RemoteError(
                    "host key of %s is not known: refusing to connect. Check the key's "
                    "fingerprint with the site, then trust it with: ssh-keyscan -p %d %s >> %s"
                    % (self._where(), self.port, self.hostname,
                       self.known_hosts or "~/.ssh/known_hosts"))
            raise RemoteError("cannot connect to %s: %s" % (self._where(), exc))
        except (socket.error, EOFError) as exc:
            raise RemoteError("cannot connect to %s: %s" % (self._where(), exc))
        finally:
            trace.record("connect", self.host, time.monotonic() - start, what="connect")
        conn.transport.set_keepalive(30)
        _no_delay(conn.transport.sock)
        return conn

    @staticmethod
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

    def _known_hosts_files(self, conn):
        files = []
        for path in ("~/.ssh/known_hosts", conn.ssh_config.get("userknownhostsfile"), self.known_hosts):
            if not path:
                continue
            for one in str(path).split():
                one = os.path.expanduser(one)
                if os.path.exists(one) and one not in files:
                    files.append(one)
        if self.known_hosts and os.path.expanduser(self.known_hosts) not in files:
            raise RemoteError("machine %s: known_hosts file %s does not exist"
                              % (self.name, self.known_hosts))
        return files

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
