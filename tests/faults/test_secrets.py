"""Secrets: no password or key material in logs, traces, provenance files or error output.

The SSH private key's body, a passphrase and secret-looking values put in
machine files are looked for in everything hpcdo writes or prints: doit's
output, the HPCDO_TRACE file, the project's .hpcdo/ and results/ (the
provenance files), the run directory on the machine (job.sh, job.out,
submit.log), and the persistent agent's command line.
"""

import glob
import json
import os
import shutil
import subprocess

import pytest

from conftest import write_recipe
from faults_helpers import no_traceback
from faultfix import STATE_DIR, stop_agents


def key_lines(path):
    """The lines of a private key file that are key material (not the BEGIN/END markers)."""
    with open(path) as fh:
        return [line.strip() for line in fh if line.strip() and "-----" not in line and len(line.strip()) >= 16]


def leaks(text, secrets):
    return [s for s in secrets if s and s in text]


def local_files_text(project):
    chunks = []
    for pattern in (".hpcdo/**/*", "results/**/*", ".trace-*"):
        for path in glob.glob(os.path.join(project.path, pattern), recursive=True):
            if os.path.isfile(path):
                with open(path, "rb") as fh:
                    chunks.append(fh.read().decode("utf-8", "replace"))
    return "\n".join(chunks)


@pytest.mark.parametrize("via", ["ssh", "agent"])
def test_no_key_material_anywhere_after_a_pipeline(slurm_project, tmp_path, via):
    project = slurm_project
    secrets = key_lines(os.path.join(STATE_DIR, "id_ed25519")) + ["PRIVATE KEY"]
    assert secrets[:-1], "the cluster key has no body?"
    known = str(tmp_path / "known_hosts")
    shutil.copy(os.path.join(STATE_DIR, "known_hosts"), known)
    args = ["known_hosts=%s" % known, "persist=0" if via == "ssh" else "persist=30"]
    write_recipe(project, [("a", "straight", ["--geometry", "{geometry}", "--steps", 300])])
    try:
        out = project.doit("fetch_results", *args)
        status = project.doit("status", *args)
        agents = subprocess.run(["pgrep", "-af", "hpcdo.remote.agent"], capture_output=True, text=True).stdout
    finally:
        stop_agents(known)
    assert not leaks(out.out + status.out, secrets)
    assert not leaks(json.dumps(out.trace + status.trace), secrets)
    assert not leaks(local_files_text(project), secrets)
    assert not leaks(project.remote("cat lbflow/runs/a/job.sh lbflow/runs/a/job.out lbflow/runs/a/submit.log"),
                     secrets)
    assert not leaks(agents, secrets)


@pytest.fixture
def keys(tmp_path):
    """A key the machine does not accept, an encrypted one, and a damaged one, each with its secrets."""
    made = {}
    plain = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(plain)], check=True)
    made["not accepted"] = (str(plain), key_lines(plain))
    locked = tmp_path / "locked"
    passphrase = "hunter2-passphrase-%d" % os.getpid()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-f", str(locked)], check=True)
    made["encrypted"] = (str(locked), key_lines(locked) + [passphrase])
    damaged = tmp_path / "damaged"
    body = key_lines(plain)
    damaged.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n%s\nDAMAGEDSECRETMATERIAL0123456789\n"
                       "-----END OPENSSH PRIVATE KEY-----\n" % "\n".join(body[:2]))
    made["damaged"] = (str(damaged), body[:2] + ["DAMAGEDSECRETMATERIAL0123456789"])
    return made


@pytest.mark.parametrize("which", ["not accepted", "encrypted", "damaged"])
def test_a_refused_key_is_reported_without_its_material(slurm_project, keys, which, tmp_path):
    project = slurm_project
    path, secrets = keys[which]
    home = tmp_path / "home"          # no ~/.ssh keys or agent of root's to fall back on
    home.mkdir()
    out = project.doit("clone", "identity_file=%s" % path, "persist=0", ok=False,
                       env={"HOME": str(home), "SSH_AUTH_SOCK": ""})
    no_traceback(out)
    assert "testslurm" in out.out, out
    assert not leaks(out.out, secrets), out
    assert not leaks(json.dumps(out.trace), secrets)
    assert not leaks(local_files_text(project), secrets)


@pytest.mark.parametrize("text", [
    "testslurm:\n  password: hunter2-machine-file\n",
    "testslurm:\n  env: {DB_PASSWORD: [hunter2-machine-file]}\n",
    "testslurm:\n  env:\n    API_TOKEN: {value: hunter2-machine-file}\n",
])
def test_secret_looking_values_are_not_echoed_in_errors(local_project, text):
    with open(local_project.file("machines/machines_user.yml"), "w") as fh:
        fh.write(text)
    out = local_project.doit("list", "machine=testslurm", ok=None)
    assert out.rc != 0, out
    no_traceback(out)
    assert "machines_user.yml" in out.out, out
    assert "hunter2" not in out.out, out


def test_fabsim3_password_settings_are_not_echoed(local_project):
    from conftest import ROOT
    data = os.path.join(ROOT, "tests", "data", "fabsim3")
    shutil.copytree(data, local_project.file("fabsim3"))
    with open(local_project.file("fabsim3/machines_user.yml"), "a") as fh:
        fh.write("\n  manual_sshpass: true\n  sshpass: hunter2-fabsim\n  password: hunter2-fabsim-2\n")
    with open(local_project.file("machines/fabsim.yml"), "w") as fh:
        fh.write("fabsim3: {machines: ../fabsim3/machines.yml, user: ../fabsim3/machines_user.yml}\n")
    out = local_project.doit("list", "machine=workstation", ok=None)     # the block appended to
    no_traceback(out)
    assert "sshpass" in out.out, out              # the settings were read, and warned about
    assert "hunter2" not in out.out, out
