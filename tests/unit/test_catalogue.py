"""Golden jobscripts: every machine hpcdo ships, rendered for the demo's first run.

A change to a scheduler template, a launcher or a catalogue entry shows up
here as a diff to review.  After checking it, regenerate with::

    HPCDO_UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_catalogue.py
"""

import os

import pytest

from hpcdo import config
from hpcdo.project import Project

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "tests", "golden", "jobscripts")
CATALOGUE = sorted(f[:-4] for f in os.listdir(config.CATALOGUE_DIR) if f.endswith(".yml"))
MACHINES = CATALOGUE + ["localhost", "testslurm", "testsge", "testpbs"]


def render(machine, run="straight", **overrides):
    project = Project(ROOT, machine, {k: str(v) for k, v in overrides.items()})
    for dep in project.deployments:
        if run in dep.recipe.runs:
            return dep.jobscript(dep.recipe.runs[run])
    raise AssertionError("no run %s" % run)


def test_the_catalogue_has_every_site_the_issue_names():
    assert {"archer2", "myriad", "stampede3", "tianhe2"} <= set(CATALOGUE)
    schedulers = {config.Catalogue(ROOT).machine(m).scheduler for m in CATALOGUE}
    assert {"slurm", "sge", "pbs", "lsf", "tianhe"} <= schedulers


@pytest.mark.parametrize("machine", MACHINES)
def test_golden_jobscript(machine):
    text = render(machine)
    path = os.path.join(GOLDEN, machine + ".sh")
    if os.environ.get("HPCDO_UPDATE_GOLDEN"):
        with open(path, "w") as fh:
            fh.write(text)
    with open(path) as fh:
        assert text == fh.read(), "jobscript of %s changed; review and regenerate (see module docstring)" % machine


@pytest.mark.parametrize("machine", CATALOGUE)
def test_every_catalogue_machine_names_host_scheduler_and_a_remote_root(machine):
    m = config.Catalogue(ROOT).machine(machine)
    assert m.host and m.scheduler in ("slurm", "sge", "pbs", "torque", "lsf", "tianhe")
    assert m.description and m.remote_root


def test_a_multi_node_run_fills_nodes_and_launcher_per_machine():
    text = render("archer2", cores=256)
    assert "#SBATCH --ntasks=256" in text and "#SBATCH --nodes=2" in text
    assert "srun --ntasks=256 --hint=nomultithread --distribution=block:block ./lbflow" in text
    text = render("myriad", cores=72)
    assert "#$ -pe mpi 72" in text and "gerun ./lbflow" in text
    text = render("derecho", cores=256)
    assert "#PBS -l select=2:ncpus=128:mpiprocs=128" in text
