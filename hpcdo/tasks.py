"""doit tasks from a project's steps: names, dependencies, checks and actions.

Task names follow the steps: ``clone``, ``configure``, ``compile`` (with a
``:<recipe>`` suffix when a project has several recipes),
``send_geometry:<geometry>``, ``submit:<run>``, ``wait:<run>``,
``fetch_results:<run>``, ``analyse:<analysis>`` (a recipe's analyses of
fetched results: :mod:`hpcdo.steps.analyse`), and the groups
``send_geometry``, ``submit``, ``wait``, ``fetch_results`` and ``analyse``.  The ``wait`` and ``fetch_results`` groups
submit every run before waiting for any, so jobs queue side by side.
``status``, ``cold``, ``cancel [RUN...]``, ``retry [RUN...]``, ``jobscript RUN...``
and ``check`` (is the machine ready: :mod:`hpcdo.steps.check`) complete the set.

Each task is one step of :mod:`hpcdo.steps`: its check (an up-to-date
:class:`Check`), its action, and its reason when stale.  Every check asks
the session, which asks the machine once; every action reports a failure
as one doit ``TaskFailed`` with a plain message.
"""

import inspect

from doit.exceptions import TaskFailed

from . import HpcdoError
from .schedulers.base import JobState
from .steps import analyse, send_input, steer
from .steps.check import check_machine
from .steps import loop as loops


def _action(func, *args):
    """A doit python-action that prints what ``func`` returns and turns errors into TaskFailed."""
    def action():
        try:
            out = func(*args)
        except HpcdoError as exc:
            return TaskFailed(str(exc))
        if out:
            print(out.rstrip("\n"))
        return True
    action.__name__ = getattr(func, "__name__", "action")
    return action


class Check:
    """doit's up-to-date hook for one step, with a readable reason when it is stale.

    doit calls it to decide whether the step runs (an error means stale: the
    action will report it), and ``doit info TASK`` prints it, which shows
    the step's ``why_*`` (what the machine lacks) instead of a function's
    repr.
    """

    # doit inspects each uptodate callable's signature for its magic
    # arguments; a fixed one saves that work on every task of a no-op
    __signature__ = inspect.Signature()

    def __init__(self, func, args=(), why=None):
        self.func, self.args, self.why = func, args, why
        self.error = None

    def __call__(self):
        try:
            return bool(self.func(*self.args))
        except HpcdoError as exc:
            self.error = str(exc)
            return False

    def __str__(self):
        if self.error:
            return self.error
        if self.why is None:
            return "stale"
        try:
            return self.why(*self.args)
        except HpcdoError as exc:
            return str(exc)


def _check(func, *args, why=None):
    return Check(func, args, why)


def _step(step, target, many):
    return "%s:%s" % (step, target.recipe.name) if many else step


RUN_STEPS = ("submit", "wait", "fetch_results")


def batch_scope(words, run_names):
    """The runs this invocation will submit, from the task names (and their arguments) doit was given.

    A group (``fetch_results``, ``wait``, ``submit``, or no task at all,
    which means the default ``fetch_results``) selects every run; ``step:run``
    selects that run.  Other words (options, their values, other tasks) add
    nothing.
    """
    scope, named_task = set(), False
    for word in words:
        step, _, run = word.partition(":")
        if step in RUN_STEPS and not run:
            return set(run_names)
        if step in RUN_STEPS and run in run_names:
            scope.add(run)
            named_task = True
        elif word in ("clone", "configure", "compile", "send_geometry", "send_input", "status", "cold", "jobscript", "cancel",
                      "retry", "check", "steer", "tail") or \
                step in ("clone", "configure", "compile", "send_geometry", "send_input", "cold"):
            named_task = True
    return scope if named_task else set(run_names)


def generate(project, words=()):
    """Yield doit task dicts for every recipe on the project's machine.

    ``words``: the command line's positional words, which decide which runs
    are submitted together in one remote command.
    """
    steps = project.steps
    targets, jobs, submit = steps.targets, steps.jobs, steps.jobs.submit
    many = len(targets) > 1
    machine = project.machine.name
    all_runs = steps.runs()
    # a loop's iterations are run by its task loop:<name>, one after another
    runs = [(t, run) for t, run in all_runs if not loops.is_iteration(run)]
    in_loop = {run.name: "loop:" + run.loop.name for _t, run in all_runs if loops.is_iteration(run)}
    loop_steps = [(t, loops.LoopStep(steps, t, lp)) for t in targets for lp in t.recipe.loops.values()]
    submits = ["submit:" + run.name for _t, run in runs]
    batch = batch_scope(words, [run.name for _t, run in runs])
    if len(batch) < 2:
        batch = set()

    # Group definitions come first so that doit appends the subtasks after
    # the listed dependencies: every run is submitted before any is waited for.
    yield _group("send_geometry", "upload every geometry", [])
    yield _group("send_input", "upload every input the machine lacks", [])
    yield _group("submit", "submit every run", [])
    yield _group("wait", "submit every run, then wait for all", submits)
    # a recipe's analyses run last, once the runs they read are fetched
    analyses = list(analyse.tasks(project, lambda run_name: in_loop.get(run_name, "fetch_results:" + run_name)))
    yield _group("fetch_results", "the whole pipeline: build, submit every run, wait, fetch every result"
                 + (", then analyse them" if analyses else ""),
                 submits + ["loop:" + s.loop.name for _t, s in loop_steps] +
                 ["analyse:" + a["name"] for a in analyses])
    if analyses:
        yield _group("analyse", "every analysis of fetched results (each fetches what it reads first)", [])
        yield from analyses
    if many:
        for step in ("clone", "configure", "compile"):
            yield _group(step, "%s every recipe" % step, [])

    for target in targets:
        name = target.recipe.name
        build = steps.build[name]
        clone, configure, compile_ = (_step(s, target, many) for s in ("clone", "configure", "compile"))
        yield _task(clone, "sync or clone %s's source to %s" % (name, machine),
                    _action(build.do_clone), _check(build.clone_current, why=build.why_clone), [])
        yield _task(configure, "run CMake for %s on %s" % (name, machine),
                    _action(build.do_configure), _check(build.configure_current, why=build.why_configure),
                    [clone])
        yield _task(compile_, "build %s on %s" % (name, machine),
                    _action(build.do_compile), _check(build.compile_current, why=build.why_compile), [configure])
        for gname in target.recipe.geometries:
            yield _task("send_geometry:" + gname, "upload geometry %s to %s" % (gname, machine),
                        _action(build.do_send_geometry, gname),
                        _check(build.geometry_current, gname, why=build.why_geometry), [])
        sender = send_input.SendInput(target)
        for iname in target.recipe.inputs:
            yield _task("send_input:" + iname, "upload input %s to %s (once per content)" % (iname, machine),
                        _action(sender.do, iname), _check(sender.current, iname, why=sender.why), [])

    if batch:
        # Every run this invocation submits goes in one remote command: each
        # of their submit tasks waits for this hidden task, then reports.
        keys = {t.run_key(run) for t, run in runs if run.name in batch}
        deps = sorted({_step("compile", t, many) for t, run in runs if run.name in batch} |
                      {"send_geometry:" + run.geometry for _t, run in runs if run.name in batch and run.geometry} |
                      {"send_input:" + i for _t, run in runs if run.name in batch for i in run.inputs})
        yield {"basename": "_submit_batch", "doc": "submit the selected stale runs in one remote command",
               "actions": [_action(submit.submit_batch, keys)],
               "uptodate": [_check(lambda: not submit.stale_runs(keys))],
               "task_dep": deps, "verbosity": 1}
    for target, run in runs:
        results = steps.results[target.recipe.name]
        compile_ = _step("compile", target, many)
        deps = [compile_] + (["send_geometry:" + run.geometry] if run.geometry else []) + \
            ["send_input:" + i for i in run.inputs]
        if run.name in batch:
            deps.append("_submit_batch")
        yield _task("submit:" + run.name, "submit run %s on %s (once per inputs)" % (run.name, machine),
                    _action(submit.do_submit, target, run),
                    _check(submit.submit_current_here, target, run, why=submit.why_submit), deps)
        yield _task("wait:" + run.name, "wait for run %s's job to end" % run.name,
                    _action(jobs.do_wait, target, run), _check(jobs.wait_current, target, run, why=jobs.why_wait),
                    ["submit:" + run.name])
        yield _task("fetch_results:" + run.name,
                    "fetch run %s's results into results/%s/%s/" % (run.name, machine, run.name),
                    _action(results.do_fetch, run), _check(results.fetch_current, run, why=results.why_fetch),
                    ["wait:" + run.name])

    if loop_steps:
        yield _group("loop", "run every loop of iterations until it converges", [])
    for target, step in loop_steps:
        geometry = step.loop.settings.get("geometry")
        yield _task("loop:" + step.loop.name, "%s: iterate %s on %s (at most %d runs) until it converges"
                    % (target.recipe.name, step.loop.name, machine, step.loop.max_iterations),
                    _action(step.do_loop), _check(step.current, why=step.why),
                    [_step("compile", target, many)] + (["send_geometry:" + geometry] if geometry else []))

    yield {"basename": "jobscript", "pos_arg": "names", "verbosity": 2, "uptodate": [False],
           "doc": "print the jobscripts of the named runs for %s, without submitting: "
                  "doit jobscript RUN..." % machine,
           "actions": [_jobscripts(project, all_runs)]}
    yield {"basename": "cancel", "pos_arg": "names", "verbosity": 2, "uptodate": [False],
           "doc": "cancel the pending or running jobs of the named runs (all runs if none) on %s: "
                  "doit cancel [RUN...]" % machine,
           "actions": [_cancel(project, all_runs)]}
    yield {"basename": "retry", "pos_arg": "names", "verbosity": 2, "uptodate": [False],
           "doc": "submit again the named runs (all failed runs if none) whose job failed for their "
                  "current inputs on %s: doit retry [RUN...]" % machine,
           "actions": [_retry(project, all_runs)]}
    # ``steer RUN`` and ``tail RUN``: look into a running job (hpcdo.steps.steer)
    yield from steer.tasks(project, runs)
    yield {"basename": "status", "doc": "show each step's state and each run's job, state, queue reason, "
                                         "times, exit code and results on %s (--json: as JSON)" % machine,
           "params": [{"name": "json", "long": "json", "type": bool, "default": False,
                       "help": "print the status as one JSON document for scripts (docs/reports.md)"}],
           "actions": [_status(project)], "uptodate": [False], "verbosity": 2}
    yield check_task(project)
    # ``cold`` does every recipe, ``cold:<recipe>`` one
    yield {"basename": "cold", "name": None, "task_dep": [],
           "doc": "remove the source and build trees of every recipe on %s, then clone and rebuild from "
                  "scratch (cold:<recipe> for one); run directories and results are kept" % machine}
    for target in targets:
        build = steps.build[target.recipe.name]
        yield {"basename": "cold", "name": target.recipe.name, "uptodate": [False], "verbosity": 2,
               "doc": "remove %s on %s, then clone and rebuild %s from scratch"
                      % (" and ".join(build.cold_paths()), machine, target.recipe.name),
               "actions": [_action(build.cold)]}


def _status(project):
    def action(json):
        return _action(project.status_json if json else project.status_table)()
    return action


def check_task(project):
    """The ``check`` task: is the machine ready for hpcdo, a table with what to change where.

    It needs only the project's machine and session (``project`` may be a
    :class:`hpcdo.steps.check.MachineOnly` when the recipes do not load) and
    fails when any check does, after printing the whole table.
    """
    def action():
        try:
            table, failed = check_machine(project)
        except HpcdoError as exc:
            return TaskFailed(str(exc))
        print(table)
        if failed:
            return TaskFailed("machine %s: %d check%s failed; each FAIL line above says what to change"
                              % (project.machine.name, failed, "" if failed == 1 else "s"))
        return True
    action.__name__ = "check"
    return {"basename": "check", "verbosity": 2, "uptodate": [False], "actions": [action],
            "doc": "check that %s is ready: login, work root, modules, compilers, scheduler, clock"
                   % project.machine.name}


def _pick(runs, names):
    """(the (target, run) pairs called ``names``, or all of them if none; an error or None)."""
    by_name = {run.name: (target, run) for target, run in runs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        return [], "unknown run %s; runs: %s" % (", ".join(unknown), ", ".join(sorted(by_name)))
    return [by_name[n] for n in names] if names else list(runs), None


def _jobscripts(project, runs):
    def action(names):
        if not names:
            return TaskFailed("name one or more runs: doit jobscript RUN... (runs: %s)"
                              % ", ".join(sorted(run.name for _t, run in runs)))
        pairs, error = _pick(runs, names)
        if error:
            return TaskFailed(error)
        try:
            for target, run in pairs:
                print(target.jobscript(run).rstrip("\n"))
        except HpcdoError as exc:
            return TaskFailed(str(exc))
        return True
    return action


def _cancel(project, runs):
    def action(names):
        pairs, error = _pick(runs, names)
        if error:
            return TaskFailed(error)
        return _action(project.steps.jobs.cancel, pairs)()
    return action


def _ended_badly(info):
    state = info.state
    return not (state.done or state.active or state is JobState.NONE)


def _retry(project, runs):
    def action(names):
        pairs, error = _pick(runs, names)
        if error:
            return TaskFailed(error)
        if not names:
            pairs = [(t, run) for t, run in pairs if _ended_badly(project.session.job(t.run_key(run)))]
            if not pairs:
                print("no run has a failed job to retry")
                return True
        return _action(project.steps.jobs.retry, pairs)()
    return action


def _named(name):
    """doit's spelling of a task name: 'a:b' is subtask b of group a."""
    if ":" in name:
        basename, sub = name.split(":", 1)
        return {"basename": basename, "name": sub}
    return {"basename": name}


def _task(name, doc, action, check, task_dep):
    return dict(_named(name), doc=doc, actions=[action], uptodate=[check],
                task_dep=list(task_dep), verbosity=1)


def _group(name, doc, task_dep):
    return {"basename": name, "name": None, "doc": doc, "task_dep": list(task_dep)}
