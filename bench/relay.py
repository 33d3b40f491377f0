"""A loopback TCP relay that delays every chunk by a fixed time in each direction.

``tc netem`` is not available on the machines the benchmarks run on, so a
distant supercomputer is imitated in user space: the relay listens on
127.0.0.1 on a free port and forwards each connection to a loopback target
(the test cluster's sshd).  Every chunk read from one side is written to the
other side ``one_way_ms`` after it was read, while reading goes on: a delay
line, not stop-and-wait, so the relay adds latency but no throughput limit
of its own (beyond a generous cap on the bytes it holds per direction)::

    with Relay(("127.0.0.1", 2222), one_way_ms=25) as relay:   # 50 ms RTT
        ssh -p relay.port ...

The relay reads whatever the sender offers at once, so the kernel's TCP
windows never limit a transfer; what limits it over a long fat pipe is what
would on a real one once TCP has grown its window: the SSH channel windows.

Host-key checking stays on: :func:`known_hosts_for` writes a known_hosts file
trusting the target's host key under ``[127.0.0.1]:<relay port>``.
"""

import collections
import ipaddress
import os
import socket
import threading
import time

__all__ = ["Relay", "known_hosts_for"]

#: bytes read per recv
CHUNK = 256 * 1024
#: bytes one direction may hold in flight before the relay stops reading (back-pressure)
MAX_BUFFER = 64 << 20
#: how often blocked threads look at the stop flag
TICK = 0.1


def _check_loopback(host):
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError("relay: %r is not an IP address; only loopback addresses may be used" % (host,))
    if not addr.is_loopback:
        raise ValueError("relay: %s is not a loopback address; only loopback targets are allowed" % host)


class _Direction:
    """One direction of one connection: a reader thread and a writer thread around a queue."""

    def __init__(self, conn, src, dst, name):
        self.conn = conn
        self.src = src
        self.dst = dst
        self.name = name
        self.queue = collections.deque()     # (due time, bytes); b"" marks EOF
        self.buffered = 0
        self.cond = threading.Condition()
        self.bytes = 0
        self.chunks = 0
        self.done = False                    # EOF forwarded (or the connection failed)
        self.threads = [
            threading.Thread(target=self._read, name="relay-%s-read" % name, daemon=True),
            threading.Thread(target=self._write, name="relay-%s-write" % name, daemon=True),
        ]

    def start(self):
        for t in self.threads:
            t.start()

    def _read(self):
        delay = self.conn.relay.delay
        stop = self.conn.stop
        try:
            while not stop.is_set():
                data = self.src.recv(CHUNK)
                due = time.monotonic() + delay
                with self.cond:
                    # back-pressure only when an absurd amount is in flight
                    while self.buffered > MAX_BUFFER and not stop.is_set():
                        self.cond.wait(TICK)
                    self.queue.append((due, data))
                    self.buffered += len(data)
                    self.cond.notify_all()
                if not data:
                    return              # EOF queued; the writer forwards it after the delay
                self.bytes += len(data)
                self.chunks += 1
        except OSError:
            self.conn.fail()

    def _write(self):
        stop = self.conn.stop
        try:
            while not stop.is_set():
                with self.cond:
                    if not self.queue:
                        self.cond.wait(TICK)
                        continue
                    due, data = self.queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        # woken early only by stop (the head of a FIFO never changes)
                        self.cond.wait(min(wait, TICK))
                        continue
                    self.queue.popleft()
                    self.buffered -= len(data)
                    self.cond.notify_all()
                if not data:
                    try:
                        self.dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    break
                self.dst.sendall(data)
        except OSError:
            self.conn.fail()
        finally:
            self.done = True
            self.conn.direction_done()

    def wake(self):
        with self.cond:
            self.cond.notify_all()


class _Connection:
    def __init__(self, relay, client, server):
        self.relay = relay
        self.client = client
        self.server = server
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self.up = _Direction(self, client, server, "up")
        self.down = _Direction(self, server, client, "down")

    def start(self):
        self.up.start()
        self.down.start()

    def threads(self):
        return self.up.threads + self.down.threads

    def direction_done(self):
        if self.up.done and self.down.done:
            self.close()

    def fail(self):
        """A socket error on either side: drop the whole connection, like a reset."""
        self.close()

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.stop.set()
        for sock in (self.client, self.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)   # wakes a thread blocked in recv
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass
        self.up.wake()
        self.down.wake()
        self.relay._forget(self)


class Relay:
    """Relay 127.0.0.1:<free port> to ``target`` with ``one_way_ms`` of delay each way.

    ``relay.port`` is the port to connect to; ``relay.stats()`` the bytes and
    chunks relayed so far.  ``close()`` (or leaving the ``with`` block) closes
    every socket and joins every thread.
    """

    def __init__(self, target=("127.0.0.1", 2222), one_way_ms=25.0, listen_host="127.0.0.1", port=0):
        _check_loopback(target[0])
        _check_loopback(listen_host)
        self.target = (target[0], int(target[1]))
        self.one_way_ms = float(one_way_ms)
        if self.one_way_ms < 0:
            raise ValueError("relay: one_way_ms must be >= 0")
        self.delay = self.one_way_ms / 1000.0
        self._listen_host = listen_host
        self._want_port = int(port)
        self._sock = None
        self._accept_thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns = set()
        self._finished_threads = []
        self._totals = {"connections": 0, "bytes_up": 0, "bytes_down": 0}
        self.port = None

    # -- life cycle -------------------------------------------------------
    def start(self):
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._listen_host, self._want_port))
        sock.listen(64)
        sock.settimeout(TICK)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept, name="relay-accept", daemon=True)
        self._accept_thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def address(self):
        return (self._listen_host, self.port)

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break                  # listening socket closed
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, client, server)
            with self._lock:
                if self._stop.is_set():
                    client.close()
                    server.close()
                    break
                self._conns.add(conn)
                self._totals["connections"] += 1
            conn.start()

    def _forget(self, conn):
        with self._lock:
            if conn in self._conns:
                self._conns.discard(conn)
                self._totals["bytes_up"] += conn.up.bytes
                self._totals["bytes_down"] += conn.down.bytes
                self._finished_threads = [t for t in self._finished_threads if t.is_alive()]
                self._finished_threads.extend(conn.threads())

    def stats(self):
        """Connections accepted and bytes relayed each way (client→target is "up")."""
        with self._lock:
            out = dict(self._totals)
            for conn in self._conns:
                out["bytes_up"] += conn.up.bytes
                out["bytes_down"] += conn.down.bytes
            out["open"] = len(self._conns)
        return out

    def close(self, timeout=2.0):
        """Stop accepting, drop every connection, join every thread (within ``timeout``)."""
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        if self._accept_thread is not None:
            self._accept_thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()
        with self._lock:
            threads = list(self._finished_threads)
            self._finished_threads = []
        for t in threads:
            if t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if self._accept_thread is not None and self._accept_thread.is_alive():
            alive.append(self._accept_thread.name)
        return not alive


def known_hosts_for(port, source_known_hosts, dest_path, source=("127.0.0.1", 2222), host="127.0.0.1"):
    """Write ``dest_path`` trusting ``source``'s host key(s) under ``[host]:port``.

    The keys are looked up in ``source_known_hosts`` (hashed entries work
    too); with no key for ``source`` there, ValueError.  Returns ``dest_path``.
    """
    import paramiko

    keys = paramiko.HostKeys(os.path.expanduser(source_known_hosts))
    name = source[0] if int(source[1]) == 22 else "[%s]:%d" % (source[0], int(source[1]))
    found = keys.lookup(name)
    if not found:
        raise ValueError("no host key for %s in %s" % (name, source_known_hosts))
    pattern = host if int(port) == 22 else "[%s]:%d" % (host, int(port))
    lines = ["%s %s %s\n" % (pattern, key_type, found[key_type].get_base64()) for key_type in found.keys()]
    tmp = "%s.tmp.%d" % (dest_path, os.getpid())
    with open(tmp, "w") as fh:
        fh.writelines(lines)
    os.replace(tmp, dest_path)
    return dest_path


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="loopback TCP relay with a fixed one-way delay")
    parser.add_argument("--target-port", type=int, default=2222)
    parser.add_argument("--one-way-ms", type=float, default=25.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=600.0, help="run this long, then stop")
    args = parser.parse_args()
    with Relay(("127.0.0.1", args.target_port), one_way_ms=args.one_way_ms, port=args.port) as r:
        print("relaying 127.0.0.1:%d -> 127.0.0.1:%d with %.1f ms each way"
              % (r.port, args.target_port, args.one_way_ms), flush=True)
        end = time.monotonic() + args.seconds
        try:
            while time.monotonic() < end:
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        except KeyboardInterrupt:
            pass
