"""What a person sees while a call runs: the steps running now, how the runs stand, each
waiting job's state and time, and big transfers.

:class:`Board` keeps that picture, fed by doit's reporter (a step began,
ended, failed) and by the steps themselves through :mod:`hpcdo.events` (a
job's state, a transfer's bytes, a compile's output).  Two displays show it:

- on a terminal, :class:`Live` keeps an area of a few lines at the bottom of
  the screen, redrawn at least every :data:`TICK` seconds, while everything
  else written (doit's ``.  compile`` lines, ``-v 2`` output, warnings)
  scrolls above it; the area is drawn from the first step that runs, so a
  login prompt before it is never overwritten, and erased at the end;
- anywhere else (a CI log, a pipe), :class:`Lines` writes plain lines, one
  per event (a job's new state, a big transfer's size and speed), with no
  escape sequence, and a line saying what is still going on when nothing
  was said for :data:`HEARTBEAT` seconds (CI services stop a silent job).

Only ASCII is written: a CI runner's locale may not take more.
"""

import re
import shutil
import threading
import time

from . import events

#: transfers of more bytes than this are shown (a geometry, a run's results)
BIG = 4 << 20
#: the terminal area is redrawn this often (seconds), so elapsed times move
TICK = 0.5
#: with no terminal, a line at least this often (seconds) while steps run
HEARTBEAT = 60.0
#: at most this many step lines in the area; the rest are counted
MAX_ROWS = 12
RUN_STEPS = ("submit", "wait", "fetch_results")
#: job states (:class:`hpcdo.schedulers.base.JobState` values) of a job not ended
ACTIVE = ("pending", "running", "unknown")


def clock(seconds):
    """``M:SS``, or ``H:MM:SS`` from an hour."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return "%d:%02d:%02d" % (hours, rest // 60, rest % 60) if hours else "%d:%02d" % divmod(rest, 60)


def seconds_of(walltime):
    """A walltime ``[D-]HH:MM:SS`` in seconds, or None."""
    match = re.match(r"^(?:(\d+)-)?(\d+):(\d\d):(\d\d)$", walltime or "")
    if not match:
        return None
    days, hours, minutes, secs = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def size(count):
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if count >= scale:
            return "%.1f %s" % (count / scale, unit)
    return "%d bytes" % count


def rate(count, seconds):
    return "%s/s" % size(count / seconds) if seconds > 0.05 else "-"


class Board:
    """The call's picture: thread-safe, fed by the reporter and by :mod:`hpcdo.events`."""

    def __init__(self, machine, now=time.monotonic):
        self.machine = machine
        self.now = now
        self.started = now()
        self.lock = threading.RLock()
        self.active = {}          # task name -> when it began
        self.runs = {}            # run -> the names of its tasks this call may run
        self.finished, self.failed = set(), set()
        self.jobs = {}            # run -> {"id", "state", "since", "walltime"}
        self.transfers = {}       # what -> {"bytes", "seconds", "at"}
        self.said = {}            # step label -> the last line its output printed

    def plan(self, tasks, selected):
        """Learn which runs this call may act on: those whose steps the selected tasks need."""
        seen, todo = set(), list(selected or [])
        while todo:
            name = todo.pop()
            if name in seen or name not in tasks:
                continue
            seen.add(name)
            task = tasks[name]
            todo.extend(list(task.task_dep) + list(getattr(task, "setup_tasks", ())))
        with self.lock:
            for name in seen:
                step, _, run = name.partition(":")
                if step in RUN_STEPS and run and tasks[name].actions:
                    self.runs.setdefault(run, set()).add(name)

    def began(self, name):
        with self.lock:
            self.active[name] = self.now()

    def ended(self, name, ok):
        with self.lock:
            self.active.pop(name, None)
            (self.finished if ok else self.failed).add(name)

    def event(self, kind, fields):
        """Take one of :mod:`hpcdo.events`; return a line worth a log of its own, or None."""
        with self.lock:
            if kind == "job":
                run, state = fields["run"], fields["state"]
                job = self.jobs.setdefault(run, {"id": "", "state": "", "since": self.now(), "walltime": None})
                if job["state"] == state and job["id"] == fields.get("id", ""):
                    return None
                job.update(id=fields.get("id", ""), state=state, since=self.now())
                if fields.get("walltime"):
                    job["walltime"] = seconds_of(fields["walltime"])
                return "run %s: job %s is %s" % (run, job["id"], state)
            if kind == "waiting":
                job = self.jobs.setdefault(fields["run"], {"id": fields.get("id", ""), "state": "",
                                                           "since": self.now()})
                job["walltime"] = seconds_of(fields.get("walltime"))
                return None
            if kind == "transfer":
                what, count, secs = fields["what"], fields["bytes"], fields["seconds"]
                if fields.get("done"):
                    self.transfers.pop(what, None)
                    if count >= BIG and fields.get("whole", True):
                        return "%s: %s in %.1f s (%s)" % (what, size(count), secs, rate(count, secs))
                    return None
                self.transfers[what] = {"bytes": count, "seconds": secs}
                return None
            if kind == "output":
                self.said[fields["step"]] = fields["line"]
            return None

    def counts(self):
        """{"total", "done", "running", "pending", "failed"} of the runs this call acts on."""
        with self.lock:
            out = {"total": len(self.runs), "done": 0, "running": 0, "pending": 0, "failed": 0}
            for run, names in self.runs.items():
                if names & self.failed:
                    out["failed"] += 1
                elif names <= self.finished:
                    out["done"] += 1
                elif self.jobs.get(run, {}).get("state") == "running":
                    out["running"] += 1
                else:
                    out["pending"] += 1
            return out

    def summary(self):
        """One line: the machine, the time so far, and the runs."""
        head = "%s %s" % (self.machine, clock(self.now() - self.started))
        c = self.counts()
        if not c["total"]:
            return head
        return "%s - %d of %d runs done, %d running, %d pending, %d failed" % (
            head, c["done"], c["total"], c["running"], c["pending"], c["failed"])

    def job_text(self, run):
        """``job 12 running 0:35 of 5:00``: the job's state, for how long this call has seen it so,
        and the wall time it may take; "" when no job is known."""
        job = self.jobs.get(run)
        if not job or not job.get("state"):
            return ""
        text = "job %s %s %s" % (job["id"], job["state"], clock(self.now() - job["since"]))
        if job.get("walltime") and job["state"] == "running":
            text += " of %s" % clock(job["walltime"])
        return text

    def step_line(self, name, began):
        """What one running step is doing: its time, and its job or output."""
        step, _, run = name.partition(":")
        text = "%s %s" % (name if name[:1] != "_" else name[1:].replace("_", " "), clock(self.now() - began))
        job = self.job_text(run) if step == "wait" else ""
        if job:
            text += " - " + job
        for label, line in self.said.items():
            if label.split()[0] == step:
                text += " - " + line.strip()
        return text

    def rows(self):
        """The lines of the area: the summary, then each running step."""
        with self.lock:
            steps = sorted(self.active.items(), key=lambda item: item[1])
            lines = ["  " + self.step_line(n, t) for n, t in steps]
            # the other runs' jobs on the machine (a job is queued or runs while another is waited for)
            lines += ["  run %s - %s" % (run, self.job_text(run)) for run in sorted(self.jobs)
                      if self.jobs[run]["state"] in ACTIVE and "wait:" + run not in self.active]
            if len(lines) > MAX_ROWS:
                lines[MAX_ROWS - 1:] = ["  and %d more" % (len(lines) - MAX_ROWS + 1)]
            lines.insert(0, self.summary())
            for what, moving in self.transfers.items():
                if moving["bytes"] >= BIG:
                    lines.append("  %s %s %s (%s)" % (what, size(moving["bytes"]), clock(moving["seconds"]),
                                                      rate(moving["bytes"], moving["seconds"])))
            return lines

    def waiting(self):
        """One line for a log that has been quiet: the summary and the running steps."""
        with self.lock:
            steps = sorted(self.active.items(), key=lambda item: item[1])
            return "%s; running: %s" % (self.summary(), "; ".join(
                self.step_line(n, t) for n, t in steps[:MAX_ROWS]) or "nothing")


class _Display:
    """What both displays share: the board, fed by :mod:`hpcdo.events`, and a ticker thread."""

    interval = TICK

    def __init__(self, board, out):
        self.board, self.out = board, out
        self.lock = threading.RLock()
        self._stopped = threading.Event()
        self._ticker = None

    def start(self):
        events.listen(self.event)

    def event(self, kind, fields):
        line = self.board.event(kind, fields)
        if line:
            self.note(line)

    def note(self, line):
        """Say ``line`` above the area, or as a line of the log."""
        self.write("   %s\n" % line)

    def began(self, name):
        self.board.began(name)
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="hpcdo-progress", daemon=True)
            self._ticker.start()
        self.refresh()

    def ended(self, name, ok):
        self.board.ended(name, ok)
        self.refresh()

    def _tick(self):
        while not self._stopped.wait(self.interval):
            try:
                self.tick()
            except Exception:
                pass       # a closed terminal: the call goes on without its display

    def stop(self):
        events.forget(self.event)
        self._stopped.set()

    def write(self, text):
        raise NotImplementedError

    def refresh(self):
        pass

    def tick(self):
        pass


class Lines(_Display):
    """Line-per-event output for logs: no escape sequences, a line at least every :data:`HEARTBEAT` s."""

    interval = 1.0

    def __init__(self, board, out, heartbeat=HEARTBEAT):
        super().__init__(board, out)
        self.heartbeat = heartbeat
        self.last = time.monotonic()

    def write(self, text):
        with self.lock:
            self.out.write(text)
            self.out.flush()
            self.last = time.monotonic()

    def tick(self):
        if self.board.active and time.monotonic() - self.last >= self.heartbeat:
            self.note(self.board.waiting())


class Live(_Display):
    """A few lines at the bottom of the terminal, redrawn in place; all else scrolls above them.

    From :meth:`start` to :meth:`stop` ``sys.stdout`` and ``sys.stderr`` are
    wrapped, so that whatever a step writes (doit hands tasks the streams it
    finds there) first erases the area, then the area is drawn again below it.
    """

    def __init__(self, board, out, err=None, width=None):
        super().__init__(board, out)
        self.err = err
        self.width = width
        self.shown = 0                  # rows of the area now on the screen
        self.line_start = True          # no partial line (a prompt) is on the screen
        self.drawn_at = 0.0
        self.wrapped = []

    def start(self):
        import sys
        super().start()
        for name in ("stdout", "stderr"):
            real = getattr(sys, name)
            if real.isatty() and not isinstance(real, _Through):
                wrapper = _Through(self, real)
                setattr(sys, name, wrapper)
                self.wrapped.append((name, wrapper, real))

    def stop(self):
        import sys
        super().stop()
        with self.lock:
            self._erase()
            self.out.flush()
            self.shown = -1              # never drawn again
        for name, wrapper, real in self.wrapped:
            if getattr(sys, name) is wrapper:
                setattr(sys, name, real)

    def write(self, text, stream=None):
        stream = stream or self.out
        with self.lock:
            if stream is self.out or stream.isatty():
                self._erase()
                self.out.flush()
            stream.write(text)
            stream.flush()
            if text:
                self.line_start = text.endswith("\n")
            if time.monotonic() - self.drawn_at > TICK / 5:
                self._draw()

    def event(self, kind, fields):
        line = self.board.event(kind, fields)
        if line and fields.get("state") not in ACTIVE:    # the area shows a job queued or running
            self.note(line)

    def refresh(self):
        with self.lock:
            self._erase()
            self._draw()

    def tick(self):
        self.refresh()

    def _erase(self):
        if self.shown > 0:
            self.out.write("\r\x1b[%dA\x1b[J" % self.shown)
            self.shown = 0

    def _draw(self):
        if self.shown != 0 or not self.line_start or not self.board.active:
            return
        width = self.width or shutil.get_terminal_size((80, 24)).columns
        height = shutil.get_terminal_size((80, 24)).lines
        rows = [row[:max(10, width - 1)] for row in self.board.rows()][:max(1, height - 2)]
        self.out.write("".join(row + "\x1b[K\n" for row in rows))
        self.out.flush()
        self.shown = len(rows)
        self.drawn_at = time.monotonic()


class _Through:
    """``sys.stdout``/``sys.stderr`` while the area is shown: writes go above the area."""

    def __init__(self, live, real):
        self._live, self._real = live, real

    def write(self, text):
        self._live.write(text, self._real)
        return len(text)

    def flush(self):
        self._real.flush()

    def __getattr__(self, name):
        return getattr(self._real, name)


def display(out, machine, tty=None):
    """The display for stream ``out``: :class:`Live` on a terminal (but a dumb one), else :class:`Lines`."""
    import os
    board = Board(machine)
    if tty is None:
        tty = _isatty(out) and os.environ.get("TERM", "") not in ("", "dumb")
    return Live(board, out) if tty else Lines(board, out)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
