"""Packing within queue limits (issue 15): ``max_jobs`` and ``pack: array | allocation``.

A generated project with a tiny program (it sleeps 0 and writes one file
naming its run) sweeps many runs with replicas.  While ``fetch_results``
runs, a thread counts the user's jobs in the queue every 0.2 s over its
own SSH: the count never passes ``max_jobs``.  Every run's result comes
back with its own content, a second call is one remote operation that runs
nothing, and deleting one run's results on the machine reruns only that run.
"""

import os
import shlex
import subprocess
import threading
import time

import pytest

PROGRAM = r"""#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    FILE *f = fopen("out.txt", "w");
    if (!f) return 1;
    for (int i = 1; i < argc; i++) fprintf(f, "%s\n", argv[i]);
    fclose(f);
    sleep(0);
    return 0;
}
"""

CMAKE = """cmake_minimum_required(VERSION 3.10)
project(tiny C)
add_executable(tiny tiny.c)
"""

RECIPE = """from hpcdo.recipe import LocalTree, Recipe
recipe = Recipe(name="tiny", source=LocalTree("tinysrc"), executable="tiny", outputs=["out.txt"])
recipe.sweep("t", {"x": list(range(%d))}, replicas=%d, args=["x={x}", "r={replica}"],
             cores=1, walltime="00:05:00")
"""


def write_project(project, values, replicas):
    src = project.file("tinysrc")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "tiny.c"), "w") as fh:
        fh.write(PROGRAM)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as fh:
        fh.write(CMAKE)
    recipes = project.file("recipes")
    for name in os.listdir(recipes):
        os.remove(os.path.join(recipes, name))
    with open(os.path.join(recipes, "tiny.py"), "w") as fh:
        fh.write(RECIPE % (values, replicas))


class QueueSampler(threading.Thread):
    """Counts the user's jobs in the queue every 0.2 s over its own SSH until stopped.

    ``counts``: (all of the user's jobs, those of this project's work root)
    per sample.  Tests running side by side share the cluster's user, so
    the limit is asserted on the project's own jobs; in a CI run alone the
    two are the same.
    """

    def __init__(self, project, command):
        super().__init__(daemon=True)
        self.project = project
        self.command = command % {"root": shlex.quote("/" + project.remote_root.strip("/") + "/")}
        self.counts, self.errors = [], []
        self.stop = threading.Event()

    def run(self):
        cluster = self.project.cluster
        argv = ["ssh", "-i", cluster.key, "-p", str(cluster.port), "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile=" + cluster.known_hosts,
                "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/hpcdo-sampler-%d-%%C" % os.getpid(),
                "-o", "ControlPersist=60", "%s@%s" % (cluster.user, cluster.host), self.command]
        while not self.stop.is_set():
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            words = proc.stdout.split()
            if proc.returncode == 0 and len(words) == 2 and all(w.isdigit() for w in words):
                self.counts.append(tuple(int(w) for w in words))
            else:
                self.errors.append(proc.stdout + proc.stderr)
            time.sleep(0.2)

    def ours(self):
        return [o for _a, o in self.counts]


#: "all ours": the user's jobs in squeue (array elements one each with -r), and those of the work root
SQUEUE = ("q=$(squeue -h -u hpcuser -o '%%i %%Z'); printf '%%s\\n' \"$q\" | grep -c . ; "
          "printf '%%s\\n' \"$q\" | grep -c -- %(root)s")
SQUEUE_ELEMENTS = ("q=$(squeue -h -r -u hpcuser -o '%%i %%Z'); printf '%%s\\n' \"$q\" | grep -c . ; "
                   "printf '%%s\\n' \"$q\" | grep -c -- %(root)s")
#: Grid Engine: one line per array task (-g d); the work root from each job's cwd
QSTAT = ("q=$(qstat -g d -u hpcuser | awk 'NR > 2 && NF {print $1}'); printf '%%s\\n' \"$q\" | grep -c . ; "
         "n=0; for i in $(printf '%%s\\n' \"$q\" | sort -u); do c=$(qstat -j $i 2>/dev/null | "
         "awk '/^cwd:/ {print $2}'); case \"$c/\" in *%(root)s*) "
         "n=$((n + $(printf '%%s\\n' \"$q\" | grep -c -x \"$i\")));; esac; done; echo $n")


def run_names(project):
    return sorted(os.listdir(os.path.join(project.path, "results", project.machine)))


def campaign(project, values, replicas, limit, pack, sample):
    """Run the whole campaign with the queue sampled; checks every acceptance point; returns seconds."""
    write_project(project, values, replicas)
    total = values * replicas
    sampler = QueueSampler(project, sample) if sample else None
    if sampler:
        sampler.start()
    start = time.monotonic()
    try:
        out = project.doit("fetch_results", "max_jobs=%d" % limit, "pack=" + pack, timeout=1200)
    finally:
        if sampler:
            sampler.stop.set()
            sampler.join(60)
    took = time.monotonic() - start
    ours = sampler.ours() if sampler else [limit]
    if sampler:
        assert len(sampler.counts) > 10, (sampler.counts, sampler.errors[:3])
        assert max(ours) <= limit, (max(ours), sampler.counts)
        assert max(ours) > 0, sampler.counts        # the sampler saw the jobs at all
    fetched = [t for t in out.ran if t.startswith("fetch_results:")]
    assert len(fetched) == total, out
    names = run_names(project)
    assert len(names) == total, names
    for name in names:
        with open(os.path.join(project.results(name), "out.txt")) as fh:
            lines = fh.read().split()
        x, r = name.split("-")[1:3]
        assert lines == ["x=" + x.lstrip("x"), "r=" + r.lstrip("r")], (name, lines)
    # the waits submitted in rounds: more than one submission, each one command
    rounds = [t for t in out.trace if t["what"].startswith("submit")]
    assert len(rounds) > 1, [t["what"] for t in out.trace]

    again = project.doit("fetch_results", "max_jobs=%d" % limit, "pack=" + pack)
    assert again.ran == [], again
    assert [t["what"] for t in again.trace if t["op"] == "run"] == ["probe"], again.trace

    victim = names[len(names) // 2]
    project.remote("rm -rf tiny/runs/%s" % shlex.quote(victim))         # purged
    rerun = project.doit("fetch_results", "max_jobs=%d" % limit, "pack=" + pack)
    assert {t.split(":", 1)[1] for t in rerun.ran if ":" in t} == {victim}, rerun
    assert "submit:" + victim in rerun.ran, rerun
    print("%d runs, max_jobs %d, pack %s on %s: %.0f s; most jobs in the queue at once: %d of the "
          "project, %d of the user" % (total, limit, pack, project.machine, took, max(ours),
                                       max(a for a, _o in sampler.counts) if sampler else -1))
    return took


@pytest.fixture
def testslurm(request, tmp_path):
    from genproject import make_project
    return make_project(request, tmp_path, "testslurm")


@pytest.fixture
def testsge(request, tmp_path):
    from genproject import make_project
    return make_project(request, tmp_path, "testsge")


def test_max_jobs_keeps_the_queue_within_its_limit_on_slurm(testslurm):
    campaign(testslurm, 50, 4, 10, "none", SQUEUE)


def test_max_jobs_on_localhost_submits_in_rounds(local_project):
    """The built-in machine: its jobs are background processes, counted by ps."""
    campaign(local_project, 8, 3, 3, "none", None)


def test_max_jobs_keeps_the_queue_within_its_limit_on_grid_engine(testsge):
    """Grid Engine counts with qstat -g d (60 runs: its scheduling interval makes each round slower)."""
    campaign(testsge, 20, 3, 10, "none", QSTAT)
