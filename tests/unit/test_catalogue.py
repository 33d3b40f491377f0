"""Golden jobscripts: every machine hpcdo ships, rendered for the demo's first run,
and a threaded multi-node run on every scheduler (``hybrid-<scheduler>.sh``).

A change to a scheduler template, a launcher or a catalogue entry shows up
here as a diff to review.  After checking it, regenerate with::

    HPCDO_UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_catalogue.py
"""

import os
import textwrap

import pytest

from hpcdo import ConfigError

from hpcdo import config
from hpcdo.project import Project

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "golden", "jobscripts")
CATALOGUE = sorted(f[:-4] for f in os.listdir(config.CATALOGUE_DIR) if f.endswith(".yml"))
MACHINES = CATALOGUE + ["localhost", "testslurm", "testsge", "testpbs"]


def render(machine, run="straight", root=ROOT, **overrides):
    project = Project(root, machine, {k: str(v) for k, v in overrides.items()})
    for dep in project.targets:
        if run in dep.recipe.runs:
            return dep.jobscript(dep.recipe.runs[run])
    raise AssertionError("no run %s" % run)


def test_the_catalogue_has_every_site_the_issue_names():
    assert {"archer2", "myriad", "stampede3", "tianhe2"} <= set(CATALOGUE)
    schedulers = {config.Catalogue(ROOT).machine(m).scheduler for m in CATALOGUE}
    assert {"slurm", "sge", "pbs", "lsf", "tianhe"} <= schedulers


def check_golden(name, text):
    path = os.path.join(GOLDEN, name + ".sh")
    if os.environ.get("HPCDO_UPDATE_GOLDEN"):
        with open(path, "w") as fh:
            fh.write(text)
    with open(path) as fh:
        assert text == fh.read(), "jobscript %s changed; review and regenerate (see module docstring)" % name


@pytest.mark.parametrize("machine", MACHINES)
def test_golden_jobscript(machine):
    check_golden(machine, render(machine))


@pytest.mark.parametrize("machine", CATALOGUE)
def test_every_catalogue_machine_names_host_scheduler_and_a_remote_root(machine):
    m = config.Catalogue(ROOT).machine(machine)
    assert m.host and m.scheduler in ("slurm", "sge", "pbs", "torque", "lsf", "tianhe", "pjm")
    assert m.description and m.remote_root


def test_a_multi_node_run_fills_nodes_and_launcher_per_machine():
    text = render("archer2", cores=256)
    assert "#SBATCH --ntasks=256" in text and "#SBATCH --nodes=2" in text
    assert "srun --ntasks=256 --hint=nomultithread --distribution=block:block ./lbflow" in text
    text = render("myriad", cores=72)
    assert "#$ -pe mpi 72" in text and "gerun ./lbflow" in text
    text = render("derecho", cores=256)
    assert "#PBS -l select=2:ncpus=128:mpiprocs=128" in text


# -- threads and nodes per run ---------------------------------------------------------

#: one neutral machine per scheduler, 128 cores a node, with the launcher usual there
HYBRID_MACHINES = """
hybrid-slurm:
  host: hpc.example.org
  user: u
  scheduler: slurm
  launcher: srun
  partition: standard
  account: proj1
  memory: 200G
  remote_root: /scratch/u/hpcdo
  corespernode: 128
  cores: 8                     # what a run without cores of its own gets (bymachine: 2 x 4)
hybrid-tianhe:
  extends: hybrid-slurm
  scheduler: tianhe
  launcher: yhrun
  memory: null
hybrid-sge:
  extends: hybrid-slurm
  scheduler: sge
  pe: mpi
  launcher: mpirun
  memory: null
hybrid-pbs:
  extends: hybrid-slurm
  scheduler: pbs
  launcher: mpiexec
  launcher_options: "-ppn $cpn --depth=$threads --cpu-bind depth"
hybrid-torque:
  extends: hybrid-slurm
  scheduler: torque
  launcher: mpirun
  launcher_options: "--map-by slot:PE=$threads"
hybrid-lsf:
  extends: hybrid-slurm
  scheduler: lsf
  launcher: mpirun
  memory: null
hybrid-six:
  extends: hybrid-slurm
  cores: 6
"""

HYBRID_RECIPE = """
from hpcdo.recipe import LocalTree, Recipe

recipe = Recipe(name="hybrid", source=LocalTree("src"), executable="hybrid",
                geometries={"cube": "cube.gmy"}, outputs=["out.txt"])
# 64 tasks of 4 threads: 32 tasks on each of 2 nodes of 128 cores
recipe.run("wide", geometry="cube", cores=256, threads=4, walltime="01:00:00",
           args=["--geometry", "{geometry}", "--ranks", "{tasks}", "--threads", "{threads}"],
           env={"OMP_PLACES": "cores", "HYBRID_LABEL": "{run}: {cores} cores on {nodes} nodes"})
# the issue's OpenMP code: one copy of two threads, not two copies
recipe.run("omp", cores=2, threads=2, env={"MY_CORES": "{cores}"})
# the run's own nodes: 4 nodes of 64 tasks, not 4 x 128
recipe.run("spread", cores=256, nodes=4)
recipe.run("bymachine", threads=4)
"""

#: runs no machine of HYBRID_MACHINES can hold: each is added to a copy of the project alone,
#: since the project refuses to load with one of them
BAD_RUNS = {
    "toofew": 'recipe.run("toofew", cores=256, threads=4, nodes=1)',
    "fat": 'recipe.run("fat", cores=256, threads=256)',
}

SCHEDULERS = ["slurm", "tianhe", "sge", "pbs", "torque", "lsf"]


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    top = tmp_path_factory.mktemp("hybrid")
    for sub in ("recipes", "machines", "src"):
        (top / sub).mkdir()
    (top / "recipes" / "hybrid.py").write_text(textwrap.dedent(HYBRID_RECIPE))
    (top / "machines" / "hybrid.yml").write_text(HYBRID_MACHINES)
    (top / "src" / "CMakeLists.txt").write_text("project(hybrid C)\n")
    (top / "cube.gmy").write_text("cube\n")
    return str(top)


def lines_of(text):
    return text.splitlines()


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_golden_threaded_multi_node_jobscript(hybrid, scheduler):
    check_golden("hybrid-" + scheduler, render("hybrid-" + scheduler, "wide", root=hybrid))


@pytest.mark.parametrize("scheduler,want", [
    ("slurm", ["#SBATCH --ntasks=64", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=32",
               "#SBATCH --cpus-per-task=4", "#SBATCH --mem=102400M", "export SRUN_CPUS_PER_TASK=4",
               "srun --ntasks=64 --cpus-per-task=4 ./hybrid --geometry cube.gmy --ranks 64 --threads 4"]),
    ("tianhe", ["#SBATCH --ntasks=64", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=32",
                "#SBATCH --cpus-per-task=4",
                "yhrun -n 64 -c 4 ./hybrid --geometry cube.gmy --ranks 64 --threads 4"]),
    ("sge", ["#$ -pe mpi 256", "mpirun -np 64 ./hybrid --geometry cube.gmy --ranks 64 --threads 4"]),
    ("pbs", ["#PBS -l select=2:ncpus=128:mpiprocs=32:ompthreads=4:mem=102400mb",
             "mpiexec -n 64 -ppn 32 --depth=4 --cpu-bind depth ./hybrid --geometry cube.gmy --ranks 64 "
             "--threads 4"]),
    ("torque", ["#PBS -l nodes=2:ppn=128", "#PBS -l pmem=3200mb",
                "mpirun -np 64 --map-by slot:PE=4 ./hybrid --geometry cube.gmy --ranks 64 --threads 4"]),
    ("lsf", ["#BSUB -n 64", '#BSUB -R "span[ptile=32] affinity[core(4)]"',
             "mpirun -np 64 ./hybrid --geometry cube.gmy --ranks 64 --threads 4"]),
])
def test_threads_and_nodes_reach_every_scheduler(hybrid, scheduler, want):
    lines = lines_of(render("hybrid-" + scheduler, "wide", root=hybrid))
    for line in want:
        assert line in lines, (line, lines)
    # OMP_NUM_THREADS after the machine's env, then the run's env with its fields filled in
    exports = [l.split(" || ")[0] for l in lines if l.startswith("export ")]
    assert exports[-3:] == ["export OMP_NUM_THREADS=4", "export HYBRID_LABEL='wide: 256 cores on 2 nodes'",
                            "export OMP_PLACES=cores"], exports
    assert sum("OMP_NUM_THREADS" in l for l in lines) == 1


def test_an_openmp_run_is_one_task_of_its_threads(hybrid):
    lines = lines_of(render("hybrid-slurm", "omp", root=hybrid))
    assert "#SBATCH --ntasks=1" in lines and "#SBATCH --cpus-per-task=2" in lines
    assert "#SBATCH --nodes=1" in lines and not any("ntasks-per-node" in l for l in lines)
    assert "srun --ntasks=1 --cpus-per-task=2 ./hybrid" in lines
    exports = [l.split(" || ")[0] for l in lines if l.startswith("export ")]
    assert exports == ["export SRUN_CPUS_PER_TASK=2", "export OMP_NUM_THREADS=2", "export MY_CORES=2"]


def test_one_thread_changes_nothing_of_a_jobscript(hybrid):
    lines = lines_of(render("hybrid-slurm", "spread", root=hybrid))
    assert not any("cpus-per-task" in l or "OMP_NUM_THREADS" in l or "SRUN_CPUS" in l for l in lines)


@pytest.mark.parametrize("scheduler,want", [
    ("slurm", ["#SBATCH --ntasks=256", "#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=64"]),
    ("pbs", ["#PBS -l select=4:ncpus=64:mpiprocs=64:mem=51200mb"]),
    ("torque", ["#PBS -l nodes=4:ppn=64"]),
    ("lsf", ["#BSUB -n 256", '#BSUB -R "span[ptile=64]"']),
])
def test_a_runs_own_nodes_share_its_tasks(hybrid, scheduler, want):
    """Four nodes for 256 one-thread tasks on 128-core nodes: 64 a node, never 128 (512 in all)."""
    lines = lines_of(render("hybrid-" + scheduler, "spread", root=hybrid))
    for line in want:
        assert line in lines, (line, lines)


@pytest.mark.parametrize("run,overrides,message", [
    ("toofew", {}, r"^run toofew: nodes=1 cannot hold 64 tasks of 4 threads \(corespernode=128 of machine "
                   r"hybrid-slurm\): a node holds 32, so cores=256 needs nodes=2 or more$"),
    ("fat", {}, r"^run fat: threads=256 do not fit on one node \(corespernode=128 of machine hybrid-slurm\)$"),
    ("wide", {"cores": 6}, r"^run wide: cores=6 \(cores= on the command line\) is not a multiple of threads=4"),
])
def test_a_layout_the_machine_cannot_hold_is_one_error(hybrid, tmp_path, run, overrides, message):
    import shutil
    root = tmp_path / "bad"
    shutil.copytree(hybrid, root)
    with open(root / "recipes" / "hybrid.py", "a") as fh:
        fh.write(BAD_RUNS.get(run, "") + "\n")
    with pytest.raises(ConfigError, match=message):
        render("hybrid-slurm", run, root=str(root), **overrides)


def test_the_machines_cores_must_suit_a_runs_threads(hybrid):
    line = HYBRID_MACHINES.splitlines().index("  cores: 6") + 1
    with pytest.raises(ConfigError, match=r"^run bymachine: cores=6 \(the machine's cores, .*hybrid.yml:%d\) "
                                          r"is not a multiple of threads=4" % line):
        render("hybrid-six", "bymachine", root=hybrid)
    assert "#SBATCH --ntasks=2" in render("hybrid-six", "bymachine", root=hybrid, cores=8)
