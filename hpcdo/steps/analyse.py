"""The analysis step: a recipe's local functions over fetched results, as doit tasks.

Each :class:`hpcdo.analysis.Analysis` of each recipe becomes the task
``analyse:<name>``.  Unlike the steps on the machine, its record is doit's
own: its ``uptodate`` holds the digest of the function's code and the digest
of the content of its runs' results (every fetched file, and the provenance
without the time of its fetch), so it reruns exactly when one of those
changes: a run fetched again with the same content does not redo it.
"""

import hashlib
import json
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
                "task_dep": [fetch_task(run.name) for run in runs],
                "targets": [os.path.join(out_dir, o) for o in analysis.outputs],
                "uptodate": [config_changed({"code": analysis.code_digest(), "runs": sorted(results),
                                             "outputs": analysis.outputs}),
                             ResultsUnchanged(results)],
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


class ResultsUnchanged:
    """doit ``uptodate``: the runs' results hold what they held when the analysis last ran.

    Asked once the fetches it depends on have run; the digest it computes is
    saved with the task's values when the analysis succeeds, and so is each
    file's size, modification time and hash, so that a later call hashes
    again only the files whose size or time changed (a no-op call reads no
    result file).
    """

    KEY, FILES = "_hpcdo_results", "_hpcdo_result_files"

    def __init__(self, results):
        self.results = dict(results)

    def __call__(self, task, values):
        seen = {}
        digest = results_digest(self.results, values.get(self.FILES) or {}, seen)
        task.value_savers.append(lambda: {self.KEY: digest, self.FILES: seen})
        return values.get(self.KEY) == digest


def results_digest(results, known=None, seen=None):
    """A hash of the content of each run's results directory (``{run: dir}``).

    The provenance file counts without ``fetched_at``, which a fetch of the
    same results rewrites; a missing directory counts as missing.
    ``known``: {path: [size, mtime_ns, hash]} of an earlier call, whose hash
    is taken for a file of the same size and time; ``seen`` is filled so.
    """
    known = known or {}
    seen = {} if seen is None else seen
    h = hashlib.sha256()
    for run in sorted(results):
        top = results[run]
        h.update(b"run\0%s\0" % run.encode())
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, top)
                if name.startswith(".") or os.path.islink(path):
                    continue
                h.update(b"file\0%s\0" % rel.encode())
                h.update(_cached(path, rel == PROVENANCE, known, seen))
    return h.hexdigest()


def _cached(path, provenance, known, seen):
    """The content hash of ``path``, from ``known`` when its size and time are the same."""
    try:
        st = os.stat(path)
    except OSError:
        return b"unreadable"
    was = known.get(path)
    if isinstance(was, list) and len(was) == 3 and was[:2] == [st.st_size, st.st_mtime_ns]:
        digest = bytes.fromhex(was[2])
    else:
        digest = _content(path, provenance)
    seen[path] = [st.st_size, st.st_mtime_ns, digest.hex()]
    return digest


def _content(path, provenance):
    if provenance:
        try:
            with open(path) as fh:
                prov = json.load(fh)
            prov.pop("fetched_at", None)
            return hashlib.sha256(json.dumps(prov, sort_keys=True).encode()).digest()
        except (OSError, ValueError):
            pass
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return b"unreadable"
    return h.digest()
