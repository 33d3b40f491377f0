"""Looking into a running job: a local port forwarded to the port it listens on, and its output followed.

``doit machine=X steer RUN`` (:mod:`hpcdo.steps.steer`) listens on a local
port; each connection to it is carried to the host and port the run's
program published (its ``steer.json``), the way the machine is reached:

* the built-in ``localhost``: a plain TCP connection from here;
* paramiko (:class:`hpcdo.remote.ssh.SSHRemote`): a ``direct-tcpip``
  channel of the connection, which already passes the jump hosts, so the
  login node opens the connection to the compute node;
* ``transport: openssh``: ``ssh -W host:port`` through the master
  connection, one per local connection (OpenSSH's stdio forwarding, which
  the master multiplexes as it does commands).

The two scripts here are the remote side: ``steer_where.sh`` reads the
run's ``steer.json`` and exit marker in one command, ``steer_tail.sh``
follows its ``job.out`` for a while and says where it stopped.
"""

import json
import re
import socket
import subprocess
import threading

from .. import HpcdoError
from .scripts import prelude
from .shell import quoted, render

#: what a published host may be: a host name or an IPv4/IPv6 address (it is handed to ssh -W)
HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,253}\Z")
#: how long opening one forwarded connection may take, seconds
CONNECT_TIMEOUT = 15
CHUNK = 1 << 16


def where_script(remote_root, rundir):
    """One command: the run's steer.json and whether its job has ended (``@norun``, ``@ended``, ``@steer``)."""
    return prelude(remote_root) + render("steer_where.sh", rundir=quoted(rundir))


def follow_script(remote_root, rundir, offset, seconds):
    """Follow the run's job.out from ``offset`` for up to ``seconds``; ``@tail OFFSET ENDED`` on stderr."""
    return prelude(remote_root) + render("steer_tail.sh", rundir=quoted(rundir), offset=int(offset),
                                         seconds=int(seconds))


def parse_where(text):
    """(ended, address or None, no_run) from ``where_script``'s answer; ``address``: (host, port).

    A steer.json that is no JSON object with a host name and a port 1..65535 is an error:
    its host would reach ``ssh -W``.
    """
    ended = no_run = False
    address = None
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "@norun":
            no_run = True
        elif word == "@ended":
            ended = True
        elif word == "@steer":
            address = parse_published(rest)
    return ended, address, no_run


def parse_published(text):
    """(host, port) from the text of a steer.json; HpcdoError if it says neither plainly."""
    try:
        data = json.loads(text)
        host, port = data["host"], data["port"]
    except (ValueError, TypeError, KeyError):
        raise HpcdoError("the run's steer.json is not a JSON object with host and port: %r" % text[:200])
    if not isinstance(host, str) or not HOST.match(host) or isinstance(port, bool) or \
            not isinstance(port, int) or not 0 < port < 65536:
        raise HpcdoError("the run's steer.json names no usable host and port: %r" % text[:200])
    return host, port


def parse_follow(stderr_text):
    """(offset, ended) from ``follow_script``'s stderr, or None when it said nothing (it did not run)."""
    for line in reversed(stderr_text.splitlines()):
        words = line.split()
        if len(words) >= 3 and words[0] == "@tail" and words[1].isdigit():
            return int(words[1]), words[2] == "1"
    return None


# -- the two ends of one forwarded connection ----------------------------------------

class SocketEnd:
    """A TCP socket as one end of a relay."""

    def __init__(self, sock):
        self.sock = sock

    def recv(self, n):
        return self.sock.recv(n)

    def sendall(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)     # wakes a relay blocked reading it
        except OSError:
            pass
        self.sock.close()


class ChannelEnd(SocketEnd):
    """A paramiko channel (``direct-tcpip``) as one end of a relay."""

    def shutdown_write(self):
        try:
            self.sock.shutdown_write()
        except Exception:
            pass


class ProcessEnd:
    """``ssh -W host:port``: its stdin and stdout are the connection."""

    def __init__(self, proc):
        self.proc = proc

    def recv(self, n):
        return self.proc.stdout.read1(n)

    def sendall(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def shutdown_write(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def direct(host, port):
    """A connector that opens a TCP connection from this computer (the built-in localhost)."""
    def connect():
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        sock.settimeout(None)
        return SocketEnd(sock)
    return connect


def through_paramiko(remote, host, port):
    """A connector that opens a ``direct-tcpip`` channel of ``remote``'s (an SSHRemote) connection."""
    def connect():
        transport = remote._transport()
        try:
            chan = transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0),
                                          timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            raise OSError("%s:%d refused through %s: %s" % (host, port, remote.name, exc))
        return ChannelEnd(chan)
    return connect


def through_openssh(remote, host, port):
    """A connector that runs ``ssh -W host:port`` through ``remote``'s (an OpenSSHRemote) master."""
    def connect():
        remote.connect()
        proc = subprocess.Popen(remote._argv("-W", "%s:%d" % (host, port), "--", remote.alias),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        return ProcessEnd(proc)
    return connect


class Forwarder:
    """A local listening port; each connection to it is relayed to an end ``connect()`` opens.

    ``serve`` accepts in a thread; ``close`` stops accepting and ends every relay.
    ``failures``: why connections could not be carried (one line each).
    """

    def __init__(self, connect, port=0, bind="127.0.0.1"):
        self.connect = connect
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind((bind, int(port)))
        except OSError as exc:
            self.server.close()
            raise HpcdoError("cannot listen on %s:%s here: %s" % (bind, port, exc.strerror or exc))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.address = self.server.getsockname()[:2]
        self.failures = []
        self.carried = 0
        self._open = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = None

    def serve(self):
        self._thread = threading.Thread(target=self._accept, name="hpcdo-tunnel", daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._closed.is_set():
            try:
                client, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._carry, args=(SocketEnd(client),), daemon=True).start()

    def _carry(self, local):
        try:
            far = self.connect()
        except Exception as exc:
            self.failures.append(str(exc) or exc.__class__.__name__)
            local.close()
            return
        with self._lock:
            if self._closed.is_set():
                far.close()
                local.close()
                return
            self._open.update((local, far))
            self.carried += 1
        back = threading.Thread(target=_relay, args=(far, local), daemon=True)
        back.start()
        _relay(local, far)
        back.join()
        with self._lock:
            self._open.difference_update((local, far))
        far.close()
        local.close()

    def close(self):
        self._closed.set()
        self.server.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            ends, self._open = list(self._open), set()
        for end in ends:
            try:
                end.close()
            except Exception:
                pass


def _relay(src, dst):
    """Copy ``src`` to ``dst`` until ``src`` ends, then end ``dst``'s sending side."""
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
    except Exception:
        pass
    finally:
        dst.shutdown_write()
