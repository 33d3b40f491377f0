"""What happened to each run, said once for people (the end-of-call summary, ``status``) and for CI.

:func:`run_outcomes` makes one :class:`RunOutcome` per run from what the
session knows (the probe's markers and the scheduler's answer, asked in the
call's one batched probe and updated by its polls): no remote command of
its own.  :func:`summary_text` is the end of a call, :func:`status_table`
and :func:`status_document` are ``doit machine=X status`` and its
``--json`` (documented in ``docs/reports.md``).
"""

import datetime
import os
import time
from dataclasses import dataclass

from . import HpcdoError
from .schedulers.base import JobState, seconds

#: the doit steps of a run: ``<step>:<run>``
RUN_STEPS = ("submit", "wait", "fetch_results")

#: the states a run may be in, as reports and ``status --json`` spell them
NEVER_SUBMITTED = "never_submitted"
#: states in which the run's job ended without its results: it has a log and a retry command
FAILED_STATES = ("failed", "cancelled", "timeout", "node_fail", "preempted", "lost")

#: the version of the JSON documents (``status --json``, ``--report``); bumped when a field changes meaning
SCHEMA = 1


def iso(stamp):
    """Epoch seconds as ISO 8601 in UTC (``2026-12-01T08:30:05Z``), or None."""
    if stamp is None:
        return None
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(secs):
    """Seconds as ``H:MM:SS``, or "" when unknown."""
    if secs is None:
        return ""
    secs = int(round(secs))
    return "%d:%02d:%02d" % (secs // 3600, secs // 60 % 60, secs % 60)


@dataclass
class RunOutcome:
    """One run of one recipe on the machine, as the machine and its scheduler last said.

    ``state``: a :class:`~hpcdo.schedulers.base.JobState` value (``pending``,
    ``running``, ``completed``, ``failed``, ``cancelled``, ``timeout``,
    ``node_fail``, ``preempted``, ``lost``, ``unknown``) or
    ``never_submitted``; ``current``: the job is for the run's current
    inputs; times are epoch seconds (None: nothing said); ``elapsed`` and
    ``walltime`` are seconds; ``results``: the local results directory,
    relative to the project; ``log`` and ``retry``: for a job that ended
    without results, where its log is on the machine and the command to
    submit it again.
    """

    recipe: str
    run: str
    machine: str
    state: str
    job_id: str = ""
    exit_code: object = None
    reason: str = ""
    submitted: float = None
    started: float = None
    ended: float = None
    elapsed: float = None
    walltime: int = None
    results: str = ""
    fetched: bool = False
    current: bool = False
    tries: int = 0
    log: str = ""
    retry: str = ""

    @property
    def failed(self):
        return self.state in FAILED_STATES

    def to_dict(self):
        """The run as ``status --json`` and ``--report`` write it (keys documented in docs/reports.md)."""
        return {"recipe": self.recipe, "run": self.run, "state": self.state, "job_id": self.job_id or None,
                "exit_code": self.exit_code, "reason": self.reason or None, "current_inputs": self.current,
                "tries": self.tries, "submitted": iso(self.submitted), "started": iso(self.started),
                "ended": iso(self.ended),
                "elapsed_seconds": None if self.elapsed is None else int(round(self.elapsed)),
                "walltime_seconds": self.walltime, "results": self.results, "fetched": self.fetched,
                "log": self.log or None, "retry": self.retry or None}


def runs_in(task_names):
    """The run names of the run steps (``submit:R``, ``wait:R``, ``fetch_results:R``) among ``task_names``."""
    found = []
    for name in task_names or ():
        step, _, run = str(name).partition(":")
        if step in RUN_STEPS and run and run not in found:
            found.append(run)
    return found


def outcome(project, target, run, now=None):
    """The :class:`RunOutcome` of ``run`` of ``target`` (a :class:`hpcdo.target.Target`)."""
    session, machine = project.session, project.machine
    key = target.run_key(run)
    info = session.job(key)
    times = session.times(key) if info.id else {}
    state = NEVER_SUBMITTED if info.state is JobState.NONE else info.state.value
    now = time.time() if now is None else now
    started, ended = times.get("started"), times.get("ended")
    if info.state is JobState.PENDING:
        started = None
    if started is not None and (ended is not None or info.state is JobState.RUNNING):
        elapsed = max(0.0, (ended if ended is not None else now) - started)
    else:
        elapsed = None
    results = project.steps.results[target.recipe.name]
    try:
        fetched = bool(results.fetch_current(run))
    except (HpcdoError, OSError):
        fetched = False
    rel = os.path.relpath(target.results_dir(run), project.dir) + "/"
    out = RunOutcome(recipe=target.recipe.name, run=run.name, machine=machine.name, state=state,
                     job_id=info.id, exit_code=info.code, reason=times.get("reason", "") if info.state.active else "",
                     submitted=times.get("submitted"), started=started, ended=ended, elapsed=elapsed,
                     walltime=seconds(run.walltime), results=rel, fetched=fetched,
                     current=bool(info.sig) and info.sig == target.submit_sig(run),
                     tries=info.tries_count() if info.id else 0)
    if out.failed:
        out.log = target.log_path(run)
        out.retry = "doit machine=%s retry %s" % (machine.name, run.name)
    return out


def run_outcomes(project, names=None, now=None):
    """A :class:`RunOutcome` for each run of the project (only those called ``names``, if given),
    in the recipes' order.  Asks nothing the call's probe has not asked."""
    wanted = None if names is None else set(names)
    return [outcome(project, target, run, now) for target, run in project.steps.runs()
            if wanted is None or run.name in wanted]


def totals(outcomes):
    """"2 completed, 1 failed": how many runs are in each state, in a fixed order."""
    order = ["completed", "running", "pending", "unknown"] + list(FAILED_STATES) + [NEVER_SUBMITTED]
    counts = {}
    for item in outcomes:
        counts[item.state] = counts.get(item.state, 0) + 1
    return ", ".join("%d %s" % (counts[s], s.replace("_", " ")) for s in order if counts.get(s))


def _state_word(item):
    word = item.state.replace("_", " ")
    if item.exit_code not in (None, 0):
        word += " (exit %s)" % item.exit_code
    if item.job_id and not item.current:
        word += ", older inputs"
    return word


def _where(item, machine):
    """What the summary says of where a run's outcome is: its results, or its log and retry command."""
    if item.failed:
        return "log: %s:%s  retry: %s" % (machine, item.log, item.retry)
    if item.state == "completed":
        return item.results + ("" if item.fetched else " (not fetched)")
    if item.reason:
        return "waiting: %s" % item.reason
    return ""


#: the project of this call: the last :class:`hpcdo.project.Project` this process made (the loader's)
_CALL = []


def set_call_project(project):
    """Remember ``project`` as this call's (``Project`` does, once it has loaded)."""
    _CALL[:] = [project]


def call_project():
    """This call's project, or None when none loaded (a broken recipe, ``check`` alone)."""
    return _CALL[-1] if _CALL else None


def summary_text(project=None, task_names=None, now=None):
    """The end of a call: per run its state, wall time and results path, totals at the bottom.

    The console reporter calls it once, at the end of the call, as
    ``outcomes.summary_text(None, names)`` with ``names`` every task name it
    was told of (``execute_task``, ``add_success``, ``skip_uptodate``,
    ``add_failure``), and prints what it returns unless it is "".

    ``project``: the call's :class:`hpcdo.project.Project`, or None for
    this call's (:func:`call_project`); ``task_names``:
    the doit task names the call reported (executed, up to date or failed),
    whose run steps (``submit:R``, ``wait:R``, ``fetch_results:R``) say
    which runs the summary covers; None covers every run.  A failed run's
    line says where its log is on the machine and the exact command to
    retry it.  Returns "" when the call ran no run step (``list``, ``help``,
    ``status``, a build alone) or when nothing is known of the machine (its
    probe failed: that error is said already).  Asks the machine nothing;
    never raises for a machine's error.
    """
    project = project if project is not None else call_project()
    names = None if task_names is None else runs_in(task_names)
    if project is None or (names is not None and not names):
        return ""
    try:
        items = run_outcomes(project, names, now)
    except HpcdoError:
        return ""
    if not items:
        return ""
    machine = project.machine.name
    rows = [("run", "state", "job", "wall time", "results")]
    for item in items:
        wall = duration(item.elapsed)
        if item.walltime:
            wall = "%s of %s" % (wall or "-", duration(item.walltime))
        rows.append((item.run, _state_word(item), item.job_id or "-", wall or "-", _where(item, machine)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(value.ljust(widths[i]) if i < 4 else value for i, value in enumerate(row)).rstrip()
             for row in rows]
    lines.append("%d run%s on %s: %s" % (len(items), "" if len(items) == 1 else "s", machine, totals(items)))
    return "\n".join(lines)
