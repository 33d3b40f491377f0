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
empty frame ends a stream.  ``{"ping": true}`` is answered with the agent's
hpcdo version, code identity, pid and count of commands served;
``{"retire": true}`` makes it stop taking connections and exit once the
commands it is running have ended.

An agent serves only calls running the same code as itself: another
checkout, version or edit of hpcdo may speak another protocol or treat the
machine differently.  The code's identity (the version and a hash of the
package's sources) is part of the socket's name, so the agents of two
checkouts coexist and calls alternating between them each reuse their own;
an agent found on this code's socket that reports other code (one started
by hand, or from files edited since) is retired and replaced.  An agent
retired, replaced or idle long enough finishes what it is running before
it closes the connection, and a call whose agent is gone between two
commands starts a new one: nothing had run, so nothing runs twice.
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

from .. import HpcdoError, RemoteError, __version__
from . import auth
from .connection import CHUNK, Remote, Result
from .ssh import SSHRemote

#: the directory holding the hpcdo package this process runs
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_identity = []


def code_identity():
    """A hash of the hpcdo package's Python sources (names and contents), computed once.

    Two checkouts with the same version number but different code differ
    here; reading the package's files costs about a millisecond.
    """
    if not _identity:
        digest = hashlib.sha256()
        for top, dirs, files in os.walk(PACKAGE):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(top, name)
                try:
                    with open(path, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                digest.update(b"%s\0%d\0" % (os.path.relpath(path, PACKAGE).encode(), len(data)))
                digest.update(data)
        _identity.append(digest.hexdigest()[:20])
    return _identity[0]


def socket_path(params):
    """Where the agent of this code for these connection settings listens (a 0700 directory of the user's)."""
    base = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.hpcdo"), "agents")
    os.makedirs(base, mode=0o700, exist_ok=True)
    os.chmod(base, 0o700)
    key = hashlib.sha256(json.dumps({"params": params, "version": __version__, "code": code_identity()},
                                    sort_keys=True).encode()).hexdigest()[:20]
    return os.path.join(base, key + ".sock")


def _ours(hello):
    """True if an agent's answer to a ping says it runs this very code."""
    return hello.get("version") == __version__ and hello.get("code") == code_identity()


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
    """A remote whose commands go through the machine's persistent agent.

    The agent has no terminal: a login prompt it meets while connecting is
    asked of this call, over the agent's stdin/stdout pipes, and answered by
    ``answerer`` (the terminal, else askpass; :mod:`hpcdo.remote.auth`).
    """

    #: who answers the agent's login prompts: an :class:`hpcdo.remote.auth.Answerer` unless set
    answerer = None

    def __init__(self, params, persist, name):
        self.params = params
        self.persist = persist
        self.name = name
        # user and port as the machine file says (None: the agent's ssh_config decides)
        self.host = "%s%s%s" % (params["user"] + "@" if params["user"] else "", params["host"],
                                ":%d" % params["port"] if params["port"] else "")
        self.path = socket_path(params)
        self._lock = threading.Lock()
        self._started = False
        self._refused = None

    def connect(self):
        self._ensure_agent()

    def _ensure_agent(self, again=False):
        """Make sure an agent of this code listens on the socket; ``again``: the one used is gone."""
        with self._lock:
            if self._refused is not None:
                raise self._refused      # say it once per invocation, not once per task
            if again:
                self._started = False
            if self._started:
                return
            hello = _hello(self.path)
            if hello is not None and _ours(hello):
                self._started = True
                return
            if hello is not None:
                _retire(self.path)       # other code: it ends what it runs, then exits
            argv = [sys.executable, "-m", "hpcdo.remote.agent", json.dumps(self.params), str(self.persist),
                    self.path, self.name]
            # the agent must import this very package, whatever cwd="/" and sys.path would find
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(PACKAGE)] + (
                [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, start_new_session=True, cwd="/", env=env)
            # the pipes carry the agent's login prompts and their answers, then its last word
            answer = auth.answer_agent(proc.stdout, proc.stdin,
                                       self.answerer or auth.Answerer(self.name, kept=True)).strip()
            proc.stdout.close()
            try:
                proc.stdin.close()
            except OSError:
                pass
            if answer != "ready":
                proc.wait(timeout=10)
                self._refused = RemoteError(answer[len("error: "):] if answer.startswith("error: ") else
                                            "the connection agent for %s did not start" % self.name)
                raise self._refused
            self._started = True

    def _open(self):
        """A connection to the agent; one gone since the last command (retired, replaced, idle
        too long) is started again, as nothing has been sent to it."""
        self._ensure_agent()
        for attempt in (1, 2):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                return sock
            except OSError as exc:
                sock.close()
                if attempt == 2:
                    raise RemoteError("lost the connection agent for %s: %s" % (self.name, exc))
                self._ensure_agent(again=True)

    def _run(self, script, chunks, sink, counter):
        sock = self._open()
        rfile = _reader(sock)
        try:
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


def _ask(path, request):
    """The agent's one-line answer to ``request`` on ``path``, or None if none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    rfile = _reader(sock)
    try:
        sock.connect(path)
        sock.sendall((json.dumps(request) + "\n").encode())
        answer = _recv_line(rfile)
        return answer if isinstance(answer, dict) else None
    except (OSError, EOFError, ValueError):
        return None
    finally:
        rfile.close()
        sock.close()


def _hello(path):
    """What the agent on ``path`` says of itself (version, code, pid, served), or None."""
    answer = _ask(path, {"ping": True})
    return answer if answer is not None and answer.get("pong") is True else None


def _retire(path):
    """Ask the agent on ``path`` to retire: it ends what it runs, then exits."""
    return _ask(path, {"retire": True}) is not None


# -- the agent process ----------------------------------------------------------

def _is(path, inode):
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def serve(params, persist, path, name):
    """Connect, say 'ready' on stdout, then serve commands until idle for ``persist`` seconds,
    retired, or replaced on ``path`` by another agent; then end the commands running, and exit."""
    try:
        remote = SSHRemote(params["host"], user=params["user"], port=params["port"],
                           identity_file=params["identity_file"], known_hosts=params["known_hosts"], name=name,
                           proxy_jump=params.get("proxy_jump"), connect_timeout=params.get("connect_timeout"))
    except HpcdoError as exc:      # ssh_config unreadable, a bad jump host: said by the call that waits
        print("error: %s" % exc, flush=True)
        return 1
    # login prompts go to the call that started this agent, over the pipes; only while it waits
    remote.answerer = auth.PipeAnswerer(name, sys.stdin.buffer, sys.stdout.buffer)
    try:
        remote.connect()          # traced, in the trace file of the call that started the agent
    except RemoteError as exc:
        print("error: %s" % exc, flush=True)
        return 1
    remote.answerer.close()
    sys.stdin.close()
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
    state = {"last": time.monotonic(), "busy": 0, "served": 0, "retired": False, "lost": False}
    lock = threading.Lock()
    me = {"pong": True, "version": __version__, "code": code_identity(), "pid": os.getpid()}
    print("ready", flush=True)
    sys.stdout.close()

    def handle(conn):
        rfile = _reader(conn)
        try:
            request = _recv_line(rfile)
            if not isinstance(request, dict):
                raise ValueError("not a request")
            if request.get("ping"):
                with lock:
                    answer = dict(me, served=state["served"])
                conn.sendall((json.dumps(answer) + "\n").encode())
                return
            if request.get("retire"):
                with lock:
                    state["retired"] = True
                conn.sendall(b'{"retired": true}\n')
                return
            script = request.get("script")
            if script is not None and not isinstance(script, str):
                raise ValueError("not a script")
            with lock:
                state["served"] += 1
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
                if not remote.is_connected():
                    # the connection is gone and could not be opened again: an
                    # agent lives for its connection, so it retires, and the next
                    # call starts one that tries afresh (the refusal would
                    # otherwise be kept, and each refused call reset the idle timer)
                    with lock:
                        state["retired"] = state["lost"] = True
                _send_frame(conn, b"")
                conn.sendall((json.dumps({"error": str(exc)}) + "\n").encode())
        except (OSError, EOFError, ValueError):
            pass
        finally:
            rfile.close()
            conn.close()
            with lock:
                state["busy"] -= 1
                state["last"] = time.monotonic()

    def start(conn):
        with lock:
            state["busy"] += 1      # counted before the thread runs: never closed under it
        threading.Thread(target=handle, args=(conn,), daemon=True).start()

    server.settimeout(1.0)
    try:
        while True:
            try:
                start(server.accept()[0])
            except socket.timeout:
                with lock:
                    idle = state["busy"] == 0 and time.monotonic() - state["last"] > persist
                if idle and _is(path, mine):
                    try:
                        os.remove(path)     # no new client from now on: they start a new agent
                    except OSError:
                        pass
                if idle or not _is(path, mine):
                    break         # idle long enough, or another agent took the socket over
            with lock:
                lost = state["lost"]
                if state["retired"]:
                    if lost and _is(path, mine):
                        try:
                            os.remove(path)     # the next call starts an agent of its own
                        except OSError:
                            pass
                    break         # other code's client takes the socket over: leave it to it
        # clients that connected before the socket went are served all the same
        server.setblocking(False)
        while True:
            try:
                conn = server.accept()[0]
            except OSError:
                break
            conn.setblocking(True)
            start(conn)
    finally:
        server.close()
        while True:               # end what is running before closing its connection
            with lock:
                if state["busy"] == 0:
                    break
            time.sleep(0.05)
        remote.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve(json.loads(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]))
