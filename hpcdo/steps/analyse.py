"""The analysis step: a recipe's local functions over fetched results, as doit tasks.

Each :class:`hpcdo.analysis.Analysis` of each recipe becomes the task
``analyse:<name>``.  Unlike the steps on the machine, its record is doit's
own: its ``file_dep`` is each run's provenance file (rewritten whenever the
run's results are fetched again) and its ``uptodate`` the digest of the
function's code, so it reruns exactly when one of those changes.
"""

import os

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from .. import ConfigError, HpcdoError
from .results import PROVENANCE


def tasks(project, fetch_task):
    """doit task dicts for every analysis of the project's recipes on its machine.

    ``fetch_task(run_name)`` names the task that fetches a run's results.
    """
    machine = project.machine.name
    out_dir = os.path.join(project.dir, "results", machine)
    names, outputs = {}, {}
    for target in project.targets:
        for analysis in target.recipe.analyses.values():
            if analysis.name in names:
                raise ConfigError("analysis %s is defined by recipes %s and %s; give one another name"
                                  % (analysis.name, names[analysis.name], target.recipe.name))
            names[analysis.name] = target.recipe.name
            for out in analysis.outputs:
                owner = next((t.recipe.name for t in project.targets if out in t.recipe.runs), None)
                if owner is not None:
                    raise ConfigError("analysis %s: output %s is also the name of run %s of recipe %s, whose "
                                      "results are results/%s/%s/; name one of them otherwise"
                                      % (analysis.name, out, out, owner, machine, out))
                if out in outputs:
                    raise ConfigError("analyses %s and %s both write results/%s/%s"
                                      % (outputs[out], analysis.name, machine, out))
                outputs[out] = analysis.name
            runs = [target.recipe.runs[name] for name in analysis.run_names()]
            results = {run.name: target.results_dir(run) for run in runs}
            yield {
                "basename": "analyse", "name": analysis.name,
                "doc": "%s: %s over the results of %d run%s on %s" % (
                    target.recipe.name, analysis.name, len(runs), "" if len(runs) == 1 else "s", machine),
                "actions": [_action(analysis, results, out_dir, target.recipe.path)],
                "file_dep": [os.path.join(d, PROVENANCE) for d in results.values()],
                "task_dep": [fetch_task(run.name) for run in runs],
                "targets": [os.path.join(out_dir, o) for o in analysis.outputs],
                "uptodate": [config_changed({"code": analysis.code_digest(), "runs": sorted(results),
                                             "outputs": analysis.outputs})],
                "verbosity": 1,
            }


def _action(analysis, results, out_dir, where):
    def action():
        os.makedirs(out_dir, exist_ok=True)
        try:
            print(analysis.execute(results, out_dir, where))
        except HpcdoError as exc:
            return TaskFailed(str(exc))
        return True
    action.__name__ = "analyse_" + analysis.name
    return action
