"""Round-trip accounting: one JSON line per remote operation.

With ``HPCDO_TRACE=<file>`` set, every remote command, transfer and connect
appends one line ``{"op", "host", "seconds", "bytes_out", "bytes_in", "what"}``.
It is how users and tests count round trips, which are what a step costs on a
distant machine.
"""

import json
import os
import sys
import threading
import time

_lock = threading.Lock()
_failed = False


def record(op, host, seconds, bytes_out=0, bytes_in=0, what=""):
    """Append one trace line if HPCDO_TRACE names a file."""
    path = os.environ.get("HPCDO_TRACE")
    if not path:
        return
    line = json.dumps({
        "op": op, "host": host, "seconds": round(seconds, 4),
        "bytes_out": bytes_out, "bytes_in": bytes_in, "what": what,
        "time": round(time.time(), 3), "pid": os.getpid(),
    }, sort_keys=True) + "\n"
    # One write on an O_APPEND descriptor keeps lines whole across threads
    # and processes.  The remote operation has already run when this is
    # written: a trace file that cannot be written is said once, never raised.
    global _failed
    with _lock:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            if not _failed:
                _failed = True
                sys.stderr.write("hpcdo: warning: cannot write HPCDO_TRACE file %s: %s\n" % (path, exc.strerror))


def check():
    """None if HPCDO_TRACE is unset or writable, else the one-line reason it is not."""
    path = os.environ.get("HPCDO_TRACE")
    if not path:
        return None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as exc:
        return "HPCDO_TRACE=%s cannot be written: %s" % (path, exc.strerror)
    return None


def read(path):
    """Return the trace records in ``path`` (for tests and benchmarks)."""
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]
