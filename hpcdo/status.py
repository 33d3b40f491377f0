"""``doit machine=X status``: each step's state and each run's job, as a table or as JSON.

Both come from the call's one probe (no remote command of their own).  The
JSON document is stable and described in ``docs/reports.md``:
``{"schema": 1, "machine": {...}, "steps": [...], "runs": [...], "totals": {...}}``.
"""

import time

from . import loop, outcomes
from .recipe import Git


def _step(name, target, many):
    return "%s:%s" % (name, target.recipe.name) if many else name


def step_states(project):
    """[{"task", "recipe", "state", "note"}] of every build step and every run step of the project.

    ``state``: ``up_to_date`` or ``stale`` (doit would run the step); ``note``:
    the commit a Git source is at, and what its branch names now, else "".
    """
    steps = project.steps
    many = len(steps.targets) > 1
    found = []
    for target in steps.targets:
        build = steps.build[target.recipe.name]
        rows = [(_step("clone", target, many), build.clone_current()),
                (_step("configure", target, many), build.configure_current()),
                (_step("compile", target, many), build.compile_current())]
        rows += [("send_geometry:" + g, build.geometry_current(g)) for g in target.recipe.geometries]
        for name, ok in rows:
            note = build.commit_note().strip(" ()") if name.startswith("clone") and isinstance(
                target.recipe.source, Git) else ""
            found.append({"task": name, "recipe": target.recipe.name,
                          "state": "up_to_date" if ok else "stale", "note": note})
        results = steps.results[target.recipe.name]
        for run in target.recipe.runs.values():
            for name, ok in (("submit", steps.jobs.submit.submit_current(target, run)),
                             ("wait", steps.jobs.wait_current(target, run)),
                             ("fetch_results", results.fetch_current(run))):
                found.append({"task": "%s:%s" % (name, run.name), "recipe": target.recipe.name,
                              "state": "up_to_date" if ok else "stale", "note": ""})
    return found


def document(project, now=None):
    """``status --json``: the machine, every step's state, every run's outcome, the totals."""
    now = time.time() if now is None else now
    runs = outcomes.run_outcomes(project, now=now)
    counts = {}
    for item in runs:
        counts[item.state] = counts.get(item.state, 0) + 1
    machine = project.machine
    return {"schema": outcomes.SCHEMA, "generated": outcomes.iso(now),
            "machine": {"name": machine.name, "host": project.session.remote.host,
                        "scheduler": machine.scheduler},
            "steps": step_states(project), "runs": [item.to_dict() for item in runs], "totals": counts,
            **({"loops": loop.status_document(project.steps.targets)} if any(
                t.recipe.loops for t in project.steps.targets) else {})}


def _when(stamp, now):
    if stamp is None:
        return "-"
    local = time.localtime(stamp)
    same_day = time.localtime(now)[:3] == local[:3]
    return time.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M", local)


RUN_COLUMNS = ("run", "job", "state", "reason", "submitted", "started", "ended", "elapsed/walltime", "exit",
               "results")


def table(project, now=None):
    """The status table: the machine, each recipe's build steps, then one row per run."""
    now = time.time() if now is None else now
    machine = project.machine
    lines = ["machine  %s (%s, %s)" % (machine.name, project.session.remote.host, machine.scheduler)]
    states = step_states(project)
    for target in project.steps.targets:
        lines.append("recipe   %s" % target.recipe.name)
        rows = [(s["task"], s["state"].replace("_", " ") + (" (%s)" % s["note"] if s["note"] else ""))
                for s in states if s["recipe"] == target.recipe.name and not s["task"].startswith(
                    outcomes.RUN_STEPS)]
        width = max(len(a) for a, _b in rows)
        lines += ["  %-*s  %s" % (width, a, b) for a, b in rows]
    rows = [RUN_COLUMNS]
    for item in outcomes.run_outcomes(project, now=now):
        state = item.state.replace("_", " ") + ("" if item.current or not item.job_id else " (older inputs)")
        wall = "%s/%s" % (outcomes.duration(item.elapsed) or "-", outcomes.duration(item.walltime) or "-")
        results = item.results + ("" if item.fetched else " (not fetched)")
        if item.failed:
            results += "  log: %s  retry: %s" % (item.log, item.retry)
        rows.append(("run " + item.run, item.job_id or "-", state, item.reason or "-",
                     _when(item.submitted, now), _when(item.started, now), _when(item.ended, now), wall,
                     "-" if item.exit_code is None else str(item.exit_code), results))
    widths = [max(len(r[i]) for r in rows) for i in range(len(RUN_COLUMNS) - 1)]
    for row in rows:
        lines.append("  ".join(v.ljust(widths[i]) if i < len(widths) else v for i, v in enumerate(row)).rstrip())
    lines += loop.status_lines(project.steps.targets)        # each loop's history (hpcdo.loop)
    return "\n".join(lines)
