"""Shared fixtures: a throw-away copy of the project, doit runs, the real test cluster.

End-to-end tests copy the project (dodo.py, recipes, machines, demo) into a
temporary directory, point the machine's work root at a fresh directory,
run the real ``doit`` command in a subprocess and assert on which tasks ran
(doit prints ``.  name`` for a task it executed and ``-- name`` for one it
found up to date), on what the machine holds and on what the scheduler saw.
"""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER_DIR = os.environ.get("HPCDO_CLUSTER_DIR", "/var/lib/hpcdo-testcluster")
COPIED = ("dodo.py", "pyproject.toml", "recipes", "machines", "demo", "jobscripts")

# Every doit the tests start imports hpcdo from this checkout, whichever checkout
# pip installed last (another clone's CI run, a worktree); a PYTHONPATH given
# on purpose (an old revision, for red-then-green) is kept.
if not os.environ.get("PYTHONPATH"):
    os.environ["PYTHONPATH"] = ROOT


@contextlib.contextmanager
def reaped(proc):
    """Run the block; if ``proc`` is still running when it ends (a failed wait, a timeout), kill and reap it."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _interruptible():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Outcome:
    def __init__(self, proc, trace_path):
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        self.ran = re.findall(r"^\.  (\S+)$", proc.stdout, re.M)
        self.uptodate = re.findall(r"^-- (\S+)$", proc.stdout, re.M)
        self.trace = []
        if os.path.exists(trace_path):
            with open(trace_path) as fh:
                self.trace = [json.loads(line) for line in fh if line.strip()]
            os.remove(trace_path)

    def ran_set(self):
        return set(self.ran)

    def __repr__(self):
        return "<doit rc=%s ran=%s>\n%s" % (self.rc, self.ran, self.out[-3000:])


class Cluster:
    """The loopback SSH + Slurm cluster from tests/cluster/up."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.env = {}
        with open(os.path.join(state_dir, "cluster.env")) as fh:
            for line in fh:
                line = line.strip()
                if "=" in line and not line.startswith("#"):
                    key, value = line.split("=", 1)
                    self.env[key] = value.strip("'\"")
        self.host = self.env.get("HPCDO_SSH_HOST", "127.0.0.1")
        self.port = int(self.env.get("HPCDO_SSH_PORT", "2222"))
        self.user = self.env.get("HPCDO_SSH_USER", "hpcuser")
        self.key = self.env.get("HPCDO_SSH_KEY", os.path.join(state_dir, "id_ed25519"))
        self.known_hosts = self.env.get("HPCDO_KNOWN_HOSTS", os.path.join(state_dir, "known_hosts"))

    def ssh(self, command, check=True, timeout=60):
        """Run ``command`` as the cluster user through OpenSSH (independent of hpcdo's own SSH)."""
        argv = ["ssh", "-i", self.key, "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + self.known_hosts,
                "%s@%s" % (self.user, self.host), command]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError("ssh %r failed (%d): %s" % (command, proc.returncode, proc.stderr))
        return proc

    def jobs(self, machine, workdir_suffix=None):
        """Job ids the scheduler behind ``machine`` holds, optionally only those run in a
        directory ending in ``workdir_suffix``: asked of Slurm (testslurm, and testpbs, whose
        PBS commands sit on Slurm) or of Grid Engine (testsge, pending and running jobs)."""
        if machine == "testsge":
            cmd = ("for i in $(qstat -u %s | awk 'NR>2 {print $1}'); do "
                   "printf '%%s %%s\\n' \"$i\" \"$(qstat -j $i | awk '/^cwd:/ {print $2}')\"; done"
                   % self.user)
            lines = self.ssh(cmd).stdout.split("\n")
            jobs = [line.split(None, 1) for line in lines if line.strip()]
            return [j[0] for j in jobs if workdir_suffix is None or (len(j) > 1 and j[1].endswith(workdir_suffix))]
        return [j[0] for j in self.squeue(workdir_suffix)]

    def cancel_all(self, machine, root=None):
        """Cancel the test user's jobs on ``machine``'s scheduler: only those run under the work
        root ``root`` (relative to the user's home) when it is given, so that tests running
        side by side do not cancel each other's jobs."""
        if root is None:
            cmd = "qdel -u %s" % self.user if machine == "testsge" else "scancel -u %s" % self.user
            self.ssh(cmd + " >/dev/null 2>&1", check=False)
            return
        where = "$HOME/" + shlex.quote(root.strip("/")) + "/"
        if machine == "testsge":
            listing = ("for i in $(qstat -u %s | awk 'NR>2 {print $1}'); do "
                       "printf '%%s %%s\\n' \"$i\" \"$(qstat -j $i | awk '/^cwd:/ {print $2}')\"; done"
                       % self.user)
            kill = "qdel"
        else:
            listing = "squeue -h -u %s -o '%%i %%Z'" % self.user
            kill = "scancel"
        self.ssh("%s | while read -r i d; do case \"$d/\" in %s*) %s \"$i\";; esac; done >/dev/null 2>&1"
                 % (listing, where, kill), check=False)

    def squeue(self, workdir_suffix=None):
        """(id, name, state, workdir) of every job Slurm knows, in any state,
        optionally only those submitted from a directory ending in ``workdir_suffix``."""
        cmd = "squeue -h -t all -o '%i %j %T %Z'"
        lines = self.ssh(cmd).stdout.split("\n")
        jobs = [line.split(None, 3) for line in lines if line.strip()]
        return [j for j in jobs if workdir_suffix is None or j[3].endswith(workdir_suffix)]


@pytest.fixture(scope="session")
def cluster():
    """Start the test cluster if it is not running (needs root), and describe it."""
    up = os.path.join(ROOT, "tests", "cluster", "up")
    if os.geteuid() == 0:
        proc = subprocess.run([up], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, "tests/cluster/up failed:\n" + proc.stdout + proc.stderr
    assert os.path.exists(os.path.join(CLUSTER_DIR, "cluster.env")), \
        "the test cluster is not up: run tests/cluster/up as root"
    return Cluster(CLUSTER_DIR)


class Project:
    """A copy of the project with its own work root on one machine."""

    def __init__(self, path, machine, remote_root, cluster=None):
        self.path = str(path)
        self.machine = machine
        self.remote_root = remote_root
        self.cluster = cluster
        os.makedirs(self.path, exist_ok=True)
        for name in COPIED:
            src = os.path.join(ROOT, name)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(self.path, name),
                                ignore=shutil.ignore_patterns("machines_user.yml", "__pycache__"))
            elif os.path.exists(src):
                shutil.copy2(src, self.path)

    def clone_to(self, path):
        """A fresh copy of this project's files (no local state), same machine and work root."""
        other = Project.__new__(Project)
        other.__dict__.update(self.__dict__)
        other.path = str(path)
        shutil.copytree(self.path, other.path,
                        ignore=shutil.ignore_patterns(".hpcdo", "results", "__pycache__"))
        return other

    def doit(self, *args, ok=True, timeout=600, env=None):
        trace = os.path.join(self.path, ".trace-%s.jsonl" % uuid.uuid4().hex)
        full_env = dict(os.environ, HPCDO_TRACE=trace)
        full_env.update(env or {})
        argv = [sys.executable, "-m", "doit", "machine=" + self.machine,
                "remote_root=" + self.remote_root] + list(args)
        proc = subprocess.run(argv, cwd=self.path, capture_output=True, text=True,
                              timeout=timeout, env=full_env)
        outcome = Outcome(proc, trace)
        if ok is True:
            assert outcome.rc == 0, outcome
        elif ok is False:
            assert outcome.rc != 0, outcome
        return outcome

    def popen(self, *args):
        argv = [sys.executable, "-m", "doit", "machine=" + self.machine,
                "remote_root=" + self.remote_root] + list(args)
        # SIGINT as a terminal sends it, whatever this run inherited: a suite
        # started in the background (``cmd &``) has SIGINT ignored, and so
        # would every doit it starts, which tests interrupt with SIGINT
        return subprocess.Popen(argv, cwd=self.path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)

    def file(self, rel):
        return os.path.join(self.path, rel)

    def edit(self, rel, old, new):
        path = self.file(rel)
        with open(path) as fh:
            text = fh.read()
        assert old in text, "%s does not contain %r" % (rel, old)
        with open(path, "w") as fh:
            fh.write(text.replace(old, new, 1))

    def results(self, run):
        return os.path.join(self.path, "results", self.machine, run)

    def summary(self, run):
        with open(os.path.join(self.results(run), "summary.json")) as fh:
            return json.load(fh)

    # what the machine holds
    def remote(self, command):
        """Run a shell command in the work root on the machine; return stdout."""
        root = self.remote_root
        if self.cluster is None:
            proc = subprocess.run(["sh", "-c", "cd %s && %s" % (shlex.quote(root), command)],
                                  capture_output=True, text=True)
            return proc.stdout
        return self.cluster.ssh("cd %s && %s" % (shlex.quote(root), command), check=False).stdout


def write_recipe(project, runs, cmake_options=None, name="lbflow"):
    """Replace the project's recipe with one whose runs are given as (name, geometry, args) triples."""
    options = cmake_options or {"CMAKE_BUILD_TYPE": "Release", "LBFLOW_PRECISION": "double"}
    text = [
        "from hpcdo.recipe import LocalTree, Recipe",
        "recipe = Recipe(name=%r, source=LocalTree('demo/lbflow'), executable='lbflow'," % name,
        "    cmake_options=%r," % options,
        "    geometries={'straight': 'demo/geometries/straight.gmy',",
        "                'bifurcation': 'demo/geometries/bifurcation.gmy',",
        "                'stenosis': 'demo/geometries/stenosis.gmy'},",
        "    outputs=['summary.json', 'velocity.csv'])",
    ]
    for run_name, geometry, args in runs:
        text.append("recipe.run(%r, geometry=%r, args=%r, cores=1, walltime='00:10:00')"
                    % (run_name, geometry, list(args)))
    with open(project.file("recipes/lbflow.py"), "w") as fh:
        fh.write("\n".join(text) + "\n")


@pytest.fixture
def local_project(tmp_path):
    return Project(tmp_path / "project", "localhost", str(tmp_path / "remote"))


def cluster_project(tmp_path, cluster, machine):
    root = "hpcdo-tests/%s" % uuid.uuid4().hex[:12]
    project = Project(tmp_path / "project", machine, root, cluster)
    yield project
    cluster.cancel_all(machine, root)
    cluster.ssh("rm -rf %s" % shlex.quote(root), check=False)


@pytest.fixture
def slurm_project(tmp_path, cluster):
    yield from cluster_project(tmp_path, cluster, "testslurm")


#: every machine the pipeline is tested on: this computer, and the test
#: cluster through Slurm, Grid Engine and PBS commands
MACHINES = ["localhost", "testslurm", "testsge", "testpbs"]


def on_machine(request, tmp_path):
    """The body of a fixture parametrised by machine name: localhost's project, or a cluster one."""
    if request.param == "localhost":
        yield request.getfixturevalue("local_project")
        return
    yield from cluster_project(tmp_path, request.getfixturevalue("cluster"), request.param)


@pytest.fixture(params=MACHINES)
def project(request, tmp_path):
    yield from on_machine(request, tmp_path)


def wait_until(predicate, what, timeout=90, every=0.3):
    """Wait until ``predicate()`` is true; fail saying ``what`` did not happen in ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError("timed out waiting for " + what)
