"""The demo's analysis (``analyse:report`` of recipes/lbflow.py) on generated sets of runs.

The demo recipe's own report function, with other runs than the demo's: a
table of every run and one picture panel per run, made after the fetches,
redone when a run's results change and only then (a run fetched again with
the same content does not redo it), and, where matplotlib is missing, a
report.md that says so in its first line and one line on the terminal.
"""

import os
import re
import shutil
import struct
import textwrap

import pytest

from conftest import ROOT, on_machine

#: run name -> (geometry, steps): four runs, two of one geometry
RUNS = {"wide": ("straight", 200), "narrow": ("stenosis", 300), "fork": ("bifurcation", 250),
        "fork2": ("bifurcation", 120)}

HIDE_MATPLOTLIB = """
import sys

class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError("No module named %r" % name, name=name)
        return None

sys.meta_path.insert(0, _Hidden())
"""


def write_runs(project, runs):
    """The demo recipe, analysis and all, with ``runs`` instead of the demo's three."""
    text = open(os.path.join(ROOT, "recipes", "lbflow.py")).read()
    loop = re.search(r"^for geometry in .*?\n\n", text, re.S | re.M)
    assert loop, "the demo recipe's run loop moved; this test replaces it"
    lines = "".join('recipe.run(%r, geometry=%r, args=["--geometry", "{geometry}", "--steps", %d], cores=1, '
                    'walltime="00:05:00")\n' % (name, geometry, steps)
                    for name, (geometry, steps) in runs.items())
    with open(project.file("recipes/lbflow.py"), "w") as fh:
        fh.write(text[:loop.start()] + lines + "\n" + text[loop.end():])


def report_dir(project):
    return os.path.join(project.path, "results", project.machine)


def table(project):
    """run -> (geometry, steps) as report.md's table says."""
    text = open(os.path.join(report_dir(project), "report.md")).read()
    rows = re.findall(r"^\| (\S+) \| (\S+) \| (\d+) \| ([0-9.e+-]+) \| ([0-9.e+-]+) \| ([0-9.]+) \|$", text, re.M)
    return {r[0]: (r[1], int(r[2])) for r in rows}


def png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", head
    return struct.unpack(">II", head[16:24])


def stamps(project):
    d = report_dir(project)
    return {n: os.stat(os.path.join(d, n)).st_mtime_ns for n in ("report.md", "report.png")}


@pytest.fixture(params=["localhost", "testslurm"])
def report_project(request, tmp_path):
    yield from on_machine(request, tmp_path)


def test_the_report_is_made_last_and_redone_only_when_a_result_changes(report_project):
    pytest.importorskip("matplotlib")          # the test extra installs it
    project = report_project
    write_runs(project, RUNS)
    out = project.doit("fetch_results")
    assert out.ran[-1] == "analyse:report", out
    assert {"fetch_results:" + r for r in RUNS} <= out.ran_set(), out
    assert table(project) == RUNS
    # one panel per run: the figure is 8 x 2.6 inches a run at 90 dpi
    assert png_size(os.path.join(report_dir(project), "report.png")) == (720, round(2.6 * len(RUNS) * 90))
    before = stamps(project)

    again = project.doit("fetch_results")
    assert again.ran == [] and "analyse:report" in again.uptodate, again
    assert stamps(project) == before

    # one run's results gone locally: fetched again, the same content, no new report
    shutil.rmtree(project.results("fork"))
    out = project.doit("fetch_results")
    assert [t for t in out.ran if not t.startswith(("wait:", "_"))] == ["fetch_results:fork"], out
    assert stamps(project) == before

    # one run's arguments changed: that run again, then the report
    changed = dict(RUNS, fork2=("bifurcation", 140))
    write_runs(project, changed)
    out = project.doit("fetch_results")
    assert [t for t in out.ran if not t.startswith(("wait:", "_"))] == \
        ["submit:fork2", "fetch_results:fork2", "analyse:report"], out
    assert table(project) == changed
    after = stamps(project)
    assert all(after[n] != before[n] for n in after)


def test_without_matplotlib_the_report_is_the_table_and_says_so(local_project, tmp_path):
    project = local_project
    write_runs(project, {"one": ("straight", 60), "two": ("stenosis", 80)})
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(textwrap.dedent(HIDE_MATPLOTLIB))
    env = {"PYTHONPATH": "%s%s%s" % (hide, os.pathsep, os.environ.get("PYTHONPATH", ROOT))}
    out = project.doit("fetch_results", env=env)
    assert out.ran[-1] == "analyse:report" and "Traceback" not in out.out, out
    note = "report.png was not made: matplotlib is not installed (pip install 'hpcdo[demo]')"
    assert [line for line in out.out.splitlines() if "matplotlib" in line] == [note], out
    text = open(os.path.join(report_dir(project), "report.md")).read()
    assert text.splitlines()[0] == note
    assert table(project) == {"one": ("straight", 60), "two": ("stenosis", 80)}
    assert not os.path.exists(os.path.join(report_dir(project), "report.png"))
    assert project.doit("fetch_results", env=env).ran == []
    # matplotlib installed later: the report is made again, picture and all
    if _have_matplotlib():
        out = project.doit("fetch_results")
        assert out.ran == ["analyse:report"], out
        assert png_size(os.path.join(report_dir(project), "report.png")) == (720, round(2.6 * 2 * 90))
        assert "matplotlib" not in open(os.path.join(report_dir(project), "report.md")).read().splitlines()[0]


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
