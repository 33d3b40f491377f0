"""One object owns one connection to one machine; everything remote goes through it.

A *remote* runs POSIX shell scripts on a machine and streams bytes in and
out of them.  Transfers are shell scripts too (``tar`` reading stdin or
writing stdout), so uploading many files, checking every step's state or
submitting a job each costs one round trip.

``LocalRemote`` is the embedded ``localhost`` machine: the same scripts run
through ``sh -c`` on this computer, in a session of their own, exactly as
they would over SSH.  :class:`hpcdo.remote.ssh.SSHRemote` opens one fabric
connection lazily, on first use, and shares it between threads (doit
``-n N``), through the same :func:`_pump`.
"""

import os
import shlex
import signal
import subprocess
import threading
import time

from .. import RemoteError
from . import trace

CHUNK = 1 << 16
#: Longest script sent as the command itself (``sh -c '<script>'``), counted
#: after quoting.  Linux takes one argument of up to 128 KiB and the login
#: shell adds its own words; a longer script goes by stdin (``sh -s``), which
#: costs a round trip more (measured: 0.156 s against 0.107 s at 50 ms RTT).
BIG_SCRIPT = 100 * 1024
#: Receive window of each SSH channel: how much the machine may send before
#: hpcdo acknowledges.  paramiko's default (2 MiB) caps a download at 2 MiB
#: per round trip: about 35 MB/s at 50 ms RTT, 18 MB/s at 100 ms.  16 MiB keeps
#: a 100 ms link busy.  (Uploads are paced by the sshd's window, not this one.)
WINDOW_SIZE = 16 << 20


class Result:
    """What a remote script returned."""

    def __init__(self, exit_code, stdout, stderr):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def text(self):
        return self.stdout.decode("utf-8", "replace") if self.stdout is not None else ""

    @property
    def error_text(self):
        return self.stderr.decode("utf-8", "replace")

    def tail(self, lines=20):
        """The last lines of stderr and stdout, for error messages."""
        both = (self.error_text.strip() + "\n" + self.text.strip()).strip()
        return "\n".join(both.splitlines()[-lines:])


def _chunks(stdin):
    """Normalise what may be fed to a script's stdin into byte chunks."""
    if stdin is None:
        return
    if isinstance(stdin, (bytes, bytearray)):
        for i in range(0, len(stdin), CHUNK):
            yield bytes(stdin[i:i + CHUNK])
    elif hasattr(stdin, "read"):
        while True:
            block = stdin.read(CHUNK)
            if not block:
                return
            yield block
    else:
        for block in stdin:
            if block:
                yield block


class Remote:
    """Base class: ``run`` a script, count it, raise on failure when asked."""

    #: shown in trace lines and messages
    host = "?"
    #: True if the remote work must survive this process (not needed locally)
    is_local = False
    #: shell text put before every script: the machine's ``shell_setup``
    preamble = ""

    def run(self, script, stdin=None, sink=None, what="", check=True, private=False):
        """Run ``script`` with ``sh -c`` (``sh -s`` when long or private) and return a :class:`Result`.

        ``private``: the script carries values other users of the machine
        must not see (environment values such as licence tokens, jobscripts):
        it goes by stdin, never as a command-line argument that ``ps`` shows
        them.  That costs a round trip, so the probe, which carries none,
        stays a command.

        ``stdin`` may be bytes, a binary file or an iterable of byte chunks;
        it is streamed while stdout is read, so uploads and downloads of any
        size never sit in memory.  With ``sink`` (a binary file) stdout is
        written there instead of being collected.  ``what`` labels the trace
        line.  With ``check``, a non-zero exit raises :class:`RemoteError`.
        """
        counter = _Counter()
        start = time.monotonic()
        if script is not None and self.preamble:
            script = self.preamble + script
        if stdin is None and (private or (len(script) > BIG_SCRIPT // 5 and len(shlex.quote(script)) > BIG_SCRIPT)):
            # too long for one argument (Linux takes 128 KiB, an SSH exec
            # request not much more), or not for other eyes: let sh read the
            # script from stdin
            script, stdin = None, script.encode()
        try:
            result = self._run(script, _counted(_chunks(stdin), counter), sink, counter)
        finally:
            if counter.started:     # a command that never reached the machine is no round trip
                trace.record("run", self.host, time.monotonic() - start,
                             counter.sent, counter.received, what)
        if check and result.exit_code != 0:
            raise RemoteError("%s on %s failed (exit %s): %s" % (
                what or "remote command", self.host, result.exit_code,
                result.tail(8) or "no output"))
        return result

    def _run(self, script, chunks, sink, counter):
        raise NotImplementedError

    def connect(self):
        """Open the connection now rather than on the first command."""

    def close(self):
        pass


class _Counter:
    def __init__(self):
        self.started = False
        self.sent = 0
        self.received = 0


def _counted(chunks, counter):
    for block in chunks:
        counter.sent += len(block)
        yield block


def _collect(read, sink, counter):
    """Read a stream to its end into ``sink`` or a bytes object."""
    parts = []
    while True:
        block = read(CHUNK)
        if not block:
            break
        counter.received += len(block)
        if sink is not None:
            sink.write(block)
        else:
            parts.append(block)
    return None if sink is not None else b"".join(parts)


class LocalRemote(Remote):
    """The embedded localhost machine: scripts run here, in their own session.

    The own session mirrors SSH: a Ctrl-C in the terminal running doit does
    not reach remote work by itself.  If doit is interrupted while a script
    runs, the script's process group is sent SIGTERM (scripts that must not
    be cut short, such as job submission, ignore it) and the interrupt goes on.
    """

    is_local = True

    def __init__(self, name="localhost"):
        self.host = name

    def _run(self, script, chunks, sink, counter):
        proc = subprocess.Popen(
            ["sh", "-s"] if script is None else ["sh", "-c", script], cwd=os.path.expanduser("~"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        counter.started = True
        try:
            out, err = _pump(chunks, proc.stdin.write, proc.stdin.close,
                             proc.stdout.read1, proc.stderr.read, sink, counter,
                             abort=lambda: _stop_group(proc.pid))
            code = proc.wait()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            raise
        return Result(code, out, err)


def _stop_group(pid):
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _pump(chunks, write, close, read_out, read_err, sink, counter, abort):
    """Feed stdin and drain stderr in threads while stdout is read here.

    Returns (stdout bytes or None when sunk, stderr bytes).  An exception
    raised while producing the stdin data is re-raised here.  If reading
    stdout fails (the sink cannot take more: a full disk, a reader that
    stopped), ``abort`` stops the command first: it would otherwise block
    on its full output forever, and its stderr with it.
    """
    errs, err_out = [], []
    feeder = threading.Thread(target=_feed, args=(chunks, write, close, errs))
    reader = threading.Thread(target=lambda: err_out.append(_collect(read_err, None, _Counter())))
    feeder.start()
    reader.start()
    try:
        try:
            out = _collect(read_out, sink, counter)
        except BaseException:
            abort()
            raise
    finally:
        feeder.join()
        reader.join()
    if errs:
        raise errs[0]
    return out, b"".join(err_out)


def _feed(chunks, write, close, errs):
    """Write ``chunks`` to the command's stdin, then close it.

    A failing write means the script stopped reading or the connection
    died (paramiko raises EOFError or SSHException then, not only OSError):
    feeding stops, and the exit status, or its absence, tells the caller
    what happened.  An error producing the data itself is kept for the caller.
    """
    try:
        for block in chunks:
            try:
                write(block)
            except Exception:
                break
    except Exception as exc:
        errs.append(exc)
    finally:
        try:
            close()
        except Exception:
            pass
