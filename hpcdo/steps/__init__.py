"""The steps that act on a machine, each with its check, its reason and its action.

:class:`Steps` holds them for one project on one machine: per target its
:class:`~hpcdo.steps.build.Build` and :class:`~hpcdo.steps.results.Results`,
and the machine's one :class:`~hpcdo.steps.jobs.Jobs`.  :mod:`hpcdo.tasks`
turns them into doit tasks.
"""

from ..recipe import Git
from .build import Build
from .jobs import Jobs
from .results import Results


class Steps:
    """Every step of ``targets`` (one project's recipes) on ``session``'s machine."""

    def __init__(self, session, targets):
        self.session = session
        self.targets = list(targets)
        self.build = {t.recipe.name: Build(t) for t in self.targets}
        self.results = {t.recipe.name: Results(t) for t in self.targets}
        self.jobs = Jobs(session)

    def runs(self):
        """(target, run) of every run of every target."""
        return [(t, run) for t in self.targets for run in t.recipe.runs.values()]

    def status_rows(self, target):
        """(step, state) rows of ``target`` for the status table."""
        build, results = self.build[target.recipe.name], self.results[target.recipe.name]
        rows = [("clone", build.clone_current()), ("configure", build.configure_current()),
                ("compile", build.compile_current())]
        rows += [("send_geometry:" + g, build.geometry_current(g)) for g in target.recipe.geometries]
        out = [(name, "up to date" if ok else "stale") for name, ok in rows]
        if isinstance(target.recipe.source, Git):
            out[0] = ("clone", out[0][1] + build.commit_note())
        for run in target.recipe.runs.values():
            info = self.session.job(target.run_key(run))
            current = info.sig and info.sig == target.submit_sig(run)
            job = "%s %s" % (info.id, info.state.value) if info.id else "never submitted"
            if info.id and not current:
                job += " (older inputs)"
            fetched = "fetched" if results.fetch_current(run) else "not fetched"
            out.append(("run " + run.name, "%s, %s" % (job, fetched)))
        return out
