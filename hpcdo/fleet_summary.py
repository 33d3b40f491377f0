"""The end of a call on several machines (:mod:`hpcdo.fleet`): which machines failed, and per run
how it stands on each machine.

Each machine's call wrote its ``--report`` JSON (docs/reports.md); this reads
them back.  The table has a row per run and machine: the run's state, its wall
time (the job's elapsed time) and each figure its recipe names
(:meth:`hpcdo.recipe.Recipe.figure`, read from the fetched results in
``results/<machine>/<run>/``).
"""

import json
import os
import xml.etree.ElementTree as ET

from . import HpcdoError, __version__
from . import outcomes
from .figures import read_figure
from .callreport import write_atomically


def shown(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return "%.4g" % value
    return str(value)


def recipe_figures(project_dir):
    """{recipe name: {figure name: (file, key)}} of the project's recipes ({} if they do not load)."""
    from .project import load_recipes
    try:
        return {r.name: dict(getattr(r, "figures", {}) or {}) for r in load_recipes(project_dir)}
    except HpcdoError:
        return {}


def _table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n" for row in rows)


class Fleet:
    """What each machine's call did: its child (code, error line) and its report."""

    def __init__(self, project_dir, children, seconds, figures=None):
        self.dir = project_dir
        self.children = children
        self.seconds = seconds
        self.reports = {c.machine: self._read(c.report_path) for c in children}
        self._figures = figures

    @staticmethod
    def _read(path):
        try:
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    @property
    def figures(self):
        if self._figures is None:
            self._figures = recipe_figures(self.dir)
        return self._figures

    def failed(self):
        return [c for c in self.children if c.code != 0]

    def why(self, child):
        """One line: why ``child``'s machine failed."""
        doc = self.reports.get(child.machine) or {}
        failed = [s for s in doc.get("steps") or () if s.get("state") == "failed"]
        if failed:
            lines = [((s.get("message") or "failed").strip().splitlines() or ["failed"])[0] for s in failed]
            same = lines.count(lines[0]) - 1
            more = [" (the same for %d more steps)" % same if same else "",
                    " (and %d more failed steps)" % (len(lines) - 1 - same) if len(lines) - 1 > same else ""]
            return "%s: %s%s" % (failed[0]["task"], lines[0], "".join(more))
        return child.error_line() or "exit code %s" % child.code

    def machines_text(self):
        """One line per machine: ok or failed (with why), its call's time; then the totals."""
        bad = self.failed()
        lines = ["%d machines: %d ok, %d failed (%s)" % (
            len(self.children), len(self.children) - len(bad), len(bad), outcomes.duration(self.seconds))]
        width = max(len(c.machine) for c in self.children)
        for child in self.children:
            took = outcomes.duration((child.ended or 0) - (child.started or 0))
            if child.code == 0:
                lines.append("  %-*s  ok      %s" % (width, child.machine, took))
            else:
                lines.append("  %-*s  FAILED  %s  %s" % (width, child.machine, took, self.why(child)))
        return "\n".join(lines) + "\n"

    def rows(self):
        """(run, machine, state, wall time, figures...) per run and machine, runs in first-seen order."""
        runs, by = [], {}
        for child in self.children:
            for item in (self.reports.get(child.machine) or {}).get("runs") or ():
                key = (item.get("recipe"), item.get("run"))
                if key not in runs:
                    runs.append(key)
                by[(key, child.machine)] = item
        names = []
        for recipe, _run in runs:
            for name in self.figures.get(recipe, {}):
                if name not in names:
                    names.append(name)
        rows = [["run", "machine", "state", "wall"] + names]
        for recipe, run in runs:
            for i, child in enumerate(self.children):
                item = by.get(((recipe, run), child.machine))
                row = [run if i == 0 else "", child.machine]
                if item is None:
                    rows.append(row + ["-", "-"] + ["-"] * len(names))
                    continue
                row += [item.get("state") or "-", outcomes.duration(item.get("elapsed_seconds")) or "-"]
                wanted = self.figures.get(recipe, {})
                for name in names:
                    value = None
                    if name in wanted and item.get("results"):
                        file, key = wanted[name]
                        value = read_figure(os.path.join(self.dir, item["results"], file), key)
                    row.append(shown(value))
                rows.append(row)
        return rows

    def text(self):
        """The machines' lines, then the cross-machine table of runs (when the calls had runs)."""
        rows = self.rows()
        return self.machines_text() + (_table(rows) if len(rows) > 1 else "")

    def status_json(self):
        """``status --json`` on several machines: each machine's document under its name (null
        when its call printed none)."""
        docs = {}
        for child in self.children:
            try:
                docs[child.machine] = json.loads("".join(child.stdout))
            except ValueError:
                docs[child.machine] = None
        return json.dumps({"machines": docs}, indent=2, sort_keys=True) + "\n"

    def document(self):
        """``--report FILE`` of the whole call: each machine's own report (null: it wrote none)."""
        return {"schema": outcomes.SCHEMA, "hpcdo": __version__,
                "machines": [c.machine for c in self.children],
                "outcome": "failure" if self.failed() else "success",
                "seconds": round(self.seconds, 3),
                "failed": [{"machine": c.machine, "exit_code": c.code, "error": self.why(c)}
                           for c in self.failed()],
                "reports": {c.machine: self.reports.get(c.machine) for c in self.children}}

    def write(self, report_path="", junit_path=""):
        if report_path:
            write_atomically(report_path, json.dumps(self.document(), indent=2, sort_keys=True) + "\n")
        if junit_path:
            write_atomically(junit_path, self.junit())

    def junit(self):
        """``--junit FILE``: every machine's suites (a machine whose call wrote no record is one
        failed case saying why)."""
        from .callreport import junit_xml
        root = ET.Element("testsuites", name="hpcdo machine=%s" % ",".join(c.machine for c in self.children))
        for child in self.children:
            doc = self.reports.get(child.machine)
            if doc is None:
                suite = ET.SubElement(root, "testsuite", name="hpcdo.%s" % child.machine, tests="1",
                                      failures="1", errors="0", skipped="0", time="0")
                case = ET.SubElement(suite, "testcase", classname="hpcdo.%s" % child.machine, name="call")
                ET.SubElement(case, "failure", message=self.why(child))
                continue
            for suite in ET.fromstring(junit_xml(doc)).findall("testsuite"):
                root.append(suite)
        totals = {k: sum(int(s.get(k, 0)) for s in root) for k in ("tests", "failures", "errors", "skipped")}
        for key, value in totals.items():
            root.set(key, str(value))
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
