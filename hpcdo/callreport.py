"""The record of one call for CI and scripts: ``--report FILE`` (JSON) and ``--junit FILE`` (JUnit XML).

:class:`CallReport` listens to doit's reporter events (the console
reporter, :mod:`hpcdo.report`, passes each on) and records every step:
run (``executed``), ``up_to_date``, ``failed`` with its message, or
``not_run`` because a step it needs failed.  At the end of the call it adds
each run's outcome (:mod:`hpcdo.outcomes`: state, job id, exit code, times,
results directory, log and retry command) for the runs whose steps the call
had, and writes the files.  Each file is written whole or not at all (a
temporary file renamed into place), and also when steps failed; a call
that ends before doit reports its end (an error loading the recipes) still
leaves a record saying it is incomplete.  The formats are in
``docs/reports.md``.
"""

import atexit
import json
import os
import socket
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

from doit.exceptions import UnmetDependency

from . import HpcdoError, __version__
from . import outcomes

#: what a step's record says of it
EXECUTED, UP_TO_DATE, FAILED, NOT_RUN, IGNORED = "executed", "up_to_date", "failed", "not_run", "ignored"


def write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same directory, renamed into place."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


class CallReport:
    """doit reporter events of one call, written as JSON to ``json_path`` and JUnit XML to ``junit_path``
    (either may be empty: not written)."""

    def __init__(self, project, json_path, junit_path, clock=time.time):
        self.project = project
        self.json_path, self.junit_path = json_path or "", junit_path or ""
        self.clock = clock
        self.started = clock()
        self.selected = []
        self.steps = {}               # task name -> record, in the order doit reported them
        self._began = {}
        self._lock = threading.Lock()
        self.written = False
        atexit.register(self._at_exit)

    # -- doit's reporter events -------------------------------------------------
    def initialize(self, tasks, selected_tasks):
        self.selected = list(selected_tasks or [])

    def execute_task(self, task):
        with self._lock:
            self._began[task.name] = self.clock()

    def add_success(self, task):
        self._record(task, EXECUTED)

    def add_failure(self, task, fail):
        if isinstance(fail, UnmetDependency):
            self._record(task, NOT_RUN, "not run: a step it needs failed")
        else:
            message = fail.get_msg() if hasattr(fail, "get_msg") else str(fail)
            self._record(task, FAILED, message.strip() or "failed")

    def skip_uptodate(self, task):
        self._record(task, UP_TO_DATE)

    def skip_ignore(self, task):
        self._record(task, IGNORED, "ignored (doit ignore)")

    def complete_run(self):
        self.write(complete=True)

    # -- the record ---------------------------------------------------------------
    def _record(self, task, state, message=""):
        if not getattr(task, "actions", None):
            return                # a group (fetch_results, wait ...): its steps are recorded
        with self._lock:
            began = self._began.pop(task.name, None)
            entry = {"task": task.name, "state": state,
                     "seconds": None if began is None else round(self.clock() - began, 3)}
            if message:
                entry["message"] = message
            self.steps[task.name] = entry

    def runs(self):
        """The outcomes of the runs whose steps this call had (None: the machine could not say)."""
        names = outcomes.runs_in(self.steps)
        if not names:
            return []
        try:
            return outcomes.run_outcomes(self.project, names)
        except HpcdoError:
            return None

    def document(self, complete=True):
        """The JSON report, as a dict (docs/reports.md)."""
        steps = list(self.steps.values())
        runs = self.runs()
        failed = [s for s in steps if s["state"] == FAILED]
        step_totals, run_totals = {}, {}
        for step in steps:
            step_totals[step["state"]] = step_totals.get(step["state"], 0) + 1
        for item in runs or []:
            run_totals[item.state] = run_totals.get(item.state, 0) + 1
        machine = self.project.machine
        ended = self.clock()
        return {"schema": outcomes.SCHEMA, "hpcdo": __version__,
                "machine": {"name": machine.name, "scheduler": machine.scheduler,
                            "host": getattr(self.project.session.remote, "host", "")},
                "tasks": self.selected, "complete": complete,
                "outcome": "failure" if failed or not complete else "success",
                "started": outcomes.iso(self.started), "ended": outcomes.iso(ended),
                "seconds": round(ended - self.started, 3),
                "steps": steps, "runs": None if runs is None else [r.to_dict() for r in runs],
                "totals": {"steps": step_totals, "runs": run_totals}}

    def write(self, complete=True):
        with self._lock:
            if self.written:
                return
            self.written = True
        doc = self.document(complete)
        for path, render in ((self.json_path, lambda: json.dumps(doc, indent=2, sort_keys=True) + "\n"),
                             (self.junit_path, lambda: junit_xml(doc))):
            if path:
                try:
                    write_atomically(path, render())
                except OSError as exc:
                    sys.stderr.write("hpcdo: could not write %s: %s\n" % (path, exc.strerror or exc))

    def _at_exit(self):
        if not self.written:
            try:
                self.write(complete=False)
            except Exception:
                pass          # the call is ending anyway; its own error is said already


def _case(suite, classname, name, seconds=None):
    case = ET.SubElement(suite, "testcase", classname=classname, name=name)
    case.set("time", "%.3f" % (seconds or 0))
    return case


def junit_xml(doc):
    """JUnit XML of a call's report: a suite of its steps and a suite of its runs.

    A failed step, or a run whose job ended without results, is a
    ``<failure>`` with its message; a step not run because another failed,
    and a run still pending or running, is ``<skipped>``; an up-to-date step
    passes, saying so in ``<system-out>``.
    """
    machine = doc["machine"]["name"]
    root = ET.Element("testsuites", name=("hpcdo machine=%s %s" % (machine, " ".join(doc["tasks"]))).strip())
    host = socket.gethostname()
    suites = []
    steps = ET.Element("testsuite", name="hpcdo.%s.steps" % machine, timestamp=doc["started"][:-1],
                       hostname=host)
    for step in doc["steps"]:
        case = _case(steps, "hpcdo.%s.steps" % machine, step["task"], step["seconds"])
        if step["state"] == FAILED:
            ET.SubElement(case, "failure", message=step["message"].splitlines()[0],
                          type="StepFailed").text = step["message"]
        elif step["state"] in (NOT_RUN, IGNORED):
            ET.SubElement(case, "skipped", message=step.get("message", step["state"]))
        elif step["state"] == UP_TO_DATE:
            ET.SubElement(case, "system-out").text = "up to date on %s: not run" % machine
    suites.append(steps)
    if doc["runs"]:
        runs = ET.Element("testsuite", name="hpcdo.%s.runs" % machine, timestamp=doc["started"][:-1],
                          hostname=host)
        for run in doc["runs"]:
            case = _case(runs, "hpcdo.%s.runs.%s" % (machine, run["recipe"]), run["run"], run["elapsed_seconds"])
            said = "run %s: %s%s%s" % (run["run"], run["state"],
                                       " (job %s)" % run["job_id"] if run["job_id"] else "",
                                       "" if run["exit_code"] in (None, 0) else " with exit code %s" % run["exit_code"])
            if run["state"] in outcomes.FAILED_STATES:
                ET.SubElement(case, "failure", message=said, type=run["state"]).text = (
                    "%s\nlog: %s:%s\nretry: %s" % (said, machine, run["log"], run["retry"]))
            elif run["state"] != "completed":
                ET.SubElement(case, "skipped", message=said + (" (%s)" % run["reason"] if run["reason"] else ""))
            else:
                ET.SubElement(case, "system-out").text = "%s; results: %s" % (said, run["results"])
        suites.append(runs)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        cases = suite.findall("testcase")
        counts = {"tests": len(cases), "failures": sum(1 for c in cases if c.find("failure") is not None),
                  "errors": 0, "skipped": sum(1 for c in cases if c.find("skipped") is not None)}
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "%.3f" % sum(float(c.get("time")) for c in cases))
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", "%.3f" % (doc["seconds"] or 0))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
