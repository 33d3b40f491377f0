"""What a call prints: doit's console report, with failures said once and summed up at the end.

doit's own console reporter prints a failed task's message, then an
``UnmetDependency`` block for every task after it (a run's fetch, the
``fetch_results`` group), then the failed task's captured output again.
Here a failed step is marked where it happens (``!! wait:bad failed``;
what its action wrote to stderr, such as the last lines of a job's log, is
already on the screen), tasks skipped because of it are not reported as
failures of their own, and the call ends with each failure's message, one
line per failed run.
"""

from doit.exceptions import UnmetDependency
from doit.reporter import ConsoleReporter

from . import progress

#: what else is told of a call's events besides the console (the ``--report``/``--junit``
#: record, :mod:`hpcdo.callreport`): objects with any of doit's reporter methods
#: (``initialize``, ``execute_task``, ``add_success``, ``add_failure``, ``skip_uptodate``,
#: ``skip_ignore``, ``complete_run``), called after the console's own
LISTENERS = []

_EVENTS = ("initialize", "get_status", "execute_task", "add_failure", "add_success", "skip_uptodate",
           "skip_ignore", "complete_run")


def _told(name):
    """A reporter method that does the console's part, then tells each listener."""
    own = getattr(_Console, name)

    def method(self, *args):
        own(self, *args)
        for listener in LISTENERS:
            hook = getattr(listener, name, None)
            if hook is not None:
                hook(*args)
    method.__name__ = name
    return method


#: tasks whose output is the answer itself (``status --json`` piped to a script): no title line
ANSWERS = frozenset({"status", "jobscript"})

#: up to this many runs, the summary has a line for each; past it, for those the call acted on
SUMMARY_ALL = 20


class _Console(ConsoleReporter):
    #: the progress display (:mod:`hpcdo.progress`): a live area on a terminal, lines in a log
    display = None

    def initialize(self, tasks, selected_tasks):
        self.display = progress.display(self.outstream, _machine())
        self.display.board.plan(tasks, selected_tasks)
        self.display.start()

    def write(self, text):
        if self.display is not None:
            self.display.write(text)
        else:
            self.outstream.write(text)

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        #: every task name this call reported (executed, up to date or failed), for the
        #: summary, and those it found up to date
        self.seen_names = []
        self.up_to_date = set()

    def _saw(self, task):
        self.seen_names.append(task.name)

    def execute_task(self, task):
        self._saw(task)
        if task.name not in ANSWERS:
            super().execute_task(task)
        if self.display is not None and task.actions:
            self.display.began(task.name)

    def add_success(self, task):
        if self.display is not None:
            self.display.ended(task.name, True)

    def skip_uptodate(self, task):
        self._saw(task)
        self.up_to_date.add(task.name)
        super().skip_uptodate(task)
        if self.display is not None:
            self.display.ended(task.name, True)

    def add_failure(self, task, fail):
        self._saw(task)
        if self.display is not None:
            self.display.ended(task.name, False)
        if isinstance(fail, UnmetDependency):
            return              # skipped because a step before it failed, which is said already
        self.failures.append({"task": task, "exception": fail})
        self.write("!! %s failed\n" % task.name)

    def summary(self):
        """The end-of-call summary, printed after the failures: per run its state, wall time and
        results path, for the runs whose steps this call reported (``hpcdo.outcomes.summary_text``)."""
        from . import outcomes          # only at the end: a no-op's start pays nothing for it
        runs = outcomes.runs_in(self.seen_names)
        if len(runs) <= SUMMARY_ALL:
            return outcomes.summary_text(None, self.seen_names)
        # many runs: a line for each run this call acted on or saw fail, totals for the rest
        acted = [name for name in self.seen_names if name not in self.up_to_date]
        acted_runs = outcomes.runs_in(acted)
        if acted_runs:
            return outcomes.summary_text(None, acted) + "\n(%d more runs up to date)" % (
                len(runs) - len(acted_runs))
        project = outcomes.call_project()
        where = " on %s" % project.machine.name if project is not None else ""
        return "%d runs%s: all fetched before, nothing to do" % (len(runs), where)

    def complete_run(self):
        if self.display is not None:
            self.display.stop()         # the live area is erased: what follows stays on the screen
        if self.failures:
            self.write("%d step%s failed:\n" % (len(self.failures), "" if len(self.failures) == 1 else "s"))
            # the same message from several steps (a template every submit renders) is said once
            said = {}
            for result in self.failures:
                said.setdefault(result["exception"].get_msg().strip() or "(no message)", []).append(
                    result["task"].name)
            for message, names in said.items():
                lines = message.splitlines()
                also = " [the same for %s]" % ", ".join(names) if len(names) > 1 else ""
                self.write("  %s%s\n" % (lines[0], also))
                for line in lines[1:]:
                    self.write("    %s\n" % line)
        summary = self.summary()
        if summary:
            self.write(summary.rstrip("\n") + "\n")
        if self.runtime_errors:
            self.write("\n".join(self.runtime_errors) + "\n")


class Reporter(_Console):
    desc = "hpcdo's console output: each failure once, and one line per failure at the end"


for _name in _EVENTS:
    setattr(Reporter, _name, _told(_name))


def _machine():
    """The machine of this call, as the loader took it from doit's ``machine=NAME`` word."""
    from doit import doit_cmd
    return (getattr(doit_cmd, "_CMDLINE_VARS", None) or {}).get("machine") or "localhost"
