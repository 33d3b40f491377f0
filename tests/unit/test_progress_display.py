"""The progress display (hpcdo.progress), the event bus and the hooks that feed them, without a machine."""

import io
import os
import re
import sys
import time

import pytest

from hpcdo import events, progress
from hpcdo.remote import transfer
from hpcdo.remote.connection import LocalRemote
from hpcdo.steps.build import _Shown

ESCAPE = re.compile(r"\x1b\[")


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class FakeTask:
    def __init__(self, name, deps=(), actions=True):
        self.name, self.task_dep, self.setup_tasks = name, list(deps), []
        self.actions = ["x"] if actions else []


def plan_of(runs):
    tasks = {"compile": FakeTask("compile")}
    for run in runs:
        tasks["submit:" + run] = FakeTask("submit:" + run, ["compile"])
        tasks["wait:" + run] = FakeTask("wait:" + run, ["submit:" + run])
        tasks["fetch_results:" + run] = FakeTask("fetch_results:" + run, ["wait:" + run])
    tasks["fetch_results"] = FakeTask("fetch_results", ["fetch_results:" + r for r in runs], actions=False)
    return tasks


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_clock_walltime_and_sizes():
    assert progress.clock(5) == "0:05" and progress.clock(3725) == "1:02:05"
    assert progress.seconds_of("00:05:00") == 300 and progress.seconds_of("1-00:00:10") == 86410
    assert progress.seconds_of("soon") is None
    assert progress.size(12 * 1024 * 1024 + 300 * 1024) == "12.3 MB" and progress.size(10) == "10 bytes"


def test_runs_are_counted_done_running_pending_failed_from_the_tasks_the_call_selected():
    clock = Clock()
    board = progress.Board("testslurm", now=clock)
    board.plan(plan_of(["a", "b", "c", "d"]), ["fetch_results"])
    assert board.counts() == {"total": 4, "done": 0, "running": 0, "pending": 4, "failed": 0}
    for name in ("submit:a", "wait:a", "fetch_results:a"):
        board.ended(name, True)
    board.event("job", {"run": "b", "id": "12", "state": "running"})
    board.ended("wait:c", False)
    assert board.counts() == {"total": 4, "done": 1, "running": 1, "pending": 1, "failed": 1}
    assert board.summary() == "testslurm 0:00 - 1 of 4 runs done, 1 running, 1 pending, 1 failed"
    # a call that only compiles acts on no run
    only = progress.Board("testslurm", now=clock)
    only.plan(plan_of(["a"]), ["compile"])
    assert only.counts()["total"] == 0 and only.summary() == "testslurm 0:00"


def test_a_waiting_job_shows_its_state_and_time_against_its_walltime_and_other_jobs_too():
    clock = Clock()
    board = progress.Board("m", now=clock)
    board.plan(plan_of(["a", "b"]), ["fetch_results"])
    assert board.event("job", {"run": "a", "id": "7", "state": "pending", "walltime": "00:05:00"}) == \
        "run a: job 7 is pending"
    assert board.event("job", {"run": "a", "id": "7", "state": "pending"}) is None   # no change, no line
    board.event("job", {"run": "b", "id": "8", "state": "pending", "walltime": "01:00:00"})
    board.began("wait:a")
    clock.t += 20
    board.event("job", {"run": "a", "id": "7", "state": "running"})
    board.event("job", {"run": "b", "id": "8", "state": "running"})
    clock.t += 35
    rows = board.rows()
    assert rows[0] == "m 0:55 - 0 of 2 runs done, 2 running, 0 pending, 0 failed", rows
    assert rows[1] == "  wait:a 0:55 - job 7 running 0:35 of 5:00", rows
    assert rows[2] == "  run b - job 8 running 0:35 of 1:00:00", rows


def test_big_transfers_show_their_bytes_and_speed_and_small_or_cut_ones_say_nothing():
    clock = Clock()
    board = progress.Board("m", now=clock)
    board.began("fetch_results:a")
    board.event("transfer", {"what": "fetch a", "bytes": 8 << 20, "seconds": 2.0})
    assert "  fetch a 8.0 MB 0:02 (4.0 MB/s)" in board.rows()
    assert board.event("transfer", {"what": "fetch a", "bytes": 10 << 20, "seconds": 2.5, "done": True}) == \
        "fetch a: 10.0 MB in 2.5 s (4.0 MB/s)"
    assert not any("fetch a " in row for row in board.rows())
    assert board.event("transfer", {"what": "sync 3 files", "bytes": 4000, "seconds": 0.1, "done": True}) is None
    assert board.event("transfer", {"what": "fetch b", "bytes": 50 << 20, "seconds": 1.0, "done": True,
                                    "whole": False}) is None


def test_without_a_terminal_lines_have_no_escapes_and_a_quiet_log_hears_a_heartbeat():
    out = io.StringIO()
    display = progress.display(out, "m", tty=False)
    assert isinstance(display, progress.Lines)
    display.heartbeat = 0.3
    display.interval = 0.1
    display.board.plan(plan_of(["a"]), ["fetch_results"])
    display.start()
    try:
        display.write(".  wait:a\n")
        display.began("wait:a")
        events.emit("job", run="a", id="7", state="running")
        events.emit("job", run="a", id="7", state="running")
        time.sleep(0.8)
    finally:
        display.stop()
    text = out.getvalue()
    assert not ESCAPE.search(text), text
    assert text.count("   run a: job 7 is running\n") == 1, text
    assert re.search(r"^   m 0:0\d - 0 of 1 runs done, 1 running, 0 pending, 0 failed; running: wait:a 0:0\d - "
                     r"job 7 running", text, re.M), text


def test_the_terminal_area_is_drawn_once_a_step_runs_kept_below_other_output_and_erased_at_the_end():
    out = TTY()
    display = progress.Live(progress.Board("m"), out, width=60)
    display.start()
    try:
        display.write("before any step\n")
        assert out.getvalue() == "before any step\n"          # nothing drawn before a step runs
        display.began("compile")
        drawn = out.getvalue()
        assert drawn.endswith("m 0:00\x1b[K\n  compile 0:00\x1b[K\n"), repr(drawn)
        display.write("partial ")                               # a prompt: the area stays away
        display.refresh()
        assert out.getvalue().endswith("\r\x1b[2A\x1b[Jpartial "), repr(out.getvalue())
        display.write("line\n")
        display.refresh()                                       # the ticker's next draw
        assert out.getvalue().endswith("partial line\nm 0:00\x1b[K\n  compile 0:00\x1b[K\n")
        display.ended("compile", True)
    finally:
        display.stop()
    # no step runs: the area is erased, and nothing draws it again
    assert out.getvalue().endswith("line\nm 0:00\x1b[K\n  compile 0:00\x1b[K\n\r\x1b[2A\x1b[J"), repr(out.getvalue())


def test_the_terminal_area_keeps_to_the_width_and_is_redrawn_by_its_ticker():
    out = TTY()
    board = progress.Board("m")
    display = progress.Live(board, out, width=30)
    display.interval = 0.05
    display.start()
    try:
        display.began("fetch_results:" + "x" * 80)
        time.sleep(0.4)
    finally:
        display.stop()
    rows = [row for row in out.getvalue().replace("\x1b[K", "").split("\n") if "fetch_results:" in row]
    assert len(rows) >= 4, out.getvalue()                       # the ticker drew it again and again
    assert all(len(ESCAPE.sub("", row.split("\x1b[J")[-1])) <= 29 for row in rows), rows


def test_live_wraps_the_terminal_streams_while_it_runs_only(monkeypatch):
    out, err = TTY(), TTY()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    display = progress.Live(progress.Board("m"), out)
    display.start()
    assert sys.stdout is not out and sys.stderr is not err
    display.began("compile")
    print("hello")
    sys.stderr.write("warning\n")
    display.stop()
    assert sys.stdout is out and sys.stderr is err
    assert "hello\n" in out.getvalue() and err.getvalue() == "warning\n"
    assert "compile 0:00\x1b[K\n\r\x1b[2A\x1b[Jhello\n" in out.getvalue()   # erased, then written above


def test_compile_output_is_shown_line_by_line_without_markers():
    shown = []
    events.listen(lambda kind, fields: shown.append((kind, fields)))
    try:
        stream = io.StringIO()
        sink = _Shown("compile tool", stream)
        sink.write(b"[ 50%] Building C obj")
        assert stream.getvalue() == ""
        sink.write(b"ect x.o\n@binary 0123abcd\n[100%] Built")
        assert stream.getvalue() == "[ 50%] Building C object x.o\n"
        assert sink.close() == b"[ 50%] Building C object x.o\n@binary 0123abcd\n[100%] Built"
        assert stream.getvalue() == "[ 50%] Building C object x.o\n[100%] Built\n"
    finally:
        events._listeners.clear()
    assert [f["line"] for k, f in shown if k == "output"] == ["[ 50%] Building C object x.o", "[100%] Built"]


def test_a_local_command_streams_its_output_as_it_comes():
    """LocalRemote reads what the command has written so far, not a full 64 KiB block."""
    arrived = []

    class Sink:
        def write(self, block):
            arrived.append((time.monotonic(), block))

    LocalRemote().run("echo first; sleep 1.5; echo second", sink=Sink())
    assert b"".join(b for _t, b in arrived) == b"first\nsecond\n"
    first = next(t for t, b in arrived if b.startswith(b"first"))
    assert arrived[-1][0] - first > 1.0, arrived


def test_a_transfer_is_metered_and_told_once_at_its_end(tmp_path):
    told = []
    events.listen(lambda kind, fields: told.append(dict(fields)) if kind == "transfer" else None)
    try:
        data = os.urandom(3 << 20)
        path = tmp_path / "geo"
        path.write_bytes(data)
        with open(path, "rb") as fh:
            got = b"".join(transfer.metered(fh, "send geometry g"))
        assert got == data
        unread = transfer.metered([b"x" * 10, b"y" * 10], "cut")
        next(unread)
        unread.close()
    finally:
        events._listeners.clear()
    ends = [t for t in told if t.get("done")]
    assert [(t["what"], t["bytes"], t["whole"]) for t in ends] == [("send geometry g", 3 << 20, True),
                                                                  ("cut", 10, False)], told


def test_a_failing_listener_never_breaks_a_step():
    def broken(kind, fields):
        raise RuntimeError("display gone")
    events.listen(broken)
    try:
        events.emit("job", run="a", id="1", state="running")
    finally:
        events.forget(broken)
    assert not events.listening()


@pytest.mark.parametrize("term,tty,kind", [("xterm", True, progress.Live), ("dumb", True, progress.Lines),
                                           ("xterm", False, progress.Lines)])
def test_the_display_is_live_only_on_a_real_terminal(monkeypatch, term, tty, kind):
    monkeypatch.setenv("TERM", term)
    out = TTY() if tty else io.StringIO()
    assert isinstance(progress.display(out, "m"), kind)
