"""GPU runs: ``recipe.run(..., gpus=N)`` asks for N GPUs per node, in each scheduler's words,
and the launcher gets the site's GPU binding (``gpu_launcher_options``) for that run only.

Golden jobscripts ``gpu-<machine>.sh``: one GPU run on every GPU system of the catalogue.
Regenerate after review with ``HPCDO_UPDATE_GOLDEN=1`` (see tests/unit/test_catalogue.py).
"""

import textwrap

import pytest

from hpcdo import ConfigError
from hpcdo.project import Project

from test_catalogue import check_golden

GPU_SYSTEMS = ["lumi", "perlmutter", "frontier", "juwels-booster", "leonardo", "polaris", "isambard-ai"]

RECIPE = """
from hpcdo.recipe import LocalTree, Recipe

recipe = Recipe(name="hydro", source=LocalTree("src"), executable="hydro", outputs=["out.txt"])
# four tasks, one GPU each, on one node
recipe.run("onegpu", cores=4, gpus=4, walltime="00:30:00", args=["--ranks", "{tasks}"])
# two nodes of four GPUs: 8 tasks of 4 threads
recipe.run("twonodes", cores=32, threads=4, nodes=2, gpus=4, walltime="01:00:00")
# the same code without GPUs
recipe.run("cpu", cores=4, walltime="00:30:00", args=["--ranks", "{tasks}"])
# a sweep of GPU runs
recipe.sweep("scan", {"size": [64, 128]}, cores=4, gpus=2, args=["--size", "{size}"])
"""

MACHINES = """
g-slurm:
  host: hpc.example.org
  scheduler: slurm
  launcher: srun
  corespernode: 64
  remote_root: /scratch/u/hpcdo
  gpu_launcher_options: "--gpus-per-task=1 --gpu-bind=closest"
g-tianhe:
  extends: g-slurm
  scheduler: tianhe
  launcher: yhrun
  gpu_launcher_options: null
g-pbs:
  extends: g-slurm
  scheduler: pbs
  launcher: mpiexec
  launcher_options: "-ppn $cpn"
  gpu_launcher_options: "--gpus-per-rank=$gpus"
g-torque:
  extends: g-pbs
  scheduler: torque
  launcher: mpirun
  launcher_options: null
  gpu_launcher_options: null
g-lsf:
  extends: g-slurm
  scheduler: lsf
  launcher: mpirun
  gpu_launcher_options: null
g-sge:
  extends: g-slurm
  scheduler: sge
  pe: mpi
  launcher: mpirun
  gpu_launcher_options: null
g-runcmd:
  extends: g-slurm
  run_command: "srun -n $tasks"
"""


@pytest.fixture(scope="module")
def gpu_project(tmp_path_factory):
    top = tmp_path_factory.mktemp("gpu")
    for sub in ("recipes", "machines", "src"):
        (top / sub).mkdir()
    (top / "recipes" / "hydro.py").write_text(textwrap.dedent(RECIPE))
    (top / "machines" / "gpu.yml").write_text(MACHINES)
    (top / "src" / "CMakeLists.txt").write_text("project(hydro C)\n")
    return str(top)


def target_and_run(root, machine, run):
    project = Project(root, machine)
    target = project.targets[0]
    return target, target.recipe.runs[run]


def render(root, machine, run):
    target, one = target_and_run(root, machine, run)
    return target.jobscript(one).splitlines()


@pytest.mark.parametrize("machine", GPU_SYSTEMS)
def test_golden_gpu_jobscript_of_every_gpu_system(gpu_project, machine):
    text = "\n".join(render(gpu_project, machine, "onegpu")) + "\n"
    check_golden("gpu-" + machine, text)


@pytest.mark.parametrize("machine,want", [
    ("g-slurm", ["#SBATCH --gpus-per-node=4", "srun --ntasks=4 --gpus-per-task=1 --gpu-bind=closest ./hydro "
                                              "--ranks 4"]),
    ("g-tianhe", ["#SBATCH --gpus-per-node=4", "yhrun -n 4 ./hydro --ranks 4"]),
    ("g-pbs", ["#PBS -l select=1:ncpus=4:mpiprocs=4:ngpus=4", "mpiexec -n 4 -ppn 4 --gpus-per-rank=4 ./hydro "
                                                                "--ranks 4"]),
    ("g-torque", ["#PBS -l nodes=1:ppn=4:gpus=4"]),
    ("g-lsf", ['#BSUB -gpu "num=4"']),
    ("g-sge", ["#$ -l gpu=4"]),
    # run_command is the whole prefix: nothing is added to it
    ("g-runcmd", ["#SBATCH --gpus-per-node=4", "srun -n 4 ./hydro --ranks 4"]),
])
def test_gpus_reach_every_scheduler_and_the_sites_binding_the_launcher(gpu_project, machine, want):
    lines = render(gpu_project, machine, "onegpu")
    for line in want:
        assert line in lines, (line, lines)


def test_gpus_count_per_node_on_a_multi_node_run(gpu_project):
    lines = render(gpu_project, "g-slurm", "twonodes")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --gpus-per-node=4"):
        assert line in lines, lines
    lines = render(gpu_project, "g-pbs", "twonodes")
    assert "#PBS -l select=2:ncpus=16:mpiprocs=4:ompthreads=4:ngpus=4" in lines, lines


@pytest.mark.parametrize("machine", ["g-slurm", "g-pbs", "g-lsf", "g-sge", "g-torque", "frontier"])
def test_a_run_without_gpus_asks_for_none_and_is_not_bound(gpu_project, machine):
    lines = render(gpu_project, machine, "cpu")
    text = "\n".join(lines)
    assert "gpu" not in text.lower(), text


def test_a_cpu_runs_signature_inputs_are_what_they_were(gpu_project):
    """No ``gpus`` key in a CPU run's spec or jobscript values: upgrading resubmits nothing."""
    target, cpu = target_and_run(gpu_project, "g-slurm", "cpu")
    assert "gpus" not in cpu.spec() and "gpus" not in target.jobscript_values(cpu)
    target, gpu = target_and_run(gpu_project, "g-slurm", "onegpu")
    assert gpu.spec()["gpus"] == 4 and target.jobscript_values(gpu)["gpus"] == 4


@pytest.mark.parametrize("value", [0, -1, 1.5, "4", True])
def test_a_bad_gpus_value_is_one_error(gpu_project, tmp_path, value):
    import shutil
    root = tmp_path / "bad"
    shutil.copytree(gpu_project, root)
    with open(root / "recipes" / "hydro.py", "a") as fh:
        fh.write("recipe.run('bad', cores=1, gpus=%r)\n" % (value,))
    with pytest.raises(ConfigError, match=r"^.*run bad: gpus must be a positive integer \(GPUs per node\)$"):
        Project(str(root), "g-slurm")


def test_a_sweep_passes_gpus_to_each_of_its_runs(gpu_project):
    for run in ("scan-size64", "scan-size128"):
        lines = render(gpu_project, "g-pbs", run)
        assert "#PBS -l select=1:ncpus=4:mpiprocs=4:ngpus=2" in lines, lines
        assert any(l.startswith("mpiexec -n 4 -ppn 4 --gpus-per-rank=2 ./hydro --size") for l in lines), lines
