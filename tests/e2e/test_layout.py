"""Threads and nodes per run, checked by the test cluster's own Slurm.

Multi-node and threaded jobscripts, rendered by ``doit jobscript RUN`` for
``testslurm-multi`` (four virtual 8-core nodes in partition ``multi`` that
plan but never run jobs: tests/cluster/lib.sh), go to ``sbatch --test-only``
over SSH: Slurm must accept each and plan it on the nodes and processors
the run's layout says.  One threaded run (two threads, one task) really runs
on the one-node ``debug`` partition, through the whole pipeline, and
records what its task saw.
"""

import copy
import os
import re
import shlex
import textwrap

import pytest

#: testslurm-multi (machines/test.yml) = the virtual nodes of tests/cluster/lib.sh
VIRTUAL_NODES, VIRTUAL_CPUS = 4, 8

HYBRID_C = r"""
#define _GNU_SOURCE
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

static const char *env(const char *name)
{
    const char *value = getenv(name);
    return value ? value : "unset";
}

/* One file per task (env-<rank>.txt): what the task saw of its threads. */
int main(void)
{
    cpu_set_t set;
    int threads = 0;
    char path[64];
    FILE *out;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
#pragma omp parallel
    {
#pragma omp atomic
        threads++;
    }
    snprintf(path, sizeof path, "env-%s.txt", env("SLURM_PROCID"));
    out = fopen(path, "w");
    if (!out)
        return 1;
    fprintf(out, "OMP_NUM_THREADS=%s\nSLURM_CPUS_PER_TASK=%s\nSRUN_CPUS_PER_TASK=%s\n"
                 "SLURM_NTASKS=%s\nHYBRID_LABEL=%s\naffinity=%d\nomp_threads=%d\n",
            env("OMP_NUM_THREADS"), env("SLURM_CPUS_PER_TASK"), env("SRUN_CPUS_PER_TASK"),
            env("SLURM_NTASKS"), env("HYBRID_LABEL"), CPU_COUNT(&set), threads);
    return fclose(out) != 0;
}
"""

CMAKELISTS = """
cmake_minimum_required(VERSION 3.13)
project(hybrid C)
find_package(OpenMP REQUIRED)
add_executable(hybrid hybrid.c)
target_link_libraries(hybrid OpenMP::OpenMP_C)
"""

RECIPE = """
from hpcdo.recipe import LocalTree, Recipe

recipe = Recipe(name="hybrid", source=LocalTree("hybrid"), executable="hybrid", outputs=["env-*.txt"])
# on testslurm-multi (8 cores a node): name, cores, threads, nodes
recipe.run("wide", cores=16, threads=2, walltime="00:05:00")       # 8 tasks, 4 a node, 2 nodes
recipe.run("fat", cores=32, threads=4, walltime="00:05:00")        # 8 tasks, 2 a node, 4 nodes
recipe.run("spread", cores=8, nodes=4, walltime="00:05:00")        # 8 tasks, 2 a node, the run's 4 nodes
recipe.run("mpi", cores=24, walltime="00:05:00")                   # 24 tasks, 8 a node, 3 nodes
recipe.run("odd", cores=6, threads=3, walltime="00:05:00")         # 2 tasks of 3 threads on 1 node
recipe.run("toobig", cores=40, walltime="00:05:00")                # 5 nodes: more than there are
# really run on testslurm's one node (2 cores): one task of two threads
recipe.run("threaded", cores=2, threads=2, walltime="00:05:00",
           env={"HYBRID_LABEL": "{run}: {tasks} x {threads} on {nodes}"})
"""

#: run -> (directives the jobscript must hold, processors and nodes Slurm plans)
PLANS = {
    "wide": (["--ntasks=8", "--nodes=2", "--ntasks-per-node=4", "--cpus-per-task=2"], 16, 2),
    "fat": (["--ntasks=8", "--nodes=4", "--ntasks-per-node=2", "--cpus-per-task=4"], 32, 4),
    "spread": (["--ntasks=8", "--nodes=4", "--ntasks-per-node=2"], 8, 4),
    "mpi": (["--ntasks=24", "--nodes=3", "--ntasks-per-node=8"], 24, 3),
    "odd": (["--ntasks=2", "--nodes=1", "--cpus-per-task=3"], 6, 1),
}

PLANNED = re.compile(r"^sbatch: Job \d+ to start at \S+ using (\d+) processors on nodes (\S+) in partition "
                     r"(\S+)$", re.M)


@pytest.fixture
def hybrid_project(slurm_project):
    """testslurm's project copy with the hybrid recipe as its only one."""
    top = slurm_project.path
    os.remove(os.path.join(top, "recipes", "lbflow.py"))
    with open(os.path.join(top, "recipes", "hybrid.py"), "w") as fh:
        fh.write(textwrap.dedent(RECIPE))
    os.makedirs(os.path.join(top, "hybrid"))
    for name, text in (("CMakeLists.txt", CMAKELISTS), ("hybrid.c", HYBRID_C)):
        with open(os.path.join(top, "hybrid", name), "w") as fh:
            fh.write(text.lstrip())
    return slurm_project


def on(project, machine):
    """The same project copy and work root, driven with ``machine=MACHINE``."""
    other = copy.copy(project)
    other.machine = machine
    return other


def jobscript(project, run, machine="testslurm-multi"):
    """The jobscript `doit machine=MACHINE jobscript RUN` prints."""
    out = on(project, machine).doit("jobscript", run)
    text = out.out[out.out.index("#!/bin/bash"):]
    return text[:text.rindex("hpcdo_exit $?") + len("hpcdo_exit $?")] + "\n"


def sbatch_test_only(cluster, script):
    """sbatch --test-only of ``script`` on the cluster: (returncode, what sbatch said)."""
    proc = cluster.ssh("printf %%s %s | sbatch --test-only" % shlex.quote(script), check=False)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def node_count(nodelist):
    """How many nodes a Slurm node list like virt[1-3,5] or virt2 names."""
    match = re.match(r"^[a-z]+\[(.*)\]$", nodelist)
    if not match:
        return 1
    count = 0
    for part in match.group(1).split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def test_the_virtual_partition_is_there_and_not_the_default(cluster):
    out = cluster.ssh("sinfo -h -p multi -o '%D %c %P'; sinfo -h -o '%P' | grep -c '[*]$'").stdout.split()
    assert out[:3] == [str(VIRTUAL_NODES), str(VIRTUAL_CPUS), "multi"], out
    assert out[3] == "1"
    default = cluster.ssh("sinfo -h -o '%P' | grep '[*]$'").stdout.strip()
    assert default == "debug*"


@pytest.mark.parametrize("run", sorted(PLANS))
def test_slurm_plans_each_layout_as_rendered(cluster, hybrid_project, run):
    directives, processors, nodes = PLANS[run]
    script = jobscript(hybrid_project, run)
    lines = script.splitlines()
    for directive in directives + ["--partition=multi"]:
        assert "#SBATCH " + directive in lines, (directive, script)
    threads = processors // int(directives[0].split("=")[1])
    assert ("#SBATCH --cpus-per-task=%d" % threads in lines) == (threads > 1)
    rc, said = sbatch_test_only(cluster, script)
    assert rc == 0, said
    planned = PLANNED.search(said)
    assert planned, said
    assert planned.group(3) == "multi"
    assert (int(planned.group(1)), node_count(planned.group(2))) == (processors, nodes), said


def test_slurm_refuses_what_the_partition_cannot_hold(cluster, hybrid_project):
    """The check is real: five nodes of work on four, and too few tasks a node, are refused."""
    script = jobscript(hybrid_project, "toobig")
    assert "#SBATCH --nodes=5" in script.splitlines()
    rc, said = sbatch_test_only(cluster, script)
    assert rc != 0 and "node configuration is not available" in said, said
    # 8 tasks on 2 nodes at 2 a node, the kind of --ntasks-per-node the issue saw
    wide = jobscript(hybrid_project, "wide").replace("--ntasks-per-node=4", "--ntasks-per-node=2")
    rc, said = sbatch_test_only(cluster, wide)
    assert rc != 0, said


def test_a_layout_the_machine_cannot_hold_is_one_error_line(hybrid_project):
    out = on(hybrid_project, "testslurm-multi").doit("cores=10", "jobscript", "fat", ok=False)
    errors = [line for line in out.out.splitlines() if "run fat:" in line]
    assert errors and all(
        "run fat: cores=10 (cores= on the command line) is not a multiple of threads=4" in e for e in errors), out
    assert "Traceback" not in out.out


def test_a_threaded_run_is_one_task_with_its_threads(hybrid_project):
    """On the one-node debug partition: one copy of the program, two threads, Slurm's cpus per task."""
    script = jobscript(hybrid_project, "threaded", machine="testslurm")
    lines = script.splitlines()
    assert "#SBATCH --ntasks=1" in lines and "#SBATCH --cpus-per-task=2" in lines
    assert "srun --ntasks=1 --cpus-per-task=2 ./hybrid" in lines
    hybrid_project.doit("fetch_results:threaded")
    results = hybrid_project.results("threaded")
    seen = sorted(f for f in os.listdir(results) if f.startswith("env-"))
    assert seen == ["env-0.txt"], seen                  # one task, not one per core
    with open(os.path.join(results, "env-0.txt")) as fh:
        env = dict(line.rstrip("\n").split("=", 1) for line in fh)
    assert env["OMP_NUM_THREADS"] == "2" and env["omp_threads"] == "2", env
    assert env["SLURM_CPUS_PER_TASK"] == "2" and env["SRUN_CPUS_PER_TASK"] == "2", env
    assert env["SLURM_NTASKS"] == "1", env
    assert env["HYBRID_LABEL"] == "threaded: 1 x 2 on 1", env
    # the task may use both cores (the test cluster binds nothing: TaskPlugin=task/none)
    assert int(env["affinity"]) >= 2, env
