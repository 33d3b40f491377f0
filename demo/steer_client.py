#!/usr/bin/env python3
"""Talk to a running lbflow's steering socket (lbflow --steer-port): standard library only.

    python3 demo/steer_client.py ADDRESS status
    python3 demo/steer_client.py ADDRESS force 1e-4
    python3 demo/steer_client.py ADDRESS stop
    python3 demo/steer_client.py ADDRESS watch [SECONDS]   # a status line every SECONDS (Ctrl-C ends)
    python3 demo/steer_client.py ADDRESS                   # type commands, one a line

ADDRESS is HOST:PORT, or PORT alone for 127.0.0.1: what ``doit machine=X steer RUN``
prints (the local end of its tunnel), or the host and port of the run's steer.json.
lbflow reads commands every --steer-every steps, so an answer can take that long.
Exit status: 0, or 1 when lbflow answered "error ..." or could not be reached.
"""

import socket
import sys
import time

#: seconds to wait for lbflow's answer (it answers between steps)
TIMEOUT = 30


def address(text):
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("address %r: expected HOST:PORT or PORT" % text)
    return (host.strip("[]") or "127.0.0.1", int(port))


class Steering:
    """One connection to lbflow's steering socket; ``ask`` sends a line and returns its answer."""

    def __init__(self, where, timeout=TIMEOUT):
        self.sock = socket.create_connection(where, timeout=timeout)
        self.reader = self.sock.makefile("r", encoding="ascii", newline="\n")

    def ask(self, line):
        self.sock.sendall(line.strip().encode("ascii") + b"\n")
        answer = self.reader.readline()
        if not answer:
            raise ConnectionError("lbflow closed the connection (the run has ended)")
        return answer.strip()

    def close(self):
        self.reader.close()
        self.sock.close()


def parse_status(answer):
    """``step=12 flow=3.1e-01 force=5e-05`` -> {'step': 12, 'flow': 0.31, 'force': 5e-05}."""
    values = dict(word.split("=", 1) for word in answer.split() if "=" in word)
    return {"step": int(values["step"]), "flow": float(values["flow"]), "force": float(values["force"])}


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    try:
        steering = Steering(address(argv[0]))
    except (ValueError, OSError) as exc:
        print("steer_client: cannot reach lbflow at %s: %s" % (argv[0], exc), file=sys.stderr)
        return 1
    words, failed = argv[1:], False
    try:
        if words[:1] == ["watch"]:
            every = float(words[1]) if len(words) > 1 else 2.0
            while True:
                print(steering.ask("status"), flush=True)
                time.sleep(every)
        lines = [" ".join(words)] if words else sys.stdin
        for line in lines:
            if not line.strip():
                continue
            answer = steering.ask(line)
            print(answer, flush=True)
            failed = failed or answer.startswith("error")
    except KeyboardInterrupt:
        pass
    except (OSError, ConnectionError) as exc:
        print("steer_client: %s" % exc, file=sys.stderr)
        return 1
    finally:
        steering.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
