"""FabSim3's own machine files through the real command line (issue 13, "FabSim3 files, faithfully").

A project whose ``machines/fabsim.yml`` names FabSim3's shipped ``machines.yml`` and its
example user file (filled in, as FabSim3 asks), from tests/data/fabsim3/upstream: what a
user sees on each call (exit code, the exact warning and error lines), the jobscripts, and
a whole pipeline on the loopback cluster described in FabSim3's format, whose work path
has a shell variable in the middle and whose batch header exports a variable.
"""

import os
import shlex
import subprocess
import sys
import textwrap
import uuid

import pytest

from conftest import ROOT, Project

UPSTREAM = os.path.join(ROOT, "tests", "data", "fabsim3", "upstream")
UP_MACHINES = os.path.join(UPSTREAM, "machines.yml")
FILLED = {"<your-username>": "jdoe", "<your-budget>": "e723-jdoe", "<your-project>": "e723",
          "<your-UCL-ID>": "ucabjdo", "<specify-a-work-dir>": "/home/ucabjdo/Scratch"}


def line_of(path, text, after=None):
    with open(path) as fh:
        lines = fh.read().splitlines()
    start = 0 if after is None else next(i for i, line in enumerate(lines) if after in line) + 1
    return next(i + 1 for i in range(start, len(lines)) if text in lines[i])


class FabProject:
    """A copy of the project with FabSim3's files named in machines/fabsim.yml."""

    def __init__(self, tmp_path, replace=(), extra="", machines=UP_MACHINES, project_user=None):
        self.project = Project(tmp_path / "project", "localhost", str(tmp_path / "remote"))
        self.path = self.project.path
        with open(os.path.join(UPSTREAM, "machines_user_example.yml")) as fh:
            text = fh.read()
        for old, new in list(replace) + list(FILLED.items()):
            assert old in text, old
            text = text.replace(old, new)
        self.user = str(tmp_path / "machines_user_fabsim.yml")
        with open(self.user, "w") as fh:
            fh.write(text + textwrap.dedent(extra))
        with open(os.path.join(self.path, "machines", "fabsim.yml"), "w") as fh:
            fh.write("fabsim3:\n  machines: %s\n  user: %s\n" % (machines, self.user))
        if project_user is not None:
            with open(os.path.join(self.path, "machines", "machines_user.yml"), "w") as fh:
                fh.write(textwrap.dedent(project_user))

    def doit(self, *args, timeout=600, env=None):
        """doit as a user types it (no remote_root= added): (exit code, stdout, stderr)."""
        proc = subprocess.run([sys.executable, "-m", "doit"] + list(args), cwd=self.path,
                              capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})))
        return proc.returncode, proc.stdout, proc.stderr


def said(text, kind):
    return [line for line in text.splitlines() if line.startswith("hpcdo: %s:" % kind)]


def test_fabsim3_bad_value_is_one_error_line_not_the_catalogue_machine(tmp_path):
    fab = FabProject(tmp_path, replace=[("  cores: 128            # Total cores", "  cores: many  # Total")])
    rc, out, err = fab.doit("machine=archer2", "jobscript", "straight")
    assert rc != 0, out + err
    assert "Traceback" not in out + err
    assert said(out + err, "error") == [
        "hpcdo: error: %s:%d: machine 'archer2': key 'cores' must be a positive integer, not a string"
        % (fab.user, line_of(fab.user, "cores: many"))], out + err
    assert "#SBATCH" not in out                     # no jobscript from hpcdo's own archer2
    # the value itself is never repeated
    assert "many" not in said(out + err, "error")[0].split("cores")[-1]


def test_fabsim3_archer2_jobscript_is_fabsim3s_with_its_exports(tmp_path):
    fab = FabProject(tmp_path)
    rc, out, err = fab.doit("machine=archer2", "remote_root=/tmp/unused", "jobscript", "straight")
    assert rc == 0, out + err
    assert said(out + err, "warning") == [
        "hpcdo: warning: %s:%d: FabSim3's machine 'archer2' replaces hpcdo's machine of that name "
        "(hpcdo/catalogue/archer2.yml) as a whole: none of hpcdo's settings for it apply"
        % (UP_MACHINES, line_of(UP_MACHINES, "archer2:")),
        "hpcdo: warning: %s:%d: machine 'archer2': key 'cpuspertask' ignored (hpcdo writes each run's cpus "
        "per task itself, from the run's threads)" % (fab.user, line_of(fab.user, "cpuspertask: 2", "archer2:")),
        "hpcdo: warning: %s:%d: machine 'archer2': key 'taskspernode' ignored (hpcdo writes each run's tasks "
        "per node itself, from its cores, threads and corespernode)"
        % (fab.user, line_of(fab.user, "taskspernode: 64", "archer2:")),
    ], err
    lines = out.splitlines()
    for want in ("#SBATCH --account=e723-jdoe", "#SBATCH --partition=standard", "#SBATCH --qos=standard",
                 "module load cray-python || { echo \"hpcdo: job setup step 1 failed\" >&2; hpcdo_exit 98; }",
                 "export OMP_NUM_THREADS=1 || { echo \"hpcdo: job setup step 2 failed\" >&2; hpcdo_exit 98; }",
                 "SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK SLURM_NTASKS=$((SLURM_JOB_NUM_NODES * "
                 "SLURM_NTASKS_PER_NODE)) srun --distribution=block:block --hint=nomultithread "
                 "./lbflow --geometry straight.gmy --steps 3000 --tau 1.0 --force 5e-05"):
        assert want in lines, (want, out)
    # nothing of hpcdo's catalogue archer2: its directive, its compilers, its launcher
    assert "#SBATCH --hint=nomultithread" not in lines and "CC=" not in out and "srun --ntasks" not in out


def test_fabsim3_memory_default_reaches_the_jobscript(tmp_path):
    fab = FabProject(tmp_path, extra="""
        mycluster:
          remote: login.mycluster.example.org
          username: jdoe
          job_dispatch: sbatch
          batch_header: slurm-eagle
          budget: b01
          partition_name: compute
        """)
    rc, out, err = fab.doit("machine=mycluster", "remote_root=/tmp/unused", "jobscript", "straight")
    assert rc == 0, out + err
    assert said(out + err, "warning") == []
    assert "#SBATCH --mem=2GB" in out.splitlines() and "#SBATCH --account=b01" in out.splitlines(), out


def test_fabsim3_files_say_nothing_on_a_machine_they_do_not_describe(tmp_path):
    fab = FabProject(tmp_path)
    for args in (["list"], ["machine=cosma8", "remote_root=/tmp/unused", "jobscript", "straight"]):
        rc, out, err = fab.doit(*args)
        assert rc == 0, out + err
        assert said(out + err, "warning") == [] and said(out + err, "error") == [], (args, out + err)


def test_fabsim3_work_path_that_would_run_a_command_is_one_error_line(tmp_path):
    """A FabSim3 work path may use the machine's variables, never run a command there."""
    fab = FabProject(tmp_path, replace=[("  home_path_template: /work/<your-username>",
                                         "  home_path_template: /lustre/$(touch${IFS}%s/PWNED)/<your-username>"
                                         % tmp_path)])
    rc, out, err = fab.doit("machine=training_hidalgo", "jobscript", "straight")
    assert rc != 0 and "Traceback" not in out + err, out + err
    assert said(out + err, "error") == [
        "hpcdo: error: %s:%d: machine 'training_hidalgo': key 'home_path_template' gives a work path with a '$' "
        "that is not $NAME or ${NAME}: hpcdo expands the machine's variables in a work path, as $NAME or "
        "${NAME}, and runs nothing in it ($(...), $((...)), ${X:-...} or `...`)"
        % (fab.user, line_of(fab.user, "home_path_template: /lustre/"))], out + err
    assert not list(tmp_path.rglob("PWNED"))


def test_fabsim3_mistake_in_its_localhost_leaves_hpcdos_localhost(tmp_path):
    """FabSim3's localhost is never imported: hpcdo's, the default machine, works whatever it says."""
    fab = FabProject(tmp_path, replace=[("  cores: 1              # Total cores user requests",
                                         "  cores: many            # Total cores user requests")])
    for args in (["list"], ["jobscript", "straight"], ["machine=localhost", "jobscript", "straight"]):
        rc, out, err = fab.doit(*args)
        assert rc == 0, (args, out + err)
        assert said(out + err, "error") == [] and said(out + err, "warning") == [], (args, out + err)


FAB_LOCAL = """\
# FabSim3's format: this computer, with the machine's variable in the middle of the work path
default:
  home_path_template: @BASE@/$HPCDO_FAB_GROUP/$group
  runtime_path_template: $home_path
  fabric_dir: FabSim
  work_path_template: $runtime_path/$fabric_dir
  job_dispatch: ''
  cores: 1
  corespernode: 1

fablocal:
  remote: localhost
  group: jdoe
"""


def test_fabsim3_variable_mid_path_with_the_projects_shell_setup_runs_the_pipeline(tmp_path):
    """The project's shell_setup replaces FabSim3's lines, and the work root, $HPCDO_FAB_GROUP in
    its middle, is still the machine's: nothing of it was in shell_setup."""
    base = tmp_path / "lustre"
    deploy = tmp_path / "fabsim" / "deploy"
    deploy.mkdir(parents=True)
    (deploy / "machines.yml").write_text(FAB_LOCAL.replace("@BASE@", str(base)))
    # no user name: this computer has none in hpcdo
    fab = FabProject(tmp_path, machines=str(deploy / "machines.yml"), replace=[("  username: your-username\n", "")],
                     project_user="fablocal:\n  shell_setup: ['export HPCDO_FAB_SETUP=1']\n")
    env = {"HPCDO_FAB_GROUP": "grp7"}
    rc, out, err = fab.doit("machine=fablocal", "fetch_results:straight", env=env)
    assert rc == 0 and "Traceback" not in out + err, out + err
    run = base / "grp7" / "jdoe" / "FabSim" / "lbflow" / "runs" / "straight"
    assert (run / "summary.json").is_file() and (run / "job.exit").is_file(), sorted(os.listdir(base))
    with open(os.path.join(fab.path, "results", "fablocal", "straight", "summary.json")) as fh:
        assert fh.read().strip()
    # a second call finds everything done, through the same work root
    rc, out, err = fab.doit("machine=fablocal", "fetch_results:straight", env=env)
    assert rc == 0 and ".  " not in out, out + err


FAB_CLUSTER = """\
# FabSim3's format: the loopback test cluster as a FabSim3 user would describe it
default:
  home_path_template: /home/$username
  runtime_path_template: $home_path
  fabric_dir: FabSim
  work_path_template: $runtime_path/$fabric_dir
  job_dispatch: ''
  batch_header: no_batch
  run_command: /usr/bin/mpirun
  cores: 1
  corespernode: 1
  stat: squeue -u $username

fabcluster:
  remote: 127.0.0.1
  port: 2222
  job_dispatch: sbatch
  batch_header: slurm-loopback
  partition_name: debug
  run_command: srun --ntasks=$cores
  # $USER is the machine's shell's, in the middle of the path, as FabSim3 leaves it
  runtime_path_template: $HOME/@ROOT@/$USER
"""

FAB_HEADER = """\
#!/bin/bash
#SBATCH --job-name=$job_name
#SBATCH --nodes=$nodes
#SBATCH --time=$job_wall_time
#SBATCH --partition=$partition_name
#SBATCH --output=$job_results/JobID-%j.output

# the job's shell expands it, as in FabSim3's slurm-archer2
export FABSIM_JOB_CPUS=$SLURM_CPUS_ON_NODE
"""


@pytest.fixture
def fab_cluster(tmp_path, cluster):
    root = "hpcdo-tests/%s" % uuid.uuid4().hex[:12]
    deploy = tmp_path / "fabsim" / "deploy"
    (deploy / "templates").mkdir(parents=True)
    (deploy / "machines.yml").write_text(FAB_CLUSTER.replace("@ROOT@", root))
    (deploy / "templates" / "slurm-loopback").write_text(FAB_HEADER)
    for name in ("no_batch",):
        with open(os.path.join(UPSTREAM, "templates", name)) as fh:
            (deploy / "templates" / name).write_text(fh.read())
    fab = FabProject(tmp_path, machines=str(deploy / "machines.yml"), extra="""
        fabcluster:
          username: %s
        """ % cluster.user,
        # hpcdo's own keys for the same machine, on top of FabSim3's description
        project_user="""
        fabcluster:
          identity_file: %s
          known_hosts: %s
          poll_interval: 0.5
          poll_max: 5
        """ % (cluster.key, cluster.known_hosts))
    fab.root = root
    yield fab
    cluster.cancel_all("fabcluster", root)
    cluster.ssh("rm -rf %s" % shlex.quote(root), check=False)


def test_fabsim3_machine_runs_the_pipeline_with_a_shell_variable_mid_path(fab_cluster, cluster):
    fab = fab_cluster
    rc, out, err = fab.doit("machine=fabcluster", "fetch_results:straight")
    assert rc == 0, out + err
    assert "Traceback" not in out + err
    with open(os.path.join(fab.path, "results", "fabcluster", "straight", "summary.json")) as fh:
        assert fh.read().strip()
    # the work root is the one the machine's shell made of $HOME/<root>/$USER/FabSim
    where = "%s/%s/FabSim/lbflow/runs/straight" % (fab.root, cluster.user)
    listing = cluster.ssh("cd %s && ls" % shlex.quote(where)).stdout.split()
    assert "summary.json" in listing and "job.exit" in listing, listing
    script = cluster.ssh("cd %s && cat job.sh" % shlex.quote(where)).stdout
    # the header's export reached the job, in front of its one command
    assert "FABSIM_JOB_CPUS=$SLURM_CPUS_ON_NODE srun --ntasks=1 ./lbflow" in script, script
    # a second call finds everything done, through the same work root
    rc, out, err = fab.doit("machine=fabcluster", "fetch_results:straight")
    assert rc == 0 and ".  " not in out, out + err
