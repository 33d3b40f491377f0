"""A loopback TCP relay that drops connections after N bytes, for fault-injection tests.

It sits between hpcdo and the test cluster's sshd (point a machine's
``port=`` at ``relay.port`` and its ``known_hosts=`` at a file written by
:func:`known_hosts_for`).  Bytes pass through unchanged until the relay is
*armed*: the next ``connections`` connections it accepts are cut, with a
TCP reset in both directions, as soon as ``after`` bytes have crossed them
in the chosen direction (``"up"``: hpcdo to sshd, ``"down"``: sshd to
hpcdo).  Exactly ``after`` bytes are forwarded, so the cut lands in the
middle of whatever stream is flowing at that point.  Later connections pass
untouched, so the next call can complete.

The target can be switched while the relay runs (:meth:`CutRelay.retarget`):
the same host and port then answer with another server, which is how a
changed host key is shown to hpcdo.

Only loopback addresses may be used, as elsewhere in the test suite.
"""

import ipaddress
import os
import socket
import struct
import sys
import threading

# the bench's relay module writes the known_hosts file a relay port needs
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "bench"))
from relay import known_hosts_for  # noqa: E402,F401

CHUNK = 64 * 1024


def _check_loopback(host):
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("cutrelay: %s is not a loopback address" % host)


class _Conn:
    def __init__(self, relay, client, server, cut):
        self.relay = relay
        self.client = client
        self.server = server
        self.cut = cut                       # None or (direction, after)
        self.count = {"up": 0, "down": 0}
        self.closed = False
        self.was_cut = False
        self.lock = threading.Lock()

    def start(self):
        for direction, src, dst in (("up", self.client, self.server), ("down", self.server, self.client)):
            threading.Thread(target=self._pump, args=(direction, src, dst), daemon=True,
                             name="cutrelay-%s" % direction).start()

    def _pump(self, direction, src, dst):
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                if self.cut and self.cut[0] == direction:
                    room = self.cut[1] - self.count[direction]
                    if len(data) >= room:
                        if room > 0:
                            dst.sendall(data[:room])
                            self.count[direction] += room
                        self.drop()
                        return
                dst.sendall(data)
                self.count[direction] += len(data)
        except OSError:
            self.close()

    def drop(self):
        """Cut the connection like a dead link: a reset on both sides, nothing more forwarded."""
        with self.lock:
            if self.closed:
                return
            self.was_cut = True
        self.relay._note_cut(self)
        for sock in (self.client, self.server):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.close()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass


class CutRelay:
    """Relay 127.0.0.1:<free port> to ``target``; cut armed connections after N bytes."""

    def __init__(self, target=("127.0.0.1", 2222)):
        _check_loopback(target[0])
        self.target = (target[0], int(target[1]))
        self._lock = threading.Lock()
        self._armed = []                     # [(direction, after)] for the next connections
        self.conns = []
        self.cuts = []                       # (direction, bytes forwarded that way) per cut
        self._sock = None
        self._stop = threading.Event()
        self.port = None

    def start(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(32)
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True, name="cutrelay-accept")
        self._thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    def arm(self, direction, after, connections=1):
        """Cut after ``after`` more bytes going ``direction``: every connection open now
        (a kept connection, such as the persistent agent's) and each of the next
        ``connections`` new ones (counted from their first byte)."""
        assert direction in ("up", "down")
        with self._lock:
            self._armed = [(direction, int(after))] * connections
            for conn in self.conns:
                if not conn.closed:
                    conn.cut = (direction, conn.count[direction] + int(after))

    def disarm(self):
        with self._lock:
            self._armed = []
            for conn in self.conns:
                conn.cut = None

    def retarget(self, target):
        """Send later connections to another loopback server (already open ones stay)."""
        _check_loopback(target[0])
        with self._lock:
            self.target = (target[0], int(target[1]))

    def _note_cut(self, conn):
        with self._lock:
            if conn.cut:             # an armed cut; drop_all() cuts unarmed ones too
                self.cuts.append((conn.cut[0], conn.count[conn.cut[0]]))
            else:
                self.cuts.append(("both", conn.count["up"] + conn.count["down"]))

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                target = self.target
                cut = self._armed.pop(0) if self._armed else None
            try:
                server = socket.create_connection(target, timeout=10)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            conn = _Conn(self, client, server, cut)
            with self._lock:
                self.conns.append(conn)
            conn.start()

    def drop_all(self):
        """Reset every open connection now."""
        with self._lock:
            conns = list(self.conns)
        for conn in conns:
            conn.drop()

    def close(self):
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        with self._lock:
            conns = list(self.conns)
        for conn in conns:
            conn.close()
