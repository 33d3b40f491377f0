"""An alias and its machine's own name are one machine end to end: one set of stamps on the
machine, one doit record, one results/<machine>/ (never results/<alias>/)."""

import os

from conftest import write_recipe

MACHINE_FILE = """
mycluster:
  extends: testslurm
  description: the loopback cluster under a site's own names
  aliases: [mc, my-cluster]
"""

RUNS = [("short", "straight", ["--geometry", "straight.gmy", "--steps", "40"]),
        ("narrow", "stenosis", ["--geometry", "stenosis.gmy", "--steps", "30"])]


def test_an_alias_and_the_canonical_name_share_stamps_and_results(slurm_project):
    project = slurm_project
    with open(project.file("machines/aliases.yml"), "w") as fh:
        fh.write(MACHINE_FILE)
    write_recipe(project, RUNS)

    project.machine = "mc"
    out = project.doit("fetch_results")
    assert {t for t in out.ran if t.startswith("submit:")} == {"submit:short", "submit:narrow"}, out
    results = os.path.join(project.path, "results")
    assert sorted(os.listdir(results)) == ["mycluster"], out
    for run in ("short", "narrow"):
        assert os.path.exists(os.path.join(results, "mycluster", run, "summary.json"))

    # the canonical name finds everything done: nothing runs, one remote operation
    project.machine = "mycluster"
    out = project.doit("fetch_results")
    assert out.ran == [], out
    assert [t["what"] for t in out.trace if t["op"] == "run"] == ["probe"], out.trace
    # the other alias too, and still no results/<alias>/
    project.machine = "my-cluster"
    out = project.doit("fetch_results")
    assert out.ran == [], out
    assert sorted(os.listdir(results)) == ["mycluster"]
    state = sorted(f for f in os.listdir(project.file(".hpcdo")) if f.startswith("doit-"))
    assert all(f.startswith("doit-mycluster.") for f in state), state

    # a change made under one name is one stale run under the other
    write_recipe(project, [RUNS[0], ("narrow", "stenosis", ["--geometry", "stenosis.gmy", "--steps", "31"])])
    project.machine = "mc"
    out = project.doit("fetch_results")
    assert {t for t in out.ran if t.startswith("submit:")} == {"submit:narrow"}, out
    project.machine = "mycluster"
    assert project.summary("narrow")["steps"] == 31
