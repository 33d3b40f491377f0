"""Fault 7: two invocations for the same machine at once.

Two ``doit fetch_results`` start together in the same project (two
terminals, or a terminal and a cron job).  The second must either wait for
the first (and then find everything done) or refuse with a clear message
naming the machine and the other invocation; never run the same steps side
by side in the same remote build directory, never submit twice, never
leave the local state (doit's database, results/) corrupted: a third call
afterwards does nothing.

(tests/e2e/test_jobs.py covers three simultaneous ``submit`` of one run:
one job.)
"""

import os
import json
import re
import time

from conftest import write_recipe
from faults_helpers import finish, jobs_for

RUNS = [("a", "straight", ["--geometry", "{geometry}", "--steps", 3000]),
        ("b", "bifurcation", ["--geometry", "{geometry}", "--steps", 3000])]


def ran(stdout):
    return set(re.findall(r"^\.  (\S+)$", stdout, re.M))


def start_two(project, *args, delay=0.0, other=None):
    """Start ``doit args`` in ``project`` and, ``delay`` seconds later, in ``other`` (or ``project``
    again); their (exit status, output) pairs."""
    first = project.popen(*args)
    time.sleep(delay)
    second = (other or project).popen(*args)
    return [finish(proc) for proc in (first, second)]


def check_pair(project, outs):
    (rc1, out1), (rc2, out2) = outs
    for rc, output in outs:
        assert "Traceback" not in output, output
        if rc != 0:
            # refused: one clear line about the other invocation on this machine
            assert re.search(r"another|already running|in use|busy|lock", output, re.I), output
            assert project.machine in output, output
    assert rc1 == 0 or rc2 == 0, outs
    both = ran(out1) & ran(out2)      # task lines are on stdout; stderr adds none
    assert not both, "both invocations ran %s" % sorted(both)


def local_state_ok(project):
    with open(os.path.join(project.path, ".hpcdo", "doit-%s.json" % project.machine)) as fh:
        assert isinstance(json.load(fh), dict)
    parent = os.path.join(project.path, "results", project.machine)
    assert sorted(os.listdir(parent)) == ["a", "b"], os.listdir(parent)


def test_two_calls_at_once_from_scratch(slurm_project):
    project = slurm_project
    write_recipe(project, RUNS)
    outs = start_two(project, "fetch_results")
    check_pair(project, outs)
    for run in ("a", "b"):
        assert len(jobs_for(project, run)) == 1
    again = project.doit("fetch_results")
    assert again.ran == [], again
    local_state_ok(project)
    for run in ("a", "b"):
        assert project.summary(run)["steps"] == 3000


def test_two_calls_at_once_after_an_edit(slurm_project):
    """Both see the same stale compile and runs: they must not build and submit side by side."""
    project = slurm_project
    write_recipe(project, RUNS)
    project.doit("fetch_results")
    project.edit("demo/lbflow/src/output.c", "\\\"max_velocity\\\"", "\\\"max_speed\\\"")
    outs = start_two(project, "fetch_results", delay=0.3)
    check_pair(project, outs)
    for run in ("a", "b"):
        assert len(jobs_for(project, run)) == 2           # the first pipeline's, and one more
        assert "max_speed" in project.summary(run)
    again = project.doit("fetch_results")
    assert again.ran == [], again
    local_state_ok(project)


def test_two_checkouts_at_once_on_one_work_root(slurm_project, tmp_path):
    """Two checkouts (two laptops, a laptop and CI) drive the same work root at once: they share
    no local state, so each probes and works; on the machine their builds take turns (a build
    lock) and their submissions too (the run's lock and compare-and-swap): both succeed, no
    build breaks, one job per run, and afterwards neither has anything left to do."""
    project = slurm_project
    write_recipe(project, RUNS)
    other = project.clone_to(tmp_path / "other")
    for rc, output in start_two(project, "fetch_results", other=other):
        assert rc == 0 and "Traceback" not in output, output
    for run in ("a", "b"):
        assert len(jobs_for(project, run)) == 1
    for one in (project, other):
        again = one.doit("fetch_results")
        assert not {"clone", "configure", "compile"} & again.ran_set(), again
        assert not [t for t in again.ran if t.startswith("submit:")], again
