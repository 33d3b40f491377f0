"""Fault 1: the SSH connection drops in the middle of an upload and of a fetch.

A relay between hpcdo and the cluster's sshd resets the connection after a
given number of bytes, in the middle of the transfer.  The call fails with a
plain message; neither side keeps a partial file as if it were complete (no
stamp on the machine, the old local results untouched, no temporary
directories left behind); the next call, through the same relay, completes.
Each scenario runs over a connection of the call's own (``persist=0``) and
through the persistent agent (``persist``), whose kept connection is the one
cut.
"""

import hashlib
import json
import os

import pytest

from conftest import write_recipe
from faults_helpers import no_traceback
from faultfix import relay  # noqa: F401  (fixture)

MB = 1 << 20

VIA = {"ssh": [], "agent": ["persist=60"]}


def args_via(relay, via):
    """The relay's command-line words, with the agent's persist instead of 0 when asked."""
    return [a for a in relay.args if not (VIA[via] and a.startswith("persist="))] + VIA[via]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def remote_sha(project, path):
    out = project.remote("sha256sum %s 2>/dev/null | cut -c1-64" % path).strip()
    return out or None


def lost_connection(out):
    assert out.rc != 0, out
    no_traceback(out)
    assert "connection" in out.out, out


@pytest.mark.parametrize("via", sorted(VIA))
def test_upload_cut_midway_leaves_old_geometry_and_no_stamp(slurm_project, relay, via):
    project = slurm_project
    args = args_via(relay, via)
    first = project.doit("send_geometry:straight", *args)
    assert first.ran == ["send_geometry:straight"], first
    old = open(project.file("demo/geometries/straight.gmy"), "rb").read()
    assert remote_sha(project, "lbflow/geometry/straight/straight.gmy") == sha(old)

    new = os.urandom(4 * MB)
    with open(project.file("demo/geometries/straight.gmy"), "wb") as fh:
        fh.write(new)
    # three cuts at different points: which thread sees the reset first is a race, and each
    # outcome must be handled
    for n, after in enumerate((1 * MB, 2 * MB, 3 * MB)):
        relay.arm("up", after)
        out = project.doit("send_geometry:straight", *args, ok=None)
        assert len(relay.cuts) == n + 1, "the relay did not cut the upload"
        if via == "agent" and out.rc == 0:
            # seen under load in CI (sessions 7-8, not understood yet): the cut met a connection
            # the upload did not use. Then the upload must be whole and stamped for its content
            assert remote_sha(project, "lbflow/geometry/straight/straight.gmy") == sha(new), out
            assert json.loads(project.remote("cat lbflow/geometry/straight/.hpcdo-stamp"))["sig"] == sha(new)
            return
        lost_connection(out)
        # the machine: no stamp, the old file whole, no partial file left behind
        assert project.remote("cat lbflow/geometry/straight/.hpcdo-stamp 2>/dev/null").strip() == ""
        assert remote_sha(project, "lbflow/geometry/straight/straight.gmy") == sha(old)
        assert project.remote("ls -A lbflow/geometry/straight").split() == ["straight.gmy"]

    relay.disarm()
    again = project.doit("send_geometry:straight", *args)
    assert again.ran == ["send_geometry:straight"], again
    assert remote_sha(project, "lbflow/geometry/straight/straight.gmy") == sha(new)
    stamp = json.loads(project.remote("cat lbflow/geometry/straight/.hpcdo-stamp"))
    assert stamp["sig"] == sha(new)
    assert project.doit("send_geometry:straight", *args).ran == []


@pytest.mark.parametrize("via", sorted(VIA))
def test_source_sync_cut_midway_is_sent_again(slurm_project, relay, via):
    project = slurm_project
    args = args_via(relay, via)
    blob = os.urandom(3 * MB)
    os.makedirs(project.file("demo/lbflow/data"))
    with open(project.file("demo/lbflow/data/blob.bin"), "wb") as fh:
        fh.write(blob)
    project.doit("send_geometry:straight", *args)       # opens the connection (the agent's, too)
    for n, after in enumerate((1 * MB, 1 * MB + 300000, 2 * MB)):
        relay.arm("up", after)
        out = project.doit("compile", *args, ok=None)
        if via == "agent" and out.rc == 0:
            # as in the geometry test: a cut the sync did not meet; then the tree must be whole
            assert remote_sha(project, "lbflow/src/data/blob.bin") == sha(blob), \
                (relay.cuts, [(c.count, c.closed) for c in relay.conns], out)
            assert project.doit("compile", *args).ran == []
            return
        assert len(relay.cuts) == n + 1, "the relay did not cut the upload"
        lost_connection(out)
        assert "clone" in out.ran and "configure" not in out.ran and "compile" not in out.ran, out
        assert project.remote("cat lbflow/src/.hpcdo-stamp 2>/dev/null").strip() == ""
        assert remote_sha(project, "lbflow/src/data/blob.bin") != sha(blob)

    relay.disarm()
    again = project.doit("compile", *args)
    assert again.ran_set() == {"clone", "configure", "compile"}, again
    assert remote_sha(project, "lbflow/src/data/blob.bin") == sha(blob)
    assert project.doit("compile", *args).ran == []


def incoming_leftovers(project):
    parent = os.path.join(project.path, "results", project.machine)
    if not os.path.isdir(parent):
        return []
    return [n for n in os.listdir(parent) if n.startswith(".") or ".old-" in n]


@pytest.mark.parametrize("via", sorted(VIA))
def test_fetch_cut_midway_keeps_the_old_results(slurm_project, relay, via):
    project = slurm_project
    args = args_via(relay, via)
    write_recipe(project, [("straight", "straight", ["--geometry", "{geometry}", "--steps", 300])])
    project.doit("fetch_results", *args)
    local = os.path.join(project.results("straight"), "velocity.csv")
    before = open(local, "rb").read()
    prov_before = open(os.path.join(project.results("straight"), "hpcdo-provenance.json")).read()

    # the machine's results grow (a longer output, say): 4 MB to fetch again
    project.remote("head -c 3000000 /dev/urandom | base64 >> lbflow/runs/straight/velocity.csv")
    grown = remote_sha(project, "lbflow/runs/straight/velocity.csv")
    relay.arm("down", 1 * MB)
    out = project.doit("fetch_results", *args, ok=False)
    assert relay.cuts, "the relay did not cut the download"
    lost_connection(out)
    assert out.ran == ["fetch_results:straight"], out
    # the local copy is the old one, whole, with its old provenance; nothing half-written beside it
    assert sha(open(local, "rb").read()) == sha(before)
    assert open(os.path.join(project.results("straight"), "hpcdo-provenance.json")).read() == prov_before
    assert incoming_leftovers(project) == []

    relay.disarm()
    again = project.doit("fetch_results", *args)
    assert again.ran == ["fetch_results:straight"], again
    assert sha(open(local, "rb").read()) == grown
    assert project.doit("fetch_results", *args).ran == []


def test_first_fetch_cut_midway_leaves_no_results(slurm_project, relay, tmp_path):
    project = slurm_project
    write_recipe(project, [("straight", "straight", ["--geometry", "{geometry}", "--steps", 300])])
    project.doit("fetch_results")                      # straight to the cluster
    project.remote("head -c 3000000 /dev/urandom | base64 >> lbflow/runs/straight/velocity.csv")
    grown = remote_sha(project, "lbflow/runs/straight/velocity.csv")

    fresh = project.clone_to(tmp_path / "fresh")        # a new checkout: no local results yet
    relay.arm("down", 1 * MB)
    out = fresh.doit("fetch_results", *relay.args, ok=False)
    assert relay.cuts, "the relay did not cut the download"
    lost_connection(out)
    assert not os.path.exists(fresh.results("straight")), os.listdir(os.path.dirname(fresh.results("straight")))
    assert incoming_leftovers(fresh) == []

    relay.disarm()
    again = fresh.doit("fetch_results", *relay.args)
    assert again.ran == ["fetch_results:straight"], again
    assert sha(open(os.path.join(fresh.results("straight"), "velocity.csv"), "rb").read()) == grown
