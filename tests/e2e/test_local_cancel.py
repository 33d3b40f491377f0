"""doit cancel on localhost ends the job's whole process tree, whatever shell runs hpcdo's scripts.

The local scheduler's scripts run through ``sh -c`` (LocalRemote), and
``sh`` is whatever comes first on PATH: dash on Debian, bash elsewhere.
Dash's ``kill`` builtin takes no ``--``, and TERM sent to the jobscript's
bash alone waits, trapped, until the program it runs ends: cancel then said
"cancelled" while the job went on.  Each case here puts its own ``sh`` first
on PATH, and one hides ``setsid`` too (the job then shares the submitting
shell's process group and only its process tree says what belongs to it).

The run's program is a small C program that forks ``sleep``: the job is
the jobscript's bash, the program and its child.  Every one of them must be
gone within seconds of ``doit cancel``, ``status`` must say cancelled, and
the jobscript's TERM trap must have left its exit marker (143).  A program
that ignores TERM is killed after the grace period.
"""

import os
import re
import shutil
import time

import pytest

SLEEPER_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int status;
    pid_t pid;
    if (argc > 2 && strcmp(argv[2], "ignore-term") == 0)
        signal(SIGTERM, SIG_IGN);           /* inherited by sleep through exec */
    pid = fork();
    if (pid == 0) {
        execlp("sleep", "sleep", argc > 1 ? argv[1] : "300", (char *)0);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
"""

CMAKELISTS = """cmake_minimum_required(VERSION 3.10)
project(sleeper C)
add_executable(sleeper main.c)
"""

#: how long cancel may take when the program ends on TERM (it takes well under a second)
PROMPT = 5
#: how long the grace before KILL may take, plus slack
GRACE = 25


def sleeper_project(project, args):
    src = os.path.join(project.path, "sleeper")
    os.makedirs(src)
    with open(os.path.join(src, "main.c"), "w") as fh:
        fh.write(SLEEPER_C)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as fh:
        fh.write(CMAKELISTS)
    with open(project.file("recipes/lbflow.py"), "w") as fh:
        fh.write("from hpcdo.recipe import LocalTree, Recipe\n"
                 "recipe = Recipe(name='sleeper', source=LocalTree('sleeper'), executable='sleeper')\n"
                 "recipe.run('nap', args=%r, cores=1, walltime='00:10:00')\n" % (list(args),))


#: a ps that refuses -A, as ps builds without the POSIX process selection do: the
#: cancel then reads the process table from /proc
NO_PS_A = """#!/bin/sh
case " $* " in *" -A "*) echo "ps: invalid option -- 'A'" >&2; exit 1;; esac
exec %s "$@"
"""


def shell_path(tmp_path, shell, setsid=True, ps_all=True):
    """A PATH whose ``sh`` is ``shell``; without ``setsid``, every other command but setsid;
    without ``ps_all``, a ps that refuses ``-A``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(shell, str(bindir / "sh"))
    if not ps_all:
        (bindir / "ps").write_text(NO_PS_A % shutil.which("ps"))
        (bindir / "ps").chmod(0o755)
    if setsid:
        return str(bindir) + os.pathsep + os.environ["PATH"]
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = bindir / name
            if name != "setsid" and not os.path.lexists(str(target)):
                os.symlink(os.path.join(directory, name), str(target))
    return str(bindir)


def stat(pid):
    """(state, ppid, pgid) of a process, or None when it is gone."""
    try:
        with open("/proc/%s/stat" % pid) as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[2])


def comm(pid):
    try:
        with open("/proc/%s/comm" % pid) as fh:
            return fh.read().strip()
    except OSError:
        return None


def job_processes(job):
    """Every live process of the job whose jobscript shell is ``job``: its tree and its process group."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = stat(name)
            if info and info[0] != "Z":
                table[int(name)] = info
    found = {pid for pid, (_s, _pp, pgid) in table.items() if pgid == job}
    if job in table:
        found.add(job)
    grew = True
    while grew:
        grew = False
        for pid, (_s, ppid, _pg) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def alive(pids):
    """The pids of ``pids`` still running (a zombie has ended)."""
    return sorted(p for p in pids if (stat(p) or ("Z",))[0] != "Z")


def wait_for(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))


def status_line(project, env):
    out = project.doit("status", env=env)
    m = re.search(r"^run nap\s+(.*)$", out.out, re.M)
    assert m, out
    return m.group(1)


def submit_and_cancel(project, env, args, limit, setsid=True):
    """Submit the sleeper, cancel it once it runs, and see every process of the job end within
    ``limit`` seconds: (job id, seconds until all were gone)."""
    sleeper_project(project, args)
    project.doit("submit", env=env)
    job = project.remote("cat sleeper/runs/nap/job.id").strip()
    assert job.isdigit(), job
    started = wait_for(lambda: project.remote("cat sleeper/runs/nap/job.started 2>/dev/null").split(),
                       30, "the job to start")
    assert started[0] == job
    procs = wait_for(lambda: (lambda ps: ps if "sleep" in {comm(p) for p in ps} else None)(
        job_processes(int(job))), 30, "the program's sleep to start")
    names = sorted(comm(p) for p in procs)
    assert int(job) in procs and "sleeper" in names and "sleep" in names, names
    # under setsid the job leads a process group of its own; without, it is in the submitter's
    assert (stat(job)[2] == int(job)) == setsid, (stat(job), job, setsid)
    try:
        cancelled = time.monotonic()
        out = project.doit("cancel", env=env)
        assert "cancelled run nap (job %s)" % job in out.out, out
        end = cancelled + limit
        while alive(procs) and time.monotonic() < end:
            time.sleep(0.05)
        took = time.monotonic() - cancelled
        left = [(p, comm(p)) for p in alive(procs)]
        assert not left, "still running %.1f s after doit cancel: %s" % (took, left)
    finally:
        for pid in alive(procs):             # never leave a sleeper behind
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    assert job_processes(int(job)) == set()
    return job, took


#: case: (the sh of hpcdo's scripts, setsid there, ps takes -A)
CASES = {
    "dash": ("/bin/dash", True, True),
    "bash": ("/bin/bash", True, True),
    "dash-nosetsid": ("/bin/dash", False, True),
    "dash-nosetsid-procfs": ("/bin/dash", False, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_cancel_ends_every_process_of_the_job(local_project, tmp_path, case):
    shell, setsid, ps_all = CASES[case]
    if not os.path.exists(shell):
        pytest.skip("%s is not installed" % shell)
    env = {"PATH": shell_path(tmp_path, shell, setsid, ps_all)}
    project = local_project
    job, _took = submit_and_cancel(project, env, ["300"], PROMPT, setsid)
    # the jobscript's TERM trap ran: the run's exit marker says 143 (128 + TERM)
    assert project.remote("cat sleeper/runs/nap/job.exit").split()[0] == "143"
    assert project.remote("ls sleeper/runs/nap/job.cancelled").strip()
    assert status_line(project, env).split()[:2] == [job, "cancelled"]
    again = project.doit("submit", env=env)
    assert again.ran == ["submit:nap"], again
    new = project.remote("cat sleeper/runs/nap/job.id").strip()
    assert new and new != job
    project.doit("cancel", env=env)
    assert wait_for(lambda: not job_processes(int(new)), PROMPT, "the second job to end")


def test_cancel_kills_a_program_that_ignores_term(local_project, tmp_path):
    """A program ignoring TERM is killed after the grace period; the run still reads cancelled."""
    env = {"PATH": shell_path(tmp_path, "/bin/dash")}
    project = local_project
    job, took = submit_and_cancel(project, env, ["300", "ignore-term"], GRACE)
    assert took > 1, "killed at once, with no grace for a clean exit (%.1f s)" % took
    # the program was killed first, so the jobscript's trap still wrote its marker
    assert project.remote("cat sleeper/runs/nap/job.exit").split()[0] == "143"
    assert status_line(project, env).split()[:2] == [job, "cancelled"]
