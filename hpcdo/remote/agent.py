"""A connection that outlives one invocation, like OpenSSH's ControlPersist.

Each ``doit`` call is a new process; without help it pays for the SSH
library's import and the handshake's round trips every time, and a user
behind two-factor login types a code every time.  With ``persist: <seconds>``
on a machine, the first call starts a small agent process that holds the
SSH connection and listens on a Unix socket only its user can open; later
calls send their scripts through it and pay one round trip per command.
The agent exits after ``persist`` seconds without a request.

Protocol, per client connection (one command): the client sends one JSON
line ``{"script": ..., "what": ...}`` then stdin as frames; the agent
answers with stdout frames, then one JSON line with the exit code and
stderr.  A frame is a 4-byte big-endian length and that many bytes; an
empty frame ends a stream.
"""

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from .. import RemoteError
from .connection import CHUNK, Remote, Result, SSHRemote


def socket_path(params):
    """Where the agent for these connection settings listens (a 0700 directory of the user's)."""
    base = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.hpcdo"), "agents")
    os.makedirs(base, mode=0o700, exist_ok=True)
    os.chmod(base, 0o700)
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:20]
    return os.path.join(base, key + ".sock")


def _send_frame(sock, data):
    sock.sendall(struct.pack(">I", len(data)) + data)


def _reader(sock):
    """A buffered reader over ``sock``: one system call per block, not per byte.

    A request line carries the whole script (tens of KB for a probe of
    hundreds of runs); read a byte at a time it cost 20 ms per command.
    The socket's descriptor stays open until the reader is closed too.
    """
    return sock.makefile("rb", buffering=CHUNK * 4)


def _recv_exact(rfile, n):
    data = rfile.read(n)
    if len(data) < n:
        raise EOFError("agent connection closed")
    return data


def _recv_frames(rfile):
    while True:
        (n,) = struct.unpack(">I", _recv_exact(rfile, 4))
        if n == 0:
            return
        yield _recv_exact(rfile, n)


def _recv_line(rfile):
    data = rfile.readline()
    if not data.endswith(b"\n"):
        raise EOFError("agent connection closed")
    return json.loads(data)


class AgentRemote(Remote):
    """A remote whose commands go through the machine's persistent agent."""

    def __init__(self, params, persist, name):
        self.params = params
        self.persist = persist
        self.name = name
        self.host = "%s@%s:%d" % (params["user"], params["host"], params["port"]) if params["user"] \
            else "%s:%d" % (params["host"], params["port"])
        self.path = socket_path(params)
        self._lock = threading.Lock()
        self._started = False
        self._refused = None

    def connect(self):
        self._ensure_agent()

    def _ensure_agent(self):
        with self._lock:
            if self._refused is not None:
                raise self._refused      # say it once per invocation, not once per task
            if self._started or _alive(self.path):
                self._started = True
                return
            argv = [sys.executable, "-m", "hpcdo.remote.agent", json.dumps(self.params), str(self.persist),
                    self.path, self.name]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
            answer = proc.stdout.readline().decode("utf-8", "replace").strip()
            proc.stdout.close()
            if answer != "ready":
                proc.wait(timeout=10)
                self._refused = RemoteError(answer[len("error: "):] if answer.startswith("error: ") else
                                            "the connection agent for %s did not start" % self.name)
                raise self._refused
            self._started = True

    def _run(self, script, chunks, sink, counter):
        self._ensure_agent()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        rfile = _reader(sock)
        try:
            sock.connect(self.path)
            sock.sendall((json.dumps({"script": script}) + "\n").encode())
            counter.started = True
            feeder_error = []

            def feed():
                try:
                    for block in chunks:
                        _send_frame(sock, block)
                    _send_frame(sock, b"")
                except OSError:
                    pass
                except Exception as exc:
                    feeder_error.append(exc)

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            parts = []
            for block in _recv_frames(rfile):
                counter.received += len(block)
                if sink is not None:
                    sink.write(block)
                else:
                    parts.append(block)
            end = _recv_line(rfile)
            feeder.join()
            if feeder_error:
                raise feeder_error[0]
        except (OSError, EOFError, ValueError) as exc:
            raise RemoteError("lost the connection agent for %s: %s" % (self.name, exc))
        finally:
            rfile.close()
            sock.close()
        if "error" in end:
            raise RemoteError(end["error"])
        return Result(end["exit"], None if sink is not None else b"".join(parts), end["stderr"].encode())


def _alive(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rfile = _reader(sock)
    try:
        sock.connect(path)
        sock.sendall(b'{"ping": true}\n')
        return _recv_line(rfile).get("pong") is True
    except (OSError, EOFError, ValueError):
        return False
    finally:
        rfile.close()
        sock.close()


# -- the agent process ----------------------------------------------------------

def _is(path, inode):
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def serve(params, persist, path, name):
    """Connect, say 'ready' on stdout, then serve commands until idle for ``persist`` seconds."""
    remote = SSHRemote(params["host"], user=params["user"], port=params["port"],
                       identity_file=params["identity_file"], known_hosts=params["known_hosts"], name=name)
    try:
        remote.connect()          # traced, in the trace file of the call that started the agent
    except RemoteError as exc:
        print("error: %s" % exc, flush=True)
        return 1
    os.environ.pop("HPCDO_TRACE", None)   # commands are traced by the calls that send them
    tmp = "%s.%d" % (path, os.getpid())
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(tmp)
    finally:
        os.umask(old)
    server.listen(64)
    os.replace(tmp, path)          # atomically take over from a dead agent's socket
    mine = os.stat(path).st_ino
    last = [time.monotonic()]
    busy = [0]
    lock = threading.Lock()
    print("ready", flush=True)
    sys.stdout.close()

    def handle(conn):
        with lock:
            busy[0] += 1
        rfile = _reader(conn)
        try:
            request = _recv_line(rfile)
            if request.get("ping"):
                conn.sendall(b'{"pong": true}\n')
                return
            script = request["script"]
            stdin = _recv_frames(rfile)

            class Sink:
                def write(self, data):
                    _send_frame(conn, data)
            try:
                result = remote.run(script, stdin=stdin, sink=Sink(), check=False)
                for _ in stdin:     # drain what the script did not read
                    pass
                _send_frame(conn, b"")
                conn.sendall((json.dumps({"exit": result.exit_code,
                                          "stderr": result.stderr.decode("utf-8", "replace")}) + "\n").encode())
            except RemoteError as exc:
                _send_frame(conn, b"")
                conn.sendall((json.dumps({"error": str(exc)}) + "\n").encode())
        except (OSError, EOFError, ValueError):
            pass
        finally:
            rfile.close()
            conn.close()
            with lock:
                busy[0] -= 1
                last[0] = time.monotonic()

    server.settimeout(1.0)
    try:
        while True:
            try:
                conn, _addr = server.accept()
            except socket.timeout:
                with lock:
                    idle = busy[0] == 0 and time.monotonic() - last[0] > persist
                if idle or not _is(path, mine):
                    break         # idle long enough, or another agent took the socket over
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    finally:
        if _is(path, mine):
            try:
                os.remove(path)
            except OSError:
                pass
        server.close()
        remote.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve(json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]))
