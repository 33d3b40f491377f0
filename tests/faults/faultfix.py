"""Fixtures of the fault-injection suite: a cutting relay, a small full disk, a stopped controller.

The fixtures of tests/conftest.py (``cluster``, ``slurm_project``,
``Project``, ``write_recipe``) are used as they are; this module adds the
faults.  It is not a conftest.py: a second module called ``conftest`` would
replace tests/conftest.py in ``sys.modules`` and break the tests that import
from it, so each test module imports the fixtures it uses from here.

Tests that stop shared daemons of the test cluster (slurmctld) are marked
``disruptive`` and live in test_zz_scheduler_outage.py, which runs last.
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from cutrelay import CutRelay, known_hosts_for  # noqa: E402

STATE_DIR = os.environ.get("HPCDO_CLUSTER_DIR", "/var/lib/hpcdo-testcluster")
SLURM_CONF = os.path.join(STATE_DIR, "slurm", "slurm.conf")
SLURMCTLD_PID = os.path.join(STATE_DIR, "run", "slurmctld.pid")


from faults_helpers import scancel, wait_until  # noqa: E402


# -- the cutting relay ------------------------------------------------------------

@pytest.fixture
def relay(cluster, tmp_path):
    """A CutRelay in front of the cluster's sshd, and the machine settings that go through it.

    ``relay.args`` are doit command-line words: the relay's port, a
    known_hosts file trusting the cluster's key there, and ``persist=0``
    (one SSH connection per call, opened by the call itself).
    """
    r = CutRelay((cluster.host, cluster.port)).start()
    known = known_hosts_for(r.port, cluster.known_hosts, str(tmp_path / "relay_known_hosts"),
                            source=(cluster.host, cluster.port))
    r.known_hosts = known
    r.args = ["port=%d" % r.port, "known_hosts=%s" % known, "persist=0"]
    try:
        yield r
    finally:
        stop_agents(known)
        r.close()


def stop_agents(needle):
    """End the persistent agents this test started (found by a path only this test uses), by pid."""
    import signal
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if "hpcdo.remote.agent" in cmd and needle in cmd:
            try:
                os.kill(int(pid), signal.SIGTERM)
            except OSError:
                pass


# -- a small, full disk as the work root ---------------------------------------------

class SmallDisk:
    """A size-limited tmpfs owned by the cluster user, used as a project's work root."""

    def __init__(self, cluster, size):
        self.cluster = cluster
        self.path = "/home/%s/hpcdo-full-%s" % (cluster.user, uuid.uuid4().hex[:10])
        os.makedirs(self.path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", self.path],
                       check=True)
        shutil.chown(self.path, cluster.user, cluster.user)

    def fill(self, spare_pages=0):
        """Fill the disk (as the cluster user) until ``spare_pages`` pages of 4 KiB are left.

        The filler files stay until :meth:`free`.
        """
        self.cluster.ssh("cd %s && dd if=/dev/zero of=.spare bs=4096 count=%d 2>/dev/null; "
                         "dd if=/dev/zero of=.filler bs=4k 2>/dev/null; "
                         "dd if=/dev/zero of=.filler2 bs=1 2>/dev/null; rm -f .spare; sync; true"
                         % (shlex.quote(self.path), int(spare_pages)), check=False)
        st = os.statvfs(self.path)
        free = st.f_bavail * st.f_frsize // 4096
        assert free == spare_pages, "the disk has %d free pages, not %d" % (free, spare_pages)

    def free(self):
        for name in (".filler", ".filler2", ".spare"):
            try:
                os.remove(os.path.join(self.path, name))
            except FileNotFoundError:
                pass

    def remove(self):
        for _ in range(20):
            if subprocess.run(["umount", self.path], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", self.path], capture_output=True)
        try:
            os.rmdir(self.path)
        except OSError:
            pass


@pytest.fixture
def small_disk(cluster):
    """A 4 MiB tmpfs at ~hpcuser/hpcdo-full-<id>, unmounted afterwards."""
    disk = SmallDisk(cluster, "4m")
    try:
        yield disk
    finally:
        # jobs still running there would keep it busy
        ids = [j[0] for j in cluster.squeue() if j[3].startswith(disk.path + "/")
               and j[2] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")]
        scancel(cluster, ids)
        disk.remove()


@pytest.fixture
def disk_project(tmp_path, cluster, small_disk):
    """A testslurm project whose work root is the small disk."""
    from conftest import Project
    project = Project(tmp_path / "project", "testslurm", small_disk.path + "/root", cluster)
    project.disk = small_disk
    yield project


# -- the Slurm controller -------------------------------------------------------------

class Controller:
    """Stop and start the test cluster's slurmctld (root only)."""

    def __init__(self, cluster):
        self.cluster = cluster

    def pid(self):
        try:
            with open(SLURMCTLD_PID) as fh:
                pid = int(fh.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def answering(self):
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=60)
        return "is UP" in ping.stdout

    def stop(self):
        pid = self.pid()
        assert pid, "slurmctld is not running"
        os.kill(pid, 15)
        wait_until(lambda: self.pid() is None, timeout=20, what="slurmctld to stop")
        self.stopped_at = time.monotonic()

    def start(self):
        if self.pid() is None:
            subprocess.run(["/usr/sbin/slurmctld", "-f", SLURM_CONF], check=False,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           close_fds=True)
        wait_until(lambda: self.pid() is not None and self.answering(), timeout=60, interval=0.3,
                   what="slurmctld to answer again")


@pytest.fixture
def controller(cluster):
    ctl = Controller(cluster)
    try:
        yield ctl
    finally:
        try:
            ctl.start()
        except Exception:
            # last resort: the idempotent cluster start-up brings every daemon back
            root = os.path.dirname(os.path.dirname(HERE))
            subprocess.run([os.path.join(root, "tests", "cluster", "up")], capture_output=True, timeout=600)
