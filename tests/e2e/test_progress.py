"""What a person sees while a call runs (issue 14), on the real test cluster.

doit runs in a pseudo-terminal as in a person's terminal, and every byte it
writes is kept with the time it arrived.  The live area's draws are found in
that raw stream (each starts with the line ``testslurm M:SS``), so the tests
can say when a step's progress first showed and how often it was redrawn,
during a compile that takes a few seconds and during a job that runs for a
few seconds.  Ctrl-C is the byte ``\\x03`` typed into the terminal, so the
kernel sends SIGINT to doit's process group as a real terminal does.

Bounds are generous (a loaded test machine), but each is one a broken display
fails: no draw at all, a draw only at the end, or no ticker between events.
"""

import os
import re
import select
import signal
import socket
import sys
import threading
import time

import pytest

import anyproject

#: a compile that prints a line a second for a while: the custom target runs before tool is built
SLOW_CMAKE = anyproject.CMAKELISTS + """\
add_custom_target(slow ALL COMMAND sh -c "i=1; while [ $i -le %d ]; do echo slow-step-$i; sleep 1; i=$((i+1)); done" VERBATIM)
add_dependencies(tool slow)
"""

DRAW = re.compile(rb"testslurm (\d+):(\d\d)")
ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def slow_project(project, compile_seconds=6, job_seconds=8, runs=("a", "b")):
    anyproject.make(project, [(name, ["--sleep", job_seconds, "--bytes", 100, "out.dat"]) for name in runs])
    with open(os.path.join(project.path, "tool", "CMakeLists.txt"), "w") as fh:
        fh.write(SLOW_CMAKE % compile_seconds)
    return project


class Screen:
    """What doit wrote to its terminal: (arrival time, bytes) chunks."""

    def __init__(self, chunks, rc):
        self.chunks, self.rc = chunks, rc
        self.raw = b"".join(c for _t, c in chunks)
        self.text = ESCAPE.sub(b"", self.raw).decode("utf-8", "replace").replace("\r", "")

    def when(self, pattern, after=0.0):
        """Arrival time of the first match of ``pattern`` (bytes regex) at or after time ``after``."""
        regex = re.compile(pattern)
        for match in regex.finditer(self.raw):
            t = self.time_at(match.end() - 1)
            if t >= after:
                return t
        return None

    def time_at(self, index):
        offset = 0
        for t, chunk in self.chunks:
            offset += len(chunk)
            if index < offset:
                return t
        return self.chunks[-1][0]

    def draws(self):
        """(arrival time, text) of each draw of the live area: from its header line to the next escape
        sequence that moves up (the next erase) or the end."""
        found = []
        for match in DRAW.finditer(self.raw):
            end = self.raw.find(b"\x1b[", match.end())
            while end != -1 and self.raw[end:end + 3] == b"\x1b[K":
                end = self.raw.find(b"\x1b[", end + 3)
            body = self.raw[match.start():end if end != -1 else len(self.raw)]
            found.append((self.time_at(match.end() - 1),
                          ESCAPE.sub(b"", body).decode("utf-8", "replace")))
        return found


def in_terminal(project, *args, interrupt=None, timeout=300, columns=120):
    """Run doit in a pseudo-terminal; ``interrupt(screen_so_far)`` True types Ctrl-C (once)."""
    import fcntl
    import pty
    import struct
    import termios
    argv = [sys.executable, "-m", "doit", "machine=" + project.machine, "remote_root=" + project.remote_root]
    argv += list(args)
    env = dict(os.environ, TERM="xterm", COLUMNS=str(columns), LINES="40")
    pid, fd = pty.fork()
    if pid == 0:                     # the child: doit, with the terminal as its stdin, stdout and stderr
        try:
            os.chdir(project.path)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve(sys.executable, argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    start = time.monotonic()
    chunks, typed = [], False
    try:
        while time.monotonic() - start < timeout:
            ready, _w, _x = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break             # EIO: the child closed the terminal
                if not data:
                    break
                chunks.append((time.monotonic() - start, data))
            if interrupt is not None and not typed and interrupt(Screen(chunks, None)):
                os.write(fd, b"\x03")
                typed = True
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("doit did not end within %d s:\n%s" % (timeout, Screen(chunks, None).text))
    finally:
        _pid, status = os.waitpid(pid, 0)
        os.close(fd)
    return Screen(chunks or [(0.0, b"")], os.waitstatus_to_exitcode(status))


def steady(draws, start, end, first_within=1.0, gap=2.0):
    """Check the draws between ``start`` and ``end``: the first within ``first_within`` s of
    ``start``, none more than ``gap`` s after the one before.  Returns the failures."""
    times = [t for t, _text in draws if start <= t <= end]
    if not times:
        return ["no draw between %.2f and %.2f s" % (start, end)]
    problems = []
    if times[0] - start > first_within:
        problems.append("first draw %.2f s after the step began" % (times[0] - start))
    for before, after in zip(times, times[1:]):
        if after - before > gap:
            problems.append("no draw for %.2f s (%.2f to %.2f)" % (after - before, before, after))
    return problems


@pytest.fixture
def project(slurm_project):
    return slow_project(slurm_project)


def test_progress_is_shown_at_once_and_kept_moving_during_compile_and_wait(project):
    screen = in_terminal(project, "fetch_results")
    assert screen.rc == 0, screen.text
    draws = screen.draws()
    assert draws, screen.text
    # compile: a step of its own on the screen, its time moving, from the first second
    began = screen.when(rb"\.  compile\r?\n")
    ended = screen.when(rb"\.  submit:", after=began)
    assert began is not None and ended is not None, screen.text
    assert ended - began > 4, "the compile took %.1f s; the test needs a slow one" % (ended - began)
    compiling = [(t, text) for t, text in draws if began <= t <= ended and "  compile " in text]
    assert steady(compiling, began, ended - 1.0) == [], (compiling, screen.text)
    assert len({re.search(r"  compile (\d+:\d\d)", text).group(1) for _t, text in compiling}) >= 4, compiling
    # the compile's own output shows beside it, as it comes, without -v 2
    assert any("slow-step-2" in text for _t, text in compiling), compiling
    # wait: the job's scheduler state and its time against the wall time
    # doit waits on one run while the other's job runs too: the one it takes first is its own
    # choice (seen both ways, CI of 084e889 took b), so the run is the one whose wait the area showed
    w = "a" if any("  wait:a " in text for _t, text in draws) else "b"
    began = screen.when(rb"\.  wait:" + w.encode() + rb"\r?\n")
    ended = screen.when(rb"\.  fetch_results:" + w.encode(), after=began or 0)
    shown = [t for t, text in draws if "  wait:%s " % w in text]
    assert shown, screen.text
    # under load a redraw can land inside the title line (a race between the reporter's line
    # and the ticker, left open in session 8's note): then the area's own first and last draw
    # of the step bound it
    began = began if began is not None else shown[0]
    ended = ended if ended is not None else shown[-1] + 0.5
    waiting = [(t, text) for t, text in draws if began <= t <= ended and "  wait:%s " % w in text]
    assert steady(waiting, began, ended - 1.0) == [], (waiting, screen.text)
    assert any(re.search(r"  wait:%s \d+:\d\d - job \d+ running \d+:\d\d of 5:00" % w, text) for _t, text in waiting), \
        waiting
    assert any(re.search(r"testslurm \d+:\d\d - 0 of 2 runs done, [12] running", text) for _t, text in waiting), \
        waiting
    # every step that ran showed in the area within a second of its start
    for match in re.finditer(rb"(?m)^\.  (\S+)\r?$", screen.raw):
        name, began = match.group(1).decode(), screen.time_at(match.end() - 1)
        assert any(began <= t <= began + 1.0 and "  %s " % name in text for t, text in draws), \
            (name, began, draws)
    # the area is gone at the end: erased after its last draw, and nothing drawn after that
    last = list(DRAW.finditer(screen.raw))[-1].start()
    assert screen.raw.rfind(b"\x1b[J") > last, screen.raw[-400:]
    assert "Traceback" not in screen.text


def test_without_a_terminal_each_event_is_a_plain_line(project):
    out = project.doit("fetch_results")
    assert "\x1b" not in out.out, out
    lines = out.out.splitlines()
    for run in ("a", "b"):
        said = [line for line in lines if line.startswith("   run %s: job " % run)]
        assert said and said[0].endswith(" is pending") and said[-1].endswith(" is completed"), lines
        assert len(said) == len(set(said)), said          # a line per change, not per poll
    assert {"compile", "fetch_results:a", "fetch_results:b"} <= out.ran_set(), out
    # nothing of the terminal's area: no summary line, no step line with its time
    assert not re.search(r"(?m)^testslurm \d+:\d\d|^  compile \d+:\d\d", out.out), out


def test_v2_streams_the_compile_output_as_it_comes_and_hides_markers(project):
    screen = in_terminal(project, "-v", "2", "compile")
    assert screen.rc == 0, screen.text
    first, last = screen.when(rb"slow-step-1\r?\n"), screen.when(rb"slow-step-6\r?\n")
    assert first is not None and last is not None, screen.text
    assert last - first > 3.5, "the lines came %.1f s apart, not as the compile printed them" % (last - first)
    assert "@binary" not in screen.text and "@" not in "".join(
        line[:1] for line in screen.text.splitlines()), screen.text
    assert "[100%] Built target tool" in screen.text


def _interrupted(screen, phase):
    assert screen.rc != 0, (phase, screen.text)
    assert "Traceback" not in screen.text and "Exception ignored" not in screen.text, (phase, screen.text)
    said = [line for line in screen.text.splitlines() if line.startswith("hpcdo: interrupted")]
    assert len(said) == 1, (phase, screen.text)
    return said[0]


@pytest.mark.parametrize("parallel", [[], ["-n", "4"]])
def test_ctrl_c_during_compile_and_wait_is_one_line(project, parallel):
    screen = in_terminal(project, *(parallel + ["fetch_results"]), interrupt=_typed_after(rb"slow-step-2", 0.5))
    _interrupted(screen, "compile")
    screen = in_terminal(project, *(parallel + ["fetch_results"]),
                         interrupt=_typed_after(rb"job \d+ running", 1.0))
    line = _interrupted(screen, "wait")
    assert "keep" in line and "running on testslurm" in line, line


def test_ctrl_c_while_waiting_for_another_doit_is_one_line(project):
    import fcntl
    os.makedirs(os.path.join(project.path, ".hpcdo"), exist_ok=True)
    with open(os.path.join(project.path, ".hpcdo", "lock-testslurm"), "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)          # another doit of this checkout works on the machine
        screen = in_terminal(project, "fetch_results", interrupt=_typed_after(rb"waiting for it to finish", 0.5),
                             timeout=120)
    _interrupted(screen, "waiting for the project's lock")


def test_ctrl_c_during_a_transfer_is_one_line(slurm_project):
    project = slurm_project
    anyproject.make(project, [("big", ["--bytes", 400 * 1024 * 1024, "big.dat"])])
    project.doit("wait")
    screen = in_terminal(project, "fetch_results", interrupt=_typed_after(rb"\.  fetch_results:big", 0.3))
    _interrupted(screen, "transfer")
    assert not re.search(r"fetch big: [\d.]+ MB in", screen.text), screen.text    # cut short: no speed
    # a whole fetch, in a log: its size, time and speed in one line
    out = project.doit("fetch_results")
    assert re.search(r"(?m)^   fetch big: 400\.\d MB in [\d.]+ s \([\d.]+ [MG]B/s\)$", out.out), out


def test_ctrl_c_during_the_login_handshake_is_one_line(slurm_project):
    """A server that takes the connection and never says its SSH banner: paramiko waits in the handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held = []
    stop = threading.Event()

    def hold():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        screen = in_terminal(slurm_project, "port=%d" % listener.getsockname()[1], "persist=0", "fetch_results",
                             interrupt=_typed_once(lambda: held, 1.0), timeout=120)
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
    _interrupted(screen, "handshake")


def _typed_once(condition, seconds):
    """An ``interrupt`` that types Ctrl-C ``seconds`` after ``condition()`` first holds."""
    seen = {}

    def fire(_screen):
        if "at" not in seen and condition():
            seen["at"] = time.monotonic()
        return "at" in seen and time.monotonic() - seen["at"] >= seconds
    return fire


def _typed_after(pattern, seconds):
    """An ``interrupt`` that types Ctrl-C ``seconds`` after ``pattern`` first reached the terminal."""
    seen = {}

    def fire(screen):
        if "at" not in seen and re.search(pattern, screen.raw):
            seen["at"] = time.monotonic()
        return "at" in seen and time.monotonic() - seen["at"] >= seconds
    return fire
