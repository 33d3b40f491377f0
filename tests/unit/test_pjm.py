"""Fujitsu PJM (Fugaku): the scheduler module tested, as LSF's is, against PJM's documented
outputs (tests/data/schedulers/pjm/): parsers, the snippets under dash and bash with fake
pjsub/pjstat/pjdel, the probe, the jobscript's directives and its elapse-limit trap."""

import os
import subprocess
import textwrap

import pytest

from hpcdo import ConfigError
from hpcdo.project import Project
from hpcdo.schedulers import get
from hpcdo.schedulers.base import JobState, combine

from test_schedulers import (CANCELLED, COMPLETED, FAILED, PENDING, RUNNING, TIMEOUT, fakes,  # noqa: F401
                             fixture, probe_three_runs, render, submitted_id)

PJSTAT = {"7280061": (PENDING, None), "7280062": (RUNNING, None), "7280063": (PENDING, None),
          "7280064": (PENDING, None), "7280065": (RUNNING, None),
          "7280070": (COMPLETED, 0), "7280071": (FAILED, 3), "7280072": (TIMEOUT, 152),
          "7280073": (CANCELLED, None), "7280074": (FAILED, None), "7280075": (FAILED, None),
          "7280076": (TIMEOUT, None)}


def test_pjm_is_a_scheduler_with_its_commands():
    pjm = get("pjm")
    assert (pjm.submit_command, pjm.queue_command, pjm.cancel_command, pjm.directive) == \
        ("pjsub", "pjstat", "pjdel", "#PJM")


def test_pjm_parses_pjstat_of_unfinished_and_finished_jobs():
    assert get("pjm").parse_status(fixture("pjm/pjstat.txt")) == PJSTAT


def test_an_unfinished_row_wins_over_a_history_row():
    text = "JOB_ID ST EC PC SN\n55 RUN - - -\nJOB_ID ST EC PC SN\n55 EXT 0 0 0\n"
    assert get("pjm").parse_status(text) == {"55": (RUNNING, None)}


def test_pjm_status_snippet_asks_once_for_both_lists_of_the_ids(fakes, tmp_path):
    fakes.add("pjstat", 'case "$1" in -H) show pjm/pjstat.txt | sed -n "/^JOB_ID/,\\$p" | sed "1,6d";; '
                        '*) show pjm/pjstat.txt | sed -n "1,6p";; esac')
    ids = ",".join(sorted(PJSTAT))
    proc = fakes.status(get("pjm"), ids, tmp_path)
    assert get("pjm").parse_status(proc.stdout) == PJSTAT
    jids = "jid=" + ids.replace(",", "+")
    assert fakes.calls("pjstat") == ["-v --choose jid,st,ec,pc,sn --filter " + jids,
                                     "-H -v --choose jid,st,ec,pc,sn --filter " + jids]
    assert "@qfail" not in proc.stdout


def test_pjm_that_does_not_answer_makes_jobs_unknown_not_gone(fakes, tmp_path):
    _proc, jobs, queue = probe_three_runs(fakes, tmp_path, "pjm", {
        "pjstat": "echo '[ERR.] PJM 0010 pjstat Cannot connect to the job manager.' >&2; exit 1"}, "101", "204")
    for run, job_id in (("r1", "101"), ("r2", "204")):
        state, _code = combine(jobs[run]["id"], jobs[run]["exit"], *queue.get(job_id, (None, None)))
        assert state is JobState.UNKNOWN and state.active
    assert combine(jobs["r3"]["id"], jobs["r3"]["exit"], *queue.get("1", (None, None))) == (COMPLETED, 0)


def test_pjm_status_inside_the_probe(fakes, tmp_path):
    proc, jobs, queue = probe_three_runs(fakes, tmp_path, "pjm", {
        "pjstat": 'case "$1" in -H) printf "JOB_ID ST EC PC SN\\n204 EXT 152 20 24\\n";; '
                  '*) printf "JOB_ID ST EC PC SN\\n101 RUN - - -\\n";; esac'}, "101", "204")
    assert proc.returncode == 0, proc.stderr
    assert queue["101"] == (RUNNING, None) and queue["204"] == (TIMEOUT, 152)
    assert combine(jobs["r2"]["id"], jobs["r2"]["exit"], *queue["204"]) == (TIMEOUT, 152)


def test_pjm_submit_reads_the_id(fakes, tmp_path):
    (tmp_path / "job.sh").write_text(render("pjm.sh.j2"))
    fakes.add("pjsub", 'grep -q "^#PJM --name lb-r1$" job.sh || exit 3\nshow pjm/pjsub.txt')
    proc = fakes.submit(get("pjm"), tmp_path)
    assert proc.returncode == 0 and submitted_id(proc) == "7280061"
    assert fakes.calls("pjsub") == ["job.sh"]


@pytest.mark.parametrize("body", ["show pjm/pjsub-refused.txt",                  # exit 0, but no job
                                  "show pjm/pjsub-refused.txt >&2; exit 1"])
def test_pjm_submit_refused_is_a_failure(fakes, tmp_path, body):
    (tmp_path / "job.sh").write_text(render("pjm.sh.j2"))
    fakes.add("pjsub", body)
    proc = fakes.submit(get("pjm"), tmp_path)
    assert proc.returncode != 0 and submitted_id(proc) == ""
    assert "node=32 is greater than the upper limit" in proc.stdout + proc.stderr


def test_pjm_cancel(fakes, tmp_path):
    fakes.add("pjdel", "exit 1")
    proc = fakes.run("ids=11,12\n" + get("pjm").cancel_snippet(), tmp_path)
    assert proc.returncode == 0 and fakes.calls("pjdel") == ["11 12"]


def test_pjm_jobscript_directives():
    text = render("pjm.sh.j2")
    lines = [l for l in text.splitlines() if l.startswith("#PJM")]
    assert lines == ["#PJM --name lb-r1", '#PJM -L "node=2"', '#PJM -L "rscgrp=debug"',
                     '#PJM -L "elapse=26:03:04"', '#PJM --mpi "proc=6"', '#PJM --mpi "max-proc-per-node=4"',
                     "#PJM -g proj1", "#PJM -o job.out", "#PJM -j", "#PJM --extra=1"]
    minimal = render("pjm.sh.j2", nodes=1, cpn=1, cores=1, tasks=1, corespernode=None, walltime=None,
                     partition=None, account=None, directives=[])
    assert [l for l in minimal.splitlines() if l.startswith("#PJM")] == [
        "#PJM --name lb-r1", '#PJM -L "node=1"', '#PJM --mpi "proc=1"', "#PJM -o job.out", "#PJM -j"]


def test_a_value_that_would_break_a_pjm_directive_is_refused():
    with pytest.raises(ConfigError):
        render("pjm.sh.j2", partition='small" -L "node=9999')


@pytest.mark.parametrize("shell", ["bash"])
def test_the_elapse_limit_signal_leaves_a_timeout_marker(tmp_path, shell):
    """PJM's SIGXCPU at the elapse limit: the job's marker says 152 (128 + SIGXCPU), which pjstat's
    history would call TIMEOUT too; without the trap bash would leave no marker at all."""
    text = render("pjm.sh.j2", setup=[], command="sh -c 'kill -XCPU $PPID; sleep 0.2'")
    (tmp_path / "job.sh").write_text(text)
    proc = subprocess.run([shell, "job.sh"], cwd=str(tmp_path), capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PJM_O_WORKDIR=str(tmp_path)))
    assert proc.returncode == 152, proc.stderr
    assert (tmp_path / "job.exit").read_text().startswith("152 ")


def test_a_gpu_run_on_pjm_is_one_error(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "CMakeLists.txt").write_text("project(x C)\n")
    (tmp_path / "recipes" / "x.py").write_text(textwrap.dedent("""
        from hpcdo.recipe import LocalTree, Recipe
        recipe = Recipe(name="x", source=LocalTree("src"), executable="x")
        recipe.run("g", cores=4, gpus=2)
        """))
    project = Project(str(tmp_path), "fugaku")
    target = project.targets[0]
    with pytest.raises(ConfigError, match=r"^run g: gpus=2, but scheduler pjm of machine fugaku has no GPU "
                                          r"request$"):
        target.jobscript(target.recipe.runs["g"])
