"""Hostile input: results on the machine that would land outside results/ when fetched.

A completed run's directory on the machine is tampered with so that the real
fetch (``tar`` on the machine, unpacked here) carries a symbolic link out of
the results directory: absolute, relative with ``..``, or a link to a
directory followed by a file "inside" it.  Nothing may be written outside
``results/``, no link may land in it, and the local copy already there
stays as it was.  A link is no result (the machine's ``find -type f``
selects regular files only, since issue 11.9), so the fetch carries on
without it and keeps the local copy of the file the link replaced.

(tests/unit/test_transfer.py feeds hand-made archives with ``..``, absolute
names and escaping links straight to the unpacker.)
"""

import os

import pytest

from conftest import write_recipe
from faults_helpers import no_traceback

TAMPER = {
    "absolute-link": ["summary.json", "velocity.csv"],
    "relative-link": ["summary.json", "velocity.csv"],
    "link-then-file": ["summary.json", "velocity.csv", "out", "out/*"],
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_fetch_refuses_links_out_of_the_results(slurm_project, how):
    project = slurm_project
    outside = os.path.join(project.path, "outside")
    os.makedirs(outside)
    write_recipe(project, [("straight", "straight", ["--geometry", "{geometry}", "--steps", 300])])
    if how == "link-then-file":
        project.edit("recipes/lbflow.py", "outputs=['summary.json', 'velocity.csv']",
                     "outputs=['summary.json', 'velocity.csv', 'out', 'out/*']")
    project.doit("fetch_results")
    results = project.results("straight")
    before = {n: open(os.path.join(results, n), "rb").read() for n in sorted(os.listdir(results))}

    rd = "lbflow/runs/straight"
    if how == "absolute-link":
        project.remote("rm %s/velocity.csv && ln -s /etc/passwd %s/velocity.csv" % (rd, rd))
    elif how == "relative-link":
        # from results/testslurm/straight/ this reaches the project's outside/; on the machine it
        # reaches <work root>/outside/evil, made to exist so that the link is fetched at all
        project.remote("mkdir -p outside && echo evil > outside/evil && rm %s/velocity.csv && "
                       "ln -s ../../../outside/evil %s/velocity.csv" % (rd, rd))
    else:
        project.remote("ln -s \"$HOME/hpcdo-tests\" %s/out" % rd)
    out = project.doit("fetch_results", ok=None)
    no_traceback(out)
    assert os.listdir(outside) == []
    for base, dirs, names in os.walk(results):
        assert not [n for n in dirs + names if os.path.islink(os.path.join(base, n))], (base, dirs, names)
    after = {n: open(os.path.join(results, n), "rb").read() for n in sorted(os.listdir(results))}
    provenance = "hpcdo-provenance.json"
    assert {n: v for n, v in after.items() if n != provenance} == \
        {n: v for n, v in before.items() if n != provenance}
    parent = os.path.dirname(results)
    assert sorted(os.listdir(parent)) == ["straight"], os.listdir(parent)
